"""ReBRAC: TD3+BC revisited, with behaviour-regularised actor and critic and LayerNorm critics.

Tarasov, Kurenkov, Nikulin & Kolesnikov 2023, "Revisiting the Minimalist Approach to Offline
Reinforcement Learning" (NeurIPS). TD3+BC (Fujimoto & Gu 2021) with the design choices the paper found
to matter: a BC penalty in the critic's target as well as in the actor, LayerNorm in the critics, deeper
networks (3 hidden layers of 256), a large batch (1024) and a larger learning rate (1e-3).

Critic (twin, each layer-normalised), with target policy smoothing and the critic penalty beta_2 (Eq. 3):

    a'' = clip(pi_{phi'}(s') + clip(eps, -c, c), -1, 1),   eps ~ N(0, sigma^2)
    y   = r + gamma (1 - d) ( min_i Q_{theta'_i}(s', a'') - beta_2 ||a'' - a'||^2 )
    L(theta_i) = E_D[ (Q_{theta_i}(s, a) - y)^2 ]

where ``a'`` is the dataset's next action (batch key ``next_actions``). Every ``policy_freq`` steps the
actor minimises, with the actor penalty beta_1 (Eq. 2),

    L(phi) = E_D[ beta_1 ||pi_phi(s) - a||^2 - lambda min_i Q_{theta_i}(s, pi_phi(s)) ],
    lambda = 1 / mean |min_i Q(s, pi(s))|            (not differentiated; ``normalize_q``)

and the targets follow by Polyak averaging with rate ``tau``. The penalties are per dataset in the paper
(its Table 7; e.g. hopper-medium beta_1 = 0.01, beta_2 = 0.001; hopper-medium-replay 0.05 and 0.5); the
defaults here are hopper-medium's. Set them with ``--set actor_bc_coef=... critic_bc_coef=...``.

Implementation: as :mod:`armfarm.algos.td3bc`: one vmapped critic ensemble, the delayed actor step and
target updates under ``lax.cond``. Weights use LeCun-normal initialisation with zero biases (the
reference's flax default kernel init; its biases start at 0.1).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import BATCH_KEYS, AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.params import new_group, polyak, step_group
from armfarm.algos.core.pixels import SeparateEncoderSettings, with_encoder
from armfarm.algos.core.prng import seed_streams, split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "rebrac"


@dataclasses.dataclass(frozen=True)
class ReBRACConfig(SeparateEncoderSettings, ConfigBase):
    """ReBRAC hyperparameters (defaults: Tarasov et al. 2023, Table 6 and hopper-medium's penalties)."""

    hidden: tuple[int, ...] = param((256, 256, 256), "hidden layer widths of the actor")
    critic_hidden: tuple[int, ...] = param((256, 256, 256), "hidden layer widths of each critic")
    critic_layer_norm: bool = param(True, "LayerNorm after each hidden layer of the critics")
    critic_dropout: float = param(0.0, "dropout rate after each hidden layer of the critics in their TD loss "
                                       "(0: none, the paper's)")
    num_critics: int = param(2, "critics in the ensemble; targets and the actor use their minimum")
    batch_size: int = param(1024, "transitions per gradient step")
    actor_lr: float = param(1e-3, "Adam learning rate of the actor")
    critic_lr: float = param(1e-3, "Adam learning rate of the critics")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the targets")
    actor_bc_coef: float = param(0.01, "beta_1: weight of ||pi(s) - a||^2 in the actor loss")
    critic_bc_coef: float = param(0.001, "beta_2: weight of ||a'' - a'||^2 subtracted in the critic's target")
    normalize_q: bool = param(True, "divide the actor's Q term by mean |Q| (lambda)")
    policy_noise: float = param(0.2, "std of the target policy smoothing noise")
    noise_clip: float = param(0.5, "clip of the smoothing noise")
    policy_freq: int = param(2, "critic steps per actor step")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("lecun", "weight initialiser: lecun, torch or orthogonal")

    def _validate(self) -> None:
        if not 0.0 <= self.critic_dropout < 1.0:
            raise ValueError("critic_dropout must be in [0, 1)")
        if self.policy_freq < 1 or self.num_critics < 1:
            raise ValueError("policy_freq and num_critics must be >= 1")
        if min(self.actor_bc_coef, self.critic_bc_coef, self.policy_noise, self.noise_clip) < 0:
            raise ValueError("actor_bc_coef, critic_bc_coef, policy_noise and noise_clip must be >= 0")
        if not self.critic_hidden or min(self.critic_hidden) < 1:
            raise ValueError("critic_hidden must be a non-empty tuple of positive ints")


def _adam(lr: float) -> optax.GradientTransformation:
    return optax.adam(lr)


def _pi(params, obs):
    return mlp_apply(params, obs, final_activation=jnp.tanh)


def init(config: ReBRACConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    actor = init_mlp(rng, (stats.obs_dim, *config.hidden, stats.act_dim), config.init)
    critic = init_critic_ensemble(rng, config.num_critics, stats.obs_dim, stats.act_dim, config.critic_hidden,
                                  config.init, layer_norm=config.critic_layer_norm)
    zero = jnp.zeros((), jnp.float32)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "norm": make_norm(stats),
        "actor": new_group(actor, _adam(config.actor_lr), target=True),
        "critic": new_group(critic, _adam(config.critic_lr), target=True),
        "last_actor_metrics": {"actor_loss": zero, "actor_bc": zero, "lmbda": zero},
    }


def update(config: ReBRACConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One ReBRAC step: critic every step, actor and targets every ``policy_freq``. Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    norm = state["norm"]
    next_data_act = jnp.clip((jnp.asarray(batch["next_actions"], jnp.float32) - norm["act_center"])
                             / norm["act_half_range"], -1.0, 1.0)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    key, keys = split_key(state["key"], 2 if config.critic_dropout > 0 else 1)
    k_noise, k_dropout = keys[0], (keys[1] if config.critic_dropout > 0 else None)
    actor, critic = state["actor"], state["critic"]

    # ---- critic target: smoothed target action, minus the critic's BC penalty (Eq. 3)
    noise = jnp.clip(config.policy_noise * jax.random.normal(k_noise, act.shape), -config.noise_clip, config.noise_clip)
    next_act = jnp.clip(_pi(actor["target"], next_obs) + noise, -1.0, 1.0)
    next_q = jnp.min(critic_ensemble_apply(critic["target"], next_obs, next_act), axis=0)
    critic_bc = jnp.sum(jnp.square(next_act - next_data_act), axis=-1)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * (next_q - config.critic_bc_coef * critic_bc)

    def critic_loss_fn(params):
        """Squared TD error towards the penalised target (Tarasov et al. 2023, Eq. 3), summed over critics."""
        q = critic_ensemble_apply(params, obs, act, config.critic_dropout, k_dropout)
        return jnp.sum(jnp.mean(jnp.square(q - y), axis=1)), q

    (critic_loss, q), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(critic["params"])
    critic = step_group(critic, grads, _adam(config.critic_lr))

    def actor_step(operands):
        actor, critic = operands

        def actor_loss_fn(params):
            """beta_1 ||pi(s) - a||^2 - lambda Q(s, pi(s)) (Tarasov et al. 2023, Eq. 2)."""
            pi = _pi(params, obs)
            q_pi = jnp.min(critic_ensemble_apply(critic["params"], obs, pi), axis=0)
            lmbda = jax.lax.stop_gradient(1.0 / jnp.mean(jnp.abs(q_pi))) if config.normalize_q else 1.0
            bc = jnp.sum(jnp.square(pi - act), axis=-1)
            return jnp.mean(config.actor_bc_coef * bc - lmbda * q_pi), (jnp.mean(bc), lmbda)

        (loss, (bc, lmbda)), g = jax.value_and_grad(actor_loss_fn, has_aux=True)(actor["params"])
        actor = step_group(actor, g, _adam(config.actor_lr), tau=config.tau)
        critic = {**critic, "target": polyak(critic["target"], critic["params"], config.tau)}
        return (actor, critic), {"actor_loss": loss, "actor_bc": bc, "lmbda": jnp.asarray(lmbda, jnp.float32)}

    def skip(operands):
        return operands, state["last_actor_metrics"]

    do_actor = (state["step"] + 1) % config.policy_freq == 0
    (actor, critic), actor_metrics = jax.lax.cond(do_actor, actor_step, skip, (actor, critic))
    new_state = {"step": state["step"] + 1, "key": key, "norm": norm, "actor": actor, "critic": critic,
                 "last_actor_metrics": actor_metrics}
    metrics = {"critic_loss": critic_loss, "q_mean": jnp.mean(q), "target_q_mean": jnp.mean(y),
               "critic_bc": jnp.mean(critic_bc), **actor_metrics}
    return new_state, metrics


def export_policy(config: ReBRACConfig, state: AgentState) -> NumpyPolicy:
    return mlp_policy(NAME, state["actor"]["params"], state, config.normalize_obs)


ALGORITHM = register(with_encoder(Algorithm(
    NAME, "offline", ReBRACConfig, init, update, export_policy,
    "ReBRAC: TD3+BC with actor and critic BC penalties, LayerNorm critics (Tarasov et al. 2023)",
    batch_keys=(*BATCH_KEYS, "next_actions"), finetune={}), ("critic_loss",)))
