"""AWAC's advantage weighting, on a bandit with a known best action."""

import numpy as np
from algo_testlib import ArrayDataset, small_config, train

from armfarm.algos import DatasetStats, get_algorithm


def test_advantage_weights_pick_the_better_of_the_datas_actions_where_cloning_averages_them():
    """One state, two actions in the data half each: +0.5 earns 1, -0.5 earns 0 (episodes of one step).
    Behaviour cloning averages them (about 0); AWAC's exp(A / lambda) weights move the policy to +0.5."""
    rng = np.random.default_rng(0)
    n = 2000
    obs = np.zeros((n, 2), np.float32) + rng.normal(0, 0.01, (n, 2)).astype(np.float32)
    good = rng.random(n) < 0.5
    act = np.where(good[:, None], 0.5, -0.5).astype(np.float32) + rng.normal(0, 0.02, (n, 1)).astype(np.float32)
    ds = ArrayDataset(obs, act, good.astype(np.float32), obs.copy(), np.ones(n, np.float32),
                      episode_returns=good.astype(np.float64))
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    actions = {}
    for name, changes in (("awac", {"awac_lambda": 0.1}), ("bc", {})):
        algo = get_algorithm(name)
        config = small_config(algo, hidden=(32, 32), **changes)
        state, _ = train(algo, config, stats, ds, steps=1500)
        actions[name] = float(algo.export_policy(config, state)(np.zeros(2, np.float32))[0])
    assert abs(actions["bc"]) < 0.2, actions
    assert actions["awac"] > 0.35, actions
