"""Cal-QL: the calibrated push-down keeps the policy's Q at or above the behaviour's Monte-Carlo value."""

import jax.numpy as jnp
import numpy as np
from algo_testlib import PointEnv, point_dataset, small_config, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.core.batches import mc_returns
from armfarm.algos.core.sac_core import actor_dist
from armfarm.nets.mlp import critic_ensemble_apply


def test_mc_returns_are_discounted_returns_to_go_within_each_episode():
    class Data:
        rewards = np.array([1.0, 1.0, 1.0, 2.0, 0.0], np.float32)
        episode_starts = np.array([0, 3])

    class Config:
        gamma = 0.5

    np.testing.assert_allclose(mc_returns(Data, Config), [1.75, 1.5, 1.0, 2.0, 0.0])


def test_calibration_keeps_the_policys_q_above_the_reference_where_cql_goes_below():
    ds = point_dataset(episodes=200, seed=0, random_frac=1.0)  # random behaviour: a low reference value
    ds.episode_starts = np.arange(0, len(ds.rewards), PointEnv.horizon)
    stats = DatasetStats.from_dataset(ds, action_low=PointEnv.action_low, action_high=PointEnv.action_high)
    obs = jnp.asarray(ds.observations[:1000])
    q_pi, reference = {}, None
    for name in ("cql", "calql"):
        algo = get_algorithm(name)
        config = small_config(algo, hidden=(64, 64), gamma=0.9, cql_alpha=5.0)
        ds.extra = {}
        state, _ = train(algo, config, stats, ds, steps=2000)
        reference = mc_returns(ds, config)[:1000]
        mean, _ = actor_dist(config, state["actor"]["params"], obs)
        q_pi[name] = float(jnp.mean(jnp.min(critic_ensemble_apply(state["critic"]["params"], obs, jnp.tanh(mean)),
                                            axis=0)))
    assert q_pi["calql"] >= float(reference.mean()), (q_pi, float(reference.mean()))
    assert q_pi["cql"] < q_pi["calql"] - 1.0, q_pi
