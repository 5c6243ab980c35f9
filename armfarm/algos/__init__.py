"""Pessimistic offline RL in JAX: BC, TD3+BC, IQL and CQL behind one small interface.

See ``docs/design.md`` (section ``armfarm.algos``) and :mod:`armfarm.algos.common`.
"""

from armfarm.algos.bc import BCConfig
from armfarm.algos.common import (
    AgentState,
    Checkpoint,
    CheckpointError,
    CheckpointNotFoundError,
    DatasetStats,
    load_checkpoint,
    make_train_fn,
    save_checkpoint,
)
from armfarm.algos.cql import CQLConfig
from armfarm.algos.iql import IQLConfig
from armfarm.algos.registry import ALGORITHMS, Algorithm, get_algorithm
from armfarm.algos.td3bc import TD3BCConfig

__all__ = [
    "ALGORITHMS",
    "AgentState",
    "Algorithm",
    "BCConfig",
    "CQLConfig",
    "Checkpoint",
    "CheckpointError",
    "CheckpointNotFoundError",
    "DatasetStats",
    "IQLConfig",
    "TD3BCConfig",
    "get_algorithm",
    "load_checkpoint",
    "make_train_fn",
    "save_checkpoint",
]
