"""Uploads: acks after durable commits, idempotent retries, id ownership, chunked long episodes."""

import concurrent.futures

import httpx
import numpy as np
from fleetlib import binary, episode_arrays, episode_body, episode_meta, store_state

from armfarm.data import check_store
from armfarm.fleet.payload import content_digest, decode, encode, split


def upload(server, robot, body):
    robot_id, token = robot
    return httpx.post(f"{server.url}/v1/robots/{robot_id}/episodes", content=body, headers=binary(token))


def put_chunk(server, robot, episode_id, index, body):
    robot_id, token = robot
    return httpx.put(f"{server.url}/v1/robots/{robot_id}/episodes/{episode_id}/chunks/{index}", content=body,
                     headers=binary(token))


def test_upload_is_stored_and_acknowledged(server, robot):
    arrays, meta = episode_arrays(np.random.default_rng(1), T=7), episode_meta(seed=2**64 - 1)
    response = upload(server, robot, encode(arrays, meta))
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack == {"episode_id": meta["episode_id"], "robot_id": robot[0], "transitions": 7,
                   "sha256": content_digest(arrays, meta), "env_id": meta["env_id"]}
    stored = server.store.read_episode(meta["episode_id"])  # visible as soon as acknowledged
    assert stored.collector_id == robot[0] and stored.env_id == "Hopper-v5" and stored.seed == 2**64 - 1
    assert stored.created_at == meta["created_at"] and stored.policy_id == "test"
    np.testing.assert_array_equal(stored.observations, arrays["observations"])
    np.testing.assert_array_equal(stored.actions, arrays["actions"])
    assert check_store(server.store.path).ok


def test_retry_returns_the_same_ack_and_stores_nothing_new(server, robot):
    body = episode_body()
    first = upload(server, robot, body)
    state = store_state(server.store)
    again = [upload(server, robot, body) for _ in range(3)]
    assert all(r.status_code == 200 and r.json() == first.json() for r in again)
    assert store_state(server.store) == state


def test_concurrent_retries_store_one_episode(server, robot):
    body = episode_body(T=20)
    before = server.store.num_episodes
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: upload(server, robot, body), range(8)))
    assert {r.status_code for r in responses} == {200} and len({r.text for r in responses}) == 1
    assert server.store.num_episodes == before + 1


def test_an_id_belongs_to_the_robot_that_stored_it(server, robot):
    other = server.register()
    body = episode_body()
    assert upload(server, robot, body).status_code == 200
    state = store_state(server.store)
    response = upload(server, other, body)
    assert response.status_code == 409 and "already stored by another robot" in response.json()["detail"]
    assert store_state(server.store) == state
    assert server.store.read_episode(decode(body).episode_id).collector_id == robot[0]


def test_replay_with_other_content_is_refused(server, robot):
    episode_id = "replayed-episode"
    assert upload(server, robot, episode_body(episode_id, seed=1)).status_code == 200
    state = store_state(server.store)
    response = upload(server, robot, episode_body(episode_id, seed=2))
    assert response.status_code == 409 and "other content" in response.json()["detail"]
    assert store_state(server.store) == state


def test_concurrent_uploads_from_many_robots_share_group_commits(server):
    robots = [server.register() for _ in range(6)]
    before = server.store.num_episodes
    jobs = [(r, episode_body(T=10, seed=i)) for i in range(5) for r in robots]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda job: upload(server, *job), jobs))
    assert [r.status_code for r in responses] == [200] * len(jobs)
    assert server.store.num_episodes == before + len(jobs)
    assert check_store(server.store.path).ok


def test_chunked_upload_is_invisible_until_complete(server, robot):
    arrays, meta = episode_arrays(np.random.default_rng(3), T=95), episode_meta()
    whole = decode(encode(arrays, meta))
    chunks = split(whole, 20)
    assert len(chunks) == 5
    state = store_state(server.store)
    for i in (4, 0, 2, 1):  # out of order; the final chunk first
        response = put_chunk(server, robot, meta["episode_id"], i, chunks[i])
        assert response.status_code == 202, response.text
        assert store_state(server.store) == state  # partial episodes are never visible
        assert check_store(server.store.path).ok
    assert response.json() == {"status": "staged", "episode_id": meta["episode_id"], "chunk": 1, "missing": [3]}
    assert put_chunk(server, robot, meta["episode_id"], 1, chunks[1]).status_code == 202  # a retried chunk
    response = put_chunk(server, robot, meta["episode_id"], 3, chunks[3])
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == content_digest(arrays, meta) and response.json()["transitions"] == 95
    stored = server.store.read_episode(meta["episode_id"])
    np.testing.assert_array_equal(stored.observations, arrays["observations"])
    np.testing.assert_array_equal(stored.rewards, arrays["rewards"])
    assert not list((server.store.path / "fleet" / "uploads" / robot[0]).glob("*/*"))  # staging cleaned
    retry = put_chunk(server, robot, meta["episode_id"], 3, chunks[3])  # retry after the commit
    assert retry.status_code == 200 and retry.json() == response.json()


def test_bad_chunks_are_refused(server, robot):
    arrays, meta = episode_arrays(np.random.default_rng(4), T=30), episode_meta()
    chunks = split(decode(encode(arrays, meta)), 10)
    response = put_chunk(server, robot, meta["episode_id"], 1, chunks[0])
    assert response.status_code == 422 and "must match the URL" in response.json()["detail"]
    response = put_chunk(server, robot, meta["episode_id"], 0, encode(arrays, meta))
    assert response.status_code == 422 and "no 'chunk' header" in response.json()["detail"]
    response = upload(server, robot, chunks[0])
    assert response.status_code == 422 and "chunk was sent as a whole episode" in response.json()["detail"]
    # chunks that disagree with each other fail at assembly; the staged chunks are dropped
    other = split(decode(encode(arrays, {**meta, "seed": 99})), 10)
    state = store_state(server.store)
    assert put_chunk(server, robot, meta["episode_id"], 0, chunks[0]).status_code == 202
    assert put_chunk(server, robot, meta["episode_id"], 1, chunks[1]).status_code == 202
    response = put_chunk(server, robot, meta["episode_id"], 2, other[2])
    assert response.status_code == 422 and "other metadata" in response.json()["detail"]
    assert store_state(server.store) == state
    assert not (server.store.path / "fleet" / "uploads" / robot[0] / meta["episode_id"]).exists()


def test_abandoned_chunks_expire_when_the_server_starts(server, robot, tmp_path):
    import os

    from fleetlib import ThreadServer

    from armfarm.fleet.server import ServerConfig

    chunk = split(decode(episode_body("abandoned", T=10)), 5)[0]
    assert put_chunk(server, robot, "abandoned", 0, chunk).status_code == 202
    staged = server.store.path / "fleet" / "uploads" / robot[0] / "abandoned"
    for f in staged.iterdir():
        os.utime(f, (0, 0))  # untouched since 1970
    config = ServerConfig(store=server.store.path, staging_ttl_s=3600)
    ThreadServer(config)  # setting up the server is enough; it need not serve
    assert not staged.exists()


def test_costs_interventions_and_end_reason_survive_upload(server, robot):
    rng = np.random.default_rng(11)
    arrays = episode_arrays(rng, T=9)
    costs = np.array([0, 0, 1, 0, 0.5, 0, 0, 2, 0], np.float32)
    interventions = np.array([0, 1, 0, 0, 4, 0, 0, 8, 0], np.uint8)
    arrays.update(costs=costs, interventions=interventions)
    meta = episode_meta(end_reason="watchdog: no progress for 5.0 s")
    response = upload(server, robot, encode(arrays, meta))
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == content_digest(arrays, meta)
    stored = server.store.read_episode(meta["episode_id"])
    np.testing.assert_array_equal(stored.step_costs, costs)
    np.testing.assert_array_equal(stored.step_interventions, interventions)
    assert stored.end_reason == meta["end_reason"] and server.store.record(meta["episode_id"]).interventions == 3
    assert upload(server, robot, encode(arrays, meta)).json() == response.json()  # an idempotent retry


def test_zero_costs_digest_as_no_costs_so_older_clients_keep_their_acks(server, robot):
    arrays, meta = episode_arrays(np.random.default_rng(12), T=4), episode_meta()
    with_zeros = {**arrays, "costs": np.zeros(4, np.float32), "interventions": np.zeros(4, np.uint8)}
    assert content_digest(with_zeros, meta) == content_digest(arrays, meta)
    assert content_digest(arrays, {**meta, "end_reason": ""}) == content_digest(arrays, meta)
    first = upload(server, robot, encode(with_zeros, meta))
    assert first.status_code == 200 and first.json()["sha256"] == content_digest(arrays, meta)
    assert upload(server, robot, encode(arrays, meta)).json() == first.json()  # the same episode


def test_negative_or_nan_costs_are_refused_naming_the_field(server, robot):
    for bad in (np.array([0, -1, 0], np.float32), np.array([0, np.nan, 0], np.float32)):
        arrays = {**episode_arrays(np.random.default_rng(13), T=3), "costs": bad}
        state = store_state(server.store)
        response = upload(server, robot, encode(arrays, episode_meta()))
        assert response.status_code == 422 and "costs" in response.json()["detail"]
        assert store_state(server.store) == state


def test_the_admin_lists_stored_episodes_by_prefix_a_page_at_a_time(server, robot):
    import uuid

    from fleetlib import bearer

    from armfarm.fleet.admin import Admin

    prefix = f"listed-{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{i:03d}" for i in range(5)]
    for i, episode_id in enumerate(ids):
        assert upload(server, robot, episode_body(episode_id, T=3 + i, seed=i)).status_code == 200
    assert upload(server, robot, episode_body(f"other-{prefix}")).status_code == 200  # another prefix

    url = f"{server.url}/v1/episodes"
    first = httpx.get(url, params={"prefix": prefix, "limit": 2}, headers=bearer(server.admin_token)).json()
    assert [e["episode_id"] for e in first["episodes"]] == ids[:2] and first["next"] is not None
    assert first["episodes"][1] | {"created_at": None, "seq": None, "episode_return": None} == {
        "episode_id": ids[1], "robot_id": robot[0], "env_id": "Hopper-v5", "policy_id": "test", "seed": 7,
        "transitions": 4, "cost_return": 0.0, "created_at": None, "seq": None, "episode_return": None}
    with Admin(server.url, server.admin_token) as admin:
        listed = list(admin.episodes(prefix, page=2))  # pages of 2: 2 + 2 + 1, the last with no next
    assert [e["episode_id"] for e in listed] == ids
    assert [e["transitions"] for e in listed] == [3, 4, 5, 6, 7]

    for bad in ({"prefix": "a%"}, {"prefix": "x" * 129}, {"limit": 0}, {"after": -1}):
        assert httpx.get(url, params=bad, headers=bearer(server.admin_token)).status_code == 422, bad
