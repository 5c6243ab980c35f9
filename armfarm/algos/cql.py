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

The actor is SAC's (Haarnoja et al. 2018) tanh-Gaussian policy (the core in
:mod:`armfarm.algos.core.sac_core`), trained on
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

from armfarm.algos.core import sac_core
from armfarm.algos.core.batches import AgentState, preprocess
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.distributions import sample_tanh_gaussian
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.pixels import SeparateEncoderSettings, with_encoder
from armfarm.algos.core.prng import split_key
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.mlp import critic_ensemble_apply

NAME = "cql"
_LOG_2 = math.log(2.0)


@dataclasses.dataclass(frozen=True)
class CQLConfig(SeparateEncoderSettings, ConfigBase):
    """CQL(H) hyperparameters (defaults: Kumar et al. 2020, Gym MuJoCo; the reference code uses three
    hidden layers of 256, armfarm defaults to two like the other algorithms)."""

    hidden: tuple[int, ...] = param((256, 256), "hidden layer widths of the actor and each critic")
    batch_size: int = param(256, "transitions per gradient step")
    actor_lr: float = param(1e-4, "Adam learning rate of the actor")
    critic_lr: float = param(3e-4, "Adam learning rate of the critics")
    alpha_lr: float = param(1e-4, "Adam learning rate of the entropy log-temperature")
    gamma: float = param(0.99, "discount")
    tau: float = param(0.005, "Polyak rate of the target critics")
    cql_alpha: float = param(5.0, "weight alpha' of the CQL(H) regulariser (0 without lagrange: plain offline SAC)")
    num_samples: int = param(10, "actions sampled from each of Unif, pi(.|s) and pi(.|s') for the log-sum-exp")
    cql_temperature: float = param(1.0, "temperature of the log-sum-exp")
    lagrange: bool = param(False, "tune alpha' by dual gradient ascent towards target_action_gap (CQL-Lagrange)")
    target_action_gap: float = param(10.0, "the Lagrange variant's threshold tau on the regulariser")
    alpha_prime_lr: float = param(3e-4, "Adam learning rate of log alpha' (lagrange only)")
    auto_entropy: bool = param(True, "learn the entropy temperature")
    init_alpha: float = param(1.0, "initial entropy temperature")
    target_entropy: float | None = param(None, "entropy the temperature steers towards (None: -act_dim)")
    backup_entropy: bool = param(False, "subtract alpha log pi(a'|s') in the Bellman target (SAC's soft target)")
    log_std_min: float = param(-20.0, "lower clip of the actor's log-std")
    log_std_max: float = param(2.0, "upper clip of the actor's log-std")
    normalize_obs: bool = param(False, "standardise observations with the data's mean and std")
    init: str = param("torch", "weight initialiser: torch, lecun or orthogonal")

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


def init(config: CQLConfig, stats: DatasetStats, seed: int) -> AgentState:
    state = sac_core.init_nets(config, stats.obs_dim, stats.act_dim, seed)
    if config.lagrange:
        state["log_alpha_prime"] = new_group(jnp.zeros((), jnp.float32), _opt(config.alpha_prime_lr))
    return {**state, "norm": make_norm(stats)}


def update(config: CQLConfig, state: AgentState, batch: dict,
           lower_bound: jax.Array | None = None) -> tuple[AgentState, dict[str, jax.Array]]:
    """One CQL step (critic, actor, temperature and, with ``lagrange``, alpha'). Pure; jit-able.

    ``lower_bound`` (``[B]``, Cal-QL's reference values) floors the Q-values of the policy's sampled
    actions in the regulariser at ``max(Q, lower_bound)``; None is plain CQL."""
    b = preprocess(state, batch, config.normalize_obs)
    obs, act, next_obs = b["observations"], b["actions"], b["next_observations"]
    batch_size, act_dim = act.shape
    n = config.num_samples
    key, (k_next, k_pi, k_rand, k_cur, k_nxt) = split_key(state["key"], 5)
    sg = jax.lax.stop_gradient
    entropy_target = sac_core.target_entropy(config, act_dim)
    alpha = jnp.exp(state["log_alpha"]["params"])

    # ---- Bellman target (no gradients)
    next_act, next_log_prob, next_mean, next_log_std = sac_core.next_actions(config, state, next_obs, k_next)
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
        actor_loss, alpha_loss, mean, log_std, pi_log_prob = sac_core.actor_and_temperature_losses(
            config, params, obs, k_pi, alpha, entropy_target)
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
            if lower_bound is not None:  # Cal-QL: push down max(Q, V_ref) at the policy's actions
                floor = lower_bound[None, :, None]
                metrics["bound_rate"] = jnp.mean((q_cur < floor).astype(jnp.float32))
                q_cur, q_nxt = jnp.maximum(q_cur, floor), jnp.maximum(q_nxt, floor)
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

    params = sac_core.trainable(state)
    if config.lagrange:
        params["log_alpha_prime"] = state["log_alpha_prime"]["params"]
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)

    new_state = sac_core.step_all(config, state, grads, key, learn_alpha=config.auto_entropy)
    if config.lagrange:
        new_state["log_alpha_prime"] = step_group(state["log_alpha_prime"], grads["log_alpha_prime"],
                                                  _opt(config.alpha_prime_lr))
    return new_state, metrics


export_policy = sac_core.policy_exporter(NAME)  # the deterministic tanh(mean(s))


ALGORITHM = register(with_encoder(Algorithm(NAME, "offline", CQLConfig, init, update, export_policy,
                               "Conservative Q-Learning, CQL(H) on SAC (Kumar et al. 2020)", finetune={}), ("critic_loss",)))
