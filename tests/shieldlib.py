"""Hand-made shield directories for tests: models with known outputs, written in the real format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from armfarm.shield import CostCritic, Limits, ShieldConfig, Support, Watchdog
from armfarm.shield.runtime import unfitted_models


def write_shield(directory: Path, obs_dim: int, act_dim: int, low: float = -1.0, high: float = 1.0,
                 cost_weight: float = 0.0, budget: float = 0.5, support: Support = Support(enabled=False),
                 watchdog: Watchdog = Watchdog(), limits: Limits = Limits(), fallback: str = "stop") -> Path:
    """A shield whose behaviour model is N(0, 1) in scaled action units (score ``0.5 |u|^2``) and whose cost
    critic is ``Q_c = cost_weight * u_0``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    models = unfitted_models(obs_dim, act_dim)
    models["cost_critic.w0"][obs_dim, 0] = cost_weight
    np.savez(directory / "weights.npz", **models)
    ShieldConfig(obs_dim, act_dim, [low] * act_dim, [high] * act_dim, fallback=fallback, limits=limits,
                 support=support, cost=CostCritic(budget=budget), watchdog=watchdog).save(directory)
    return directory
