"""MinAtar's five games (Young & Tian 2019) as image tasks: ``armfarm/MinAtar-<Game>-v0``.

MinAtar is a small discrete pixel testbed: 10x10 grids with one channel per object kind (Asterix 4,
Breakout 4, Freeway 7, Seaquest 10, SpaceInvaders 6) and each game's minimal action set. The game
engine is the ``minatar`` package, which is GPL-3.0; armfarm (Apache-2.0) neither ships nor requires
it: it is the optional extra ``pip install 'armfarm[minatar]'`` and is imported only when one of
these ids is made. Observations become ``uint8`` images, 255 where MinAtar's boolean channel is set,
so the store, the samplers and the encoders treat them as any camera frame. Episodes are cut at
``MAX_STEPS`` steps (MinAtar sets no limit; every game but Freeway can otherwise run for ever).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
MAX_STEPS = 10_000


def env_id(game: str) -> str:
    """The Gymnasium id of ``game`` as MinAtar spells it: ``breakout`` -> ``armfarm/MinAtar-Breakout-v0``."""
    if game not in GAMES:
        raise ValueError(f"unknown MinAtar game {game!r}; the games are {', '.join(GAMES)}")
    return f"armfarm/MinAtar-{game.title().replace('_', '')}-v0"


class MinAtarImages(gym.ObservationWrapper):
    """MinAtar's boolean ``(10, 10, n)`` state as a ``uint8`` image (0 or 255); a reset also forgets the
    last action, which MinAtar's sticky actions otherwise carry over from the previous episode (so a
    seeded episode would depend on the one before it)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, env.observation_space.shape, np.uint8)

    def reset(self, **kwargs):
        self.env.unwrapped.game.last_action = 0
        return super().reset(**kwargs)

    def observation(self, observation):
        return np.asarray(observation, np.uint8) * np.uint8(255)


def make_minatar(game: str, sticky_action_prob: float = 0.1) -> gym.Env:
    """The MinAtar ``game`` with its minimal action set and MinAtar's default sticky actions (0.1)."""
    try:
        from minatar.gym import BaseEnv
    except ImportError:
        raise ValueError(f"{env_id(game)} needs the MinAtar package (GPL-3.0, an optional extra): "
                         "pip install 'armfarm[minatar]'") from None
    return MinAtarImages(BaseEnv(game, use_minimal_action_set=True, sticky_action_prob=sticky_action_prob))
