"""CRL: contrastive reinforcement learning, goal-conditioned values as contrastive representations.

Eysenbach et al. 2022, "Contrastive Learning as Goal-Conditioned Reinforcement Learning", as OGBench
runs it (Park et al. 2024, Sec. 6). The critic is an inner product of a state-action representation
``phi(s, a)`` and a goal representation ``psi(g)`` (``d`` = ``latent_dim``, an ensemble of two),

    f(s, a, g) = phi(s, a)^T psi(g) / sqrt(d),

trained with the binary NCE loss (their Eq. 5): in a batch of ``B`` transitions whose value goals are
future states of their own trajectories (Geometric(1 - gamma) offsets), each ``(s_i, a_i, g_i)`` is a
positive and each ``(s_i, a_i, g_j)``, ``j != i``, a negative,

    L_f = -1/B^2 sum_i [ log sigma(f(s_i, a_i, g_i)) + sum_{j != i} log(1 - sigma(f(s_i, a_i, g_j))) ]

(averaged over the ensemble, as OGBench does).

At its optimum ``f = log p(s_future = g | s, a) / p(g)`` (their Lemma 4.1), a Q-function of the
goal-reaching reward up to a monotone transformation, so the actor maximises it. The actor, on actor
goals (a uniform future state), uses DDPG+BC with the Q term normalised by its mean magnitude:

    L_pi(phi) = -E[ min_i f_i(s, mu(s, g), g) ] / sg(E|f|) + alpha E[ 1/2 ||mu(s, g) - a||^2 ].

Defaults are OGBench's: layer-normalised 512-512-512 representation networks with ``d = 512``, a
512-512-512 actor with a constant unit standard deviation, ``alpha`` 0.1 (OGBench uses 0.03 on
PointMaze), value goals all from the future of the same trajectory, batch 1024, Adam at 3e-4.

``phi`` sees the observation with any goal entry blanked (dict observations keep the goal in their
``desired_goal`` slot), so it cannot read the goal it is scored against. ``f`` is not a number of steps,
so CRL exposes no ``goal_value`` and cannot drive the waypoint planner.
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
    goal_space,
    input_dim,
    split_input,
)
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.goals.relabel import GOAL_BATCH_KEYS
from armfarm.nets.mlp import ensemble_apply, init_ensemble, init_mlp
from armfarm.policy import NumpyPolicy

NAME = "crl"


@dataclasses.dataclass(frozen=True)
class CRLConfig(GoalConfig):
    """CRL hyperparameters (defaults: OGBench's CRL)."""

    hidden: tuple[int, ...] = param((512, 512, 512), "hidden layer widths of the actor and both representations")
    latent_dim: int = param(512, "width d of phi(s, a) and psi(g)")
    batch_size: int = param(1024, "transitions per gradient step (each row's negatives are the other rows)")
    lr: float = param(3e-4, "Adam learning rate of every network")
    alpha: float = param(0.1, "BC coefficient of the DDPG+BC actor")
    layer_norm: bool = param(True, "layer normalisation in the representation networks")
    init: str = param("lecun", "weight initialiser: torch, lecun or orthogonal")
    value_p_curgoal: float = param(0.0, "probability that a value goal is the current state")
    value_p_trajgoal: float = param(1.0, "probability that a value goal is a future state of the same episode")
    value_p_randomgoal: float = param(0.0, "probability that a value goal is a random dataset state")
    gc_negative: bool = param(False, "unused by CRL (no reward; positives are future states)")

    def _validate(self) -> None:
        super()._validate()
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be >= 1")
        if self.alpha < 0:
            raise ValueError("alpha must be >= 0")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2: each row's negatives are the other rows")


def _optimizer(config: CRLConfig) -> optax.GradientTransformation:
    return optax.adam(config.lr)


def init(config: CRLConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    width, opt = input_dim(config, stats.obs_dim), _optimizer(config)
    space = goal_space(config, stats.obs_dim)
    actor = init_mlp(rng, (width, *config.hidden, stats.act_dim), config.init)
    phi = init_ensemble(rng, 2, (stats.obs_dim + stats.act_dim, *config.hidden, config.latent_dim), config.init,
                        layer_norm=config.layer_norm)
    psi = init_ensemble(rng, 2, (space.goal_dim, *config.hidden, config.latent_dim), config.init,
                        layer_norm=config.layer_norm)
    return {"step": jnp.zeros((), jnp.int32), "key": key, "norm": make_norm(stats),
            "actor": new_group(actor, opt), "critic": new_group({"phi": phi, "psi": psi}, opt)}


def critic_logits(config: CRLConfig, params, s: jax.Array, a: jax.Array, goals: jax.Array) -> jax.Array:
    """``f_e(s_i, a_i, g_j)`` for every pair: ``[2, B, B]``."""
    phi = ensemble_apply(params["phi"], jnp.concatenate([s, a], axis=-1))
    psi = ensemble_apply(params["psi"], goals)
    return jnp.einsum("eik,ejk->eij", phi, psi) / jnp.sqrt(float(config.latent_dim))


def critic_diagonal(config: CRLConfig, params, s: jax.Array, a: jax.Array, goals: jax.Array) -> jax.Array:
    """``f_e(s_i, a_i, g_i)``: ``[2, B]``."""
    phi = ensemble_apply(params["phi"], jnp.concatenate([s, a], axis=-1))
    psi = ensemble_apply(params["psi"], goals)
    return jnp.sum(phi * psi, axis=-1) / jnp.sqrt(float(config.latent_dim))


def update(config: CRLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One CRL step on the binary NCE critic loss and the DDPG+BC actor loss. Pure; jit-able."""
    b = goal_inputs(config, state, batch)
    obs_dim = state["norm"]["obs_mean"].shape[0]
    s, g = split_input(config, b["value_in"], obs_dim)
    actor_s, actor_g = split_input(config, b["actor_in"], obs_dim)
    act, opt = b["actions"], _optimizer(config)
    eye = jnp.eye(act.shape[0])

    def loss_fn(params):
        """L_f (binary NCE, Eq. 5) + L_pi (DDPG+BC), on disjoint parameter groups."""
        logits = critic_logits(config, params["critic"], s, act, g)
        nce = optax.sigmoid_binary_cross_entropy(logits, jnp.broadcast_to(eye, logits.shape))
        critic_loss = jnp.mean(nce)
        mean = actor_mean(params["actor"], b["actor_in"])
        frozen = jax.lax.stop_gradient(params["critic"])
        q_pi = jnp.min(critic_diagonal(config, frozen, actor_s, mean, actor_g), axis=0)
        bc = actor_nll(mean, act)
        actor_loss = -jnp.mean(q_pi) / jax.lax.stop_gradient(jnp.mean(jnp.abs(q_pi)) + 1e-6) \
            + config.alpha * jnp.mean(bc)
        diagonal = jnp.mean(logits, axis=0)
        aux = {"critic_loss": critic_loss, "actor_loss": actor_loss, "bc_mse": jnp.mean(bc),
               "logits_pos": jnp.sum(diagonal * eye) / eye.shape[0],
               "logits_neg": jnp.sum(diagonal * (1 - eye)) / (eye.size - eye.shape[0]),
               "categorical_accuracy": jnp.mean(jnp.argmax(diagonal, axis=1) == jnp.arange(eye.shape[0]))}
        return critic_loss + actor_loss, aux

    params = {"actor": state["actor"]["params"], "critic": state["critic"]["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return {**state, "step": state["step"] + 1,
            "actor": step_group(state["actor"], grads["actor"], opt),
            "critic": step_group(state["critic"], grads["critic"], opt)}, metrics


def export_policy(config: CRLConfig, state: AgentState) -> NumpyPolicy:
    return export_goal_policy(mlp_policy(NAME, state["actor"]["params"], state, False), config, state)


ALGORITHM = register(Algorithm(NAME, "offline", CRLConfig, init, update, export_policy,
                               "Contrastive RL: goal-conditioned values as contrastive representations "
                               "(Eysenbach et al. 2022; OGBench)",
                               batch_keys=BASE_BATCH_KEYS + GOAL_BATCH_KEYS, goal_conditioned=True))
