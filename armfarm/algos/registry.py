"""Algorithm registry: ``get_algorithm("iql")`` -> :class:`Algorithm`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from armfarm.algos import bc, cql, iql, td3bc


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """The functions that make up one offline RL algorithm (see ``armfarm.algos.common``).

    ``init(config, stats, seed) -> state``; ``update(config, state, batch) -> (state, metrics)`` (pure,
    jit-able); ``export_policy(config, state) -> NumpyPolicy``.
    """

    name: str
    config_cls: type
    init: Callable[..., Any]
    update: Callable[..., Any]
    export_policy: Callable[..., Any]


ALGORITHMS: dict[str, Algorithm] = {
    m.NAME: Algorithm(m.NAME, cfg, m.init, m.update, m.export_policy)
    for m, cfg in ((bc, bc.BCConfig), (cql, cql.CQLConfig), (iql, iql.IQLConfig), (td3bc, td3bc.TD3BCConfig))
}


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm called ``name`` (``bc``, ``cql``, ``iql``, ``td3bc``)."""
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown algorithm {name!r}; valid names: {', '.join(sorted(ALGORITHMS))}") from None
