"""The offline learner behind ``armfarm train``: data in, a run directory out.

It writes a run directory (:class:`armfarm.runs.RunDir`: config, metrics, TensorBoard events,
checkpoints, ``policy.npz`` and ``summary.json``).

Training is deterministic for a seed: batches come from ``numpy.random.default_rng(seed)`` and
every gradient step is a pure JAX function. A resumed run continues bit-for-bit as if it had never
stopped, because checkpoints also hold the batch sampler's state and chunk boundaries are fixed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from armfarm import __version__
from armfarm.algos import (
    DatasetStats,
    check_fits,
    config_from_dict,
    get_algorithm,
    load_checkpoint,
    make_train_fn,
    run_train_call,
    save_checkpoint,
)
from armfarm.algos.core.fused import scan_updates
from armfarm.algos.core.goals import batch_source
from armfarm.data import EpisodeStore, FrameSampler, TransitionDataset
from armfarm.durable import write_json
from armfarm.evaluate.rollouts import EvalResult, evaluate_policy
from armfarm.goals.tasks import evaluate_goal_tasks
from armfarm.runs import RunDir, eval_block

DEFAULT_STEPS = 100_000
DEFAULT_STEPS_PER_CALL = 250


class TrainingStopped(Exception):
    """Training was asked to stop (:func:`train`'s ``stop``); a checkpoint at ``step`` holds where it was."""

    def __init__(self, step: int):
        super().__init__(f"training stopped at step {step}; resume continues from its checkpoint")
        self.step = step


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
    init_from: str | Path | None = None,
    stop: threading.Event | None = None,
) -> dict:
    """Train ``algo_name`` on the store at ``store_path`` for ``steps`` gradient steps.

    ``init_from`` warm-starts a new run from a checkpoint of the same algorithm and network shape (its
    parameters, optimiser state and normalisation; the step count restarts at 0), as the farm does from
    the live policy. ``stop``, once set, ends training after the current fused call with a checkpoint
    there, raising :class:`TrainingStopped`; the run resumes from it with ``resume=True``.

    A goal-conditioned algorithm (``gcbc``, ``gciql``, ``gcivl``) is evaluated once, at the end, on
    ``env_id``'s evaluation tasks (success rates, ``summary["goal_eval"]``) rather than by return.

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
    if not algo.offline:
        raise ValueError(f"{algo.name} evaluates policies rather than learning one; use `armfarm ope STORE RUN_DIR...`")
    config = config_from_dict(algo.config_cls, config_overrides or {})
    goal_env = env_id if algo.goal_conditioned else None  # evaluated on its tasks at the end, not by return
    env_id = None if goal_env else env_id
    run = RunDir(out_dir)
    checkpoint = run.prepare(resume, overwrite)

    data = dataset if dataset is not None else load_training_data(algo, config, store_path)
    spec = EpisodeStore(store_path).spec
    bounds = (spec.action.low, spec.action.high) if spec is not None else (None, None)
    stats = DatasetStats.from_dataset(data, action_low=bounds[0], action_high=bounds[1])
    config, data = batch_source(algo, config, data, spec)
    steps_per_call = min(steps_per_call, steps)
    eval_every = eval_every or (max(steps // 5, steps_per_call) if env_id else None)
    checkpoint_every = checkpoint_every or max(steps // 5, steps_per_call)

    sampler = np.random.default_rng(seed)
    state, step = algo.init(config, stats, seed), 0
    if checkpoint is None and init_from is not None:
        warm = load_checkpoint(init_from)
        if warm.algo_name != algo.name or warm.config != config:
            raise ValueError(f"cannot warm-start {algo.name} from {init_from}: it is a {warm.algo_name} checkpoint "
                             "with another config")
        state, stats = dict(warm.state), warm.stats
        state["step"] = jnp.zeros_like(state["step"])
    if checkpoint is not None:
        restored = load_checkpoint(checkpoint)
        if restored.algo_name != algo.name:
            raise ValueError(f"{checkpoint} is a {restored.algo_name} checkpoint, not {algo.name}")
        state, stats, step = restored.state, restored.stats, restored.step
        sampler.bit_generator.state = restored.extra["sampler_state"]
        steps_per_call = restored.extra["steps_per_call"]

    run.write_config({
        "algo": algo.name, "config": dataclasses.asdict(config), "store": str(store_path), "seed": seed,
        "steps": steps, "steps_per_call": steps_per_call, "env": goal_env or env_id, "eval_episodes": eval_episodes,
        "init_from": None if init_from is None else str(init_from),
        "dataset": {"transitions": int(data.size), "episodes": int(len(data.episode_starts))},
        "armfarm_version": __version__,
    })

    train_fn = make_train_fn(algo, config)
    log = run.metrics()
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
            stopping = stop is not None and stop.is_set() and step < steps
            if step % checkpoint_every == 0 or step == steps or stopping:
                save_checkpoint(run.checkpoint_dir(step), algo.name, config, state, stats,
                                {"sampler_state": sampler.bit_generator.state, "steps_per_call": steps_per_call})
            if stopping:
                raise TrainingStopped(step)
            if env_id and eval_every and (step % eval_every == 0 or step == steps):
                last_eval = evaluate(step)
    finally:
        log.close()

    export().save(run.policy_path)
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
        summary["eval"] = eval_block(last_eval)
    if goal_env:
        summary["goal_eval"] = evaluate_goal_tasks(export(), goal_env, episodes=eval_episodes, seed=10_000 + seed)
    run.write_summary(summary)
    return summary


def load_training_data(algo: Any, config: Any, store_path: str | Path) -> TransitionDataset | FrameSampler:
    """What ``algo`` trains on from the store: its transitions as float32 arrays, or, for a store of
    ``uint8`` images, a :class:`FrameSampler` that keeps the frames as they are (stacking
    ``config.frame_stack`` of them). Raises ``ValueError`` when the algorithm cannot take images."""
    spec = EpisodeStore(store_path).spec
    if spec is not None:
        check_fits(algo, spec, str(store_path))
    if spec is not None and spec.obs_keys is None and spec.observation.is_image:
        return FrameSampler.from_store(store_path, frame_stack=getattr(config, "frame_stack", 1))
    return TransitionDataset.from_store(store_path)


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda leaf: leaf[i], tree)


def bootstrap_ci(values: list[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> list[float]:
    """A percentile bootstrap confidence interval of the mean of ``values`` (Efron & Tibshirani 1993)."""
    values = np.asarray(values, np.float64)
    means = np.random.default_rng(seed).choice(values, (resamples, len(values))).mean(axis=1)
    return [float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))]


def train_seeds(
    algo_name: str,
    store_path: str | Path,
    out_dir: str | Path,
    seeds: list[int],
    steps: int = DEFAULT_STEPS,
    vectorize: str | None = None,
    env_id: str | None = None,
    eval_episodes: int = 10,
    steps_per_call: int = DEFAULT_STEPS_PER_CALL,
    config_overrides: dict | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``algo_name`` once per seed on one load of the store; seed ``s`` gets ``OUT/seed_<s>/``, a run
    directory of its own (config, metrics, checkpoints, ``policy.npz``, summary), and ``OUT/summary.json``
    holds the mean, std and a bootstrap 95% interval over seeds of the final evaluation return.

    ``vectorize="vmap"`` trains every seed in one compiled call: the agent states are stacked and
    :func:`jax.vmap` runs K fused updates of all of them, each on its own batches (those its single run
    draws). That fills an accelerator that one small network leaves idle, but XLA:CPU orders the batched
    matrix products' sums differently, so results equal the single runs only to float tolerance.
    ``"sequential"`` runs :func:`train` for each seed in turn: bit-identical to training that seed alone.
    The default is ``vmap`` on an accelerator and ``sequential`` on CPU. Neither mode resumes mid-way.
    """
    if len(set(seeds)) != len(seeds) or not seeds or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative ints, got {seeds}")
    vectorize = vectorize or ("sequential" if jax.default_backend() == "cpu" else "vmap")
    if vectorize not in ("vmap", "sequential"):
        raise ValueError(f"vectorize must be 'vmap' or 'sequential', got {vectorize!r}")
    out = Path(out_dir)
    started = time.perf_counter()
    data = load_training_data(get_algorithm(algo_name), config_from_dict(
        get_algorithm(algo_name).config_cls, config_overrides or {}), store_path)
    common = dict(steps=steps, env_id=env_id, eval_episodes=eval_episodes, steps_per_call=steps_per_call,
                  config_overrides=config_overrides, overwrite=overwrite, dataset=data)
    if vectorize == "sequential":
        summaries = []
        for i, seed in enumerate(seeds):
            summaries.append(train(algo_name, store_path, out / f"seed_{seed}", seed=seed, **common,
                                   on_progress=None if on_progress is None else
                                   lambda step, m, i=i: on_progress(i * steps + step, m)))
    else:
        summaries = _train_vmapped(algo_name, store_path, out, seeds, data, on_progress=on_progress, **{
            k: v for k, v in common.items() if k != "dataset"})
    returns = [s["eval"]["return_mean"] for s in summaries if "eval" in s]
    summary = {"algo": summaries[0]["algo"], "seeds": seeds, "steps": steps, "vectorize": vectorize,
               "seconds": round(time.perf_counter() - started, 3),
               "runs": [str(out / f"seed_{s}") for s in seeds]}
    if returns:
        summary["eval"] = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                           "return_ci95": bootstrap_ci(returns), "returns": returns}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    return summary


def _train_vmapped(algo_name, store_path, out: Path, seeds: list[int], data, steps: int, env_id, eval_episodes: int,
                   steps_per_call: int, config_overrides, overwrite: bool, on_progress) -> list[dict]:
    """The ``vmap`` mode of :func:`train_seeds`."""
    algo = get_algorithm(algo_name)
    if not algo.offline:
        raise ValueError(f"{algo.name} is not trained from a store")
    config = config_from_dict(algo.config_cls, config_overrides or {})
    spec = EpisodeStore(store_path).spec
    bounds = (spec.action.low, spec.action.high) if spec is not None else (None, None)
    stats = DatasetStats.from_dataset(data, action_low=bounds[0], action_high=bounds[1])
    config, data = batch_source(algo, config, data, spec)
    runs = [RunDir(out / f"seed_{s}") for s in seeds]
    for run, seed in zip(runs, seeds, strict=True):
        run.prepare(False, overwrite)
        run.write_config({"algo": algo.name, "config": dataclasses.asdict(config), "store": str(store_path),
                          "seed": seed, "steps": steps, "steps_per_call": steps_per_call, "env": env_id,
                          "vectorize": "vmap", "seeds": seeds, "armfarm_version": __version__,
                          "dataset": {"transitions": int(data.size), "episodes": int(len(data.episode_starts))}})
    samplers = [np.random.default_rng(s) for s in seeds]
    states = _stack([algo.init(config, stats, s) for s in seeds])
    jitted = jax.jit(jax.vmap(scan_updates(algo, config)))
    logs = [run.metrics() for run in runs]
    step, train_seconds = 0, 0.0
    checkpoint_every = max(steps // 5, steps_per_call)
    try:
        while step < steps:
            k = min(steps_per_call, steps - step)
            per_seed = [data.sample_stacked(r, k, config.batch_size) for r in samplers]
            batches = {key: np.stack([b[key] for b in per_seed]) for key in algo.batch_keys}
            tick = time.perf_counter()
            states, metrics = jitted(states, batches)
            metrics = jax.device_get(metrics)
            train_seconds += time.perf_counter() - tick
            step += k
            for i, log in enumerate(logs):
                values = {name: float(v[i]) for name, v in metrics.items()}
                if not all(np.isfinite(v) for v in values.values()):
                    raise FloatingPointError(f"seed {seeds[i]}: non-finite training metrics at step {step}: {values}")
                log.train(step, train_seconds, values)
            if on_progress is not None:
                on_progress(step * len(seeds), {name: float(np.mean(v)) for name, v in metrics.items()})
            if step % checkpoint_every == 0 or step == steps:
                for i, run in enumerate(runs):
                    save_checkpoint(run.checkpoint_dir(step), algo, config, _unstack(states, i), stats,
                                    {"sampler_state": samplers[i].bit_generator.state, "steps_per_call": steps_per_call})
    finally:
        for log in logs:
            log.close()
    summaries = []
    for i, (run, seed) in enumerate(zip(runs, seeds, strict=True)):
        policy = algo.export_policy(config, _unstack(states, i))
        policy.obs_keys = list(stats.obs_keys) if stats.obs_keys else None
        policy.save(run.policy_path)
        summary = {"algo": algo.name, "steps": steps, "seed": seed, "vectorize": "vmap",
                   "train_seconds": round(train_seconds, 3),
                   "grad_steps_per_s": round(steps * len(seeds) / train_seconds, 2) if train_seconds > 0 else None,
                   "dataset": {"store": str(store_path), "transitions": int(data.size)}}
        if env_id:
            summary["eval"] = eval_block(evaluate_policy(policy, env_id, episodes=eval_episodes, seed=10_000 + seed))
        run.write_summary(summary)
        summaries.append(summary)
    return summaries
