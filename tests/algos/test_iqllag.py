"""IQL-Lag on a bandit with a known answer: the most rewarding action is costly. Under a budget the
constrained learner picks the best action within it; the unconstrained one (IQL) takes the costly one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from algo_testlib import ArrayDataset, small_config, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.iqllag import IQLLagConfig

# three kinds of action in the data (1-D, in [-1, 1]): reward and cost of each
ARMS = {-0.6: (0.2, 0.0), 0.0: (0.6, 0.0), 0.6: (1.0, 1.0)}


def bandit(n: int = 3000, seed: int = 0) -> ArrayDataset:
    """One-step episodes: a random state, one of the three arms (with a little noise), its reward and cost."""
    rng = np.random.default_rng(seed)
    centres = rng.choice(list(ARMS), size=n)
    actions = np.clip(centres + rng.normal(0, 0.05, n), -1, 1).astype(np.float32)[:, None]
    rewards = np.array([ARMS[c][0] for c in centres], np.float32) + rng.normal(0, 0.02, n).astype(np.float32)
    costs = np.array([ARMS[c][1] for c in centres], np.float32)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    data = ArrayDataset(observations=obs, actions=actions, rewards=rewards, next_observations=obs,
                        terminals=np.ones(n, np.float32), episode_returns=rewards)
    data.costs = costs
    return data


def policy_action(algo_name: str, steps: int, **changes) -> tuple[float, dict]:
    algo = get_algorithm(algo_name)
    config = small_config(algo, hidden=(64, 64), **changes)
    data = bandit()
    stats = DatasetStats.from_dataset(data, action_low=[-1.0], action_high=[1.0])
    state, metrics = train(algo, config, stats, data, steps=steps, chunk=250)
    policy = algo.export_policy(config, state)
    actions = np.array([policy(o) for o in data.observations[:200]])[:, 0]
    return float(np.median(actions)), metrics


def test_kappa_turns_an_episode_budget_into_a_per_step_discounted_threshold():
    config = IQLLagConfig(cost_budget=10.0, episode_length=1000, gamma=0.99)
    assert config.kappa == pytest.approx(10.0 * (1 - 0.99**1000) / (0.01 * 1000))
    assert dataclasses.replace(config, episode_length=1).kappa == pytest.approx(10.0)  # a bandit: B itself


@pytest.mark.slow
def test_under_a_budget_the_constrained_learner_takes_the_best_safe_action_and_iql_the_costly_one():
    free, _ = policy_action("iql", 2000, actor_lr_schedule="constant")
    assert abs(free - 0.6) < 0.15, free  # unconstrained: the most rewarding arm, whatever it costs
    constrained, metrics = policy_action("iqllag", 2000, cost_budget=0.1, episode_length=1, actor_lr_schedule="constant",
                                         lagrange_lr=0.05)
    assert abs(constrained - 0.0) < 0.2, constrained  # the best arm within budget, not the worst safe one
    assert metrics["lagrange"] > 0 and metrics["qc_pi"] < 0.4
    loose, loose_metrics = policy_action("iqllag", 2000, cost_budget=5.0, episode_length=1, actor_lr_schedule="constant")
    assert abs(loose - 0.6) < 0.15 and loose_metrics["lagrange"] == 0.0  # a budget that does not bind costs nothing
