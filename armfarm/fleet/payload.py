"""The episode wire format: one compact binary body per episode, or per chunk of a long episode.

A body is::

    magic      8 bytes     b"ARMFEP1\\n"
    length     4 bytes     uint32, little-endian: the size of the header
    header     length      UTF-8 JSON object (below)
    data       the rest    each array's bytes, C order, little-endian, back to back in header order

and the header is ``{"meta": {...}, "arrays": [...]}`` plus ``"chunk"`` for chunks::

    "meta":   {"episode_id": "ep-0001",                      required, [A-Za-z0-9][A-Za-z0-9._:-]{0,127}
               "created_at": "2024-05-01T12:00:00+00:00",    required, ISO 8601
               "policy_id": "iql@3f2a...",                   optional, default ""
               "env_id": "Hopper-v5",                        optional, default: the robot's registered env
               "seed": 7,                                    optional int, default null
               "end_reason": "watchdog: cost budget"}        optional, default "": why it was cut short
    "arrays": [{"name": "observations", "dtype": "float32", "shape": [T+1, 11]},
               {"name": "actions", "dtype": "float32", "shape": [T, 3]},
               {"name": "rewards", "dtype": "float32", "shape": [T]},
               {"name": "terminated", "dtype": "bool", "shape": [T]},
               {"name": "truncated", "dtype": "bool", "shape": [T]},
               {"name": "costs", "dtype": "float32", "shape": [T]},          optional: c_t >= 0, finite
               {"name": "interventions", "dtype": "uint8", "shape": [T]}]    optional: shield layer flags
    "chunk":  {"index": 0, "final": false}

An episode without ``costs`` (or ``interventions``) means all zeros, and :func:`wire_arrays` leaves
all-zero ones out, so a cost-free episode has one encoding and one digest whichever release sent it.

Dict observations send one array per key, ``observations.<key>``. A chunk holds ``n >= 1``
consecutive transitions and their ``n`` observations; the final chunk also holds the observation
after the last action (``n + 1`` rows). Decoding is strict: unknown keys, wrong types, unknown
dtypes, NaN in the header, overlapping or missing data and trailing bytes are all errors. NumPy
is the only dependency, so robots can encode without the rest of armfarm.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

MAGIC = b"ARMFEP1\n"
CONTENT_TYPE = "application/octet-stream"
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAYS = 64
MAX_NDIM = 8
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_OBS_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
}
_STEP_ARRAYS = ("actions", "rewards", "terminated", "truncated")
_OPTIONAL_STEP_ARRAYS = {"costs": "float32", "interventions": "uint8"}
_META_REQUIRED = {"episode_id", "created_at"}
_META_OPTIONAL = {"policy_id", "env_id", "seed", "end_reason"}
_META_DIGESTED = _META_REQUIRED | {"policy_id", "env_id", "seed"}  # plus end_reason where it is set
_MAX_TEXT = 256
_PREFIX = struct.Struct("<8sI")


class PayloadError(ValueError):
    """A body that is not a valid episode payload; ``field`` names the offending part."""

    def __init__(self, message: str, field: str | None = None):
        self.message = message
        self.field = field
        super().__init__(f"field '{field}': {message}" if field else message)


@dataclass(frozen=True)
class Chunk:
    """Position of a chunk in its episode: ``index`` from 0; ``final`` on the last one."""

    index: int
    final: bool


@dataclass(frozen=True)
class EpisodePayload:
    """A decoded body: metadata (defaults filled in), arrays by wire name, and the chunk, if any.

    Arrays are read-only views of the body (no copy).
    """

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    chunk: Chunk | None = None

    @property
    def episode_id(self) -> str:
        return self.meta["episode_id"]

    @property
    def steps(self) -> int:
        """Transitions in this body."""
        return int(self.arrays["actions"].shape[0])

    @property
    def observations(self) -> np.ndarray | dict[str, np.ndarray]:
        """The observation array, or a dict of them by key."""
        if "observations" in self.arrays:
            return self.arrays["observations"]
        return {name.split(".", 1)[1]: a for name, a in self.arrays.items() if name.startswith("observations.")}


def wire_arrays(
    observations: np.ndarray | Mapping[str, np.ndarray],
    actions: np.ndarray,
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    costs: np.ndarray | None = None,
    interventions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Episode arrays by wire name (dict observations become ``observations.<key>``, sorted); costs and
    interventions only where some are nonzero (cast to their wire dtypes)."""
    if isinstance(observations, Mapping):
        arrays = {f"observations.{k}": np.asarray(observations[k]) for k in sorted(observations)}
    else:
        arrays = {"observations": np.asarray(observations)}
    arrays.update(actions=np.asarray(actions), rewards=np.asarray(rewards),
                  terminated=np.asarray(terminated), truncated=np.asarray(truncated))
    for name, value in (("costs", costs), ("interventions", interventions)):
        if value is not None and np.any(np.asarray(value) != 0):
            arrays[name] = np.asarray(value).astype(_OPTIONAL_STEP_ARRAYS[name], copy=False)
    return arrays


def encode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], chunk: Chunk | None = None) -> bytes:
    """The body for ``arrays`` (by wire name) and ``meta``; the inverse of :func:`decode`."""
    entries, blobs = [], []
    for name, array in arrays.items():
        a = np.ascontiguousarray(array)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        entries.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape)})
        blobs.append(a.tobytes())
    header: dict[str, Any] = {"meta": dict(meta), "arrays": entries}
    if chunk is not None:
        header["chunk"] = {"index": chunk.index, "final": chunk.final}
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([_PREFIX.pack(MAGIC, len(head)), head, *blobs])


def decode(body: bytes) -> EpisodePayload:
    """Parse and check a body (framing, header, metadata, array layout and row counts).

    Raises:
        PayloadError: what is wrong, naming the field.
    """
    view = memoryview(body)
    if len(view) < _PREFIX.size:
        raise PayloadError(f"body of {len(view)} bytes is too short for an episode payload", "body")
    magic, head_len = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise PayloadError(f"does not start with {MAGIC!r}; not an armfarm episode payload", "body")
    if head_len > min(MAX_HEADER_BYTES, len(view) - _PREFIX.size):
        raise PayloadError(f"header length {head_len} exceeds the body or {MAX_HEADER_BYTES} bytes", "header")
    header = _parse_json(bytes(view[_PREFIX.size : _PREFIX.size + head_len]))
    _exact_keys(header, {"meta", "arrays"}, {"chunk"}, "header")
    meta = _check_meta(header["meta"])
    chunk = _check_chunk(header.get("chunk"))
    specs = _check_array_specs(header["arrays"])
    offset = _PREFIX.size + head_len
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape in specs:
        count = 1
        for d in shape:
            count *= d
        nbytes = count * dtype.itemsize
        if nbytes > len(view) - offset:
            raise PayloadError(f"needs {nbytes} bytes but only {len(view) - offset} remain in the body", name)
        arrays[name] = np.frombuffer(view, dtype=dtype, count=count, offset=offset).reshape(shape)
        if dtype.kind == "b" and (arrays[name].view(np.uint8) > 1).any():
            raise PayloadError("bool array holds bytes other than 0 and 1", name)
        offset += nbytes
    if offset != len(view):
        raise PayloadError(f"{len(view) - offset} bytes after the last array", "body")
    payload = EpisodePayload(meta, arrays, chunk)
    _check_rows(payload)
    return payload


def content_digest(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """SHA-256 of an episode's content: metadata and arrays (names, dtypes, shapes, bytes).

    Equal for an upload and the episode the store holds for it, so servers use it to tell an
    idempotent retry from a different episode reusing an id, and clients to check acks. All-zero
    ``costs`` and ``interventions`` count as absent, and an empty ``end_reason`` is not hashed, so
    digests of cost-free episodes are those of releases before costs existed.
    """
    arrays = {k: a for k, a in arrays.items() if k not in _OPTIONAL_STEP_ARRAYS or np.any(np.asarray(a) != 0)}
    h = hashlib.sha256()
    fields = {k: meta.get(k) for k in sorted(_META_DIGESTED)}
    if meta.get("end_reason"):
        fields["end_reason"] = meta["end_reason"]
    h.update(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(json.dumps([name, a.dtype.name, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def split(payload: EpisodePayload, max_steps: int) -> list[bytes]:
    """Chunk bodies of at most ``max_steps`` transitions each, for uploading a long episode."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    T = payload.steps
    starts = list(range(0, T, max_steps))
    bodies = []
    for i, start in enumerate(starts):
        stop = min(start + max_steps, T)
        final = i == len(starts) - 1
        part = {
            name: a[start : stop + (1 if final else 0)] if name.startswith("observations") else a[start:stop]
            for name, a in payload.arrays.items()
        }
        bodies.append(encode(part, payload.meta, Chunk(i, final)))
    return bodies


def assemble(chunks: list[EpisodePayload]) -> EpisodePayload:
    """The whole episode from its chunks ``0..n-1`` (in order, the last one final).

    Raises:
        PayloadError: chunks missing, out of order, of another episode, or with other arrays.
    """
    if not chunks or any(c.chunk is None or c.chunk.index != i for i, c in enumerate(chunks)):
        raise PayloadError("chunks must be numbered 0, 1, 2, ... without gaps", "chunk.index")
    if not chunks[-1].chunk.final or any(c.chunk.final for c in chunks[:-1]):
        raise PayloadError("exactly the last chunk must be final", "chunk.final")
    first = chunks[0]
    for c in chunks[1:]:
        if c.meta != first.meta:
            raise PayloadError(f"chunk {c.chunk.index} has other metadata than chunk 0", "meta")
        if {n: (a.dtype, a.shape[1:]) for n, a in c.arrays.items()} != {
            n: (a.dtype, a.shape[1:]) for n, a in first.arrays.items()
        }:
            raise PayloadError(f"chunk {c.chunk.index} has other arrays than chunk 0", "arrays")
    arrays = {name: np.concatenate([c.arrays[name] for c in chunks]) for name in first.arrays}
    whole = EpisodePayload(first.meta, arrays, None)
    _check_rows(whole)
    return whole


# -- strict parsing --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise PayloadError(f"{name} is not allowed in the header (JSON has no NaN or infinity)", "header")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise PayloadError("has a duplicate key", "header")
    return out


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise PayloadError(f"is not valid UTF-8 JSON ({e})", "header") from None


def _exact_keys(obj: Any, required: set[str], optional: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise PayloadError(f"must be a JSON object, got {type(obj).__name__}", where)
    unknown = sorted(set(obj) - required - optional)
    if unknown:
        raise PayloadError(f"unknown field(s) {unknown}; allowed: {sorted(required | optional)}", where)
    missing = sorted(required - set(obj))
    if missing:
        raise PayloadError(f"missing field(s) {missing}", where)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_meta(meta: Any) -> dict[str, Any]:
    _exact_keys(meta, _META_REQUIRED, _META_OPTIONAL, "meta")
    episode_id = meta["episode_id"]
    if not isinstance(episode_id, str) or not ID_PATTERN.fullmatch(episode_id):
        raise PayloadError(f"{episode_id!r} must match {ID_PATTERN.pattern}", "meta.episode_id")
    for name in ("policy_id", "env_id", "created_at", "end_reason"):
        value = meta.get(name, "")
        if not isinstance(value, str) or len(value) > _MAX_TEXT:
            raise PayloadError(f"must be a string of at most {_MAX_TEXT} characters", f"meta.{name}")
        if not value.isprintable():
            raise PayloadError(f"{value!r} holds control characters; metadata must be printable", f"meta.{name}")
    try:
        created = datetime.fromisoformat(meta["created_at"])
    except ValueError:
        raise PayloadError(f"{meta['created_at']!r} is not an ISO 8601 time", "meta.created_at") from None
    if created.tzinfo is None:
        raise PayloadError(f"{meta['created_at']!r} has no time zone (use UTC, +00:00)", "meta.created_at")
    seed = meta.get("seed")
    if seed is not None and (not _is_int(seed) or not -(2**63) <= seed < 2**64):
        raise PayloadError(f"{seed!r} must be null or an integer in [-2**63, 2**64)", "meta.seed")
    return {"policy_id": "", "env_id": "", "seed": None, "end_reason": "", **meta}


def _check_chunk(chunk: Any) -> Chunk | None:
    if chunk is None:
        return None
    _exact_keys(chunk, {"index", "final"}, set(), "chunk")
    if not _is_int(chunk["index"]) or not 0 <= chunk["index"] < 2**31:
        raise PayloadError(f"{chunk['index']!r} must be an integer >= 0", "chunk.index")
    if not isinstance(chunk["final"], bool):
        raise PayloadError(f"{chunk['final']!r} must be true or false", "chunk.final")
    return Chunk(chunk["index"], chunk["final"])


def _check_array_specs(entries: Any) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_ARRAYS:
        raise PayloadError(f"must be a list of 1 to {MAX_ARRAYS} array descriptions", "arrays")
    specs = []
    for i, entry in enumerate(entries):
        _exact_keys(entry, {"name", "dtype", "shape"}, set(), f"arrays[{i}]")
        name, dtype, shape = entry["name"], entry["dtype"], entry["shape"]
        if not isinstance(name, str) or not (
            name in ("observations", *_STEP_ARRAYS, *_OPTIONAL_STEP_ARRAYS)
            or (name.startswith("observations.") and _OBS_KEY.fullmatch(name.split(".", 1)[1]))
        ):
            raise PayloadError(
                f"unknown array {name!r}; expected observations (or observations.<key>), "
                f"{', '.join(_STEP_ARRAYS)} and optionally {', '.join(_OPTIONAL_STEP_ARRAYS)}",
                f"arrays[{i}].name",
            )
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise PayloadError(f"dtype {dtype!r} is not one of {sorted(_DTYPES)}", name)
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= MAX_NDIM
            or not all(_is_int(d) and 0 <= d < 2**31 for d in shape)
        ):
            raise PayloadError(f"shape {shape!r} must be a list of 1 to {MAX_NDIM} sizes >= 0", name)
        specs.append((name, np.dtype(dtype).newbyteorder("<"), tuple(shape)))
    names = [name for name, _, _ in specs]
    if len(set(names)) != len(names):
        raise PayloadError("an array name appears twice", "arrays")
    keyed = [n for n in names if n.startswith("observations.")]
    if ("observations" in names) == bool(keyed):
        raise PayloadError("needs either 'observations' or 'observations.<key>' arrays (not both)", "arrays")
    missing = [n for n in _STEP_ARRAYS if n not in names]
    if missing:
        raise PayloadError(f"missing array(s) {missing}", "arrays")
    return specs


def _check_rows(payload: EpisodePayload) -> None:
    """Row counts agree: T >= 1 transitions, T (+1 unless a non-final chunk) observations."""
    arrays = payload.arrays
    T = arrays["actions"].shape[0]
    if T == 0:
        raise PayloadError("has no transitions; an episode needs at least one step", "actions")
    steps = (("rewards", "float32"), ("terminated", "bool"), ("truncated", "bool"), *_OPTIONAL_STEP_ARRAYS.items())
    for name, dtype in steps:
        a = arrays.get(name)
        if a is None:
            continue
        if a.shape != (T,) or a.dtype.name != dtype:
            raise PayloadError(f"must be {dtype} of shape ({T},), got {a.dtype.name} {a.shape}", name)
    costs = arrays.get("costs")
    if costs is not None and not (np.isfinite(costs).all() and (costs >= 0).all()):
        raise PayloadError("must be finite and >= 0 (a cost counts damage)", "costs")
    obs_rows = T if payload.chunk is not None and not payload.chunk.final else T + 1
    for name, a in arrays.items():
        if name.startswith("observations") and a.shape[0] != obs_rows:
            raise PayloadError(f"has {a.shape[0]} rows; {T} transitions need {obs_rows}", name)
