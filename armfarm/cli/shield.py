"""``armfarm shield``: fit a safety shield from a store, and show what one holds."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import print_json, progress_bar, results, user_errors

app = typer.Typer(help="Fit a safety shield from stored data, and inspect one.", no_args_is_help=True)


@app.command("fit")
def fit(
    store: Path = typer.Argument(..., help="Episode store to learn from (its costs and actions)."),
    out: Path = typer.Option(..., "--out", help="Shield directory to write."),
    budget: float = typer.Option(0.5, "--budget", min=0.0,
                                 help="Cost-critic budget: refuse actions whose expected discounted cost is above it."),
    fallback: str = typer.Option("stop", "--fallback",
                                 help="What acts instead of a refused action: stop, bc, min-cost (the behaviour model's candidate the "
                                      "cost critic rates safest), or a policy (run dir or .npz)."),
    project: bool = typer.Option(False, "--project", help="Replace an action the cost critic refuses by the nearest "
                                                            "accepted one on the way to the fallback's, not by the fallback's."),
    steps: int = typer.Option(20_000, "--steps", min=1, help="Gradient steps for the shield's two models."),
    gamma: float = typer.Option(0.8, "--gamma", min=0.0, max=0.999, help="Discount of the cost critic."),
    quantile: float = typer.Option(0.99, "--quantile", min=0.5, max=1.0,
                                   help="Support gate: refuse actions less likely than this quantile of the data's."),
    max_delta: float = typer.Option(None, "--max-delta", min=0.0, help="Largest action change per step (none: off)."),
    episode_cost_budget: float = typer.Option(None, "--episode-cost-budget", min=0.0,
                                              help="Watchdog: e-stop once an episode's cost passes this."),
    no_progress_steps: int = typer.Option(0, "--no-progress-steps", min=0,
                                          help="Watchdog: steps without progress before recovery (0: off)."),
    min_progress: float = typer.Option(0.0, "--min-progress", help="Watchdog: least reward summed over those steps."),
    recovery: str = typer.Option("stop", "--recovery", help="Watchdog's recovery: stop, bc, min-cost, or a policy."),
    recovery_steps: int = typer.Option(0, "--recovery-steps", min=0, help="Steps the recovery runs before the e-stop."),
    seed: int = typer.Option(0, "--seed", min=0),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing shield directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the shield's config as JSON."),
) -> None:
    """Learn a shield from STORE: hard limits, a support gate, a cost critic and a watchdog (see docs/design.md)."""
    from armfarm.shield import Limits, Watchdog
    from armfarm.shield.config import FALLBACKS
    from armfarm.shield.fit import fit_shield

    recovery_kind = recovery if recovery in FALLBACKS else "policy"
    watchdog = Watchdog(episode_cost_budget=episode_cost_budget, no_progress_steps=no_progress_steps,
                        min_progress=min_progress, recovery=recovery_kind, recovery_steps=recovery_steps)
    with user_errors(), progress_bar() as bar:
        task = bar.add_task("fitting shield", total=steps, info=str(store))
        config = fit_shield(store, out, budget=budget, fallback=fallback, project=project, steps=steps, gamma=gamma, quantile=quantile,
                            seed=seed, limits=Limits(max_delta=max_delta), watchdog=watchdog,
                            recovery_policy=None if recovery_kind != "policy" else recovery, overwrite=overwrite,
                            on_progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json(config.to_json())
        return
    p = config.provenance
    results.print(f"shield -> {out}: support threshold {config.support.threshold:.3g} (quantile {quantile}), cost budget "
                  f"{budget:g}; the cost critic refuses {100 * p['data_refused_by_cost_critic']:.1f}% of the data's actions")


@app.command("info")
def info(
    shield: Path = typer.Argument(..., help="Shield directory."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check that SHIELD loads, and show its layers, calibration and provenance."""
    from armfarm.shield import Shield

    with user_errors():
        config = Shield.load(shield).config
    if as_json:
        print_json(config.to_json())
        return
    results.print(f"shield {shield}: {config.obs_dim} observations -> {config.act_dim} actions, fallback {config.fallback}")
    for name in ("limits", "support", "cost", "watchdog"):
        results.print(f"  {name}: {getattr(config, name)}")
    results.print(f"  fitted on: {config.provenance}")
