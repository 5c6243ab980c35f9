"""IQL: Implicit Q-Learning.

Kostrikov, Nair & Levine 2021, "Offline Reinforcement Learning with Implicit Q-Learning" (ICLR 2022).
IQL never queries Q at actions outside the dataset. A state value V_psi is fit to an upper expectile of
the target critics' values over dataset actions,

    L_V(psi) = E_{(s,a)~D}[ L_2^tau( min_i Q_{theta'_i}(s, a) - V_psi(s) ) ],
    L_2^tau(u) = |tau - 1(u < 0)| u^2                                              (Eq. 5)

the twin critics regress onto a SARSA-style target that bootstraps from V,

    L_Q(theta) = E_{(s,a,s')~D}[ (r + gamma (1 - d) V_psi(s') - Q_theta(s, a))^2 ]    (Eq. 6)

and the policy is extracted by advantage-weighted regression,

    L_pi(phi) = -E_{(s,a)~D}[ exp(beta (min_i Q_{theta'_i}(s,a) - V_psi(s))) log pi_phi(a|s) ]  (Eq. 7)

with the exponentiated advantage clipped at ``exp_adv_max`` (100 in the reference code). Target critics
follow by Polyak averaging with rate ``tau``. With ``normalize_reward`` (the paper's locomotion
setting) rewards are multiplied by ``1000 / (max episode return - min episode return)``.

Policy (``policy=``): ``"gaussian"`` (default, the paper's): mean ``tanh(f(s))`` and a state-independent
log-std clipped to [-5, 2]; ``log pi(a|s)`` is a Gaussian log-density. ``"deterministic"`` (as in CORL's
deterministic IQL): ``-log pi(a|s)`` is replaced by ``||tanh(f(s)) - a||^2``. Either way the exported
policy is ``tanh(f(s))``. ``actor_lr_schedule="cosine"`` decays the actor learning rate to 0 over
``max_steps`` (reference code); ``"constant"`` keeps it fixed.

Implementation: the three losses are computed from the same pre-update parameters (as in CORL; the
reference code refits V first and uses the new V in Eqs. 6-7) and differentiated in one backward pass;
the parameter groups are disjoint, so this equals three separate gradient steps.
"""

from __future__ import annotations

import dataclasses
import warnings

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
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "iql"


@dataclasses.dataclass(frozen=True)
class IQLConfig(SeparateEncoderSettings, ConfigBase):
    """IQL hyperparameters (defaults: Kostrikov et al. 2021, MuJoCo locomotion)."""

    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths of the actor, critics and value network")
    batch_size: int = param(256, "transitions per gradient step")
    actor_lr: float = param(3e-4, "Adam learning rate of the actor")
    critic_lr: float = param(3e-4, "Adam learning rate of the critics")
    value_lr: float = param(3e-4, "Adam learning rate of the value network")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the target critics")
    expectile: float = param(0.7, "expectile tau of the value loss (Eq. 5)")
    temperature: float = param(3.0, "inverse temperature beta of the advantage weights (Eq. 7)")
    exp_adv_max: float = param(100.0, "cap on the advantage weights exp(beta A)")
    policy: str = param("gaussian", "gaussian (the paper's) or deterministic actor")
    log_std_min: float = param(-5.0, "lower clip of the Gaussian actor's log-std")
    log_std_max: float = param(2.0, "upper clip of the Gaussian actor's log-std")
    actor_lr_schedule: str = param("cosine", "cosine (the reference code's decay over max_steps) or constant")
    max_steps: int = param(1_000_000, "steps the actor's cosine schedule decays over")
    normalize_reward: bool = param(True, "scale rewards by 1000 / (max - min episode return)")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("orthogonal", "weight initialiser: torch, lecun or orthogonal")
    value_first: bool = param(False, "refit V first and use the new V for Q and pi (the reference code's "
                                     "order); False: all three from the pre-update parameters (CORL's)")

    def _validate(self) -> None:
        if not 0.0 < self.expectile < 1.0:
            raise ValueError("expectile must be in (0, 1)")
        if self.temperature < 0 or self.exp_adv_max <= 0:
            raise ValueError("temperature must be >= 0 and exp_adv_max > 0")
        if self.policy not in ("gaussian", "deterministic"):
            raise ValueError(f"policy must be 'gaussian' or 'deterministic', got {self.policy!r}")
        if self.actor_lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"actor_lr_schedule must be 'cosine' or 'constant', got {self.actor_lr_schedule!r}")
        if self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")


def _actor_opt(config: IQLConfig) -> optax.GradientTransformation:
    if config.actor_lr_schedule == "cosine":
        return optax.adam(optax.cosine_decay_schedule(config.actor_lr, config.max_steps))
    return optax.adam(config.actor_lr)


def _critic_opt(config: IQLConfig) -> optax.GradientTransformation:
    return optax.adam(config.critic_lr)


def _value_opt(config: IQLConfig) -> optax.GradientTransformation:
    return optax.adam(config.value_lr)


def reward_scale(config: IQLConfig, stats: DatasetStats) -> float:
    """``1000 / return_range`` when ``normalize_reward`` (1.0 if the range is unknown or zero)."""
    if not config.normalize_reward:
        return 1.0
    if stats.return_range is None or not stats.return_range > 0:
        warnings.warn("IQL normalize_reward: dataset return range unknown or zero; rewards left unscaled", stacklevel=3)
        return 1.0
    return 1000.0 / stats.return_range


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """``L_2^tau(u) = |tau - 1(u < 0)| u^2`` (Eq. 5), elementwise."""
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return weight * jnp.square(diff)


def _init_nets(config: IQLConfig, obs_dim: int, act_dim: int, seed: int) -> dict:
    key, rng = seed_streams(seed)
    actor = {"net": init_mlp(rng, (obs_dim, *config.hidden, act_dim), config.init)}
    if config.policy == "gaussian":
        actor["log_std"] = jnp.zeros((act_dim,), jnp.float32)
    critic = init_critic_ensemble(rng, 2, obs_dim, act_dim, config.hidden, config.init)
    value = init_mlp(rng, (obs_dim, *config.hidden, 1), config.init)
    return {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "actor": new_group(actor, _actor_opt(config)),
        "critic": new_group(critic, _critic_opt(config), target=True),
        "value": new_group(value, _value_opt(config)),
    }


def init(config: IQLConfig, stats: DatasetStats, seed: int) -> AgentState:
    norm = make_norm(stats, reward_scale(config, stats))
    return {**_init_nets(config, stats.obs_dim, stats.act_dim, seed), "norm": norm}


def value_fn(params, obs: jax.Array) -> jax.Array:
    return mlp_apply(params, obs)[..., 0]


def _critic_loss(params, obs: jax.Array, act: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """L_Q (Kostrikov et al. 2021, Eq. 6), summed over both critics."""
    q = critic_ensemble_apply(params, obs, act)  # [2, B]
    return jnp.mean(jnp.sum(jnp.square(q - y), axis=0)), q


def _actor_loss(config: IQLConfig, params, obs: jax.Array, act: jax.Array, adv: jax.Array) -> jax.Array:
    """L_pi (Eq. 7): advantage-weighted log-likelihood, or its deterministic weighted-regression form."""
    exp_adv = jnp.minimum(jnp.exp(config.temperature * jax.lax.stop_gradient(adv)), config.exp_adv_max)
    mean = jnp.tanh(mlp_apply(params["net"], obs))
    if config.policy == "gaussian":
        log_std = jnp.clip(params["log_std"], config.log_std_min, config.log_std_max)
        return -jnp.mean(exp_adv * gaussian_log_prob(act, mean, log_std))
    return jnp.mean(exp_adv * jnp.sum(jnp.square(mean - act), axis=-1))


def update(config: IQLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One IQL step on Eqs. 5-7 and a target-critic Polyak update. Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act = b["observations"], b["actions"]
    critic = state["critic"]
    target_q = jnp.min(critic_ensemble_apply(critic["target"], obs, act), axis=0)  # [B]
    if config.value_first:
        return _update_value_first(config, state, b, target_q)
    next_v = value_fn(state["value"]["params"], b["next_observations"])
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * next_v

    def loss_fn(params):
        """L_V (Kostrikov et al. 2021, Eq. 5) + L_Q (Eq. 6) + L_pi (Eq. 7); the three act on disjoint
        parameter groups."""
        v = value_fn(params["value"], obs)
        adv = target_q - v
        value_loss = jnp.mean(expectile_loss(adv, config.expectile))  # Eq. 5
        q_loss, q = _critic_loss(params["critic"], obs, act, y)
        actor_loss = _actor_loss(config, params["actor"], obs, act, adv)
        total = value_loss + q_loss + actor_loss
        aux = {"value_loss": value_loss, "critic_loss": q_loss, "actor_loss": actor_loss,
               "v_mean": jnp.mean(v), "q_mean": jnp.mean(q), "adv_mean": jnp.mean(adv)}
        return total, aux

    params = {"actor": state["actor"]["params"], "critic": critic["params"], "value": state["value"]["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return _next_state(config, state, grads, step_group(state["value"], grads["value"], _value_opt(config))), metrics


def _next_state(config: IQLConfig, state: AgentState, grads: dict, value: dict) -> AgentState:
    """The state after a step: actor and critics stepped on ``grads``, the critic target moved, ``value``."""
    return {
        "step": state["step"] + 1,
        "key": state["key"],
        "norm": state["norm"],
        "actor": step_group(state["actor"], grads["actor"], _actor_opt(config)),
        "critic": step_group(state["critic"], grads["critic"], _critic_opt(config), tau=config.tau),
        "value": value,
    }


def _update_value_first(config: IQLConfig, state: AgentState, b: dict, target_q: jax.Array):
    """The reference code's order: a step on L_V first, then L_Q and L_pi with the refitted V."""
    obs, act = b["observations"], b["actions"]

    def value_loss_fn(params):
        """L_V (Kostrikov et al. 2021, Eq. 5)."""
        v = value_fn(params, obs)
        return jnp.mean(expectile_loss(target_q - v, config.expectile)), v

    (value_loss, v), grads = jax.value_and_grad(value_loss_fn, has_aux=True)(state["value"]["params"])
    value = step_group(state["value"], grads, _value_opt(config))
    adv = target_q - value_fn(value["params"], obs)
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * value_fn(value["params"], b["next_observations"])

    def loss_fn(params):
        """L_Q (Eq. 6) and L_pi (Eq. 7) with the refitted V."""
        q_loss, q = _critic_loss(params["critic"], obs, act, y)
        actor_loss = _actor_loss(config, params["actor"], obs, act, adv)
        return q_loss + actor_loss, {"critic_loss": q_loss, "actor_loss": actor_loss, "q_mean": jnp.mean(q)}

    params = {"actor": state["actor"]["params"], "critic": state["critic"]["params"]}
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return _next_state(config, state, grads, value), {**metrics, "value_loss": value_loss, "v_mean": jnp.mean(v), "adv_mean": jnp.mean(adv)}


def export_policy(config: IQLConfig, state: AgentState) -> NumpyPolicy:
    return mlp_policy(NAME, state["actor"]["params"]["net"], state, config.normalize_obs)


ALGORITHM = register(with_encoder(Algorithm(NAME, "offline", IQLConfig, init, update, export_policy,
                               "Implicit Q-Learning: expectile values, advantage-weighted actor (Kostrikov et al. 2021)", finetune={}), ("critic_loss", "value_loss")))
