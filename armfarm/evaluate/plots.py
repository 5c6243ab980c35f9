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


def read_eval_curve(run_dir: str | Path) -> dict:
    """The evaluations of an ``armfarm train`` or ``train-online`` run directory (its ``eval.csv``):
    ``label`` (directory name and algorithm), ``steps``, ``mean``, ``std`` and ``normalized`` (None when
    the environment has no D4RL reference), and ``online`` (steps are environment steps)."""
    import csv
    import json

    run_dir = Path(run_dir)
    path = run_dir / "eval.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no eval.csv; train with --env (offline) so that the run is evaluated")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} holds no evaluations yet")
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    normalized = [r.get("eval/normalized", "") for r in rows]
    return {
        "label": f"{run_dir.name} ({config['algo']})" if "algo" in config else run_dir.name,
        "steps": [int(r["step"]) for r in rows],
        "mean": [float(r["eval/return_mean"]) for r in rows],
        "std": [float(r["eval/return_std"]) for r in rows],
        "normalized": None if "" in normalized else [float(v) for v in normalized],
        "online": "env" in config and "store" not in config,
    }


def plot_runs(run_dirs, path: Path, normalized: bool = False, title: str | None = None) -> Path:
    """Evaluation curves of several runs on one axes (mean ± std band of the return, or the D4RL-normalised
    score with ``normalized``), e.g. to compare algorithms trained on the same store."""
    curves = [read_eval_curve(d) for d in run_dirs]
    if not curves:
        raise ValueError("no run directories given")
    if normalized and any(c["normalized"] is None for c in curves):
        missing = [c["label"] for c in curves if c["normalized"] is None]
        raise ValueError(f"no normalised scores for {', '.join(missing)} (its environment has no D4RL reference)")
    if len({c["online"] for c in curves}) > 1:
        raise ValueError("cannot put online runs (environment steps) and offline runs (gradient steps) on one axis")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, c in enumerate(curves):
        ys = c["normalized"] if normalized else c["mean"]
        ax.plot(c["steps"], ys, marker="o", ms=3, color=f"C{i}", label=c["label"])
        if not normalized:
            low = [m - s for m, s in zip(c["mean"], c["std"], strict=True)]
            high = [m + s for m, s in zip(c["mean"], c["std"], strict=True)]
            ax.fill_between(c["steps"], low, high, color=f"C{i}", alpha=0.15)
    ax.set_xlabel("environment steps" if curves[0]["online"] else "gradient steps")
    ax.set_ylabel("D4RL-normalised score" if normalized else "return (mean ± std over episodes)")
    ax.set_title(title or "evaluation during training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_rounds(rounds: list[dict], behavior: float | None, path: Path, title: str) -> Path:
    """Return per farm round: each candidate's mean with its interval (filled when promoted), the live
    policy it was gated against (a step line), and the default behaviour's return (a dashed line)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    done = [r for r in rounds if (r.get("candidate") or {}).get("eval")]
    xs = [r["round"] for r in done]
    for r in done:
        e = r["candidate"]["eval"]
        color = "#1a7f37" if r.get("promoted") else "#9aa1ad"
        ax.errorbar(r["round"], e["return_mean"], yerr=[[e["return_mean"] - e["ci_low"]], [e["ci_high"] - e["return_mean"]]],
                    fmt="o", color=color, capsize=4, ms=8, mfc=color if r.get("promoted") else "white")
    if done:
        live = [r["baseline"]["eval"]["return_mean"] for r in done]
        ax.step(xs, live, where="mid", color="#e08a1e", lw=2, label="live policy it was gated against")
    if behavior is not None:
        ax.axhline(behavior, color="#5b6270", ls="--", label="default behaviour")
    ax.plot([], [], "o", color="#1a7f37", label="candidate, promoted")
    ax.plot([], [], "o", color="#9aa1ad", mfc="white", label="candidate, kept out")
    ax.set_xlabel("round")
    ax.set_ylabel("evaluation return (mean, t-interval)")
    ax.set_xticks(xs)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_instruction(report: dict, env, landmarks, path: Path) -> Path:
    """The maze (row 0 at the top, as landmarks are named), its landmarks, and the route the robot took
    following ``report`` (:func:`armfarm.language.instruct.follow_instruction`), each leg in its colour
    and each landmark marked reached (o) or not (x)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    inner = env.unwrapped
    maze_map, unit = np.asarray(inner.maze_map), float(inner._maze_unit)
    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    for i, j in zip(*np.nonzero(maze_map == 1), strict=True):
        x, y = inner.ij_to_xy((i, j))
        ax.add_patch(Rectangle((x - unit / 2, y - unit / 2), unit, unit, color="#444444"))
    for lm in landmarks:
        if lm.cell is not None:
            x, y = inner.ij_to_xy(lm.cell)
            ax.plot(x, y, "s", color="#bbbbbb", ms=6)
            ax.annotate(lm.name, (x, y), fontsize=7, color="#555555", xytext=(3, 3), textcoords="offset points")
    route = np.asarray(report["path"])
    start = 0
    for k, leg in enumerate(report["landmarks"]):
        stop = start + leg["steps"]
        ax.plot(route[start:stop + 1, 0], route[start:stop + 1, 1], color=f"C{k}", lw=1.2,
                label=f"{k + 1}. {leg['name']} ({'reached' if leg['reached'] else 'not reached'})")
        gx, gy = leg["goal_xy"]
        ax.plot(gx, gy, "o" if leg["reached"] else "x", color=f"C{k}", ms=11, mew=2.5, mfc="none")
        start = stop
    ax.plot(*route[0], "k^", ms=9, label="start")
    ax.set_xlim(-unit * 1.5, unit * (maze_map.shape[1] - 1.5))
    ax.set_ylim(-unit * 1.5, unit * (maze_map.shape[0] - 1.5))
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    mode = "with waypoints" if report.get("planner") else "direct"
    ax.set_title(f"{report['instruction']}\n({mode}: {'completed' if report['success'] else 'not completed'})",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
