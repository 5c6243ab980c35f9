"""HIQL: hierarchical implicit Q-learning, a high-level policy over latent subgoals and a low-level
policy that reaches them, both extracted from one goal-conditioned value.

Park et al. 2023, "HIQL: Offline Goal-Conditioned RL with Latent States as Actions", as OGBench runs it.

**Value** (Eq. 3, GCIVL's): twin ``V_i(s, g) = v_i(s, phi([s, g]))`` whose goal enters through a
representation ``phi`` (``rep_dim`` wide, rescaled to length ``sqrt(rep_dim)``), trained with the
action-free expectile loss against target networks ``V'`` (Polyak copies of ``v`` and ``phi``):

    A = r + gamma (1 - d) min_i V'_i(s', g) - (V'_1 + V'_2)(s, g) / 2
    L_V = E[ sum_i |tau - 1(A < 0)| (r + gamma (1 - d) V'_i(s', g) - V_i(s, g))^2 ]

**High-level policy** (Eq. 6): on actor goals ``g`` (a uniform future state) it proposes the
representation of the state ``k`` steps ahead (``subgoal_targets``: ``s_{t+k}``, not past ``g``),
by advantage-weighted regression with the ``k``-step advantage:

    L_h = E[ exp(beta_h (V(s_{t+k}, g) - V(s, g))) 1/2 ||mu_h(s, g) - phi([s, s_{t+k}])||^2 ]

**Low-level policy** (Eq. 7): towards the subgoal ``w = s_{t+k}`` (``subgoals``), given as its
representation, with the one-step advantage:

    L_l = E[ exp(beta_l (V(s', w) - V(s, w))) 1/2 ||mu_l(s, phi([s, w])) - a||^2 ]

Weights are clipped at 100. ``phi`` is trained by the value loss only: the actors see it through a
stop-gradient (OGBench's ``low_actor_rep_grad=False`` for states). At run time the high level's output
is rescaled like ``phi`` and fed to the low level; the exported NumPy policy chains both
(:class:`armfarm.policy.SubgoalStage`), so the robot needs no JAX.

Defaults are OGBench's: ``k = 25``, ``rep_dim = 10``, expectile 0.7, ``beta_h = beta_l = 3``, gamma 0.99,
Polyak 0.005, layer-normalised 512-512-512 value and representation networks, 512-512-512 actors with a
constant unit standard deviation, value goals as GCIVL's, batch 1024, Adam at 3e-4.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import BASE_BATCH_KEYS, Algorithm, register
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.goals import (
    GoalConfig,
    actor_mean,
    actor_nll,
    composer,
    export_goal_policy,
    goal_inputs,
    goal_space,
    input_dim,
    split_input,
)
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.goals.relabel import GOAL_BATCH_KEYS, SUBGOAL_BATCH_KEYS
from armfarm.nets.mlp import ensemble_apply, init_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy, SubgoalStage

NAME = "hiql"
EXP_ADV_MAX = 100.0


@dataclasses.dataclass(frozen=True)
class HIQLConfig(GoalConfig):
    """HIQL hyperparameters (defaults: OGBench's HIQL)."""

    hidden: tuple[int, ...] = param((512, 512, 512), "hidden layer widths of the actors, value and representation")
    batch_size: int = param(1024, "transitions per gradient step")
    lr: float = param(3e-4, "Adam learning rate of every network")
    tau: float = param(0.005, "Polyak rate of the target value and representation")
    expectile: float = param(0.7, "expectile tau of the value loss (Eq. 3)")
    high_alpha: float = param(3.0, "AWR inverse temperature beta_h of the high-level policy")
    low_alpha: float = param(3.0, "AWR inverse temperature beta_l of the low-level policy")
    subgoal_steps: int = param(25, "k: how many steps ahead a subgoal is")
    rep_dim: int = param(10, "width of the goal representation phi([s, g])")
    layer_norm: bool = param(True, "layer normalisation in the value and representation networks")
    init: str = param("lecun", "weight initialiser: torch, lecun or orthogonal")

    def _validate(self) -> None:
        super()._validate()
        if not 0.0 < self.expectile < 1.0:
            raise ValueError("expectile must be in (0, 1)")
        if self.subgoal_steps < 1:
            raise ValueError("subgoal_steps must be >= 1")
        if self.rep_dim < 1:
            raise ValueError("rep_dim must be >= 1")
        if self.high_alpha < 0 or self.low_alpha < 0:
            raise ValueError("high_alpha and low_alpha must be >= 0")


def _optimizer(config: HIQLConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: HIQLConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    width, opt = input_dim(config, stats.obs_dim), _optimizer(config)
    low_in = stats.obs_dim + config.rep_dim
    value = {"rep": init_mlp(rng, (width, *config.hidden, config.rep_dim), config.init, layer_norm=config.layer_norm),
             "v": init_ensemble(rng, 2, (low_in, *config.hidden, 1), config.init, layer_norm=config.layer_norm)}
    high = init_mlp(rng, (width, *config.hidden, config.rep_dim), config.init)
    low = init_mlp(rng, (low_in, *config.hidden, stats.act_dim), config.init)
    return {"step": jnp.zeros((), jnp.int32), "key": key, "norm": make_norm(stats),
            "value": new_group(value, opt, target=True), "high": new_group(high, opt), "low": new_group(low, opt)}


def length_normalize(z: jax.Array) -> jax.Array:
    """``z`` rescaled to length ``sqrt(dim)`` (as the exported :class:`SubgoalStage` does)."""
    return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-6) * jnp.sqrt(float(z.shape[-1]))


def representation(params, x: jax.Array) -> jax.Array:
    """``phi([s, g])`` for the networks' input ``x = [s, g]``."""
    return length_normalize(mlp_apply(params["rep"], x))


def values(config: HIQLConfig, params, x: jax.Array, obs_dim: int) -> jax.Array:
    """Both ``V_i(s, g) = v_i(s, phi([s, g]))`` at ``x = [s, g]`` -> ``[2, B]``."""
    s, _ = split_input(config, x, obs_dim)
    return ensemble_apply(params["v"], jnp.concatenate([s, representation(params, x)], axis=-1))[..., 0]


def update(config: HIQLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One HIQL step on the value, high-level and low-level losses and a target Polyak update. Pure."""
    b = goal_inputs(config, state, batch)
    obs_dim = state["norm"]["obs_mean"].shape[0]
    compose = composer(config, state)
    value, opt = state["value"], _optimizer(config)
    # the value's targets (Eq. 3), from the target networks
    next_v_t = values(config, value["target"], b["value_next_in"], obs_dim)
    v_t = values(config, value["target"], b["value_in"], obs_dim)
    not_done = config.gamma * (1.0 - b["terminals"])
    adv = b["rewards"] + not_done * jnp.min(next_v_t, axis=0) - jnp.mean(v_t, axis=0)
    y = b["rewards"] + not_done * next_v_t
    # the actors' advantages and targets, from the current value (no gradient)
    frozen = jax.lax.stop_gradient(value["params"])
    obs, next_obs = b["observations"], b["next_observations"]
    low_in, low_next_in = compose(obs, batch["subgoals"]), compose(next_obs, batch["subgoals"])
    low_adv = jnp.mean(values(config, frozen, low_next_in, obs_dim) - values(config, frozen, low_in, obs_dim), axis=0)
    target_in = compose(obs, batch["subgoal_targets"])
    target_state = jnp.asarray(batch["subgoal_target_observations"], jnp.float32)
    high_adv = jnp.mean(values(config, frozen, compose(target_state, batch["actor_goals"]), obs_dim)
                        - values(config, frozen, b["actor_in"], obs_dim), axis=0)
    high_target = representation(frozen, target_in)
    low_goal_rep = representation(frozen, low_in)
    s_blank, _ = split_input(config, b["actor_in"], obs_dim)

    def loss_fn(params):
        """L_V (Eq. 3) + L_h (Eq. 6) + L_l (Eq. 7), on disjoint parameter groups."""
        v = values(config, params["value"], b["value_in"], obs_dim)
        weight = jnp.where(adv < 0, 1.0 - config.expectile, config.expectile)
        value_loss = jnp.mean(jnp.sum(weight * jnp.square(y - v), axis=0))
        high_mean = mlp_apply(params["high"], b["actor_in"])
        high_w = jnp.minimum(jnp.exp(config.high_alpha * high_adv), EXP_ADV_MAX)
        high_loss = jnp.mean(high_w * actor_nll(high_mean, high_target))
        low_mean = actor_mean(params["low"], jnp.concatenate([s_blank, low_goal_rep], axis=-1))
        low_w = jnp.minimum(jnp.exp(config.low_alpha * low_adv), EXP_ADV_MAX)
        low_bc = actor_nll(low_mean, b["actions"])
        low_loss = jnp.mean(low_w * low_bc)
        aux = {"value_loss": value_loss, "high_actor_loss": high_loss, "low_actor_loss": low_loss,
               "v_mean": jnp.mean(v), "high_adv": jnp.mean(high_adv), "low_adv": jnp.mean(low_adv),
               "bc_mse": jnp.mean(low_bc)}
        return value_loss + high_loss + low_loss, aux

    params = {"value": value["params"], "high": state["high"]["params"], "low": state["low"]["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return {**state, "step": state["step"] + 1,
            "value": step_group(value, grads["value"], opt, tau=config.tau),
            "high": step_group(state["high"], grads["high"], opt),
            "low": step_group(state["low"], grads["low"], opt)}, metrics


def goal_value(config: HIQLConfig, state: AgentState, x: jax.Array) -> jax.Array:
    """``V(s, g)``: the twin values' mean."""
    return values(config, state["value"]["params"], x, state["norm"]["obs_mean"].shape[0]).mean(0)


def export_policy(config: HIQLConfig, state: AgentState) -> NumpyPolicy:
    """The low-level actor behind a :class:`SubgoalStage` holding the high-level actor."""
    low = mlp_policy(NAME, state["low"]["params"], state, False)
    obs_dim = int(state["norm"]["obs_mean"].shape[0])
    space = goal_space(config, obs_dim)
    mask = np.ones(space.input_dim, np.float32)
    if space.slot is not None:
        mask[space.slot[0]:space.slot[1]] = 0.0
    high = jax.device_get(state["high"]["params"])
    stage = SubgoalStage([np.asarray(layer["w"]) for layer in high], [np.asarray(layer["b"]) for layer in high],
                         mask, obs_dim)
    policy = NumpyPolicy(low.weights, low.biases, action_low=low.action_low, action_high=low.action_high,
                         metadata=low.metadata, subgoal=stage)
    return export_goal_policy(policy, config, state)


ALGORITHM = register(Algorithm(NAME, "offline", HIQLConfig, init, update, export_policy,
                               "HIQL: hierarchical IQL with latent subgoals (Park et al. 2023; OGBench)",
                               batch_keys=BASE_BATCH_KEYS + GOAL_BATCH_KEYS + SUBGOAL_BATCH_KEYS,
                               goal_conditioned=True, goal_value=goal_value))
