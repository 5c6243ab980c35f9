"""The recorder API: a robot with its own control loop (no Gymnasium env) joins the fleet."""

import gymnasium as gym
import numpy as np
import pytest
from test_client import client_config, hopper_policy, wait_for

from armfarm.fleet.admin import Admin
from armfarm.fleet.client import FleetClient

ACTIONS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


class ToyRobot:
    """A control loop that is not a Gymnasium env: 11 sensor values, 3 motors, ends after 6 steps."""

    def __init__(self, seed):
        self.rng, self.t = np.random.default_rng(seed), 0

    def observe(self):
        return self.rng.normal(size=11).astype(np.float32)

    def step(self, action):
        self.t += 1
        return self.observe(), float(-np.sum(action**2)), False, self.t >= 6


def drive(client, robot):
    steps = []
    with client.episode(seed=7) as ep:
        obs, done = robot.observe(), False
        while not done:
            action = client.act(obs)
            next_obs, reward, terminated, truncated = robot.step(action)
            ep.add(obs, action, reward, terminated, truncated, next_obs=next_obs)
            steps.append((obs, action, reward, next_obs))
            obs, done = next_obs, terminated or truncated
    return ep.episode_id, steps


def test_a_custom_control_loop_records_uploads_and_follows_policies(server, robot, tmp_path):
    config = client_config(server, robot, tmp_path / "spool", env_id=None)
    with FleetClient(config, action_space=ACTIONS) as client:
        first, steps = drive(client, ToyRobot(0))
        assert client.drain(timeout=60)
        assert not client.spool.rejected()  # acknowledged (the ack names the env the server filled in)
        stored = server.store.read_episode(first)
        np.testing.assert_array_equal(stored.observations[:-1], np.stack([s[0] for s in steps]))
        np.testing.assert_array_equal(stored.observations[-1], steps[-1][3])
        np.testing.assert_array_equal(stored.actions, np.stack([s[1] for s in steps]))
        np.testing.assert_allclose(stored.rewards, [s[2] for s in steps], rtol=1e-6)
        assert stored.truncated[-1] and not stored.terminated.any()
        assert stored.policy_id == "default:random" and stored.seed == 7
        assert np.all(np.abs(stored.actions) <= 1.0)

        hopper_policy(3).save(tmp_path / "p.npz")
        with Admin(server.url, server.admin_token) as admin:
            version = admin.publish(tmp_path / "p.npz")["version"]
        wait_for(lambda: client._offered is not None and client._offered.version == version)
        second, steps = drive(client, ToyRobot(1))  # adopted at the episode boundary
        assert client.drain(timeout=60)
        stored = server.store.read_episode(second)
        assert stored.policy_id.startswith(f"v{version}:bc@")
        policy_actions = np.stack([np.clip(client.behavior.policy(s[0]), -1, 1) for s in steps])
        np.testing.assert_allclose(stored.actions, policy_actions, rtol=1e-5, atol=1e-6)


def test_an_episode_that_raises_is_not_spooled_and_a_missing_final_observation_is_refused(server, robot, tmp_path):
    with FleetClient(client_config(server, robot, tmp_path / "spool", env_id=None), action_space=ACTIONS) as client:
        with pytest.raises(RuntimeError), client.episode() as ep:
            ep.add(np.zeros(11), client.act(np.zeros(11)), 0.0)
            raise RuntimeError("the robot's arm stalled")
        assert client.spool.pending() == [] and client.episodes_recorded == 0
        with pytest.raises(ValueError, match="next_obs"), client.episode() as ep:
            ep.add(np.zeros(11), np.zeros(3), 0.0)
        with pytest.raises(RuntimeError, match="no environment"):
            client.record_episode()


def test_a_robot_without_env_needs_its_action_space(server, robot, tmp_path):
    with pytest.raises(ValueError, match="action_space"):
        FleetClient(client_config(server, robot, tmp_path / "spool", env_id=None))
