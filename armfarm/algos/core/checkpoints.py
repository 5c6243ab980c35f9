"""Checkpoints: an agent's whole state, config and dataset statistics in a directory, without pickle.

::

    meta.json              format, format_version, algo, config, stats, step, extra, leaf list, and the
                           name of the state file; written last, atomically (it is the commit record)
    state-<step>-<id>.npz  every state leaf keyed by its pytree path (``jax.tree_util.keystr``)
    policy.npz             the exported :class:`~armfarm.policy.NumpyPolicy`

Loading rebuilds the state template with the algorithm's ``init`` and fills its leaves by path.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from armfarm import __version__
from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.config import config_from_dict, config_to_dict
from armfarm.algos.core.contract import Algorithm, get_algorithm
from armfarm.algos.core.stats import DatasetStats
from armfarm.durable import fsync_path, write_atomic

CHECKPOINT_FORMAT = "armfarm-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
META_FILE = "meta.json"
POLICY_FILE = "policy.npz"


class CheckpointError(ValueError):
    """A checkpoint is corrupt, inconsistent, or from an incompatible format version."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The directory does not exist or holds no checkpoint."""


@dataclasses.dataclass
class Checkpoint:
    algo_name: str
    config: Any
    state: AgentState
    stats: DatasetStats
    step: int
    extra: dict[str, Any]
    path: Path | None = None

    @property
    def policy_path(self) -> Path | None:
        return self.path / POLICY_FILE if self.path is not None else None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic | np.ndarray) or hasattr(o, "__array__"):
        return np.asarray(o).tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"checkpoint 'extra' must be JSON-serialisable; got a {type(o).__name__}")


def _flatten_state(state: AgentState) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(state))
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


def latest_checkpoint(run_dir: str | os.PathLike, required: tuple[str, ...] = ()) -> Path | None:
    """The newest complete checkpoint ``run_dir/checkpoints/step_N`` holding every file in ``required``.

    A checkpoint is complete once its ``meta.json`` exists (:func:`save_checkpoint` writes it last), so
    a process killed while saving leaves the previous checkpoint as the one to resume from.
    """
    found = [p for p in (Path(run_dir) / "checkpoints").glob("step_*") if p.name.split("_", 1)[1].isdigit()]
    for directory in sorted(found, key=lambda p: int(p.name.split("_", 1)[1]), reverse=True):
        if (directory / META_FILE).is_file() and all((directory / name).is_file() for name in required):
            return directory
    return None


def save_checkpoint(
    directory: str | os.PathLike,
    algo: Algorithm | str,
    config: Any,
    state: AgentState,
    stats: DatasetStats,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state`` (params, optimiser states, PRNG key, step), ``config``, ``stats`` and the JSON
    ``extra`` dict to ``directory`` (created if needed), plus the exported ``policy.npz`` (if the
    algorithm has a policy).

    ``meta.json`` is replaced last, so a crash mid-save leaves the previous checkpoint loadable.
    Returns the directory.
    """
    algo = get_algorithm(algo)
    if not isinstance(config, algo.config_cls):
        raise TypeError(f"{algo.name} needs a {algo.config_cls.__name__}, got {type(config).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = _flatten_state(state)
    step = int(arrays["['step']"])
    try:
        extra_json = json.loads(json.dumps(dict(extra or {}), default=_json_default))
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint 'extra' must be JSON-serialisable: {e}") from e

    state_file = f"state-{step:010d}-{uuid.uuid4().hex[:8]}.npz"
    write_atomic(directory / state_file, lambda f: np.savez(f, **arrays))

    if algo.export_policy is not None:  # (evaluators have no policy)
        policy = algo.export_policy(config, state)
        if stats.obs_keys is not None:
            policy.obs_keys = list(stats.obs_keys)
        policy.save(directory / POLICY_FILE)

    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "armfarm_version": __version__,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "algo": algo.name,
        "step": step,
        "config": config_to_dict(config),
        "stats": stats.to_dict(),
        "extra": extra_json,
        "state_file": state_file,
        "leaves": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    write_atomic(directory / META_FILE, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    fsync_path(directory)
    for old in directory.glob("state-*.npz"):
        if old.name != state_file:
            try:
                old.unlink()
            except OSError:
                pass
    return directory


def load_checkpoint(directory: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`CheckpointNotFoundError` (also a ``FileNotFoundError``) when there is none, and
    :class:`CheckpointError` (a ``ValueError``) for a format-version mismatch, an unknown algorithm, or
    missing/mismatched arrays.
    """
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not directory.is_dir():
        raise CheckpointNotFoundError(f"no checkpoint directory at {directory}")
    if not meta_path.is_file():
        raise CheckpointNotFoundError(f"{directory} holds no {META_FILE}; not an armfarm checkpoint")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: unreadable checkpoint metadata ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{meta_path}: not an armfarm checkpoint (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{meta_path}: not an armfarm checkpoint")
    version = meta.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: checkpoint format version {version}, but this armfarm ({__version__}) reads "
            f"version {CHECKPOINT_FORMAT_VERSION}"
        )
    try:
        algo = get_algorithm(meta["algo"])
        config = config_from_dict(algo.config_cls, meta["config"])
        stats = DatasetStats.from_dict(meta["stats"])
        state_path = directory / meta["state_file"]
        step = int(meta["step"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: invalid checkpoint metadata ({type(e).__name__}: {e})") from e
    if not state_path.is_file():
        raise CheckpointError(f"{directory}: state file {state_path.name} named in {META_FILE} is missing")
    try:
        with np.load(state_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise CheckpointError(f"{state_path}: unreadable state arrays ({type(e).__name__}: {e})") from e

    template = jax.eval_shape(lambda: algo.init(config, stats, 0))
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    expected = set()
    for path, spec in paths:
        k = jax.tree_util.keystr(path)
        expected.add(k)
        if k not in arrays:
            raise CheckpointError(f"{state_path}: missing state leaf {k}")
        arr = arrays[k]
        if arr.shape != tuple(spec.shape) or arr.dtype != spec.dtype:
            raise CheckpointError(
                f"{state_path}: leaf {k} is {arr.dtype}{list(arr.shape)}, expected {spec.dtype}{list(spec.shape)}"
            )
        leaves.append(jnp.asarray(arr))
    unexpected = sorted(set(arrays) - expected)
    if unexpected:
        raise CheckpointError(f"{state_path}: unexpected state leaves {unexpected[:5]}")
    state = jax.tree_util.tree_unflatten(treedef, leaves)
    state_step = int(arrays["['step']"])
    if state_step != step:
        raise CheckpointError(f"{directory}: state step {state_step} != meta.json step {step} (interrupted save?)")
    return Checkpoint(algo.name, config, state, stats, step, dict(meta.get("extra") or {}), directory)
