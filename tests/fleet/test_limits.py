"""Configurable limits: request size and episode length (413), requests per token (429)."""

import httpx
import pytest
from fleetlib import ThreadServer, bearer, binary, episode_body, store_state

from armfarm.fleet.payload import decode, split
from armfarm.fleet.server import ServerConfig


@pytest.fixture(scope="module")
def small(backend, tmp_path_factory):
    config = ServerConfig(store=tmp_path_factory.mktemp("limits") / "store", index_url=backend,
                          max_request_bytes=4096, max_episode_steps=30, rate_limit=0,
                          max_staged_bytes=3 * 4096)  # counted in 4 KiB disk blocks: three chunks fit
    with ThreadServer(config) as running:
        yield running


def test_request_too_large(small):
    robot_id, token = small.register()
    url = f"{small.url}/v1/robots/{robot_id}/episodes"
    state = store_state(small.store)
    body = episode_body(T=80)
    assert len(body) > 4096
    declared = httpx.post(url, content=body, headers=binary(token))
    assert declared.status_code == 413 and "limit of 4096 bytes" in declared.json()["detail"]
    streamed = httpx.post(url, content=iter([body[:3000], body[3000:]]), headers=binary(token))  # no Content-Length
    assert streamed.status_code == 413 and "limit of 4096 bytes" in streamed.json()["detail"]
    assert store_state(small.store) == state
    assert httpx.post(url, content=episode_body(T=10), headers=binary(token)).status_code == 200


def test_episode_too_long(small):
    robot_id, token = small.register()
    url = f"{small.url}/v1/robots/{robot_id}/episodes"
    state = store_state(small.store)
    response = httpx.post(url, content=episode_body(T=31), headers=binary(token))
    assert response.status_code == 413 and "31 transitions exceed the server's limit of 30" in response.json()["detail"]
    chunks = split(decode(episode_body("long-one", T=40)), 20)
    assert httpx.put(f"{url}/long-one/chunks/0", content=chunks[0], headers=binary(token)).status_code == 202
    response = httpx.put(f"{url}/long-one/chunks/1", content=chunks[1], headers=binary(token))
    assert response.status_code == 413 and "hold 40 transitions, over the server's limit of 30" in response.json()["detail"]
    assert store_state(small.store) == state


def test_staged_chunks_have_a_quota(small):
    robot_id, token = small.register()
    url = f"{small.url}/v1/robots/{robot_id}/episodes"
    for i in range(10):
        chunk = split(decode(episode_body(f"partial-{i}", T=12)), 6)[0]
        response = httpx.put(f"{url}/partial-{i}/chunks/0", content=chunk, headers=binary(token))
        if response.status_code != 202:
            break
    assert response.status_code == 413 and "unfinished chunked uploads" in response.json()["detail"]
    assert i == 3


def test_rate_limit_per_token(backend, tmp_path):
    config = ServerConfig(store=tmp_path / "store", index_url=backend, rate_limit=0.5, rate_burst=3)
    with ThreadServer(config) as server:
        first, second = server.register(), server.register()  # the admin's own bucket pays for these
        url = f"{server.url}/v1/robots/{first[0]}"
        codes = [httpx.get(url, headers=bearer(first[1])).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = httpx.get(url, headers=bearer(first[1]))
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert first[0] in refused.json()["detail"] and "rate limit" in refused.json()["detail"]
        assert httpx.get(f"{server.url}/v1/robots/{second[0]}", headers=bearer(second[1])).status_code == 200
