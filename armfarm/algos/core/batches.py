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
# the per-transition shape of extra batch keys that are not scalars ("goal_dim": any one width, the same for all)
EXTRA_TAILS = {"next_actions": "act_dim", "value_goals": "goal_dim", "actor_goals": "goal_dim",
               "subgoals": "goal_dim", "subgoal_targets": "goal_dim", "subgoal_target_observations": "obs_dim"}


def check_batch(batch: Mapping[str, Any], obs_dim: int | tuple[int, ...], act_dim: int, lead_ndim: int = 1,
                keys: tuple[str, ...] = BATCH_KEYS) -> None:
    """Raise a ``ValueError`` naming the field if ``batch`` lacks one of ``keys`` or has a wrong shape.

    ``obs_dim`` is the length of a state vector, or the ``(H, W, C)`` shape of image observations.
    ``lead_ndim`` is 1 for a single batch ``(B, ...)`` and 2 for stacked batches ``(K, B, ...)``. Keys
    beyond the five base keys (an algorithm's extras) are shaped as :data:`EXTRA_TAILS` says (per
    transition scalars otherwise).
    """
    if not isinstance(batch, Mapping):
        raise ValueError(f"a batch must be a dict with keys {list(keys)}, got {type(batch).__name__}")
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}; a batch needs keys {list(keys)}")
    obs_tail = tuple(obs_dim) if isinstance(obs_dim, tuple) else (obs_dim,)
    obs_names = ("H", "W", "C") if isinstance(obs_dim, tuple) else ("obs_dim",)
    lead = tuple(np.shape(batch["observations"])[:lead_ndim])
    names = ("B",) if lead_ndim == 1 else ("K", "B")
    if len(lead) != lead_ndim or any(n < 1 for n in lead):
        raise ValueError(
            f"batch field 'observations' has shape {np.shape(batch['observations'])}; expected "
            f"({', '.join(names)}, {', '.join(obs_names)}) with obs_dim={obs_dim}"
        )
    expected = {
        "observations": ((*lead, *obs_tail), (*names, *obs_names)),
        "next_observations": ((*lead, *obs_tail), (*names, *obs_names)),
        "actions": ((*lead, act_dim), (*names, "act_dim")),
        "rewards": (lead, names),
        "terminals": (lead, names),
    }
    goal_dims = {np.shape(batch[k])[-1] for k in keys if EXTRA_TAILS.get(k) == "goal_dim" and np.ndim(batch[k]) > lead_ndim}
    goal_dim = goal_dims.pop() if len(goal_dims) == 1 else -1
    for k in keys:
        if k not in BATCH_KEYS:
            tail = {"act_dim": (act_dim,), "obs_dim": (obs_dim,),
                    "goal_dim": (goal_dim,)}.get(EXTRA_TAILS.get(k, ""), ())
            expected[k] = ((*lead, *tail), (*names, *([EXTRA_TAILS[k]] if tail else [])))
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


def episode_bounds(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) index of each episode of ``data``: from ``episode_starts`` where it has
    them, else split after every terminal or timeout."""
    n = len(data.rewards)
    starts = getattr(data, "episode_starts", None)
    if starts is None:
        done = np.asarray(data.terminals) > 0
        if getattr(data, "timeouts", None) is not None:
            done |= np.asarray(data.timeouts) > 0
        ends = np.flatnonzero(done)
        starts = np.concatenate([[0], ends[ends + 1 < n] + 1])
    starts = np.asarray(starts, np.int64)
    return starts, np.append(starts[1:], n)


def next_actions(data: Any, config: Any) -> np.ndarray:
    """``a_{t+1}`` of each transition's episode; an episode's last transition repeats its own action
    (its successor is not in the data; the Bellman target of a terminal step does not use it)."""
    actions = np.asarray(data.actions, np.float32)
    out = np.empty_like(actions)
    for start, end in zip(*episode_bounds(data), strict=True):
        out[start:end - 1] = actions[start + 1:end]
        out[end - 1] = actions[end - 1]
    return out


def mc_returns(data: Any, config: Any) -> np.ndarray:
    """The discounted return-to-go ``sum_{k>=t} gamma^(k-t) r_k`` within each episode (``config.gamma``),
    the Monte-Carlo value of the behaviour policy that Cal-QL calibrates against."""
    rewards = np.asarray(data.rewards, np.float64)
    out = np.empty(len(rewards), np.float64)
    for start, end in zip(*episode_bounds(data), strict=True):
        running = 0.0
        for t in range(end - 1, start - 1, -1):
            running = rewards[t] + config.gamma * running
            out[t] = running
    return out.astype(np.float32)


def costs(data: Any, config: Any) -> np.ndarray:
    """The per-transition cost ``c_t >= 0`` the data records (zeros where it records none)."""
    recorded = getattr(data, "costs", None)
    return np.zeros(len(data.rewards), np.float32) if recorded is None else np.asarray(recorded, np.float32)


COLUMNS = {"next_actions": next_actions, "mc_returns": mc_returns, "costs": costs}


def add_batch_columns(data: Any, keys: tuple[str, ...], config: Any) -> None:
    """Give ``data`` (a dataset with ``extra``) the columns among ``keys`` beyond the base five, so its
    batches carry them. Raises ValueError for a key nothing can compute."""
    wanted = [k for k in keys if k not in BATCH_KEYS]
    if not wanted:
        return
    extra = getattr(data, "extra", None)
    if extra is None:
        raise ValueError(f"batches need {wanted}, which only an in-memory dataset (TransitionDataset) can carry")
    for key in wanted:
        if key not in COLUMNS:
            raise ValueError(f"no batch column {key!r}; known columns: {', '.join(sorted(COLUMNS))}")
        if key not in extra:
            extra[key] = COLUMNS[key](data, config)
