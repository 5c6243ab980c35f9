"""``armfarm finetune``: continue an offline run with interaction (offline -> online fine-tuning)."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import console, progress_bar, results, user_errors
from armfarm.online import DEFAULT_UPDATES_PER_CALL
from armfarm.overrides import parse_pairs


def finetune(
    run_dir: Path = typer.Argument(..., help="A run directory of `armfarm train` (calql, cql, iql, awac, rebrac)."),
    env_id: str = typer.Option(..., "--env", help="Gymnasium environment to interact with."),
    out: Path = typer.Option(..., "--out", help="Run directory of the fine-tuning (checkpoints/, replay.npz, ...)."),
    steps: int = typer.Option(..., "--steps", min=1, help="Environment steps (one gradient step each)."),
    mix: float = typer.Option(0.5, "--mix", min=0.0, max=0.99, help="Share of each batch from the offline data."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the environment and exploration."),
    store_out: Path = typer.Option(None, "--store", help="Also write every new episode into this store."),
    updates_per_call: int = typer.Option(DEFAULT_UPDATES_PER_CALL, "--updates-per-call", min=1,
                                         help="Environment steps between fused calls of as many gradient steps."),
    eval_every: int = typer.Option(None, "--eval-every", min=1, help="Environment steps between evaluations."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", min=1, help="Episodes per evaluation."),
    overrides: list[str] = typer.Option([], "--set", help="Config override KEY=VALUE for the online phase."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
) -> None:
    """Fine-tune RUN_DIR's policy online in ENV for --steps steps, mixing its offline data into every batch."""
    from armfarm.online import finetune as run_finetune

    with user_errors(), progress_bar() as bar:
        task = bar.add_task(f"finetune {run_dir.name}", total=steps, info="")
        summary = run_finetune(
            run_dir, env_id, out, steps=steps, mix=mix, seed=seed, store_out=store_out,
            updates_per_call=updates_per_call, eval_every=eval_every, eval_episodes=eval_episodes,
            config_overrides=parse_pairs(overrides), resume=resume, overwrite=overwrite,
            on_progress=lambda step, m: bar.update(task, completed=step, info=f"return {m['episode_return']:.1f}"),
            on_eval=lambda step, r: bar.console.print(f"step {step}: eval return {r.return_mean:.1f} ± {r.return_std:.1f}"),
        )
    if summary["resumed_from"]:
        console.print(f"resumed from {summary['resumed_from']}")
    before = summary["return_before"]
    regret = "" if summary["regret"] is None else f", regret {summary['regret']:.3f}"
    results.print(f"{summary['algo']}: return {'?' if before is None else f'{before:.1f}'} -> "
                  f"{summary['return_after']:.1f} after {summary['env_steps']} env steps{regret}; run dir {out}")
