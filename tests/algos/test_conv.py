"""Conv encoders: the NumPy pass a robot runs equals the JAX pass the learner trains, layer lists are
checked, and DrQ's random shift moves images as specified and nothing else."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.core.discrete import prepare
from armfarm.encoders import check_layers, encode
from armfarm.nets.conv import (
    as_numpy,
    conv_im2col,
    default_shift_pad,
    encoder_apply,
    encoder_layers,
    init_encoder,
    random_shift,
)
from armfarm.policy import EncoderStage, NumpyPolicy, PolicyFormatError


@pytest.mark.parametrize("name,norm", [("drq", "group"), ("impala", "group"), ("impala", "layer"), ("impala", "none")])
@pytest.mark.parametrize("shape", [(16, 16, 3), (10, 10, 4), (32, 24, 1)])
def test_numpy_encoder_matches_jax(name, norm, shape):
    layers = encoder_layers(name, 8, norm)
    params, features = init_encoder(0, layers, shape)
    x = np.random.default_rng(1).integers(0, 256, (6, *shape), dtype=np.uint8)
    ours = encode(layers, as_numpy(params), x)
    theirs = np.asarray(jax.jit(lambda p, x: encoder_apply(layers, p, x))(params, x))
    assert ours.shape == theirs.shape == (6, features)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(theirs).max()))


@pytest.mark.parametrize("stride,size", [(1, 7), (2, 7), (2, 8), (3, 10)])
def test_im2col_convolution_equals_xla_convolution(stride, size):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, size, size, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 5)), jnp.float32)
    ours = conv_im2col(x, w, stride)
    theirs = jax.lax.conv_general_dilated(x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda w: jnp.sum(conv_im2col(x, w, stride) ** 2))(w)
    ref = jax.grad(lambda w: jnp.sum(jax.lax.conv_general_dilated(
        x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) ** 2))(w)
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-4)


def test_layer_lists_are_checked():
    with pytest.raises(ValueError, match="unknown op 'softmax'"):
        check_layers([{"op": "softmax"}], [{}])
    with pytest.raises(ValueError, match="without a matching 'add'"):
        check_layers([{"op": "push"}], [{}])
    with pytest.raises(ValueError, match="needs settings"):
        check_layers([{"op": "conv"}], [{"w": 0, "b": 0}])
    with pytest.raises(ValueError, match="leaves no pixels"):
        init_encoder(0, [{"op": "conv", "kernel": 5, "channels": 2, "stride": 1, "padding": "VALID"}, {"op": "flatten"}],
                     (3, 3, 1))


def test_random_shift_is_an_edge_padded_crop_and_leaves_labels_alone():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 12, 12, 2), dtype=np.uint8)
    assert np.array_equal(random_shift(jax.random.key(0), images, 0), images)
    pad = 2
    shifted = np.asarray(random_shift(jax.random.key(1), jnp.asarray(images), pad))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    offsets = []
    for i in range(len(images)):
        found = [(r, c) for r in range(2 * pad + 1) for c in range(2 * pad + 1)
                 if np.array_equal(shifted[i], padded[i, r:r + 12, c:c + 12])]
        assert found, f"image {i} is not a crop of its padded self"
        offsets.append(found[0])
    assert len(set(offsets)) > 10, "offsets should vary from image to image"
    assert shifted.dtype == np.uint8
    assert default_shift_pad((84, 84, 3)) == 4 and default_shift_pad((16, 16, 1)) == 0

    algo = get_algorithm("dqn")
    config = algo.config_cls(shift_pad=pad, encoder_channels=4)
    d = 12 * 12 * 2
    stats = DatasetStats(obs_dim=d, act_dim=1, obs_mean=np.zeros(d), obs_std=np.ones(d), action_low=[0],
                         action_high=[3], obs_shape=(12, 12, 2))
    state = algo.init(config, stats, 0)
    batch = {"observations": images, "next_observations": images, "actions": rng.integers(0, 4, (64, 1)).astype(np.float32),
             "rewards": rng.normal(size=64).astype(np.float32), "terminals": np.zeros(64, np.float32)}
    b, key = prepare(config, state, batch)
    assert not np.array_equal(b["observations"], images) and not np.array_equal(b["observations"], b["next_observations"])
    np.testing.assert_array_equal(b["actions"], batch["actions"][:, 0].astype(int))
    np.testing.assert_array_equal(b["rewards"], batch["rewards"])
    assert not np.array_equal(key, state["key"])


def test_policy_with_encoder_round_trips_and_refuses_a_damaged_header(tmp_path):
    layers = encoder_layers("impala", 4)
    params, features = init_encoder(0, layers, (10, 10, 3))
    rng = np.random.default_rng(0)
    policy = NumpyPolicy([rng.normal(size=(features, 6)), rng.normal(size=(6, 5))], [np.zeros(6), np.zeros(5)],
                         encoder=EncoderStage(layers, as_numpy(params), (10, 10, 3)), output="argmax", action_offset=1)
    images = rng.integers(0, 256, (20, 10, 10, 3), dtype=np.uint8)
    actions = policy(images)
    assert set(actions) <= set(range(1, 6)) and len(set(actions)) > 1
    loaded = NumpyPolicy.load(policy.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(loaded(images), actions)
    with pytest.raises(ValueError, match=r"takes images \(10, 10, 3\)"):
        policy(images[:, :5])
    with pytest.raises(ValueError, match="no action bounds"):
        NumpyPolicy([np.ones((2, 2))], [np.zeros(2)], action_low=[0, 0], action_high=[1, 1], output="argmax")

    import zipfile
    with zipfile.ZipFile(tmp_path / "p.npz") as z:
        members = {n: z.read(n) for n in z.namelist()}
    import io
    header = np.load(io.BytesIO(members["header_json.npy"])).tobytes().replace(b'"relu"', b'"gelu"', 1)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(header, np.uint8))
    members["header_json.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(PolicyFormatError, match="unknown op 'gelu'"):
        NumpyPolicy.load(tmp_path / "bad.npz")


def test_a_frame_stacking_policy_stacks_an_episodes_frames_as_the_sampler_did():
    layers = encoder_layers("drq", 4)
    params, features = init_encoder(0, layers, (8, 8, 6))
    rng = np.random.default_rng(0)
    policy = NumpyPolicy([rng.normal(size=(features, 7))], [np.zeros(7)], output="argmax", frame_stack=3,
                         encoder=EncoderStage(layers, as_numpy(params), (8, 8, 6)))
    frames = rng.integers(0, 256, (4, 8, 8, 2), dtype=np.uint8)
    windows = [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]
    stacked = np.stack([np.concatenate([frames[i] for i in w], axis=-1) for w in windows])
    expected = policy(stacked)  # a batch of stacked images is taken as it is
    assert len(set(expected)) > 1 or len(set(policy(rng.integers(0, 256, (30, 8, 8, 6), dtype=np.uint8)))) > 1
    for _ in range(2):  # a second episode after reset starts from its own first frame again
        policy.reset()
        assert [policy(f) for f in frames] == list(expected)
    with pytest.raises(ValueError, match="one frame \\(8, 8, 2\\) to stack"):
        policy(frames[0][:, :, :1])
