"""The safety shield: what stands between a learning policy and the robot's motors.

NumPy only (like the fleet client), so a robot loads and runs it without JAX: :class:`Shield` and
:class:`ShieldedPolicy` in :mod:`armfarm.shield.runtime`, the directory format in
:mod:`armfarm.shield.config`. Fitting one from a store (JAX) is :func:`armfarm.shield.fit.fit_shield`. A policy file can carry its shield (:mod:`armfarm.shield.bundle`).
"""

from armfarm.shield.bundle import attach_shield, unpack_shield
from armfarm.shield.config import CostCritic, Limits, ShieldConfig, ShieldError, Support, Watchdog
from armfarm.shield.runtime import (
    COST,
    LIMITS,
    SUPPORT,
    WATCHDOG,
    Shield,
    ShieldedPolicy,
    describe_interventions,
)

__all__ = [
    "COST",
    "LIMITS",
    "SUPPORT",
    "WATCHDOG",
    "CostCritic",
    "Limits",
    "Shield",
    "ShieldConfig",
    "ShieldError",
    "ShieldedPolicy",
    "Support",
    "Watchdog",
    "attach_shield",
    "describe_interventions",
    "unpack_shield",
]
