"""Collectors as Ray actors on real local multi-node clusters: spread over nodes, each episode naming its node,
the same data as local processes, and no acknowledged episode lost or duplicated when a node dies."""

from __future__ import annotations

import os
import sys
import threading
import time

import httpx
import pytest

from armfarm.collect import collect
from armfarm.data import EpisodeStore, check_store
from armfarm.envs.behavior import BehaviorSpec
from armfarm.launch.ray_cluster import RayUnavailable, connect
from armfarm.launch.ray_collect import check_shared_store, filesystem_type

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fleet"))  # for fleetlib


def returns_by_seed(store) -> dict[int, float]:
    return {r.seed: round(r.episode_return, 6) for r in EpisodeStore(store).snapshot()}


def test_an_unsafe_shared_store_and_switched_off_authentication_are_refused(tmp_path, monkeypatch):
    assert filesystem_type(tmp_path) not in ("nfs", "nfs4", "cifs")
    check_shared_store("sqlite", tmp_path, {"host-a"})  # one machine, local disk: fine
    check_shared_store("postgresql", tmp_path, {"host-a", "host-b"})  # PostgreSQL takes many machines
    with pytest.raises(ValueError, match="SQLite index.*2 hosts.*PostgreSQL"):
        check_shared_store("sqlite", tmp_path, {"host-a", "host-b"})
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(RayUnavailable, match="only with token authentication"):
        connect("local")


def collect_killing_a_worker_node(cluster, store_path, target, episodes: int, **kwargs) -> tuple:
    """``collect`` HalfCheetah (1000-step random episodes) into ``target`` with 2 collectors on ``cluster``,
    in a thread; once a worker node's collector has stored some but not nearly all of its share, and at
    most half the episodes are in the store at ``store_path``, SIGKILL that node (raylet, workers, spools and all). Returns the node, the ids stored
    (acknowledged) before the kill, and ``{"report"}`` or ``{"error"}``."""
    import ray

    outcome: dict = {}

    def run():
        try:
            outcome["report"] = collect("HalfCheetah-v5", target, BehaviorSpec("random"), episodes=episodes,
                                        workers=2, seed=0, ray_address=cluster.address, **kwargs)
        except BaseException as exc:  # surfaced by the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    victim, before = None, set()
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
        if not (store_path / "store.json").exists():
            continue
        info = EpisodeStore(store_path).info()
        # a node mid-way through its share (episodes // 2, a static split), with two or more still to
        # do, so its collector is surely cut short and must restart elsewhere
        workers = [n for n in cluster.worker_nodes if 0 < info["nodes"].get(n.node_id[:12], 0) <= episodes // 2 - 2]
        if workers and info["episodes"] <= episodes // 2:
            victim = workers[0]
            before = {r.episode_id for r in EpisodeStore(store_path).snapshot()}
            cluster.remove_node(victim, allow_graceful=False)
    thread.join(timeout=600)
    ray.shutdown()
    return victim, before, outcome


def assert_each_index_stored_once(store_path, episodes: int, victim, before: set, outcome: dict) -> None:
    assert victim is not None, "no worker node ever held a collector"
    assert "error" not in outcome, outcome.get("error")
    records = EpisodeStore(store_path).snapshot()
    ids = [r.episode_id for r in records]
    assert len(ids) == len(set(ids)) == episodes  # every index once, nothing twice
    assert before <= set(ids)  # whatever was acknowledged before the kill is still there
    assert sorted(r.seed for r in records) == list(range(episodes))
    nodes = EpisodeStore(store_path).info()["nodes"]
    assert len(nodes) == 3 and victim.node_id[:12] in nodes  # the dead node's collector restarted elsewhere
    assert check_store(store_path).ok


@pytest.mark.slow
def test_ray_collectors_spread_over_nodes_and_record_what_local_processes_record(tmp_path, ray_address):
    report = collect("Hopper-v5", tmp_path / "ray", BehaviorSpec("random", 0.1), episodes=8, workers=2, seed=5,
                     ray_address=ray_address)
    collect("Hopper-v5", tmp_path / "local", BehaviorSpec("random", 0.1), episodes=8, workers=2, seed=5)
    info = EpisodeStore(tmp_path / "ray").info()
    assert report.episodes == info["episodes"] == 8
    assert len(info["nodes"]) == 2 and sum(info["nodes"].values()) == 8  # two 1-CPU nodes, one actor each
    assert returns_by_seed(tmp_path / "ray") == returns_by_seed(tmp_path / "local")
    assert check_store(tmp_path / "ray").ok


@pytest.mark.slow
def test_a_node_that_dies_mid_collection_loses_and_duplicates_nothing(tmp_path):
    import ray
    from raylib import local_cluster

    ray.shutdown()  # this test needs a cluster of its own, whose nodes it can kill
    store_path, episodes = tmp_path / "store", 64  # written 8 at a time
    with local_cluster(nodes=3) as cluster:
        victim, before, outcome = collect_killing_a_worker_node(cluster, store_path, store_path, episodes)
    assert_each_index_stored_once(store_path, episodes, victim, before, outcome)


def fleet_server(tmp_path):
    from fleetlib import ThreadServer

    from armfarm.fleet.server import ServerConfig

    return ThreadServer(ServerConfig(store=tmp_path / "served"))


def registered_robots(server) -> list[str]:
    answer = httpx.get(f"{server.url}/v1/robots", headers={"Authorization": f"Bearer {server.admin_token}"})
    return [r["robot_id"] for r in answer.json()]


@pytest.mark.slow
def test_ray_collectors_upload_through_a_fleet_server_what_local_processes_record(tmp_path, ray_address):
    with fleet_server(tmp_path) as server:
        acked = []
        report = collect("Hopper-v5", server.url, BehaviorSpec("random", 0.1), episodes=8, workers=2, seed=5,
                         ray_address=ray_address, admin_token=server.admin_token, on_progress=acked.append)
        info = server.store.info()
        robots = registered_robots(server)
    collect("Hopper-v5", tmp_path / "local", BehaviorSpec("random", 0.1), episodes=8, workers=2, seed=5)
    assert report.episodes == info["episodes"] == sum(acked) == 8
    assert len(info["nodes"]) == 2 and sum(info["nodes"].values()) == 8  # robots collector-<w>@<node>
    assert returns_by_seed(tmp_path / "served") == returns_by_seed(tmp_path / "local")
    assert robots == []  # the collectors' registrations end with the collection; their episodes stay
    assert check_store(tmp_path / "served").ok


def test_collecting_through_a_fleet_server_needs_ray_and_the_admin_token(tmp_path):
    spec = BehaviorSpec("random")
    with pytest.raises(ValueError, match="runs the collectors on Ray.*fleet sim"):
        collect("Hopper-v5", "http://127.0.0.1:1", spec, episodes=1, admin_token="t")
    with pytest.raises(ValueError, match="admin token"):
        collect("Hopper-v5", "http://127.0.0.1:1", spec, episodes=1, ray_address="local")
    with pytest.raises(ValueError, match="plain HTTP to a host off loopback"):
        collect("Hopper-v5", "http://10.1.2.3:8000", spec, episodes=1, ray_address="local", admin_token="t")


@pytest.mark.slow
def test_a_node_that_dies_mid_collection_through_a_fleet_server_loses_and_duplicates_nothing(tmp_path):
    import ray
    from raylib import local_cluster

    ray.shutdown()  # this test needs a cluster of its own, whose nodes it can kill
    episodes = 32  # each acknowledged on its own
    with local_cluster(nodes=3) as cluster, fleet_server(tmp_path) as server:
        victim, before, outcome = collect_killing_a_worker_node(cluster, tmp_path / "served", server.url, episodes,
                                                                admin_token=server.admin_token)
        robots = registered_robots(server)
    assert_each_index_stored_once(tmp_path / "served", episodes, victim, before, outcome)
    assert robots == []
