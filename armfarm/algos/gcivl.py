"""GCIVL: goal-conditioned implicit V-learning, IQL's value learning without a Q-function.

OGBench's GCIVL (Park et al. 2024, Sec. 6), the flat value learner of HIQL (Park et al. 2023, Eq. 3).
Twin value networks ``V_1, V_2`` on relabeled value goals (the current state 20%, a geometric future
state 50%, a random state 30%; ``r = 1(s = g) - 1``, ``d = 1(s = g)``) regress, with an expectile,
onto targets that bootstrap from target networks ``V'``:

    y_i = r + gamma (1 - d) V'_i(s', g),     A = r + gamma (1 - d) min_i V'_i(s', g) - (V'_1 + V'_2)(s, g) / 2
    L_V(psi) = E[ sum_i |tau - 1(A < 0)| (y_i - V_i(s, g))^2 ]                                  (HIQL Eq. 3)

(the expectile's weight comes from the target networks' advantage, as in double Q-learning). The
actor, on actor goals (a uniform future state of the same episode), is extracted by advantage-weighted
regression with the one-step advantage ``V(s', g) - V(s, g)`` (``V`` the twins' mean):

    L_pi(phi) = E[ min(exp(alpha (V(s', g) - V(s, g))), 100) 1/2 ||mu_phi(s, g) - a||^2 ]

Defaults are OGBench's: expectile 0.9, alpha 10, gamma 0.99, Polyak 0.005, layer-normalised 512-512-512
value networks, a 512-512-512 actor with a constant unit standard deviation, batch 1024, Adam at 3e-4.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import BASE_BATCH_KEYS, Algorithm, register
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.goals import (
    GoalConfig,
    actor_mean,
    actor_nll,
    export_goal_policy,
    goal_inputs,
    input_dim,
)
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.goals.relabel import GOAL_BATCH_KEYS
from armfarm.nets.mlp import ensemble_apply, init_ensemble, init_mlp
from armfarm.policy import NumpyPolicy

NAME = "gcivl"
EXP_ADV_MAX = 100.0


@dataclasses.dataclass(frozen=True)
class GCIVLConfig(GoalConfig):
    """GCIVL hyperparameters (defaults: OGBench's GCIVL)."""

    hidden: tuple[int, ...] = param((512, 512, 512), "hidden layer widths of the actor and value networks")
    batch_size: int = param(1024, "transitions per gradient step")
    lr: float = param(3e-4, "Adam learning rate of every network")
    tau: float = param(0.005, "Polyak rate of the target value networks")
    expectile: float = param(0.9, "expectile tau of the value loss")
    alpha: float = param(10.0, "AWR inverse temperature")
    layer_norm: bool = param(True, "layer normalisation in the value networks")
    init: str = param("lecun", "weight initialiser: torch, lecun or orthogonal")

    def _validate(self) -> None:
        super()._validate()
        if not 0.0 < self.expectile < 1.0:
            raise ValueError("expectile must be in (0, 1)")
        if self.alpha < 0:
            raise ValueError("alpha must be >= 0")


def _optimizer(config: GCIVLConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: GCIVLConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    width, opt = input_dim(config, stats.obs_dim), _optimizer(config)
    actor = init_mlp(rng, (width, *config.hidden, stats.act_dim), config.init)
    value = init_ensemble(rng, 2, (width, *config.hidden, 1), config.init, layer_norm=config.layer_norm)
    return {"step": jnp.zeros((), jnp.int32), "key": key, "norm": make_norm(stats),
            "actor": new_group(actor, opt), "value": new_group(value, opt, target=True)}


def values(params, x: jax.Array) -> jax.Array:
    """Both value networks at ``x`` -> ``[2, B]``."""
    return ensemble_apply(params, x)[..., 0]


def update(config: GCIVLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One GCIVL step on the value and actor losses and a target Polyak update. Pure; jit-able."""
    b = goal_inputs(config, state, batch)
    value, opt = state["value"], _optimizer(config)
    not_done = config.gamma * (1.0 - b["terminals"])
    next_t = values(value["target"], b["value_next_in"])  # [2, B]
    y = b["rewards"] + not_done * next_t
    adv_t = b["rewards"] + not_done * jnp.min(next_t, axis=0) - jnp.mean(values(value["target"], b["value_in"]), axis=0)
    weight_v = jnp.where(adv_t >= 0, config.expectile, 1.0 - config.expectile)
    v_now = jnp.mean(values(value["params"], b["actor_in"]), axis=0)
    v_next = jnp.mean(values(value["params"], b["actor_next_in"]), axis=0)
    weight_pi = jnp.minimum(jnp.exp(config.alpha * (v_next - v_now)), EXP_ADV_MAX)

    def loss_fn(params):
        """The value loss (HIQL Eq. 3, twin networks) + the AWR actor loss, on disjoint parameter groups."""
        v = values(params["value"], b["value_in"])
        value_loss = jnp.mean(jnp.sum(weight_v * jnp.square(y - v), axis=0))
        mean = actor_mean(params["actor"], b["actor_in"])
        bc = actor_nll(mean, b["actions"])
        actor_loss = jnp.mean(weight_pi * bc)
        return value_loss + actor_loss, {"value_loss": value_loss, "actor_loss": actor_loss, "v_mean": jnp.mean(v),
                                         "adv_mean": jnp.mean(v_next - v_now), "bc_mse": jnp.mean(bc)}

    params = {"actor": state["actor"]["params"], "value": value["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return {**state, "step": state["step"] + 1, "actor": step_group(state["actor"], grads["actor"], opt),
            "value": step_group(value, grads["value"], opt, tau=config.tau)}, metrics


def goal_value(config: GCIVLConfig, state: AgentState, x: jax.Array) -> jax.Array:
    """``V(s, g)``: the twin value networks' mean."""
    return values(state["value"]["params"], x).mean(0)


def export_policy(config: GCIVLConfig, state: AgentState) -> NumpyPolicy:
    return export_goal_policy(mlp_policy(NAME, state["actor"]["params"], state, False), config, state)


ALGORITHM = register(Algorithm(NAME, "offline", GCIVLConfig, init, update, export_policy,
                               "Goal-conditioned implicit V-learning with an AWR actor (OGBench's GCIVL; HIQL Eq. 3)",
                               batch_keys=BASE_BATCH_KEYS + GOAL_BATCH_KEYS, goal_conditioned=True,
                               goal_value=goal_value))
