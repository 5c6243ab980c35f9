"""The fused training call: K updates of an algorithm in one compiled ``jit`` + ``lax.scan``."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from armfarm.algos.core.batches import AgentState, Batch, check_batch
from armfarm.algos.core.contract import Algorithm, get_algorithm


def scan_updates(algo: Algorithm, config: Any) -> Callable:
    """The pure ``(state, batches) -> (state, mean metrics)`` of K updates in one :func:`jax.lax.scan`
    (what :func:`make_train_fn` compiles; ``jax.vmap`` of it trains several agents at once)."""
    update = algo.update

    def train(state: AgentState, batches: Batch) -> tuple[AgentState, dict[str, jax.Array]]:
        def body(s: AgentState, b: Batch) -> tuple[AgentState, dict[str, jax.Array]]:
            return update(config, s, b)

        state, metrics = jax.lax.scan(body, state, batches)
        return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    return train


@functools.lru_cache(maxsize=32)
def _jitted_train(algo: Any, config: Any, donate: bool) -> Callable:
    return jax.jit(scan_updates(algo, config), donate_argnums=(0,) if donate else ())


def make_train_fn(algo: Any, config: Any, *, donate: bool = False) -> Callable:
    """A compiled ``(state, stacked_batches) -> (state, metrics)`` running ``K`` updates in one
    :func:`jax.lax.scan`, where ``K`` is the leading axis of every batch array (``(K, B, ...)``).

    ``metrics`` are the means over the ``K`` steps (0-d JAX arrays). Batches are checked on the host
    (clear ``ValueError`` for a missing key or a wrong shape) and keys other than the algorithm's
    ``batch_keys`` are dropped before the transfer; ``uint8`` images stay ``uint8`` (a quarter of the
    bytes of float32), everything else becomes float32. The compiled function is cached per ``(algo, config)``, and XLA
    compiles once per ``(K, B)``. With ``donate=True`` the input state's buffers are reused for the
    output (do not touch the old state afterwards).
    """
    algo = get_algorithm(algo)
    if not isinstance(config, algo.config_cls):
        raise TypeError(f"{algo.name} needs a {algo.config_cls.__name__}, got {type(config).__name__}")
    jitted = _jitted_train(algo, config, donate)

    def train_fn(state: AgentState, stacked_batches: Mapping[str, Any]) -> tuple[AgentState, dict[str, jax.Array]]:
        norm = state["norm"]
        obs = norm["obs_mean"].shape[0] if "obs_shape" not in state else tuple(int(d) for d in state["obs_shape"])
        check_batch(stacked_batches, obs, norm["act_low"].shape[0], lead_ndim=2, keys=algo.batch_keys)
        batches = {}
        for k in algo.batch_keys:
            v = stacked_batches[k]
            if isinstance(v, np.ndarray) and v.dtype != np.float32 and not (v.dtype == np.uint8 and v.ndim == 5):
                v = v.astype(np.float32)
            batches[k] = v
        return jitted(state, batches)

    train_fn.jitted = jitted  # type: ignore[attr-defined]
    train_fn.algo = algo  # type: ignore[attr-defined]
    train_fn.config = config  # type: ignore[attr-defined]
    return train_fn


def run_train_call(train_fn: Callable, state: AgentState, batches: Mapping[str, Any],
                   step: int) -> tuple[AgentState, dict[str, float], float]:
    """One fused call of ``train_fn``: the new state, its metrics as floats and the seconds it took.
    Raises ``FloatingPointError`` naming ``step`` (where the call ends) when a metric is not finite."""
    tick = time.perf_counter()
    state, metrics = train_fn(state, batches)
    metrics = {key: float(value) for key, value in metrics.items()}
    seconds = time.perf_counter() - tick
    if not all(np.isfinite(v) for v in metrics.values()):
        raise FloatingPointError(f"non-finite training metrics at step {step}: {metrics}")
    return state, metrics, seconds
