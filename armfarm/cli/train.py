"""``armfarm train``: learn a policy from a store with an offline RL algorithm."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import progress_bar, results, user_errors
from armfarm.overrides import parse_pairs
from armfarm.train import DEFAULT_STEPS, DEFAULT_STEPS_PER_CALL


def train(
    algo: str = typer.Argument(..., help="Offline algorithm (`armfarm algos` lists them; `armfarm algos ALGO` its --set fields)."),
    store: Path = typer.Argument(..., help="Episode store to learn from."),
    out: Path = typer.Option(..., "--out", help="Run directory (config, metrics.csv, tb/, checkpoints/, summary.json)."),
    steps: int = typer.Option(DEFAULT_STEPS, "--steps", min=1, help="Gradient steps."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for initialisation and batch sampling."),
    seeds: str = typer.Option(None, "--seeds", help="Train several seeds, e.g. 0,1,2,3,4: OUT/seed_<s>/ each, and "
                                                    "a summary over seeds in OUT/summary.json."),
    vectorize: str = typer.Option(None, "--vectorize",
                                  help="With --seeds: vmap (all seeds in one compiled call; the default on "
                                       "accelerators) or sequential (bit-identical to single runs; CPU default)."),
    env_id: str = typer.Option(None, "--env", help="Evaluate in this Gymnasium env during and after training."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", min=1, help="Episodes per evaluation."),
    eval_every: int = typer.Option(None, "--eval-every", min=1, help="Gradient steps between evaluations."),
    steps_per_call: int = typer.Option(DEFAULT_STEPS_PER_CALL, "--steps-per-call", min=1,
                                       help="Gradient steps fused into one compiled call."),
    overrides: list[str] = typer.Option([], "--set", help="Config override KEY=VALUE (repeatable), e.g. --set expectile=0.9"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
) -> None:
    """Train ALGO on STORE for --steps gradient steps and write a run directory."""
    from armfarm.train import train as run_train
    from armfarm.train import train_seeds

    if seeds is not None:
        with user_errors():
            try:
                seed_list = [int(s) for s in seeds.split(",") if s.strip()]
            except ValueError:
                raise ValueError(f"--seeds takes comma-separated ints, got {seeds!r}") from None
            if resume:
                raise ValueError("--resume continues one run; resume each OUT/seed_<s> with --seed s")
            with progress_bar() as bar:
                task = bar.add_task(f"train {algo} x{len(seed_list)} seeds", total=steps * len(seed_list), info="")
                summary = train_seeds(
                    algo, store, out, seed_list, steps=steps, vectorize=vectorize, env_id=env_id,
                    eval_episodes=eval_episodes, steps_per_call=steps_per_call,
                    config_overrides=parse_pairs(overrides), overwrite=overwrite,
                    on_progress=lambda done, m: bar.update(task, completed=done, info=_brief(m)))
        line = f"{summary['algo']}: {len(seed_list)} seeds x {steps} steps in {summary['seconds']:.0f}s ({summary['vectorize']})"
        if "eval" in summary:
            e = summary["eval"]
            line += (f", return {e['return_mean']:.1f} ± {e['return_std']:.1f} "
                     f"(95% CI {e['return_ci95'][0]:.1f} to {e['return_ci95'][1]:.1f})")
        results.print(line + f"; runs in {out}/seed_*")
        return

    with user_errors(), progress_bar() as bar:
        task = bar.add_task(f"train {algo}", total=steps, info="")
        summary = run_train(
            algo, store, out, steps=steps, seed=seed, env_id=env_id, eval_episodes=eval_episodes,
            eval_every=eval_every, steps_per_call=steps_per_call, config_overrides=parse_pairs(overrides),
            resume=resume, overwrite=overwrite,
            on_progress=lambda step, m: bar.update(task, completed=step, info=_brief(m)),
            on_eval=lambda step, r: bar.console.print(
                f"step {step}: eval return {r.return_mean:.1f} ± {r.return_std:.1f}"
                + (f" (normalized {r.normalized:.1f})" if r.normalized is not None else "")),
        )
    line = f"{summary['algo']}: {summary['steps']} steps in {summary['seconds']:.0f}s ({summary['grad_steps_per_s']} steps/s)"
    if "eval" in summary:
        line += f", return {summary['eval']['return_mean']:.1f} ± {summary['eval']['return_std']:.1f}"
    if "goal_eval" in summary:
        line += f", goal success {summary['goal_eval']['success_rate']:.0%} over its tasks"
    results.print(line + f"; run dir {out}")


def _brief(metrics: dict) -> str:
    keys = [k for k in metrics if "loss" in k][:2]
    return " ".join(f"{k} {metrics[k]:.3g}" for k in keys)
