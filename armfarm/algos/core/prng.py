"""An agent's two random streams: the raw JAX key carried in its state, and a NumPy generator for
parameter initialisation.

The key is raw key data for JAX's ``"rbg"`` implementation (uint32[4]): the state carries its own
randomness, so an update is a pure function of ``(config, state, batch)`` and training is bitwise
reproducible; ``rbg`` compiles and runs faster on CPU than the default threefry.
"""

from __future__ import annotations

import jax
import numpy as np

PRNG_IMPL = "rbg"


def seed_streams(seed: int) -> tuple[jax.Array, np.random.Generator]:
    """The two random streams of an agent: the raw JAX PRNG key data carried in the state (sampling
    inside ``update``; see :func:`split_key`) and a NumPy generator for parameter initialisation."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return jax.random.key_data(jax.random.key(seed, impl=PRNG_IMPL)), np.random.default_rng([seed, 0xA7F])


def split_key(raw_key: jax.Array, num: int) -> tuple[jax.Array, list[jax.Array]]:
    """Split the state's raw key into a new raw key for the next step and ``num`` typed keys."""
    keys = jax.random.split(jax.random.wrap_key_data(raw_key, impl=PRNG_IMPL), num + 1)
    return jax.random.key_data(keys[0]), [keys[i] for i in range(1, num + 1)]


def derived_key(raw_key: jax.Array, tag: int) -> jax.Array:
    """Raw key data of a stream apart from ``raw_key``'s (``fold_in`` of ``tag``), for a second
    consumer of randomness that must not repeat the first's draws."""
    typed = jax.random.wrap_key_data(raw_key, impl=PRNG_IMPL)
    return jax.random.key_data(jax.random.fold_in(typed, int(tag)))
