"""TD3+BC: TD3 with a behaviour-cloning term in the actor loss.

Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning" (NeurIPS). The critic is
TD3's (Fujimoto et al. 2018): twin critics trained towards the clipped double-Q target with target
policy smoothing,

    y = r + gamma (1 - d) min_{i=1,2} Q_{theta'_i}(s', clip(pi_{phi'}(s') + clip(eps, -c, c), -1, 1)),
    eps ~ N(0, sigma^2),                L(theta_i) = E_D[(Q_{theta_i}(s, a) - y)^2],

and every ``policy_freq`` steps the actor maximises the regularised objective of Eq. (3),

    pi = argmax_pi E_{(s, a) ~ D}[ lambda Q_{theta_1}(s, pi(s)) - (pi(s) - a)^2 ],
    lambda = alpha / ( (1/N) sum_{(s_i, a_i)} |Q(s_i, a_i)| )                     (Eq. 4)

(lambda is not differentiated and, as in the reference code, averages |Q| at the policy's actions), after which both target networks move by Polyak averaging with rate
``tau``. States are standardised with the dataset mean and std + 1e-3 (Eq. 5).

Implementation: the twin critics are one vmapped ensemble; the delayed actor step and the target
updates run under ``lax.cond``, so the off steps cost only the critic update. Between actor steps the
actor metrics repeat the last values computed.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.params import new_group, polyak, step_group
from armfarm.algos.core.pixels import SeparateEncoderSettings, with_encoder
from armfarm.algos.core.prng import seed_streams, split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import (
    critic_apply,
    critic_ensemble_apply,
    init_critic_ensemble,
    init_mlp,
    member,
    mlp_apply,
)
from armfarm.policy import NumpyPolicy

NAME = "td3bc"


@dataclasses.dataclass(frozen=True)
class TD3BCConfig(SeparateEncoderSettings, ConfigBase):
    """TD3+BC hyperparameters (defaults: the hyperparameter table of Fujimoto & Gu 2021)."""

    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths of the actor and each critic")
    batch_size: int = param(256, "transitions per gradient step")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor")
    critic_lr: float = param(3e-4, "Adam learning rate of the critics")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the targets")
    alpha: float = param(2.5, "alpha of Eq. 4: lambda = alpha / mean |Q|")
    policy_noise: float = param(0.2, "std of the target policy smoothing noise")
    noise_clip: float = param(0.5, "clip of the smoothing noise")
    policy_freq: int = param(2, "critic steps per actor step")
    normalize_obs: bool = param(True, "standardise observations with the data's mean and std (+1e-3)")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")

    def _validate(self) -> None:
        if self.policy_freq < 1:
            raise ValueError("policy_freq must be >= 1")
        if self.alpha < 0 or self.policy_noise < 0 or self.noise_clip < 0:
            raise ValueError("alpha, policy_noise and noise_clip must be >= 0")


def _actor_opt(config: TD3BCConfig) -> optax.GradientTransformation:
    return optax.adam(config.actor_lr)


def _critic_opt(config: TD3BCConfig) -> optax.GradientTransformation:
    return optax.adam(config.critic_lr)


def _pi(params, obs):
    return mlp_apply(params, obs, final_activation=jnp.tanh)


def _init_nets(config: TD3BCConfig, obs_dim: int, act_dim: int, seed: int) -> dict:
    key, rng = seed_streams(seed)
    actor = init_mlp(rng, (obs_dim, *config.hidden, act_dim), config.init)
    critic = init_critic_ensemble(rng, 2, obs_dim, act_dim, config.hidden, config.init)
    zero = jnp.zeros((), jnp.float32)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "actor": new_group(actor, _actor_opt(config), target=True),
        "critic": new_group(critic, _critic_opt(config), target=True),
        "last_actor_metrics": {"actor_loss": zero, "bc_loss": zero, "lmbda": zero},
    }


def init(config: TD3BCConfig, stats: DatasetStats, seed: int) -> AgentState:
    return {**_init_nets(config, stats.obs_dim, stats.act_dim, seed), "norm": make_norm(stats)}


def update(config: TD3BCConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One TD3+BC step: critic update every step, actor + target updates every ``policy_freq``."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    key, (k_noise,) = split_key(state["key"], 1)
    actor, critic = state["actor"], state["critic"]

    # ---- critic: clipped double-Q target with target policy smoothing
    noise = jnp.clip(config.policy_noise * jax.random.normal(k_noise, act.shape), -config.noise_clip, config.noise_clip)
    next_act = jnp.clip(_pi(actor["target"], next_obs) + noise, -1.0, 1.0)
    target_q = jnp.min(critic_ensemble_apply(critic["target"], next_obs, next_act), axis=0)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * target_q

    def critic_loss_fn(params):
        """TD3 critic loss (Fujimoto et al. 2018: clipped double-Q target with target policy
        smoothing), summed over the twin critics."""
        q = critic_ensemble_apply(params, obs, act)  # [2, B]
        return jnp.sum(jnp.mean(jnp.square(q - y), axis=1)), q

    (critic_loss, q), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(critic["params"])
    critic = step_group(critic, grads, _critic_opt(config))  # its target moves with the actor's step

    # ---- delayed actor step (Eq. 3-4) and target updates
    def actor_step(operands):
        actor, critic = operands

        def actor_loss_fn(params):
            """TD3+BC actor loss, the negation of Fujimoto & Gu 2021 Eq. 3 with lambda of Eq. 4."""
            pi = _pi(params, obs)
            q_pi = critic_apply(member(critic["params"], 0), obs, pi)
            lmbda = jax.lax.stop_gradient(config.alpha / jnp.mean(jnp.abs(q_pi)))
            bc_loss = jnp.mean(jnp.square(pi - act))
            return -lmbda * jnp.mean(q_pi) + bc_loss, (bc_loss, lmbda)

        (loss, (bc_loss, lmbda)), g = jax.value_and_grad(actor_loss_fn, has_aux=True)(actor["params"])
        actor = step_group(actor, g, _actor_opt(config), tau=config.tau)
        critic = {**critic, "target": polyak(critic["target"], critic["params"], config.tau)}
        return (actor, critic), {"actor_loss": loss, "bc_loss": bc_loss, "lmbda": lmbda}

    def skip(operands):
        return operands, state["last_actor_metrics"]

    do_actor = (state["step"] + 1) % config.policy_freq == 0
    (actor, critic), actor_metrics = jax.lax.cond(do_actor, actor_step, skip, (actor, critic))

    new_state = {
        "step": state["step"] + 1,
        "key": key,
        "norm": state["norm"],
        "actor": actor,
        "critic": critic,
        "last_actor_metrics": actor_metrics,
    }
    metrics = {"critic_loss": critic_loss, "q_mean": jnp.mean(q), "target_q_mean": jnp.mean(y), **actor_metrics}
    return new_state, metrics


def export_policy(config: TD3BCConfig, state: AgentState) -> NumpyPolicy:
    return mlp_policy(NAME, state["actor"]["params"], state, config.normalize_obs)


ALGORITHM = register(with_encoder(Algorithm(NAME, "offline", TD3BCConfig, init, update, export_policy,
                               "TD3 with a behaviour-cloning term (Fujimoto & Gu 2021)"), ("critic_loss",)))
