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

Implementation: the soft actor-critic core of :mod:`armfarm.algos.core.sac_core`, shared with CQL.
All three losses are taken at the pre-update parameters and differentiated in one backward pass
(stop-gradients keep each loss on its own parameter group); the twin critics are one vmapped ensemble.
SAC learns online (:mod:`armfarm.online`), so ``stats`` describes the environment's spaces rather than
a dataset.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from armfarm.algos.core import sac_core
from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.prng import split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_ensemble_apply

NAME = "sac"


@dataclasses.dataclass(frozen=True)
class SACConfig(ConfigBase):
    """SAC hyperparameters (defaults: Haarnoja et al. 2018b, Table 1)."""

    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths of the actor and each critic")
    batch_size: int = param(256, "transitions per gradient step")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor")
    critic_lr: float = param(3e-4, "Adam learning rate of the critics")
    alpha_lr: float = param(3e-4, "Adam learning rate of the log-temperature")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the target critics")
    init_alpha: float = param(1.0, "initial entropy temperature")
    target_entropy: float | None = param(None, "entropy the temperature steers towards (None: -act_dim)")
    log_std_min: float = param(-20.0, "lower clip of the actor's log-std")
    log_std_max: float = param(2.0, "upper clip of the actor's log-std")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")

    def _validate(self) -> None:
        if self.init_alpha <= 0:
            raise ValueError("init_alpha must be > 0")
        if self.log_std_min >= self.log_std_max:
            raise ValueError("log_std_min must be < log_std_max")


def init(config: SACConfig, stats: DatasetStats, seed: int) -> AgentState:
    return {**sac_core.init_nets(config, stats.obs_dim, stats.act_dim, seed), "norm": make_norm(stats)}


def update(config: SACConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One SAC step (critics, actor, temperature, targets). Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    key, (k_next, k_pi) = split_key(state["key"], 2)
    entropy_target = sac_core.target_entropy(config, act.shape[1])
    alpha = jnp.exp(state["log_alpha"]["params"])

    # ---- soft Bellman target (no gradients)
    next_act, next_log_prob, _, _ = sac_core.next_actions(config, state, next_obs, k_next)
    next_q = jnp.min(critic_ensemble_apply(state["critic"]["target"], next_obs, next_act), axis=0)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * (next_q - alpha * next_log_prob)

    def loss_fn(params):
        """Soft Bellman residual (Haarnoja et al. 2018, Eq. 5), reparameterised policy objective
        (Eq. 12) and temperature objective (Haarnoja et al. 2018b, Eq. 18)."""
        actor_loss, alpha_loss, _, _, pi_log_prob = sac_core.actor_and_temperature_losses(
            config, params, obs, k_pi, alpha, entropy_target)
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

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(sac_core.trainable(state))
    return sac_core.step_all(config, state, grads, key), metrics


export_policy = sac_core.policy_exporter(NAME)  # the deterministic tanh(mean(s))


ALGORITHM = register(Algorithm(NAME, "online", SACConfig, init, update, export_policy,
                               "Soft Actor-Critic with a learned temperature (Haarnoja et al. 2018)"))
