"""FQE: Fitted Q Evaluation, the value of a given policy estimated from a store without running it.

Le, Voloshin & Yue 2019, "Batch Policy Learning under Constraints" (ICML), Alg. 3: Q^pi is fitted by
iterated regression on the Bellman operator of the evaluated policy pi,

    Q_{k+1} = argmin_Q E_{(s, a, r, s') ~ D}[ (Q(s, a) - r - gamma (1 - d) Q_k(s', pi(s')))^2 ],

here in its usual deep form (as in DOPE, Fu et al. 2021): one gradient step per iteration, ``Q_k`` a
Polyak-averaged target network. The policy's value is the mean of ``Q(s_0, pi(s_0))`` over the store's
initial states (:func:`armfarm.evaluate.ope.initial_value`). ``pi`` is a published
:class:`~armfarm.policy.NumpyPolicy` (``policy_path``), copied into the state and evaluated in JAX.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble
from armfarm.policy import NumpyPolicy

NAME = "fqe"


@dataclasses.dataclass(frozen=True)
class FQEConfig(ConfigBase):
    """FQE hyperparameters (DOPE's FQE-L2 setting, Fu et al. 2021: Adam, target network, discount 0.99)."""

    policy_path: str = param("", "the policy.npz to evaluate")
    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths of the critic")
    batch_size: int = param(256, "transitions per gradient step")
    critic_lr: float = param(3e-4, "Adam learning rate of the critic")
    gamma: float = param(0.99, "discount of the estimated value")
    tau: float = param(0.005, "Polyak rate of the target critic (Q_k)")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")


def load_policy(config: FQEConfig) -> NumpyPolicy:
    if not config.policy_path:
        raise ValueError("FQE needs the policy to evaluate: set policy_path to its policy.npz")
    return NumpyPolicy.load(config.policy_path)


def init(config: FQEConfig, stats: DatasetStats, seed: int) -> AgentState:
    policy = load_policy(config)
    if policy.subgoal is not None:
        raise ValueError(f"{config.policy_path} is a hierarchical (goal-conditioned) policy; FQE evaluates "
                         "flat policies of the data's states")
    if (policy.obs_dim, policy.act_dim) != (stats.obs_dim, stats.act_dim):
        raise ValueError(f"{config.policy_path} maps {policy.obs_dim} features to {policy.act_dim} actions; the "
                         f"data has {stats.obs_dim} and {stats.act_dim}")
    key, rng = seed_streams(seed)
    critic = init_critic_ensemble(rng, 1, stats.obs_dim, stats.act_dim, config.hidden, config.init)
    low = stats.action_low if policy.action_low is None else policy.action_low
    high = stats.action_high if policy.action_high is None else policy.action_high
    frozen = {"weights": [jnp.asarray(w) for w in policy.weights], "biases": [jnp.asarray(b) for b in policy.biases],
              "obs_mean": jnp.asarray(0.0 if policy.obs_mean is None else policy.obs_mean, jnp.float32),
              "obs_std": jnp.asarray(1.0 if policy.obs_std is None else policy.obs_std, jnp.float32),
              "act_low": jnp.asarray(low, jnp.float32), "act_high": jnp.asarray(high, jnp.float32)}
    return {"step": jnp.zeros((), jnp.int32), "key": key, "norm": make_norm(stats),
            "critic": new_group(critic, optax.adam(config.critic_lr), target=True), "policy": frozen}


def policy_action(state: AgentState, raw_obs: jax.Array) -> jax.Array:
    """The evaluated policy's action for raw observations, mapped into the learner's [-1, 1] actions."""
    p, norm = state["policy"], state["norm"]
    x = (raw_obs - p["obs_mean"]) / p["obs_std"]
    for w, b in zip(p["weights"][:-1], p["biases"][:-1], strict=True):
        x = jnp.maximum(x @ w + b, 0.0)
    y = jnp.tanh(x @ p["weights"][-1] + p["biases"][-1])
    action = p["act_low"] + (y + 1.0) * 0.5 * (p["act_high"] - p["act_low"])
    return jnp.clip((action - norm["act_center"]) / norm["act_half_range"], -1.0, 1.0)


def q_value(config: FQEConfig, state: AgentState, raw_obs: jax.Array) -> jax.Array:
    """``Q(s, pi(s))`` for raw observations ``[N, obs_dim]`` -> ``[N]``."""
    norm = state["norm"]
    obs = (raw_obs - norm["obs_mean"]) / norm["obs_std"] if config.normalize_obs else raw_obs
    return critic_ensemble_apply(state["critic"]["params"], obs, policy_action(state, raw_obs))[0]


def update(config: FQEConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One FQE iteration (Le et al. 2019, Alg. 3) as one gradient step towards the target network."""
    b = preprocess(state, batch, config.normalize_obs)
    next_act = policy_action(state, jnp.asarray(batch["next_observations"], jnp.float32))
    next_q = critic_ensemble_apply(state["critic"]["target"], b["next_observations"], next_act)[0]
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * next_q

    def loss_fn(params):
        """Squared Bellman error of pi's operator (Le et al. 2019, Alg. 3)."""
        q = critic_ensemble_apply(params, b["observations"], b["actions"])[0]
        return jnp.mean(jnp.square(q - y)), q

    (loss, q), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["critic"]["params"])
    critic = step_group(state["critic"], grads, optax.adam(config.critic_lr), tau=config.tau)
    new_state = {**state, "step": state["step"] + 1, "critic": critic}
    return new_state, {"fqe_loss": loss, "q_mean": jnp.mean(q), "target_q_mean": jnp.mean(y)}


ALGORITHM = register(Algorithm(NAME, "evaluator", FQEConfig, init, update, None,
                               "Fitted Q Evaluation of a given policy (Le et al. 2019); `armfarm ope` runs it"))
