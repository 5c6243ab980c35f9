"""What a shield directory holds and how it is checked: ``shield.json`` (this config, the calibration and
provenance) beside ``weights.npz`` (NumPy arrays), and optionally ``fallback.npz`` / ``recovery.npz``.

Every layer can be switched on or off in ``shield.json``; ``armfarm shield fit`` writes the file, and a
user may edit it (e.g. tighten ``max_delta`` or switch the support gate off) without refitting. Loading is
strict: unknown keys, wrong types and out-of-range values are errors naming the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SHIELD_FORMAT = "armfarm-shield"
SHIELD_VERSION = 1
CONFIG_FILE = "shield.json"
WEIGHTS_FILE = "weights.npz"
FALLBACKS = ("stop", "bc", "min-cost")  # or a policy file, copied into the shield as fallback.npz / recovery.npz


class ShieldError(ValueError):
    """A shield directory that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Limits:
    """Layer 1, hard limits: actions are clipped to the action bounds and to ``[low, high]`` per dimension
    (``None``: the bounds), and no dimension moves more than ``max_delta`` from the last action (``None``:
    no rate limit)."""

    enabled: bool = True
    low: list[float] | None = None
    high: list[float] | None = None
    max_delta: float | None = None


@dataclass(frozen=True)
class Support:
    """Layer 2, the support gate: an action whose behaviour-model score ``-log pi_beta(a|s)`` exceeds
    ``threshold`` (the ``quantile`` of the scores of the data's own actions) is replaced by the fallback."""

    enabled: bool = True
    quantile: float = 0.99
    threshold: float | None = None


@dataclass(frozen=True)
class CostCritic:
    """Layer 3, the cost critic: ``Q_c(s, a)``, the expected discounted future cost (discount ``gamma``) of
    the data's behaviour, learned offline. An action with ``Q_c(s, a) > budget`` is replaced by the fallback,
    or, with ``project``, by the action nearest to it on the segment towards the fallback's action that the
    critic (and the support gate, when on) accepts: the smallest correction that is safe, in the spirit of
    Dalal et al.'s safety layer (2018), found by a line search over ``PROJECTION_POINTS`` points."""

    enabled: bool = True
    gamma: float = 0.8
    budget: float = 0.5
    project: bool = False


@dataclass(frozen=True)
class Watchdog:
    """Layer 4, the watchdog. It stops the episode (an e-stop, recorded as truncated with a reason) once the
    episode's cost passes ``episode_cost_budget``. When the last ``no_progress_steps`` rewards sum to less
    than ``min_progress`` (the robot is stuck), it runs the ``recovery`` behaviour for ``recovery_steps``
    steps and then stops the episode. ``None`` / 0 switch a check off."""

    enabled: bool = True
    episode_cost_budget: float | None = None
    no_progress_steps: int = 0
    min_progress: float = 0.0
    recovery: str = "stop"
    recovery_steps: int = 0


@dataclass(frozen=True)
class ShieldConfig:
    """A shield: its four layers, the fallback that replaces refused actions, and the data it was fitted
    on (``provenance``). ``obs_dim``/``act_dim`` and the action bounds fix the robot it fits."""

    obs_dim: int
    act_dim: int
    action_low: list[float]
    action_high: list[float]
    fallback: str = "stop"
    limits: Limits = field(default_factory=Limits)
    support: Support = field(default_factory=Support)
    cost: CostCritic = field(default_factory=CostCritic)
    watchdog: Watchdog = field(default_factory=Watchdog)
    provenance: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"format": SHIELD_FORMAT, "version": SHIELD_VERSION, **asdict(self)}

    def save(self, directory: Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, data: Any, where: str = CONFIG_FILE) -> ShieldConfig:
        """Parse and check ``shield.json``'s content; raises :class:`ShieldError` naming the field."""
        if not isinstance(data, dict):
            raise ShieldError(f"{where}: must be a JSON object")
        if data.get("format") != SHIELD_FORMAT:
            raise ShieldError(f"{where}: field 'format' must be {SHIELD_FORMAT!r}; this is not a shield")
        if data.get("version") != SHIELD_VERSION:
            raise ShieldError(f"{where}: field 'version' {data.get('version')!r} is not supported "
                              f"(this armfarm reads version {SHIELD_VERSION})")
        body = {k: v for k, v in data.items() if k not in ("format", "version")}
        sections = {"limits": Limits, "support": Support, "cost": CostCritic, "watchdog": Watchdog}
        kwargs = _fields(cls, body, where, skip=set(sections))
        for name, section in sections.items():
            kwargs[name] = section(**_fields(section, body.get(name, {}), f"{where}: {name}"))
        config = cls(**kwargs)
        config.check(where)
        return config

    def check(self, where: str = CONFIG_FILE) -> None:
        """Values in range and shapes that agree; raises :class:`ShieldError` naming the field."""
        def bad(name: str, what: str) -> ShieldError:
            return ShieldError(f"{where}: field '{name}' {what}")

        if self.obs_dim < 1 or self.act_dim < 1:
            raise bad("obs_dim/act_dim", "must be >= 1")
        for name in ("action_low", "action_high"):
            values = getattr(self, name)
            if len(values) != self.act_dim or not all(_finite(v) for v in values):
                raise bad(name, f"must be {self.act_dim} finite numbers")
        if any(h < lo for lo, h in zip(self.action_low, self.action_high, strict=True)):
            raise bad("action_high", "is below action_low")
        if self.fallback not in FALLBACKS and self.fallback != "policy":
            raise bad("fallback", f"must be one of {FALLBACKS} or 'policy' (fallback.npz), got {self.fallback!r}")
        for name in ("low", "high"):
            values = getattr(self.limits, name)
            if values is not None and (len(values) != self.act_dim or not all(_finite(v) for v in values)):
                raise bad(f"limits.{name}", f"must be null or {self.act_dim} finite numbers")
        if self.limits.max_delta is not None and not (_finite(self.limits.max_delta) and self.limits.max_delta > 0):
            raise bad("limits.max_delta", "must be null or a number > 0")
        if not 0 < self.support.quantile <= 1:
            raise bad("support.quantile", "must be in (0, 1]")
        if self.support.enabled and not _finite(self.support.threshold):
            raise bad("support.threshold", "must be a number when the support gate is on (refit the shield)")
        if not 0 <= self.cost.gamma < 1:
            raise bad("cost.gamma", "must be in [0, 1)")
        if not (_finite(self.cost.budget) and self.cost.budget >= 0):
            raise bad("cost.budget", "must be a number >= 0")
        w = self.watchdog
        if w.episode_cost_budget is not None and not (_finite(w.episode_cost_budget) and w.episode_cost_budget >= 0):
            raise bad("watchdog.episode_cost_budget", "must be null or a number >= 0")
        if w.no_progress_steps < 0 or w.recovery_steps < 0:
            raise bad("watchdog.no_progress_steps/recovery_steps", "must be >= 0")
        if w.recovery not in FALLBACKS and w.recovery != "policy":
            raise bad("watchdog.recovery", f"must be one of {FALLBACKS} or 'policy' (recovery.npz)")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _fields(cls: type, data: Any, where: str, skip: set[str] = frozenset()) -> dict:
    """The dataclass fields of ``cls`` in ``data``, checked for unknown names and basic types."""
    if not isinstance(data, dict):
        raise ShieldError(f"{where}: must be a JSON object")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ShieldError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    out = {}
    for name, value in data.items():
        if name in skip:
            continue
        kind = str(known[name].type)
        if kind.startswith("bool") and not isinstance(value, bool):
            raise ShieldError(f"{where}: field '{name}' must be true or false")
        if kind.startswith("int") and (not isinstance(value, int) or isinstance(value, bool)):
            raise ShieldError(f"{where}: field '{name}' must be an integer")
        if kind.startswith("str") and not isinstance(value, str):
            raise ShieldError(f"{where}: field '{name}' must be a string")
        if kind.startswith("float") and value is not None and not _finite(value):
            raise ShieldError(f"{where}: field '{name}' must be a finite number")
        if kind.startswith("list") and value is not None and not isinstance(value, list):
            raise ShieldError(f"{where}: field '{name}' must be a list")
        if kind.startswith("dict") and not isinstance(value, dict):
            raise ShieldError(f"{where}: field '{name}' must be an object")
        out[name] = value
    missing = [n for n, f in known.items() if n not in data and n not in skip
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ShieldError(f"{where}: missing field(s) {missing}")
    return out
