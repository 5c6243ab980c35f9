"""Behaviour cloning: regress the dataset's actions with a deterministic tanh MLP.

Pomerleau 1991 ("Efficient Training of Artificial Neural Networks for Autonomous Navigation"), in the
form of the BC baseline of TD3+BC (Fujimoto & Gu 2021, Sec. 5): states standardised, a 256-256 ReLU
network with a tanh output, Adam at 3e-4, batch 256, and the mean-squared error

    L(phi) = E_{(s, a) ~ D} [ (pi_phi(s) - a)^2 ]                                  (BC loss)

with actions mapped to [-1, 1]. The loss averages over batch and action dimensions.
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
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.pixels import SeparateEncoderSettings, with_encoder
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "bc"


@dataclasses.dataclass(frozen=True)
class BCConfig(SeparateEncoderSettings, ConfigBase):
    """Behaviour cloning hyperparameters (defaults: TD3+BC's BC baseline)."""

    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths")
    batch_size: int = param(256, "transitions per gradient step")
    lr: float = param(3e-4, "Adam learning rate")
    normalize_obs: bool = param(True, "standardise observations with the data's mean and std (+1e-3)")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")


def _optimizer(config: BCConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def _init_nets(config: BCConfig, obs_dim: int, act_dim: int, seed: int) -> dict:
    key, rng = seed_streams(seed)
    params = init_mlp(rng, (obs_dim, *config.hidden, act_dim), config.init)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "actor": new_group(params, _optimizer(config)),
    }


def init(config: BCConfig, stats: DatasetStats, seed: int) -> AgentState:
    return {**_init_nets(config, stats.obs_dim, stats.act_dim, seed), "norm": make_norm(stats)}


def update(config: BCConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One gradient step on the BC loss. Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)

    def loss_fn(params):
        """BC loss: mean squared error between pi(s) and the dataset action (Pomerleau 1991; the BC
        baseline of Fujimoto & Gu 2021)."""
        pred = mlp_apply(params, b["observations"], final_activation=jnp.tanh)
        return jnp.mean(jnp.square(pred - b["actions"]))

    loss, grads = jax.value_and_grad(loss_fn)(state["actor"]["params"])
    new_state = {**state, "step": state["step"] + 1, "actor": step_group(state["actor"], grads, _optimizer(config))}
    return new_state, {"bc_loss": loss}


def export_policy(config: BCConfig, state: AgentState) -> NumpyPolicy:
    return mlp_policy(NAME, state["actor"]["params"], state, config.normalize_obs)


ALGORITHM = register(with_encoder(Algorithm(NAME, "offline", BCConfig, init, update, export_policy,
                               "Behaviour cloning, the TD3+BC paper's baseline (Fujimoto & Gu 2021)"), ("bc_loss",)))
