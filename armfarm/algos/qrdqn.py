"""QR-DQN, and CQL on QR-DQN: distributional offline Q-learning over discrete actions.

Dabney et al. 2018 ("Distributional Reinforcement Learning with Quantile Regression"): the network
gives ``N`` quantiles ``theta_i(s, a)`` of the return at the midpoints ``tau_i = (2i + 1) / 2N``, and
``Q(s, a) = mean_i theta_i(s, a)``. With ``a* = argmax_a Q_target(s', a)`` the targets are
``T theta_j = r + gamma (1 - d) theta_target_j(s', a*)`` and the loss is the quantile Huber loss
(Eq. 9-10), for ``u_ij = T theta_j - theta_i(s, a)``,

    rho_tau(u) = | tau - 1{u < 0} | huber_kappa(u) / kappa,
    L(theta) = E_D [ sum_i mean_j rho_{tau_i}(u_ij) ]                                (QR loss, kappa = 1)

With ``alpha > 0`` it is the CQL variant of Kumar et al. 2020's Atari experiments, which build CQL(H)
on QR-DQN: ``alpha E_s [ log sum_a exp Q(s, a) - Q(s, a_D) ]`` is added with ``Q`` the quantile mean
(Eq. 4). Scaled QL (Kumar et al. 2022) takes the same idea to large ResNets with a C51 head.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.discrete import (
    DiscreteConfig,
    apply_network,
    copy_target,
    export_argmax_policy,
    init_network,
    prepare,
    taken,
)
from armfarm.algos.core.params import step_group
from armfarm.algos.core.stats import DatasetStats
from armfarm.policy import NumpyPolicy

NAME = "qrdqn"


@dataclasses.dataclass(frozen=True)
class QRDQNConfig(DiscreteConfig):
    """QR-DQN hyperparameters (MinAtar's DQN settings, Dabney et al.'s 200 quantiles), plus CQL's alpha."""

    num_quantiles: int = param(200, "N: quantiles per action (Dabney et al. 2018)")
    kappa: float = param(1.0, "Huber threshold kappa of the quantile loss")
    alpha: float = param(0.0, "weight of CQL's conservative term on the quantile means (0: plain QR-DQN)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_quantiles < 1 or self.kappa <= 0 or self.alpha < 0:
            raise ValueError("num_quantiles must be >= 1, kappa > 0 and alpha >= 0")


def init(config: QRDQNConfig, stats: DatasetStats, seed: int) -> AgentState:
    return init_network(config, stats, seed, optax.adam(config.lr), config.num_quantiles)


def quantiles(config: QRDQNConfig, params: dict, obs: jax.Array) -> jax.Array:
    """``(B, num_actions, N)`` return quantiles."""
    out = apply_network(config, params, obs)
    return out.reshape(out.shape[0], -1, config.num_quantiles)


def quantile_huber(config: QRDQNConfig, pred: jax.Array, target: jax.Array) -> jax.Array:
    """Dabney et al. Eq. 10 for ``pred (B, N)`` quantiles and ``target (B, N)`` samples: summed over the
    predicted quantiles, averaged over target samples and the batch."""
    n = config.num_quantiles
    tau = (2.0 * jnp.arange(n) + 1.0) / (2.0 * n)
    u = target[:, None, :] - pred[:, :, None]  # (B, N_pred, N_target)
    huber = optax.huber_loss(u, delta=config.kappa) / config.kappa
    weight = jnp.abs(tau[None, :, None] - (u < 0).astype(jnp.float32))
    return jnp.mean(jnp.sum(jnp.mean(weight * huber, axis=2), axis=1))


def update(config: QRDQNConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One gradient step on the quantile loss (plus the conservative term), then the periodic target
    copy. Pure; jit-able."""
    b, key = prepare(config, state, batch)
    group = state["q"]
    next_z = quantiles(config, group["target"], b["next_observations"])  # (B, n, N)
    best = jnp.argmax(next_z.mean(axis=2), axis=1)
    next_best = jnp.take_along_axis(next_z, best[:, None, None], axis=1)[:, 0]  # (B, N)
    target = jax.lax.stop_gradient(b["rewards"][:, None] + config.gamma * (1.0 - b["terminals"][:, None]) * next_best)

    def loss_fn(params):
        z = quantiles(config, params, b["observations"])
        pred = jnp.take_along_axis(z, b["actions"][:, None, None], axis=1)[:, 0]
        qr = quantile_huber(config, pred, target)
        q = z.mean(axis=2)
        gap = jnp.mean(jax.nn.logsumexp(q, axis=1) - taken(q, b["actions"]))  # CQL(H), Kumar et al. Eq. 4
        return qr + config.alpha * gap, (qr, gap, q)

    (loss, (qr, gap, q)), grads = jax.value_and_grad(loss_fn, has_aux=True)(group["params"])
    step = state["step"] + 1
    group = copy_target(config, step_group(group, grads, optax.adam(config.lr)), step)
    return ({**state, "step": step, "key": key, "q": group},
            {"loss": loss, "quantile_loss": qr, "cql_gap": gap, "q_mean": jnp.mean(taken(q, b["actions"]))})


def export_policy(config: QRDQNConfig, state: AgentState) -> NumpyPolicy:
    return export_argmax_policy(NAME, config, state, state["q"]["params"], config.num_quantiles)


ALGORITHM = register(Algorithm(NAME, "offline", QRDQNConfig, init, update, export_policy,
                               "QR-DQN offline, or CQL on QR-DQN with alpha > 0 (Dabney et al. 2018; Kumar et al. 2020)",
                               discrete=True, images=True))
