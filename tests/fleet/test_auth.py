"""Tokens: every endpoint but /healthz needs one; robots act only as themselves; tokens are stored hashed."""

import os
import stat

import httpx
import pytest
from fleetlib import HOPPER_SPEC, ThreadServer, bearer, binary, episode_body, store_state

from armfarm.fleet.server import ServerConfig


def operations(server):
    """Every (method, concrete path) of the API, from its OpenAPI description."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    values = {"robot_id": "someone", "episode_id": "ep-1", "index": "0", "version": "1"}
    for path, methods in spec["paths"].items():
        for method in methods:
            yield method.upper(), path.format(**values)


def test_health_and_api_description_need_no_token(server):
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    assert "/v1/robots" in httpx.get(f"{server.url}/openapi.json").json()["paths"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic YWRtaW46eA=="},
                                     bearer("not-a-token"), bearer("0123456789abcdef.forged-secret")],
                         ids=["missing", "empty", "basic", "garbage", "forged"])
def test_every_endpoint_refuses_missing_or_wrong_tokens(server, headers):
    state = store_state(server.store)
    checked = 0
    for method, path in operations(server):
        if path == "/healthz":
            continue
        response = httpx.request(method, f"{server.url}{path}", headers=headers, content=episode_body())
        assert response.status_code == 401, (method, path, response.text)
        assert "token" in response.json()["detail"] and response.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked == 15
    assert store_state(server.store) == state


def test_robot_tokens_cannot_do_admin_work(server, robot):
    headers = bearer(robot[1])
    for method, path, kwargs in [
        ("POST", "/v1/robots", {"json": {"robot_id": "x", "env_id": "Hopper-v5", "spec": HOPPER_SPEC.to_dict()}}),
        ("GET", "/v1/robots", {}),
        ("GET", "/v1/episodes", {}),
        ("POST", f"/v1/robots/{robot[0]}/token", {}),
        ("POST", "/v1/policies", {"content": b"x"}),
    ]:
        response = httpx.request(method, f"{server.url}{path}", headers=headers, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        assert robot[0] in response.json()["detail"] and "admin token" in response.json()["detail"]


def test_a_robot_acts_only_as_itself(server, robot):
    other = server.register()
    state = store_state(server.store)
    for method, path in [("POST", f"/v1/robots/{other[0]}/episodes"),
                         ("PUT", f"/v1/robots/{other[0]}/episodes/ep-1/chunks/0"),
                         ("GET", f"/v1/robots/{other[0]}")]:
        response = httpx.request(method, f"{server.url}{path}", headers=binary(robot[1]), content=episode_body())
        assert response.status_code == 403, response.text
        assert robot[0] in response.json()["detail"] and other[0] in response.json()["detail"]
    response = httpx.post(f"{server.url}/v1/robots/{robot[0]}/episodes", headers=binary(server.admin_token),
                          content=episode_body())
    assert response.status_code == 403 and "not the admin token" in response.json()["detail"]
    assert store_state(server.store) == state
    assert httpx.get(f"{server.url}/v1/robots/{robot[0]}", headers=bearer(robot[1])).json()["env_id"] == "Hopper-v5"


def test_rotating_a_token_revokes_the_old_one(server, robot):
    robot_id, old = robot
    response = httpx.post(f"{server.url}/v1/robots/{robot_id}/token", headers=bearer(server.admin_token))
    new = response.json()["token"]
    assert response.status_code == 200 and new != old
    upload = f"{server.url}/v1/robots/{robot_id}/episodes"
    assert httpx.post(upload, headers=binary(old), content=episode_body()).status_code == 401
    assert httpx.post(upload, headers=binary(new), content=episode_body()).status_code == 200
    missing = httpx.post(f"{server.url}/v1/robots/nobody/token", headers=bearer(server.admin_token))
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]


def test_tokens_are_stored_hashed(server, robot):
    from armfarm.fleet.auth import token_hash

    with server.store.index.transaction() as cur:
        rows = cur.execute("SELECT robot_id, token_id, token_hash FROM fleet_robots").fetchall()
    dump = repr(rows)
    assert robot[1] not in dump and robot[1].split(".")[1] not in dump
    assert (robot[0], robot[1].split(".")[0], token_hash(robot[1])) in rows
    assert server.admin_token not in dump


def test_admin_token_file(tmp_path, backend):
    store = tmp_path / "store"
    with ThreadServer(ServerConfig(store=store, index_url=backend)) as first:
        token = (store / "admin.token").read_text().strip()
        assert stat.S_IMODE(os.stat(store / "admin.token").st_mode) == 0o600 and len(token) >= 32
        assert httpx.get(f"{first.url}/v1/robots", headers=bearer(token)).status_code == 200
    with ThreadServer(ServerConfig(store=store)) as again:  # a restart keeps the token
        assert again.admin_token == token
    named = tmp_path / "secrets" / "fleet-admin"
    named.parent.mkdir()
    named.write_text("a-token-chosen-by-the-operator\n")
    with ThreadServer(ServerConfig(store=store, admin_token_file=named)) as chosen:
        assert httpx.get(f"{chosen.url}/v1/robots", headers=bearer("a-token-chosen-by-the-operator")).status_code == 200
        assert httpx.get(f"{chosen.url}/v1/robots", headers=bearer(token)).status_code == 401
    named.write_text("short\n")
    with pytest.raises(ValueError, match="at least 16 characters"):
        ThreadServer(ServerConfig(store=store, admin_token_file=named))
