"""SAC: Soft Actor-Critic with automatic entropy tuning, for online continuous control.

Haarnoja, Zhou, Abbeel & Levine 2018, "Soft Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement
Learning with a Stochastic Actor" (ICML), and Haarnoja et al. 2018b, "Soft Actor-Critic Algorithms and
Applications" (the learned temperature and the clipped double-Q critic). Twin critics minimise the soft
Bellman residual (Eq. 5), with the target networks moved by Polyak averaging,

    J_Q(theta_i) = E_{(s,a,r,s')~D}[ (Q_{theta_i}(s, a) - y)^2 ],
    y = r + gamma (1 - d) ( min_j Q_{theta'_j}(s', a') - alpha log pi(a'|s') ),   a' ~ pi(.|s');

the tanh-Gaussian actor minimises the reparameterised KL objective (Eq. 7/12),

    J_pi(phi) = E_{s~D, eps}[ alpha log pi(f_phi(eps; s)|s) - min_j Q_{theta_j}(s, f_phi(eps; s)) ];

and the temperature minimises (2018b, Eq. 18)

    J(alpha) = E_{a~pi}[ -alpha (log pi(a|s) + H_target) ],   H_target = -|A|.

Defaults are the paper's (Table 1 of 2018b): Adam at 3e-4 for all three, gamma 0.99, tau 0.005,
batch 256, two hidden layers of 256 units, target update every step.

Implementation: the same fused style as :mod:`armfarm.algos.cql`, whose tanh-Gaussian helpers it uses.
All three losses are taken at the pre-update parameters and differentiated in one backward pass
(stop-gradients keep each loss on its own parameter group); the twin critics are one vmapped ensemble.
SAC learns online (:mod:`armfarm.online`), so ``stats`` describes the environment's spaces rather than
a dataset.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.common import (
    AgentState,
    ConfigBase,
    DatasetStats,
    apply_optimizer,
    make_norm,
    mlp_policy,
    polyak,
    preprocess,
    seed_streams,
    split_key,
)
from armfarm.algos.cql import actor_dist, sample_tanh_gaussian
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp
from armfarm.policy import NumpyPolicy

NAME = "sac"


@dataclasses.dataclass(frozen=True)
class SACConfig(ConfigBase):
    """SAC hyperparameters (defaults: Haarnoja et al. 2018b, Table 1)."""

    hidden: tuple[int, ...] = (256, 256)
    batch_size: int = 256
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    init_alpha: float = 1.0
    target_entropy: float | None = None
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    normalize_obs: bool = False
    init: str = "torch"

    def _validate(self) -> None:
        if self.init_alpha <= 0:
            raise ValueError("init_alpha must be > 0")
        if self.log_std_min >= self.log_std_max:
            raise ValueError("log_std_min must be < log_std_max")


def _opt(lr: float) -> optax.GradientTransformation:
    return optax.adam(lr)


def init(config: SACConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    actor = init_mlp(rng, (stats.obs_dim, *config.hidden, 2 * stats.act_dim), config.init)
    critic = init_critic_ensemble(rng, 2, stats.obs_dim, stats.act_dim, config.hidden, config.init)
    log_alpha = jnp.asarray(math.log(config.init_alpha), jnp.float32)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "norm": make_norm(stats),
        "actor": {"params": actor, "opt": _opt(config.actor_lr).init(actor)},
        "critic": {"params": critic, "target": critic, "opt": _opt(config.critic_lr).init(critic)},
        "log_alpha": {"params": log_alpha, "opt": _opt(config.alpha_lr).init(log_alpha)},
    }


def update(config: SACConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One SAC step (critics, actor, temperature, targets). Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    key, (k_next, k_pi) = split_key(state["key"], 2)
    sg = jax.lax.stop_gradient
    target_entropy = -float(act.shape[1]) if config.target_entropy is None else config.target_entropy
    alpha = jnp.exp(state["log_alpha"]["params"])

    # ---- soft Bellman target (no gradients)
    next_mean, next_log_std = actor_dist(config, state["actor"]["params"], next_obs)
    next_act, next_log_prob = sample_tanh_gaussian(k_next, next_mean, next_log_std, next_mean.shape)
    next_q = jnp.min(critic_ensemble_apply(state["critic"]["target"], next_obs, next_act), axis=0)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * (next_q - alpha * next_log_prob)

    def loss_fn(params):
        """Soft Bellman residual (Haarnoja et al. 2018, Eq. 5), reparameterised policy objective
        (Eq. 12) and temperature objective (Haarnoja et al. 2018b, Eq. 18)."""
        mean, log_std = actor_dist(config, params["actor"], obs)
        pi_act, pi_log_prob = sample_tanh_gaussian(k_pi, mean, log_std, mean.shape)
        q_pi = jnp.min(critic_ensemble_apply(sg(params["critic"]), obs, pi_act), axis=0)
        actor_loss = jnp.mean(alpha * pi_log_prob - q_pi)
        alpha_loss = -params["log_alpha"] * jnp.mean(sg(pi_log_prob) + target_entropy)
        q = critic_ensemble_apply(params["critic"], obs, act)  # [2, B]
        critic_loss = jnp.sum(jnp.mean(jnp.square(q - y), axis=1))
        metrics = {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "alpha_loss": alpha_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(pi_log_prob),
            "q_mean": jnp.mean(q),
            "target_q_mean": jnp.mean(y),
        }
        return critic_loss + actor_loss + alpha_loss, metrics

    params = {
        "actor": state["actor"]["params"],
        "critic": state["critic"]["params"],
        "log_alpha": state["log_alpha"]["params"],
    }
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)

    new_state = {"step": state["step"] + 1, "key": key, "norm": state["norm"]}
    p, o = apply_optimizer(_opt(config.actor_lr), params["actor"], state["actor"]["opt"], grads["actor"])
    new_state["actor"] = {"params": p, "opt": o}
    p, o = apply_optimizer(_opt(config.critic_lr), params["critic"], state["critic"]["opt"], grads["critic"])
    new_state["critic"] = {"params": p, "target": polyak(state["critic"]["target"], p, config.tau), "opt": o}
    p, o = apply_optimizer(_opt(config.alpha_lr), params["log_alpha"], state["log_alpha"]["opt"], grads["log_alpha"])
    new_state["log_alpha"] = {"params": p, "opt": o}
    return new_state, metrics


def export_policy(config: SACConfig, state: AgentState) -> NumpyPolicy:
    """The deterministic policy ``tanh(mean(s))`` (what SAC is evaluated with)."""
    act_dim = state["norm"]["act_low"].shape[0]
    return mlp_policy(NAME, state["actor"]["params"], state, config.normalize_obs, out_slice=act_dim)
