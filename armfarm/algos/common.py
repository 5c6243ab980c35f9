"""Shared machinery of the offline RL algorithms: dataset statistics, batch preprocessing, the fused
K-step training function, and checkpoints.

Agent state
    Every algorithm's state is an :data:`AgentState`: a dict pytree of JAX arrays with at least

    ``step``  int32 scalar, gradient steps taken;
    ``key``   raw PRNG key data, uint32[4] for JAX's ``"rbg"`` implementation (the state carries its
              own randomness, so an update is a pure function of ``(config, state, batch)`` and
              training is bitwise reproducible; ``rbg`` compiles and runs faster on CPU than the
              default threefry);
    ``norm``  constants computed once from :class:`DatasetStats` at ``init``: ``obs_mean``,
              ``obs_std``, ``act_low``, ``act_high``, ``act_center``, ``act_half_range``,
              ``reward_scale``;

    plus the algorithm's networks, target networks and optimiser states.

Batches
    dicts of float32 arrays ``observations (B, obs_dim)``, ``actions (B, act_dim)``, ``rewards (B,)``,
    ``next_observations (B, obs_dim)``, ``terminals (B,)``; :func:`make_train_fn` takes the same with a
    leading ``K`` axis. Inside ``update`` actions are mapped from ``[action_low, action_high]`` to
    ``[-1, 1]`` and observations are standardised when the config's ``normalize_obs`` is set.

Checkpoints (directory)
    ``meta.json``            format, format_version, algo, config, stats, step, extra, leaf list, and the
                             name of the state file; written last, atomically (it is the commit record)
    ``state-<step>-<id>.npz`` every state leaf keyed by its pytree path (``jax.tree_util.keystr``)
    ``policy.npz``           the exported :class:`~armfarm.policy.NumpyPolicy`
    No pickle anywhere: loading rebuilds the state template with the algorithm's ``init`` and fills its
    leaves by path.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from armfarm import __version__
from armfarm.durable import fsync_path, write_atomic
from armfarm.overrides import coerce_fields
from armfarm.policy import NumpyPolicy

AgentState = dict[str, Any]
Batch = dict[str, Any]

BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")
CHECKPOINT_FORMAT = "armfarm-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
META_FILE = "meta.json"
POLICY_FILE = "policy.npz"
OBS_STD_EPS = 1e-3  # TD3+BC (Fujimoto & Gu 2021): s' = (s - mu) / (sigma + 1e-3)

__all__ = [
    "AgentState",
    "BATCH_KEYS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointNotFoundError",
    "DatasetStats",
    "check_batch",
    "load_checkpoint",
    "make_train_fn",
    "save_checkpoint",
]


# ============================================================================ dataset statistics


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetStats:
    """Constants a learner needs from its dataset.

    ``obs_std`` already includes the ``+1e-3`` of TD3+BC, so it is never zero. ``return_range`` is
    ``max - min`` of the episode returns (IQL's reward scale), or ``None`` when unknown. ``obs_keys`` is
    the dict-observation key order (``None`` for array observations); it is copied into exported
    policies by :func:`save_checkpoint`.
    """

    obs_dim: int
    act_dim: int
    obs_mean: np.ndarray
    obs_std: np.ndarray
    action_low: np.ndarray
    action_high: np.ndarray
    return_range: float | None = None
    obs_keys: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name, dim in (("obs_mean", self.obs_dim), ("obs_std", self.obs_dim),
                          ("action_low", self.act_dim), ("action_high", self.act_dim)):
            arr = np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
            if arr.shape != (dim,):
                raise ValueError(f"DatasetStats.{name} must have shape ({dim},), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"DatasetStats.{name} must be finite")
            object.__setattr__(self, name, arr)
        if np.any(self.obs_std <= 0):
            raise ValueError("DatasetStats.obs_std must be positive")
        if np.any(self.action_high < self.action_low):
            raise ValueError("DatasetStats.action_high must be >= action_low")
        if self.return_range is not None:
            object.__setattr__(self, "return_range", float(self.return_range))
        if self.obs_keys is not None:
            object.__setattr__(self, "obs_keys", tuple(str(k) for k in self.obs_keys))

    @classmethod
    def from_dataset(
        cls,
        ds: Any,
        action_low: Any = None,
        action_high: Any = None,
        std_eps: float = OBS_STD_EPS,
        sample_size: int = 200_000,
    ) -> DatasetStats:
        """Statistics of any object with ``.observations (N, d)`` and ``.actions (N, a)``.

        Dict observations are flattened in sorted key order. Objects without the arrays but with
        ``.sample(rng, n)`` (a memory-mapped sampler) are summarised from ``sample_size`` random
        transitions. Optional attributes used when present: ``.episode_returns`` (-> ``return_range``),
        ``.obs_keys``, ``.action_low`` / ``.action_high`` or ``.spec.action.low/high``. Action bounds, in
        order of preference: the arguments, those attributes, ``[-1, 1]`` when every dataset action lies
        inside it, else the per-dimension min/max of the data (with a warning: a policy can then never
        leave the range seen in the data).
        """
        obs_keys = getattr(ds, "obs_keys", None)
        if hasattr(ds, "observations") and hasattr(ds, "actions"):
            obs, act = ds.observations, np.asarray(ds.actions)
        elif hasattr(ds, "sample"):  # e.g. a MemmapSampler: estimate from a fixed random sample
            sample = ds.sample(np.random.default_rng(0), min(int(getattr(ds, "size", sample_size)), sample_size))
            obs, act = sample["observations"], np.asarray(sample["actions"])
        else:
            raise ValueError("dataset needs .observations and .actions arrays (or a .sample(rng, n) method)")
        if isinstance(obs, Mapping):  # dict observations: concatenate keys in sorted order
            obs_keys = sorted(obs)
            obs = np.concatenate([np.asarray(obs[k]).reshape(len(obs[k]), -1) for k in obs_keys], axis=1)
        obs = np.asarray(obs)
        if obs.ndim < 2 or act.ndim < 2 or obs.shape[0] == 0 or obs.shape[0] != act.shape[0]:
            raise ValueError(
                f"dataset needs observations (N, obs_dim) and actions (N, act_dim) with N >= 1, "
                f"got {obs.shape} and {act.shape}"
            )
        obs = obs.reshape(obs.shape[0], -1).astype(np.float64)
        act = act.reshape(act.shape[0], -1).astype(np.float64)
        mean = obs.mean(axis=0)
        std = obs.std(axis=0) + std_eps

        if action_low is None and action_high is None:
            action_low = getattr(ds, "action_low", None)
            action_high = getattr(ds, "action_high", None)
        if action_low is None and action_high is None:
            spec_action = getattr(getattr(ds, "spec", None), "action", None)
            action_low = getattr(spec_action, "low", None)
            action_high = getattr(spec_action, "high", None)
        if (action_low is None) != (action_high is None):
            raise ValueError("give both action_low and action_high, or neither")
        if action_low is None:
            lo, hi = act.min(axis=0), act.max(axis=0)
            if lo.min() >= -1.0 and hi.max() <= 1.0:
                action_low, action_high = -np.ones(act.shape[1]), np.ones(act.shape[1])
            else:
                warnings.warn(
                    "no action bounds given and dataset actions leave [-1, 1]: using the data's per-dimension "
                    "min/max as bounds; pass action_low/action_high (the robot's limits) to avoid this",
                    stacklevel=2,
                )
                action_low, action_high = lo, hi
        low = np.broadcast_to(np.asarray(action_low, np.float64), (act.shape[1],))
        high = np.broadcast_to(np.asarray(action_high, np.float64), (act.shape[1],))

        returns = getattr(ds, "episode_returns", None)
        return_range = None
        if returns is not None and np.size(returns) > 0:
            returns = np.asarray(returns, dtype=np.float64)
            return_range = float(returns.max() - returns.min())
        return cls(
            obs_dim=int(obs.shape[1]),
            act_dim=int(act.shape[1]),
            obs_mean=mean,
            obs_std=std,
            action_low=low,
            action_high=high,
            return_range=return_range,
            obs_keys=tuple(obs_keys) if obs_keys else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "obs_mean": self.obs_mean.tolist(),
            "obs_std": self.obs_std.tolist(),
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
            "return_range": self.return_range,
            "obs_keys": list(self.obs_keys) if self.obs_keys is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetStats:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def make_norm(stats: DatasetStats, reward_scale: float = 1.0) -> dict[str, jax.Array]:
    """The ``state["norm"]`` constants (computed once, carried in the state)."""
    low, high = stats.action_low, stats.action_high
    arrays = {
        "obs_mean": stats.obs_mean,
        "obs_std": stats.obs_std,
        "act_low": low,
        "act_high": high,
        "act_center": (high + low) / np.float32(2.0),
        "act_half_range": np.maximum((high - low) / np.float32(2.0), np.float32(1e-6)),
        "reward_scale": np.asarray(reward_scale, np.float32),
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in arrays.items()}


PRNG_IMPL = "rbg"


def seed_streams(seed: int) -> tuple[jax.Array, np.random.Generator]:
    """The two random streams of an agent: the raw JAX PRNG key data carried in the state (sampling
    inside ``update``; see :func:`split_key`) and a NumPy generator for parameter initialisation."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return jax.random.key_data(jax.random.key(seed, impl=PRNG_IMPL)), np.random.default_rng([seed, 0xA7F])


def split_key(raw_key: jax.Array, num: int) -> tuple[jax.Array, list[jax.Array]]:
    """Split the state's raw key into a new raw key for the next step and ``num`` typed keys."""
    keys = jax.random.split(jax.random.wrap_key_data(raw_key, impl=PRNG_IMPL), num + 1)
    return jax.random.key_data(keys[0]), [keys[i] for i in range(1, num + 1)]


# ============================================================================ configs


class ConfigBase:
    """Mixin for the frozen algorithm configs: lists become tuples (so configs hash and compare, which
    :func:`make_train_fn` relies on) and the shared fields are checked."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        hidden = getattr(self, "hidden", (1,))
        if not isinstance(hidden, tuple) or not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, got {hidden!r}")
        if getattr(self, "batch_size", 1) < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0.0 <= getattr(self, "gamma", 0.5) <= 1.0:
            raise ValueError("gamma must be in [0, 1]")
        if not 0.0 < getattr(self, "tau", 0.5) <= 1.0:
            raise ValueError("tau must be in (0, 1]")
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name.endswith("lr") and not getattr(self, f.name) > 0:
                raise ValueError(f"{f.name} must be > 0")
        init = getattr(self, "init", "lecun")
        if init not in ("lecun", "orthogonal", "torch"):
            raise ValueError(f"init must be 'lecun', 'orthogonal' or 'torch', got {init!r}")
        self._validate()

    def _validate(self) -> None:  # per-algorithm checks
        pass


def config_to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(config_cls: type, d: Mapping[str, Any]) -> Any:
    """A config from a dict of field values (JSON from a checkpoint, or ``--set`` text), each coerced by
    the field's type hint (:func:`armfarm.overrides.coerce_fields`)."""
    return config_cls(**coerce_fields(config_cls, d))


# ============================================================================ batches


def check_batch(batch: Mapping[str, Any], obs_dim: int, act_dim: int, lead_ndim: int = 1) -> None:
    """Raise a ``ValueError`` naming the field if ``batch`` lacks a key or has a wrong shape.

    ``lead_ndim`` is 1 for a single batch ``(B, ...)`` and 2 for stacked batches ``(K, B, ...)``.
    """
    if not isinstance(batch, Mapping):
        raise ValueError(f"a batch must be a dict with keys {list(BATCH_KEYS)}, got {type(batch).__name__}")
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}; a batch needs keys {list(BATCH_KEYS)}")
    lead = tuple(np.shape(batch["observations"])[:lead_ndim])
    names = ("B",) if lead_ndim == 1 else ("K", "B")
    if len(lead) != lead_ndim or any(n < 1 for n in lead):
        raise ValueError(
            f"batch field 'observations' has shape {np.shape(batch['observations'])}; expected "
            f"({', '.join(names)}, obs_dim) with obs_dim={obs_dim}"
        )
    expected = {
        "observations": ((*lead, obs_dim), (*names, "obs_dim")),
        "next_observations": ((*lead, obs_dim), (*names, "obs_dim")),
        "actions": ((*lead, act_dim), (*names, "act_dim")),
        "rewards": (lead, names),
        "terminals": (lead, names),
    }
    for k, (shape, symbolic) in expected.items():
        got = tuple(np.shape(batch[k]))
        if got != shape:
            raise ValueError(
                f"batch field {k!r} has shape {got}, expected ({', '.join(symbolic)}) = {shape} "
                f"(obs_dim={obs_dim}, act_dim={act_dim})"
            )


def preprocess(state: AgentState, batch: Mapping[str, Any], normalize_obs: bool) -> dict[str, jax.Array]:
    """Validate one batch (at trace time), cast to float32, standardise observations (if
    ``normalize_obs``), map actions to ``[-1, 1]`` and scale rewards."""
    norm = state["norm"]
    check_batch(batch, norm["obs_mean"].shape[0], norm["act_low"].shape[0])
    f32 = lambda k: jnp.asarray(batch[k], jnp.float32)  # noqa: E731
    obs, next_obs = f32("observations"), f32("next_observations")
    if normalize_obs:
        obs = (obs - norm["obs_mean"]) / norm["obs_std"]
        next_obs = (next_obs - norm["obs_mean"]) / norm["obs_std"]
    act = jnp.clip((f32("actions") - norm["act_center"]) / norm["act_half_range"], -1.0, 1.0)
    return {
        "observations": obs,
        "actions": act,
        "rewards": f32("rewards") * norm["reward_scale"],
        "next_observations": next_obs,
        "terminals": f32("terminals"),
    }


# ============================================================================ small helpers


def polyak(target: Any, online: Any, tau: float) -> Any:
    """Soft target update ``target <- tau * online + (1 - tau) * target``."""
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)


def apply_optimizer(opt: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any) -> tuple[Any, Any]:
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def policy_metadata(algo_name: str, state: AgentState) -> dict[str, Any]:
    return {"algo": algo_name, "step": int(jax.device_get(state["step"])), "armfarm_version": __version__}


def mlp_policy(
    algo_name: str,
    params: list[dict[str, Any]],
    state: AgentState,
    normalize_obs: bool,
    out_slice: int | None = None,
) -> NumpyPolicy:
    """A :class:`NumpyPolicy` from an actor MLP whose output is tanh-squashed into ``[-1, 1]``.

    ``out_slice=n`` keeps the first ``n`` outputs of the last layer (the mean head of a Gaussian actor
    that also outputs log-stds).
    """
    host = jax.device_get({"params": params, "norm": state["norm"]})
    ws = [np.asarray(layer["w"]) for layer in host["params"]]
    bs = [np.asarray(layer["b"]) for layer in host["params"]]
    if out_slice is not None:
        ws[-1], bs[-1] = ws[-1][:, :out_slice], bs[-1][:out_slice]
    norm = host["norm"]
    return NumpyPolicy(
        ws,
        bs,
        obs_mean=norm["obs_mean"] if normalize_obs else None,
        obs_std=norm["obs_std"] if normalize_obs else None,
        action_low=norm["act_low"],
        action_high=norm["act_high"],
        metadata=policy_metadata(algo_name, state),
    )


def _resolve(algo: Any) -> Any:
    if isinstance(algo, str):
        from armfarm.algos.registry import get_algorithm

        return get_algorithm(algo)
    return algo


# ============================================================================ fused training


@functools.lru_cache(maxsize=32)
def _jitted_train(algo: Any, config: Any, donate: bool) -> Callable:
    update = algo.update

    def train(state: AgentState, batches: Batch) -> tuple[AgentState, dict[str, jax.Array]]:
        def body(s: AgentState, b: Batch) -> tuple[AgentState, dict[str, jax.Array]]:
            return update(config, s, b)

        state, metrics = jax.lax.scan(body, state, batches)
        return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    return jax.jit(train, donate_argnums=(0,) if donate else ())


def make_train_fn(algo: Any, config: Any, *, donate: bool = False) -> Callable:
    """A compiled ``(state, stacked_batches) -> (state, metrics)`` running ``K`` updates in one
    :func:`jax.lax.scan`, where ``K`` is the leading axis of every batch array (``(K, B, ...)``).

    ``metrics`` are the means over the ``K`` steps (0-d JAX arrays). Batches are checked on the host
    (clear ``ValueError`` for a missing key or a wrong shape) and keys other than the five batch keys
    are dropped before the transfer. The compiled function is cached per ``(algo, config)``, and XLA
    compiles once per ``(K, B)``. With ``donate=True`` the input state's buffers are reused for the
    output (do not touch the old state afterwards).
    """
    algo = _resolve(algo)
    if not isinstance(config, algo.config_cls):
        raise TypeError(f"{algo.name} needs a {algo.config_cls.__name__}, got {type(config).__name__}")
    jitted = _jitted_train(algo, config, donate)

    def train_fn(state: AgentState, stacked_batches: Mapping[str, Any]) -> tuple[AgentState, dict[str, jax.Array]]:
        norm = state["norm"]
        check_batch(stacked_batches, norm["obs_mean"].shape[0], norm["act_low"].shape[0], lead_ndim=2)
        batches = {}
        for k in BATCH_KEYS:
            v = stacked_batches[k]
            if isinstance(v, np.ndarray) and v.dtype != np.float32:
                v = v.astype(np.float32)
            batches[k] = v
        return jitted(state, batches)

    train_fn.jitted = jitted  # type: ignore[attr-defined]
    train_fn.algo = algo  # type: ignore[attr-defined]
    train_fn.config = config  # type: ignore[attr-defined]
    return train_fn


def run_train_call(train_fn: Callable, state: AgentState, batches: Mapping[str, Any],
                   step: int) -> tuple[AgentState, dict[str, float], float]:
    """One fused call of ``train_fn``: the new state, its metrics as floats and the seconds it took.
    Raises ``FloatingPointError`` naming ``step`` (where the call ends) when a metric is not finite."""
    tick = time.perf_counter()
    state, metrics = train_fn(state, batches)
    metrics = {key: float(value) for key, value in metrics.items()}
    seconds = time.perf_counter() - tick
    if not all(np.isfinite(v) for v in metrics.values()):
        raise FloatingPointError(f"non-finite training metrics at step {step}: {metrics}")
    return state, metrics, seconds


# ============================================================================ checkpoints


class CheckpointError(ValueError):
    """A checkpoint is corrupt, inconsistent, or from an incompatible format version."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The directory does not exist or holds no checkpoint."""


@dataclasses.dataclass
class Checkpoint:
    algo_name: str
    config: Any
    state: AgentState
    stats: DatasetStats
    step: int
    extra: dict[str, Any]
    path: Path | None = None

    @property
    def policy_path(self) -> Path | None:
        return self.path / POLICY_FILE if self.path is not None else None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic | np.ndarray) or hasattr(o, "__array__"):
        return np.asarray(o).tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"checkpoint 'extra' must be JSON-serialisable; got a {type(o).__name__}")


def _flatten_state(state: AgentState) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(state))
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


def latest_checkpoint(run_dir: str | os.PathLike, required: tuple[str, ...] = ()) -> Path | None:
    """The newest complete checkpoint ``run_dir/checkpoints/step_N`` holding every file in ``required``.

    A checkpoint is complete once its ``meta.json`` exists (:func:`save_checkpoint` writes it last), so
    a process killed while saving leaves the previous checkpoint as the one to resume from.
    """
    found = [p for p in (Path(run_dir) / "checkpoints").glob("step_*") if p.name.split("_", 1)[1].isdigit()]
    for directory in sorted(found, key=lambda p: int(p.name.split("_", 1)[1]), reverse=True):
        if (directory / META_FILE).is_file() and all((directory / name).is_file() for name in required):
            return directory
    return None


def save_checkpoint(
    directory: str | os.PathLike,
    algo_name: str,
    config: Any,
    state: AgentState,
    stats: DatasetStats,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state`` (params, optimiser states, PRNG key, step), ``config``, ``stats`` and the JSON
    ``extra`` dict to ``directory`` (created if needed), plus the exported ``policy.npz``.

    ``meta.json`` is replaced last, so a crash mid-save leaves the previous checkpoint loadable.
    Returns the directory.
    """
    from armfarm.algos.registry import get_algorithm

    algo = get_algorithm(algo_name)
    if not isinstance(config, algo.config_cls):
        raise TypeError(f"{algo_name} needs a {algo.config_cls.__name__}, got {type(config).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = _flatten_state(state)
    step = int(arrays["['step']"])
    try:
        extra_json = json.loads(json.dumps(dict(extra or {}), default=_json_default))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint 'extra' must be JSON-serialisable: {e}") from e

    state_file = f"state-{step:010d}-{uuid.uuid4().hex[:8]}.npz"
    write_atomic(directory / state_file, lambda f: np.savez(f, **arrays))

    policy = algo.export_policy(config, state)
    if stats.obs_keys is not None:
        policy.obs_keys = list(stats.obs_keys)
    policy.save(directory / POLICY_FILE)

    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "armfarm_version": __version__,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "algo": algo.name,
        "step": step,
        "config": config_to_dict(config),
        "stats": stats.to_dict(),
        "extra": extra_json,
        "state_file": state_file,
        "leaves": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    write_atomic(directory / META_FILE, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    fsync_path(directory)
    for old in directory.glob("state-*.npz"):
        if old.name != state_file:
            try:
                old.unlink()
            except OSError:
                pass
    return directory


def load_checkpoint(directory: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`CheckpointNotFoundError` (also a ``FileNotFoundError``) when there is none, and
    :class:`CheckpointError` (a ``ValueError``) for a format-version mismatch, an unknown algorithm, or
    missing/mismatched arrays.
    """
    from armfarm.algos.registry import get_algorithm

    directory = Path(directory)
    meta_path = directory / META_FILE
    if not directory.is_dir():
        raise CheckpointNotFoundError(f"no checkpoint directory at {directory}")
    if not meta_path.is_file():
        raise CheckpointNotFoundError(f"{directory} holds no {META_FILE}; not an armfarm checkpoint")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: unreadable checkpoint metadata ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{meta_path}: not an armfarm checkpoint (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{meta_path}: not an armfarm checkpoint")
    version = meta.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: checkpoint format version {version}, but this armfarm ({__version__}) reads "
            f"version {CHECKPOINT_FORMAT_VERSION}"
        )
    try:
        algo = get_algorithm(meta["algo"])
        config = config_from_dict(algo.config_cls, meta["config"])
        stats = DatasetStats.from_dict(meta["stats"])
        state_path = directory / meta["state_file"]
        step = int(meta["step"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: invalid checkpoint metadata ({type(e).__name__}: {e})") from e
    if not state_path.is_file():
        raise CheckpointError(f"{directory}: state file {state_path.name} named in {META_FILE} is missing")
    try:
        with np.load(state_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise CheckpointError(f"{state_path}: unreadable state arrays ({type(e).__name__}: {e})") from e

    template = jax.eval_shape(lambda: algo.init(config, stats, 0))
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    expected = set()
    for path, spec in paths:
        k = jax.tree_util.keystr(path)
        expected.add(k)
        if k not in arrays:
            raise CheckpointError(f"{state_path}: missing state leaf {k}")
        arr = arrays[k]
        if arr.shape != tuple(spec.shape) or arr.dtype != spec.dtype:
            raise CheckpointError(
                f"{state_path}: leaf {k} is {arr.dtype}{list(arr.shape)}, expected {spec.dtype}{list(spec.shape)}"
            )
        leaves.append(jnp.asarray(arr))
    unexpected = sorted(set(arrays) - expected)
    if unexpected:
        raise CheckpointError(f"{state_path}: unexpected state leaves {unexpected[:5]}")
    state = jax.tree_util.tree_unflatten(treedef, leaves)
    state_step = int(arrays["['step']"])
    if state_step != step:
        raise CheckpointError(f"{directory}: state step {state_step} != meta.json step {step} (interrupted save?)")
    return Checkpoint(algo.name, config, state, stats, step, dict(meta.get("extra") or {}), directory)

