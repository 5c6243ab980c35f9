"""CQL: Conservative Q-Learning, the SAC-based CQL(H) variant.

Kumar, Zhou, Tucker & Levine 2020, "Conservative Q-Learning for Offline Reinforcement Learning"
(NeurIPS). Each of the twin critics minimises the SAC Bellman error plus the CQL(H) regulariser of
Eq. (4),

    L(theta_i) = alpha' * E_{s~D}[ log sum_a exp Q_i(s, a) - E_{a~D}[Q_i(s, a)] ]
                 + 1/2 E_{(s,a,s')~D}[ (Q_i(s, a) - y)^2 ]    (the 1/2 is dropped, as in the reference code)
    y = r + gamma (1 - d) min_j Q_{theta'_j}(s', a'),   a' ~ pi(.|s')   (no entropy bonus by default)

where ``alpha' = cql_alpha`` (5.0) and the log-sum-exp over the action space is estimated by
importance sampling (Appendix F; the reference ``min_q_version=3``) with ``num_samples`` (10) actions
from each of Unif([-1, 1]^d), pi(.|s) and pi(.|s'), all evaluated at s:

    log sum_a exp Q(s,a) ~= log( sum_{a~Unif} exp(Q(s,a)) / Unif(a) + sum_{a~pi(.|s)} exp(Q(s,a)) / pi(a|s)
                                 + sum_{a~pi(.|s')} exp(Q(s,a)) / pi(a|s') )  (up to a constant)

With ``lagrange=True`` (CQL-Lagrange, Appendix F) the regulariser becomes
``alpha_prime * (cql_alpha * gap_i - target_action_gap)``, where ``gap_i`` is the bracket above for
critic i and ``alpha_prime = exp(log alpha_prime)`` (clipped to [0, 1e6]) is trained by gradient ascent
on the same quantity, so it grows while the gap exceeds ``target_action_gap`` (the paper's tau).

The actor is SAC's (Haarnoja et al. 2018) tanh-Gaussian policy, trained on
``E_s[ alpha log pi(a|s) - min_j Q_j(s, a) ]``, a ~ pi(.|s), with the entropy temperature tuned
automatically towards ``target_entropy = -act_dim`` (Haarnoja et al. 2018b, "Soft Actor-Critic
Algorithms and Applications"). Targets follow by Polyak averaging with rate ``tau``. ``cql_alpha = 0`` (without ``lagrange``) is plain offline SAC: the
regulariser and its sampled actions are not computed at all.

Implementation: as in the reference code the actor, temperature and critic losses all use the
pre-update parameters, so they are differentiated in one backward pass (stop-gradients keep each loss
on its own parameter group). The actor network runs once per state; the 3 x ``num_samples`` sampled
actions reuse its mean/log-std, and the twin critics evaluate all ``1 + 3 num_samples`` actions of a
state in one vmapped pass whose state half of the first layer is computed once.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from armfarm.algos.common import (
    AgentState,
    ConfigBase,
    DatasetStats,
    apply_optimizer,
    make_norm,
    mlp_policy,
    polyak,
    preprocess,
    seed_streams,
    split_key,
)
from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble, init_mlp, mlp_apply
from armfarm.policy import NumpyPolicy

NAME = "cql"
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


@dataclasses.dataclass(frozen=True)
class CQLConfig(ConfigBase):
    """CQL(H) hyperparameters (defaults: Kumar et al. 2020, Gym MuJoCo; the reference code uses three
    hidden layers of 256, armfarm defaults to two like the other algorithms)."""

    hidden: tuple[int, ...] = (256, 256)
    batch_size: int = 256
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 1e-4
    gamma: float = 0.99
    tau: float = 0.005
    cql_alpha: float = 5.0
    num_samples: int = 10
    cql_temperature: float = 1.0
    lagrange: bool = False
    target_action_gap: float = 10.0
    alpha_prime_lr: float = 3e-4
    auto_entropy: bool = True
    init_alpha: float = 1.0
    target_entropy: float | None = None
    backup_entropy: bool = False
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    normalize_obs: bool = False
    init: str = "torch"

    def _validate(self) -> None:
        if self.cql_alpha < 0:
            raise ValueError("cql_alpha must be >= 0")
        if self.num_samples < 1:
            raise ValueError("num_samples must be >= 1")
        if self.cql_temperature <= 0:
            raise ValueError("cql_temperature must be > 0")
        if self.init_alpha <= 0:
            raise ValueError("init_alpha must be > 0")

    @property
    def conservative(self) -> bool:
        return self.lagrange or self.cql_alpha > 0


def _opt(lr: float) -> optax.GradientTransformation:
    return optax.adam(lr)


def _init_nets(config: CQLConfig, obs_dim: int, act_dim: int, seed: int) -> dict:
    key, rng = seed_streams(seed)
    actor = init_mlp(rng, (obs_dim, *config.hidden, 2 * act_dim), config.init)
    critic = init_critic_ensemble(rng, 2, obs_dim, act_dim, config.hidden, config.init)
    log_alpha = jnp.asarray(math.log(config.init_alpha), jnp.float32)
    state = {
        "step": jnp.zeros((), jnp.int32),
        "key": key,
        "actor": {"params": actor, "opt": _opt(config.actor_lr).init(actor)},
        "critic": {"params": critic, "target": critic, "opt": _opt(config.critic_lr).init(critic)},
        "log_alpha": {"params": log_alpha, "opt": _opt(config.alpha_lr).init(log_alpha)},
    }
    if config.lagrange:
        log_alpha_prime = jnp.zeros((), jnp.float32)
        state["log_alpha_prime"] = {"params": log_alpha_prime, "opt": _opt(config.alpha_prime_lr).init(log_alpha_prime)}
    return state


def init(config: CQLConfig, stats: DatasetStats, seed: int) -> AgentState:
    return {**_init_nets(config, stats.obs_dim, stats.act_dim, seed), "norm": make_norm(stats)}


def actor_dist(config: CQLConfig, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and clipped log-std of the pre-tanh Gaussian."""
    out = mlp_apply(params, obs)
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array, shape) -> tuple[jax.Array, jax.Array]:
    """Reparameterised ``a = tanh(mean + std * eps)`` and ``log pi(a|s)`` (tanh change of variables)."""
    eps = jax.random.normal(key, shape)
    u = mean + jnp.exp(log_std) * eps
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), numerically stable
    log_det = 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))
    log_prob = jnp.sum(-0.5 * jnp.square(eps) - log_std - _HALF_LOG_2PI - log_det, axis=-1)
    return jnp.tanh(u), log_prob


def update(config: CQLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One CQL step (critic, actor, temperature and, with ``lagrange``, alpha'). Pure; jit-able."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    batch_size, act_dim = act.shape
    n = config.num_samples
    key, (k_next, k_pi, k_rand, k_cur, k_nxt) = split_key(state["key"], 5)
    sg = jax.lax.stop_gradient
    target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
    alpha = jnp.exp(state["log_alpha"]["params"])

    # ---- Bellman target (no gradients)
    next_mean, next_log_std = actor_dist(config, state["actor"]["params"], next_obs)
    next_act, next_log_prob = sample_tanh_gaussian(k_next, next_mean, next_log_std, next_mean.shape)
    target_q = jnp.min(critic_ensemble_apply(state["critic"]["target"], next_obs, next_act), axis=0)
    if config.backup_entropy:
        target_q = target_q - alpha * next_log_prob
    y = b["rewards"] + config.gamma * (1.0 - b["terminals"]) * target_q

    if config.conservative:
        rand_act = jax.random.uniform(k_rand, (batch_size, n, act_dim), minval=-1.0, maxval=1.0)
        nxt_act, nxt_log_prob = sample_tanh_gaussian(
            k_nxt, next_mean[:, None], next_log_std[:, None], (batch_size, n, act_dim)
        )
        log_unif = -act_dim * _LOG_2  # log density of Unif([-1, 1]^d)

    def loss_fn(params):
        """Critic: Bellman error + CQL(H) regulariser (Kumar et al. 2020, Eq. 4), its log-sum-exp
        estimated by importance sampling and, with ``lagrange``, in Lagrangian form (both Appendix F).
        Actor: the reparameterised SAC policy objective (Haarnoja et al. 2018). Temperature: automatic
        entropy adjustment (Haarnoja et al. 2018b)."""
        metrics = {}
        # ---- actor (SAC) and temperature, on the pre-update critic
        mean, log_std = actor_dist(config, params["actor"], obs)
        pi_act, pi_log_prob = sample_tanh_gaussian(k_pi, mean, log_std, mean.shape)
        q_pi = jnp.min(critic_ensemble_apply(sg(params["critic"]), obs, pi_act), axis=0)
        actor_loss = jnp.mean(alpha * pi_log_prob - q_pi)
        alpha_loss = -params["log_alpha"] * jnp.mean(sg(pi_log_prob) + target_entropy)
        if not config.auto_entropy:
            alpha_loss = 0.0 * alpha_loss

        # ---- critics: Bellman error (+ CQL(H) regulariser, Eq. 4)
        if config.conservative:
            cur_act, cur_log_prob = sample_tanh_gaussian(
                k_cur, sg(mean)[:, None], sg(log_std)[:, None], (batch_size, n, act_dim)
            )
            all_act = jnp.concatenate([act[:, None], rand_act, sg(cur_act), nxt_act], axis=1)
            q_all = critic_ensemble_apply(params["critic"], obs, all_act)  # [2, B, 1 + 3n]
            q_data = q_all[:, :, 0]
            q_rand, q_cur, q_nxt = q_all[:, :, 1:1 + n], q_all[:, :, 1 + n:1 + 2 * n], q_all[:, :, 1 + 2 * n:]
            cat = jnp.concatenate(
                [q_rand - log_unif, q_nxt - sg(nxt_log_prob), q_cur - sg(cur_log_prob)], axis=-1
            )
            temp = config.cql_temperature
            lse = temp * jax.scipy.special.logsumexp(cat / temp, axis=-1)  # [2, B]
            gap = jnp.mean(lse, axis=1) - jnp.mean(q_data, axis=1)  # [2]
            if config.lagrange:
                alpha_prime = jnp.clip(jnp.exp(params["log_alpha_prime"]), 0.0, 1e6)
                cql_term = sg(alpha_prime) * (config.cql_alpha * gap - config.target_action_gap)
                alpha_prime_loss = -jnp.mean(alpha_prime * sg(config.cql_alpha * gap - config.target_action_gap))
                metrics["alpha_prime"] = alpha_prime
                metrics["alpha_prime_loss"] = alpha_prime_loss
            else:
                cql_term = config.cql_alpha * gap
                alpha_prime_loss = 0.0
            metrics["cql_gap"] = jnp.mean(gap)
            metrics["q_rand_mean"] = jnp.mean(q_rand)
            cql_loss = jnp.sum(cql_term)
        else:
            q_data = critic_ensemble_apply(params["critic"], obs, act)
            cql_loss = alpha_prime_loss = 0.0
        bellman = jnp.sum(jnp.mean(jnp.square(q_data - y), axis=1))
        critic_loss = bellman + cql_loss
        metrics.update({
            "critic_loss": critic_loss,
            "bellman_loss": bellman,
            "actor_loss": actor_loss,
            "alpha_loss": alpha_loss,
            "alpha": alpha,
            "entropy": -jnp.mean(pi_log_prob),
            "q_mean": jnp.mean(q_data),
            "target_q_mean": jnp.mean(y),
        })
        return critic_loss + actor_loss + alpha_loss + alpha_prime_loss, metrics

    params = {
        "actor": state["actor"]["params"],
        "critic": state["critic"]["params"],
        "log_alpha": state["log_alpha"]["params"],
    }
    if config.lagrange:
        params["log_alpha_prime"] = state["log_alpha_prime"]["params"]
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)

    new_state = {"step": state["step"] + 1, "key": key, "norm": state["norm"]}
    p, o = apply_optimizer(_opt(config.actor_lr), params["actor"], state["actor"]["opt"], grads["actor"])
    new_state["actor"] = {"params": p, "opt": o}
    p, o = apply_optimizer(_opt(config.critic_lr), params["critic"], state["critic"]["opt"], grads["critic"])
    new_state["critic"] = {"params": p, "target": polyak(state["critic"]["target"], p, config.tau), "opt": o}
    if config.auto_entropy:
        p, o = apply_optimizer(_opt(config.alpha_lr), params["log_alpha"], state["log_alpha"]["opt"], grads["log_alpha"])
        new_state["log_alpha"] = {"params": p, "opt": o}
    else:
        new_state["log_alpha"] = state["log_alpha"]
    if config.lagrange:
        p, o = apply_optimizer(
            _opt(config.alpha_prime_lr), params["log_alpha_prime"], state["log_alpha_prime"]["opt"],
            grads["log_alpha_prime"],
        )
        new_state["log_alpha_prime"] = {"params": p, "opt": o}
    return new_state, metrics


def export_policy(config: CQLConfig, state: AgentState) -> NumpyPolicy:
    """The deterministic policy ``tanh(mean(s))``."""
    act_dim = state["norm"]["act_low"].shape[0]
    return mlp_policy(NAME, state["actor"]["params"], state, config.normalize_obs, out_slice=act_dim)
