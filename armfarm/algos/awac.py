"""AWAC: Advantage-Weighted Actor-Critic, for offline pre-training followed by online fine-tuning.

Nair, Gupta, Dalal & Levine 2020, "AWAC: Accelerating Online Reinforcement Learning with Offline
Datasets". Twin critics learn the policy's Q by TD (Eq. 4),

    y = r + gamma (1 - d) min_j Q_{theta'_j}(s', a'),   a' ~ pi(.|s'),
    L(theta_i) = E_D[ (Q_{theta_i}(s, a) - y)^2 ],

and the actor is the weighted maximum-likelihood projection of the advantage-reweighted policy (Eq. 13):

    L(phi) = -E_{(s, a) ~ D}[ log pi_phi(a|s) exp( A(s, a) / lambda ) ],
    A(s, a) = min_j Q_j(s, a) - min_j Q_j(s, a~pi(.|s)),

with the weights clipped at ``exp_adv_max`` (as CORL does). The policy is a Gaussian with mean
``tanh(f(s))`` and a learned state-independent log-std; the exported policy is ``tanh(f(s))``. The
same updates serve offline and online (``armfarm finetune``): only the data changes.

Defaults are CORL's (Tarasov et al. 2022): lambda 1.0, Adam 3e-4 for both, batch 256, gamma 0.99,
tau 0.005, two hidden layers of 256.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.distributions import gaussian_log_prob
from armfarm.algos.core.export import mlp_policy
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.pixels import SeparateEncoderSettings, with_encoder
from armfarm.algos.core.prng import seed_streams, split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "awac"


@dataclasses.dataclass(frozen=True)
class AWACConfig(SeparateEncoderSettings, ConfigBase):
    """AWAC hyperparameters (defaults: CORL's AWAC on Gym MuJoCo)."""

    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths of the actor and each critic")
    batch_size: int = param(256, "transitions per gradient step")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor")
    critic_lr: float = param(3e-4, "Adam learning rate of the critics")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the target critics")
    awac_lambda: float = param(1.0, "lambda of Eq. 13: the advantage weights are exp(A / lambda)")
    exp_adv_max: float = param(100.0, "cap on the advantage weights")
    log_std_min: float = param(-20.0, "lower clip of the actor's log-std")
    log_std_max: float = param(2.0, "upper clip of the actor's log-std")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")

    def _validate(self) -> None:
        if self.awac_lambda <= 0 or self.exp_adv_max <= 0:
            raise ValueError("awac_lambda and exp_adv_max must be > 0")


def _adam(lr: float) -> optax.GradientTransformation:
    return optax.adam(lr)


def init(config: AWACConfig, stats: DatasetStats, seed: int) -> AgentState:
    key, rng = seed_streams(seed)
    actor = {"net": init_mlp(rng, (stats.obs_dim, *config.hidden, stats.act_dim), config.init),
             "log_std": jnp.zeros((stats.act_dim,), jnp.float32)}
    critic = init_critic_ensemble(rng, 2, stats.obs_dim, stats.act_dim, config.hidden, config.init)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "norm": make_norm(stats),
        "actor": new_group(actor, _adam(config.actor_lr)),
        "critic": new_group(critic, _adam(config.critic_lr), target=True),
    }


def _dist(config: AWACConfig, params, obs):
    mean = jnp.tanh(mlp_apply(params["net"], obs))
    return mean, jnp.clip(params["log_std"], config.log_std_min, config.log_std_max)


def _sample(config: AWACConfig, params, obs, key):
    mean, log_std = _dist(config, params, obs)
    return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape), -1.0, 1.0)


def update(config: AWACConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One AWAC step (critics on Eq. 4, actor on Eq. 13, targets). Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    key, (k_next, k_pi) = split_key(state["key"], 2)
    actor, critic = state["actor"], state["critic"]
    sg = jax.lax.stop_gradient

    next_act = _sample(config, actor["params"], next_obs, k_next)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * jnp.min(
        critic_ensemble_apply(critic["target"], next_obs, next_act), axis=0)
    pi_act = _sample(config, actor["params"], obs, k_pi)

    def loss_fn(params):
        """TD loss of the twin critics (Nair et al. 2020, Eq. 4) and the advantage-weighted
        log-likelihood of the data's actions (Eq. 13), on the pre-update critics."""
        q = critic_ensemble_apply(params["critic"], obs, act)  # [2, B]
        critic_loss = jnp.sum(jnp.mean(jnp.square(q - y), axis=1))
        q_data = jnp.min(sg(q), axis=0)
        v = jnp.min(critic_ensemble_apply(sg(params["critic"]), obs, pi_act), axis=0)
        adv = q_data - v
        weights = jnp.minimum(jnp.exp(adv / config.awac_lambda), config.exp_adv_max)
        mean, log_std = _dist(config, params["actor"], obs)
        actor_loss = -jnp.mean(weights * gaussian_log_prob(act, mean, log_std))
        metrics = {"critic_loss": critic_loss, "actor_loss": actor_loss, "q_mean": jnp.mean(q),
                   "target_q_mean": jnp.mean(y), "adv_mean": jnp.mean(adv), "weight_mean": jnp.mean(weights)}
        return critic_loss + actor_loss, metrics

    params = {"actor": actor["params"], "critic": critic["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    new_state = {
        "step": state["step"] + 1,
        "key": key,
        "norm": state["norm"],
        "actor": step_group(actor, grads["actor"], _adam(config.actor_lr)),
        "critic": step_group(critic, grads["critic"], _adam(config.critic_lr), tau=config.tau),
    }
    return new_state, metrics


def export_policy(config: AWACConfig, state: AgentState) -> NumpyPolicy:
    """The deterministic policy ``tanh(f(s))``."""
    return mlp_policy(NAME, state["actor"]["params"]["net"], state, config.normalize_obs)


ALGORITHM = register(with_encoder(Algorithm(
    NAME, "offline-to-online", AWACConfig, init, update, export_policy,
    "AWAC: advantage-weighted actor-critic, offline then online (Nair et al. 2020)", finetune={}), ("critic_loss",)))
