"""ReBRAC's critic penalty, on a one-state problem with a known fixed point."""

import jax.numpy as jnp
import numpy as np
from algo_testlib import ArrayDataset, small_config, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.nets.mlp import critic_ensemble_apply


def test_the_critic_penalty_lowers_the_value_of_leaving_the_data_to_its_fixed_point():
    """Reward 1 everywhere, the data's actions near 0, and an actor free to leave them (no actor penalty).
    The penalised target y = 1 + gamma (Q(s, a'') - beta_2 ||a'' - a'||^2) has the fixed point
    Q = (1 - gamma beta_2 c) / (1 - gamma), c the penalty the actor's actions pay: without the penalty Q
    is the true 1 / (1 - gamma); with it, the critic values the data's actions below that, by exactly c."""
    rng = np.random.default_rng(0)
    n, gamma = 2000, 0.5
    obs = (rng.normal(size=(n, 3)) * 0.1).astype(np.float32)
    act = np.clip(rng.normal(0.0, 0.05, (n, 2)), -1, 1).astype(np.float32)
    ds = ArrayDataset(obs, act, np.ones(n, np.float32), obs.copy(), np.zeros(n, np.float32),
                      episode_returns=np.array([float(n)]))
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    algo = get_algorithm("rebrac")
    values = {}
    for beta_2 in (0.0, 1.0):
        ds.extra = {}
        config = small_config(algo, hidden=(64, 64), gamma=gamma, actor_bc_coef=0.0, critic_bc_coef=beta_2,
                              policy_noise=0.0)
        state, metrics = train(algo, config, stats, ds, steps=1500)
        q = critic_ensemble_apply(state["critic"]["params"], jnp.asarray(obs[:512]), jnp.asarray(act[:512]))
        values[beta_2] = float(jnp.mean(jnp.min(q, axis=0)))
        expected = (1.0 - gamma * beta_2 * metrics["critic_bc"]) / (1.0 - gamma)
        assert abs(values[beta_2] - expected) < 0.05 * expected, (beta_2, values[beta_2], expected, metrics)
    assert metrics["critic_bc"] > 0.05  # the actor did leave the data, so the penalty had work to do
    assert values[1.0] < values[0.0] - 0.05


def test_next_actions_are_the_episodes_next_action_and_the_last_repeats_its_own():
    from armfarm.algos.core.batches import next_actions

    class Data:
        actions = np.arange(5, dtype=np.float32)[:, None]
        rewards = np.zeros(5, np.float32)
        episode_starts = np.array([0, 3])

    np.testing.assert_array_equal(next_actions(Data, None)[:, 0], [1, 2, 2, 4, 4])


def test_rebrac_trains_from_a_store_through_the_cli_learner(tmp_path, hopper_store):
    from armfarm.train import train

    summary = train("rebrac", hopper_store, tmp_path / "run", steps=20, steps_per_call=10,
                    config_overrides={"hidden": "32,32", "critic_hidden": "32,32", "batch_size": 64})
    assert summary["algo"] == "rebrac" and (tmp_path / "run" / "policy.npz").exists()
