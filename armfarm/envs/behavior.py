"""Behaviour policies that collectors run: random, a trained policy file, and scripted maze controllers.

A behaviour is a small object with ``reset(rng)`` (called at the start of each episode) and
``__call__(obs) -> action``; ``policy_id`` names it in the episode metadata. Behaviours are built in
each collector process from a picklable :class:`BehaviorSpec`, so a worker needs NumPy alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from armfarm.envs.maze import WaypointController
from armfarm.policy import NumpyPolicy


@dataclass(frozen=True)
class BehaviorSpec:
    """What to run: ``random``, ``maze-expert``, ``maze-mixed``, or a path to a policy.

    ``noise`` is the std of Gaussian noise added to every action before clipping to the action
    bounds; for a ``Discrete`` action space it is epsilon: the chance of a uniform random action. ``good_fraction`` is used by ``maze-mixed`` only: the share of episodes that head for
    the real goal (the others head for a decoy goal).
    """

    policy: str = "random"
    noise: float = 0.0
    good_fraction: float = 0.5


class _Behavior:
    policy_id = "behavior"

    def __init__(self, action_space: gym.spaces.Box | gym.spaces.Discrete, noise: float):
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:  # integer actions low .. high
            self.low, self.high = int(action_space.start), int(action_space.start + action_space.n - 1)
        else:
            self.low = action_space.low.astype(np.float32)
            self.high = action_space.high.astype(np.float32)
        self.noise = float(noise)
        self.rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _clean_action(self, obs) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, obs) -> np.ndarray:
        if self.discrete:  # epsilon-greedy around the clean action
            if self.noise > 0 and self.rng.uniform() < self.noise:
                return np.int64(self.rng.integers(self.low, self.high + 1))
            return np.int64(np.clip(int(np.asarray(self._clean_action(obs)).reshape(())), self.low, self.high))
        action = np.asarray(self._clean_action(obs), dtype=np.float32)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape).astype(np.float32)
        return np.clip(action, self.low, self.high)


class RandomBehavior(_Behavior):
    """Uniform random actions within the action bounds (or over a ``Discrete`` space's actions)."""

    policy_id = "random"

    def _clean_action(self, obs) -> np.ndarray:
        if self.discrete:
            return np.int64(self.rng.integers(self.low, self.high + 1))
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class PolicyFileBehavior(_Behavior):
    """A published :class:`~armfarm.policy.NumpyPolicy` (``policy.npz``, a run or checkpoint dir)."""

    def __init__(self, action_space, noise: float, path: str):
        super().__init__(action_space, noise)
        self.policy = NumpyPolicy.load(resolve_policy_path(path))
        digest = hashlib.sha256(Path(resolve_policy_path(path)).read_bytes()).hexdigest()[:12]
        self.policy_id = f"{self.policy.metadata.get('algo', 'policy')}@{digest}"

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self.policy.reset()  # a policy that stacks frames starts the episode afresh

    def _clean_action(self, obs) -> np.ndarray:
        return self.policy(obs)


class MazeBehavior(_Behavior):
    """D4RL's maze2d controller (see :mod:`armfarm.envs.maze`).

    With ``good_fraction < 1`` this is a deliberately mixed behaviour: each episode heads for the
    real goal with probability ``good_fraction`` and otherwise for a decoy point drawn uniformly
    from the maze's free cells, so half the data is purposeful and half is misleading.
    """

    def __init__(self, action_space, noise: float, maze, good_fraction: float):
        super().__init__(action_space, noise)
        self.controller = WaypointController(maze)
        self.maze = maze
        self.good_fraction = float(good_fraction)
        self.decoy: np.ndarray | None = None
        self.policy_id = "maze-expert" if good_fraction >= 1.0 else f"maze-mixed-{good_fraction:g}"

    def reset(self, rng: np.random.Generator) -> None:
        super().reset(rng)
        self.decoy = None
        if rng.uniform() >= self.good_fraction:
            free = np.argwhere(self.controller.free)
            cell = free[rng.integers(len(free))]
            self.decoy = self.maze.cell_rowcol_to_xy(cell)

    def _clean_action(self, obs) -> np.ndarray:
        target = obs["desired_goal"] if self.decoy is None else self.decoy
        return self.controller.act_towards(obs["observation"], target)


def resolve_policy_path(path: str | Path) -> Path:
    """Accept a ``policy.npz`` file, a run directory or a checkpoint directory holding one."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "policy.npz"
        if not candidate.exists():
            raise FileNotFoundError(f"{path} holds no policy.npz; pass a run dir, checkpoint dir or policy file")
        return candidate
    if not path.exists():
        raise FileNotFoundError(f"policy file {path} does not exist")
    return path


def load_policy_or_random(path: str | Path, env_id: str):
    """The policy at ``path`` (:func:`resolve_policy_path`), or, for the word ``random`` where no such
    file exists, uniform-random actions in ``env_id``'s action space (reset per episode by evaluations)."""
    if str(path) == "random" and not Path(path).exists():
        from armfarm.envs.registry import make_env

        env = make_env(env_id)
        try:
            return RandomBehavior(env.action_space, 0.0)
        finally:
            env.close()
    return NumpyPolicy.load(resolve_policy_path(path))


def make_behavior(spec: BehaviorSpec, env: gym.Env | None, action_space: gym.spaces.Box | None = None) -> _Behavior:
    """Build the behaviour ``spec`` describes for ``env`` (or, for a robot without a Gymnasium
    environment, for ``action_space``; the maze controllers need their PointMaze environment)."""
    space = action_space if action_space is not None else env.action_space
    if spec.policy == "random":
        return RandomBehavior(space, spec.noise)
    if spec.policy in ("maze-expert", "maze-mixed"):
        maze = getattr(env.unwrapped, "maze", None) if env is not None else None
        if maze is None:
            where = env.spec.id if env is not None and env.spec is not None else "a robot without an environment"
            raise ValueError(f"behaviour {spec.policy!r} needs a PointMaze environment, not {where}")
        fraction = 1.0 if spec.policy == "maze-expert" else spec.good_fraction
        return MazeBehavior(space, spec.noise, maze, fraction)
    return PolicyFileBehavior(space, spec.noise, spec.policy)
