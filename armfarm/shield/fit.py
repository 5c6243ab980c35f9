"""``armfarm shield fit``: learn a shield's models from a store and write a shield directory.

Two small networks are trained together, ``steps`` gradient steps in fused calls (``jit`` + ``lax.scan``):

* **Behaviour model** ``pi_beta(a|s)``: a Gaussian over actions scaled to ``[-1, 1]``, mean ``tanh(mu(s))``
  and state-dependent log-std, fitted by maximum likelihood, ``L = E[ sum_i (u_i - mu_i)^2 / (2 sigma_i^2)
  + log sigma_i ]`` over the data's ``(s, u)``. Its score ``-log pi_beta(a|s)`` measures how unfamiliar an
  action is (BCQ's and BEAR's behaviour model used as a support estimate, Fujimoto et al. 2019; Kumar et
  al. 2019). The support gate's threshold is the ``quantile`` of the scores of the data's own actions.
* **Cost critic** ``Q_c(s, a)``: Recovery RL's safety critic (Thananjeyan et al. 2021, eq. 2) learned
  offline from the stored costs with the data's next actions (a SARSA backup, so it values the behaviour
  that collected the data): ``L = E[(Q_c(s, a) - (c + gamma_c (1 - d) Q_c'(s', a')))^2]`` with a Polyak
  target ``Q_c'``. With 0/1 costs ``Q_c`` is the discounted expected number of damage events ahead.

The directory is written to a temporary sibling and renamed into place, so a failed fit leaves nothing.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from armfarm.shield.config import (
    FALLBACKS,
    WEIGHTS_FILE,
    CostCritic,
    Limits,
    ShieldConfig,
    Support,
    Watchdog,
)
from armfarm.shield.runtime import LOG_STD_RANGE, Shield

CALIBRATION_SAMPLE = 100_000  # data pairs scored to calibrate the support threshold


def check_shieldable(spec, source: str) -> None:
    """Refuse, naming ``source``, data a shield cannot learn from: its networks read state vectors and
    act in a ``Box`` (``spec`` a :class:`~armfarm.data.schema.StoreSpec`)."""
    if spec.action.num_choices is not None:
        raise ValueError(f"{source} has discrete actions ({spec.action.num_choices} choices); the shield guards "
                         "continuous (Box) actions only")
    if spec.obs_keys is None and spec.observation.is_image:
        raise ValueError(f"{source} has {spec.observation.shape} uint8 images; the shield learns from state "
                         "vectors only")


def fit_shield(
    store_path: str | Path,
    out_dir: str | Path,
    budget: float = 0.5,
    fallback: str = "stop",
    project: bool = False,
    steps: int = 20_000,
    gamma: float = 0.8,
    quantile: float = 0.99,
    hidden: tuple[int, ...] = (256, 256),
    batch_size: int = 256,
    lr: float = 3e-4,
    seed: int = 0,
    limits: Limits | None = None,
    watchdog: Watchdog | None = None,
    recovery_policy: str | Path | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ShieldConfig:
    """Fit a shield on the store at ``store_path`` and write it to ``out_dir``; returns its config.

    ``fallback`` is ``"stop"`` (the action at the centre of the bounds), ``"bc"`` (the behaviour model's
    mean action), ``"min-cost"`` (of a fixed set of the behaviour model's actions, the one the cost critic
    rates safest) or the path of a policy (run directory or ``policy.npz``), copied into the shield. With
    ``project``, an action the cost critic refuses is replaced by the nearest accepted action on the way to
    the fallback's (see :class:`~armfarm.shield.config.CostCritic`). With ``watchdog.recovery == "policy"``,
    ``recovery_policy`` names the recovery policy likewise.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from armfarm.algos.core.batches import add_batch_columns
    from armfarm.algos.core.params import apply_optimizer, polyak
    from armfarm.algos.core.stats import DatasetStats
    from armfarm.data import EpisodeStore, TransitionDataset
    from armfarm.envs.behavior import resolve_policy_path
    from armfarm.nets import init_mlp, mlp_apply
    from armfarm.policy import NumpyPolicy

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    policies: dict[str, Path] = {}
    if fallback not in FALLBACKS:
        policies["fallback"] = resolve_policy_path(fallback)
        fallback = "policy"
    watchdog = watchdog or Watchdog()
    if watchdog.recovery == "policy":
        if recovery_policy is None:
            raise ValueError("the watchdog's recovery is 'policy' but no recovery policy was given")
        policies["recovery"] = resolve_policy_path(recovery_policy)

    store = EpisodeStore(store_path)
    if store.spec is not None:
        check_shieldable(store.spec, str(store_path))
    data = TransitionDataset.from_store(store)
    spec = store.spec
    stats = DatasetStats.from_dataset(data, action_low=spec.action.low, action_high=spec.action.high)
    add_batch_columns(data, ("next_actions", "costs"), None)
    obs_dim, act_dim = stats.obs_dim, stats.act_dim
    center = (stats.action_high + stats.action_low) / 2
    half = np.maximum((stats.action_high - stats.action_low) / 2, 1e-12)

    def norm_obs(o):
        return (o - stats.obs_mean) / stats.obs_std

    def norm_act(a):
        return jnp.clip((a - center) / half, -1.0, 1.0)

    rng = np.random.default_rng(seed)
    params = {
        "behavior": init_mlp(rng, (obs_dim, *hidden, 2 * act_dim), init="torch"),
        "cost_critic": init_mlp(rng, (obs_dim + act_dim, *hidden, 1), init="torch"),
    }
    target = jax.tree.map(jnp.array, params["cost_critic"])
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    def loss_fn(p, tgt, batch):
        obs, next_obs = norm_obs(batch["observations"]), norm_obs(batch["next_observations"])
        u, next_u = norm_act(batch["actions"]), norm_act(batch["next_actions"])
        head = mlp_apply(p["behavior"], obs)
        mean, log_std = jnp.tanh(head[:, :act_dim]), jnp.clip(head[:, act_dim:], *LOG_STD_RANGE)
        nll = jnp.mean(jnp.sum(0.5 * jnp.square((u - mean) / jnp.exp(log_std)) + log_std, axis=-1))
        q = mlp_apply(p["cost_critic"], jnp.concatenate([obs, u], -1))[:, 0]
        q_next = mlp_apply(tgt, jnp.concatenate([next_obs, next_u], -1))[:, 0]
        backup = batch["costs"] + gamma * (1.0 - batch["terminals"]) * jax.lax.stop_gradient(q_next)
        td = jnp.mean(jnp.square(q - backup))
        return nll + td, {"behavior_nll": nll, "cost_td": td, "cost_q_mean": jnp.mean(q)}

    @jax.jit
    def run(p, tgt, o_state, batches):
        def step(carry, batch):
            p, tgt, o_state = carry
            grads, metrics = jax.grad(loss_fn, has_aux=True)(p, tgt, batch)
            p, o_state = apply_optimizer(opt, p, o_state, grads)
            return (p, polyak(tgt, p["cost_critic"], 0.005), o_state), metrics

        (p, tgt, o_state), metrics = jax.lax.scan(step, (p, tgt, o_state), batches)
        return p, tgt, o_state, jax.tree.map(lambda m: m[-1], metrics)

    per_call, done, metrics = min(250, steps), 0, {}
    while done < steps:
        k = min(per_call, steps - done)
        batches = data.sample_stacked(rng, k, batch_size)
        batches = {key: batches[key] for key in ("observations", "actions", "next_observations", "next_actions",
                                                 "costs", "terminals")}
        params, target, opt_state, metrics = run(params, target, opt_state, batches)
        done += k
        if on_progress is not None:
            on_progress(k)
    metrics = {k: float(v) for k, v in metrics.items()}
    if not all(np.isfinite(v) for v in metrics.values()):
        raise ValueError(f"the shield's training diverged (last losses {metrics}); check the store's costs and actions")

    arrays = {"obs_mean": stats.obs_mean, "obs_std": stats.obs_std}
    for name, layers in params.items():
        for i, layer in enumerate(layers):
            arrays[f"{name}.w{i}"] = np.asarray(layer["w"], np.float32)
            arrays[f"{name}.b{i}"] = np.asarray(layer["b"], np.float32)
    config = ShieldConfig(
        obs_dim=obs_dim, act_dim=act_dim, action_low=stats.action_low.tolist(), action_high=stats.action_high.tolist(),
        fallback=fallback, limits=limits or Limits(), support=Support(quantile=quantile, threshold=0.0),
        cost=CostCritic(gamma=gamma, budget=budget, project=project), watchdog=watchdog,
    )
    # Calibrate with the runtime's own NumPy code, so the threshold is what the robot will compute.
    probe = Shield(config, arrays, fallback=lambda o: center, recovery=lambda o: center)
    idx = rng.choice(data.size, size=min(data.size, CALIBRATION_SAMPLE), replace=False)
    scores = np.concatenate([probe.support_score(data.observations[i], data.actions[i])
                             for i in np.array_split(idx, max(1, len(idx) // 8192))])
    q_costs = np.concatenate([probe.cost_value(data.observations[i], data.actions[i])
                              for i in np.array_split(idx, max(1, len(idx) // 8192))])
    threshold = float(np.quantile(scores, quantile))
    config = dataclasses.replace(
        config, support=Support(quantile=quantile, threshold=threshold),
        provenance={
               "store": str(Path(store_path).resolve()), "episodes": len(data.episode_starts),
               "transitions": data.size, "cost_per_step": float(data.costs.mean()),
               "episodes_with_cost": int((data.episode_costs > 0).sum()), "steps": steps, "seed": seed,
               "hidden": list(hidden), "final_losses": metrics,
               "data_refused_by_cost_critic": float((q_costs > budget).mean()),
               "data_cost_value": {"mean": float(q_costs.mean()), "p50": float(np.median(q_costs)),
                                   "p99": float(np.quantile(q_costs, 0.99))},
        },
    )
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    try:
        np.savez(tmp / WEIGHTS_FILE, **arrays)
        for role, path in policies.items():
            policy = NumpyPolicy.load(path)
            if policy.obs_dim != obs_dim or policy.act_dim != act_dim:
                raise ValueError(f"the {role} policy {path} maps {policy.obs_dim} observations to {policy.act_dim} "
                                 f"actions; the store has {obs_dim} and {act_dim}")
            shutil.copyfile(path, tmp / f"{role}.npz")
        config.save(tmp)
        Shield.load(tmp)  # what was written loads
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config
