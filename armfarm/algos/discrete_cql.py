"""Discrete CQL: double DQN with CQL's conservative penalty, for discrete actions.

Kumar et al. 2020 ("Conservative Q-Learning for Offline Reinforcement Learning"), CQL(H) with the
exact log-sum-exp over a discrete action set (Eq. 4; the QR-DQN-free variant of its Atari section, as
d3rlpy's ``DiscreteCQL``):

    L(theta) = alpha E_{s ~ D} [ log sum_a exp Q_theta(s, a) - Q_theta(s, a_D) ]     (conservative term)
             + E_D [ huber(Q_theta(s, a_D) - y) ]                                    (double-DQN TD loss)

with ``y`` the double-DQN target of :mod:`armfarm.algos.dqn`. The first term pushes down the values of
every action in proportion to its softmax weight and pushes up the value of the action the data took,
so the greedy policy prefers what the data can vouch for.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.discrete import (
    DiscreteConfig,
    copy_target,
    export_argmax_policy,
    init_network,
    prepare,
    taken,
)
from armfarm.algos.core.params import step_group
from armfarm.algos.core.stats import DatasetStats
from armfarm.algos.dqn import optimizer, td_loss
from armfarm.policy import NumpyPolicy

NAME = "discrete_cql"


@dataclasses.dataclass(frozen=True)
class DiscreteCQLConfig(DiscreteConfig):
    """Discrete CQL hyperparameters (MinAtar's DQN settings plus CQL's alpha)."""

    alpha: float = param(1.0, "weight alpha of the conservative term (d3rlpy's DiscreteCQL default)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")


def init(config: DiscreteCQLConfig, stats: DatasetStats, seed: int) -> AgentState:
    return init_network(config, stats, seed, optimizer(config))


def update(config: DiscreteCQLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One gradient step on the conservative TD loss, then the periodic target copy. Pure; jit-able."""
    b, key = prepare(config, state, batch)
    group = state["q"]

    def loss_fn(params):
        td, q = td_loss(config, params, group, b)
        gap = jnp.mean(jax.nn.logsumexp(q, axis=1) - taken(q, b["actions"]))  # CQL(H), Kumar et al. Eq. 4
        return td + config.alpha * gap, (td, gap, q)

    (loss, (td, gap, q)), grads = jax.value_and_grad(loss_fn, has_aux=True)(group["params"])
    step = state["step"] + 1
    group = copy_target(config, step_group(group, grads, optimizer(config)), step)
    return ({**state, "step": step, "key": key, "q": group},
            {"loss": loss, "td_loss": td, "cql_gap": gap, "q_mean": jnp.mean(taken(q, b["actions"]))})


def export_policy(config: DiscreteCQLConfig, state: AgentState) -> NumpyPolicy:
    return export_argmax_policy(NAME, config, state, state["q"]["params"])


ALGORITHM = register(Algorithm(NAME, "offline", DiscreteCQLConfig, init, update, export_policy,
                               "Discrete CQL(H): double DQN with the conservative penalty (Kumar et al. 2020)",
                               discrete=True, images=True))
