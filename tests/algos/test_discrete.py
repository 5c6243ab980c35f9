"""Discrete-action learners (dqn, discrete_cql, discrete_bc): the shared contract on state vectors and
on images, and known answers: Q* of a small chain, CQL's pessimism about an action the data never
took, BC's majority vote, and a pixel bandit learned end to end from a real store."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from algo_testlib import DISCRETE_NAMES, ArrayDataset, assert_trees_bitwise_equal, train

from armfarm.algos import DatasetStats, get_algorithm, load_checkpoint, make_train_fn, save_checkpoint
from armfarm.algos.core.discrete import apply_network
from armfarm.policy import NumpyPolicy


def tiny(name: str, **changes):
    algo = get_algorithm(name)
    base = dict(hidden=(32,), batch_size=32, encoder_channels=4, lr=1e-3, target_update_every=50)
    if name == "qrdqn":
        base["num_quantiles"] = 8
    return algo, dataclasses.replace(algo.config_cls(), **{**base, **changes})


def discrete_dataset(obs: np.ndarray, actions, rewards, next_obs, terminals) -> ArrayDataset:
    return ArrayDataset(observations=obs, actions=np.asarray(actions, np.float32).reshape(-1, 1),
                        rewards=np.asarray(rewards, np.float32), next_observations=next_obs,
                        terminals=np.asarray(terminals, np.float32), episode_returns=np.zeros(2))


def image_stats(shape, low: int, n: int) -> DatasetStats:
    d = int(np.prod(shape))
    return DatasetStats(obs_dim=d, act_dim=1, obs_mean=np.zeros(d), obs_std=np.ones(d), action_low=[low],
                        action_high=[low + n - 1], obs_shape=shape)


@pytest.mark.parametrize("images", [False, True], ids=["vectors", "images"])
@pytest.mark.parametrize("name", DISCRETE_NAMES)
def test_discrete_contract(name, images, tmp_path):
    """Fit, export an argmax policy that agrees with the network, round-trip checkpoints and policy
    files bitwise, and refuse malformed batches; actions are numbered from the space's start (2)."""
    algo, config = tiny(name)
    rng = np.random.default_rng(0)
    n, low, num = 256, 2, 3
    if images:
        shape = (8, 8, 2)
        obs = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        stats = image_stats(shape, low, num)
    else:
        obs = rng.normal(size=(n, 5)).astype(np.float32) * 3 + 1
    ds = discrete_dataset(obs, rng.integers(low, low + num, n), rng.normal(size=n), np.roll(obs, -1, 0),
                          rng.random(n) < 0.1)
    if not images:
        stats = DatasetStats.from_dataset(ds, action_low=[low], action_high=[low + num - 1])
    batches = [ds.sample_stacked(rng, 8, 32) for _ in range(3)]
    state0 = algo.init(config, stats, 0)
    fn = make_train_fn(algo, config)
    state, metrics = fn(state0, batches[0])
    state, metrics = fn(state, batches[1])
    assert int(state["step"]) == 16 and all(np.isfinite(float(v)) for v in metrics.values())
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), state0["q"]["params"], state["q"]["params"])
    assert all(jax.tree.leaves(moved)), "every parameter (encoder and head) should train"

    policy = algo.export_policy(config, state)
    test_obs = obs[:40]
    actions = policy(test_obs)
    assert actions.dtype == np.int64 and actions.shape == (40,)
    assert set(np.unique(actions)) <= set(range(low, low + num))
    x = test_obs if images else (test_obs - stats.obs_mean) / stats.obs_std
    values = np.asarray(apply_network(config, state["q"]["params"], x)).reshape(len(x), num, -1).mean(axis=2)
    np.testing.assert_array_equal(actions, values.argmax(axis=1) + low)  # (a quantile head: their mean)
    assert policy(test_obs[3]) == actions[3] and np.ndim(policy(test_obs[3])) == 0

    save_checkpoint(tmp_path / "ckpt", algo.name, config, state, stats, {"k": 1})
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert ckpt.config == config and ckpt.stats.obs_shape == stats.obs_shape
    assert_trees_bitwise_equal(ckpt.state, state)
    assert_trees_bitwise_equal(fn(state, batches[2])[0], fn(ckpt.state, batches[2])[0])
    loaded = NumpyPolicy.load(policy.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(loaded(test_obs), actions)

    good = batches[0]
    with pytest.raises(ValueError, match="observations"):
        fn(state, {**good, "observations": good["observations"][..., :-1]})
    with pytest.raises(ValueError, match="actions"):
        fn(state, {**good, "actions": good["actions"][..., None]})
    with pytest.raises(ValueError, match="terminals"):
        fn(state, {k: v for k, v in good.items() if k != "terminals"})


def chain_dataset(repeats: int = 200) -> ArrayDataset:
    """States 0, 1, 2 (one-hot); action 1 moves right, 0 left (not below 0); reaching 2 pays 1 and ends.
    Every (state, action) of states 0 and 1 appears equally often."""
    eye = np.eye(3, dtype=np.float32)
    s = np.repeat([0, 0, 1, 1], repeats)
    a = np.tile(np.repeat([0, 1], repeats), 2)
    nxt = np.where(a == 1, s + 1, np.maximum(s - 1, 0))
    return discrete_dataset(eye[s], a, (nxt == 2).astype(np.float32), eye[nxt], nxt == 2)


def test_dqn_learns_q_star_of_a_chain():
    """With gamma 0.9: Q*(1, right) = 1, Q*(0, right) = 0.9, Q*(1, left) = Q*(0, left) = 0.81."""
    algo, config = tiny("dqn", gamma=0.9, batch_size=64, target_update_every=100, normalize_obs=False)
    ds = chain_dataset()
    stats = DatasetStats.from_dataset(ds, action_low=[0], action_high=[1])
    state, _ = train(algo, config, stats, ds, steps=3000)
    q = np.asarray(apply_network(config, state["q"]["params"], np.eye(3, dtype=np.float32)[:2]))
    np.testing.assert_allclose(q, [[0.81, 0.9], [0.81, 1.0]], atol=0.05)


def bandit_dataset(n: int = 512) -> ArrayDataset:
    """One state, three actions; the data holds action 0 (reward 0.5) and 1 (reward 0.3), never 2."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, n)
    obs = np.ones((n, 1), np.float32)
    return discrete_dataset(obs, a, np.where(a == 0, 0.5, 0.3), obs, np.ones(n))


def test_cql_pushes_down_the_action_the_data_never_took():
    ds = bandit_dataset()
    stats = DatasetStats.from_dataset(ds, action_low=[0], action_high=[2])
    q, greedy = {}, {}
    for name in ("dqn", "discrete_cql"):
        algo, config = tiny(name, normalize_obs=False, batch_size=64)
        state, _ = train(algo, config, stats, ds, steps=1500)
        q[name] = np.asarray(apply_network(config, state["q"]["params"], np.ones((1, 1), np.float32)))[0]
        greedy[name] = algo.export_policy(config, state)(np.ones(1, np.float32))
    # DQN fits the seen actions and leaves the unseen one wherever the network puts it; CQL's is lowest
    np.testing.assert_allclose(q["dqn"][:2], [0.5, 0.3], atol=0.05)
    assert q["discrete_cql"][2] < q["discrete_cql"][1] - 0.2 < q["discrete_cql"][0] - 0.2
    assert q["discrete_cql"][2] < q["dqn"][2] - 0.2
    assert greedy["discrete_cql"] == 0


def test_qrdqn_learns_the_return_distribution_and_acts_on_its_mean():
    """Action 0 pays 0 or 10 with equal odds, action 1 always 4: the quantiles of action 0 split at 0 and
    10, those of action 1 sit at 4, and the greedy action is 0 (mean 5 > 4). The quantile Huber loss is
    quadratic within kappa of a sample, so a quantile tau < 1/2 settles where the pull of the samples at
    0, (1 - tau) theta / kappa, balances that of the samples at 10, tau: at theta = kappa tau / (1 - tau);
    and symmetrically at 10 - kappa (1 - tau) / tau above."""
    rng = np.random.default_rng(0)
    n = 2000
    a = rng.integers(0, 2, n)
    reward = np.where(a == 0, 10.0 * rng.integers(0, 2, n), 4.0)
    obs = np.ones((n, 1), np.float32)
    ds = discrete_dataset(obs, a, reward, obs, np.ones(n))
    algo, config = tiny("qrdqn", normalize_obs=False, batch_size=128, num_quantiles=8)
    stats = DatasetStats.from_dataset(ds, action_low=[0], action_high=[1])
    state, _ = train(algo, config, stats, ds, steps=2000)
    z = np.asarray(apply_network(config, state["q"]["params"], obs[:1])).reshape(2, 8)
    tau = (2 * np.arange(8) + 1) / 16
    expected = np.where(tau < 0.5, tau / (1 - tau), 10 - (1 - tau) / tau)  # kappa = 1
    np.testing.assert_allclose(z[0], expected, atol=0.1)
    np.testing.assert_allclose(z[1], 4.0, atol=0.1)
    assert algo.export_policy(config, state)(obs[0]) == 0


def test_discrete_bc_takes_each_states_majority_action():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 2, 1000)
    a = np.where(s == 0, rng.random(1000) < 0.7, rng.random(1000) < 0.2).astype(int)  # s0: mostly 1, s1: mostly 0
    obs = np.eye(2, dtype=np.float32)[s]
    ds = discrete_dataset(obs, a, np.zeros(1000), obs, np.zeros(1000))
    algo, config = tiny("discrete_bc", batch_size=64)
    stats = DatasetStats.from_dataset(ds, action_low=[0], action_high=[1])
    state, metrics = train(algo, config, stats, ds, steps=500)
    assert list(algo.export_policy(config, state)(np.eye(2, dtype=np.float32))) == [1, 0]
    assert 0.7 < metrics["accuracy"] < 0.8  # the majority's share of the data, not more


@pytest.mark.slow
def test_dqn_reads_the_quadrant_from_images_through_a_store(tmp_path):
    """Random-action data from the real QuadrantDot env, trained with `train` (a FrameSampler over the
    store) and evaluated in the env: far above the 0.25 of guessing. BC on the same random data guesses."""
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.train import train as train_run

    env_id = "armfarm/QuadrantDot-v0"
    collect(env_id, tmp_path / "store", BehaviorSpec("random"), episodes=2000)
    scores = {}
    for name in ("dqn", "discrete_bc"):
        summary = train_run(name, tmp_path / "store", tmp_path / name, steps=800, config_overrides={
            "batch_size": 64, "lr": 1e-3, "hidden": (64,), "encoder_channels": 8})
        assert summary["dataset"]["transitions"] == 2000
        policy = NumpyPolicy.load(tmp_path / name / "policy.npz")
        assert policy.encoder is not None and policy.encoder.input_shape == (16, 16, 1)
        scores[name] = evaluate_policy(policy, env_id, episodes=200, seed=5).return_mean
    assert scores["dqn"] > 0.9
    assert scores["discrete_bc"] < 0.45


def test_continuous_learners_refuse_discrete_or_image_stores_with_the_alternatives(tmp_path):
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.train import train as train_run

    collect("armfarm/QuadrantDot-v0", tmp_path / "store", BehaviorSpec("random"), episodes=20)
    with pytest.raises(ValueError, match="discrete actions; iql learns continuous ones.*dqn"):
        train_run("iql", tmp_path / "store", tmp_path / "run", steps=10)
