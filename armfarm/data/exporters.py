"""Exporters: an episode store to a Minari dataset.

The dataset is written by Minari's own storage writer (``MinariStorage.new`` with the ``hdf5``
format, raw arrays, no JPEG), so ``minari.load_dataset`` reads it. Each Minari episode group also
carries the armfarm metadata as attributes (``armfarm_episode_id``, ``armfarm_collector_id``, ...),
and, for episodes with any cost, a ``costs`` array (Minari has no cost field), all of which
:func:`armfarm.data.import_minari` reads back: importing an export reproduces the store's episodes
exactly, ids and costs included.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from armfarm.data.errors import DataError
from armfarm.data.importers import MINARI_ATTR_PREFIX, MINARI_EPISODE_ATTRS
from armfarm.data.schema import ArraySpec, StoreSpec
from armfarm.data.store import EpisodeStore


def export_minari(
    store_path: EpisodeStore | str | os.PathLike, dest_dir: str | os.PathLike, dataset_id: str | None = None
) -> Path:
    """Write a snapshot of the store as a Minari dataset in ``dest_dir``; return ``dest_dir``.

    ``dest_dir`` becomes the dataset directory (it gets ``data/metadata.json`` and
    ``data/main_data.hdf5``); to load it with ``minari.load_dataset(dataset_id)``, place it at
    ``$MINARI_DATASETS_PATH/<dataset_id>``. ``dataset_id`` defaults to the directory name (with
    ``-v0`` appended if it has no version). The data is written to a temporary directory first and
    renamed into place, so a failed export leaves no partial dataset.

    Raises:
        DataError: empty store, invalid ``dataset_id``, or ``dest_dir`` already holds a dataset.
    """
    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.dataset.minari_storage import MinariStorage

    store = store_path if isinstance(store_path, EpisodeStore) else EpisodeStore(store_path)
    dest = Path(dest_dir)
    spec, records = store.spec, store.snapshot()
    if spec is None or not records:
        raise DataError("the store has no episodes", path=store.path, hint="write or import episodes first")
    if dataset_id is None:
        dataset_id = dest.name if "-v" in dest.name else f"{dest.name}-v0"
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError) as e:
        raise DataError(
            f"{dataset_id!r} is not a valid Minari dataset id",
            path=dest,
            field="dataset_id",
            hint="pass dataset_id like 'armfarm/hopper-expert-v0'",
        ) from e
    if (dest / "data").exists():
        raise DataError("already holds a Minari dataset", path=dest, hint="export into a new directory")
    observation_space, action_space = gymnasium_spaces(spec)
    env_ids = {r.env_id for r in records}
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f".data-{uuid.uuid4().hex}"
    try:
        storage = MinariStorage.new(
            staging,
            observation_space=observation_space,
            action_space=action_space,
            env_spec=_registered_env_spec(env_ids.pop()) if len(env_ids) == 1 else None,
            data_format="hdf5",
            jpeg_encoding=False,
        )
        storage.update_metadata(
            {
                "dataset_id": dataset_id,
                "minari_version": minari.__version__,
                "description": f"Exported from the armfarm episode store {store.path}",
            }
        )
        costs: dict[int, np.ndarray] = {}

        def buffers():
            for i, ep in enumerate(store.iter_episodes(records)):
                if ep.cost_return > 0:
                    costs[i] = ep.step_costs
                yield EpisodeBuffer(
                    id=i,
                    seed=ep.seed,
                    observations=ep.observations,
                    actions=ep.actions,
                    rewards=ep.rewards,
                    terminations=ep.terminated,
                    truncations=ep.truncated,
                )

        storage.update_episodes(buffers())
        storage.update_episode_metadata(
            [{MINARI_ATTR_PREFIX + k: getattr(r, k) for k in MINARI_EPISODE_ATTRS} for r in records],
            range(len(records)),
        )
        if costs:
            import h5py

            with h5py.File(staging / "main_data.hdf5", "a") as f:
                for i, c in costs.items():
                    f[f"episode_{i}"].create_dataset("costs", data=c)
        os.rename(staging, dest / "data")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def gymnasium_spaces(spec: StoreSpec):
    """``(observation_space, action_space)`` Gymnasium ``Box``/``Dict`` spaces for ``spec``.

    Recorded bounds are used; otherwise floats are unbounded and integers span their dtype. A discrete
    action (:attr:`ArraySpec.num_choices`) becomes ``Discrete(n, start=low)``.
    """
    from gymnasium import spaces

    if spec.action.num_choices is not None:
        action: Any = spaces.Discrete(spec.action.num_choices, start=int(spec.action.low))
    else:
        action = None

    def box(s: ArraySpec) -> spaces.Box:
        dtype = np.dtype(s.dtype)
        if s.low is not None and s.high is not None:
            low, high = np.asarray(s.low, dtype=dtype), np.asarray(s.high, dtype=dtype)
        elif dtype.kind == "f":
            low, high = np.full(s.shape, -np.inf, dtype), np.full(s.shape, np.inf, dtype)
        elif dtype.kind == "b":
            low, high = np.zeros(s.shape, dtype), np.ones(s.shape, dtype)
        else:
            info = np.iinfo(dtype)
            low, high = np.full(s.shape, info.min, dtype), np.full(s.shape, info.max, dtype)
        return spaces.Box(low=low, high=high, shape=s.shape, dtype=dtype)

    if isinstance(spec.observation, dict):
        observation = spaces.Dict({k: box(s) for k, s in spec.observation.items()})
    else:
        observation = box(spec.observation)
    return observation, action if action is not None else box(spec.action)


def _registered_env_spec(env_id: str):
    """Gymnasium's spec of ``env_id`` if it is registered (so Minari can recreate the env), else None."""
    import gymnasium

    if not env_id:
        return None
    try:
        return gymnasium.spec(env_id)
    except gymnasium.error.Error:
        return None
