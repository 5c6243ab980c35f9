"""Pure-JAX multilayer perceptrons and vmapped critic ensembles.

Parameters are plain pytrees: a list with one ``{"w": (in, out), "b": (out,)}`` dict per layer. An
ensemble of ``n`` identically shaped networks (the twin critics of TD3/SAC/IQL/CQL) stores every leaf
with a leading axis of size ``n`` and is evaluated with :func:`jax.vmap`, so the members run as one
batched matrix product per layer rather than ``n`` separate networks.

Initialisers (``init=``):

``"lecun"``
    truncated normal with variance ``1 / fan_in`` (LeCun et al. 1998), zero bias.
``"orthogonal"``
    orthogonal matrices (Saxe et al. 2014) with gain ``sqrt(2)`` for ReLU hidden layers, zero bias; the
    initialiser of the IQL reference implementation.
``"torch"``
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases: PyTorch's ``nn.Linear`` default, which
    the TD3+BC, CQL and BC reference implementations use.

``final_scale`` multiplies the last layer's initial weights (and biases), e.g. a small value for policy
heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Params = list[dict[str, jax.Array]]
Activation = Callable[[jax.Array], jax.Array]

INITS = ("lecun", "orthogonal", "torch")


def _init_layer(key: jax.Array, fan_in: int, fan_out: int, init: str, scale: float) -> dict[str, jax.Array]:
    wkey, bkey = jax.random.split(key)
    if init == "lecun":
        w = jax.nn.initializers.lecun_normal()(wkey, (fan_in, fan_out), jnp.float32)
        b = jnp.zeros((fan_out,), jnp.float32)
    elif init == "orthogonal":
        w = jax.nn.initializers.orthogonal(scale=math.sqrt(2.0))(wkey, (fan_in, fan_out), jnp.float32)
        b = jnp.zeros((fan_out,), jnp.float32)
    elif init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        w = jax.random.uniform(wkey, (fan_in, fan_out), jnp.float32, -bound, bound)
        b = jax.random.uniform(bkey, (fan_out,), jnp.float32, -bound, bound)
    else:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if scale != 1.0:
        w, b = w * scale, b * scale
    return {"w": w, "b": b}


def init_mlp(
    key: jax.Array, sizes: Sequence[int], init: str = "lecun", final_scale: float = 1.0
) -> Params:
    """Initialise an MLP with layer widths ``sizes = (in, hidden..., out)``."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"MLP sizes must be >= 2 positive ints (in, ..., out), got {sizes}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    keys = jax.random.split(key, len(sizes) - 1)
    n = len(sizes) - 1
    return [
        _init_layer(keys[i], sizes[i], sizes[i + 1], init, final_scale if i == n - 1 else 1.0)
        for i in range(n)
    ]


def mlp_apply(
    params: Params,
    x: jax.Array,
    activation: Activation = jax.nn.relu,
    final_activation: Activation | None = None,
) -> jax.Array:
    """Apply an MLP to ``x[..., in]`` -> ``[..., out]`` (activation between layers, none after the last
    unless ``final_activation``)."""
    for layer in params[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    x = x @ params[-1]["w"] + params[-1]["b"]
    return final_activation(x) if final_activation is not None else x


def init_ensemble(
    key: jax.Array, num: int, sizes: Sequence[int], init: str = "lecun", final_scale: float = 1.0
) -> Params:
    """``num`` independently initialised MLPs stacked on a leading axis (vmapped init)."""
    if num < 1:
        raise ValueError(f"ensemble size must be >= 1, got {num}")
    keys = jax.random.split(key, num)
    return jax.vmap(lambda k: init_mlp(k, sizes, init, final_scale))(keys)


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


def ensemble_size(params: Params) -> int:
    return int(params[0]["w"].shape[0])


# --------------------------------------------------------------------------------------- critics


def init_critic(key: jax.Array, obs_dim: int, act_dim: int, hidden: Sequence[int], init: str = "lecun") -> Params:
    """A state-action critic ``Q(s, a)``: an MLP on ``concat(s, a)`` with a scalar output."""
    return init_mlp(key, (obs_dim + act_dim, *hidden, 1), init)


def critic_apply(params: Params, obs: jax.Array, act: jax.Array, activation: Activation = jax.nn.relu) -> jax.Array:
    """``Q(s, a)`` for ``obs[B, d]`` and ``act[B, a]`` -> ``[B]``, or ``act[B, M, a]`` -> ``[B, M]``.

    The first layer is split as ``s @ W_s + a @ W_a + b``: with ``M`` actions per state (CQL's sampled
    actions) the state half is computed once per state and broadcast, and no ``concat`` is built. The
    hidden layers then run on a flat ``[B * M, H]`` matrix (plain 2-D matmuls are markedly faster on
    XLA:CPU than matmuls with extra batch dimensions).
    """
    obs_dim = obs.shape[-1]
    w0, b0 = params[0]["w"], params[0]["b"]
    out_shape = act.shape[:-1]
    hs = obs @ w0[:obs_dim] + b0  # [B, H]
    ha = act.reshape(-1, act.shape[-1]) @ w0[obs_dim:]  # [B * M, H]
    if act.ndim == obs.ndim + 1:
        h = (hs[:, None, :] + ha.reshape(*out_shape, -1)).reshape(ha.shape)
    else:
        h = hs + ha
    h = activation(h)
    for layer in params[1:-1]:
        h = activation(h @ layer["w"] + layer["b"])
    return (h @ params[-1]["w"] + params[-1]["b"]).reshape(out_shape)


def init_critic_ensemble(
    key: jax.Array, num: int, obs_dim: int, act_dim: int, hidden: Sequence[int], init: str = "lecun"
) -> Params:
    """``num`` critics (``num=2`` for twin Q) stacked on a leading axis."""
    return init_ensemble(key, num, (obs_dim + act_dim, *hidden, 1), init)


def critic_ensemble_apply(params: Params, obs: jax.Array, act: jax.Array) -> jax.Array:
    """All members of a critic ensemble as one vmapped computation -> ``[num, B]`` (or ``[num, B, M]``)."""
    return jax.vmap(critic_apply, in_axes=(0, None, None))(params, obs, act)
