"""Parameter groups: a network's parameters with their optimiser state (and target copy), stepped as one.

Every algorithm keeps each trained network as a group ``{"params", "opt"[, "target"]}`` in its state;
:func:`new_group` makes one and :func:`step_group` applies gradients to it (and moves its target by
Polyak averaging), so no algorithm repeats the optax plumbing.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

Group = dict[str, Any]


def polyak(target: Any, online: Any, tau: float) -> Any:
    """Soft target update ``target <- tau * online + (1 - tau) * target``."""
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)


def apply_optimizer(opt: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any) -> tuple[Any, Any]:
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def new_group(params: Any, opt: optax.GradientTransformation, target: bool = False) -> Group:
    """A group for ``params`` trained with ``opt``; with ``target``, a target copy starts equal to them."""
    group = {"params": params, "opt": opt.init(params)}
    if target:
        group["target"] = params
    return group


def step_group(group: Group, grads: Any, opt: optax.GradientTransformation, tau: float | None = None) -> Group:
    """``group`` after one step of ``opt`` on ``grads``; its target (if any) moves by ``tau`` (None: kept)."""
    params, opt_state = apply_optimizer(opt, group["params"], group["opt"], grads)
    stepped = {"params": params, "opt": opt_state}
    if "target" in group:
        stepped["target"] = group["target"] if tau is None else polyak(group["target"], params, tau)
    return stepped
