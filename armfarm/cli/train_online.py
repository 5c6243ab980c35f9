"""``armfarm train-online``: learn a policy by interacting with an environment (SAC)."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import console, progress_bar, results, user_errors
from armfarm.online import DEFAULT_START_STEPS, DEFAULT_STEPS, DEFAULT_UPDATES_PER_CALL
from armfarm.overrides import parse_pairs


def train_online(
    algo: str = typer.Argument(..., help="Online algorithm: sac."),
    env_id: str = typer.Argument(..., help="Gymnasium environment id, e.g. Hopper-v5."),
    out: Path = typer.Option(..., "--out", help="Run directory (config, metrics.csv, eval.csv, checkpoints/, replay.npz)."),
    steps: int = typer.Option(DEFAULT_STEPS, "--steps", min=1, help="Environment steps (one gradient step each)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for the environment, exploration and initialisation."),
    start_steps: int = typer.Option(DEFAULT_START_STEPS, "--start-steps", min=0,
                                    help="Initial uniform-random steps before learning starts."),
    updates_per_call: int = typer.Option(DEFAULT_UPDATES_PER_CALL, "--updates-per-call", min=1,
                                         help="Environment steps between fused calls of as many gradient steps."),
    eval_every: int = typer.Option(None, "--eval-every", min=1, help="Environment steps between evaluations."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", min=1, help="Episodes per evaluation."),
    target_return: float = typer.Option(None, "--target-return", help="Stop once an evaluation reaches this return."),
    overrides: list[str] = typer.Option([], "--set", help="Config override KEY=VALUE (repeatable)."),
    resume: bool = typer.Option(False, "--resume",
                                help="Continue from the newest checkpoint in --out (also to extend --steps)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
) -> None:
    """Train ALGO online in ENV_ID for --steps environment steps and write a run directory."""
    from armfarm.online import train_online as run_train_online

    with user_errors(), progress_bar() as bar:
        task = bar.add_task(f"train-online {algo}", total=steps, info="")
        summary = run_train_online(
            algo, env_id, out, steps=steps, seed=seed, start_steps=start_steps, updates_per_call=updates_per_call,
            eval_every=eval_every, eval_episodes=eval_episodes, target_return=target_return,
            config_overrides=parse_pairs(overrides), resume=resume, overwrite=overwrite,
            on_progress=lambda step, m: bar.update(task, completed=step, info=f"return {m['episode_return']:.1f}"),
            on_eval=lambda step, r: bar.console.print(
                f"step {step}: eval return {r.return_mean:.1f} ± {r.return_std:.1f}"
                + (f" (normalized {r.normalized:.1f})" if r.normalized is not None else "")),
        )
    if summary["resumed_from"]:
        console.print(f"resumed from {summary['resumed_from']}"
                      + ("" if summary["resumed_exact"] else " (the interrupted episode could not be replayed)"))
    results.print(
        f"{summary['algo']}: {summary['env_steps']} env steps, {summary['grad_steps']} gradient steps in "
        f"{summary['seconds']:.0f}s; return {summary['eval']['return_mean']:.1f} ± {summary['eval']['return_std']:.1f}; "
        f"run dir {out}"
    )
