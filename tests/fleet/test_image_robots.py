"""Robots that see images and act in a Discrete space, through a real fleet server: what reaches the
store is what the robot saw and did, byte for byte, under the store's strict spec."""

from __future__ import annotations

import numpy as np
import pytest
from fleetlib import ThreadServer

from armfarm.fleet.server import ServerConfig
from armfarm.fleet.sim import run_sim


def test_image_robots_with_discrete_actions_upload_what_they_saw_and_did(tmp_path):
    with ThreadServer(ServerConfig(store=tmp_path / "store")) as server:
        report = run_sim(server.url, server.admin_token, "armfarm/QuadrantDot-v0", robots=2, episodes=6,
                         spool_dir=tmp_path / "spools", policy_poll_s=0.2)
        assert report.ok and report.acked == 12, report.failures
        spec = server.store.spec
        assert spec.observation.is_image and spec.observation.shape == (16, 16, 1)
        assert spec.action.num_choices == 4
        episodes = [server.store.read_episode(r.episode_id) for r in server.store.snapshot()]
    assert len(episodes) == 12
    for e in episodes:
        assert e.observations.dtype == np.uint8 and e.observations.shape == (2, 16, 16, 1)
        assert set(np.unique(e.observations)) <= {0, 255}  # the env's black image with a white dot
        assert e.actions.dtype == np.int64 and 0 <= int(e.actions[0]) <= 3
        # the stored image decides the stored reward: 1 exactly when the action names the dot's quadrant
        rows, cols = np.nonzero(e.observations[0, :, :, 0])
        quadrant = 2 * int(rows.min() >= 8) + int(cols.min() >= 8)
        assert e.rewards[0] == float(int(e.actions[0]) == quadrant)


def test_a_discrete_fleet_takes_argmax_policies_over_its_choices_and_refuses_others(tmp_path):
    from armfarm.algos import DatasetStats, get_algorithm
    from armfarm.fleet.errors import FleetError
    from armfarm.fleet.registry import Registry

    with ThreadServer(ServerConfig(store=tmp_path / "store")) as server:
        assert run_sim(server.url, server.admin_token, "armfarm/QuadrantDot-v0", robots=1, episodes=1,
                       spool_dir=tmp_path / "spools").ok
        registry = Registry(server.store)

        def published(name: str, low: float, high: float, act_dim: int = 1) -> int:
            algo = get_algorithm(name)
            stats = DatasetStats(obs_dim=256, act_dim=act_dim, obs_mean=np.zeros(256), obs_std=np.ones(256),
                                 action_low=[low] * act_dim, action_high=[high] * act_dim, obs_shape=(16, 16, 1))
            config = algo.config_cls(encoder_channels=4)
            policy = algo.export_policy(config, algo.init(config, stats, 0))
            path = policy.save(tmp_path / f"{name}-{low}-{high}.npz")
            return registry.publish(path.read_bytes(), name).version

        assert published("dqn", 0, 3) == 1
        with pytest.raises(FleetError, match=r"picks one of 5 actions from 0, but the fleet's robots act in "
                                             r"Discrete\(4, start=0\)"):
            published("dqn", 0, 4)
        with pytest.raises(FleetError, match="picks one of 4 actions from 1"):
            published("dqn", 1, 4)
        with pytest.raises(FleetError, match="outputs 2 continuous actions, but the fleet's robots act in Discrete"):
            published("td3bc", -1, 1, act_dim=2)
