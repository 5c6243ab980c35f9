"""The soft actor-critic core that SAC and the SAC-based offline algorithms (CQL, and those built on them)
share: the tanh-Gaussian actor, the critic ensemble with its target, the learned temperature, the soft
target, the actor and temperature losses, and the step of all three parameter groups.

Haarnoja, Zhou, Abbeel & Levine 2018, "Soft Actor-Critic" (ICML), and Haarnoja et al. 2018b, "Soft
Actor-Critic Algorithms and Applications":

    actor        J_pi(phi) = E_{s, eps}[ alpha log pi(f_phi(eps; s)|s) - min_j Q_j(s, f_phi(eps; s)) ]  (Eq. 12)
    temperature  J(alpha)  = E_{a~pi}[ -alpha (log pi(a|s) + H_target) ],  H_target = -|A|          (2018b, Eq. 18)
    target       y = r + gamma (1 - d) ( min_j Q'_j(s', a') [- alpha log pi(a'|s')] ),  a' ~ pi(.|s')

A config using this core has ``hidden``, ``init``, ``actor_lr``, ``critic_lr``, ``alpha_lr``, ``tau``,
``init_alpha``, ``target_entropy``, ``log_std_min`` and ``log_std_max``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.distributions import sample_tanh_gaussian
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import seed_streams
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy


def policy_exporter(name: str):
    """The ``export_policy`` of a SAC-style algorithm called ``name``: the deterministic ``tanh(mean(s))``
    (the mean half of the actor's last layer)."""
    def export_policy(config: Any, state: dict) -> NumpyPolicy:
        act_dim = state["norm"]["act_low"].shape[0]
        return mlp_policy(name, state["actor"]["params"], state, config.normalize_obs, out_slice=act_dim)

    return export_policy


def adam(lr: float) -> optax.GradientTransformation:
    return optax.adam(lr)


def init_nets(config: Any, obs_dim: int, act_dim: int, seed: int, num_critics: int = 2) -> dict:
    """``step``, ``key`` and the ``actor``, ``critic`` (with target) and ``log_alpha`` groups."""
    key, rng = seed_streams(seed)
    actor = init_mlp(rng, (obs_dim, *config.hidden, 2 * act_dim), config.init)
    critic = init_critic_ensemble(rng, num_critics, obs_dim, act_dim, config.hidden, config.init)
    log_alpha = jnp.asarray(math.log(config.init_alpha), jnp.float32)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "actor": new_group(actor, adam(config.actor_lr)),
        "critic": new_group(critic, adam(config.critic_lr), target=True),
        "log_alpha": new_group(log_alpha, adam(config.alpha_lr)),
    }


def actor_dist(config: Any, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and clipped log-std of the pre-tanh Gaussian."""
    out = mlp_apply(params, obs)
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def target_entropy(config: Any, act_dim: int) -> float:
    return -float(act_dim) if config.target_entropy is None else config.target_entropy


def next_actions(config: Any, state: dict, next_obs: jax.Array, key: jax.Array):
    """``a' ~ pi(.|s')`` with its log-probability, and the Gaussian's mean and log-std at ``s'``."""
    mean, log_std = actor_dist(config, state["actor"]["params"], next_obs)
    act, log_prob = sample_tanh_gaussian(key, mean, log_std, mean.shape)
    return act, log_prob, mean, log_std


def actor_and_temperature_losses(config: Any, params: dict, obs: jax.Array, key: jax.Array, alpha: jax.Array,
                                 entropy_target: float):
    """The reparameterised actor loss (Eq. 12) on the stopped critics, and the temperature loss (2018b,
    Eq. 18); also the actor's Gaussian at ``obs`` and the sampled actions' log-probabilities."""
    sg = jax.lax.stop_gradient
    mean, log_std = actor_dist(config, params["actor"], obs)
    pi_act, pi_log_prob = sample_tanh_gaussian(key, mean, log_std, mean.shape)
    q_pi = jnp.min(critic_ensemble_apply(sg(params["critic"]), obs, pi_act), axis=0)
    actor_loss = jnp.mean(alpha * pi_log_prob - q_pi)
    alpha_loss = -params["log_alpha"] * jnp.mean(sg(pi_log_prob) + entropy_target)
    return actor_loss, alpha_loss, mean, log_std, pi_log_prob


def trainable(state: dict) -> dict:
    """The parameters one backward pass differentiates: actor, critic and log-temperature."""
    return {"actor": state["actor"]["params"], "critic": state["critic"]["params"],
            "log_alpha": state["log_alpha"]["params"]}


def step_all(config: Any, state: dict, grads: dict, key: jax.Array, learn_alpha: bool = True) -> dict:
    """The next state: each group stepped on its gradients, the critic target moved by ``tau``."""
    return {
        "step": state["step"] + 1,
        "key": key,
        "norm": state["norm"],
        "actor": step_group(state["actor"], grads["actor"], adam(config.actor_lr)),
        "critic": step_group(state["critic"], grads["critic"], adam(config.critic_lr), tau=config.tau),
        "log_alpha": step_group(state["log_alpha"], grads["log_alpha"], adam(config.alpha_lr))
        if learn_alpha else state["log_alpha"],
    }
