"""Convolutional image encoders in JAX: the DrQ conv stack and the IMPALA ResNet.

Both are layer lists in the format of :mod:`armfarm.encoders` (whose NumPy pass runs the published
policy), initialised in NumPy like :mod:`armfarm.nets.mlp`, and applied here with XLA's convolution.

``drq``
    DrQ's encoder (Kostrikov et al. 2020; DrQ-v2, Yarats et al. 2021): four 3x3 convolutions of
    ``channels`` filters, the first of stride 2, ReLU after each, then a linear map to ``feature_dim``
    with layer norm and tanh. Padding is SAME (DrQ's is VALID), so that small images such as MinAtar's
    10x10 grids keep a spatial extent through all four layers.
``impala``
    The IMPALA ResNet (Espeholt et al. 2018), the encoder of Scaled QL (Kumar et al. 2022) and of
    OGBench's pixel agents: per stage a 3x3 convolution, a 3x3 max pool of stride 2 and two residual
    blocks ``x + conv(relu(conv(relu(x))))``; stages of (16, 32, 32) filters; then ReLU, a linear map to
    ``feature_dim`` and ReLU. ``norm="group"`` adds group normalisation after every convolution of a
    residual block (Scaled QL's choice), ``"layer"`` layer norm of the feature map (groups = 1).

``channels`` sets the width, the axis of Scaled QL's model-size question: the DrQ stack's filters per
convolution, or the IMPALA stages' ``(channels / 2, channels, channels)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from armfarm.encoders import NORM_EPS, check_layers, same_padding
from armfarm.nets.mlp import _layer_weights

ENCODERS = ("drq", "impala")
NORMS = ("none", "group", "layer")


def drq_layers(channels: int = 32, feature_dim: int = 50, num_convs: int = 4) -> list[dict]:
    """The DrQ-style conv stack as a layer list (see the module docstring)."""
    layers: list[dict] = [{"op": "rescale", "factor": 1.0 / 255.0}]
    for i in range(num_convs):
        layers += [{"op": "conv", "kernel": 3, "channels": channels, "stride": 2 if i == 0 else 1, "padding": "SAME"},
                   {"op": "relu"}]
    return layers + [{"op": "flatten"}, {"op": "dense", "units": feature_dim}, {"op": "layernorm"}, {"op": "tanh"}]


def impala_layers(stages: Sequence[int] = (16, 32, 32), blocks: int = 2, norm: str = "group",
                  feature_dim: int = 256) -> list[dict]:
    """The IMPALA ResNet as a layer list (see the module docstring)."""
    if norm not in NORMS:
        raise ValueError(f"unknown encoder norm {norm!r}; valid: {', '.join(NORMS)}")

    def conv(ch: int) -> list[dict]:
        out = [{"op": "conv", "kernel": 3, "channels": ch, "stride": 1, "padding": "SAME"}]
        if norm != "none":
            out.append({"op": "groupnorm", "groups": math.gcd(ch, 8) if norm == "group" else 1})
        return out

    layers: list[dict] = [{"op": "rescale", "factor": 1.0 / 255.0}]
    for ch in stages:
        layers += [{"op": "conv", "kernel": 3, "channels": ch, "stride": 1, "padding": "SAME"},
                   {"op": "maxpool", "size": 3, "stride": 2}]
        for _ in range(blocks):
            layers += [{"op": "push"}, {"op": "relu"}, *conv(ch), {"op": "relu"}, *conv(ch), {"op": "add"}]
    return layers + [{"op": "relu"}, {"op": "flatten"}, {"op": "dense", "units": feature_dim}, {"op": "relu"}]


def encoder_layers(name: str, channels: int = 32, norm: str = "group") -> list[dict]:
    """The layer list of encoder ``name`` (``drq`` or ``impala``) at width ``channels``."""
    if channels < 2:
        raise ValueError(f"encoder channels must be >= 2, got {channels}")
    if name == "drq":
        return drq_layers(channels=channels)
    if name == "impala":
        return impala_layers(stages=(channels // 2, channels, channels), norm=norm)
    raise ValueError(f"unknown encoder {name!r}; valid: {', '.join(ENCODERS)}")


def init_encoder(rng: np.random.Generator | int, layers: Sequence[dict], input_shape: Sequence[int],
                 init: str = "orthogonal") -> tuple[list[dict], int]:
    """Parameters for ``layers`` on images of ``input_shape (H, W, C)``, and the number of features out.

    Weights use :mod:`armfarm.nets.mlp`'s initialisers with ``fan_in = kh * kw * C_in`` (DrQ initialises
    orthogonally); norms start as the identity.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if len(input_shape) != 3:
        raise ValueError(f"an image encoder takes (H, W, C) images, got shape {tuple(input_shape)}")
    shape = tuple(int(d) for d in input_shape)
    params: list[dict] = []
    saved: list[tuple] = []
    for i, layer in enumerate(layers):
        op, p = layer["op"], {}
        if op == "conv":
            k, ch, s = int(layer["kernel"]), int(layer["channels"]), int(layer["stride"])
            w, b = _layer_weights(rng, k * k * shape[2], ch, init)
            p = {"w": w.reshape(k, k, shape[2], ch).astype(np.float32), "b": np.zeros(ch, np.float32)}
            if layer["padding"] == "SAME":
                shape = (-(-shape[0] // s), -(-shape[1] // s), ch)
            else:
                shape = ((shape[0] - k) // s + 1, (shape[1] - k) // s + 1, ch)
            if min(shape[:2]) < 1:
                raise ValueError(f"encoder layer {i}: a {k}x{k} convolution leaves no pixels of a "
                                 f"{tuple(input_shape)} image; use larger images or another encoder")
        elif op == "maxpool":
            s = int(layer["stride"])
            shape = (-(-shape[0] // s), -(-shape[1] // s), shape[2])
        elif op in ("groupnorm", "layernorm"):
            width = shape[-1]
            if op == "groupnorm" and width % int(layer["groups"]):
                raise ValueError(f"encoder layer {i}: {width} channels do not split into {layer['groups']} groups")
            p = {"scale": np.ones(width, np.float32), "offset": np.zeros(width, np.float32)}
        elif op == "flatten":
            shape = (math.prod(shape),)
        elif op == "dense":
            w, b = _layer_weights(rng, shape[0], int(layer["units"]), init)
            p = {"w": w.astype(np.float32), "b": np.zeros(int(layer["units"]), np.float32)}
            shape = (int(layer["units"]),)
        elif op == "push":
            saved.append(shape)
        elif op == "add" and saved.pop() != shape:
            raise ValueError(f"encoder layer {i}: a residual adds maps of different shapes")
        params.append(p)
    check_layers(layers, params)
    if len(shape) != 1:
        raise ValueError("an encoder must end with flat features (flatten, then dense)")
    return jax.tree.map(jnp.asarray, params), int(shape[0])


def _pad_same(x: jax.Array, kernel: int, stride: int, value: float) -> jax.Array:
    pads = [(0, 0), same_padding(x.shape[1], kernel, stride), same_padding(x.shape[2], kernel, stride), (0, 0)]
    return jnp.pad(x, pads, constant_values=value)


def conv_im2col(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    """A VALID NHWC convolution as one matrix product: the ``kh * kw`` shifted (strided) views of ``x``
    concatenated along channels, in ``(kh, kw, C_in)`` order, times ``w`` reshaped to ``(kh kw C_in, C_out)``.

    On XLA:CPU this runs several times faster than ``lax.conv_general_dilated`` for the small kernels
    and channel counts of these encoders, forward and backward (BENCHMARKS.md, pixel learners): the
    gradient of a slice is a pad, and the matrix product is what the CPU does best.
    """
    kh, kw, cin, cout = w.shape
    n, h, wd, _ = x.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    views = [x[:, i:i + (ho - 1) * stride + 1:stride, j:j + (wo - 1) * stride + 1:stride, :]
             for i in range(kh) for j in range(kw)]
    cols = jnp.concatenate(views, axis=-1).reshape(n * ho * wo, kh * kw * cin)
    return (cols @ w.reshape(kh * kw * cin, cout)).reshape(n, ho, wo, cout)


def encoder_apply(layers: Sequence[dict], params: Sequence[dict], x: jax.Array) -> jax.Array:
    """Images ``x (..., H, W, C)`` -> features ``(..., F)`` (leading axes are flattened and restored)."""
    lead = x.shape[:-3]
    x = jnp.asarray(x, jnp.float32).reshape(-1, *x.shape[-3:])
    saved: list[jax.Array] = []
    for layer, p in zip(layers, params, strict=True):
        op = layer["op"]
        if op == "rescale":
            x = x * jnp.float32(layer["factor"])
        elif op == "conv":
            s = int(layer["stride"])
            if layer["padding"] == "SAME":
                x = _pad_same(x, p["w"].shape[0], s, 0.0)
            x = conv_im2col(x, p["w"], s) + p["b"]
        elif op == "maxpool":
            k, s = int(layer["size"]), int(layer["stride"])
            x = jax.lax.reduce_window(_pad_same(x, k, s, -jnp.inf), -jnp.inf, jax.lax.max, (1, k, k, 1),
                                      (1, s, s, 1), "VALID")
        elif op == "groupnorm":
            n, h, w, c = x.shape
            g = x.reshape(n, h, w, int(layer["groups"]), -1)
            mean = g.mean(axis=(1, 2, 4), keepdims=True)
            var = jnp.square(g - mean).mean(axis=(1, 2, 4), keepdims=True)
            x = ((g - mean) * jax.lax.rsqrt(var + NORM_EPS)).reshape(n, h, w, c) * p["scale"] + p["offset"]
        elif op == "relu":
            x = jax.nn.relu(x)
        elif op == "tanh":
            x = jnp.tanh(x)
        elif op == "push":
            saved.append(x)
        elif op == "add":
            x = x + saved.pop()
        elif op == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif op == "dense":
            x = x @ p["w"] + p["b"]
        elif op == "layernorm":
            mean = x.mean(axis=-1, keepdims=True)
            var = jnp.square(x - mean).mean(axis=-1, keepdims=True)
            x = (x - mean) * jax.lax.rsqrt(var + NORM_EPS) * p["scale"] + p["offset"]
    return x.reshape(*lead, x.shape[-1])


def random_shift(key: jax.Array, images: jax.Array, pad: int) -> jax.Array:
    """DrQ's augmentation (Kostrikov et al. 2020, Sec. 3.1): pad each image by ``pad`` pixels replicating
    its border, then crop it back to ``H x W`` at an offset drawn uniformly from ``{0..2 pad}^2``, one per
    image. ``images (B, H, W, C)``; the identity when ``pad`` is 0."""
    if pad <= 0:
        return images
    b, h, w, c = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (b, 2), 0, 2 * pad + 1)

    def crop(img: jax.Array, off: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets)


def default_shift_pad(image_shape: Sequence[int]) -> int:
    """DrQ's 4 pixels on 84x84, scaled with the image: ``min(H, W) // 21`` (0, no shift, below 21 px)."""
    return int(min(image_shape[0], image_shape[1])) // 21


def as_numpy(params: Any) -> list[dict]:
    """Encoder parameters as NumPy float32 arrays (for a published policy)."""
    return [{k: np.asarray(v, np.float32) for k, v in p.items()} for p in jax.device_get(params)]
