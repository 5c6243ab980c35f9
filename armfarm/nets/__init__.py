"""Neural network building blocks (pure JAX)."""

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

__all__ = [
    "critic_apply",
    "critic_ensemble_apply",
    "ensemble_apply",
    "init_critic_ensemble",
    "init_ensemble",
    "init_mlp",
    "member",
    "mlp_apply",
]
