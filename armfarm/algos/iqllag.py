"""IQL-Lag: Implicit Q-Learning under a cost budget, by Lagrangian relaxation of its policy extraction.

The reward side is IQL (Kostrikov et al. 2021; see :mod:`armfarm.algos.iql`): an expectile value V_r (Eq. 5),
twin critics Q_r on a SARSA-style target (Eq. 6). The cost side mirrors it on the stored costs c_t >= 0:
a cost value V_c fit to the ``cost_expectile`` of the (pessimistic, max-of-two) target cost critics, and
twin cost critics on ``c + gamma (1 - d) V_c(s')``, so that no cost is ever queried outside the data either.

The policy solves the constrained problem ``max_pi E[A_r]  s.t.  E_s[Q_c(s, pi(s))] <= kappa`` near the
behaviour policy. Its Lagrangian (Altman 1999; the reward-constrained form of Tessler et al. 2019, RCPO)
gives IQL's advantage-weighted regression (Eq. 7) on the penalised advantage

    A_lambda(s, a) = (min_i Q_r'(s, a) - V_r(s)) - lambda * k * (max_i Q_c'(s, a) - V_c(s)),

where ``k`` is the reward scale (so lambda is in units of reward per unit of cost), and the multiplier
follows projected dual ascent,

    lambda <- clip(lambda + eta * (E_s[max_i Q_c(s, pi(s))] - kappa), 0, lambda_max).

The budget is an episode cost ``B`` (``cost_budget``), turned into the per-step discounted threshold
``kappa = B (1 - gamma^T) / ((1 - gamma) T)`` for episodes of ``T = episode_length`` steps, as OSRL does
for its Lagrangian baselines (Liu et al. 2023, "Datasets and Benchmarks for Offline Safe RL"). The cost
critic at the policy's action extrapolates one step off the data (the continuation follows the data's
behaviour), as in one-step offline RL (Brandfonbrener et al. 2021).

``armfarm train iqllag STORE --set cost_budget=B``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import BASE_BATCH_KEYS, Algorithm, register
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.pixels import with_encoder
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.algos.iql import (
    IQLConfig,
    _actor_loss,
    _actor_opt,
    _critic_loss,
    _critic_opt,
    _init_nets,
    _value_opt,
    expectile_loss,
    reward_scale,
    value_fn,
)
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "iqllag"


@dataclasses.dataclass(frozen=True)
class IQLLagConfig(IQLConfig):
    """IQL's hyperparameters (Kostrikov et al. 2021) plus the cost budget and the Lagrange multiplier's."""

    cost_budget: float = param(10.0, "episode cost budget B: the policy's expected episode cost is kept near or below it")
    episode_length: int = param(1000, "episode length T used to turn B into the per-step threshold kappa")
    cost_expectile: float = param(0.5, "expectile of the cost value (0.5: the data's mean cost-to-go)")
    lagrange_lr: float = param(0.01, "dual-ascent step eta of the multiplier lambda")
    lagrange_init: float = param(0.0, "initial lambda")
    lagrange_max: float = param(100.0, "upper clip of lambda")

    def _validate(self) -> None:
        super()._validate()
        if self.cost_budget < 0 or self.episode_length < 1:
            raise ValueError("cost_budget must be >= 0 and episode_length >= 1")
        if not 0.0 < self.cost_expectile < 1.0:
            raise ValueError("cost_expectile must be in (0, 1)")
        if self.lagrange_lr < 0 or not 0 <= self.lagrange_init <= self.lagrange_max:
            raise ValueError("need lagrange_lr >= 0 and 0 <= lagrange_init <= lagrange_max")

    @property
    def kappa(self) -> float:
        """The per-step discounted cost threshold ``B (1 - gamma^T) / ((1 - gamma) T)``."""
        T, g = self.episode_length, self.gamma
        return self.cost_budget * (1 - g**T) / ((1 - g) * T)


def init(config: IQLLagConfig, stats: DatasetStats, seed: int) -> AgentState:
    state = _init_nets(config, stats.obs_dim, stats.act_dim, seed)
    _, rng = seed_streams(seed + 1_000_003)  # the cost networks' own stream, apart from the reward side's
    cost_critic = init_critic_ensemble(rng, 2, stats.obs_dim, stats.act_dim, config.hidden, config.init)
    cost_value = init_mlp(rng, (stats.obs_dim, *config.hidden, 1), config.init)
    return {
        **state,
        "norm": make_norm(stats, reward_scale(config, stats)),
        "cost_critic": new_group(cost_critic, _critic_opt(config), target=True),
        "cost_value": new_group(cost_value, _value_opt(config)),
        "lagrange": jnp.asarray(config.lagrange_init, jnp.float32),
    }


def update(config: IQLLagConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One IQL-Lag step: IQL's Eqs. 5-7 on reward and cost, the penalised actor, and dual ascent on lambda."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    cost = jnp.asarray(batch["costs"], jnp.float32)
    not_done = 1.0 - b["terminals"]
    target_q = jnp.min(critic_ensemble_apply(state["critic"]["target"], obs, act), axis=0)
    target_qc = jnp.max(critic_ensemble_apply(state["cost_critic"]["target"], obs, act), axis=0)
    y = b["rewards"] + config.gamma * not_done * value_fn(state["value"]["params"], next_obs)
    yc = cost + config.gamma * not_done * value_fn(state["cost_value"]["params"], next_obs)
    lam = state["lagrange"]
    scale = state["norm"]["reward_scale"]

    def loss_fn(params):
        """L_V and L_Q (Kostrikov et al. 2021, Eqs. 5-6) for reward and cost, and Eq. 7 on A_lambda; the
        losses act on disjoint parameter groups."""
        v, vc = value_fn(params["value"], obs), value_fn(params["cost_value"], obs)
        adv, adv_c = target_q - v, target_qc - vc
        value_loss = jnp.mean(expectile_loss(adv, config.expectile))
        cost_value_loss = jnp.mean(expectile_loss(adv_c, config.cost_expectile))
        q_loss, q = _critic_loss(params["critic"], obs, act, y)
        qc_loss, qc = _critic_loss(params["cost_critic"], obs, act, yc)
        actor_loss = _actor_loss(config, params["actor"], obs, act, adv - lam * scale * adv_c)
        total = value_loss + cost_value_loss + q_loss + qc_loss + actor_loss
        aux = {"value_loss": value_loss, "cost_value_loss": cost_value_loss, "critic_loss": q_loss,
               "cost_critic_loss": qc_loss, "actor_loss": actor_loss, "q_mean": jnp.mean(q),
               "qc_mean": jnp.mean(qc), "adv_mean": jnp.mean(adv)}
        return total, aux

    params = {k: state[k]["params"] for k in ("actor", "critic", "value", "cost_critic", "cost_value")}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    policy_action = jnp.tanh(mlp_apply(state["actor"]["params"]["net"], obs))
    qc_pi = jnp.mean(jnp.max(critic_ensemble_apply(state["cost_critic"]["params"], obs, policy_action), axis=0))
    new_lam = jnp.clip(lam + config.lagrange_lr * (qc_pi - config.kappa), 0.0, config.lagrange_max)
    next_state = {
        "step": state["step"] + 1,
        "key": state["key"],
        "norm": state["norm"],
        "actor": step_group(state["actor"], grads["actor"], _actor_opt(config)),
        "critic": step_group(state["critic"], grads["critic"], _critic_opt(config), tau=config.tau),
        "value": step_group(state["value"], grads["value"], _value_opt(config)),
        "cost_critic": step_group(state["cost_critic"], grads["cost_critic"], _critic_opt(config), tau=config.tau),
        "cost_value": step_group(state["cost_value"], grads["cost_value"], _value_opt(config)),
        "lagrange": new_lam,
    }
    return next_state, {**metrics, "lagrange": new_lam, "qc_pi": qc_pi, "kappa": jnp.asarray(config.kappa)}


def export_policy(config: IQLLagConfig, state: AgentState) -> NumpyPolicy:
    return mlp_policy(NAME, state["actor"]["params"]["net"], state, config.normalize_obs)


ALGORITHM = register(with_encoder(Algorithm(
    NAME, "offline", IQLLagConfig, init, update, export_policy,
    "IQL under an episode cost budget: Lagrangian-penalised advantage weights, dual ascent (constrained offline RL)",
    batch_keys=(*BASE_BATCH_KEYS, "costs")), ("critic_loss", "value_loss", "cost_critic_loss", "cost_value_loss")))
