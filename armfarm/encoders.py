"""Image encoders as layer lists, and their forward pass in NumPy alone (the robot side).

An encoder is a JSON-able list of layers plus one dict of arrays per layer. The same list is run by
:func:`encode` here (NumPy, used by :class:`armfarm.policy.NumpyPolicy` on a robot) and by
:func:`armfarm.nets.conv.encoder_apply` (JAX, used in training), so the published policy computes what
the learner trained. Images are ``(N, H, W, C)`` (NHWC); convolution weights are ``(kh, kw, C_in, C_out)``.

=================  ====================================  =================================================
``rescale``        ``factor``                            ``x * factor`` (``1/255`` turns uint8 into [0, 1])
``conv``           ``stride``, ``padding`` (SAME/VALID)  2-D convolution (as im2col and one matmul here);
                                                         params ``w``, ``b``
``maxpool``        ``size``, ``stride``                  max pooling with SAME padding
``groupnorm``      ``groups``                            group normalisation (Wu & He 2018) over
                                                         ``(H, W, C / groups)``; ``groups=1`` is layer norm
                                                         of a feature map; params ``scale``, ``offset``
``relu``/``tanh``                                        elementwise
``push``/``add``                                         save ``x`` / add the last saved ``x`` (residuals)
``flatten``                                              ``(N, H, W, C) -> (N, H * W * C)``
``dense``                                                ``x @ w + b``
``layernorm``                                            over the last axis; params ``scale``, ``offset``
=================  ====================================  =================================================

SAME padding puts ``total // 2`` pixels before and the rest after, for convolutions and pools alike (the
convention of XLA and TensorFlow), so both implementations agree pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NORM_EPS = 1e-6
LAYER_OPS = {  # op -> (its settings, its parameters)
    "rescale": (("factor",), ()),
    "conv": (("stride", "padding"), ("w", "b")),
    "maxpool": (("size", "stride"), ()),
    "groupnorm": (("groups",), ("scale", "offset")),
    "relu": ((), ()),
    "tanh": ((), ()),
    "push": ((), ()),
    "add": ((), ()),
    "flatten": ((), ()),
    "dense": ((), ("w", "b")),
    "layernorm": ((), ("scale", "offset")),
}
PARAM_NAMES = ("w", "b", "scale", "offset")


def check_layers(layers: Sequence[Mapping[str, Any]], params: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` unless every layer is a known op with its settings and parameters."""
    if len(layers) != len(params):
        raise ValueError(f"an encoder needs one parameter dict per layer: {len(layers)} layers, {len(params)} dicts")
    depth = 0
    for i, (layer, p) in enumerate(zip(layers, params, strict=True)):
        op = layer.get("op")
        if op not in LAYER_OPS:
            raise ValueError(f"encoder layer {i}: unknown op {op!r}; known: {', '.join(LAYER_OPS)}")
        settings, names = LAYER_OPS[op]
        missing = [s for s in settings if s not in layer]
        if missing or sorted(p) != sorted(names):
            raise ValueError(f"encoder layer {i} ({op}): needs settings {list(settings)} and parameters "
                             f"{list(names)}, got {sorted(layer)} and {sorted(p)}")
        depth += {"push": 1, "add": -1}.get(op, 0)
        if depth < 0:
            raise ValueError(f"encoder layer {i}: 'add' without a matching 'push'")
    if depth:
        raise ValueError("encoder has a 'push' without a matching 'add'")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """``(before, after)`` SAME padding of one axis: the output has ``ceil(size / stride)`` entries."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad(x: np.ndarray, kernel: tuple[int, int], stride: int, value: float) -> np.ndarray:
    (t, b), (left, r) = same_padding(x.shape[1], kernel[0], stride), same_padding(x.shape[2], kernel[1], stride)
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """``(N, Ho, Wo, C, kh, kw)`` views of every ``kh x kw`` window at the stride."""
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return view[:, ::stride, ::stride]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """NHWC convolution as im2col: every window flattened in ``(kh, kw, C_in)`` order, times ``w``."""
    kh, kw, cin, cout = w.shape
    if padding == "SAME":
        x = _pad(x, (kh, kw), stride, 0.0)
    cols = _windows(x, kh, kw, stride)  # (N, Ho, Wo, C, kh, kw)
    n, ho, wo = cols.shape[:3]
    cols = cols.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * cin)
    return (cols @ w.reshape(kh * kw * cin, cout) + b).reshape(n, ho, wo, cout)


def maxpool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    return _windows(_pad(x, (size, size), stride, -np.inf), size, size, stride).max(axis=(-2, -1))


def group_norm(x: np.ndarray, groups: int, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    g = x.reshape(n, h, w, groups, c // groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = np.square(g - mean).mean(axis=(1, 2, 4), keepdims=True)
    return ((g - mean) / np.sqrt(var + NORM_EPS)).reshape(n, h, w, c) * scale + offset


def encode(layers: Sequence[Mapping[str, Any]], params: Sequence[Mapping[str, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """Run the encoder on images ``x (N, H, W, C)`` (any numeric dtype) -> ``(N, features)`` float32."""
    x = np.asarray(x, np.float32)
    saved: list[np.ndarray] = []
    for layer, p in zip(layers, params, strict=True):
        op = layer["op"]
        if op == "rescale":
            x = x * np.float32(layer["factor"])
        elif op == "conv":
            x = conv2d(x, p["w"], p["b"], int(layer["stride"]), layer["padding"])
        elif op == "maxpool":
            x = maxpool(x, int(layer["size"]), int(layer["stride"]))
        elif op == "groupnorm":
            x = group_norm(x, int(layer["groups"]), p["scale"], p["offset"])
        elif op == "relu":
            x = np.maximum(x, 0.0)
        elif op == "tanh":
            x = np.tanh(x)
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
            var = np.square(x - mean).mean(axis=-1, keepdims=True)
            x = (x - mean) / np.sqrt(var + NORM_EPS) * p["scale"] + p["offset"]
    return x.astype(np.float32, copy=False)
