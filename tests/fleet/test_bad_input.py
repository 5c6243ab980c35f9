"""Bad input: every case gets a 4xx whose message says what was wrong, and nothing is stored."""

import json

import httpx
import numpy as np
import pytest
from fleetlib import HOPPER_SPEC, bearer, binary, episode_arrays, episode_body, episode_meta, store_state

from armfarm.fleet.payload import encode


def arrays(**changes):
    out = episode_arrays(np.random.default_rng(0), T=6)
    out.update(changes)
    return out


def nan_at(name, row, value=np.nan):
    a = arrays()[name].copy()
    a[row] = value
    return arrays(**{name: a})


# (case, arrays, meta changes, status, words the message must contain)
EPISODE_CASES = [
    ("nan observation", nan_at("observations", 3), {}, 422, ["observations", "NaN or inf", "row 3"]),
    ("inf reward", nan_at("rewards", 2, np.inf), {}, 422, ["rewards", "NaN or inf"]),
    ("observation shape", arrays(observations=np.zeros((7, 12), np.float32)), {}, 422,
     ["observations", "per-step shape (12,)", "registered (11,)"]),
    ("action dtype", arrays(actions=np.zeros((6, 3), np.float64)), {}, 422,
     ["actions", "float64", "registered float32"]),
    ("reward dtype", arrays(rewards=np.zeros(6, np.float64)), {}, 422, ["rewards", "float32"]),
    ("dict observations", {**{k: v for k, v in arrays().items() if k != "observations"},
                           "observations.a": np.zeros((7, 11), np.float32)}, {}, 422, ["observation arrays"]),
    ("row counts", arrays(observations=np.zeros((6, 11), np.float32)), {}, 422, ["observations", "6 rows"]),
    ("empty episode", arrays(observations=np.zeros((1, 11), np.float32), actions=np.zeros((0, 3), np.float32),
                             rewards=np.zeros(0, np.float32), terminated=np.zeros(0, bool),
                             truncated=np.zeros(0, bool)), {}, 422, ["no transitions"]),
    ("flag mid-episode", arrays(terminated=np.array([0, 1, 0, 0, 0, 1], bool)), {}, 422, ["terminated", "before the last"]),
    ("unknown meta field", arrays(), {"collector_id": "someone-else"}, 422, ["meta", "unknown field", "collector_id"]),
    ("bad episode id", arrays(), {"episode_id": "../../etc"}, 422, ["meta.episode_id"]),
    ("naive time", arrays(), {"created_at": "2024-05-01T12:00:00"}, 422, ["meta.created_at", "time zone"]),
    ("other env", arrays(), {"env_id": "Walker2d-v5"}, 422, ["meta.env_id", "Walker2d-v5"]),
    ("bool seed", arrays(), {"seed": True}, 422, ["meta.seed"]),
]


@pytest.mark.parametrize("case, data, meta, status, words", EPISODE_CASES, ids=[c[0] for c in EPISODE_CASES])
def test_bad_episodes(server, robot, case, data, meta, status, words):
    state = store_state(server.store)
    body = encode(data, episode_meta(**meta))
    response = httpx.post(f"{server.url}/v1/robots/{robot[0]}/episodes", content=body, headers=binary(robot[1]))
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    assert robot[0] in detail
    assert store_state(server.store) == state


def raw_body(header: bytes, data: bytes = b"") -> bytes:
    return b"ARMFEP1\n" + len(header).to_bytes(4, "little") + header + data


BODY_CASES = [
    ("empty body", b"", ["too short"]),
    ("not a payload", b"GET / HTTP/1.1\r\n\r\n", ["not an armfarm episode payload"]),
    ("truncated", episode_body()[:-5], ["remain in the body"]),
    ("trailing bytes", episode_body() + b"\0", ["after the last array"]),
    ("bad header json", raw_body(b"{not json"), ["header", "not valid UTF-8 JSON"]),
    ("NaN in header", raw_body(b'{"meta": {"seed": NaN}, "arrays": []}'), ["NaN"]),
    ("unknown header field", raw_body(json.dumps({"meta": {}, "arrays": [], "extra": 1}).encode()),
     ["unknown field", "extra"]),
    ("bad dtype", raw_body(json.dumps({"meta": episode_meta(), "arrays": [
        {"name": "actions", "dtype": "object", "shape": [1]}]}).encode()), ["dtype 'object'"]),
]


@pytest.mark.parametrize("case, body, words", BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_malformed_bodies(server, robot, case, body, words):
    state = store_state(server.store)
    response = httpx.post(f"{server.url}/v1/robots/{robot[0]}/episodes", content=body, headers=binary(robot[1]))
    assert response.status_code == 422, response.text
    assert all(word in response.json()["detail"] for word in words), response.json()
    assert store_state(server.store) == state


def registration(**changes):
    body = {"robot_id": "new-robot", "env_id": "Hopper-v5", "spec": HOPPER_SPEC.to_dict()}
    body.update(changes)
    return json.dumps(body)


REGISTER_CASES = [
    ("malformed json", '{"robot_id": ', 422, ["JSON"]),
    ("not an object", "[1, 2]", 422, ["body"]),
    ("unknown field", registration(token="mine"), 422, ["token", "Extra inputs"]),
    ("missing field", json.dumps({"robot_id": "x", "env_id": "Hopper-v5"}), 422, ["spec", "Field required"]),
    ("bad robot id", registration(robot_id="../x"), 422, ["robot_id"]),
    ("NaN bound", registration(spec={"observation": {"shape": [11], "dtype": "float32"},
                                     "action": {"shape": [3], "dtype": "float32", "low": [-1, -1, "NaN"],
                                                "high": [1, 1, 1]}}).replace('"NaN"', "NaN"), 422, ["finite"]),
    ("unknown dtype", registration(spec={"observation": {"shape": [11], "dtype": "complex64"},
                                         "action": {"shape": [3], "dtype": "float32"}}), 422, ["dtype"]),
    ("other spaces", registration(spec={"observation": {"shape": [17], "dtype": "float32"},
                                        "action": {"shape": [3], "dtype": "float32"}}), 409,
     ["new-robot", "observations", "(17,)"]),
]


@pytest.mark.parametrize("case, body, status, words", REGISTER_CASES, ids=[c[0] for c in REGISTER_CASES])
def test_bad_registrations(server, robot, case, body, status, words):
    robots = httpx.get(f"{server.url}/v1/robots", headers=bearer(server.admin_token)).json()
    response = httpx.post(f"{server.url}/v1/robots", content=body,
                          headers={**bearer(server.admin_token), "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert all(word in response.json()["detail"] for word in words), response.json()
    assert httpx.get(f"{server.url}/v1/robots", headers=bearer(server.admin_token)).json() == robots
    assert server.store.spec == HOPPER_SPEC


def test_registering_twice_is_a_conflict(server, robot):
    response = httpx.post(f"{server.url}/v1/robots", headers=bearer(server.admin_token),
                          json={"robot_id": robot[0], "env_id": "Hopper-v5", "spec": HOPPER_SPEC.to_dict()})
    assert response.status_code == 409 and "already registered" in response.json()["detail"]


def test_bad_policies(server, robot, tmp_path):  # a registered robot gives the store its spec
    from armfarm.policy import NumpyPolicy

    def publish(data):
        return httpx.post(f"{server.url}/v1/policies", content=data, headers=binary(server.admin_token))

    before = httpx.get(f"{server.url}/v1/policies", headers=bearer(server.admin_token)).json()
    response = publish(b"not a zip file")
    assert response.status_code == 422 and "not an armfarm NumPy policy" in response.json()["detail"]
    rng = np.random.default_rng(0)
    NumpyPolicy([rng.normal(size=(5, 3))], [np.zeros(3)]).save(tmp_path / "small.npz")
    response = publish((tmp_path / "small.npz").read_bytes())
    assert response.status_code == 422 and "5 observation features" in response.json()["detail"]
    NumpyPolicy([rng.normal(size=(11, 2))], [np.zeros(2)]).save(tmp_path / "narrow.npz")
    response = publish((tmp_path / "narrow.npz").read_bytes())
    assert response.status_code == 422 and "outputs 2 actions, but the fleet's robots take 3" in response.json()["detail"]
    assert httpx.get(f"{server.url}/v1/policies", headers=bearer(server.admin_token)).json() == before
