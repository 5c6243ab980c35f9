"""A robot behind a shield: what the shield did travels with its episodes, its watchdog's e-stops are
recorded with their reason, a robot whose shield cannot be loaded does not move, and a published policy
that ships with its shield runs behind it."""

import time

import numpy as np
import pytest
from fleetlib import episode_arrays, episode_meta
from shieldlib import write_shield
from test_client import client_config, hopper_policy

from armfarm.fleet.client import FleetClient
from armfarm.fleet.payload import encode
from armfarm.policy import NumpyPolicy
from armfarm.shield import COST, ShieldError, Watchdog, attach_shield


def test_interventions_of_a_shielded_robot_are_stored_with_its_episodes(server, tmp_path):
    robot = server.register()
    shield = write_shield(tmp_path / "shield", 11, 3, cost_weight=10.0, budget=0.5)  # refuses a_0 > 0.05
    with FleetClient(client_config(server, robot, tmp_path / "spool", shield=shield)) as client:
        ids = [client.record_episode() for _ in range(3)]
        assert client.drain(timeout=60)
    flagged = 0
    for episode_id in ids:
        episode = server.store.read_episode(episode_id)
        replaced = episode.step_interventions == COST
        assert (episode.actions[:, 0] <= 0.05 + 1e-6).all()  # no refused action reached the robot
        np.testing.assert_allclose(episode.actions[replaced], 0.0)  # the 'stop' fallback acted instead
        assert server.store.record(episode_id).interventions == int(replaced.sum())
        flagged += int(replaced.sum())
    assert flagged > 5  # the random default behaviour proposes a_0 > 0.05 about half the time


def test_a_watchdog_e_stop_is_recorded_as_truncated_with_its_reason(server, tmp_path):
    robot = server.register()
    stuck = Watchdog(no_progress_steps=4, min_progress=1e9)  # never enough progress: stop after 4 steps
    shield = write_shield(tmp_path / "shield", 11, 3, watchdog=stuck)
    with FleetClient(client_config(server, robot, tmp_path / "spool", shield=shield)) as client:
        episode_id = client.record_episode()
        assert client.drain(timeout=60)
    episode = server.store.read_episode(episode_id)
    assert episode.length == 4 and episode.truncated[-1] and "no progress" in episode.end_reason
    assert server.store.info()["safety"]["end_reasons"] == {episode.end_reason: 1}


@pytest.mark.parametrize("damage", ["missing", "corrupt weights"])
def test_a_robot_whose_shield_does_not_load_does_not_move_but_still_uploads(server, tmp_path, damage):
    robot = server.register()
    shield = write_shield(tmp_path / "shield", 11, 3)
    if damage == "missing":
        shield = tmp_path / "no-such-shield"
    else:
        (shield / "weights.npz").write_bytes(b"garbage")
    spool = tmp_path / "spool"
    with FleetClient(client_config(server, robot, spool, shield=shield)) as client:
        assert client.shield_error is not None
        steps = []
        original = client.env.step
        client.env.step = lambda a: steps.append(a) or original(a)
        with pytest.raises(ShieldError, match="does not move"):
            client.record_episode()
        with pytest.raises(ShieldError):
            client.act(np.zeros(11))
        assert steps == []  # the motors never got an action
        earlier = episode_meta()
        client.spool.put(earlier["episode_id"], encode(episode_arrays(np.random.default_rng(0)), earlier))
        client._wake.set()
        assert client.drain(timeout=60)  # what was recorded before still reaches the store
    assert server.store.record(earlier["episode_id"]).collector_id == robot[0]


def test_simulated_robots_run_behind_a_shield_and_a_broken_one_stops_them(server, tmp_path):
    from armfarm.fleet.sim import run_sim
    from armfarm.shield import LIMITS, Limits

    shield = write_shield(tmp_path / "shield", 11, 3, limits=Limits(high=[0.1, 0.1, 0.1]))  # no torque above 0.1
    report = run_sim(server.url, server.admin_token, "Hopper-v5", robots=2, episodes=2, prefix="guarded",
                     shield=shield, spool_dir=tmp_path / "spools")
    assert report.ok and report.acked == 4
    episodes = [server.store.read_episode(r.episode_id) for r in server.store.snapshot()
                if r.collector_id.startswith("guarded")]
    assert len(episodes) == 4 and all((e.actions <= 0.1 + 1e-6).all() for e in episodes)
    assert sum(int((e.step_interventions & LIMITS).astype(bool).sum()) for e in episodes) > 10
    broken = run_sim(server.url, server.admin_token, "Hopper-v5", robots=1, episodes=1, prefix="broken",
                     shield=tmp_path / "no-such-shield", spool_dir=tmp_path / "spools2")
    assert not broken.ok and "does not move" in broken.failures[0] and broken.acked == 0


def record_until_version(server, client: FleetClient, version: int):
    """Record episodes until one acts with ``version`` (adopted at an episode boundary); that episode,
    as stored."""
    for _ in range(100):
        episode_id = client.record_episode()
        if client.policy_id.startswith(f"v{version}:"):
            assert client.drain(timeout=60)
            return server.store.read_episode(episode_id)
        time.sleep(0.05)
    raise AssertionError(f"the robot never acted with version {version}")


def test_a_policy_published_with_its_shield_runs_behind_it_until_a_new_pair_replaces_it(server, tmp_path):
    from armfarm.fleet.admin import Admin
    from armfarm.shield import Limits

    robot = server.register()
    hopper_policy(1).save(tmp_path / "policy.npz")
    upper = write_shield(tmp_path / "upper", 11, 3, limits=Limits(high=[-0.5] * 3))  # actions in [-1, -0.5]
    lower = write_shield(tmp_path / "lower", 11, 3, limits=Limits(low=[0.5] * 3))  # actions in [0.5, 1]
    own = write_shield(tmp_path / "own", 11, 3, limits=Limits(low=[-0.2] * 3, high=[0.2] * 3))
    with Admin(server.url, server.admin_token) as admin, \
            FleetClient(client_config(server, robot, tmp_path / "spool", shield=own)) as client:
        default_id = client.record_episode()  # the default behaviour runs behind the robot's own shield
        assert client.drain(timeout=60)
        default = server.store.read_episode(default_id)
        assert np.abs(default.actions).max() <= 0.2 + 1e-6
        first = admin.publish(tmp_path / "policy.npz", shield=upper)
        assert first["config"]["shield"] is not None
        shielded = record_until_version(server, client, first["version"])
        assert (shielded.actions <= -0.5 + 1e-6).all() and (shielded.step_interventions > 0).any()
        second = admin.publish(tmp_path / "policy.npz", shield=lower)
        assert second["config"]["shield"] != first["config"]["shield"]
        replaced = record_until_version(server, client, second["version"])
        assert (replaced.actions >= 0.5 - 1e-6).all()  # the new shield came with the new version
        plain = admin.publish(tmp_path / "policy.npz")  # a policy without a shield: the robot's own guards it
        assert plain["config"]["shield"] is None
        guarded = record_until_version(server, client, plain["version"])
        assert np.abs(guarded.actions).max() <= 0.2 + 1e-6


def test_the_server_refuses_a_policy_whose_shield_is_broken_or_does_not_fit(server, tmp_path):
    from armfarm.fleet.admin import Admin, AdminError

    server.register()
    before = server.fleet.registry.latest_policy()
    policy = hopper_policy(1)
    small = write_shield(tmp_path / "small", 5, 3)  # for a robot with 5 observation features, not 11
    with pytest.raises(ShieldError, match="5 observation features"):
        attach_shield(policy.save(tmp_path / "policy.npz"), small, tmp_path / "bundled.npz")
    for name, files in [("garbage", {"shield.json": b"{not json"}),
                        ("misfit", {n: (small / n).read_bytes() for n in ("shield.json", "weights.npz")})]:
        path = NumpyPolicy(policy.weights, policy.biases, shield_files=files).save(tmp_path / f"{name}.npz")
        with Admin(server.url, server.admin_token) as admin, pytest.raises(AdminError, match="422") as refused:
            admin.publish(path)
        assert "shield cannot be used" in str(refused.value) and str(tmp_path) not in str(refused.value)
    assert server.fleet.registry.latest_policy() == before


def test_a_cached_version_whose_shield_no_longer_loads_is_skipped_not_run_unshielded(backend, tmp_path):
    from fleetlib import ThreadServer, cache_policy

    from armfarm.fleet.server import ServerConfig

    policy = hopper_policy(1)
    policy.shield_files = {"shield.json": b"{}"}  # signed by the server, but the shield inside is broken
    content = policy.save(tmp_path / "broken.npz").read_bytes()
    spool = tmp_path / "spool"
    with ThreadServer(ServerConfig(store=tmp_path / "store", index_url=backend)) as server:
        cache_policy(spool, server, 7, content)
        config = client_config(server, server.register(), spool, signing_key=server.fleet.registry.signing_key)
        with FleetClient(config) as client:
            client.record_episode()
            assert client.policy_version is None and client.behavior.policy_id == "random"
            assert "shield.json" in client.skipped_versions[7]
            assert client.drain(timeout=60)
