"""The data layer: episodes, the durable episode store, training datasets, import/export, checks.

See ``docs/design.md`` for the contracts. In short::

    store = EpisodeStore("runs/hopper", create=True)
    store.write([Episode(observations, actions, rewards, terminated, truncated)])
    dataset = TransitionDataset.from_store(store)
    batch = dataset.sample(np.random.default_rng(0), 256)
"""

from armfarm.data.check import CheckReport, check_store
from armfarm.data.dataset import MemmapSampler, TransitionDataset
from armfarm.data.errors import DataError
from armfarm.data.exporters import export_minari
from armfarm.data.frames import FrameSampler
from armfarm.data.importers import ImportReport, import_d4rl, import_minari, import_npz, import_ogbench
from armfarm.data.schema import SCHEMA_VERSION, ArraySpec, Episode, StoreSpec
from armfarm.data.store import EpisodeRecord, EpisodeStore

__all__ = [
    "FrameSampler",
    "SCHEMA_VERSION",
    "ArraySpec",
    "CheckReport",
    "DataError",
    "Episode",
    "EpisodeRecord",
    "EpisodeStore",
    "ImportReport",
    "MemmapSampler",
    "StoreSpec",
    "TransitionDataset",
    "check_store",
    "export_minari",
    "import_d4rl",
    "import_minari",
    "import_npz",
    "import_ogbench",
]
