"""IQL on a one-state bandit: the expectile value approaches the best in-data action's reward as the
expectile grows, and advantage-weighted extraction picks the best in-data action."""

import jax.numpy as jnp
import numpy as np
import pytest
from algo_testlib import ArrayDataset, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.iql import IQLConfig, expectile_loss, value_fn

ACTIONS = np.array([-0.8, -0.4, 0.0, 0.4, 0.8], np.float32)
REWARDS = np.array([2.0, 6.0, 0.0, 8.0, 4.0], np.float32)  # best in-data action: 0.4 (reward 8)


def _bandit(n=2000, seed=0):
    i = np.random.default_rng(seed).integers(0, len(ACTIONS), n)
    obs = np.ones((n, 1), np.float32)
    # one-step episodes: terminal, so Q(s, a) = r(a)
    return ArrayDataset(obs, ACTIONS[i][:, None], REWARDS[i], obs, np.ones(n, np.float32)), REWARDS[i]


def _exact_expectile(x, tau):
    lo, hi = float(x.min()), float(x.max())
    for _ in range(60):  # bisection on the first-order condition of Eq. 5
        v = (lo + hi) / 2
        if np.mean(np.where(x < v, 1 - tau, tau) * (x - v)) > 0:
            lo = v
        else:
            hi = v
    return v


def _config(expectile, policy="gaussian"):
    return IQLConfig(hidden=(32, 32), expectile=expectile, policy=policy, normalize_reward=False, batch_size=128,
                     tau=0.05, actor_lr=1e-3, critic_lr=1e-3, value_lr=1e-3, actor_lr_schedule="constant")


def test_expectile_loss_is_asymmetric():
    u = jnp.array([-2.0, 2.0])
    np.testing.assert_allclose(expectile_loss(u, 0.9), [0.1 * 4, 0.9 * 4], rtol=1e-6)
    np.testing.assert_allclose(expectile_loss(u, 0.5), [2.0, 2.0], rtol=1e-6)


@pytest.fixture(scope="module")
def bandit_runs():
    ds, data_rewards = _bandit()
    stats = DatasetStats.from_dataset(ds, action_low=[-1.0], action_high=[1.0])
    algo = get_algorithm("iql")
    runs = {}
    for expectile in (0.5, 0.9, 0.99):
        config = _config(expectile)
        state, _ = train(algo, config, stats, ds, steps=1500)
        v = float(value_fn(state["value"]["params"], jnp.ones((1, 1)))[0])
        runs[expectile] = (v, float(algo.export_policy(config, state)(np.ones(1))[0]))
    return runs, data_rewards, (algo, stats, ds)


def test_expectile_value_moves_from_mean_to_max(bandit_runs):
    runs, r, _ = bandit_runs
    v = {tau: runs[tau][0] for tau in runs}
    assert abs(v[0.5] - r.mean()) < 0.3, f"expectile 0.5 should give about the mean {r.mean():.2f}, got {v[0.5]:.2f}"
    assert v[0.5] < v[0.9] < v[0.99], v
    for tau in (0.9, 0.99):
        assert abs(v[tau] - _exact_expectile(r, tau)) < 0.3, (tau, v[tau], _exact_expectile(r, tau))
    assert v[0.99] > REWARDS.max() - 0.5, f"expectile 0.99 should approach the best reward 8, got {v[0.99]:.2f}"
    assert v[0.99] < REWARDS.max() + 0.2  # never above the best in-data value


@pytest.mark.parametrize("policy", ["gaussian", "deterministic"])
def test_policy_extraction_picks_best_in_data_action(bandit_runs, policy):
    runs, _, (algo, stats, ds) = bandit_runs
    if policy == "gaussian":
        action = runs[0.9][1]
    else:
        config = _config(0.9, "deterministic")
        state, _ = train(algo, config, stats, ds, steps=1500)
        action = float(algo.export_policy(config, state)(np.ones(1))[0])
    assert abs(action - 0.4) < 0.05, f"IQL ({policy}) policy chose {action:.2f}; best in-data action is 0.4"
    # with expectile 0.5 (V = mean) the two best actions (rewards 8 and 6) both hit the exp-advantage
    # clip, so the extracted action averages them; the upper expectile is what singles out the best
    assert abs(runs[0.5][1] - 0.4) > abs(runs[0.9][1] - 0.4) + 0.1


def test_value_first_order_refits_v_identically_but_feeds_the_new_v_to_q_and_pi():
    """After one step both orders have made the same V step (L_V reads only the target critic and the
    old V); only value_first's critic and actor saw the refitted V, so they differ."""
    import dataclasses

    import jax
    from algo_testlib import random_dataset

    from armfarm.algos import make_train_fn

    ds = random_dataset()
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    algo = get_algorithm("iql")
    joint = IQLConfig(hidden=(32, 32))
    first = dataclasses.replace(joint, value_first=True)
    batch = ds.sample_stacked(np.random.default_rng(0), 1, 32)
    a, _ = make_train_fn(algo, joint)(algo.init(joint, stats, 0), batch)
    b, _ = make_train_fn(algo, first)(algo.init(first, stats, 0), batch)
    for x, y in zip(jax.tree.leaves(a["value"]["params"]), jax.tree.leaves(b["value"]["params"]), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    critic_a, critic_b = jax.tree.leaves(a["critic"]["params"]), jax.tree.leaves(b["critic"]["params"])
    assert any(not np.allclose(x, y, atol=1e-7) for x, y in zip(critic_a, critic_b, strict=True))
