"""What the goal-conditioned algorithms share: the relabeling and goal-space fields of their configs,
the networks' inputs ``[s, g]`` built inside ``update``, and the exported policy's goal metadata.

The goal space (:class:`armfarm.goals.space.GoalSpace`) is resolved from the data before training
(:func:`resolve_config`) and then fixed in the config (``goal_dims``, ``goal_slot``), so a checkpoint
or an exported policy says how it combines an observation with a goal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from armfarm.algos.core.batches import AgentState, add_batch_columns, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.goals.relabel import GoalSampler, check_rates
from armfarm.goals.space import GoalSpace, resolve_goal_space
from armfarm.nets.mlp import mlp_apply


@dataclasses.dataclass(frozen=True)
class GoalConfig(ConfigBase):
    """Fields every goal-conditioned config has (defaults: OGBench's value-learning agents)."""

    gamma: float = param(0.99, "discount (also the geometric goal-offset parameter 1 - gamma)")
    goal_dims: tuple[int, ...] | None = param(None, "observation indices that form a goal (None: the whole "
                                                    "state, or the achieved_goal entry of dict observations)")
    goal_slot: tuple[int, int] | None = param(None, "(start, stop) of the desired_goal entry in the flattened "
                                                    "observation (set from the data; None: goals are appended)")
    goal_threshold: float = param(0.0, "success radius in goal space for the relabeled reward (0: the goal's "
                                       "own state only, OGBench's training reward)")
    value_p_curgoal: float = param(0.2, "probability that a value goal is the current state")
    value_p_trajgoal: float = param(0.5, "probability that a value goal is a future state of the same episode")
    value_p_randomgoal: float = param(0.3, "probability that a value goal is a random dataset state")
    value_geom_sample: bool = param(True, "future value goals at Geometric(1 - gamma) offsets (else uniform)")
    actor_p_curgoal: float = param(0.0, "probability that an actor goal is the current state")
    actor_p_trajgoal: float = param(1.0, "probability that an actor goal is a future state of the same episode")
    actor_p_randomgoal: float = param(0.0, "probability that an actor goal is a random dataset state")
    actor_geom_sample: bool = param(False, "future actor goals at Geometric(1 - gamma) offsets (else uniform)")
    gc_negative: bool = param(True, "reward 0 at the goal and -1 elsewhere (else 1 and 0)")
    normalize_obs: bool = param(False, "standardise observations and goals with the data's mean and std")

    def _validate(self) -> None:
        check_rates(self)
        if not self.goal_threshold >= 0:
            raise ValueError("goal_threshold must be >= 0")
        if self.gamma >= 1.0:
            raise ValueError("gamma must be < 1 for goal-conditioned learning (geometric goal offsets)")


def goal_space(config: GoalConfig, obs_dim: int) -> GoalSpace:
    """The config's goal space for ``obs_dim``-wide observations (after :func:`resolve_config`)."""
    return GoalSpace(obs_dim, config.goal_dims if config.goal_dims is not None else tuple(range(obs_dim)),
                     config.goal_slot, config.goal_threshold)


def resolve_config(config: GoalConfig, obs_dim: int, key_sizes: dict[str, int] | None) -> GoalConfig:
    """``config`` with ``goal_dims`` and ``goal_slot`` fixed from the data's layout."""
    space = resolve_goal_space(obs_dim, config.goal_dims, config.goal_threshold, key_sizes)
    return dataclasses.replace(config, goal_dims=space.dims, goal_slot=space.slot)


def composer(config: GoalConfig, state: AgentState):
    """``compose(obs, goal) -> [s, g]``, the networks' input for ``(B, obs_dim)`` observations and
    ``(B, goal_dim)`` goals, standardised when ``normalize_obs``."""
    obs_dim = state["norm"]["obs_mean"].shape[0]
    space = goal_space(config, obs_dim)
    if config.normalize_obs:
        dims = jnp.asarray(space.dims)
        mean = space.compose(state["norm"]["obs_mean"], state["norm"]["obs_mean"][dims], jnp)
        std = space.compose(state["norm"]["obs_std"], state["norm"]["obs_std"][dims], jnp)

    def compose(obs, goal):
        x = space.compose(jnp.asarray(obs, jnp.float32), jnp.asarray(goal, jnp.float32), jnp)
        return (x - mean) / std if config.normalize_obs else x

    return compose


def goal_inputs(config: GoalConfig, state: AgentState, batch: dict) -> dict[str, jax.Array]:
    """The preprocessed batch (actions in [-1, 1]; relabeled rewards and terminals) plus the networks'
    inputs ``[s, g]``: ``value_in``/``value_next_in`` with the value goals and ``actor_in``/
    ``actor_next_in`` with the actor goals (see :func:`composer`)."""
    b = preprocess(state, batch, False)
    compose = composer(config, state)
    value_goals, actor_goals = batch["value_goals"], batch["actor_goals"]
    return {**b,
            "value_in": compose(b["observations"], value_goals),
            "value_next_in": compose(b["next_observations"], value_goals),
            "actor_in": compose(b["observations"], actor_goals),
            "actor_next_in": compose(b["next_observations"], actor_goals)}


def split_input(config: GoalConfig, x: jax.Array, obs_dim: int) -> tuple[jax.Array, jax.Array]:
    """The networks' input ``[s, g]`` as ``(s with any goal slot blanked, g)``, for networks that must
    see the state without the goal (CRL's ``phi``, HIQL's value and low-level actor)."""
    space = goal_space(config, obs_dim)
    if space.slot is None:
        return x[..., :obs_dim], x[..., obs_dim:]
    start, stop = space.slot
    return x.at[..., start:stop].set(0.0), x[..., start:stop]


def steps_to_goal(config: GoalConfig, value: jax.Array) -> jax.Array:
    """The number of steps ``d`` to the goal that a goal-conditioned value implies: with reward -1 until
    the goal (``gc_negative``) ``V = -(1 - gamma^d) / (1 - gamma)``, else ``V = gamma^d`` (reward 1 on
    arrival), each solved for ``d`` (>= 0; values past the bounds clip)."""
    g = config.gamma
    if config.gc_negative:
        frac = jnp.clip(1.0 + (1.0 - g) * value, 1e-6, 1.0)
    else:
        frac = jnp.clip(value, 1e-6, 1.0)
    return jnp.log(frac) / jnp.log(g)


def actor_mean(params, x: jax.Array) -> jax.Array:
    """The goal-conditioned actor's action ``tanh(f(s, g))`` (the exported policy's output)."""
    return mlp_apply(params, x, final_activation=jnp.tanh)


def actor_nll(mean: jax.Array, actions: jax.Array) -> jax.Array:
    """``-log pi(a | s, g)`` per row, up to a constant, for OGBench's actor of constant unit standard
    deviation: ``1/2 ||mean - a||^2``."""
    return 0.5 * jnp.sum(jnp.square(mean - actions), axis=-1)


def input_dim(config: GoalConfig, obs_dim: int) -> int:
    return goal_space(config, obs_dim).input_dim


def export_goal_policy(policy: Any, config: GoalConfig, state: AgentState) -> Any:
    """``policy`` (an exported actor on ``[s, g]``) with the goal space in its metadata and, when
    observations were standardised, the composed normalisation."""
    obs_dim = int(state["norm"]["obs_mean"].shape[0])
    space = goal_space(config, obs_dim)
    policy.metadata["goal"] = space.to_json()
    if config.normalize_obs:
        mean, std = jax.device_get((state["norm"]["obs_mean"], state["norm"]["obs_std"]))
        policy.obs_mean = space.compose(mean, mean[list(space.dims)]).astype("float32")
        policy.obs_std = space.compose(std, std[list(space.dims)]).astype("float32")
    return policy


def batch_source(algo: Any, config: Any, data: Any, spec: Any = None) -> tuple[Any, Any]:
    """What the training batches are drawn from, and the config to train with. A goal-conditioned
    algorithm gets its goal space fixed from the data's layout and a :class:`GoalSampler` over
    ``data``; the others get ``data`` with the extra columns their batches carry. ``spec`` (the store's
    :class:`~armfarm.data.schema.StoreSpec`) gives the dict-observation layout, if any."""
    if not algo.goal_conditioned:
        add_batch_columns(data, algo.batch_keys, config)
        return config, data
    key_sizes = {key: s.size for key, s in spec.obs_items()} if spec is not None and spec.obs_keys else None
    obs_dim = int(np.shape(data.observations)[1])
    config = resolve_config(config, obs_dim, key_sizes)
    return config, GoalSampler(data, goal_space(config, obs_dim), config)
