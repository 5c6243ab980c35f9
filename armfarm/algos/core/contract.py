"""The algorithm contract: what an algorithm declares, and the registry it declares itself in.

An algorithm is one module in :mod:`armfarm.algos` that ends with ``register(Algorithm(...))``. The
registry imports every such module the first time it is asked, so adding an algorithm touches no
other file: the CLI help, the test matrix and the docs table read :func:`algorithms`.

``init(config, stats, seed) -> state`` builds the agent state (a pytree with ``step``, ``key`` and
``norm``; see :mod:`armfarm.algos.core.batches`); ``update(config, state, batch) -> (state, metrics)`` is
pure and jit-able; ``export_policy(config, state) -> NumpyPolicy`` gives the deployable actor.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Literal

Kind = Literal["offline", "online", "offline-to-online", "evaluator"]
KINDS = ("offline", "online", "offline-to-online", "evaluator")
BASE_BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity (a jit cache key)
class Algorithm:
    """One registered algorithm.

    Args:
        name: the CLI name (``armfarm train NAME``).
        kind: ``offline`` learns from a store (``armfarm train``); ``online`` from its own interaction
            (``armfarm train-online``); ``offline-to-online`` from a store and then from interaction
            (it also trains offline); ``evaluator`` estimates other policies' values.
        config_cls: its frozen config dataclass (fields documented with ``config.doc``).
        init, update, export_policy: see the module docstring (``export_policy`` None for evaluators).
        summary: one line for the CLI help and the docs table, naming the paper.
        batch_keys: what ``update`` reads from a batch (beyond the five base keys, e.g. ``mc_returns``).
        finetune: config changes for the online phase of ``armfarm finetune`` (``{}``: the same config),
            as its paper runs it; None: the algorithm is not fine-tuned online.
        goal_conditioned: it learns from hindsight-relabeled goals (:mod:`armfarm.goals.relabel`): its
            config is a :class:`~armfarm.algos.core.goals.GoalConfig` and its policy's input is ``[s, g]``.
        goal_value: ``goal_value(config, state, x) -> V`` per row of the networks' input ``x = [s, g]``,
            for goal-conditioned algorithms that learn a value (waypoint planning reads it); else None.
        discrete: it acts in a ``Discrete`` action space (integer actions; an argmax policy), not a ``Box``.
        images: it learns from ``uint8`` image observations through a conv encoder (its batches come from
            a :class:`~armfarm.data.frames.FrameSampler` when the store holds images).
    """

    name: str
    kind: Kind
    config_cls: type
    init: Callable[..., Any]
    update: Callable[..., Any]
    export_policy: Callable[..., Any] | None
    summary: str
    batch_keys: tuple[str, ...] = BASE_BATCH_KEYS
    finetune: dict[str, Any] | None = None
    goal_conditioned: bool = False
    goal_value: Callable[..., Any] | None = None
    discrete: bool = False
    images: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"algorithm {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        missing = [k for k in BASE_BATCH_KEYS if k not in self.batch_keys]
        if missing:
            raise ValueError(f"algorithm {self.name!r}: batch_keys must include {missing}")

    @property
    def online(self) -> bool:
        """Whether it learns from its own interaction only (no store)."""
        return self.kind == "online"

    @property
    def offline(self) -> bool:
        """Whether ``armfarm train`` can train it from a store."""
        return self.kind in ("offline", "offline-to-online")


_REGISTRY: dict[str, Algorithm] = {}
_discovered = False


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` to the registry (called at the end of its module); returns it."""
    existing = _REGISTRY.get(algorithm.name)
    if existing is not None and existing.update is not algorithm.update:
        raise ValueError(f"two algorithms are called {algorithm.name!r}")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def _discover() -> None:
    """Import every algorithm module of :mod:`armfarm.algos` (each registers itself)."""
    global _discovered
    if _discovered:
        return
    import armfarm.algos as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg and not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    _discovered = True


def algorithms(kind: Kind | None = None) -> dict[str, Algorithm]:
    """The registered algorithms by name (sorted), optionally of one ``kind`` (``offline`` includes the
    offline-to-online ones, which also train offline)."""
    _discover()
    chosen = {n: a for n, a in sorted(_REGISTRY.items())
              if kind is None or a.kind == kind or (kind == "offline" and a.offline)}
    return chosen


def get_algorithm(name: str | Algorithm) -> Algorithm:
    """The registered algorithm called ``name`` (an :class:`Algorithm` is returned as it is)."""
    if isinstance(name, Algorithm):
        return name
    _discover()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown algorithm {name!r}; valid names: {', '.join(sorted(_REGISTRY))}") from None


def check_fits(algo: str | Algorithm, spec, source: str) -> None:
    """Refuse, with a ``ValueError`` naming the learners that fit, an algorithm that cannot learn from
    data of ``spec`` (a :class:`~armfarm.data.schema.StoreSpec`; ``source`` names where it came from):
    discrete actions for a continuous learner or the reverse, or images for a state-vector learner."""
    algo = get_algorithm(algo)
    discrete = spec.action.num_choices is not None
    if discrete != algo.discrete:
        kind = "discrete" if algo.discrete else "continuous"
        takers = ", ".join(name for name, a in algorithms("offline").items() if a.discrete == discrete)
        raise ValueError(f"{source} has {'discrete' if discrete else 'continuous'} actions; {algo.name} learns "
                         f"{kind} ones. Learners that fit: {takers}")
    if spec.obs_keys is None and spec.observation.is_image and not algo.images:
        takers = ", ".join(name for name, a in algorithms().items() if a.images)
        raise ValueError(f"{source} has {spec.observation.shape} uint8 images; {algo.name} learns from "
                         f"state vectors. Learners that take images: {takers}")
