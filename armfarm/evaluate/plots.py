"""Plots people would rather look at than read: returns side by side and learning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_demo(results: dict, curves: dict, path: Path, title: str) -> Path:
    """Bar chart of mean ± std return per entry of ``results`` beside evaluation curves per algorithm."""
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(results)
    labels = ["data" if n == "behavior" else n for n in names]
    means = [results[n]["return_mean"] for n in names]
    stds = [results[n]["return_std"] for n in names]
    colors = ["#9e9e9e"] + [f"C{i}" for i in range(len(names) - 1)]
    bars.bar(labels, means, yerr=stds, capsize=6, color=colors)
    for x, mean in enumerate(means):
        bars.text(x, mean, f"{mean:.0f}", ha="center", va="bottom", fontsize=10)
    bars.set_ylabel("episode return (mean ± std)")
    bars.set_title("final return")
    for i, (algo, (steps, returns)) in enumerate(curves.items()):
        lines.plot(steps, returns, marker="o", color=f"C{i}", label=algo)
    if "behavior" in results:
        lines.axhline(results["behavior"]["return_mean"], color="#9e9e9e", ls="--", label="data (behaviour)")
    lines.set_xlabel("gradient steps")
    lines.set_ylabel("evaluation return")
    lines.set_title("learning curves")
    lines.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_learning_curve(steps, returns, stds, path: Path, title: str, target: float | None = None,
                        xlabel: str = "environment steps") -> Path:
    """Evaluation return (mean ± std band) against training steps, with an optional target line."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(steps, returns, marker="o", ms=3, color="C0", label="evaluation return")
    lower = [m - s for m, s in zip(returns, stds, strict=True)]
    upper = [m + s for m, s in zip(returns, stds, strict=True)]
    ax.fill_between(steps, lower, upper, color="C0", alpha=0.2)
    if target is not None:
        ax.axhline(target, color="#9e9e9e", ls="--", label=f"target {target:.0f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("return (mean ± std)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
