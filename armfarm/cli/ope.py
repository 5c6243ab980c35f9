"""``armfarm ope``: estimate policies' values from a store with FQE, without running them."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import console, print_json, results, user_errors
from armfarm.evaluate.ope import DEFAULT_STEPS
from armfarm.overrides import parse_pairs


def ope(
    store: Path = typer.Argument(..., help="Episode store the estimates are fitted on."),
    policies: list[Path] = typer.Argument(..., help="Run directories, checkpoint directories or policy.npz files."),
    env_id: str = typer.Option(None, "--env", help="Also run each policy here: true returns, Spearman, regret@1."),
    steps: int = typer.Option(DEFAULT_STEPS, "--steps", min=1, help="FQE gradient steps per policy."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of FQE and of the evaluation episodes."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", min=1, help="Episodes per true return (--env)."),
    overrides: list[str] = typer.Option([], "--set", help="FQE config override KEY=VALUE (`armfarm algos fqe`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Rank POLICIES by FQE's estimate of their value on STORE (Le et al. 2019), DOPE's metrics with --env."""
    from armfarm.evaluate.ope import off_policy_evaluation

    with user_errors():
        result = off_policy_evaluation(
            store, policies, env_id=env_id, steps=steps, seed=seed, eval_episodes=eval_episodes,
            overrides=parse_pairs(overrides),
            on_policy=lambda i, row: console.print(f"[{i + 1}/{len(policies)}] {row['run_dir']}: estimate "
                                                   f"{row['estimate']:.2f}" + (f", true return {row['true_return']:.1f}"
                                                                              if "true_return" in row else "")))
    if as_json:
        print_json(result.to_json())
        return
    for row in sorted(result.policies, key=lambda r: -r["estimate"]):
        results.print(f"{row['estimate']:10.2f}  {row['run_dir']}"
                      + (f"  (true return {row['true_return']:.1f})" if "true_return" in row else ""))
    if result.spearman is not None:
        results.print(f"Spearman {result.spearman:.3f}, regret@1 {result.regret_at_1:.3f} (discount {result.gamma})")
