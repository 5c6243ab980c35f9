"""Sweeps: one offline algorithm over a grid of config values x seeds, resumable, locally or on Ray.

Layout of a sweep directory::

    SWEEP_DIR/sweep.json                      what was asked (algo, store, steps, grid, seeds, env)
    SWEEP_DIR/trials/<config>/seed_<s>/       one ordinary run directory per trial (``armfarm train``'s)
    SWEEP_DIR/results.json, results.md        per configuration: mean, std and a bootstrap 95% interval over
                                              seeds of the final evaluation return; the best configuration
    SWEEP_DIR/curves.png                      every configuration's evaluation curve (mean over seeds, +- std)

A trial is :func:`armfarm.train.train` with that configuration and seed, so a trial's numbers are those of
``armfarm train ALGO STORE --seed s --set ...`` (bit for bit on the same machine), whether it ran here or
as a Ray task. A trial with a ``summary.json`` is finished and never rerun; one interrupted mid-way resumes
from its last checkpoint. On Ray each trial is a task with ``num_cpus`` CPUs (and ``num_gpus``), retried
``max_retries`` times if its worker dies; a retry resumes the trial's run directory, which therefore has to
be on a filesystem the workers share (on one machine, any directory).

Ray Tune was not used: its trial runner, checkpoint and result formats would sit beside armfarm's own run
directories (which already resume bit-exactly), and nothing here searches adaptively. A grid of
independent, retried tasks is what this needs.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from armfarm.durable import write_json

SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Trial:
    """One configuration (``overrides``, strings as on the command line) and one seed."""

    config_name: str
    overrides: dict[str, str]
    seed: int

    def run_dir(self, sweep_dir: Path) -> Path:
        return Path(sweep_dir) / "trials" / self.config_name / f"seed_{self.seed}"


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,5"`` -> [0, 2, 5]; ranges and lists mix (``"0-2,7"``)."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ValueError(f"seeds: {part!r} is not a seed or a range like 0-4")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise ValueError(f"seeds: the range {part!r} is empty")
        seeds.extend(range(low, high + 1))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: need distinct seeds, got {text!r}")
    return seeds


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """``["actor_lr=1e-4,3e-4", "hidden=64,64|256,256"]`` -> ``{key: [values]}``. Values are separated by
    commas, or by ``|`` when a value itself holds commas (tuples)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(f"--grid takes KEY=V1,V2 (or KEY=V1|V2 for values with commas), got {spec!r}")
        if key in grid:
            raise ValueError(f"--grid names {key!r} twice")
        items = [v.strip() for v in values.split("|" if "|" in values else ",")]
        if any(not v for v in items) or len(set(items)) != len(items):
            raise ValueError(f"--grid {key}: values must be distinct and non-empty, got {values!r}")
        grid[key] = items
    return grid


def config_name(overrides: dict[str, str]) -> str:
    """A directory name for a configuration: ``actor_lr=0.001__tau=0.01`` (``default`` for no overrides)."""
    if not overrides:
        return "default"
    return "__".join(f"{k}={re.sub(r'[^A-Za-z0-9._+-]', '_', v)}" for k, v in overrides.items())


def make_trials(algo_name: str, grid: dict[str, list[str]], seeds: list[int],
                settings: dict[str, str] | None = None) -> list[Trial]:
    """The grid's configurations (in the order given) x seeds, each with the fixed ``settings`` too, and
    each checked against the algorithm's config before anything runs (a bad key or value is an error
    naming it). A configuration's name comes from its grid values only."""
    from armfarm.algos import get_algorithm
    from armfarm.algos.core.config import config_from_dict

    algo = get_algorithm(algo_name)
    if not algo.offline or algo.online:
        raise ValueError(f"{algo.name} does not learn from a store; a sweep trains offline algorithms")
    settings = dict(settings or {})
    both = sorted(set(settings) & set(grid))
    if both:
        raise ValueError(f"{', '.join(both)}: set both as a fixed setting and on the grid")
    keys = list(grid)
    trials, names = [], set()
    for values in itertools.product(*(grid[k] for k in keys)):
        varied = dict(zip(keys, values, strict=True))
        overrides = {**settings, **varied}
        config_from_dict(algo.config_cls, overrides)
        name = config_name(varied)
        if name in names:
            raise ValueError(f"two configurations share the directory name {name!r}; use other values")
        names.add(name)
        trials.extend(Trial(name, overrides, seed) for seed in seeds)
    return trials


def unfinished(sweep_dir: str | Path, trials: list[Trial]) -> list[Trial]:
    """The trials of ``trials`` that have no ``summary.json`` in ``sweep_dir`` yet."""
    return [t for t in trials if not (t.run_dir(Path(sweep_dir)) / "summary.json").exists()]


def run_trial(algo_name: str, store: str, sweep_dir: str, trial: Trial, steps: int, env_id: str | None,
              eval_episodes: int, eval_every: int | None, dataset=None) -> dict:
    """Train one trial (resuming it if a previous attempt left a checkpoint); returns its summary."""
    from armfarm.runs import RunDir
    from armfarm.train import train

    run = RunDir(trial.run_dir(Path(sweep_dir)))
    done = run.read_summary()
    if done is not None:
        return done
    return train(algo_name, store, run.path, steps=steps, seed=trial.seed, env_id=env_id, eval_episodes=eval_episodes,
                 eval_every=eval_every, config_overrides=trial.overrides, resume=True, dataset=dataset)


def _record(sweep_dir: Path, request: dict) -> None:
    """Write ``sweep.json``, or check that the sweep already in ``sweep_dir`` asked for the same thing."""
    path = sweep_dir / SWEEP_FILE
    if path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in request if before.get(k) != request[k])
        if changed:
            raise ValueError(f"{sweep_dir} holds another sweep (it differs in {', '.join(changed)}); "
                             "resume it with the same arguments or choose another --out")
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, request)


def run_sweep(
    algo_name: str,
    store: str | Path,
    out_dir: str | Path,
    seeds: list[int],
    grid: dict[str, list[str]],
    steps: int,
    env_id: str | None = None,
    eval_episodes: int = 10,
    eval_every: int | None = None,
    ray_address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_retries: int = 2,
    settings: dict[str, str] | None = None,
    on_trial: Callable[[Trial, dict], None] | None = None,
) -> dict:
    """Run every unfinished trial of the sweep (here, one after another, or as Ray tasks when
    ``ray_address`` is given: ``local`` starts a Ray instance on this machine, anything else is passed to
    ``ray.init``), then write and return the results (:func:`summarize`). ``settings`` are fixed config
    overrides applied to every trial."""
    from armfarm.algos import get_algorithm

    sweep_dir = Path(out_dir)
    store = str(Path(store).resolve())
    trials = make_trials(algo_name, grid, seeds, settings)
    request = {"algo": get_algorithm(algo_name).name, "store": store, "steps": steps, "grid": grid,
               "settings": dict(settings or {}), "seeds": seeds,
               "env": env_id, "eval_episodes": eval_episodes, "eval_every": eval_every}
    _record(sweep_dir, request)
    todo = unfinished(sweep_dir, trials)
    started = time.perf_counter()
    args = (steps, env_id, eval_episodes, eval_every)
    if ray_address is None:
        _run_here(algo_name, store, sweep_dir, todo, args, on_trial)
    else:
        from armfarm.launch.ray_cluster import run_tasks

        run_tasks(run_trial, [(algo_name, store, str(sweep_dir), t, *args) for t in todo], ray_address,
                  num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries,
                  on_result=None if on_trial is None else lambda i, summary: on_trial(todo[i], summary))
    results = summarize(sweep_dir)
    results["ran"] = {"trials": len(todo), "skipped": len(trials) - len(todo), "seconds": round(time.perf_counter() - started, 3),
                      "ray": ray_address}
    write_json(sweep_dir / "results.json", results)
    return results


def _run_here(algo_name: str, store: str, sweep_dir: Path, todo: list[Trial], args: tuple,
              on_trial: Callable[[Trial, dict], None] | None) -> None:
    """Trials one after another in this process, loading the store once per configuration (a
    configuration's batch columns, e.g. Monte-Carlo returns, depend on its values)."""
    from armfarm.data import TransitionDataset

    for _, group in itertools.groupby(todo, key=lambda t: t.config_name):
        data = None
        for trial in group:
            data = data if data is not None else TransitionDataset.from_store(store)
            summary = run_trial(algo_name, store, str(sweep_dir), trial, *args, dataset=data)
            if on_trial is not None:
                on_trial(trial, summary)


def summarize(sweep_dir: str | Path) -> dict:
    """Read every finished trial of ``sweep_dir`` and write ``results.md`` and ``curves.png``.

    Per configuration: the seeds finished, and (with an evaluation environment) the mean, std and a
    percentile-bootstrap 95% interval over seeds of the final evaluation return. ``best`` is the
    configuration with the highest mean (None without evaluations)."""
    from armfarm.runs import RunDir
    from armfarm.train import bootstrap_ci

    sweep_dir = Path(sweep_dir)
    request = json.loads((sweep_dir / SWEEP_FILE).read_text())
    trials = make_trials(request["algo"], request["grid"], request["seeds"], request["settings"])
    configs: dict[str, dict[str, Any]] = {}
    for trial in trials:
        entry = configs.setdefault(trial.config_name, {"overrides": trial.overrides, "seeds": [], "returns": [],
                                                       "runs": []})
        summary = RunDir(trial.run_dir(sweep_dir)).read_summary()
        if summary is None:
            continue
        entry["seeds"].append(trial.seed)
        entry["runs"].append(str(trial.run_dir(sweep_dir)))
        if "eval" in summary:
            entry["returns"].append(float(summary["eval"]["return_mean"]))
    for entry in configs.values():
        r = entry["returns"]
        entry["return_mean"] = float(np.mean(r)) if r else None
        entry["return_std"] = float(np.std(r)) if r else None
        entry["return_ci95"] = bootstrap_ci(r) if len(r) >= 2 else None
    ranked = [n for n in configs if configs[n]["return_mean"] is not None]
    best = max(ranked, key=lambda n: configs[n]["return_mean"]) if ranked else None
    results = {**request, "configs": configs, "best": best,
               "best_overrides": configs[best]["overrides"] if best else None,
               "finished": sum(len(c["seeds"]) for c in configs.values()), "trials": len(trials)}
    (sweep_dir / "results.md").write_text(markdown_table(results))
    if plot_curves(sweep_dir, results):
        results["figure"] = str(sweep_dir / "curves.png")
    return results


def markdown_table(results: dict) -> str:
    """The results as a Markdown table, best configuration first marked."""
    lines = [f"# Sweep: {results['algo']} on {results['store']}, {results['steps']} steps",
             "", "| configuration | seeds | return (mean ± std) | 95% CI |", "|---|---:|---:|---:|"]
    for name, c in results["configs"].items():
        ret = "–" if c["return_mean"] is None else f"{c['return_mean']:.1f} ± {c['return_std']:.1f}"
        ci = "–" if not c["return_ci95"] else f"{c['return_ci95'][0]:.1f} to {c['return_ci95'][1]:.1f}"
        mark = " **(best)**" if name == results["best"] else ""
        lines.append(f"| `{name}`{mark} | {len(c['seeds'])}/{len(results['seeds'])} | {ret} | {ci} |")
    if results["best"] is None:
        lines += ["", "No evaluation returns: pass --env ENV_ID to rank the configurations."]
    return "\n".join(lines) + "\n"


def _eval_curve(run_dir: Path) -> dict[int, float]:
    import csv

    from armfarm.runs import EVAL_FILE

    path = run_dir / EVAL_FILE
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {int(row["step"]): float(row["eval/return_mean"]) for row in csv.DictReader(f)
                if row.get("eval/return_mean") not in (None, "")}


def plot_curves(sweep_dir: Path, results: dict) -> bool:
    """``curves.png``: evaluation return against gradient steps, one line per configuration (mean over its
    seeds at the steps all of them reached, shaded +- std). False when there are no evaluations."""
    curves = {}
    for name, c in results["configs"].items():
        per_seed = [_eval_curve(Path(r)) for r in c["runs"]]
        steps = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
        if steps:
            values = np.array([[p[s] for s in steps] for p in per_seed])
            curves[name] = (steps, values.mean(0), values.std(0))
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, (steps, mean, std) in curves.items():
        line, = ax.plot(steps, mean, marker="o", ms=3, label=name + (" (best)" if name == results["best"] else ""))
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{results['algo']} sweep ({len(results['seeds'])} seeds, ± std)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(sweep_dir / "curves.png")
    plt.close(fig)
    return True
