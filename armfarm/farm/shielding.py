"""The farm's shield (``[shield]`` in ``farm.toml``): one current shield that every robot runs behind.

``FARM_DIR/shield`` is a symbolic link to the current shield directory under ``FARM_DIR/shields/``. Before
the first round it points at a limits-and-watchdog shield (its support gate and cost critic are off: there
is no data to fit them on); after each round's training the learner refits all four layers on the whole
store and moves the link. The link is replaced atomically (``rename`` of a new link over the old), so a
robot reading it at an episode boundary sees the old shield or the new one, never a half-written one.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np

from armfarm.farm.state import FarmPaths

log = logging.getLogger("armfarm.farm.shield")


def watchdog(config):
    from armfarm.shield import Watchdog

    budget = config.shield_episode_cost_budget
    return Watchdog(episode_cost_budget=None if not np.isfinite(budget) else float(budget))


def point_to(paths: FarmPaths, target: Path) -> None:
    """Make ``FARM_DIR/shield`` point at ``target`` (a directory under ``FARM_DIR/shields``), atomically."""
    link = paths.root / f".shield-{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(target, paths.root), link)
    os.replace(link, paths.shield)


def ensure_initial_shield(paths: FarmPaths, config, spec) -> None:
    """Give the farm a shield before any data exists: hard limits and the watchdog only."""
    from armfarm.shield import CostCritic, ShieldConfig, Support
    from armfarm.shield.config import WEIGHTS_FILE
    from armfarm.shield.runtime import unfitted_models

    if paths.shield.exists():
        return
    obs_dim, act_dim = spec.obs_dim, spec.act_dim
    low = spec.action.low if spec.action.low is not None else [-1.0] * act_dim
    high = spec.action.high if spec.action.high is not None else [1.0] * act_dim
    target = paths.shields / "initial"
    target.mkdir(parents=True, exist_ok=True)
    np.savez(target / WEIGHTS_FILE, **unfitted_models(obs_dim, act_dim))
    ShieldConfig(obs_dim, act_dim, list(np.ravel(low).astype(float)), list(np.ravel(high).astype(float)),
                 fallback="stop", support=Support(enabled=False), cost=CostCritic(enabled=False),
                 watchdog=watchdog(config), provenance={"fitted": False}).save(target)
    point_to(paths, target)


def refit(paths: FarmPaths, config, store_path: Path, round_index: int) -> Path | None:
    """Fit the shield on the whole store for round ``round_index`` and make it current; returns its
    directory, or None (the previous shield stays) when fitting fails."""
    from armfarm.shield.fit import fit_shield

    target = paths.shields / f"round_{round_index:04d}"
    try:
        fit_shield(store_path, target, budget=config.shield_budget, fallback=config.shield_fallback,
                   project=config.shield_project, steps=config.shield_steps, seed=config.seed + round_index,
                   watchdog=watchdog(config), overwrite=True)
    except (ValueError, OSError) as e:
        log.warning("round %d: the shield was not refitted (%s); robots keep the previous one", round_index, e)
        return None
    point_to(paths, target)
    return target
