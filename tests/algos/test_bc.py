"""BC recovers a known linear policy (test MSE about 1e-3 of the action variance; bound 1e-2)."""

import numpy as np
from algo_testlib import ArrayDataset, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.bc import BCConfig


def test_bc_recovers_a_linear_policy():
    rng = np.random.default_rng(0)
    W = rng.normal(scale=0.2, size=(4, 2))
    obs = rng.normal(size=(5000, 4)).astype(np.float32) * 2 + 3  # off-centre: normalisation matters
    act = np.clip((obs - 3) @ W, -1, 1).astype(np.float32)
    n = len(obs)
    ds = ArrayDataset(obs, act, np.zeros(n, np.float32), obs, np.zeros(n, np.float32))
    # non-trivial bounds: the learner works in [-1, 1] and the exported policy maps back
    stats = DatasetStats.from_dataset(ds, action_low=[-1.0, -2.0], action_high=[1.0, 2.0])
    algo, config = get_algorithm("bc"), BCConfig(hidden=(64, 64), lr=1e-3)
    state, metrics = train(algo, config, stats, ds, steps=1500)
    policy = algo.export_policy(config, state)

    test_obs = rng.normal(size=(1000, 4)).astype(np.float32) * 2 + 3
    target = np.clip((test_obs - 3) @ W, -1, 1)
    mse = np.mean((policy(test_obs) - target) ** 2)
    assert mse < 2e-3, f"BC test MSE {mse:.4f} (action variance {target.var():.3f})"
    assert metrics["bc_loss"] < 0.01
