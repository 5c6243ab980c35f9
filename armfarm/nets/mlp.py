"""Pure-JAX multilayer perceptrons and vmapped critic ensembles.

Parameters are plain pytrees: a list with one ``{"w": (in, out), "b": (out,)}`` dict per layer. An
ensemble of ``n`` identically shaped networks (the twin critics of TD3/SAC/IQL/CQL) stores every leaf
with a leading axis of size ``n`` and is evaluated with :func:`jax.vmap`, so the members run as one
batched matrix product per layer rather than ``n`` separate networks.

Initialisation runs in NumPy from a ``numpy.random.Generator`` (or a seed), so it is deterministic and
costs no XLA compilation. Initialisers (``init=``):

``"lecun"``
    truncated normal with variance ``1 / fan_in`` (LeCun et al. 1998), zero bias.
``"orthogonal"``
    orthogonal matrices (Saxe et al. 2014) with gain ``sqrt(2)`` for ReLU hidden layers, zero bias; the
    initialiser of the IQL reference implementation.
``"torch"``
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases: PyTorch's ``nn.Linear`` default, which
    the TD3+BC, CQL and BC reference implementations use.

``final_scale`` multiplies the last layer's initial weights (and biases), e.g. a small value for policy
heads. ``layer_norm=True`` adds layer normalisation (Ba et al. 2016) with a learned scale and offset
after every hidden layer's affine map, before its activation (the critics of ReBRAC and EDAC's
successors): such a layer holds ``ln_scale`` and ``ln_offset`` beside ``w`` and ``b``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Params = list[dict[str, jax.Array]]
Activation = Callable[[jax.Array], jax.Array]

INITS = ("lecun", "orthogonal", "torch")


def _layer_weights(rng: np.random.Generator, fan_in: int, fan_out: int, init: str) -> tuple[np.ndarray, np.ndarray]:
    if init == "lecun":  # truncated normal in [-2, 2] std, rescaled to variance 1 / fan_in (as jax's)
        w = rng.standard_normal((fan_in, fan_out))
        bad = np.abs(w) > 2.0
        while bad.any():
            w[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(w) > 2.0
        w *= math.sqrt(1.0 / fan_in) / 0.87962566103423978
        b = np.zeros(fan_out)
    elif init == "orthogonal":
        a = rng.standard_normal((max(fan_in, fan_out), min(fan_in, fan_out)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        w = (q if fan_in >= fan_out else q.T) * math.sqrt(2.0)
        b = np.zeros(fan_out)
    elif init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_in, fan_out))
        b = rng.uniform(-bound, bound, fan_out)
    else:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    return w, b


def _as_rng(rng: np.random.Generator | int | Sequence[int]) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _init_numpy(rng: np.random.Generator, sizes: Sequence[int], init: str, final_scale: float,
                layer_norm: bool = False) -> list[dict]:
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"MLP sizes must be >= 2 positive ints (in, ..., out), got {sizes}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    layers = []
    for i in range(len(sizes) - 1):
        w, b = _layer_weights(rng, sizes[i], sizes[i + 1], init)
        if i == len(sizes) - 2 and final_scale != 1.0:
            w, b = w * final_scale, b * final_scale
        layer = {"w": w.astype(np.float32), "b": b.astype(np.float32)}
        if layer_norm and i < len(sizes) - 2:
            layer["ln_scale"] = np.ones(sizes[i + 1], np.float32)
            layer["ln_offset"] = np.zeros(sizes[i + 1], np.float32)
        layers.append(layer)
    return layers


LN_EPS = 1e-6


def _hidden(layer: dict, h: jax.Array, activation: Activation) -> jax.Array:
    """A hidden layer's output from its affine map ``h``: layer-normalised if it has the parameters."""
    if "ln_scale" in layer:
        mean = jnp.mean(h, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
        h = (h - mean) * jax.lax.rsqrt(var + LN_EPS) * layer["ln_scale"] + layer["ln_offset"]
    return activation(h)


def init_mlp(
    rng: np.random.Generator | int | Sequence[int],
    sizes: Sequence[int],
    init: str = "lecun",
    final_scale: float = 1.0,
    layer_norm: bool = False,
) -> Params:
    """Initialise an MLP with layer widths ``sizes = (in, hidden..., out)``.

    ``rng`` is a NumPy ``Generator`` or a seed for one. Initialisation runs in NumPy (deterministic for
    a seed, and free of the per-shape XLA compilations that initialising with ``jax.random`` costs).
    """
    return jax.tree.map(jnp.asarray, _init_numpy(_as_rng(rng), sizes, init, final_scale, layer_norm))


def mlp_apply(
    params: Params,
    x: jax.Array,
    activation: Activation = jax.nn.relu,
    final_activation: Activation | None = None,
) -> jax.Array:
    """Apply an MLP to ``x[..., in]`` -> ``[..., out]`` (activation between layers, none after the last
    unless ``final_activation``)."""
    for layer in params[:-1]:
        x = _hidden(layer, x @ layer["w"] + layer["b"], activation)
    x = x @ params[-1]["w"] + params[-1]["b"]
    return final_activation(x) if final_activation is not None else x


def init_ensemble(
    rng: np.random.Generator | int | Sequence[int],
    num: int,
    sizes: Sequence[int],
    init: str = "lecun",
    final_scale: float = 1.0,
    layer_norm: bool = False,
) -> Params:
    """``num`` independently initialised MLPs stacked on a leading axis."""
    if num < 1:
        raise ValueError(f"ensemble size must be >= 1, got {num}")
    rng = _as_rng(rng)
    members = [_init_numpy(rng, sizes, init, final_scale, layer_norm) for _ in range(num)]
    return jax.tree.map(lambda *leaves: jnp.asarray(np.stack(leaves)), *members)


def ensemble_apply(
    params: Params,
    x: jax.Array,
    activation: Activation = jax.nn.relu,
    final_activation: Activation | None = None,
    shared_input: bool = True,
) -> jax.Array:
    """Apply every member to ``x`` -> ``[num, ..., out]``.

    With ``shared_input`` all members see the same ``x[..., in]``; otherwise ``x`` is ``[num, ..., in]``.
    """
    fn = lambda p, xx: mlp_apply(p, xx, activation, final_activation)  # noqa: E731
    return jax.vmap(fn, in_axes=(0, None if shared_input else 0))(params, x)


def member(params: Params, i: int) -> Params:
    """The ``i``-th member of an ensemble, as a plain MLP."""
    return jax.tree.map(lambda leaf: leaf[i], params)


def dropout(h: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout (Srivastava et al. 2014): zero each unit with probability ``rate`` and scale the
    rest by ``1 / (1 - rate)``; the identity when ``rate`` is 0 or there is no ``key`` (evaluation)."""
    if rate <= 0.0 or key is None:
        return h
    keep = jax.random.bernoulli(key, 1.0 - rate, h.shape)
    return jnp.where(keep, h / (1.0 - rate), 0.0)


def critic_apply(params: Params, obs: jax.Array, act: jax.Array, activation: Activation = jax.nn.relu,
                 dropout_rate: float = 0.0, key: jax.Array | None = None) -> jax.Array:
    """``Q(s, a)`` for ``obs[B, d]`` and ``act[B, a]`` -> ``[B]``, or ``act[B, M, a]`` -> ``[B, M]``.

    The first layer is split as ``s @ W_s + a @ W_a + b``: with ``M`` actions per state (CQL's sampled
    actions) the state half is computed once per state and broadcast, and no ``concat`` is built. The
    hidden layers then run on a flat ``[B * M, H]`` matrix (plain 2-D matmuls are markedly faster on
    XLA:CPU than matmuls with extra batch dimensions). With ``dropout_rate`` and a ``key``, dropout follows
    every hidden layer's activation (a training-mode pass, as DroQ's critics use; Hiraoka et al. 2022).
    """
    keys = [None] * len(params) if key is None else list(jax.random.split(key, len(params)))
    obs_dim = obs.shape[-1]
    w0, b0 = params[0]["w"], params[0]["b"]
    out_shape = act.shape[:-1]
    hs = obs @ w0[:obs_dim] + b0  # [B, H]
    ha = act.reshape(-1, act.shape[-1]) @ w0[obs_dim:]  # [B * M, H]
    if act.ndim == obs.ndim + 1:
        h = (hs[:, None, :] + ha.reshape(*out_shape, -1)).reshape(ha.shape)
    else:
        h = hs + ha
    h = dropout(_hidden(params[0], h, activation), dropout_rate, keys[0])
    for i, layer in enumerate(params[1:-1], start=1):
        h = dropout(_hidden(layer, h @ layer["w"] + layer["b"], activation), dropout_rate, keys[i])
    return (h @ params[-1]["w"] + params[-1]["b"]).reshape(out_shape)


def init_critic_ensemble(
    rng: np.random.Generator | int | Sequence[int],
    num: int,
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int],
    init: str = "lecun",
    layer_norm: bool = False,
) -> Params:
    """``num`` critics (``num=2`` for twin Q) stacked on a leading axis."""
    return init_ensemble(rng, num, (obs_dim + act_dim, *hidden, 1), init, layer_norm=layer_norm)


def critic_ensemble_apply(params: Params, obs: jax.Array, act: jax.Array, dropout_rate: float = 0.0,
                          key: jax.Array | None = None) -> jax.Array:
    """All members of a critic ensemble as one vmapped computation -> ``[num, B]`` (or ``[num, B, M]``);
    with ``dropout_rate`` and a ``key``, each member draws its own dropout masks."""
    if dropout_rate <= 0.0 or key is None:
        return jax.vmap(critic_apply, in_axes=(0, None, None))(params, obs, act)
    num = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(key, num)
    fn = lambda p, k: critic_apply(p, obs, act, jax.nn.relu, dropout_rate, k)  # noqa: E731
    return jax.vmap(fn)(params, keys)
