"""Helpers shared by the data-layer tests: random episodes and exact comparisons."""

from __future__ import annotations

import numpy as np

from armfarm.data import Episode


def make_episode(
    rng: np.random.Generator,
    T: int = 10,
    obs_shape=(11,),
    act_shape=(3,),
    dict_obs: bool = False,
    end: str = "terminated",
    **meta,
) -> Episode:
    """A random float32 episode of T transitions ending as ``end`` ("terminated", "truncated", "none")."""
    if dict_obs:
        observations = {
            "observation": rng.normal(size=(T + 1, *obs_shape)).astype(np.float32),
            "desired_goal": rng.normal(size=(T + 1, 3)).astype(np.float32),
            "achieved_goal": rng.normal(size=(T + 1, 3)).astype(np.float32),
        }
    else:
        observations = rng.normal(size=(T + 1, *obs_shape)).astype(np.float32)
    terminated = np.zeros(T, dtype=bool)
    truncated = np.zeros(T, dtype=bool)
    if end == "terminated":
        terminated[-1] = True
    elif end == "truncated":
        truncated[-1] = True
    return Episode(
        observations=observations,
        actions=rng.uniform(-1, 1, size=(T, *act_shape)).astype(np.float32),
        rewards=rng.normal(size=T).astype(np.float32),
        terminated=terminated,
        truncated=truncated,
        **meta,
    )


def assert_episodes_equal(a: Episode, b: Episode, metadata: bool = True) -> None:
    """Exact equality of arrays (values, dtypes, shapes) and, optionally, metadata."""

    def same(x, y, name):
        assert x.dtype == y.dtype, (name, x.dtype, y.dtype)
        assert x.shape == y.shape, (name, x.shape, y.shape)
        np.testing.assert_array_equal(x, y, err_msg=name)

    if isinstance(a.observations, dict):
        assert isinstance(b.observations, dict) and sorted(a.observations) == sorted(b.observations)
        for k in a.observations:
            same(np.asarray(a.observations[k]), np.asarray(b.observations[k]), f"observations.{k}")
    else:
        same(a.observations, b.observations, "observations")
    for name in ("actions", "rewards", "terminated", "truncated"):
        same(getattr(a, name), getattr(b, name), name)
    if metadata:
        for name in ("episode_id", "collector_id", "policy_id", "env_id", "seed", "created_at"):
            assert getattr(a, name) == getattr(b, name), name
