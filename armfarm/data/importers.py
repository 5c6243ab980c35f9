"""Importers: D4RL HDF5 files, NumPy ``.npz`` archives and Minari datasets into an episode store.

Every importer reads and validates the *whole* source first and then writes all its episodes in one
``EpisodeStore.write`` call, so a bad file leaves the store exactly as it was (a store that did not
exist is not created). Errors are :class:`DataError` naming the source file and the offending field.
Episode ids are derived from the file's SHA-256, so importing the same file twice is detected
(pass ``on_duplicate="skip"`` to make re-imports no-ops). Each import appends an entry to the store
provenance's ``imports`` list: format, source path, SHA-256, import time and counts.

**D4RL / npz flat arrays.** Keys ``observations``, ``actions``, ``rewards``, ``terminals``,
``timeouts`` (one row per transition) and optionally ``next_observations``; ``timeouts`` may be
missing (as in D4RL's v0 files) when ``next_observations`` is there. An optional ``costs`` array
(DSRL/OSRL's layout of cost-annotated D4RL files: one cost ``>= 0`` per transition) is kept per step;
without it the data reads as zero cost. Episodes end at each
``terminals | timeouts`` step; a trailing segment with neither is imported as truncated. With
``next_observations``, an episode also ends (as truncated) wherever ``next_observations[i]`` differs
from ``observations[i + 1]``, since a stored episode cannot represent that. Without
``next_observations`` the final observation of an episode is unknown:

* at a terminal step, the terminal transition is kept and its final observation is a copy of its
  observation (harmless: terminal transitions are never bootstrapped);
* at a timeout (or the end of the data) the last transition is **dropped**, because its next
  observation is unknown and it would be bootstrapped; its observation becomes the final one. An
  episode of a single such step is dropped entirely (counted in ``dropped_transitions``).

**Minari.** The layout written by ``minari`` (0.4-0.5) with the ``hdf5`` data format: a dataset
directory holding ``data/metadata.json`` and ``data/main_data.hdf5``, whose groups ``episode_<i>``
hold ``observations`` (``T + 1`` rows; a group of arrays for Dict spaces; JPEG-encoded images are
decoded), ``actions``, ``rewards``, ``terminations`` and ``truncations``, and optionally ``costs``
(armfarm's exporter writes them). Infos are not imported.

**OGBench.** Its ``.npz`` layouts (as shipped, compact with ``valids``, or regular with
``next_observations``); see :func:`import_ogbench`.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from armfarm.data.errors import DataError
from armfarm.data.schema import Episode, StoreSpec, canonical_dtype, check_costs, utc_now_iso
from armfarm.data.shards import file_sha256
from armfarm.data.store import EpisodeStore

FLAT_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
_EPISODE_GROUP = re.compile(r"episode_(\d+)")
# Episode attributes written by armfarm's Minari exporter, read back on import.
MINARI_EPISODE_ATTRS = ("episode_id", "collector_id", "policy_id", "env_id", "created_at")
MINARI_ATTR_PREFIX = "armfarm_"


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: ``episodes`` and ``transitions`` now in the store at ``store_path``."""

    episodes: int
    transitions: int
    store_path: Path
    source: Path
    format: str
    sha256: str
    dropped_transitions: int = 0


def import_d4rl(
    src: str | os.PathLike,
    store_path: str | os.PathLike,
    env_id: str | None = None,
    on_duplicate: Literal["error", "skip"] = "error",
) -> ImportReport:
    """Import a D4RL-style HDF5 file (top-level datasets named as in the module docs)."""
    src = Path(src)
    try:
        file = h5py.File(src, "r")
    except OSError as e:
        raise DataError(
            f"cannot open as HDF5 ({e})",
            path=src,
            hint="the file is missing, truncated or not an HDF5 file; download it again",
        ) from e
    with file:

        def get(key: str) -> np.ndarray | None:
            if key not in file:
                return None
            node = file[key]
            if not isinstance(node, h5py.Dataset):
                raise DataError(
                    "is a group, expected an array", path=src, field=key, hint="this is not a D4RL-style file"
                )
            try:
                return node[()]
            except (OSError, ValueError, TypeError) as e:
                raise DataError(
                    f"cannot be read ({e})",
                    path=src,
                    field=key,
                    hint="the file is truncated or corrupt; download it again",
                ) from e

        digest = file_sha256(src)
        episodes, dropped = _episodes_from_flat(get, src, "d4rl", env_id or "", digest[:16])
    return _write(episodes, src, store_path, "d4rl", on_duplicate, dropped, sha256=digest)


def import_npz(
    src: str | os.PathLike,
    store_path: str | os.PathLike,
    env_id: str | None = None,
    on_duplicate: Literal["error", "skip"] = "error",
) -> ImportReport:
    """Import a NumPy ``.npz`` archive of flat arrays (keys as in the module docs)."""
    src = Path(src)
    with _open_npz(src) as get:
        digest = file_sha256(src)
        episodes, dropped = _episodes_from_flat(get, src, "npz", env_id or "", digest[:16])
    return _write(episodes, src, store_path, "npz", on_duplicate, dropped, sha256=digest)


def import_ogbench(
    src: str | os.PathLike,
    store_path: str | os.PathLike,
    env_id: str | None = None,
    on_duplicate: Literal["error", "skip"] = "error",
) -> ImportReport:
    """Import an OGBench dataset file (``.npz``), in any of its three layouts:

    * **as OGBench ships it**: ``observations`` and ``actions`` with one row per *state*, and
      ``terminals`` = 1 on each trajectory's last state (whose action has no next state and is dropped);
    * **compact**: the same with ``valids`` = 0 on each trajectory's last state (``terminals`` is then 1
      on its last two rows, and is not needed);
    * **regular**: one row per transition with ``next_observations``, ``terminals`` = 1 on each
      trajectory's last transition.

    OGBench's data has no rewards (goals are relabeled when training), so rewards are stored as 0, and its
    trajectories end by a time limit, so each episode is truncated. ``qpos``/``qvel``/``button_states``
    are not imported.
    """
    src = Path(src)
    with _open_npz(src) as get:
        digest = file_sha256(src)
        episodes = _ogbench_episodes(get, src, env_id or "", digest[:16])
    return _write(episodes, src, store_path, "ogbench", on_duplicate, 0, sha256=digest)


class _open_npz:
    """``with _open_npz(path) as get:``: ``get(key)`` is the archive's array (None if absent), with every
    failure a :class:`DataError` naming the file and the key."""

    def __init__(self, src: Path):
        self.src = src
        try:
            self.archive = np.load(src, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(
                f"cannot open as .npz ({e})",
                path=src,
                hint="the file is missing, truncated or not an .npz archive",
            ) from e
        if not isinstance(self.archive, np.lib.npyio.NpzFile):
            raise DataError(
                "is a single .npy array, not an .npz archive",
                path=src,
                hint="save the arrays with np.savez(path, observations=..., actions=..., ...)",
            )

    def __enter__(self) -> Callable[[str], np.ndarray | None]:
        return self.get

    def __exit__(self, *exc: object) -> None:
        self.archive.close()

    def get(self, key: str) -> np.ndarray | None:
        if key not in self.archive.files:
            return None
        try:
            return self.archive[key]
        except ValueError as e:  # object arrays need pickle, which is never enabled
            raise DataError(
                f"cannot be loaded ({e})", path=self.src, field=key, hint="store numeric arrays, not Python objects"
            ) from e
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DataError(f"cannot be read ({e})", path=self.src, field=key, hint="the file is truncated or corrupt") from e


def _ogbench_episodes(get: Callable[[str], np.ndarray | None], src: Path, env_id: str, id_prefix: str) -> list[Episode]:
    """Validate an OGBench file's arrays (see :func:`import_ogbench`) and split them into episodes."""
    arrays = {key: get(key) for key in ("observations", "actions", "terminals", "valids", "next_observations")}
    for key in ("observations", "actions"):
        if arrays[key] is None:
            raise DataError("required key is missing", path=src, field=key,
                            hint="an OGBench file holds observations, actions and terminals (or valids)")
    if arrays["terminals"] is None and arrays["valids"] is None:
        raise DataError("required key is missing", path=src, field="terminals",
                        hint="an OGBench file marks trajectory ends with terminals (or valids)")
    arrays = {k: v for k, v in arrays.items() if v is not None}
    obs = arrays["observations"]
    n = len(obs) if obs.ndim else 0
    for key, value in arrays.items():
        canonical_dtype(value.dtype, path=src, field=key)
        if value.ndim == 0 or len(value) != n:
            raise DataError(f"has {len(value) if value.ndim else 0} rows but observations has {n}", path=src, field=key,
                            hint="all arrays need one row per row of observations")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            row = int(np.flatnonzero(~np.isfinite(value.reshape(n, -1)).all(axis=1))[0])
            raise DataError(f"contains NaN or inf (first at row {row})", path=src, field=key,
                            hint="repair or drop the affected rows before importing")
    if n == 0:
        raise DataError("is empty", path=src, field="observations", hint="the file holds no transitions")
    for key in ("terminals", "valids"):
        if key in arrays:
            if arrays[key].ndim != 1 or not np.isin(arrays[key], (0, 1)).all():
                raise DataError("must hold one 0/1 flag per row", path=src, field=key, hint="store (N,) 0/1 flags")
            arrays[key] = arrays[key].astype(bool)
    next_obs = arrays.get("next_observations")
    if next_obs is not None and next_obs.shape != obs.shape:
        raise DataError(f"has shape {next_obs.shape}, observations has {obs.shape}", path=src,
                        field="next_observations", hint="next_observations must match observations")
    if next_obs is not None:  # regular: terminals end transitions
        if "terminals" not in arrays:
            raise DataError("required key is missing", path=src, field="terminals",
                            hint="a file with next_observations marks each trajectory's last transition in terminals")
        ends = arrays["terminals"]
    else:  # as shipped, or compact: the flagged row is the trajectory's last state
        ends = ~arrays["valids"] if "valids" in arrays else arrays["terminals"]
    field = "terminals" if next_obs is not None or "valids" not in arrays else "valids"
    if not ends[-1]:
        raise DataError("does not end the last trajectory", path=src, field=field,
                        hint="the file is truncated: its last row must end a trajectory")
    episodes, start = [], 0
    for end in np.flatnonzero(ends):
        if next_obs is not None:
            observations, stop = np.concatenate([obs[start:end + 1], next_obs[end:end + 1]]), end + 1
            inside = (next_obs[start:end] == obs[start + 1:end + 1]).reshape(end - start, -1).all(axis=1)
            if not inside.all():
                row = start + int(np.flatnonzero(~inside)[0])
                raise DataError(f"row {row} is not the next row's observation inside a trajectory", path=src,
                                field="next_observations", hint="mark the trajectory's end in terminals")
        else:
            observations, stop = obs[start:end + 1], end
        length = stop - start
        if length >= 1:
            episodes.append(Episode(
                observations=observations, actions=arrays["actions"][start:stop],
                rewards=np.zeros(length, np.float32), terminated=np.zeros(length, bool),
                truncated=np.arange(length) == length - 1,
                episode_id=f"{id_prefix}-{len(episodes):07d}", collector_id="import:ogbench", env_id=env_id))
        start = end + 1
    return episodes


def import_minari(
    src_dir: str | os.PathLike,
    store_path: str | os.PathLike,
    on_duplicate: Literal["error", "skip"] = "error",
) -> ImportReport:
    """Import a Minari dataset directory (or its ``data/`` directory) written in the hdf5 format."""
    src_dir = Path(src_dir)
    data_dir = src_dir / "data" if (src_dir / "data").is_dir() else src_dir
    meta_path, main_path = data_dir / "metadata.json", data_dir / "main_data.hdf5"
    if not meta_path.is_file():
        raise DataError(
            "is not a Minari dataset (no data/metadata.json)",
            path=src_dir,
            field="metadata.json",
            hint="point at the dataset directory, e.g. ~/.minari/datasets/mujoco/hopper/expert-v0",
        )
    try:
        metadata = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot be parsed ({e})", path=meta_path, hint="the metadata file is damaged") from e
    data_format = metadata.get("data_format", "hdf5")
    if data_format != "hdf5":
        raise DataError(
            f"Minari data format {data_format!r} is not supported",
            path=meta_path,
            field="data_format",
            hint="re-create the dataset with data_format='hdf5'",
        )
    obs_space, act_space = (
        _minari_space(metadata, key, meta_path) for key in ("observation_space", "action_space")
    )
    try:
        spec = StoreSpec.from_gymnasium(obs_space, act_space)
    except DataError as e:
        raise DataError(e.message, path=meta_path, field=e.field, hint=e.hint) from None
    env_id = ""
    if metadata.get("env_spec"):
        try:
            env_id = json.loads(metadata["env_spec"]).get("id") or ""
        except (TypeError, ValueError, AttributeError) as e:
            raise DataError(
                f"cannot be parsed ({e})",
                path=meta_path,
                field="env_spec",
                hint="the metadata file is damaged",
            ) from e
    defaults = {
        "collector_id": "import:minari",
        "policy_id": str(metadata.get("algorithm_name", "")),
        "env_id": env_id,
    }
    jpeg = bool(metadata.get("jpeg_encoding", True))
    try:
        file = h5py.File(main_path, "r")
    except OSError as e:
        raise DataError(
            f"cannot open as HDF5 ({e})",
            path=main_path,
            hint="the dataset is incomplete or corrupt; download or create it again",
        ) from e
    digest = file_sha256(main_path)
    with file:
        numbers = sorted(int(m.group(1)) for name in file if (m := _EPISODE_GROUP.fullmatch(name)))
        expected = metadata.get("total_episodes", len(numbers))
        if numbers != list(range(len(numbers))) or len(numbers) != expected:
            raise DataError(
                f"holds {len(numbers)} episode groups, metadata.json says {expected}",
                path=main_path,
                field="total_episodes",
                hint="the dataset is incomplete; download or create it again",
            )
        episodes = []
        for i in numbers:
            name = f"episode_{i}"
            try:
                episodes.append(
                    _minari_episode(
                        file[name], name, obs_space, act_space, spec, jpeg, defaults, f"{digest[:16]}-{i:07d}"
                    )
                )
            except DataError as e:
                raise DataError(e.message, path=main_path, field=f"{name}/{e.field}", hint=e.hint) from None
            except (OSError, ValueError, TypeError, KeyError) as e:
                raise DataError(
                    f"cannot be read ({e})",
                    path=main_path,
                    field=name,
                    hint="the file is truncated or corrupt; download or create it again",
                ) from e
    return _write(episodes, main_path, store_path, "minari", on_duplicate, 0, spec=spec, sha256=digest)


# -- flat arrays ----------------------------------------------------------------------------------


def _episodes_from_flat(
    get: Callable[[str], np.ndarray | None], src: Path, fmt: str, env_id: str, id_prefix: str
) -> tuple[list[Episode], int]:
    """Validate D4RL-style arrays and split them into episodes; returns (episodes, dropped steps)."""
    arrays: dict[str, np.ndarray] = {}
    for key in (*FLAT_KEYS, "next_observations", "costs"):
        value = get(key)
        if value is None:
            if key in ("timeouts", "next_observations", "costs"):
                continue
            raise DataError(
                "required key is missing",
                path=src,
                field=key,
                hint=f"a {fmt} file needs the keys {', '.join(FLAT_KEYS)}",
            )
        canonical_dtype(value.dtype, path=src, field=key)
        if value.ndim == 0:
            raise DataError(
                "is a scalar, expected one row per transition",
                path=src,
                field=key,
                hint="store arrays of shape (N, ...)",
            )
        arrays[key] = value
    n = len(arrays["observations"])
    if n == 0:
        raise DataError("is empty", path=src, field="observations", hint="the file holds no transitions")
    if "timeouts" not in arrays:
        if "next_observations" not in arrays:
            raise DataError(
                "required key is missing",
                path=src,
                field="timeouts",
                hint=f"a {fmt} file needs timeouts, or next_observations to find where episodes were cut",
            )
        arrays["timeouts"] = np.zeros(n, dtype=bool)  # cuts are found from next_observations below
    for key, value in arrays.items():
        if len(value) != n:
            raise DataError(
                f"has {len(value)} rows but observations has {n}",
                path=src,
                field=key,
                hint="all arrays need one row per transition",
            )
    if "next_observations" in arrays and arrays["next_observations"].shape != arrays["observations"].shape:
        raise DataError(
            f"has shape {arrays['next_observations'].shape}, observations has {arrays['observations'].shape}",
            path=src,
            field="next_observations",
            hint="next_observations must match observations",
        )
    for key in ("rewards", "terminals", "timeouts", "costs"):
        if key not in arrays:
            continue
        if arrays[key].ndim == 2 and arrays[key].shape[1] == 1:
            arrays[key] = arrays[key][:, 0]
        if arrays[key].ndim != 1:
            raise DataError(
                f"must have shape (N,), got {arrays[key].shape}",
                path=src,
                field=key,
                hint="store one scalar per transition",
            )
    for key in ("observations", "actions", "rewards", "next_observations"):
        value = arrays.get(key)
        if value is not None and value.dtype.kind == "f" and not np.isfinite(value).all():
            row = int(np.flatnonzero(~np.isfinite(value.reshape(n, -1)).all(axis=1))[0])
            raise DataError(
                f"contains NaN or inf (first at row {row})",
                path=src,
                field=key,
                hint="repair or drop the affected transitions before importing",
            )
    for key in ("terminals", "timeouts"):
        if not np.isin(arrays[key], (0, 1)).all():
            raise DataError("must hold booleans (or 0/1)", path=src, field=key, hint="store 0/1 flags")
        arrays[key] = arrays[key].astype(bool)
    costs = arrays.get("costs")
    if costs is not None:
        check_costs(costs, src, n)

    obs, actions, rewards = arrays["observations"], arrays["actions"], arrays["rewards"]
    terminals, timeouts, next_obs = arrays["terminals"], arrays["timeouts"], arrays.get("next_observations")
    cut = np.zeros(n, dtype=bool)  # episode ends that are not in the data's flags
    cut[-1] = not (terminals[-1] or timeouts[-1])
    if next_obs is not None:
        same = (next_obs[:-1] == obs[1:]).reshape(n - 1, -1).all(axis=1)
        cut[:-1] = ~same & ~terminals[:-1] & ~timeouts[:-1]
    ends = np.flatnonzero(terminals | timeouts | cut)
    episodes, dropped = [], 0
    start = 0
    for end in ends:
        stop = end + 1
        if next_obs is not None:
            observations = np.concatenate([obs[start:stop], next_obs[end : end + 1]])
        elif terminals[end]:
            observations = np.concatenate([obs[start:stop], obs[end : end + 1]])
        else:  # timeout or end of data without the next observation: drop the last transition
            stop = end
            observations = obs[start : end + 1]
            dropped += 1
        if stop > start:
            truncated = timeouts[start:stop] | cut[start:stop]
            if stop == end:
                truncated = truncated.copy()
                truncated[-1] = True
            episodes.append(
                Episode(
                    observations=observations,
                    actions=actions[start:stop],
                    rewards=rewards[start:stop],
                    terminated=terminals[start:stop],
                    truncated=truncated,
                    costs=None if costs is None else costs[start:stop],
                    episode_id=f"{id_prefix}-{len(episodes):07d}",
                    collector_id=f"import:{fmt}",
                    env_id=env_id,
                )
            )
        start = end + 1
    return episodes, dropped


# -- Minari ---------------------------------------------------------------------------------------


def _minari_space(metadata: dict, key: str, meta_path: Path) -> Any:
    from minari.serialization import deserialize_space

    if key not in metadata:
        raise DataError(
            "is missing",
            path=meta_path,
            field=key,
            hint="datasets without serialized spaces are not supported; re-create with minari>=0.4",
        )
    try:
        return deserialize_space(metadata[key])
    except Exception as e:  # noqa: BLE001 - any parse failure means the same thing here
        raise DataError(
            f"cannot be parsed ({e!r})",
            path=meta_path,
            field=key,
            hint="the metadata is damaged or from an unsupported Minari version",
        ) from e


def _minari_array(
    group: h5py.Group, key: str, space: Any, jpeg: bool, where: str | None = None
) -> np.ndarray | dict[str, np.ndarray]:
    """Read ``group[key]`` as laid out for ``space`` (errors name the HDF5 path ``where``)."""
    from gymnasium import spaces
    from minari.dataset.minari_storage import is_image_space

    where = where or key
    if key not in group:
        raise DataError("is missing", field=where, hint="the dataset is incomplete")
    node = group[key]
    if isinstance(space, spaces.Dict):
        if not isinstance(node, h5py.Group):
            raise DataError(
                "is an array, but the space is a Dict", field=where, hint="the dataset is inconsistent"
            )
        return {k: _minari_array(node, k, sub, jpeg, f"{where}/{k}") for k, sub in space.spaces.items()}
    if not isinstance(node, h5py.Dataset):
        raise DataError("is a group, expected an array", field=where, hint="the dataset is inconsistent")
    data = node[()]
    if jpeg and is_image_space(space) and data.shape[1:] != space.shape:  # encoded frames, not raw arrays
        from PIL import Image, UnidentifiedImageError

        try:
            data = np.stack(
                [np.asarray(Image.open(io.BytesIO(np.asarray(f).tobytes())), dtype=np.uint8) for f in data]
            )
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(
                f"holds an undecodable JPEG frame ({e})", field=where, hint="the dataset is corrupt"
            ) from e
    return data


def _minari_episode(
    group: Any,
    name: str,
    obs_space: Any,
    act_space: Any,
    spec: StoreSpec,
    jpeg: bool,
    defaults: dict[str, str],
    fallback_id: str,
) -> Episode:
    """One validated episode from an ``episode_<i>`` group (errors name fields relative to it)."""
    if not isinstance(group, h5py.Group):
        raise DataError("is not a group", field=name, hint="the dataset is corrupt")
    attrs = group.attrs
    meta = {k: str(attrs.get(MINARI_ATTR_PREFIX + k, defaults.get(k, ""))) for k in MINARI_EPISODE_ATTRS}
    meta["episode_id"] = meta["episode_id"] or fallback_id
    meta["created_at"] = meta["created_at"] or utc_now_iso()
    seed = attrs.get("seed")
    flags = {}
    for key in ("terminations", "truncations"):
        value = _minari_array(group, key, None, False)
        canonical_dtype(value.dtype, field=key)
        if not np.isin(value, (0, 1)).all():
            raise DataError("must hold booleans (or 0/1)", field=key, hint="the dataset is corrupt")
        flags[key] = value.astype(bool)
    episode = Episode(
        observations=_minari_array(group, "observations", obs_space, jpeg),
        actions=_minari_array(group, "actions", act_space, jpeg),
        rewards=_minari_array(group, "rewards", None, False),
        terminated=flags["terminations"],
        truncated=flags["truncations"],
        costs=_minari_array(group, "costs", None, False) if "costs" in group else None,
        seed=None if seed is None else int(seed),
        **meta,
    )
    try:
        episode.validate(spec)
    except DataError as e:  # name the Minari field, not the Episode field
        field = {"terminated": "terminations", "truncated": "truncations"}.get(e.field or "", e.field)
        raise DataError(
            e.message, field=(field or "").replace("observations.", "observations/"), hint=e.hint
        ) from None
    return episode


# -- writing --------------------------------------------------------------------------------------


def _write(
    episodes: list[Episode],
    src: Path,
    store_path: str | os.PathLike,
    fmt: str,
    on_duplicate: Literal["error", "skip"],
    dropped: int,
    sha256: str,
    spec: StoreSpec | None = None,
) -> ImportReport:
    """Validate every episode, then create/open the store and write them all in one call."""
    if not episodes:
        raise DataError(
            "holds no complete transitions",
            path=src,
            field="observations",
            hint="the file has no episode with a known final observation",
        )
    for ep in episodes:
        try:
            ep.validate(spec)
        except DataError as e:
            raise DataError(
                f"episode {ep.episode_id!r}: {e.message}", path=src, field=e.field, hint=e.hint
            ) from None
    store = EpisodeStore(store_path, create=True, spec=spec)
    written = set(store.write(episodes, on_duplicate=on_duplicate))
    report = ImportReport(
        episodes=len(written),
        transitions=sum(ep.length for ep in episodes if ep.episode_id in written),
        store_path=store.path,
        source=src.resolve(),
        format=fmt,
        sha256=sha256,
        dropped_transitions=dropped,
    )
    entry = {
        "format": fmt,
        "source": str(report.source),
        "sha256": sha256,
        "imported_at": utc_now_iso(),
        "episodes": report.episodes,
        "transitions": report.transitions,
        "dropped_transitions": dropped,
    }
    store.set_provenance({"imports": [*store.provenance.get("imports", []), entry]})
    return report
