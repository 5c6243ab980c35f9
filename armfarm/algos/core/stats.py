"""Dataset statistics: the constants a learner takes from its data (normalisation, action bounds,
reward scale), and the ``state["norm"]`` arrays made from them."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

OBS_STD_EPS = 1e-3  # TD3+BC (Fujimoto & Gu 2021): s' = (s - mu) / (sigma + 1e-3)


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetStats:
    """Constants a learner needs from its dataset.

    ``obs_std`` already includes the ``+1e-3`` of TD3+BC, so it is never zero. ``return_range`` is
    ``max - min`` of the episode returns (IQL's reward scale), or ``None`` when unknown. ``obs_keys`` is
    the dict-observation key order (``None`` for array observations); it is copied into exported
    policies by :func:`save_checkpoint`. ``obs_shape`` is ``(H, W, C)`` for image observations (which
    encoders rescale themselves, so their ``obs_mean`` is 0 and ``obs_std`` 1), else ``None``.
    """

    obs_dim: int
    act_dim: int
    obs_mean: np.ndarray
    obs_std: np.ndarray
    action_low: np.ndarray
    action_high: np.ndarray
    return_range: float | None = None
    obs_keys: tuple[str, ...] | None = None
    obs_shape: tuple[int, ...] | None = None

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
        if self.obs_shape is not None:
            shape = tuple(int(d) for d in self.obs_shape)
            if int(np.prod(shape)) != self.obs_dim:
                raise ValueError(f"DatasetStats.obs_shape {shape} does not hold obs_dim = {self.obs_dim} values")
            object.__setattr__(self, "obs_shape", shape)

    @property
    def images(self) -> bool:
        """Whether observations are ``(H, W, C)`` images."""
        return self.obs_shape is not None and len(self.obs_shape) == 3

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
        obs_shape = getattr(ds, "obs_shape", None)
        images = obs_shape is not None and len(obs_shape) == 3
        if images:  # a FrameSampler: only the actions are read
            obs, act = np.zeros((1, int(np.prod(obs_shape)))), np.asarray(ds.actions)
        elif hasattr(ds, "observations") and hasattr(ds, "actions"):
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
        if obs.ndim < 2 or act.ndim < 2 or obs.shape[0] == 0 or (obs.shape[0] != act.shape[0] and not images):
            raise ValueError(
                f"dataset needs observations (N, obs_dim) and actions (N, act_dim) with N >= 1, "
                f"got {obs.shape} and {act.shape}"
            )
        obs = obs.reshape(obs.shape[0], -1).astype(np.float64)
        act = act.reshape(act.shape[0], -1).astype(np.float64)
        mean = obs.mean(axis=0)
        std = np.ones_like(mean) if images else obs.std(axis=0) + std_eps

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
            obs_shape=tuple(obs_shape) if images else None,
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
            "obs_shape": list(self.obs_shape) if self.obs_shape is not None else None,
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
