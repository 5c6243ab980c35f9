"""Scoreboard: armfarm's offline algorithms (BC, CQL, IQL, TD3+BC, AWAC, ReBRAC, Cal-QL) beside d3rlpy 2.8.1's on the same locally built datasets.

    .venv/bin/python benchmarks/scores.py [--datasets hopper-medium,hopper-medium-replay]
        [--algos bc,cql,iql,td3bc] [--steps 5000] [--algo-steps cql=1000] [--seeds 0,1,2]
        [--eval-episodes 10] [--libs armfarm,d3rlpy] [--stores-dir runs/datasets] [--markdown BENCHMARKS.md]
        [--parallel] [--render-only] [--section scores]

For every dataset (built with ``armfarm.datasets.build_dataset`` into ``--stores-dir`` when missing, at the
recipe's default size, seed 0), algorithm and training seed, both libraries train for the same number of
gradient steps with their own default hyperparameters:

* armfarm: ``armfarm.train.train`` (what ``armfarm train`` runs), in this process.
* d3rlpy: ``benchmarks/_d3rlpy_scores.py`` in d3rlpy's own virtualenv (``benchmarks/d3rlpy_env.sh``),
  on the same transitions exported as a D4RL-layout ``.npz``; ``fit(n_steps=...)`` with logging off.

Both final policies are evaluated here by the same code (``armfarm.evaluate.evaluate_policy``: the
deterministic policy, ``--eval-episodes`` episodes seeded 100000, 100001, ...; d3rlpy's policy is its
``predict()`` network, exported as weights). Training seeds are 0, 1, 2 and nothing is tuned: each
library runs its defaults. Reported per cell: the D4RL-normalised score (mean ± std over seeds), the wall
time of one training run (data loading, network construction/compilation and all gradient steps, no
evaluation) and gradient steps per second over that wall time.

With ``--parallel`` the two libraries run at the same time, each in a child process pinned to its own core
with one compute thread, so that a 2-core machine does the scoreboard in about half the time and each wall
time is that of one core.

Every finished run is appended to ``benchmarks/_out/scores/results.jsonl`` at once (with the command that
made it) and skipped when the script runs again with the same settings, so an interrupted scoreboard resumes
where it stopped. The markdown table (with the machine, the commands and the published D4RL numbers for
context) replaces the ``--section`` block (default ``scores``) of ``--markdown``; ``--render-only`` writes
it from the results file without training anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _cpumeter import cpu_model  # noqa: E402

ROOT = HERE.parent
OUT = HERE / "_out" / "scores"
ALGOS = ("bc", "cql", "iql", "td3bc", "awac", "rebrac", "calql")
DEFAULT_ALGOS = ("bc", "cql", "iql", "td3bc")
NAMES = {"bc": "BC", "cql": "CQL", "iql": "IQL", "td3bc": "TD3+BC", "awac": "AWAC", "rebrac": "ReBRAC", "calql": "Cal-QL"}
EVAL_SEED = 100_000
HEADING = "## Scoreboard: armfarm vs d3rlpy 2.8.1 on locally built D4RL-style datasets"
COMMAND_ENV = "ARMFARM_SCORES_COMMAND"  # the user's command, recorded by the per-library children

# Published D4RL v2 normalised scores (IQL paper, Table 1), for context only: other data.
PUBLISHED = {
    "halfcheetah-medium": (42.6, 44.0, 48.3, 47.4),
    "hopper-medium": (52.9, 58.5, 59.3, 66.3),
    "walker2d-medium": (75.3, 72.5, 83.7, 78.3),
    "halfcheetah-medium-replay": (36.6, 45.5, 44.6, 44.2),
    "hopper-medium-replay": (18.1, 95.0, 60.9, 94.7),
    "walker2d-medium-replay": (26.0, 77.2, 81.8, 73.9),
    "halfcheetah-medium-expert": (55.2, 91.6, 90.7, 86.7),
    "hopper-medium-expert": (52.5, 105.4, 98.0, 91.5),
    "walker2d-medium-expert": (107.5, 108.8, 110.1, 109.6),
}
PUBLISHED_ORDER = ("bc", "cql", "td3bc", "iql")
# CORL's per-dataset D4RL numbers for algorithms the IQL paper lacks (ReBRAC paper / CORL tables); context only.
PUBLISHED_CORL = {("hopper-medium", "rebrac"): 102.3, ("hopper-medium-replay", "rebrac"): 95.0}


def published_score(dataset: str, algo: str) -> float | None:
    """The published D4RL score of ``algo`` on ``dataset`` (other data, 1M steps), where one is on record."""
    if algo in PUBLISHED_ORDER and dataset in PUBLISHED:
        return PUBLISHED[dataset][PUBLISHED_ORDER.index(algo)]
    return PUBLISHED_CORL.get((dataset, algo))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="hopper-medium,hopper-medium-replay")
    p.add_argument("--algos", default=",".join(DEFAULT_ALGOS))
    p.add_argument("--steps", type=int, default=5000, help="gradient steps per run (both libraries)")
    p.add_argument("--algo-steps", default="", help="per-algorithm overrides, e.g. cql=1000 (both libraries)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--libs", default="armfarm,d3rlpy")
    p.add_argument("--stores-dir", type=Path, default=ROOT / "runs" / "datasets")
    p.add_argument("--behavior-dir", type=Path, default=None, help="SAC behaviour run for medium datasets")
    p.add_argument("--d3rlpy-python", default=None, help="default: the venv made by benchmarks/d3rlpy_env.sh")
    p.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--results", type=Path, default=OUT / "results.jsonl")
    p.add_argument(
        "--parallel",
        action="store_true",
        help="run the two libraries at once, each pinned to its own core with one compute thread",
    )
    p.add_argument(
        "--section", default="scores", help="the <!-- SECTION:begin/end --> block of --markdown to replace"
    )
    p.add_argument(
        "--render-only", action="store_true", help="train nothing; write the table from the results file"
    )
    p.add_argument("--heading", default=HEADING, help="the table's heading line ('' for none)")
    p.add_argument("--no-markdown", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def machine() -> str:
    cpu = cpu_model()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import jax

    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, {mem:.1f} GiB, {platform.system()}; "
        f"jax {jax.__version__} ({jax.default_backend()}), Python {platform.python_version()}"
    )


# ------------------------------------------------------------------------------------ datasets


def ensure_dataset(name: str, stores_dir: Path, behavior_dir: Path | None) -> tuple[Path, Path, str]:
    """The store of ``name`` (built if missing), its D4RL-layout ``.npz`` for d3rlpy, and its env id."""
    from armfarm.data import EpisodeStore, TransitionDataset
    from armfarm.datasets import build_dataset, get_recipe

    store = stores_dir / name
    if not (store / "store.json").exists():
        print(f"[scores] building {name} into {store}", file=sys.stderr)
        build_dataset(name, store, seed=0, behavior_dir=behavior_dir)
    npz = OUT / f"{name}.npz"
    provenance = EpisodeStore(store).provenance.get("recipe", {})
    stamp = OUT / f"{name}.npz.json"
    if not npz.exists() or not stamp.exists() or json.loads(stamp.read_text()) != provenance:
        ds = TransitionDataset.from_store(store)
        OUT.mkdir(parents=True, exist_ok=True)
        np.savez(
            npz,
            observations=ds.observations,
            actions=ds.actions,
            rewards=ds.rewards,
            terminals=ds.terminals,
            timeouts=ds.timeouts,
        )
        stamp.write_text(json.dumps(provenance))
    return store, npz, get_recipe(name).env_id


# ------------------------------------------------------------------------------------ runs


def run_armfarm(algo: str, store: Path, steps: int, seed: int, run_dir: Path) -> tuple[dict, Path]:
    from armfarm.train import train

    summary = train(algo, store, run_dir, steps=steps, seed=seed, overwrite=True)
    return {
        "wall_s": summary["seconds"],
        "steps_per_s": steps / summary["seconds"],
        "loop_steps_per_s": summary["grad_steps_per_s"],
    }, run_dir / "policy.npz"


def run_d3rlpy(python: str, algo: str, npz: Path, steps: int, seed: int, run_dir: Path) -> tuple[dict, Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    weights = run_dir / "d3rlpy_policy.npz"
    cmd = [
        python,
        str(HERE / "_d3rlpy_scores.py"),
        str(npz),
        "--algo",
        algo,
        "--seed",
        str(seed),
        "--steps",
        str(steps),
        "--policy-out",
        str(weights),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=run_dir)
    (run_dir / "d3rlpy.log").write_text(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"d3rlpy {algo} seed {seed} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "wall_s": out["wall_s"],
        "steps_per_s": steps / out["wall_s"],
        "loop_steps_per_s": out["steps_per_s"],
        "batch_size": out["batch_size"],
    }, weights


def evaluate(lib: str, policy_path: Path, env_id: str, episodes: int) -> dict:
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.policy import NumpyPolicy

    if lib == "armfarm":
        policy = NumpyPolicy.load(policy_path)
    else:  # d3rlpy: relu MLP, tanh output, no observation scaler; Hopper/Walker/HalfCheetah act in [-1, 1]
        with np.load(policy_path) as z:
            n = len([k for k in z.files if k.startswith("weight_")])
            policy = NumpyPolicy([z[f"weight_{i}"] for i in range(n)], [z[f"bias_{i}"] for i in range(n)])
    result = evaluate_policy(policy, env_id, episodes=episodes, seed=EVAL_SEED)
    return {
        "return_mean": result.return_mean,
        "return_std": result.return_std,
        "normalized": result.normalized,
    }


# ------------------------------------------------------------------------------------ report


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cell(rows: list[dict]) -> dict | None:
    if not rows:
        return None
    scores = np.array([r["eval"]["normalized"] for r in rows])
    return {
        "n": len(rows),
        "mean": scores.mean(),
        "std": scores.std(),
        "wall": np.mean([r["wall_s"] for r in rows]),
        "sps": np.mean([r["steps_per_s"] for r in rows]),
        "steps": rows[0]["steps"],
    }


def shown(results: list[dict], args, datasets: list[str], steps_of: dict) -> list[dict]:
    """The results the table shows: this run's datasets, algorithms, budgets, seeds, evaluation and cores."""
    seeds = {int(x) for x in args.seeds.split(",") if x}
    return [
        r
        for r in results
        if r["dataset"] in datasets
        and r["seed"] in seeds
        and r["algo"] in steps_of
        and r["steps"] == steps_of[r["algo"]]
        and r["eval_episodes"] == args.eval_episodes
        and r.get("cores", 2) == run_cores(args)
    ]


def table(rows: list[dict], datasets: list[str], algos: list[str], steps_of: dict) -> str:
    lines = [
        "| dataset | algo | steps | armfarm score | d3rlpy score | armfarm wall s | d3rlpy wall s "
        "| armfarm steps/s | d3rlpy steps/s | seeds | published D4RL (other data) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|",
    ]
    for name in datasets:
        for algo in algos:
            cells = {
                lib: _cell(
                    [r for r in rows if r["dataset"] == name and r["algo"] == algo and r["lib"] == lib]
                )
                for lib in ("armfarm", "d3rlpy")
            }
            if not any(cells.values()):
                continue
            a, d = cells["armfarm"], cells["d3rlpy"]
            steps = steps_of[algo]

            def fmt(c, key, spec):
                return "–" if c is None else format(c[key], spec)

            def score(c):
                return "–" if c is None else f"{c['mean']:.1f} ± {c['std']:.1f}"

            published = published_score(name, algo)
            ref = "–" if published is None else f"{published:.1f}"
            seeds = "/".join(str(c["n"]) if c else "0" for c in (a, d))
            lines.append(
                f"| {name} | {NAMES[algo]} | {steps:,} "
                f"| {score(a)} | {score(d)} "
                f"| {fmt(a, 'wall', '.0f')} | {fmt(d, 'wall', '.0f')} | {fmt(a, 'sps', '.1f')} | {fmt(d, 'sps', '.1f')} "
                f"| {seeds} | {ref} |"
            )
    return "\n".join(lines)


def write_markdown(path: Path, body: str, section: str = "scores") -> None:
    """Replace the text between ``<!-- SECTION:begin -->`` and ``<!-- SECTION:end -->`` in ``path``
    (appending the section when it is not there yet)."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    block = f"{begin}\n{body}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def report(
    args, results: list[dict], datasets: list[str], algos: list[str], steps_of: dict, command: str
) -> str:
    rows = shown(results, args, datasets, steps_of)
    run_by = sorted({r["command"] for r in rows if "command" in r} - {command})
    commands = [f"Command: `{command}`"] + (
        ["The runs in the table were made by:", *(f"- `{c}`" for c in run_by)] if run_by else []
    )
    provenance = []
    for name in datasets:
        store = args.stores_dir / name
        if (store / "store.json").exists():
            from armfarm.data import EpisodeStore

            rec = EpisodeStore(store).provenance.get("recipe", {})
            behavior = rec.get("behavior", {})
            behavior = behavior[0] if isinstance(behavior, list) else behavior
            provenance.append(
                f"- `{name}`: {rec.get('transitions', '?'):,} transitions, {rec.get('episodes', '?')} episodes, "
                f"data return {rec.get('data_return_mean', float('nan')):.0f}; behaviour {behavior.get('type')}"
                + (
                    f" after {behavior['env_steps']:,} env steps, evaluated return {behavior['eval_return_mean']:.0f}"
                    f" (checkpoint sha256 {behavior['checkpoint_sha256'][:12]})"
                    if behavior.get("type") == "sac"
                    else ""
                )
            )
    heading = [args.heading, ""] if args.heading else []
    return "\n".join(
        [
            *heading,
            "**These datasets are D4RL-style, built by `armfarm datasets build`, not D4RL's own data** (Gymnasium v5",
            "environments, our own SAC behaviour policy, smaller sizes). The published D4RL column is context only:",
            "it comes from other data and 1M gradient steps.",
            "",
            f"Machine: {machine()}; d3rlpy in its own venv (benchmarks/d3rlpy_env.sh)."
            + (
                " With `--parallel` the two libraries ran at the same time, each pinned to its own core with one "
                "compute thread (XLA and PyTorch intra-op threads set to 1), so wall times compare one core each."
                if args.parallel
                else ""
            ),
            *commands,
            f"Score: D4RL-normalised return of the deterministic policy, {args.eval_episodes} evaluation episodes per "
            "seed, mean ± std over training seeds. Wall s: one training run (data loading, network construction or "
            "compilation, all gradient steps; no evaluation). Steps/s: gradient steps / wall s. Seeds: runs finished "
            "(armfarm/d3rlpy). Each library uses its own defaults (d3rlpy: BC batch 100 and lr 1e-3, no observation "
            "scaler anywhere).",
            "",
            table(rows, datasets, algos, steps_of),
            "",
            "Datasets:",
            *provenance,
        ]
    )


# ------------------------------------------------------------------------------------ main


def run_cores(args) -> int:
    """Cores each training run gets: one per library with ``--parallel``, else this process's affinity."""
    return 1 if args.parallel else len(os.sched_getaffinity(0))


ONE_THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` less ``option VALUE`` and ``option=VALUE``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


def run_parallel(argv: list[str], libs: list[str], command: str) -> None:
    """One child per library, each pinned to its own core; both append to the same results file."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < len(libs):
        raise SystemExit(f"--parallel needs {len(libs)} cores, this process may use {len(cpus)}")
    forwarded = [a for a in argv if a != "--parallel"]
    children = []
    for cpu, lib in zip(cpus, libs, strict=False):
        cmd = [sys.executable, str(Path(__file__).resolve()), *forwarded, "--libs", lib, "--no-markdown"]
        env = {**os.environ, **ONE_THREAD_ENV, COMMAND_ENV: command}
        children.append(
            subprocess.Popen(cmd, env=env, preexec_fn=lambda cpu=cpu: os.sched_setaffinity(0, {cpu}))
        )
    codes = [c.wait() for c in children]
    if any(codes):
        raise SystemExit(f"scoreboard children exited with {codes}")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = os.environ.get(COMMAND_ENV) or "python benchmarks/scores.py " + " ".join(
        shlex.quote(a) for a in argv
    )
    datasets = [d for d in args.datasets.split(",") if d]
    algos = [a for a in args.algos.split(",") if a]
    libs = [lib for lib in args.libs.split(",") if lib]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    per_algo = {k: int(v) for k, v in (kv.split("=") for kv in args.algo_steps.split(",") if kv)}
    steps_of = {algo: per_algo.get(algo, args.steps) for algo in algos}
    unknown = sorted(set(algos) - set(ALGOS)) + sorted(set(libs) - {"armfarm", "d3rlpy"})
    if unknown:
        raise SystemExit(f"unknown algos/libs {unknown}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    stores = {name: ensure_dataset(name, args.stores_dir, args.behavior_dir) for name in datasets}
    if args.render_only:
        libs = []
    elif args.parallel and len(libs) > 1:
        run_parallel(without_option(argv, "--libs"), libs, command)
        libs = []  # every run is in the results file now
    d3rlpy_python = args.d3rlpy_python
    if "d3rlpy" in libs and d3rlpy_python is None:
        d3rlpy_python = subprocess.run(
            ["bash", str(HERE / "d3rlpy_env.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
    cores = run_cores(args)
    results = load_results(args.results)
    for name, (store, npz, env_id) in stores.items():
        for algo in algos:
            steps = steps_of[algo]
            for seed in seeds:
                for lib in libs:
                    key = {
                        "lib": lib,
                        "dataset": name,
                        "algo": algo,
                        "seed": seed,
                        "steps": steps,
                        "eval_episodes": args.eval_episodes,
                    }
                    if any(
                        all(r.get(k) == v for k, v in key.items()) and r.get("cores", 2) == cores
                        for r in results
                    ):
                        continue
                    run_dir = OUT / "runs" / f"{lib}-{name}-{algo}-s{seed}-n{steps}-c{cores}"
                    tick = time.perf_counter()
                    if lib == "armfarm":
                        timing, policy = run_armfarm(algo, store, steps, seed, run_dir)
                    else:
                        timing, policy = run_d3rlpy(d3rlpy_python, algo, npz, steps, seed, run_dir)
                    row = {
                        **key,
                        "cores": cores,
                        "command": command,
                        **timing,
                        "eval": evaluate(lib, policy, env_id, args.eval_episodes),
                        "total_s": time.perf_counter() - tick,
                    }
                    results.append(row)
                    with args.results.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(
                        f"[scores] {lib} {name} {algo} seed {seed}: normalized {row['eval']['normalized']:.1f}, "
                        f"wall {row['wall_s']:.0f}s ({row['steps_per_s']:.1f} steps/s)",
                        file=sys.stderr,
                    )
                    if not args.no_markdown:
                        body = report(args, results, datasets, algos, steps_of, command)
                        write_markdown(args.markdown, body, args.section)
    if args.no_markdown:
        return 0
    results = load_results(args.results)
    body = report(args, results, datasets, algos, steps_of, command)
    write_markdown(args.markdown, body, args.section)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
