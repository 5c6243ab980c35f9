"""Action distributions of the stochastic actors: Gaussian log-density and the tanh-squashed Gaussian."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """``log N(x; mean, diag(exp(log_std))^2)``, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - _HALF_LOG_2PI, axis=-1)


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array, shape) -> tuple[jax.Array, jax.Array]:
    """Reparameterised ``a = tanh(mean + std * eps)`` and ``log pi(a|s)`` by the change of variables
    (Haarnoja et al. 2018, Appendix C, Eq. 21)."""
    eps = jax.random.normal(key, shape)
    u = mean + jnp.exp(log_std) * eps
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), numerically stable
    log_det = 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))
    log_prob = jnp.sum(-0.5 * jnp.square(eps) - log_std - _HALF_LOG_2PI - log_det, axis=-1)
    return jnp.tanh(u), log_prob


def tanh_gaussian_log_prob(action: jax.Array, mean: jax.Array, log_std: jax.Array, eps: float = 1e-6) -> jax.Array:
    """``log pi(a|s)`` of a given action in ``(-1, 1)`` under the tanh-squashed Gaussian (clipped away from
    the bounds by ``eps``, where the density is infinite)."""
    a = jnp.clip(action, -1.0 + eps, 1.0 - eps)
    u = jnp.arctanh(a)
    log_det = 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))
    return gaussian_log_prob(u, mean, log_std) - jnp.sum(log_det, axis=-1)
