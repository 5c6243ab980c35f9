"""GCIQL: goal-conditioned Implicit Q-Learning on hindsight-relabeled goals.

IQL (Kostrikov et al. 2021, Eqs. 5-6) with every network conditioned on a goal, as OGBench's GCIQL
(Park et al. 2024, Sec. 6). Value goals ``g`` are relabeled (:mod:`armfarm.goals.relabel`: the current
state 20%, a geometric future state 50%, a random state 30%), with ``r = 1(s = g) - 1`` and the episode
ending at the goal (``d = 1(s = g)``):

    L_V(psi)   = E[ L_2^tau( min_i Q_{theta'_i}(s, a, g) - V_psi(s, g) ) ]                    (Eq. 5)
    L_Q(theta) = E[ sum_i (r + gamma (1 - d) V_psi(s', g) - Q_{theta_i}(s, a, g))^2 ]         (Eq. 6)

The actor, on actor goals (a uniform future state of the same episode), is extracted either by DDPG+BC
(OGBench's default; Fujimoto & Gu 2021's form with the Q term normalised by its mean magnitude),

    L_pi(phi) = -E[ min_i Q_{theta_i}(s, mu_phi(s, g), g) ] / sg(E|Q|) + alpha E[ 1/2 ||mu_phi(s, g) - a||^2 ]

or by advantage-weighted regression (``actor_loss="awr"``, IQL's Eq. 7),

    L_pi(phi) = E[ min(exp(alpha (min_i Q(s, a, g) - V(s, g))), 100) 1/2 ||mu_phi(s, g) - a||^2 ].

Actionable Models' two ideas (Chebotar et al. 2021, Sec. 4) are options here:

- **goal chaining**: value goals drawn from *other* episodes (``value_p_randomgoal``, 0.3 by default as
  in OGBench) get no success reward, only the bootstrapped target, so values chain through states that
  several trajectories share and reach goals no single trajectory joins (their Sec. 4.2);
- **conservative negative actions** (``negative_actions = n > 0``, their Sec. 4.3): ``n`` actions drawn
  uniformly per transition are pushed towards the value of never reaching the goal,
  ``Q_min = -1 / (1 - gamma)`` (0 without ``gc_negative``), so actions the data does not show do not
  look better than they are:

      L_neg(theta) = negative_weight E[ sum_i (Q_{theta_i}(s, a~, g) - Q_min)^2 ],  a~ ~ U[-1, 1]^|A|.

Defaults are OGBench's: expectile 0.9, gamma 0.99, Polyak 0.005, layer-normalised 512-512-512 critics
and value network, a 512-512-512 actor, batch 1024, Adam at 3e-4, and ``alpha`` 0.3 (OGBench uses 0.003
on PointMaze). The actor has a constant unit standard deviation (so ``-log pi`` is the squared error
above) and no layer norm, so that it exports as a NumPy policy.
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
from armfarm.algos.core.prng import seed_streams, split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.algos.iql import expectile_loss
from armfarm.goals.relabel import GOAL_BATCH_KEYS
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "gciql"
EXP_ADV_MAX = 100.0


@dataclasses.dataclass(frozen=True)
class GCIQLConfig(GoalConfig):
    """GCIQL hyperparameters (defaults: OGBench's GCIQL)."""

    hidden: tuple[int, ...] = param((512, 512, 512), "hidden layer widths of the actor, critics and value network")
    batch_size: int = param(1024, "transitions per gradient step")
    lr: float = param(3e-4, "Adam learning rate of every network")
    tau: float = param(0.005, "Polyak rate of the target critics")
    expectile: float = param(0.9, "expectile tau of the value loss (Eq. 5)")
    actor_loss: str = param("ddpgbc", "ddpgbc (OGBench's default) or awr")
    alpha: float = param(0.3, "BC coefficient of DDPG+BC, or the AWR inverse temperature")
    layer_norm: bool = param(True, "layer normalisation in the critics and value network")
    init: str = param("lecun", "weight initialiser: torch, lecun or orthogonal")
    negative_actions: int = param(0, "uniform negative actions per transition (Actionable Models; 0: off)")
    negative_weight: float = param(1.0, "weight of the negative-action loss")

    def _validate(self) -> None:
        super()._validate()
        if self.negative_actions < 0 or self.negative_weight < 0:
            raise ValueError("negative_actions and negative_weight must be >= 0")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError("expectile must be in (0, 1)")
        if self.actor_loss not in ("ddpgbc", "awr"):
            raise ValueError(f"actor_loss must be 'ddpgbc' or 'awr', got {self.actor_loss!r}")
        if self.alpha < 0:
            raise ValueError("alpha must be >= 0")


def _optimizer(config: GCIQLConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: GCIQLConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    width, opt = input_dim(config, stats.obs_dim), _optimizer(config)
    actor = init_mlp(rng, (width, *config.hidden, stats.act_dim), config.init)
    critic = init_critic_ensemble(rng, 2, width, stats.act_dim, config.hidden, config.init, config.layer_norm)
    value = init_mlp(rng, (width, *config.hidden, 1), config.init, layer_norm=config.layer_norm)
    return {"step": jnp.zeros((), jnp.int32), "key": key, "norm": make_norm(stats),
            "actor": new_group(actor, opt), "critic": new_group(critic, opt, target=True), "value": new_group(value, opt)}


def update(config: GCIQLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One GCIQL step on L_V, L_Q and L_pi and a target-critic Polyak update. Pure; jit-able."""
    b = goal_inputs(config, state, batch)
    x, act = b["value_in"], b["actions"]
    critic, opt = state["critic"], _optimizer(config)
    target_q = jnp.min(critic_ensemble_apply(critic["target"], x, act), axis=0)
    next_v = mlp_apply(state["value"]["params"], b["value_next_in"])[..., 0]
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * next_v
    new_key = state["key"]
    if config.negative_actions:
        new_key, (neg_key,) = split_key(state["key"], 1)
        n, width = config.negative_actions, x.shape[-1]
        neg_x = jnp.broadcast_to(x[None], (n, *x.shape)).reshape(-1, width)
        neg_a = jax.random.uniform(neg_key, (neg_x.shape[0], act.shape[-1]), minval=-1.0, maxval=1.0)
        floor = -1.0 / (1.0 - config.gamma) if config.gc_negative else 0.0

    def loss_fn(params):
        """L_V (Eq. 5) + L_Q (Eq. 6) + L_pi (DDPG+BC or AWR), on disjoint parameter groups."""
        v = mlp_apply(params["value"], x)[..., 0]
        value_loss = jnp.mean(expectile_loss(target_q - v, config.expectile))
        q = critic_ensemble_apply(params["critic"], x, act)
        critic_loss = jnp.mean(jnp.sum(jnp.square(q - y), axis=0))
        if config.negative_actions:
            q_neg = critic_ensemble_apply(params["critic"], neg_x, neg_a)
            critic_loss += config.negative_weight * jnp.mean(jnp.sum(jnp.square(q_neg - floor), axis=0))
        mean = actor_mean(params["actor"], b["actor_in"])
        bc = actor_nll(mean, act)
        if config.actor_loss == "ddpgbc":
            frozen = jax.lax.stop_gradient(params["critic"])
            q_pi = jnp.min(critic_ensemble_apply(frozen, b["actor_in"], mean), axis=0)
            actor_loss = -jnp.mean(q_pi) / jax.lax.stop_gradient(jnp.mean(jnp.abs(q_pi)) + 1e-6) \
                + config.alpha * jnp.mean(bc)
        else:
            q_a = jnp.min(critic_ensemble_apply(critic["target"], b["actor_in"], act), axis=0)
            adv = q_a - mlp_apply(jax.lax.stop_gradient(params["value"]), b["actor_in"])[..., 0]
            weight = jnp.minimum(jnp.exp(config.alpha * jax.lax.stop_gradient(adv)), EXP_ADV_MAX)
            actor_loss = jnp.mean(weight * bc)
        aux = {"value_loss": value_loss, "critic_loss": critic_loss, "actor_loss": actor_loss,
               "v_mean": jnp.mean(v), "q_mean": jnp.mean(q), "bc_mse": jnp.mean(bc)}
        return value_loss + critic_loss + actor_loss, aux

    params = {"actor": state["actor"]["params"], "critic": critic["params"], "value": state["value"]["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return {**state, "step": state["step"] + 1, "key": new_key,
            "actor": step_group(state["actor"], grads["actor"], opt),
            "critic": step_group(critic, grads["critic"], opt, tau=config.tau),
            "value": step_group(state["value"], grads["value"], opt)}, metrics


def goal_value(config: GCIQLConfig, state: AgentState, x: jax.Array) -> jax.Array:
    """``V(s, g)``: the expectile value network."""
    return mlp_apply(state["value"]["params"], x)[..., 0]


def export_policy(config: GCIQLConfig, state: AgentState) -> NumpyPolicy:
    return export_goal_policy(mlp_policy(NAME, state["actor"]["params"], state, False), config, state)


ALGORITHM = register(Algorithm(NAME, "offline", GCIQLConfig, init, update, export_policy,
                               "Goal-conditioned IQL with a DDPG+BC or AWR actor (Kostrikov et al. 2021; OGBench)",
                               batch_keys=BASE_BATCH_KEYS + GOAL_BATCH_KEYS, goal_conditioned=True,
                               goal_value=goal_value))
