"""Algorithm registry: ``get_algorithm("iql")`` -> :class:`Algorithm`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from armfarm.algos import bc, cql, iql, sac, td3bc


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """The functions that make up one offline RL algorithm (see ``armfarm.algos.common``).

    ``init(config, stats, seed) -> state``; ``update(config, state, batch) -> (state, metrics)`` (pure,
    jit-able); ``export_policy(config, state) -> NumpyPolicy``. ``online`` algorithms learn from their own
    interaction with an environment (``armfarm train-online``), the others from a store (``armfarm train``).
    """

    name: str
    config_cls: type
    init: Callable[..., Any]
    update: Callable[..., Any]
    export_policy: Callable[..., Any]
    online: bool = False


ALGORITHMS: dict[str, Algorithm] = {
    m.NAME: Algorithm(m.NAME, cfg, m.init, m.update, m.export_policy, online=m is sac)
    for m, cfg in (
        (bc, bc.BCConfig), (cql, cql.CQLConfig), (iql, iql.IQLConfig), (sac, sac.SACConfig),
        (td3bc, td3bc.TD3BCConfig),
    )
}
OFFLINE_ALGORITHMS = tuple(sorted(name for name, a in ALGORITHMS.items() if not a.online))
ONLINE_ALGORITHMS = tuple(sorted(name for name, a in ALGORITHMS.items() if a.online))


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm called ``name`` (``bc``, ``cql``, ``iql``, ``sac``, ``td3bc``)."""
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown algorithm {name!r}; valid names: {', '.join(sorted(ALGORITHMS))}") from None
