"""The actor loop: run a behaviour in an environment, one episode at a time, into a sink."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from armfarm.envs.rollout import rollout_episode


@dataclass
class RecordedEpisode:
    """One recorded episode in the layout of :class:`armfarm.data.Episode` (``T + 1`` observations),
    with its metadata, before any sink has taken it. NumPy only, so robots need no store code."""

    arrays: dict[str, Any]  # observations (array or dict), actions, rewards, terminated, truncated[, costs, interventions]
    episode_id: str
    policy_id: str = ""
    env_id: str = ""
    seed: int | None = None
    collector_id: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    end_reason: str = ""  # why the episode was cut short (a shield's e-stop), or ""

    @property
    def length(self) -> int:
        return int(len(self.arrays["actions"]))

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.arrays["rewards"], dtype=np.float64))


class Behavior(Protocol):
    policy_id: str

    def reset(self, rng: np.random.Generator) -> None: ...

    def __call__(self, obs: Any) -> np.ndarray: ...


class Sink(Protocol):
    def put(self, episode: RecordedEpisode) -> None: ...


class Actor:
    """Runs ``behavior`` in ``env`` and hands every episode to ``sink``.

    Episode ``index`` is reset with seed ``seed + index`` and draws the behaviour's randomness from
    ``default_rng([seed, index])``, so what an actor records does not depend on which process runs it.
    ``episode_id(index)`` names episodes (default: a random UUID4 hex).
    """

    def __init__(self, env: gym.Env, behavior: Behavior, sink: Sink, env_id: str, collector_id: str = "",
                 seed: int = 0, max_steps: int | None = None, episode_id: Callable[[int], str] | None = None):
        self.env, self.behavior, self.sink = env, behavior, sink
        self.env_id, self.collector_id, self.seed, self.max_steps = env_id, collector_id, seed, max_steps
        self.episode_id = episode_id or (lambda _index: uuid.uuid4().hex)

    def run_episode(self, index: int, max_steps: int | None = None) -> RecordedEpisode:
        """Record episode ``index`` and put it into the sink; returns it."""
        self.behavior.reset(np.random.default_rng([self.seed, index]))
        arrays = rollout_episode(self.env, self.behavior, seed=self.seed + index,
                                 max_steps=max_steps if max_steps is not None else self.max_steps)
        end_reason = arrays.pop("end_reason", "")
        episode = RecordedEpisode(arrays, self.episode_id(index), policy_id=self.behavior.policy_id,
                                  env_id=self.env_id, seed=self.seed + index, collector_id=self.collector_id,
                                  end_reason=end_reason)
        self.sink.put(episode)
        return episode

    def run(self, indices, stop: threading.Event | None = None) -> int:
        """Record the episodes ``indices`` (any iterable of ints, possibly endless) until ``stop`` is set;
        returns how many were recorded."""
        count = 0
        for index in indices:
            if stop is not None and stop.is_set():
                break
            self.run_episode(index)
            count += 1
        return count
