"""Algorithm configs: frozen dataclasses with checked shared fields, a one-line doc per field, and
their JSON and ``--set`` forms."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from typing import Any

from armfarm.overrides import coerce_fields


def param(default: Any, doc: str) -> Any:
    """A config field with its one-line ``doc`` (listed by ``armfarm train ALGO --help-config``)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def describe_config(config_cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, doc)`` of every field of an algorithm's config."""
    hints = typing.get_type_hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        hint = hints.get(f.name, f.type)
        type_name = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
        rows.append((f.name, type_name or str(hint).replace("typing.", ""), f.default, f.metadata.get("doc", "")))
    return rows


class ConfigBase:
    """Mixin for the frozen algorithm configs: lists become tuples (so configs hash and compare, which
    :func:`make_train_fn` relies on) and the shared fields are checked."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        hidden = getattr(self, "hidden", (1,))
        if not isinstance(hidden, tuple) or not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, got {hidden!r}")
        if getattr(self, "batch_size", 1) < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0.0 <= getattr(self, "gamma", 0.5) <= 1.0:
            raise ValueError("gamma must be in [0, 1]")
        if not 0.0 < getattr(self, "tau", 0.5) <= 1.0:
            raise ValueError("tau must be in (0, 1]")
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name.endswith("lr") and not getattr(self, f.name) > 0:
                raise ValueError(f"{f.name} must be > 0")
        init = getattr(self, "init", "lecun")
        if init not in ("lecun", "orthogonal", "torch"):
            raise ValueError(f"init must be 'lecun', 'orthogonal' or 'torch', got {init!r}")
        self._validate()

    def _validate(self) -> None:  # per-algorithm checks
        pass


def config_to_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(config_cls: type, d: Mapping[str, Any]) -> Any:
    """A config from a dict of field values (JSON from a checkpoint, or ``--set`` text), each coerced by
    the field's type hint (:func:`armfarm.overrides.coerce_fields`)."""
    return config_cls(**coerce_fields(config_cls, d))
