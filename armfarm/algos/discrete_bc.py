"""Discrete behaviour cloning: the data's action as a classification target.

Pomerleau 1991, in its discrete form (the BC baseline of Agarwal et al. 2020 and of Kumar et al. 2020's
Atari section): a network with one logit per action, trained by cross-entropy,

    L(theta) = E_{(s, a) ~ D} [ - log softmax(f_theta(s))_a ]                       (BC loss)

and the greedy policy ``argmax_a f_theta(s)_a``. Observations are state vectors or ``uint8`` images
through a conv encoder (:mod:`armfarm.algos.core.discrete`); there is no target network.
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
    export_argmax_policy,
    init_network,
    prepare,
)
from armfarm.algos.core.params import step_group
from armfarm.algos.core.stats import DatasetStats
from armfarm.policy import NumpyPolicy

NAME = "discrete_bc"


def _optimizer(config: DiscreteConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: DiscreteConfig, stats: DatasetStats, seed: int) -> AgentState:
    return init_network(config, stats, seed, _optimizer(config))


def update(config: DiscreteConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One gradient step on the cross-entropy BC loss. Pure; jit-able."""
    b, key = prepare(config, state, batch)

    def loss_fn(params):
        logits = apply_network(config, params, b["observations"])
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, b["actions"]))
        return loss, logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["q"]["params"])
    accuracy = jnp.mean((jnp.argmax(logits, axis=1) == b["actions"]).astype(jnp.float32))
    return ({**state, "step": state["step"] + 1, "key": key, "q": step_group(state["q"], grads, _optimizer(config))},
            {"bc_loss": loss, "accuracy": accuracy})


def export_policy(config: DiscreteConfig, state: AgentState) -> NumpyPolicy:
    return export_argmax_policy(NAME, config, state, state["q"]["params"])


ALGORITHM = register(Algorithm(NAME, "offline", DiscreteConfig, init, update, export_policy,
                               "Behaviour cloning over discrete actions, cross-entropy (Pomerleau 1991)",
                               discrete=True, images=True))
