"""The attack review's findings, each now refused cheaply (seconds to refuse, memory growth bounded)."""

import socket
import subprocess
import threading
import time
import zipfile

import httpx
import numpy as np
import psutil
import pytest
from fleetlib import (
    HOPPER_SPEC,
    ThreadServer,
    bearer,
    binary,
    cache_policy,
    episode_arrays,
    episode_body,
    episode_meta,
    store_state,
)

from armfarm.data import ArraySpec, StoreSpec, check_store
from armfarm.fleet.client import ClientConfig, FleetClient
from armfarm.fleet.errors import FleetError
from armfarm.fleet.ingest import GroupCommitter
from armfarm.fleet.payload import Chunk, decode, encode, split
from armfarm.fleet.server import ServerConfig
from armfarm.fleet.signing import Signer, verify
from armfarm.policy import NumpyPolicy, PolicyFormatError

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def hardened(tmp_path):
    config = ServerConfig(store=tmp_path / "store", max_episode_steps=1000, rate_limit=0, body_read_timeout_s=1.0,
                          max_in_flight=4, unauthenticated_rate=1.0, unauthenticated_burst=5,
                          max_staged_bytes=3 * 4096, max_staged_files=50)
    with ThreadServer(config) as running:
        yield running


def rss() -> int:
    return psutil.Process().memory_info().rss


def raw_request(url: str, head: str, body: bytes = b"", wait_s: float = 5.0) -> bytes:
    """Send a request's head and ``body`` on a raw socket (the body may be shorter than declared) and
    return what the server answers within ``wait_s``."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        try:
            return s.recv(65536)
        except TimeoutError:
            return b""


# -- high ----------------------------------------------------------------------------------------------


def test_a_final_chunk_at_a_huge_index_is_refused_before_it_costs_memory(hardened):
    robot_id, token = hardened.register()
    url = f"{hardened.url}/v1/robots/{robot_id}/episodes/bomb/chunks"
    chunk = split(decode(episode_body("bomb", T=2)), 1)[1]  # a 1-step final chunk
    before, started = rss(), time.perf_counter()
    for index in (2**31 - 1, 1000, 10**6):
        response = httpx.put(f"{url}/{index}", content=chunk, headers=binary(token))
        assert response.status_code in (413, 422) and "at most 1000" in response.text
    assert time.perf_counter() - started < 5 and rss() - before < 50 << 20
    # a legal index far ahead: the reply names at most 100 missing chunks
    far = decode(split(decode(episode_body("far", T=2)), 1)[1])
    body = encode(far.arrays, far.meta, Chunk(999, True))
    response = httpx.put(f"{hardened.url}/v1/robots/{robot_id}/episodes/far/chunks/999", content=body,
                         headers=binary(token))
    assert response.status_code == 202 and response.json()["missing"] == list(range(100))


def test_no_token_no_body_read_and_json_bodies_are_capped(hardened):
    # headers declare 900 KB of JSON but send 10 bytes: without a token the answer comes at once
    head = ("POST /v1/robots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 900000\r\n")
    started = time.perf_counter()
    answer = raw_request(hardened.url, head, b'{"robot_i')
    assert answer.startswith(b"HTTP/1.1 401") and time.perf_counter() - started < 0.9  # before the 1 s read timeout
    big = {"robot_id": "big", "env_id": "x" * (2 << 20), "spec": HOPPER_SPEC.to_dict()}
    response = httpx.post(f"{hardened.url}/v1/robots", json=big, headers=bearer(hardened.admin_token))
    assert response.status_code == 413 and "JSON and form bodies" in response.json()["detail"]


# -- medium --------------------------------------------------------------------------------------------


def test_requests_in_flight_per_caller_are_bounded_and_stalled_bodies_time_out(hardened):
    robot_id, token = hardened.register()
    head = (f"POST /v1/robots/{robot_id}/episodes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n")
    host, port = hardened.url.removeprefix("http://").split(":")
    stalled = []
    for _ in range(4):  # four uploads that never finish their bodies
        s = socket.create_connection((host, int(port)))
        s.sendall(head.encode() + b"\r\n" + b"x" * 10)
        stalled.append(s)
    time.sleep(0.3)
    refused = httpx.post(f"{hardened.url}/v1/robots/{robot_id}/episodes", content=episode_body(), headers=binary(token))
    assert refused.status_code == 429 and "in flight" in refused.json()["detail"]
    for s in stalled:  # each stalled body is dropped with 408 after the read timeout
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 408")
        s.close()
    assert httpx.post(f"{hardened.url}/v1/robots/{robot_id}/episodes", content=episode_body(),
                      headers=binary(token)).status_code == 200


def test_the_commit_queue_is_bounded():
    committer = GroupCommitter(store=None, max_queued=2)  # not started: nothing drains the queue
    committer.submit(object())
    committer.submit(object())
    with pytest.raises(FleetError) as refused:
        committer.submit(object())
    assert refused.value.status == 503 and "Retry-After" in refused.value.headers


def test_the_staging_quota_holds_under_concurrent_chunks(hardened):
    robot_id, token = hardened.register()
    url = f"{hardened.url}/v1/robots/{robot_id}/episodes"
    codes = []

    def put(i: int) -> None:
        chunk = split(decode(episode_body(f"c{i}", T=4)), 2)[0]
        codes.append(httpx.put(f"{url}/c{i}/chunks/0", content=chunk, headers=binary(token)).status_code)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    staged = list((hardened.store.path / "fleet" / "uploads" / robot_id).glob("*/*.chunk"))
    assert codes.count(202) == 3 == len(staged) and codes.count(413) == 9 - codes.count(429)


def test_abandoned_chunks_expire_while_the_server_runs(tmp_path):
    config = ServerConfig(store=tmp_path / "store", staging_ttl_s=0.5, staging_sweep_s=0.2)
    with ThreadServer(config) as server:
        robot_id, token = server.register()
        chunk = split(decode(episode_body("left", T=4)), 2)[0]
        assert httpx.put(f"{server.url}/v1/robots/{robot_id}/episodes/left/chunks/0", content=chunk,
                         headers=binary(token)).status_code == 202
        staged = server.store.path / "fleet" / "uploads" / robot_id / "left"
        assert staged.exists()
        deadline = time.monotonic() + 10
        while staged.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not staged.exists()


@pytest.fixture
def tiny_disk(tmp_path, tmpfs):
    return tmpfs(tmp_path / "disk", "3m")


def test_a_full_disk_gives_503_with_retry_after_and_robots_upload_once_space_returns(tiny_disk, tmp_path):
    config = ServerConfig(store=tiny_disk / "store", rate_limit=0, min_free_bytes=256 << 10)
    with ThreadServer(config) as server:
        robot_id, token = server.register()
        filler = tiny_disk / "filler"
        free = subprocess.run(["df", "-B1", "--output=avail", str(tiny_disk)], capture_output=True, text=True)
        filler.write_bytes(b"\0" * (int(free.stdout.split()[-1]) - (150 << 10)))
        assert httpx.get(f"{server.url}/healthz").status_code == 503  # below the free-space floor
        acked = []
        with FleetClient(ClientConfig(server=server.url, token=token, robot_id=robot_id, env_id="Hopper-v5",
                                      spool_dir=tmp_path / "spool", backoff_s=0.05, backoff_max_s=0.3,
                                      policy_poll_s=0.2), on_ack=acked.append) as client:
            for _ in range(30):
                client.record_episode()
            time.sleep(2)
            assert client.spool.pending() and client.last_error and "503" in client.last_error
            response = httpx.post(f"{server.url}/v1/robots/{robot_id}/episodes", content=episode_body(T=400),
                                  headers=binary(token))
            assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
            assert check_store(server.store.path).ok
            assert not list((server.store.path / "tmp").iterdir())  # no partial shard left behind
            filler.unlink()  # space returns: the spool drains
            assert client.drain(timeout=60)
        stored = {r.episode_id for r in server.store.snapshot()}
        assert {a["episode_id"] for a in acked} <= stored and len(acked) >= 30
        assert check_store(server.store.path).ok
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_the_client_keeps_its_token_on_the_servers_origin_and_caps_downloads(hardened, tmp_path):
    robot_id, token = hardened.register()
    config = ClientConfig(server=hardened.url, token=token, robot_id=robot_id, env_id="Hopper-v5",
                          spool_dir=tmp_path / "spool", policy_poll_s=3600, max_policy_bytes=1000)
    with FleetClient(config) as client:
        with pytest.raises(ValueError, match="not on the server's origin"):
            client._download("http://attacker.example:8000/v1/policies/1/weights", 1)
        rng = np.random.default_rng(0)
        NumpyPolicy([rng.normal(size=(11, 64)), rng.normal(size=(64, 3))], [np.zeros(64), np.zeros(3)]).save(
            tmp_path / "p.npz")
        httpx.post(f"{hardened.url}/v1/policies", content=(tmp_path / "p.npz").read_bytes(),
                   headers=binary(hardened.admin_token)).raise_for_status()
        with pytest.raises(ValueError, match="exceed 1000 bytes"):
            client._poll_policy()
    with pytest.raises(ValueError, match="plain HTTP to a host off loopback"):
        FleetClient(ClientConfig(server="http://10.9.8.7:8000", token="t", robot_id="r", env_id="Hopper-v5",
                                 spool_dir=tmp_path / "s2"))


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def publish_policy(server, path, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    NumpyPolicy([rng.normal(size=(11, 8)), rng.normal(size=(8, 3))], [np.zeros(8), np.zeros(3)]).save(path)
    response = httpx.post(f"{server.url}/v1/policies", content=path.read_bytes(), headers=binary(server.admin_token))
    response.raise_for_status()
    return response.json()


def test_robots_run_only_policies_their_own_server_signed(hardened, tmp_path):
    answer = httpx.post(f"{hardened.url}/v1/robots", headers=bearer(hardened.admin_token),
                        json={"robot_id": "arm-1", "env_id": "Hopper-v5", "spec": HOPPER_SPEC.to_dict()}).json()
    pinned = answer["signing_key"]
    assert pinned == hardened.fleet.registry.signing_key and pinned.startswith("ed25519:")
    assert (hardened.store.path / "fleet" / "signing.key").stat().st_mode & 0o777 == 0o600
    version = publish_policy(hardened, tmp_path / "ours.npz")
    verify(pinned, version["version"], version["sha256"], version["signature"])
    with pytest.raises(ValueError, match="does not verify"):  # the same file offered under another number
        verify(pinned, version["version"] + 1, version["sha256"], version["signature"])

    # an impostor (DNS hijack, a wrong --server) with its own key publishes a well-formed policy
    with ThreadServer(ServerConfig(store=tmp_path / "impostor", rate_limit=0)) as impostor:
        robot_id, token = impostor.register("arm-1")
        foreign = publish_policy(impostor, tmp_path / "theirs.npz", seed=1)
        config = ClientConfig(server=impostor.url, token=token, robot_id=robot_id, env_id="Hopper-v5",
                              spool_dir=tmp_path / "hijacked", max_steps=5, policy_poll_s=0.1, signing_key=pinned)
        with FleetClient(config) as client:
            wait_until(lambda: foreign["version"] in client.skipped_versions)
            client.record_episode()
            assert client.policy_version is None and client.behavior.policy_id == "random"
            assert "does not verify with the pinned key" in client.skipped_versions[foreign["version"]]
            assert not list((tmp_path / "hijacked" / "policy").glob("*.npz"))  # never even downloaded

    # the robot's own server: adopted; the file tampered in the spool: refused on the next start
    spool = tmp_path / "spool"
    config = ClientConfig(server=hardened.url, token=answer["token"], robot_id="arm-1", env_id="Hopper-v5",
                          spool_dir=spool, max_steps=5, policy_poll_s=0.1, signing_key=pinned)
    with FleetClient(config) as client:
        wait_until(lambda: client._offered is not None)
        client.record_episode()
        assert client.policy_version == version["version"]
    cached = spool / "policy" / f"{version['sha256']}.npz"
    publish_policy(hardened, tmp_path / "swap.npz", seed=2)  # a valid policy file, but not this version's
    cached.write_bytes((tmp_path / "swap.npz").read_bytes())
    config.server = "http://127.0.0.1:9"  # offline: only the cache could act
    with FleetClient(config) as client:
        client.record_episode()
        assert client.policy_version is None and "does not match" in client.skipped_versions[version["version"]]


def test_a_robot_without_a_key_pins_its_servers_on_first_contact(hardened, tmp_path):
    robot_id, token = hardened.register()
    publish_policy(hardened, tmp_path / "p.npz")
    config = ClientConfig(server=hardened.url, token=token, robot_id=robot_id, env_id="Hopper-v5",
                          spool_dir=tmp_path / "spool", max_steps=5, policy_poll_s=0.1)
    with FleetClient(config) as client:
        wait_until(lambda: client._offered is not None)
        client.record_episode()
        assert client.policy_version is not None
    pinned = (tmp_path / "spool" / "policy" / "server.pub").read_text().strip()
    assert pinned == hardened.fleet.registry.signing_key
    other = Signer(tmp_path / "other.key")  # the next start keeps the pinned key, not whatever it is offered
    cache_policy(tmp_path / "spool", hardened, 9, (tmp_path / "p.npz").read_bytes(), signer=other)
    config.server = "http://127.0.0.1:9"
    with FleetClient(config) as client:
        client.record_episode()
        assert client.policy_version is None and "does not verify" in client.skipped_versions[9]


def test_versions_published_before_signing_are_signed_when_the_server_starts(tmp_path):
    with ThreadServer(ServerConfig(store=tmp_path / "store", rate_limit=0)) as server:
        published = publish_policy(server, tmp_path / "p.npz")
        key = server.fleet.registry.signing_key
    with server.store.index.transaction(write=True) as cur:  # the table as an older release made it
        cur.execute("ALTER TABLE fleet_policies DROP COLUMN signature")
    with ThreadServer(ServerConfig(store=tmp_path / "store", rate_limit=0)) as server:
        latest = httpx.get(f"{server.url}/v1/policies/latest", headers=bearer(server.admin_token)).json()
        assert latest["sha256"] == published["sha256"] and server.fleet.registry.signing_key == key
        verify(key, latest["version"], latest["sha256"], latest["signature"])


# -- low to medium -------------------------------------------------------------------------------------


def nested_header_policy(path, depth: int) -> None:
    np.savez(path, header_json=np.frombuffer(("[" * depth + "]" * depth).encode(), np.uint8))


def test_a_policy_header_that_would_recurse_forever_is_refused_and_robots_skip_it(tmp_path, hardened):
    nested_header_policy(tmp_path / "deep.npz", 30_000)  # 60 KB, under the size cap: json recurses
    with pytest.raises(PolicyFormatError, match="RecursionError"):
        NumpyPolicy.load(tmp_path / "deep.npz")
    nested_header_policy(tmp_path / "huge.npz", 100_000)  # 200 KB: over the cap
    with pytest.raises(PolicyFormatError, match="exceeds"):
        NumpyPolicy.load(tmp_path / "huge.npz")
    spool = tmp_path / "spool"  # as if its server had published it before the header cap existed
    cache_policy(spool, hardened, 5, (tmp_path / "deep.npz").read_bytes())
    robot_id, token = hardened.register()
    config = ClientConfig(server=hardened.url, token=token, robot_id=robot_id, env_id="Hopper-v5", spool_dir=spool,
                          max_steps=5, policy_poll_s=0.2, signing_key=hardened.fleet.registry.signing_key)
    with FleetClient(config) as client:  # restarts with the bad version cached: skips it, keeps moving
        client.record_episode()
        assert client.policy_version is None and 5 in client.skipped_versions
        assert client.drain(timeout=30)


def test_a_zip_bomb_policy_is_refused_before_it_inflates(tmp_path, hardened):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("weight_0.npy", "w", force_zip64=True) as member:
            zeros = b"\0" * (1 << 20)
            for _ in range(300):  # 300 MiB of zeros, a few hundred KB compressed
                member.write(zeros)
    assert bomb.stat().st_size < 2 << 20
    before, started = rss(), time.perf_counter()
    with pytest.raises(PolicyFormatError, match="inflate"):
        NumpyPolicy.load(bomb)
    response = httpx.post(f"{hardened.url}/v1/policies", content=bomb.read_bytes(),
                          headers=binary(hardened.admin_token))
    assert response.status_code == 422 and "inflate" in response.json()["detail"]
    assert time.perf_counter() - started < 5 and rss() - before < 100 << 20


def test_a_chunk_under_a_stored_id_with_other_content_is_a_conflict(hardened):
    robot_id, token = hardened.register()
    url = f"{hardened.url}/v1/robots/{robot_id}/episodes"
    chunks = split(decode(episode_body("twice", T=6, seed=1)), 3)
    for i, chunk in enumerate(chunks):
        response = httpx.put(f"{url}/twice/chunks/{i}", content=chunk, headers=binary(token))
    assert response.status_code == 200
    again = httpx.put(f"{url}/twice/chunks/0", content=chunks[0], headers=binary(token))
    assert again.status_code == 200  # a true retry still gets the ack
    other = split(decode(episode_body("twice", T=6, seed=2)), 3)
    for i in (0, 1):
        response = httpx.put(f"{url}/twice/chunks/{i}", content=other[i], headers=binary(token))
        assert response.status_code == 409 and "other content" in response.json()["detail"]


def test_poisoned_data_is_refused(hardened):
    robot_id, token = hardened.register()
    url = f"{hardened.url}/v1/robots/{robot_id}/episodes"
    state = store_state(hardened.store)
    rng = np.random.default_rng(0)

    def body(meta=None, **changes):
        arrays = {**episode_arrays(rng), **changes}
        return encode(arrays, meta or episode_meta())

    arrays = episode_arrays(rng)
    outside = arrays["actions"].copy()
    outside[2, 1] = 1.5  # registered bounds are [-1, 1]
    huge = arrays["observations"].copy()
    huge[1, 0] = 3e38
    cases = [
        (body(actions=outside), "outside the registered action bounds"),
        (body(observations=huge), "beyond"),
        (body(meta=episode_meta(policy_id="evil\x1b[2J")), "control characters"),
        (body(meta=episode_meta(episode_id="ep-1\n")), "must match"),
    ]
    for payload, message in cases:
        response = httpx.post(url, content=payload, headers=binary(token))
        assert response.status_code == 422 and message in response.json()["detail"], response.text
    inside = arrays["actions"].copy()
    inside[0, 0] = 1.0 + 5e-6  # within the documented tolerance
    assert httpx.post(url, content=body(actions=inside), headers=binary(token)).status_code == 200
    assert store_state(hardened.store)[0] == state[0] + 1  # only the good one


def test_a_spec_whose_element_count_overflows_int64_is_refused(hardened):
    spec = StoreSpec(ArraySpec((1 << 20, 1 << 20, 1 << 20), "float32"), ArraySpec((3,), "float32")).to_dict()
    response = httpx.post(f"{hardened.url}/v1/robots", json={"robot_id": "huge", "env_id": "x", "spec": spec},
                          headers=bearer(hardened.admin_token))
    assert response.status_code == 422 and "elements" in response.text


def test_admins_can_correct_a_bad_registration(hardened):
    wrong = StoreSpec(ArraySpec((5,), "float32"), ArraySpec((3,), "float32", [-1.0] * 3, [1.0] * 3))
    robot_id, token = hardened.register("typo", spec=wrong)  # binds the empty store to the wrong spaces
    assert hardened.store.spec == wrong
    with pytest.raises(AssertionError, match="differs from the store's"):
        hardened.register("arm-1")
    response = httpx.delete(f"{hardened.url}/v1/robots/{robot_id}", headers=bearer(token))
    assert response.status_code == 403  # only the admin
    response = httpx.delete(f"{hardened.url}/v1/robots/{robot_id}", headers=bearer(hardened.admin_token))
    assert response.status_code == 200 and response.json()["spec_released"] is True
    assert hardened.store.spec is None
    assert httpx.get(f"{hardened.url}/v1/robots/{robot_id}", headers=bearer(token)).status_code == 401
    arm, arm_token = hardened.register("arm-1")  # the right spaces bind now
    assert hardened.store.spec == HOPPER_SPEC
    httpx.post(f"{hardened.url}/v1/robots/{arm}/episodes", content=episode_body(T=4),
               headers=binary(arm_token)).raise_for_status()
    # once episodes are stored, removing the last robot keeps the spaces they were written with
    response = httpx.delete(f"{hardened.url}/v1/robots/{arm}", headers=bearer(hardened.admin_token))
    assert response.json()["spec_released"] is False and hardened.store.spec == HOPPER_SPEC
    assert len(hardened.store.snapshot()) == 1
    assert httpx.delete(f"{hardened.url}/v1/robots/{arm}", headers=bearer(hardened.admin_token)).status_code == 404


def test_smaller_items(hardened):
    # requests without a valid token are rate-limited per address (burst 5, then 429)
    codes = [httpx.get(f"{hardened.url}/v1/policies", headers=bearer("guess")).status_code for _ in range(8)]
    assert codes[:5] == [401] * 5 and codes[-1] == 429
    # robot ids differing only in case would share a directory on a case-insensitive filesystem
    hardened.register("Arm-1")
    response = httpx.post(f"{hardened.url}/v1/robots", headers=bearer(hardened.admin_token),
                          json={"robot_id": "arm-1", "env_id": "Hopper-v5", "spec": HOPPER_SPEC.to_dict()})
    assert response.status_code == 409 and "only in case" in response.json()["detail"]
    # Swagger UI would load from a CDN: off unless asked for; the description itself is served
    assert httpx.get(f"{hardened.url}/docs").status_code == 404
    assert httpx.get(f"{hardened.url}/openapi.json").status_code == 200
