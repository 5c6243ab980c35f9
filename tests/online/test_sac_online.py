"""Online SAC: the algorithm contract, learning a small task, determinism, the replay buffer and the CLI."""

import json

import numpy as np
import pytest
from reach_env import ReachEnv
from typer.testing import CliRunner

from armfarm.algos import get_algorithm
from armfarm.algos.sac import SACConfig
from armfarm.cli.main import app
from armfarm.online import GaussianActor, ReplayBuffer, train_online
from armfarm.policy import NumpyPolicy

TINY = {"hidden": (32, 32)}


def test_sac_learns_to_reach(tmp_path):
    summary = train_online("sac", "ArmfarmTestReach-v0", tmp_path / "run", steps=3000, start_steps=500,
                           eval_every=3000, eval_episodes=20, config_overrides={**TINY, "batch_size": 128})
    policy = NumpyPolicy.load(tmp_path / "run" / "policy.npz")
    env, rng = ReachEnv(), np.random.default_rng(0)
    random_returns = []
    for i in range(20):
        env.reset(seed=i)
        random_returns.append(sum(env.step(rng.uniform(-1, 1, 1))[1] for _ in range(25)))
    assert summary["eval"]["return_mean"] > np.mean(random_returns) + 8, (summary["eval"], np.mean(random_returns))
    assert summary["grad_steps"] == 2500 and policy.act_dim == 1
    run = tmp_path / "run"
    for name in ("config.json", "metrics.csv", "eval.csv", "summary.json", "replay.npz", "tb"):
        assert (run / name).exists(), name


def test_online_training_is_deterministic(tmp_path):
    kwargs = dict(steps=300, start_steps=100, updates_per_call=20, eval_every=300, eval_episodes=1,
                  config_overrides={"hidden": (16,), "batch_size": 32})
    reported = []
    for name in ("a", "b"):
        train_online("sac", "ArmfarmTestReach-v0", tmp_path / name, seed=3, **kwargs,
                     on_progress=lambda step, m: reported.append((step, "critic_loss" in m)))
    # progress comes every call, from the first random steps on; learning metrics once learning starts
    assert reported[:15] == [(step, step > 100) for step in range(20, 301, 20)]
    a, b = (NumpyPolicy.load(tmp_path / n / "policy.npz") for n in ("a", "b"))
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    ra, rb = (np.load(tmp_path / n / "replay.npz") for n in ("a", "b"))
    assert all(np.array_equal(ra[k], rb[k]) for k in ra.files)


def test_replay_buffer_turns_back_into_episodes_after_wrap_around():
    buf = ReplayBuffer(10, 1, 1)
    t = 0
    for length in (4, 5, 3):  # the 4-step episode is overwritten; the last (3 steps) is still running
        for i in range(length):
            last = i == length - 1 and length != 3
            buf.add([t], [0.0], 1.0, [t + 1], terminated=False, truncated=last)
            t += 1
    episodes = buf.episodes()
    assert [len(e["actions"]) for e in episodes] == [5, 3]
    first, running = episodes
    np.testing.assert_array_equal(first["observations"][:, 0], np.arange(4, 10))
    assert running["truncated"][-1] and not running["terminated"].any()
    assert buf.sample_stacked(np.random.default_rng(0), 2, 4)["observations"].shape == (2, 4, 1)


def test_gaussian_actor_mean_matches_the_exported_policy():
    config = SACConfig(hidden=(8,))
    from armfarm.algos import DatasetStats

    stats = DatasetStats(3, 2, np.zeros(3), np.ones(3), np.array([-2.0, 0.0]), np.array([2.0, 1.0]))
    state = get_algorithm("sac").init(config, stats, 0)
    actor, policy = GaussianActor.from_state(config, state), get_algorithm("sac").export_policy(config, state)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(actor.mean_action(obs), policy(obs), atol=1e-5)
    sample = actor.sample(obs, np.random.default_rng(1))
    assert np.all(sample >= stats.action_low) and np.all(sample <= stats.action_high)


def test_cli_train_online_and_offline_train_points_to_it(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train-online", "sac", "ArmfarmTestReach-v0", "--out", str(tmp_path / "run"),
                                 "--steps", "120", "--start-steps", "60", "--eval-episodes", "1",
                                 "--set", "hidden=16", "--set", "batch_size=16"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["env_steps"] == 120
    result = runner.invoke(app, ["train", "sac", str(tmp_path), "--out", str(tmp_path / "off")])
    assert result.exit_code == 2 and "train-online" in result.output


def test_online_training_rejects_offline_algorithms(tmp_path):
    with pytest.raises(ValueError, match="offline"):
        train_online("iql", "ArmfarmTestReach-v0", tmp_path / "run", steps=10)
