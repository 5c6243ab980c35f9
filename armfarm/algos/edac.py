"""SAC-N and EDAC: pessimism from a large critic ensemble, with (EDAC) diversified action-gradients.

An, Moon, Kim & Song 2021, "Uncertainty-Based Offline Reinforcement Learning with Diversified
Q-Ensemble" (NeurIPS). **SAC-N** is SAC (the core in :mod:`armfarm.algos.core.sac_core`) with ``N``
critics whose minimum is used in the soft target and by the actor, which penalises actions the
ensemble disagrees on (Sec. 3):

    y = r + gamma (1 - d) ( min_{j=1..N} Q_{theta'_j}(s', a') - alpha log pi(a'|s') ),   a' ~ pi(.|s')

**EDAC** adds the ensemble similarity term of Eq. (5), weighted by ``eta``, to the critic loss, which
pushes the critics' action-gradients at the data apart so fewer critics suffice:

    L_ES(theta) = 1/(N - 1) sum_{i != j} < grad_a Q_i(s, a) / |grad_a Q_i|, grad_a Q_j(s, a) / |grad_a Q_j| >

averaged over the batch (the gradients normalised, as in the authors' and CORL's code). The ensemble is
one vmapped network; the action-Jacobians are one ``vmap(grad)`` over its members, differentiated again
for the parameters' gradient.

Defaults are CORL's (Tarasov et al. 2022), whose per-dataset tables vary ``num_critics`` (10 to 50) and
``eta``: three hidden layers of 256, Adam 3e-4 for all three parameter groups, batch 256, gamma 0.99,
tau 0.005; EDAC ``num_critics=10, eta=1``; SAC-N ``num_critics=10, eta=0``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from armfarm.algos.core import sac_core
from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.pixels import SeparateEncoderSettings, with_encoder
from armfarm.algos.core.prng import split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_apply, critic_ensemble_apply


@dataclasses.dataclass(frozen=True)
class EDACConfig(SeparateEncoderSettings, ConfigBase):
    """EDAC hyperparameters (defaults: CORL's EDAC)."""

    hidden: tuple[int, ...] = param((256, 256, 256), "hidden layer widths of the actor and each critic")
    num_critics: int = param(10, "critics in the ensemble (N)")
    eta: float = param(1.0, "weight of the ensemble gradient-similarity term (0: SAC-N)")
    batch_size: int = param(256, "transitions per gradient step")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor")
    critic_lr: float = param(3e-4, "Adam learning rate of the critics")
    alpha_lr: float = param(3e-4, "Adam learning rate of the entropy log-temperature")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the target critics")
    init_alpha: float = param(1.0, "initial entropy temperature")
    target_entropy: float | None = param(None, "entropy the temperature steers towards (None: -act_dim)")
    log_std_min: float = param(-20.0, "lower clip of the actor's log-std")
    log_std_max: float = param(2.0, "upper clip of the actor's log-std")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")
    critic_dropout: float = param(0.0, "dropout rate after each hidden layer of the critics in their TD loss "
                                       "(0: none, the paper's)")

    def _validate(self) -> None:
        if not 0.0 <= self.critic_dropout < 1.0:
            raise ValueError("critic_dropout must be in [0, 1)")
        if self.num_critics < 2:
            raise ValueError("num_critics must be >= 2 (the similarity term compares pairs)")
        if self.eta < 0 or self.init_alpha <= 0:
            raise ValueError("eta must be >= 0 and init_alpha > 0")


@dataclasses.dataclass(frozen=True)
class SACNConfig(EDACConfig):
    """SAC-N hyperparameters: EDAC's without the similarity term."""

    eta: float = param(0.0, "weight of the ensemble gradient-similarity term (0: SAC-N)")


def init(config: EDACConfig, stats: DatasetStats, seed: int) -> AgentState:
    nets = sac_core.init_nets(config, stats.obs_dim, stats.act_dim, seed, num_critics=config.num_critics)
    return {**nets, "norm": make_norm(stats)}


def gradient_similarity(critic_params, obs: jax.Array, act: jax.Array) -> jax.Array:
    """L_ES of An et al. 2021, Eq. (5): the mean over the batch of the summed pairwise cosine similarity of
    the members' action-gradients, divided by N - 1."""
    def member_grad(params):
        return jax.grad(lambda a: jnp.sum(critic_apply(params, obs, a)))(act)  # [B, A]

    grads = jax.vmap(member_grad)(critic_params)  # [N, B, A]
    grads = grads / (jnp.linalg.norm(grads, axis=-1, keepdims=True) + 1e-10)
    n = grads.shape[0]
    gram = jnp.einsum("iba,jba->bij", grads, grads)  # [B, N, N]
    off_diagonal = jnp.sum(gram, axis=(1, 2)) - jnp.trace(gram, axis1=1, axis2=2)
    return jnp.mean(off_diagonal) / (n - 1)


def update(config: EDACConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One SAC-N / EDAC step (critics, actor, temperature, targets). Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    key, keys = split_key(state["key"], 3 if config.critic_dropout > 0 else 2)
    k_next, k_pi = keys[:2]
    k_dropout = keys[2] if config.critic_dropout > 0 else None
    entropy_target = sac_core.target_entropy(config, act.shape[1])
    alpha = jnp.exp(state["log_alpha"]["params"])

    next_act, next_log_prob, _, _ = sac_core.next_actions(config, state, next_obs, k_next)
    next_q = jnp.min(critic_ensemble_apply(state["critic"]["target"], next_obs, next_act), axis=0)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * (next_q - alpha * next_log_prob)

    def loss_fn(params):
        """Soft TD error of each of the N critics (An et al. 2021, Sec. 3), eta times L_ES (Eq. 5), and
        SAC's actor and temperature losses on the ensemble's minimum."""
        actor_loss, alpha_loss, _, _, pi_log_prob = sac_core.actor_and_temperature_losses(
            config, params, obs, k_pi, alpha, entropy_target)
        q = critic_ensemble_apply(params["critic"], obs, act, config.critic_dropout, k_dropout)  # [N, B]
        td = jnp.sum(jnp.mean(jnp.square(q - y), axis=1))
        metrics = {"actor_loss": actor_loss, "alpha_loss": alpha_loss, "alpha": alpha,
                   "entropy": -jnp.mean(pi_log_prob), "q_mean": jnp.mean(q), "q_std": jnp.mean(jnp.std(q, axis=0)),
                   "target_q_mean": jnp.mean(y), "td_loss": td}
        critic_loss = td
        if config.eta > 0:
            similarity = gradient_similarity(params["critic"], obs, act)
            critic_loss = td + config.eta * similarity
            metrics["gradient_similarity"] = similarity
        metrics["critic_loss"] = critic_loss
        return critic_loss + actor_loss + alpha_loss, metrics

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(sac_core.trainable(state))
    return sac_core.step_all(config, state, grads, key), metrics


EDAC = register(with_encoder(Algorithm(
    "edac", "offline", EDACConfig, init, update, sac_core.policy_exporter("edac"),
    "EDAC: SAC with an N-critic ensemble and diversified action-gradients (An et al. 2021)"), ("critic_loss",)))
SACN = register(with_encoder(Algorithm(
    "sacn", "offline", SACNConfig, init, update, sac_core.policy_exporter("sacn"),
    "SAC-N: SAC with the minimum of an N-critic ensemble (An et al. 2021)"), ("critic_loss",)))
