"""armfarm.nets.mlp: initialisers, MLP application and vmapped critic ensembles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from armfarm.nets.mlp import (
    critic_apply,
    critic_ensemble_apply,
    ensemble_apply,
    init_critic_ensemble,
    init_ensemble,
    init_mlp,
    member,
    mlp_apply,
)


def test_shapes_and_determinism():
    p = init_mlp(0, (7, 16, 16, 3))
    assert [(layer["w"].shape, layer["b"].shape) for layer in p] == [((7, 16), (16,)), ((16, 16), (16,)), ((16, 3), (3,))]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(p))
    assert mlp_apply(p, jnp.ones((5, 7))).shape == (5, 3)
    q = init_mlp(0, (7, 16, 16, 3))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(q), strict=True))
    r = init_mlp(1, (7, 16, 16, 3))
    assert not np.array_equal(p[0]["w"], r[0]["w"])


def test_initialisers_have_the_documented_statistics():
    rng = np.random.default_rng(0)
    w = np.asarray(init_mlp(rng, (256, 256, 1), "orthogonal")[0]["w"])
    np.testing.assert_allclose(w.T @ w, 2.0 * np.eye(256), atol=1e-4)  # orthogonal, gain sqrt(2)
    w = np.asarray(init_mlp(rng, (400, 300, 1), "lecun")[0]["w"])
    assert abs(w.var() * 400 - 1.0) < 0.05 and np.abs(w).max() <= 2 * np.sqrt(1 / 400) / 0.8796 + 1e-6
    layer = init_mlp(rng, (100, 300, 1), "torch")[0]
    assert np.abs(layer["w"]).max() <= 0.1 and np.abs(layer["b"]).max() <= 0.1 and np.abs(layer["b"]).max() > 0.09
    with pytest.raises(ValueError, match="init"):
        init_mlp(0, (3, 4), "xavier")
    with pytest.raises(ValueError, match="sizes"):
        init_mlp(0, (3,))


def test_ensemble_equals_members_applied_one_by_one():
    ens = init_ensemble(0, 3, (4, 8, 2))
    assert ens[0]["w"].shape == (3, 4, 8)
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 4))
    out = ensemble_apply(ens, x)
    assert out.shape == (3, 6, 2)
    for i in range(3):
        np.testing.assert_allclose(out[i], mlp_apply(member(ens, i), x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[0], out[1]), "members must be initialised independently"
    xs = jax.random.normal(jax.random.PRNGKey(1), (3, 6, 4))
    out = ensemble_apply(ens, xs, shared_input=False)
    np.testing.assert_allclose(out[2], mlp_apply(member(ens, 2), xs[2]), rtol=1e-5, atol=1e-6)


def test_critic_split_first_layer_equals_concat_mlp():
    critics = init_critic_ensemble(0, 2, 5, 3, (16, 16))
    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 5))
    act = jax.random.uniform(jax.random.PRNGKey(1), (4, 3), minval=-1, maxval=1)
    q = critic_ensemble_apply(critics, obs, act)
    assert q.shape == (2, 4)
    ref = ensemble_apply(critics, jnp.concatenate([obs, act], -1))[..., 0]
    np.testing.assert_allclose(q, ref, rtol=1e-5, atol=1e-5)

    # several actions per state: [B, M, a] -> [num, B, M], each equal to the single-action value
    acts = jax.random.uniform(jax.random.PRNGKey(2), (4, 7, 3), minval=-1, maxval=1)
    qm = critic_ensemble_apply(critics, obs, acts)
    assert qm.shape == (2, 4, 7)
    for m in range(7):
        np.testing.assert_allclose(qm[:, :, m], critic_ensemble_apply(critics, obs, acts[:, m]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(qm[1], critic_apply(member(critics, 1), obs, acts), rtol=1e-5, atol=1e-5)
