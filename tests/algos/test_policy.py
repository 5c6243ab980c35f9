"""armfarm.policy.NumpyPolicy: NumPy-only inference, flattening, rescaling and the file format."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from armfarm.policy import NumpyPolicy, PolicyFormatError


def _policy(obs_dim=4, act_dim=2, seed=0, **kw):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(obs_dim, 8)), rng.normal(size=(8, 8)), rng.normal(size=(8, act_dim))]
    bs = [rng.normal(size=8), rng.normal(size=8), rng.normal(size=act_dim)]
    return NumpyPolicy(ws, bs, **kw)


def _reference(p, x):
    if p.obs_mean is not None:
        x = (x - p.obs_mean) / p.obs_std
    h = x
    for w, b in zip(p.weights[:-1], p.biases[:-1], strict=True):
        h = np.maximum(h @ w + b, 0)
    y = np.tanh(h @ p.weights[-1] + p.biases[-1])
    if p.action_low is not None:
        y = p.action_low + (y + 1) / 2 * (p.action_high - p.action_low)
    return y


def test_module_does_not_import_jax():
    code = "import sys, armfarm.policy; assert 'jax' not in sys.modules, 'armfarm.policy imported jax'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_forward_normalisation_and_rescaling():
    p = _policy(obs_mean=[1, 2, 3, 4], obs_std=[1, 2, 0.5, 1], action_low=[0, -10], action_high=[1, 10])
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32) * 5
    out = p(x)
    assert out.shape == (20, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(p, x), rtol=1e-5, atol=1e-5)
    assert np.all(out[:, 0] >= 0) and np.all(out[:, 0] <= 1) and np.all(np.abs(out[:, 1]) <= 10)
    np.testing.assert_allclose(p(x[0]), out[0], rtol=1e-5, atol=1e-6)  # single observation
    assert p(x[0]).shape == (2,)
    assert p(x[:1]).shape == (1, 2)  # a batch of one stays a batch
    # without normalisation or bounds: plain tanh MLP in [-1, 1]
    q = _policy()
    assert np.all(np.abs(q(x * 100)) <= 1)


def test_dict_observations_are_flattened_in_key_order():
    p = _policy(obs_keys=["a_pos", "b_vel"])
    pos, vel = np.array([0.1, 0.2, 0.3]), np.array([0.4])
    expected = p(np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(p({"b_vel": vel, "a_pos": pos, "extra": np.zeros(9)}), expected, rtol=1e-6)
    batch = p({"a_pos": np.stack([pos, pos]), "b_vel": np.stack([vel, vel])})
    assert batch.shape == (2, 2)
    np.testing.assert_allclose(batch[1], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="b_vel"):
        p({"a_pos": pos})
    with pytest.raises(ValueError, match="obs_keys"):
        _policy()({"a_pos": pos, "b_vel": vel})


def test_shape_errors_are_clear():
    p = _policy()
    with pytest.raises(ValueError, match="expects 4 features"):
        p(np.zeros(5))
    with pytest.raises(ValueError, match="expects 4 features"):
        p(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="weights\\[1\\]"):
        NumpyPolicy([np.zeros((4, 8)), np.zeros((7, 2))], [np.zeros(8), np.zeros(2)])
    with pytest.raises(ValueError, match="both"):
        _policy(obs_mean=np.zeros(4))


def test_save_load_round_trip(tmp_path):
    p = _policy(obs_mean=np.arange(4), obs_std=np.ones(4) * 2, action_low=[-2, 0], action_high=[2, 3],
                obs_keys=["x", "y"], metadata={"algo": "iql", "step": 12, "armfarm_version": "0.1.0"})
    path = p.save(tmp_path / "sub" / "policy.npz")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    q = NumpyPolicy.load(path)
    x = np.random.default_rng(0).normal(size=(7, 4))
    np.testing.assert_array_equal(q(x), p(x))
    assert q.obs_keys == ["x", "y"] and q.metadata == p.metadata
    # plain arrays only: loadable with allow_pickle=False, header is JSON
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["header_json"].tobytes())
    assert header["format"] == "armfarm-numpy-policy" and header["format_version"] == 1
    # a policy without normalisation / bounds round-trips too
    r = _policy()
    np.testing.assert_array_equal(NumpyPolicy.load(r.save(tmp_path / "r.npz"))(x), r(x))


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        NumpyPolicy.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(PolicyFormatError, match="junk.npz"):
        NumpyPolicy.load(junk)
    good = _policy().save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(PolicyFormatError):
        NumpyPolicy.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(PolicyFormatError, match="unexpected members|header_json"):
        NumpyPolicy.load(other)
    # a future format version is refused with both versions named
    with zipfile.ZipFile(good) as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    header = json.loads(arrays["header_json"].tobytes())
    header["format_version"] = 99
    arrays["header_json"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(PolicyFormatError, match="version 99"):
        NumpyPolicy.load(future)
    del arrays["weight_1"]
    header["format_version"] = 1
    arrays["header_json"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(PolicyFormatError, match="weight_1"):
        NumpyPolicy.load(tmp_path / "partial.npz")


def test_a_policy_carries_its_shields_files_byte_for_byte(tmp_path):
    files = {"shield.json": b'{"format": "armfarm-shield"}', "weights.npz": bytes(range(256)) * 3}
    p = _policy(shield_files=files)
    q = NumpyPolicy.load(p.save(tmp_path / "p.npz"))
    assert q.shield_files == files
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(q(x), p(x))  # the shield's files change nothing about the network
    assert NumpyPolicy.load(_policy().save(tmp_path / "plain.npz")).shield_files is None
    with pytest.raises(ValueError, match="shield.json"):
        _policy(shield_files={"weights.npz": b""})  # a shield always has its config
    with pytest.raises(ValueError, match="only files among"):
        _policy(shield_files={"shield.json": b"{}", "../../etc/passwd": b""})
    with zipfile.ZipFile(tmp_path / "p.npz") as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    arrays["shield__weights.npz"] = np.zeros(3, np.float32)  # not a file's bytes
    np.savez(tmp_path / "bent.npz", **arrays)
    with pytest.raises(PolicyFormatError, match="shield__weights.npz.*uint8"):
        NumpyPolicy.load(tmp_path / "bent.npz")


def test_a_subgoal_stage_round_trips_and_inconsistent_ones_are_refused(tmp_path):
    from armfarm.policy import SubgoalStage

    rng = np.random.default_rng(0)
    stage = SubgoalStage([rng.normal(size=(4, 8)), rng.normal(size=(8, 3))], [np.zeros(8), np.zeros(3)],
                         mask=np.array([1, 1, 0, 0]), keep=2)
    policy = NumpyPolicy([rng.normal(size=(5, 2))], [np.zeros(2)], subgoal=stage)
    assert policy.obs_dim == 4
    x = rng.normal(size=(6, 4)).astype(np.float32)
    z = np.maximum(x @ stage.weights[0], 0) @ stage.weights[1]
    z = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(3)
    np.testing.assert_allclose(policy(x), np.tanh(np.concatenate([x[:, :2], z], 1) @ policy.weights[0]), atol=1e-5)
    loaded = NumpyPolicy.load(policy.save(tmp_path / "h.npz"))
    np.testing.assert_array_equal(loaded(x), policy(x))
    assert loaded.subgoal.keep == 2 and loaded.subgoal.mask.tolist() == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="subgoal stage gives"):
        NumpyPolicy([rng.normal(size=(4, 2))], [np.zeros(2)], subgoal=stage)
    with pytest.raises(ValueError, match="mask"):
        SubgoalStage(stage.weights, stage.biases, mask=np.ones(3), keep=2)
