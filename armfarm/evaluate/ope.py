"""Off-policy evaluation: rank policies by their value estimated from a store, without running them.

:func:`off_policy_evaluation` fits FQE (:mod:`armfarm.algos.fqe`) for each policy on the same data and
reports the estimated value of the store's initial states. Given an environment it also runs each policy
and reports the metrics of DOPE (Fu et al. 2021, "Benchmarks for Deep Off-Policy Evaluation", Sec. 5):
Spearman's rank correlation between estimates and true returns, and regret@1, the true return lost by
picking the policy with the highest estimate, normalised by the spread of true returns:

    regret@1 = (max_i R_i - R_{argmax_i V_i}) / (max_i R_i - min_i R_i)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from armfarm.algos import DatasetStats, config_from_dict, get_algorithm, make_train_fn, run_train_call
from armfarm.algos.core.batches import episode_bounds
from armfarm.data import EpisodeStore, TransitionDataset

DEFAULT_STEPS = 20_000
DEFAULT_STEPS_PER_CALL = 500


def initial_value(config, state, data) -> float:
    """The mean of ``Q(s_0, pi(s_0))`` over the first observation of every episode of ``data``."""
    from armfarm.algos.fqe import q_value

    starts, _ = episode_bounds(data)
    obs = jnp.asarray(np.asarray(data.observations, np.float32)[starts])
    return float(jnp.mean(q_value(config, state, obs)))


def fqe_estimate(data, stats: DatasetStats, policy_path: str | Path, steps: int = DEFAULT_STEPS, seed: int = 0,
                 steps_per_call: int = DEFAULT_STEPS_PER_CALL, overrides: dict | None = None) -> tuple[float, float]:
    """The FQE estimate of ``policy_path``'s value on ``data`` (a TransitionDataset) after ``steps``
    updates, and the discount it is for."""
    algo = get_algorithm("fqe")
    config = config_from_dict(algo.config_cls, {**(overrides or {}), "policy_path": str(policy_path)})
    state = algo.init(config, stats, seed)
    train_fn = make_train_fn(algo, config)
    rng = np.random.default_rng(seed)
    done = 0
    while done < steps:
        k = min(steps_per_call, steps - done)
        state, _, _ = run_train_call(train_fn, state, data.sample_stacked(rng, k, config.batch_size), done + k)
        done += k
    return initial_value(config, state, data), config.gamma


def resolve_policy(path: str | Path) -> Path:
    """A policy file from a run directory, a checkpoint directory or a ``policy.npz``."""
    from armfarm.envs.behavior import resolve_policy_path

    return Path(resolve_policy_path(path))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(v):
        v = np.asarray(v, np.float64)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):  # mean rank for ties
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def regret_at_1(estimates: Sequence[float], true_returns: Sequence[float]) -> float:
    """DOPE's normalised regret@1 (see the module docstring); 0 when every true return is equal."""
    true = np.asarray(true_returns, np.float64)
    spread = true.max() - true.min()
    if spread == 0:
        return 0.0
    return float((true.max() - true[int(np.argmax(estimates))]) / spread)


@dataclasses.dataclass
class OPEResult:
    policies: list[dict]
    spearman: float | None
    regret_at_1: float | None
    gamma: float
    steps: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def off_policy_evaluation(store: str | Path, policies: Sequence[str | Path], env_id: str | None = None,
                          steps: int = DEFAULT_STEPS, seed: int = 0, eval_episodes: int = 10,
                          overrides: dict | None = None,
                          on_policy: Callable[[int, dict], None] | None = None) -> OPEResult:
    """FQE estimates for each of ``policies`` (run dirs, checkpoints or policy files) on ``store``; with
    ``env_id``, their true returns (``eval_episodes`` each) and DOPE's ranking metrics."""
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.policy import NumpyPolicy

    if not policies:
        raise ValueError("give at least one policy to evaluate")
    data = TransitionDataset.from_store(store)
    spec = EpisodeStore(store).spec
    stats = DatasetStats.from_dataset(data, action_low=spec.action.low, action_high=spec.action.high)
    rows, gamma = [], None
    for i, source in enumerate(policies):
        path = resolve_policy(source)
        estimate, gamma = fqe_estimate(data, stats, path, steps, seed, overrides=overrides)
        row = {"run_dir": str(source), "policy": str(path), "estimate": estimate}
        if env_id is not None:
            result = evaluate_policy(NumpyPolicy.load(path), env_id, episodes=eval_episodes, seed=10_000 + seed)
            row["true_return"] = result.return_mean
            row["true_return_std"] = result.return_std
        rows.append(row)
        if on_policy is not None:
            on_policy(i, row)
    ranked = env_id is not None and len(rows) >= 2
    estimates = [r["estimate"] for r in rows]
    truths = [r.get("true_return") for r in rows]
    return OPEResult(rows, spearman(estimates, truths) if ranked else None,
                     regret_at_1(estimates, truths) if ranked else None, gamma, steps)
