"""GCBC: goal-conditioned behaviour cloning on hindsight-relabeled goals.

Ghosh et al. 2021 ("Learning to Reach Goals via Iterated Supervised Learning") and Lynch et al. 2019
("Learning Latent Plans from Play"); the GCBC baseline of OGBench (Park et al. 2024, Sec. 6). For each
transition an actor goal ``g`` is a future state of the same episode (uniform over the rest of the
episode by default; :mod:`armfarm.goals.relabel`) and the actor regresses the data's action,

    L(phi) = E_{(s, a, g) ~ D_relabel} [ -log pi_phi(a | s, g) ]
           = E [ 1/2 ||mu_phi(s, g) - a||^2 ] + const                                 (GCBC loss)

with OGBench's constant unit standard deviation, so the negative log-likelihood is the squared error.
armfarm's actor mean is ``tanh``-squashed (actions live in [-1, 1]), OGBench's is not. Defaults are
OGBench's: a 512-512-512 network, Adam at 3e-4, batch 1024.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import BASE_BATCH_KEYS, Algorithm, register
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.goals import (
    GoalConfig,
    actor_mean,
    actor_nll,
    export_goal_policy,
    goal_inputs,
    input_dim,
)
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.goals.relabel import GOAL_BATCH_KEYS
from armfarm.nets.mlp import init_mlp
from armfarm.policy import NumpyPolicy

NAME = "gcbc"


@dataclasses.dataclass(frozen=True)
class GCBCConfig(GoalConfig):
    """GCBC hyperparameters (defaults: OGBench's GCBC)."""

    hidden: tuple[int, ...] = param((512, 512, 512), "hidden layer widths of the actor")
    batch_size: int = param(1024, "transitions per gradient step")
    lr: float = param(3e-4, "Adam learning rate")
    init: str = param("lecun", "weight initialiser: torch, lecun or orthogonal")
    value_p_curgoal: float = param(0.0, "unused by GCBC (no value function)")
    value_p_trajgoal: float = param(1.0, "unused by GCBC (no value function)")
    value_p_randomgoal: float = param(0.0, "unused by GCBC (no value function)")
    value_geom_sample: bool = param(False, "unused by GCBC (no value function)")


def _optimizer(config: GCBCConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: GCBCConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    params = init_mlp(rng, (input_dim(config, stats.obs_dim), *config.hidden, stats.act_dim), config.init)
    return {"step": jnp.zeros((), jnp.int32), "key": key, "actor": new_group(params, _optimizer(config)),
            "norm": make_norm(stats)}


def update(config: GCBCConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One gradient step on the GCBC loss. Pure; jit-able."""
    b = goal_inputs(config, state, batch)

    def loss_fn(params):
        """GCBC loss: the unit-variance Gaussian negative log-likelihood of the data's action given the
        state and a hindsight goal (Ghosh et al. 2021; OGBench's GCBC), up to a constant."""
        return jnp.mean(actor_nll(actor_mean(params, b["actor_in"]), b["actions"]))

    loss, grads = jax.value_and_grad(loss_fn)(state["actor"]["params"])
    new_state = {**state, "step": state["step"] + 1, "actor": step_group(state["actor"], grads, _optimizer(config))}
    return new_state, {"actor_loss": loss}


def export_policy(config: GCBCConfig, state: AgentState) -> NumpyPolicy:
    return export_goal_policy(mlp_policy(NAME, state["actor"]["params"], state, False), config, state)


ALGORITHM = register(Algorithm(NAME, "offline", GCBCConfig, init, update, export_policy,
                               "Goal-conditioned BC on hindsight goals (Ghosh et al. 2021; OGBench's GCBC)",
                               batch_keys=BASE_BATCH_KEYS + GOAL_BATCH_KEYS, goal_conditioned=True))
