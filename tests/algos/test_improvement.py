"""Every algorithm, trained briefly on mixed random / noisy-expert data of a small continuous task,
returns a NumpyPolicy that beats a uniformly random policy by a wide margin."""

import numpy as np
import pytest
from algo_testlib import ALGO_NAMES, PointEnv, point_dataset, rollout_returns, small_config, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.bc import BCConfig
from armfarm.algos.cql import CQLConfig
from armfarm.algos.edac import EDACConfig
from armfarm.algos.iql import IQLConfig
from armfarm.algos.td3bc import TD3BCConfig

CONFIGS = {
    "bc": BCConfig(hidden=(64, 64)),
    "td3bc": TD3BCConfig(hidden=(64, 64), gamma=0.9),
    "iql": IQLConfig(hidden=(64, 64), gamma=0.9),
    "cql": CQLConfig(hidden=(64, 64), gamma=0.9, num_samples=4, actor_lr=3e-4, batch_size=128),
    # at 4 critics and this task's small Q scale, eta=1's similarity term outweighs the TD error early on
    "edac": EDACConfig(hidden=(64, 64), gamma=0.9, num_critics=4, eta=0.1),
}


@pytest.fixture(scope="module")
def setting():
    ds = point_dataset(episodes=300, seed=0)
    stats = DatasetStats.from_dataset(ds, action_low=PointEnv.action_low, action_high=PointEnv.action_high)
    rng = np.random.default_rng(0)
    random_return = rollout_returns(lambda obs: rng.uniform(PointEnv.action_low, PointEnv.action_high)).mean()
    expert_return = rollout_returns(PointEnv.expert).mean()
    return ds, stats, random_return, expert_return


@pytest.mark.parametrize("name", ALGO_NAMES)
def test_beats_random_policy(name, setting):
    ds, stats, random_return, expert_return = setting
    algo = get_algorithm(name)
    config = CONFIGS.get(name) or small_config(algo, hidden=(64, 64), gamma=0.9)
    state, _ = train(algo, config, stats, ds, steps=2000)
    ret = rollout_returns(algo.export_policy(config, state)).mean()
    closed = (ret - random_return) / (expert_return - random_return)
    assert closed > 0.3, (
        f"{name}: return {ret:.2f} closes only {closed:.0%} of the gap between random ({random_return:.2f}) "
        f"and expert ({expert_return:.2f})"
    )
