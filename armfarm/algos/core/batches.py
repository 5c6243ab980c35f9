"""Batches: the keys an update reads, their shape checks, and preprocessing inside ``update``.

A batch is a dict of float32 arrays ``observations (B, obs_dim)``, ``actions (B, act_dim)``,
``rewards (B,)``, ``next_observations (B, obs_dim)``, ``terminals (B,)``, plus whatever extra keys an
algorithm declares (:attr:`Algorithm.batch_keys`); the fused call takes the same with a leading ``K`` axis.
Inside ``update`` actions are mapped from ``[action_low, action_high]`` to ``[-1, 1]`` and observations
are standardised when the config's ``normalize_obs`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from armfarm.algos.core.contract import BASE_BATCH_KEYS as BATCH_KEYS

AgentState = dict[str, Any]
Batch = dict[str, Any]


def check_batch(batch: Mapping[str, Any], obs_dim: int, act_dim: int, lead_ndim: int = 1,
                keys: tuple[str, ...] = BATCH_KEYS) -> None:
    """Raise a ``ValueError`` naming the field if ``batch`` lacks one of ``keys`` or has a wrong shape.

    ``lead_ndim`` is 1 for a single batch ``(B, ...)`` and 2 for stacked batches ``(K, B, ...)``. Keys
    beyond the five base keys (an algorithm's extras) are per-transition scalars, shaped like rewards.
    """
    if not isinstance(batch, Mapping):
        raise ValueError(f"a batch must be a dict with keys {list(keys)}, got {type(batch).__name__}")
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}; a batch needs keys {list(keys)}")
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
        **{k: (lead, names) for k in keys if k not in BATCH_KEYS},
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
