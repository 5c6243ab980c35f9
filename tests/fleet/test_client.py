"""The robot client: buffering on disk while the server is away, surviving kills, following policies."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from fleetlib import ThreadServer, cache_policy, episode_arrays, episode_meta

from armfarm.data import check_store
from armfarm.fleet.admin import Admin, write_token
from armfarm.fleet.client import ClientConfig, FleetClient
from armfarm.fleet.payload import encode
from armfarm.fleet.server import ServerConfig
from armfarm.policy import NumpyPolicy


def client_config(running, robot, spool, **changes) -> ClientConfig:
    config = ClientConfig(server=running.url, token=robot[1], robot_id=robot[0], env_id="Hopper-v5",
                          spool_dir=spool, max_steps=15, backoff_s=0.05, backoff_max_s=0.5, policy_poll_s=0.2)
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def stored_ids(store, robot_id):
    return sorted(r.episode_id for r in store.records(collector_id=robot_id))


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_buffers_while_the_server_is_down_and_drains_later(backend, tmp_path):
    store = tmp_path / "store"
    with ThreadServer(ServerConfig(store=store, index_url=backend)) as up:
        robot = up.register()
        port = up.port
    acks = []
    with FleetClient(client_config(up, robot, tmp_path / "spool"), on_ack=acks.append) as client:
        recorded = [client.record_episode() for _ in range(4)]  # the server is down
        assert len(client.spool.pending()) == 4 and not client.drain(timeout=0.5) and acks == []
        with ThreadServer(ServerConfig(store=store, index_url=backend), port=port) as again:
            assert client.drain(timeout=60)
            recorded.append(client.record_episode())  # and it keeps flowing
            assert client.drain(timeout=60)
            assert stored_ids(again.store, robot[0]) == sorted(recorded)
            assert sorted(a["episode_id"] for a in acks) == sorted(recorded)
            assert all(a["robot_id"] == robot[0] and a["transitions"] >= 1 for a in acks)
            assert check_store(store).ok


def test_a_killed_robot_loses_nothing_it_recorded(server, tmp_path):
    robot = server.register()
    token_file = tmp_path / "robot.token"
    write_token(token_file, robot[1])
    spool = tmp_path / "spool"
    dead_port = "http://127.0.0.1:9"  # nothing listens: everything stays in the spool
    process = subprocess.Popen(
        [sys.executable, "-m", "armfarm.cli.main", "fleet", "robot", robot[0], "--env", "Hopper-v5",
         "--token-file", str(token_file), "--server", dead_port, "--spool", str(spool)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(list((spool / "pending").glob("*.episode"))) >= 5)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    spooled = sorted(p.name.split("-", 1)[1].removesuffix(".episode") for p in (spool / "pending").glob("*.episode"))
    with FleetClient(client_config(server, robot, spool)) as client:  # the next start uploads them
        assert client.drain(timeout=60)
    assert stored_ids(server.store, robot[0]) == spooled
    assert not list((spool / "tmp").iterdir())


def test_refused_uploads_are_set_aside(server, robot, tmp_path):
    with FleetClient(client_config(server, robot, tmp_path / "spool")) as client:
        arrays = episode_arrays(np.random.default_rng(0), T=5)
        arrays["rewards"] = arrays["rewards"].copy()
        arrays["rewards"][2] = np.nan
        client.spool.put("broken", encode(arrays, episode_meta("broken")))
        good = client.record_episode()
        assert client.drain(timeout=60)
        rejected = client.spool.rejected()
        assert [p.name.split("-", 1)[1] for p in rejected] == ["broken.episode"]
        reason = rejected[0].with_suffix(".reason.txt").read_text()
        assert "422" in reason and "NaN" in reason
    assert stored_ids(server.store, robot[0]) == [good]


def hopper_policy(seed: int) -> NumpyPolicy:
    rng = np.random.default_rng(seed)
    return NumpyPolicy([rng.normal(size=(11, 8)), rng.normal(size=(8, 3))], [np.zeros(8), np.zeros(3)],
                       action_low=-np.ones(3), action_high=np.ones(3), metadata={"algo": "bc", "step": seed})


def test_follows_new_policies_without_restarting(server, robot, tmp_path):
    stop = threading.Event()
    with FleetClient(client_config(server, robot, tmp_path / "spool")) as client:
        thread = threading.Thread(target=client.run, kwargs={"stop": stop})
        thread.start()
        try:
            wait_for(lambda: client.episodes_recorded >= 2)
            assert client.policy_version is None and client.behavior.policy_id == "random"
            versions = []
            for seed in (1, 2):
                hopper_policy(seed).save(tmp_path / f"policy{seed}.npz")
                with Admin(server.url, server.admin_token) as admin:
                    versions.append(admin.publish(tmp_path / f"policy{seed}.npz", source=f"run-{seed}")["version"])
                wait_for(lambda v=versions[-1]: client.policy_version == v)
                recorded = client.episodes_recorded
                wait_for(lambda r=recorded: client.episodes_recorded >= r + 2)
        finally:
            stop.set()
            thread.join()
        assert client.drain(timeout=60)
    policies = {r.policy_id for r in server.store.records(collector_id=robot[0])}
    # each episode names the published version that produced it, or the default behaviour
    assert "default:random" in policies
    assert {p.split(":")[0] for p in policies if ":bc@" in p} == {f"v{v}" for v in versions}
    # a restart, even offline, acts with the last policy it downloaded
    with FleetClient(client_config(server, robot, tmp_path / "spool", server="http://127.0.0.1:9")) as offline:
        offline.record_episode()
        assert offline.policy_version == versions[-1]


@pytest.mark.parametrize("kind", ["mismatched", "corrupt"])
def test_a_cached_policy_that_cannot_run_is_not_run(backend, tmp_path, kind):
    """A damaged or foreign policy in the spool's cache (signed, so only loading it can fail): the robot
    keeps its default behaviour and reports the version as skipped."""
    spool = tmp_path / "spool"
    if kind == "corrupt":
        content = b"not a policy"
    else:
        NumpyPolicy([np.ones((4, 3))], [np.zeros(3)]).save(tmp_path / "foreign.npz")
        content = (tmp_path / "foreign.npz").read_bytes()
    with ThreadServer(ServerConfig(store=tmp_path / "store", index_url=backend)) as server:
        cache_policy(spool, server, 7, content)
        config = client_config(server, server.register(), spool, signing_key=server.fleet.registry.signing_key)
        with FleetClient(config) as client:
            client.record_episode()
            assert client.policy_version is None and client.behavior.policy_id == "random"
            assert 7 in client.skipped_versions
            assert client.drain(timeout=60)
