"""The offline learner behind ``armfarm train``: data in, a run directory out.

A run directory holds everything needed to inspect, resume or publish a run::

    RUN_DIR/config.json          algorithm, its full config, data, seed and chunking
    RUN_DIR/metrics.csv          training metrics, one row per fused call of K gradient steps
    RUN_DIR/eval.csv             evaluation returns over training (when an env is given)
    RUN_DIR/tb/                  the same metrics as TensorBoard events
    RUN_DIR/checkpoints/step_N/  resumable checkpoints (params, optimiser state, RNG, sampler state)
    RUN_DIR/policy.npz           the final policy, runnable with NumPy alone
    RUN_DIR/summary.json         algo, steps, seconds, grad_steps_per_s and the final evaluation

Training is deterministic for a seed: batches come from ``numpy.random.default_rng(seed)`` and
every gradient step is a pure JAX function. A resumed run continues bit-for-bit as if it had never
stopped, because checkpoints also hold the batch sampler's state and chunk boundaries are fixed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from armfarm import __version__
from armfarm.algos.common import (
    DatasetStats,
    latest_checkpoint,
    load_checkpoint,
    make_train_fn,
    run_train_call,
    save_checkpoint,
)
from armfarm.algos.registry import get_algorithm
from armfarm.data import EpisodeStore, TransitionDataset
from armfarm.durable import write_atomic
from armfarm.evaluate.rollouts import EvalResult, evaluate_policy

DEFAULT_STEPS = 100_000
DEFAULT_STEPS_PER_CALL = 250


def coerce_overrides(config_cls, overrides: dict) -> dict:
    """Check config overrides against the dataclass fields and convert CLI strings to field types."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    coerced = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"{config_cls.__name__} has no field {key!r}; fields are: {', '.join(sorted(fields))}")
        default = getattr(config_cls(), key)
        if isinstance(value, str):
            if isinstance(default, bool):
                value = value.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            elif isinstance(default, tuple):
                value = tuple(int(v) for v in value.replace("(", "").replace(")", "").split(",") if v.strip())
        coerced[key] = value
    return coerced


class MetricsLog:
    """CSV + TensorBoard logging of namespaced metrics (``train/critic_loss``, ``eval/return_mean``)."""

    def __init__(self, run_dir: Path):
        from tensorboardX import SummaryWriter

        self.run_dir = run_dir
        self.writer = SummaryWriter(str(run_dir / "tb"))

    def _append(self, name: str, row: dict) -> None:
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def train(self, step: int, wall: float, metrics: dict) -> None:
        row = {"step": step, "wall_s": round(wall, 3)}
        row.update({f"train/{k}": float(v) for k, v in sorted(metrics.items())})
        self._append("metrics.csv", row)
        for key, value in row.items():
            if key.startswith("train/"):
                self.writer.add_scalar(key, value, step)

    def eval(self, step: int, result: EvalResult, extra: dict | None = None) -> None:
        row = {"step": step, "eval/return_mean": result.return_mean, "eval/return_std": result.return_std,
               "eval/normalized": "" if result.normalized is None else result.normalized, **(extra or {})}
        self._append("eval.csv", row)
        self.writer.add_scalar("eval/return_mean", result.return_mean, step)
        if result.normalized is not None:
            self.writer.add_scalar("eval/normalized", result.normalized, step)

    def drop_after(self, step: int) -> None:
        """Forget the CSV rows logged after ``step``: a run resumed from a checkpoint at ``step`` logs
        them again."""
        for name in ("metrics.csv", "eval.csv"):
            path = self.run_dir / name
            if not path.exists():
                continue
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                fields, rows = reader.fieldnames, [r for r in reader if int(r["step"]) <= step]
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
            write_atomic(path, lambda f, text=out.getvalue(): f.write(text.encode()))

    def close(self) -> None:
        self.writer.close()


def prepare_run_dir(run_dir: Path, keep: bool, overwrite: bool) -> None:
    """Create ``run_dir``, or keep it (``keep``: a run resumes there), or replace the run it holds.

    A run is replaced only with ``overwrite``; a directory that is not a run directory never is.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir} exists and is not a directory; choose another --out")
    if run_dir.exists() and any(run_dir.iterdir()) and not keep:
        if not (run_dir / "config.json").exists():
            raise FileExistsError(f"{run_dir} exists and is not an armfarm run directory; choose another --out")
        if not overwrite:
            raise FileExistsError(
                f"{run_dir} already holds a run; pass --resume to continue it or --overwrite to replace it"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def train(
    algo_name: str,
    store_path: str | Path,
    out_dir: str | Path,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    env_id: str | None = None,
    eval_episodes: int = 10,
    eval_every: int | None = None,
    checkpoint_every: int | None = None,
    steps_per_call: int = DEFAULT_STEPS_PER_CALL,
    config_overrides: dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
    dataset: TransitionDataset | None = None,
    on_progress: Callable[[int, dict], None] | None = None,
    on_eval: Callable[[int, EvalResult], None] | None = None,
) -> dict:
    """Train ``algo_name`` on the store at ``store_path`` for ``steps`` gradient steps.

    ``eval_every`` (default: five evaluations over the run when ``env_id`` is given) and
    ``checkpoint_every`` (default: five checkpoints) are in gradient steps. With ``resume=True``,
    training continues from the latest complete checkpoint in ``out_dir`` (and starts afresh when there
    is none); a run already in ``out_dir`` is otherwise an error, unless ``overwrite=True`` replaces it. ``on_progress(step, metrics)`` is
    called after every fused call. Returns the summary, also written to ``out_dir/summary.json``.
    """
    started = time.perf_counter()
    if steps < 1 or steps_per_call < 1:
        raise ValueError(f"steps and steps_per_call must be >= 1, got {steps} and {steps_per_call}")
    algo = get_algorithm(algo_name)
    if algo.online:
        raise ValueError(f"{algo.name} learns online from an environment, not from a store; use "
                         f"`armfarm train-online {algo.name} ENV_ID --out RUN_DIR`")
    config = algo.config_cls(**coerce_overrides(algo.config_cls, config_overrides or {}))
    run_dir = Path(out_dir)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    prepare_run_dir(run_dir, checkpoint is not None, overwrite or resume)

    data = dataset if dataset is not None else TransitionDataset.from_store(store_path)
    spec = EpisodeStore(store_path).spec
    bounds = (spec.action.low, spec.action.high) if spec is not None else (None, None)
    stats = DatasetStats.from_dataset(data, action_low=bounds[0], action_high=bounds[1])
    steps_per_call = min(steps_per_call, steps)
    eval_every = eval_every or (max(steps // 5, steps_per_call) if env_id else None)
    checkpoint_every = checkpoint_every or max(steps // 5, steps_per_call)

    sampler = np.random.default_rng(seed)
    state, step = algo.init(config, stats, seed), 0
    if checkpoint is not None:
        restored = load_checkpoint(checkpoint)
        if restored.algo_name != algo.name:
            raise ValueError(f"{checkpoint} is a {restored.algo_name} checkpoint, not {algo.name}")
        state, stats, step = restored.state, restored.stats, restored.step
        sampler.bit_generator.state = restored.extra["sampler_state"]
        steps_per_call = restored.extra["steps_per_call"]

    (run_dir / "config.json").write_text(json.dumps({
        "algo": algo.name, "config": dataclasses.asdict(config), "store": str(store_path), "seed": seed,
        "steps": steps, "steps_per_call": steps_per_call, "env": env_id, "eval_episodes": eval_episodes,
        "dataset": {"transitions": int(data.size), "episodes": int(len(data.episode_starts))},
        "armfarm_version": __version__,
    }, indent=2, default=str))

    train_fn = make_train_fn(algo, config)
    log = MetricsLog(run_dir)
    if checkpoint is not None:
        log.drop_after(step)

    def export():
        policy = algo.export_policy(config, state)
        policy.obs_keys = list(stats.obs_keys) if stats.obs_keys else None
        return policy

    def evaluate(at_step: int) -> EvalResult:
        result = evaluate_policy(export(), env_id, episodes=eval_episodes, seed=10_000 + seed)
        log.eval(at_step, result)
        if on_eval is not None:
            on_eval(at_step, result)
        return result

    train_seconds, trained, last_eval = 0.0, 0, None
    try:
        while step < steps:
            k = min(steps_per_call, steps - step)
            batches = data.sample_stacked(sampler, k, config.batch_size)
            state, metrics, seconds = run_train_call(train_fn, state, batches, step + k)
            train_seconds += seconds
            step += k
            trained += k
            log.train(step, time.perf_counter() - started, metrics)
            if on_progress is not None:
                on_progress(step, metrics)
            if step % checkpoint_every == 0 or step == steps:
                save_checkpoint(run_dir / "checkpoints" / f"step_{step}", algo.name, config, state, stats,
                                {"sampler_state": sampler.bit_generator.state, "steps_per_call": steps_per_call})
            if env_id and eval_every and (step % eval_every == 0 or step == steps):
                last_eval = evaluate(step)
    finally:
        log.close()

    export().save(run_dir / "policy.npz")
    summary = {
        "algo": algo.name, "steps": steps, "seed": seed,
        "seconds": round(time.perf_counter() - started, 3),
        "train_seconds": round(train_seconds, 3),
        "grad_steps_per_s": round(trained / train_seconds, 2) if train_seconds > 0 else None,
        "dataset": {"store": str(store_path), "transitions": int(data.size)},
    }
    if env_id:
        if last_eval is None:
            last_eval = evaluate(step)
        summary["eval"] = {"env_id": env_id, "episodes": eval_episodes, "return_mean": last_eval.return_mean,
                           "return_std": last_eval.return_std, "normalized": last_eval.normalized}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
