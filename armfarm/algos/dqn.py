"""Double DQN: offline Q-learning over discrete actions (the DQN-replay baseline).

Mnih et al. 2015 ("Human-level control through deep reinforcement learning") with the double-Q target
of van Hasselt et al. 2016 ("Deep Reinforcement Learning with Double Q-learning", Eq. 4): the online
network picks the next action and the target network, copied every ``target_update_every`` steps,
values it,

    y = r + gamma (1 - d) Q_target(s', argmax_a' Q(s', a'))                        (double-DQN target)
    L(theta) = E_{(s, a, r, s', d) ~ D} [ huber(Q_theta(s, a) - y) ]               (DQN loss, Huber delta 1)

Trained from a store it is Agarwal et al. 2020's offline DQN, the baseline that CQL's conservative
term improves on. Observations are state vectors or ``uint8`` images through a conv encoder
(:mod:`armfarm.algos.core.discrete`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState
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

NAME = "dqn"


def optimizer(config: DiscreteConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: DiscreteConfig, stats: DatasetStats, seed: int) -> AgentState:
    return init_network(config, stats, seed, optimizer(config))


def td_target(config: DiscreteConfig, group: dict, b: dict) -> jax.Array:
    """The double-DQN target ``r + gamma (1 - d) Q_target(s', argmax Q(s', .))``, without gradient."""
    next_online = apply_network(config, group["params"], b["next_observations"])
    next_target = apply_network(config, group["target"], b["next_observations"])
    next_q = taken(next_target, jnp.argmax(next_online, axis=1))
    return jax.lax.stop_gradient(b["rewards"] + config.gamma * (1.0 - b["terminals"]) * next_q)


def td_loss(config: DiscreteConfig, params: dict, group: dict, b: dict) -> tuple[jax.Array, jax.Array]:
    """The Huber DQN loss and the ``(B, n)`` Q-values of the batch states."""
    q = apply_network(config, params, b["observations"])
    return jnp.mean(optax.huber_loss(taken(q, b["actions"]), td_target(config, group, b))), q


def update(config: DiscreteConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One gradient step on the double-DQN loss, then the periodic target copy. Pure; jit-able."""
    b, key = prepare(config, state, batch)
    group = state["q"]

    def loss_fn(params):
        loss, q = td_loss(config, params, group, b)
        return loss, q

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(group["params"])
    step = state["step"] + 1
    group = copy_target(config, step_group(group, grads, optimizer(config)), step)
    return {**state, "step": step, "key": key, "q": group}, {"td_loss": loss, "q_mean": jnp.mean(taken(q, b["actions"]))}


def export_policy(config: DiscreteConfig, state: AgentState) -> NumpyPolicy:
    return export_argmax_policy(NAME, config, state, state["q"]["params"])


ALGORITHM = register(Algorithm(NAME, "offline", DiscreteConfig, init, update, export_policy,
                               "Double DQN offline, discrete actions (Mnih et al. 2015; van Hasselt et al. 2016)",
                               discrete=True, images=True))
