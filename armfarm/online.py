"""The online learner behind ``armfarm train-online`` (SAC from scratch) and ``armfarm finetune`` (an
offline run continued with interaction).

The loop alternates acting and learning in chunks: the current stochastic actor (a NumPy copy of its
parameters, :class:`GaussianActor`) takes ``updates_per_call`` (K) environment steps, then K gradient
steps run in one compiled :func:`~armfarm.algos.make_train_fn` call on K batches drawn from the
replay buffer, one update per environment step as in Haarnoja et al. 2018. The first ``start_steps``
environment steps use uniform random actions and no updates. Acting with a policy up to K - 1 updates
old costs little sample efficiency for K much smaller than the episode length, and fusing K updates
removes the per-step dispatch overhead that dominates small networks on a CPU (see BENCHMARKS.md).

A run directory has the layout of :class:`armfarm.runs.RunDir` (``config.json``, ``metrics.csv``, ``eval.csv``
with the wall time of every evaluation, ``tb/``, ``checkpoints/step_N/``, ``policy.npz``,
``summary.json``) plus ``replay.npz``, the replay buffer at the end of the run, which
:meth:`ReplayBuffer.episodes` turns back into whole episodes (D4RL's "medium-replay").
Steps are environment steps throughout. Training is deterministic for a seed.

Fine-tuning (:func:`finetune`) runs the same loop from an offline run's checkpoint: each batch takes
``mix`` of its transitions from the run's store and the rest from the online replay, the algorithm's
declared online-phase settings (:attr:`Algorithm.finetune`) are applied to its config, and the robot
explores with the algorithm's own stochastic policy (:func:`explorer`). Online transitions get Cal-QL's
reference of 0 and their episode's next action; new episodes can be written into a store.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from armfarm import __version__
from armfarm.algos import (
    DatasetStats,
    algorithms,
    config_from_dict,
    get_algorithm,
    load_checkpoint,
    make_train_fn,
    run_train_call,
    save_checkpoint,
)
from armfarm.durable import write_atomic
from armfarm.envs.registry import make_env
from armfarm.evaluate.rollouts import EvalResult, evaluate_policy
from armfarm.runs import RunDir, eval_block

DEFAULT_STEPS = 1_000_000
DEFAULT_START_STEPS = 5_000
DEFAULT_UPDATES_PER_CALL = 50
REPLAY_FILE = "replay.npz"

__all__ = ["GaussianActor", "ReplayBuffer", "WarmStart", "env_stats", "explorer", "finetune", "train_online"]


class ReplayBuffer:
    """A FIFO buffer of ``capacity`` transitions that remembers where episodes end.

    Each row holds ``observations``, ``actions``, ``rewards``, ``next_observations``, ``terminated``
    (do not bootstrap) and ``truncated`` (the episode was cut by a time limit).
    """

    FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated", "next_actions")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.observations = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.next_observations = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros(capacity, bool)
        self.truncated = np.zeros(capacity, bool)
        self.next_actions = np.zeros((capacity, act_dim), np.float32)  # a_{t+1}; an episode's last: its own
        self.added = 0  # transitions ever added; the newest is at (added - 1) % capacity

    @property
    def size(self) -> int:
        return min(self.added, self.capacity)

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        i = self.added % self.capacity
        previous = (self.added - 1) % self.capacity
        if self.added and not (self.terminated[previous] or self.truncated[previous]):
            self.next_actions[previous] = action
        self.next_actions[i] = action
        self.observations[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_observations[i] = next_obs
        self.terminated[i] = terminated
        self.truncated[i] = truncated and not terminated
        self.added += 1

    def sample_stacked(self, rng: np.random.Generator, num_batches: int, batch_size: int,
                       keys: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """``num_batches`` batches of ``batch_size`` uniform transitions, stacked ``(K, B, ...)``, with the
        extra ``keys`` an algorithm reads (``next_actions``; ``mc_returns``, 0 for online transitions)."""
        idx = rng.integers(0, self.size, (num_batches, batch_size))
        batch = {
            "observations": self.observations[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_observations": self.next_observations[idx],
            "terminals": self.terminated[idx].astype(np.float32),
        }
        if "next_actions" in keys:
            batch["next_actions"] = self.next_actions[idx]
        if "mc_returns" in keys:
            batch["mc_returns"] = np.zeros(idx.shape, np.float32)
        return batch

    def _chronological(self) -> np.ndarray:
        start = self.added % self.capacity if self.added > self.capacity else 0
        return (start + np.arange(self.size)) % self.capacity

    def episodes(self) -> list[dict[str, np.ndarray]]:
        """The buffer as whole episodes in the order they were collected, in the layout of
        :class:`armfarm.data.Episode` (``T + 1`` observations). An episode still running at the end is
        kept and marked truncated; one whose start was overwritten (after wrap-around) is dropped."""
        order = self._chronological()
        ends = self.terminated[order] | self.truncated[order]
        out, start = [], 0
        if self.added > self.capacity:  # the oldest episode lost its beginning
            first_end = np.flatnonzero(ends)
            start = int(first_end[0]) + 1 if len(first_end) else len(order)
        boundaries = [int(i) + 1 for i in np.flatnonzero(ends) if i >= start]
        if not boundaries or boundaries[-1] < len(order):
            boundaries.append(len(order))
        for stop in boundaries:
            if stop <= start:
                continue
            rows = order[start:stop]
            truncated = self.truncated[rows].copy()
            truncated[-1] |= not self.terminated[rows[-1]]
            out.append({
                "observations": np.concatenate([self.observations[rows], self.next_observations[rows[-1:]]]),
                "actions": self.actions[rows].copy(),
                "rewards": self.rewards[rows].copy(),
                "terminated": self.terminated[rows].copy(),
                "truncated": truncated,
            })
            start = stop
        return out

    def save(self, path: str | Path) -> Path:
        """Write the stored transitions (oldest first) to an ``.npz``."""
        order = self._chronological()
        np.savez(path, **{name: getattr(self, name)[order] for name in self.FIELDS})
        return Path(path)

    def save_ring(self, path: Path) -> None:
        """Write the buffer exactly as it is in memory (ring layout, capacity and ``added``), atomically,
        for :meth:`load_ring` to restore when a run resumes."""
        n = self.size
        arrays = {name: getattr(self, name)[:n] for name in self.FIELDS}
        write_atomic(path, lambda f: np.savez(f, capacity=self.capacity, added=self.added, **arrays))

    @classmethod
    def load_ring(cls, path: Path) -> ReplayBuffer:
        with np.load(path, allow_pickle=False) as z:
            capacity, added = int(z["capacity"]), int(z["added"])
            buffer = cls(capacity, z["observations"].shape[1], z["actions"].shape[1])
            for name in cls.FIELDS:
                if name in z:  # (rings saved before next_actions existed lack it)
                    getattr(buffer, name)[: len(z[name])] = z[name]
        buffer.added = added
        return buffer

    def latest(self, count: int) -> np.ndarray:
        """Ring indices of the newest ``count`` transitions, oldest first."""
        if count > self.size:
            raise ValueError(f"only {self.size} transitions are held, asked for the newest {count}")
        return (self.added - count + np.arange(count)) % self.capacity

    @classmethod
    def load(cls, path: str | Path) -> ReplayBuffer:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in cls.FIELDS if name in z}
        n = len(arrays["rewards"])
        buffer = cls(max(n, 1), arrays["observations"].shape[1], arrays["actions"].shape[1])
        for name, value in arrays.items():
            getattr(buffer, name)[:n] = value
        buffer.added = n
        return buffer


class GaussianActor:
    """SAC's stochastic actor in NumPy: ``a = tanh(mu(s) + sigma(s) * eps)``, rescaled to the action
    bounds; :meth:`mean_action` is the deterministic ``tanh(mu(s))``. Used to act during online
    training and to sample datasets from a trained policy ("medium")."""

    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray], action_low: np.ndarray,
                 action_high: np.ndarray, log_std_min: float, log_std_max: float,
                 obs_mean: np.ndarray | None = None, obs_std: np.ndarray | None = None):
        self.weights, self.biases = weights, biases
        self.low, self.high = action_low, action_high
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.obs_mean, self.obs_std = obs_mean, obs_std

    @classmethod
    def from_state(cls, config: Any, state: dict) -> GaussianActor:
        host = jax.device_get({"actor": state["actor"]["params"], "norm": state["norm"]})
        norm = {k: np.asarray(v) for k, v in host["norm"].items()}
        return cls(
            [np.asarray(layer["w"]) for layer in host["actor"]], [np.asarray(layer["b"]) for layer in host["actor"]],
            norm["act_low"], norm["act_high"], config.log_std_min, config.log_std_max,
            norm["obs_mean"] if config.normalize_obs else None, norm["obs_std"] if config.normalize_obs else None,
        )

    def _head(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(obs, np.float32)
        if self.obs_mean is not None:
            x = (x - self.obs_mean) / self.obs_std
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = np.maximum(x @ w + b, 0.0)
        mean, log_std = np.split(x @ self.weights[-1] + self.biases[-1], 2, axis=-1)
        return mean, np.clip(log_std, self.log_std_min, self.log_std_max)

    def _rescale(self, y: np.ndarray) -> np.ndarray:
        return (self.low + (y + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean, log_std = self._head(obs)
        return self._rescale(np.tanh(mean + np.exp(log_std) * rng.standard_normal(mean.shape, np.float32)))

    def mean_action(self, obs: np.ndarray) -> np.ndarray:
        return self._rescale(np.tanh(self._head(obs)[0]))


class _NoisyPolicy:
    """Exploration around an exported policy: a Gaussian of ``std`` (per action dimension, in units of
    the half-range) added to its action, clipped to the bounds."""

    def __init__(self, policy: Any, low: np.ndarray, high: np.ndarray, std: np.ndarray):
        self.policy, self.low, self.high, self.std = policy, low, high, std

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        half = (self.high - self.low) / 2.0
        noisy = self.policy(obs) + half * self.std * rng.standard_normal(self.low.shape, np.float32)
        return np.clip(noisy, self.low, self.high).astype(np.float32)


def explorer(algo: Any, config: Any, state: dict, noise: float = 0.1):
    """What a learner explores with, as ``.sample(obs, rng)``: SAC's tanh-Gaussian for SAC-style actors
    (``2 * act_dim`` outputs), the Gaussian of a state-independent log-std around ``tanh(f(s))`` (IQL,
    AWAC), else the deterministic policy plus Gaussian noise of ``noise`` half-ranges (TD3+BC, ReBRAC)."""
    actor = state["actor"]["params"]
    low, high = (np.asarray(state["norm"][k]) for k in ("act_low", "act_high"))
    if isinstance(actor, list) and actor[-1]["w"].shape[-1] == 2 * len(low):
        return GaussianActor.from_state(config, state)
    policy = algo.export_policy(config, state)
    if isinstance(actor, dict) and "log_std" in actor:
        std = np.exp(np.clip(np.asarray(actor["log_std"]), config.log_std_min, config.log_std_max))
        return _NoisyPolicy(policy, low, high, std.astype(np.float32))
    return _NoisyPolicy(policy, low, high, np.full(len(low), noise, np.float32))


@dataclasses.dataclass
class WarmStart:
    """What fine-tuning adds to online training: the offline run's checkpoint, its data, and the share
    ``mix`` of every batch drawn from that data; new episodes go into ``store_out`` when given."""

    checkpoint: Any
    offline: Any
    mix: float
    store_out: Path | None = None


def env_stats(env: gym.Env) -> DatasetStats:
    """The constants an online learner takes from the environment: its dimensions and action bounds
    (no observation normalisation: the mean is 0 and the std 1)."""
    if not isinstance(env.observation_space, gym.spaces.Box) or not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"online training needs Box observation and action spaces; {env.spec.id} has "
                         f"{type(env.observation_space).__name__} and {type(env.action_space).__name__}")
    space = env.observation_space
    if len(space.shape) == 3 and space.dtype == np.uint8:
        raise ValueError(f"{env.spec.id} shows {space.shape} uint8 images; online training learns from state "
                         "vectors (learn from images offline: `armfarm train` with an image store)")
    obs_dim = int(np.prod(space.shape))
    act = env.action_space
    return DatasetStats(obs_dim=obs_dim, act_dim=int(np.prod(act.shape)), obs_mean=np.zeros(obs_dim),
                        obs_std=np.ones(obs_dim), action_low=act.low.reshape(-1), action_high=act.high.reshape(-1))


def _flat(obs) -> np.ndarray:
    return np.asarray(obs, np.float32).reshape(-1)


class _Episode:
    """Where the running episode began, enough to rebuild it on resume: the environment's RNG state
    just before its ``reset()`` (or the seed of the first reset) and the buffer position of its first
    transition. Gymnasium environments draw all their randomness from ``np_random``, so resetting from
    that state and replaying the stored actions puts a deterministic simulator (MuJoCo) back exactly
    where it was."""

    def __init__(self, env: gym.Env, buffer: ReplayBuffer):
        self.env, self.buffer = env, buffer
        self.reset_seed: int | None = None
        self.rng_state: dict | None = None
        self.start = 0
        self.ret = 0.0

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.reset_seed = seed
        self.rng_state = None if seed is not None else self.env.unwrapped.np_random.bit_generator.state
        self.start, self.ret = self.buffer.added, 0.0
        return _flat(self.env.reset(seed=seed)[0])

    def to_json(self) -> dict:
        return {"reset_seed": self.reset_seed, "rng_state": self.rng_state, "start": self.start}

    def restore(self, saved: dict, obs: np.ndarray, fallback_seed: int) -> tuple[np.ndarray, bool]:
        """Rebuild the saved episode; returns the current observation and whether it matched exactly.
        When it cannot match (a nondeterministic environment, or an episode longer than the buffer), the
        interrupted episode is ended as truncated and a new one starts from ``fallback_seed``."""
        count = self.buffer.added - saved["start"]
        exact = 0 <= count <= self.buffer.size
        if exact:
            if saved["rng_state"] is not None:
                self.env.unwrapped.np_random.bit_generator.state = saved["rng_state"]
            current = _flat(self.env.reset(seed=saved["reset_seed"])[0])
            rows = self.buffer.latest(count)
            exact = count == 0 or np.array_equal(current, self.buffer.observations[rows[0]])
            for i in rows if exact else ():
                current = _flat(self.env.step(self.buffer.actions[i])[0])
                if not np.array_equal(current, self.buffer.next_observations[i]):
                    exact = False
                    break
            exact = exact and np.array_equal(current, obs)
        if exact:
            self.reset_seed, self.rng_state, self.start = saved["reset_seed"], saved["rng_state"], saved["start"]
            self.ret = float(self.buffer.rewards[self.buffer.latest(count)].sum())
            return current, True
        warnings.warn("the environment could not be replayed to where the checkpoint left it; the "
                      "interrupted episode is ended as truncated and a new one starts", stacklevel=3)
        if self.buffer.size and not self.buffer.terminated[(self.buffer.added - 1) % self.buffer.capacity]:
            self.buffer.truncated[(self.buffer.added - 1) % self.buffer.capacity] = True
        return self.reset(fallback_seed), False


def train_online(
    algo_name: str,
    env_id: str,
    out_dir: str | Path,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    start_steps: int = DEFAULT_START_STEPS,
    updates_per_call: int = DEFAULT_UPDATES_PER_CALL,
    buffer_size: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int = 10,
    checkpoint_every: int | None = None,
    target_return: float | None = None,
    config_overrides: dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, dict], None] | None = None,
    on_eval: Callable[[int, EvalResult], None] | None = None,
    warm_start: WarmStart | None = None,
) -> dict:
    """Train ``algo_name`` (``sac``) in ``env_id`` for ``steps`` environment steps (with ``warm_start``,
    continue an offline run instead: see :func:`finetune`).

    ``eval_every`` (default: 20 evaluations per run) and ``checkpoint_every`` (default: 5 per run) are in
    environment steps; evaluations run the deterministic policy for ``eval_episodes`` episodes seeded
    ``10_000 + seed, ...``. With ``target_return``, training stops at the first evaluation whose mean
    return reaches it (how D4RL stopped its "medium" SAC). ``buffer_size`` defaults to ``steps`` (the
    whole history; Haarnoja et al. use 10^6). Returns the summary, also written to ``summary.json``.

    Every checkpoint also holds the replay buffer, the exploration RNG and where the running episode
    began (only the newest checkpoint keeps its buffer, to bound disk use). With ``resume=True`` the run
    continues from the newest checkpoint in ``out_dir``: the environment is put back by replaying the
    running episode, so on a deterministic simulator the resumed run is bit-for-bit the uninterrupted
    one (``summary["resumed_exact"]``). ``steps`` may be raised to extend a finished run. Without a
    checkpoint to resume from, the run starts afresh; a run already in ``out_dir`` is otherwise an
    error, unless ``overwrite=True`` replaces it.
    """
    started = time.perf_counter()
    if steps < 1 or updates_per_call < 1 or start_steps < 0:
        raise ValueError("steps and updates_per_call must be >= 1 and start_steps >= 0")
    algo = get_algorithm(algo_name)
    if warm_start is None and not algo.online:
        raise ValueError(f"{algo.name} is an offline algorithm; use `armfarm train {algo.name} STORE --out RUN_DIR`"
                         f" (or `armfarm finetune` to continue such a run online)")
    if warm_start is None:
        config = config_from_dict(algo.config_cls, config_overrides or {})
    else:  # the offline run's config, then the algorithm's online-phase settings, then the user's
        config = config_from_dict(algo.config_cls, {**dataclasses.asdict(warm_start.checkpoint.config),
                                                    **(algo.finetune or {}), **(config_overrides or {})})
    run = RunDir(out_dir)
    run_dir = run.path
    resume_from = run.prepare(resume, overwrite, required=(REPLAY_FILE,))

    env = make_env(env_id)
    stats = env_stats(env)
    if warm_start is not None:
        if (warm_start.checkpoint.stats.obs_dim, warm_start.checkpoint.stats.act_dim) != (stats.obs_dim, stats.act_dim):
            raise ValueError(f"{env_id} has {stats.obs_dim} observation and {stats.act_dim} action dimensions; the "
                             f"run was trained on {warm_start.checkpoint.stats.obs_dim} and "
                             f"{warm_start.checkpoint.stats.act_dim}")
        stats = warm_start.checkpoint.stats  # the offline data's normalisation stays
    offline_batch = 0 if warm_start is None else int(round(warm_start.mix * config.batch_size))
    online_batch = config.batch_size - offline_batch
    store_out = None
    if warm_start is not None and warm_start.store_out is not None:
        from armfarm.data import EpisodeStore

        store_out = EpisodeStore(warm_start.store_out, create=True)
    eval_every = eval_every or max(steps // 20, 1)
    checkpoint_every = checkpoint_every or max(steps // 5, 1)
    rng = np.random.default_rng([seed, 0x5AC])
    log = run.metrics()
    try:
        if resume_from is None:
            buffer = ReplayBuffer(buffer_size or steps, stats.obs_dim, stats.act_dim)
            state = algo.init(config, stats, seed) if warm_start is None else warm_start.checkpoint.state
            episode = _Episode(env, buffer)
            obs = episode.reset(seed)
            step = grad_steps = episodes = 0
            train_seconds = act_seconds = 0.0
            episode_returns: list[float] = []
            exact, reached = None, False
            evaluations: list[dict] = []
            run.write_config({
                "algo": algo.name, "config": dataclasses.asdict(config), "env": env_id, "seed": seed,
                "steps": steps, "start_steps": start_steps, "updates_per_call": updates_per_call,
                "buffer_size": buffer.capacity, "eval_every": eval_every, "eval_episodes": eval_episodes,
                "target_return": target_return, "armfarm_version": __version__,
                **({} if warm_start is None else {
                    "init_from": str(warm_start.checkpoint.path), "mix": warm_start.mix,
                    "store_out": None if warm_start.store_out is None else str(warm_start.store_out)}),
            })
        else:
            restored = load_checkpoint(resume_from)
            extra = restored.extra
            if restored.algo_name != algo.name or extra.get("env_id") != env_id:
                raise ValueError(f"{resume_from} is a {restored.algo_name} checkpoint in {extra.get('env_id')}, "
                                 f"not {algo.name} in {env_id}")
            if config_overrides and config != restored.config:
                raise ValueError(f"{run_dir} was trained with a different {algo.name} config; resume without --set")
            config, state = restored.config, restored.state
            buffer = ReplayBuffer.load_ring(resume_from / REPLAY_FILE)
            rng.bit_generator.state = extra["rng_state"]
            step, grad_steps, episodes = extra["env_steps"], extra["grad_steps"], extra["episodes"]
            train_seconds, act_seconds = extra["train_seconds"], extra["act_seconds"]
            episode_returns = list(extra["episode_returns"])
            evaluations = list(extra.get("evaluations", []))
            started -= extra["wall_s"]
            # a run that stopped at its target stays stopped when resumed with a target
            reached = target_return is not None and extra.get("reached_target", False)
            episode = _Episode(env, buffer)
            obs, exact = episode.restore(extra["episode"], np.asarray(extra["obs"], np.float32),
                                         fallback_seed=int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
            log.drop_after(step)
        train_fn = make_train_fn(algo, config)
        actor = explorer(algo, config, state)
        last_eval = None

        def export():
            return algo.export_policy(config, state)

        def evaluate(at_step: int) -> EvalResult:
            result = evaluate_policy(export(), env_id, episodes=eval_episodes, seed=10_000 + seed)
            log.eval(at_step, result, {"grad_steps": grad_steps, "wall_s": round(time.perf_counter() - started, 3)})
            evaluations.append({"step": at_step, "return_mean": result.return_mean, "normalized": result.normalized})
            if on_eval is not None:
                on_eval(at_step, result)
            return result

        def checkpoint(at_step: int) -> None:
            directory = run.checkpoint_dir(at_step)
            directory.mkdir(parents=True, exist_ok=True)
            buffer.save_ring(directory / REPLAY_FILE)
            save_checkpoint(directory, algo.name, config, state, stats, {
                "env_steps": at_step, "env_id": env_id, "grad_steps": grad_steps, "episodes": episodes,
                "episode_returns": episode_returns[-10:], "rng_state": rng.bit_generator.state,
                "episode": episode.to_json(), "obs": obs.tolist(), "train_seconds": train_seconds,
                "act_seconds": act_seconds, "wall_s": time.perf_counter() - started, "reached_target": reached,
                "evaluations": evaluations,
            })
            for older in (run_dir / "checkpoints").glob(f"step_*/{REPLAY_FILE}"):
                if older.parent != directory:
                    older.unlink(missing_ok=True)

        if warm_start is not None and resume_from is None:
            evaluate(0)  # the offline policy, before any interaction

        def record(length: int) -> None:
            """Write the episode that just ended (its newest ``length`` transitions) into ``store_out``,
            under an id that a resumed run writes again only to have it skipped."""
            from armfarm.data import Episode

            rows = buffer.latest(length)
            store_out.write([Episode(
                np.concatenate([buffer.observations[rows], buffer.next_observations[rows[-1:]]]),
                buffer.actions[rows], buffer.rewards[rows], buffer.terminated[rows], buffer.truncated[rows],
                episode_id=f"{run_dir.name}-s{seed}-e{episodes:07d}", collector_id=f"finetune:{run_dir.name}",
                policy_id=f"{algo.name}@{grad_steps}", env_id=env_id)], on_duplicate="skip")

        while step < steps and not reached:
            k = min(updates_per_call, steps - step)
            tick = time.perf_counter()
            for _ in range(k):
                if step < start_steps:
                    action = rng.uniform(stats.action_low, stats.action_high).astype(np.float32)
                else:
                    action = actor.sample(obs, rng)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                next_obs = _flat(next_obs)
                buffer.add(obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
                episode.ret += float(reward)
                step += 1
                if terminated or truncated:
                    if store_out is not None:
                        record(buffer.added - episode.start)
                    episodes += 1
                    episode_returns.append(episode.ret)
                    next_obs = episode.reset()
                obs = next_obs
            act_seconds += time.perf_counter() - tick
            metrics = {}
            learning = step > start_steps and buffer.size >= online_batch
            if learning:
                batches = buffer.sample_stacked(rng, k, online_batch, algo.batch_keys)
                if offline_batch:  # the offline share of every batch, beside the online one
                    offline = warm_start.offline.sample_stacked(rng, k, offline_batch)
                    batches = {key: np.concatenate([offline[key], batches[key]], axis=1) for key in batches}
                state, metrics, seconds = run_train_call(train_fn, state, batches, step)
                train_seconds += seconds
                grad_steps += k
                actor = explorer(algo, config, state)
            metrics["episode_return"] = float(np.mean(episode_returns[-10:])) if episode_returns else 0.0
            if learning:
                log.train(step, time.perf_counter() - started, metrics)
            if on_progress is not None:  # also during the random start steps
                on_progress(step, metrics)
            if step % checkpoint_every < k and step > 0:
                checkpoint(step)
            if step % eval_every < k or step == steps:
                last_eval = evaluate(step)
                reached = target_return is not None and last_eval.return_mean >= target_return
        if reached or not (run.checkpoint_dir(step) / REPLAY_FILE).exists():
            checkpoint(step)
        export().save(run.policy_path)
        buffer.save(run_dir / REPLAY_FILE)
        if last_eval is None:
            last_eval = evaluate(step)
    finally:
        log.close()
        env.close()

    seconds = time.perf_counter() - started
    summary = {
        "algo": algo.name, "env_id": env_id, "seed": seed, "env_steps": step, "grad_steps": grad_steps,
        "episodes": episodes, "seconds": round(seconds, 3), "train_seconds": round(train_seconds, 3),
        "act_seconds": round(act_seconds, 3),
        "grad_steps_per_s": round(grad_steps / train_seconds, 2) if train_seconds > 0 else None,
        "env_steps_per_s": round(step / seconds, 2),
        "target_return": target_return, "reached_target": reached,
        "resumed_from": None if resume_from is None else str(resume_from), "resumed_exact": exact,
        "checkpoint": str(run.checkpoint_dir(step)),
        "eval": eval_block(last_eval),
    }
    if warm_start is not None:
        online = [e for e in evaluations if e["step"] > 0]
        scores = [e["normalized"] for e in online if e["normalized"] is not None]
        summary.update({
            "init_from": str(warm_start.checkpoint.path), "mix": warm_start.mix,
            "return_before": evaluations[0]["return_mean"] if evaluations and evaluations[0]["step"] == 0 else None,
            "return_after": last_eval.return_mean,
            # CORL's cumulative regret: the mean over the online evaluations of 1 - normalized score / 100
            "regret": round(float(np.mean([1.0 - s / 100.0 for s in scores])), 4) if scores and len(scores) == len(online)
            else None,
        })
    run.write_summary(summary)
    return summary


def finetune(
    run_dir: str | Path,
    env_id: str,
    out_dir: str | Path,
    steps: int,
    mix: float = 0.5,
    seed: int = 0,
    store_out: str | Path | None = None,
    **kwargs: Any,
) -> dict:
    """Continue the offline run in ``run_dir`` with ``steps`` environment steps in ``env_id`` (offline ->
    online fine-tuning), writing a run directory to ``out_dir`` (resumable like :func:`train_online`).

    Every batch draws ``mix`` of its transitions from the run's store and the rest from the online replay
    buffer. The algorithm's online-phase settings (:attr:`Algorithm.finetune`) apply, then
    ``config_overrides``. New episodes are written into ``store_out`` when given (so a farm can learn
    from them). The summary adds ``return_before`` (the offline policy), ``return_after`` and CORL's
    ``regret``. Other keyword arguments are :func:`train_online`'s.
    """
    from armfarm.algos.core.batches import add_batch_columns
    from armfarm.algos.core.checkpoints import latest_checkpoint
    from armfarm.data import TransitionDataset

    if not 0.0 <= mix < 1.0:
        raise ValueError(f"mix must be in [0, 1): the share of each batch from the offline data, got {mix}")
    source = RunDir(run_dir)
    checkpoint_dir = latest_checkpoint(source.path)
    if checkpoint_dir is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint to fine-tune (train it with `armfarm train`)")
    checkpoint = load_checkpoint(checkpoint_dir)
    algo = get_algorithm(checkpoint.algo_name)
    if algo.finetune is None:
        tunable = ", ".join(n for n, a in algorithms().items() if a.finetune is not None)
        raise ValueError(f"{algo.name} has no online phase; these algorithms fine-tune: {tunable}")
    if checkpoint.stats.images:
        raise ValueError(f"{run_dir} learned from {checkpoint.stats.obs_shape} images; online fine-tuning "
                         "learns from state vectors only")
    store = source.read_config().get("store")
    if store is None:
        raise ValueError(f"{run_dir}/config.json names no store: fine-tuning mixes in the run's offline data")
    offline = TransitionDataset.from_store(store)
    add_batch_columns(offline, algo.batch_keys, checkpoint.config)
    warm = WarmStart(checkpoint, offline, mix, None if store_out is None else Path(store_out))
    return train_online(algo.name, env_id, out_dir, steps=steps, seed=seed, start_steps=0, warm_start=warm, **kwargs)
