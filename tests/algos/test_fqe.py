"""FQE and off-policy evaluation: known values on a small MDP, and ranking policies by them."""

import numpy as np
import pytest
from algo_testlib import ArrayDataset

from armfarm.algos import DatasetStats
from armfarm.evaluate.ope import fqe_estimate, regret_at_1, spearman
from armfarm.policy import NumpyPolicy


def constant_policy(path, action: float):
    """A policy that always outputs ``action`` (tanh of its bias), in [-1, 1]."""
    NumpyPolicy([np.zeros((2, 1))], [np.array([np.arctanh(action)])], action_low=[-1.0], action_high=[1.0]).save(path)
    return path


def bandit_loop(n=4000, seed=0):
    """One state forever (no terminals), uniformly random actions, reward -(a - 0.3)^2."""
    rng = np.random.default_rng(seed)
    obs = (rng.normal(size=(n, 2)) * 0.01).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    ds = ArrayDataset(obs, act, -(act[:, 0] - 0.3) ** 2, obs.copy(), np.zeros(n, np.float32),
                      episode_returns=np.zeros(1))
    ds.episode_starts = np.arange(0, n, 100)
    return ds


@pytest.mark.parametrize("action", [0.3, -0.5])
def test_fqe_recovers_the_value_of_a_known_policy(tmp_path, action):
    """The policy's discounted value is -(action - 0.3)^2 / (1 - gamma), although no episode in the data
    follows it: FQE evaluates it from random actions alone."""
    ds = bandit_loop()
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    gamma = 0.8
    estimate, used_gamma = fqe_estimate(ds, stats, constant_policy(tmp_path / "p.npz", action), steps=4000,
                                        overrides={"hidden": (64, 64), "gamma": gamma, "tau": 0.05})
    truth = -((action - 0.3) ** 2) / (1 - gamma)
    assert used_gamma == gamma
    assert abs(estimate - truth) < 0.1 + 0.05 * abs(truth), (estimate, truth)


def test_ranking_metrics_have_their_textbook_values():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([3, 2, 1], [10, 20, 30]) == pytest.approx(-1.0)
    assert regret_at_1([0.9, 0.1, 0.5], [5.0, 10.0, 0.0]) == pytest.approx(0.5)  # picked 5 of best 10, worst 0
    assert regret_at_1([0.1, 0.9, 0.5], [5.0, 10.0, 0.0]) == 0.0
