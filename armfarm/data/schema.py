"""What an episode is, what a store holds, and how both are checked.

* :class:`ArraySpec` describes one per-step array (shape without the time axis, dtype, optional
  bounds); :class:`StoreSpec` describes a store's observations (an array or a dict of arrays, for
  goal-conditioned tasks) and actions. A store binds its spec on its first write.
* :class:`Episode` is ``T >= 1`` transitions with ``T + 1`` observations (see ``docs/design.md``).

Stored dtypes are canonical: every float becomes ``float32``, bools stay ``bool`` and integers keep
their type (so ``uint8`` camera images are stored as they are, with any per-step shape). Object,
string, complex and datetime arrays are rejected.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from armfarm.data.errors import DataError

SCHEMA_VERSION = 2  # 2: per-step costs and shield interventions, per-episode end reasons (1 reads as zero cost)
MAX_END_REASON = 256  # characters of Episode.end_reason

_STORABLE_KINDS = "fbiu"  # float, bool, signed and unsigned integers


def utc_now_iso() -> str:
    """The current UTC time as an ISO 8601 string, e.g. ``2024-05-01T12:00:00.123456+00:00``."""
    return datetime.now(UTC).isoformat()


def canonical_dtype(dtype: Any, *, path: Any = None, field: str | None = None) -> np.dtype:
    """The dtype an array of ``dtype`` is stored as: floats -> float32, bool -> bool, ints unchanged.

    Raises:
        DataError: for object, string, bytes, complex and datetime dtypes.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in _STORABLE_KINDS:
        raise DataError(
            f"has dtype {dtype}, which cannot be stored",
            path=path,
            field=field,
            hint="convert it to a numeric or bool array (floats are stored as float32)",
        )
    if dtype.kind == "f":
        return np.dtype(np.float32)
    return dtype.newbyteorder("=")


@dataclass(frozen=True)
class ArraySpec:
    """Shape (without the time axis) and dtype of one per-step array, plus optional bounds.

    ``dtype`` is canonicalised (``"float64"`` becomes ``"float32"``); ``low``/``high`` are nested
    lists of the array's shape (recorded for Box action spaces, so actions can be rescaled).
    """

    shape: tuple[int, ...]
    dtype: str
    low: list | None = None
    high: list | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype).name)
        if any(d < 1 for d in self.shape):
            raise DataError(
                f"shape {self.shape} has an empty dimension",
                field="spec",
                hint="every per-step array needs at least one element",
            )

    @property
    def size(self) -> int:
        """Number of scalars per step (``1`` for a scalar)."""
        return math.prod(self.shape)

    @property
    def is_image(self) -> bool:
        """Whether arrays of this spec are camera images: ``uint8`` of shape ``(H, W, C)``."""
        return self.dtype == "uint8" and len(self.shape) == 3

    @property
    def num_choices(self) -> int | None:
        """For a discrete action (an integer scalar with bounds ``low..high``): ``high - low + 1``; else None."""
        if self.shape != () or np.dtype(self.dtype).kind not in "iu" or self.low is None or self.high is None:
            return None
        return int(self.high) - int(self.low) + 1

    def same_layout(self, other: ArraySpec) -> bool:
        """Whether arrays of both specs are stored identically (same shape and dtype)."""
        return self.shape == other.shape and self.dtype == other.dtype

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.low is not None:
            out["low"] = self.low
        if self.high is not None:
            out["high"] = self.high
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> ArraySpec:
        return cls(tuple(d["shape"]), d["dtype"], d.get("low"), d.get("high"))


@dataclass(frozen=True)
class StoreSpec:
    """The observation and action layout shared by every episode in a store.

    ``observation`` is an :class:`ArraySpec`, or a dict of them for dict observations (keys are
    stored and flattened in sorted order).
    """

    observation: ArraySpec | dict[str, ArraySpec]
    action: ArraySpec

    def __post_init__(self):
        if isinstance(self.observation, Mapping):
            if not self.observation:
                raise DataError("dict observation has no keys", field="observation", hint="fix the spec")
            object.__setattr__(
                self, "observation", {k: self.observation[k] for k in sorted(self.observation)}
            )

    @property
    def obs_keys(self) -> list[str] | None:
        """Sorted keys of dict observations, or ``None`` for array observations."""
        return list(self.observation) if isinstance(self.observation, dict) else None

    def obs_items(self) -> list[tuple[str | None, ArraySpec]]:
        """``[(key, spec), ...]`` in storage order; the key is ``None`` for array observations."""
        if isinstance(self.observation, dict):
            return list(self.observation.items())
        return [(None, self.observation)]

    @property
    def obs_dim(self) -> int:
        """Length of a flattened observation (dict keys concatenated in sorted order)."""
        return sum(s.size for _, s in self.obs_items())

    @property
    def act_dim(self) -> int:
        """Length of a flattened action."""
        return self.action.size

    def layout_difference(self, other: StoreSpec) -> tuple[str, str] | None:
        """``(field, description)`` of the first layout difference with ``other``, or ``None``."""
        if self.obs_keys != other.obs_keys:
            return "observations", f"keys {other.obs_keys} differ from the store's {self.obs_keys}"
        for (key, a), (_, b) in zip(self.obs_items(), other.obs_items(), strict=True):
            name = "observations" if key is None else f"observations.{key}"
            if not a.same_layout(b):
                return name, f"shape {b.shape} dtype {b.dtype} differs from the store's {a.shape} {a.dtype}"
        if not self.action.same_layout(other.action):
            b, a = other.action, self.action
            return "actions", f"shape {b.shape} dtype {b.dtype} differs from the store's {a.shape} {a.dtype}"
        return None

    def with_bounds_from(self, other: StoreSpec, path: Any = None) -> StoreSpec:
        """This spec with the bounds ``other`` has and this one lacks (layouts must agree).

        Raises:
            DataError: both specs have bounds for an array and they differ.
        """

        def merge(mine: ArraySpec, theirs: ArraySpec, name: str) -> ArraySpec:
            if theirs.low is None and theirs.high is None:
                return mine
            if mine.low is None and mine.high is None:
                return ArraySpec(mine.shape, mine.dtype, theirs.low, theirs.high)
            if (mine.low, mine.high) != (theirs.low, theirs.high):
                raise DataError(
                    f"bounds {theirs.low}..{theirs.high} differ from the store's {mine.low}..{mine.high}",
                    path=path,
                    field=name,
                    hint="all episodes of a store share one spec; use another store for this environment",
                )
            return mine

        if isinstance(self.observation, dict):
            observation: ArraySpec | dict[str, ArraySpec] = {
                k: merge(s, other.observation[k], f"observations.{k}") for k, s in self.observation.items()
            }
        else:
            observation = merge(self.observation, other.observation, "observations")
        return StoreSpec(observation, merge(self.action, other.action, "actions"))

    def to_dict(self) -> dict:
        """A JSON-able dict (the ``spaces`` entry of ``EpisodeStore.info()``)."""
        if isinstance(self.observation, dict):
            obs: dict = {"dict": {k: s.to_dict() for k, s in self.observation.items()}}
        else:
            obs = self.observation.to_dict()
        return {"observation": obs, "action": self.action.to_dict()}

    def to_json(self) -> str:
        """The spec as a JSON string; :meth:`from_json` reads it back."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | Mapping) -> StoreSpec:
        """Parse :meth:`to_json` output (a JSON string, or the already-decoded dict)."""
        d = json.loads(data) if isinstance(data, str) else data
        try:
            obs = d["observation"]
            observation: ArraySpec | dict[str, ArraySpec]
            if "dict" in obs:
                observation = {k: ArraySpec.from_dict(v) for k, v in obs["dict"].items()}
            else:
                observation = ArraySpec.from_dict(obs)
            return cls(observation, ArraySpec.from_dict(d["action"]))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(
                f"malformed store spec ({e!r})", field="spec", hint="the spec JSON is damaged"
            ) from e

    @classmethod
    def from_gymnasium(cls, observation_space: Any, action_space: Any) -> StoreSpec:
        """Spec of a Gymnasium env: ``Box`` or ``Dict``-of-``Box`` observations, ``Box`` or ``Discrete``
        actions.

        Finite action bounds (``low``/``high``) are recorded (unbounded actions get none);
        observation bounds are not. A ``Discrete(n, start)`` action is an ``int64`` scalar with bounds
        ``start .. start + n - 1`` (:attr:`ArraySpec.num_choices`).
        """
        from gymnasium import spaces

        def box(space: Any, name: str, bounds: bool) -> ArraySpec:
            if bounds and isinstance(space, spaces.Discrete):
                start = int(space.start)
                return ArraySpec((), "int64", start, start + int(space.n) - 1)
            if not isinstance(space, spaces.Box):
                raise DataError(
                    f"unsupported space {space!r}",
                    field=name,
                    hint="armfarm stores Box observations, Dict-of-Box observations, and Box or Discrete actions",
                )
            if not bounds or not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
                return ArraySpec(space.shape, space.dtype.name)
            return ArraySpec(space.shape, space.dtype.name, space.low.tolist(), space.high.tolist())

        if isinstance(observation_space, spaces.Dict):
            observation: ArraySpec | dict[str, ArraySpec] = {
                k: box(s, f"observation_space.{k}", False) for k, s in observation_space.spaces.items()
            }
        else:
            observation = box(observation_space, "observation_space", False)
        return cls(observation, box(action_space, "action_space", True))

    @classmethod
    def from_episode(cls, episode: Episode) -> StoreSpec:
        """The layout of ``episode`` (no bounds). The episode should be validated first."""

        def spec(a: np.ndarray) -> ArraySpec:
            return ArraySpec(a.shape[1:], canonical_dtype(a.dtype).name)

        obs = episode.observations
        observation = {k: spec(v) for k, v in obs.items()} if isinstance(obs, dict) else spec(obs)
        return cls(observation, spec(episode.actions))


def _as_array(value: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise DataError(
            f"cannot be converted to an array ({e})", field=name, hint="give every step the same shape"
        ) from e


@dataclass
class Episode:
    """One trajectory: ``T >= 1`` transitions and ``T + 1`` observations.

    ======================  ===================================  ====================================
    ``observations``        ``(T+1, *obs_shape)`` or dict        ``o_0 .. o_T``
    ``actions``             ``(T, *act_shape)``                  ``a_t``
    ``rewards``             ``(T,)``                             ``r_t`` from ``step(a_t)``
    ``terminated``          ``(T,)`` bool                        terminal state reached (only at T-1)
    ``truncated``           ``(T,)`` bool                        cut by a time limit (only at T-1)
    ``costs``               optional ``(T,)`` float, ``>= 0``    ``c_t``, damage done by ``a_t``
                                                                 (``info["cost"]``; none = all 0)
    ``interventions``       optional ``(T,)`` uint8              which shield layers replaced
                                                                 ``a_t`` (bit flags; none = all 0)
    ``end_reason``          str                                  why the episode was cut short
                                                                 (e.g. a watchdog e-stop), or ""
    ``infos``               optional dict of ``(T, ...)``        not used for learning; not stored
    ======================  ===================================  ====================================

    Array fields are converted with ``np.asarray`` (lists are fine) but keep their dtype until they
    are stored; call :meth:`validate` to check an episode. Costs follow Safety-Gymnasium's convention
    (``info["cost"]`` per step); :attr:`cost_return` is their undiscounted sum.
    """

    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    collector_id: str = ""
    policy_id: str = ""
    env_id: str = ""
    seed: int | None = None
    created_at: str = field(default_factory=utc_now_iso)
    costs: np.ndarray | None = None
    interventions: np.ndarray | None = None
    end_reason: str = ""
    infos: dict[str, np.ndarray] | None = None

    def __post_init__(self):
        if isinstance(self.observations, Mapping):
            self.observations = {
                str(k): _as_array(v, f"observations.{k}") for k, v in self.observations.items()
            }
        else:
            self.observations = _as_array(self.observations, "observations")
        for name in ("actions", "rewards", "terminated", "truncated"):
            setattr(self, name, _as_array(getattr(self, name), name))
        for name in ("costs", "interventions"):
            if getattr(self, name) is not None:
                setattr(self, name, _as_array(getattr(self, name), name))
        if isinstance(self.seed, np.integer):
            self.seed = int(self.seed)

    @property
    def length(self) -> int:
        """Number of transitions ``T``."""
        return int(self.rewards.shape[0]) if self.rewards.ndim >= 1 else 0

    @property
    def episode_return(self) -> float:
        """Undiscounted return: the float64 sum of the (float32) rewards."""
        return float(np.sum(self.rewards.astype(np.float32), dtype=np.float64))

    @property
    def step_costs(self) -> np.ndarray:
        """``(T,)`` float32 costs, zeros when the episode has none."""
        if self.costs is None:
            return np.zeros(self.length, np.float32)
        return self.costs.astype(np.float32, copy=False)

    @property
    def step_interventions(self) -> np.ndarray:
        """``(T,)`` uint8 shield intervention flags, zeros when the episode has none."""
        if self.interventions is None:
            return np.zeros(self.length, np.uint8)
        return self.interventions.astype(np.uint8, copy=False)

    @property
    def cost_return(self) -> float:
        """Undiscounted cost: the float64 sum of the (float32) costs (0 without costs)."""
        return float(np.sum(self.step_costs, dtype=np.float64))

    @property
    def intervention_count(self) -> int:
        """Steps at which a shield replaced the action."""
        return int(np.count_nonzero(self.step_interventions))

    def validate(self, spec: StoreSpec | None = None, source: Any = None) -> None:
        """Check the episode; raise :class:`DataError` naming ``source`` (a file) and the field.

        Checks: ``T >= 1``; ``T + 1`` observations and ``T`` of everything else; storable dtypes;
        finite observations, actions and rewards; 0/1 flags that are only set on the last step;
        metadata types; and, with ``spec``, the same shapes and dtypes as the spec.
        """
        path = source
        rewards = self.rewards
        if rewards.ndim != 1:
            raise DataError(
                f"must have shape (T,), got {rewards.shape}",
                path=path,
                field="rewards",
                hint="pass one reward per step",
            )
        T = rewards.shape[0]
        if T < 1:
            raise DataError(
                "episode is empty (T = 0)",
                path=path,
                field="rewards",
                hint="an episode needs at least one transition; drop empty episodes",
            )
        _check_values(rewards, "rewards", path, T)
        _check_values(self.actions, "actions", path, T)
        if self.costs is not None:
            check_costs(self.costs, path, T)
        if self.interventions is not None:
            flags = self.interventions
            _check_values(flags, "interventions", path, T)
            if flags.ndim != 1 or flags.dtype.kind not in "biu" or ((flags < 0) | (flags > 255)).any():
                raise DataError(
                    f"must be a (T,) array of integers 0..255 (shield layer flags), got {flags.dtype} {flags.shape}",
                    path=path,
                    field="interventions",
                    hint="pass one uint8 per step; 0 where no shield layer acted",
                )
        if isinstance(self.observations, dict):
            if not self.observations:
                raise DataError(
                    "dict observation has no keys", path=path, field="observations", hint="add keys"
                )
            for key, obs in self.observations.items():
                _check_values(obs, f"observations.{key}", path, T + 1)
        else:
            _check_values(self.observations, "observations", path, T + 1)
        for name in ("terminated", "truncated"):
            flags = getattr(self, name)
            _check_values(flags, name, path, T)
            if flags.ndim != 1 or not np.isin(flags, (0, 1)).all():
                raise DataError(
                    f"must be a (T,) array of booleans (or 0/1), got shape {flags.shape}",
                    path=path,
                    field=name,
                    hint="pass one bool per step",
                )
            if flags[:-1].any():
                raise DataError(
                    f"is set before the last step (at step {int(np.flatnonzero(flags[:-1])[0])} of {T})",
                    path=path,
                    field=name,
                    hint="an episode ends at its first terminated/truncated step; split the data there",
                )
        if not isinstance(self.episode_id, str) or not self.episode_id:
            raise DataError(
                "must be a non-empty str", path=path, field="episode_id", hint="pass a unique string id"
            )
        for name in ("collector_id", "policy_id", "env_id", "created_at", "end_reason"):
            if not isinstance(getattr(self, name), str):
                raise DataError("must be a str", path=path, field=name, hint=f"pass {name} as a string")
        if len(self.end_reason) > MAX_END_REASON or not self.end_reason.isprintable():
            raise DataError(
                f"must be printable and at most {MAX_END_REASON} characters",
                path=path,
                field="end_reason",
                hint="say briefly why the episode ended, e.g. 'watchdog: cost budget'",
            )
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise DataError(
                f"must be an int or None, got {self.seed!r}", path=path, field="seed", hint="pass an int"
            )
        for key, value in (self.infos or {}).items():
            if np.shape(value)[:1] != (T,):
                raise DataError(
                    f"must have T = {T} rows", path=path, field=f"infos.{key}", hint="one entry per step"
                )
        if spec is not None:
            difference = spec.layout_difference(StoreSpec.from_episode(self))
            if difference is not None:
                name, what = difference
                raise DataError(
                    what,
                    path=path,
                    field=name,
                    hint="all episodes of a store share one spec; write these episodes to another store",
                )
            if spec.action.num_choices is not None:
                low, high = int(spec.action.low), int(spec.action.high)
                outside = (self.actions < low) | (self.actions > high)
                if outside.any():
                    bad = int(np.flatnonzero(outside)[0])
                    raise DataError(
                        f"discrete action {int(self.actions[bad])} at step {bad} is outside {low}..{high}",
                        path=path,
                        field="actions",
                        hint="a Discrete action space's actions are integers start .. start + n - 1",
                    )


def check_costs(costs: Any, path: Any, rows: int) -> None:
    """``costs`` is a ``(rows,)`` float array of finite values ``>= 0``; raise :class:`DataError` naming
    the field ``costs`` otherwise."""
    costs = np.asarray(costs)
    _check_values(costs, "costs", path, rows)
    if costs.ndim != 1 or costs.dtype.kind not in "fiub":
        raise DataError(
            f"must be a (T,) numeric array, got {costs.dtype} {costs.shape}",
            path=path,
            field="costs",
            hint="pass one cost per step (0 where there was no damage)",
        )
    if (costs < 0).any():
        bad = int(np.flatnonzero(costs < 0)[0])
        raise DataError(
            f"is negative at step {bad} ({float(costs[bad])}); costs must be >= 0",
            path=path,
            field="costs",
            hint="a cost counts damage, so it is never negative; report rewards as rewards",
        )


def _check_values(a: np.ndarray, name: str, path: Any, rows: int) -> None:
    """Storable dtype, ``rows`` leading entries, all finite."""
    canonical_dtype(a.dtype, path=path, field=name)
    if a.ndim < 1 or a.shape[0] != rows:
        raise DataError(
            f"has {a.shape[0] if a.ndim else 0} rows (shape {a.shape}) but needs {rows}",
            path=path,
            field=name,
            hint="observations need T+1 rows; actions, rewards, terminated and truncated need T",
        )
    if 0 in a.shape[1:]:
        raise DataError(
            f"has an empty per-step shape {a.shape[1:]}",
            path=path,
            field=name,
            hint="every per-step array needs at least one element",
        )
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a.reshape(rows, -1)).all(axis=1))[0]
        raise DataError(
            f"contains NaN or inf (first at row {bad})",
            path=path,
            field=name,
            hint="drop or repair the affected episodes before storing them",
        )
    if a.dtype.kind == "f" and np.abs(a).max(initial=0.0) > np.finfo(np.float32).max:
        raise DataError(
            "has values too large for float32",
            path=path,
            field=name,
            hint="rescale the data; floats are stored as float32",
        )
