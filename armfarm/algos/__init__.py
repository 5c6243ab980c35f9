"""Offline (and online) RL in JAX behind one contract; every algorithm is one module here that
registers itself (see :mod:`armfarm.algos.core.contract` and ``docs/design.md``, section ``armfarm.algos``).

Each algorithm module exports its config class (``from armfarm.algos.iql import IQLConfig``); this
package exports the registry and the shared machinery.
"""

from armfarm.algos.core.batches import AgentState
from armfarm.algos.core.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointNotFoundError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from armfarm.algos.core.config import config_from_dict, config_to_dict, describe_config
from armfarm.algos.core.contract import Algorithm, algorithms, check_fits, get_algorithm, register
from armfarm.algos.core.fused import make_train_fn, run_train_call
from armfarm.algos.core.stats import DatasetStats

__all__ = [
    "AgentState",
    "Algorithm",
    "Checkpoint",
    "CheckpointError",
    "CheckpointNotFoundError",
    "DatasetStats",
    "algorithms",
    "check_fits",
    "config_from_dict",
    "config_to_dict",
    "describe_config",
    "get_algorithm",
    "latest_checkpoint",
    "load_checkpoint",
    "make_train_fn",
    "register",
    "run_train_call",
    "save_checkpoint",
]
