"""Small pixel tasks with known answers, for testing and demonstrating learners from images.

Both show a ``size x size x 1`` ``uint8`` image (16x16 by default) that is black except for a 2x2 white
dot at a random place, and end after one step; the only way to beat chance is to read the image.

``armfarm/QuadrantDot-v0``
    Discrete actions: the four actions name the quadrant the dot is in (0 top-left, 1 top-right,
    2 bottom-left, 3 bottom-right). Reward 1 for the right quadrant, else 0. A uniform-random policy
    scores 0.25, a perfect one 1.
``armfarm/DotPoint-v0``
    Continuous actions: the action ``a in [-1, 1]^2`` points at the dot, whose centre is at
    ``p = (2 x / size - 1, 2 y / size - 1)`` (column, row), and the reward is ``-||a - p||_2``. A perfect
    policy scores 0; a uniform-random one about -1.03 and the best blind one (``a = 0``) about -0.75
    (``info["target"]`` holds ``p``). ``armfarm/DotPointState-v0`` is the same task from states: the
    observation is the dot's (row, column) in pixels.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class _DotImage(gym.Env):
    """A one-step task from an image with a 2x2 dot that never straddles two quadrants."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, size: int = 16, render_mode: str | None = None):
        if size < 4 or size % 2:
            raise ValueError(f"size must be an even number >= 4, got {size}")
        self.size = int(size)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 1), np.uint8)
        self._dot = (0, 0)

    def _image(self) -> np.ndarray:
        image = np.zeros((self.size, self.size, 1), np.uint8)
        r, c = self._dot
        image[r:r + 2, c:c + 2] = 255
        return image

    def _observation(self) -> np.ndarray:
        return self._image()

    def _info(self) -> dict:
        return {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        half = self.size // 2
        # the 2x2 block lies inside one half on each axis
        rows = np.concatenate([np.arange(0, half - 1), np.arange(half, self.size - 1)])
        self._dot = (int(self.np_random.choice(rows)), int(self.np_random.choice(rows)))
        return self._observation(), self._info()

    def render(self):
        return np.repeat(self._image(), 3, axis=2)


class QuadrantDot(_DotImage):
    """See the module docstring."""

    def __init__(self, size: int = 16, render_mode: str | None = None):
        super().__init__(size, render_mode)
        self.action_space = gym.spaces.Discrete(4)

    def quadrant(self) -> int:
        """The right answer for the current image."""
        half = self.size // 2
        r, c = self._dot
        return 2 * int(r >= half) + int(c >= half)

    def _info(self) -> dict:
        return {"quadrant": self.quadrant()}

    def step(self, action):
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must be one of 0..3, got {action!r}")
        reward = float(int(action) == self.quadrant())
        return self._observation(), reward, True, False, self._info()


class DotPoint(_DotImage):
    """See the module docstring. ``observation="state"`` shows the dot's row and column (pixels, as
    float32) instead of the image: the same task from states (``armfarm/DotPointState-v0``)."""

    def __init__(self, size: int = 16, render_mode: str | None = None, observation: str = "image"):
        super().__init__(size, render_mode)
        if observation not in ("image", "state"):
            raise ValueError(f"observation must be 'image' or 'state', got {observation!r}")
        self.observation = observation
        if observation == "state":
            self.observation_space = gym.spaces.Box(0.0, float(self.size - 2), (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _observation(self) -> np.ndarray:
        return np.asarray(self._dot, np.float32) if self.observation == "state" else self._image()

    def target(self) -> np.ndarray:
        """The point the best action names: the dot's centre (column, row) scaled to ``[-1, 1]``."""
        r, c = self._dot
        return np.array([2.0 * (c + 1) / self.size - 1.0, 2.0 * (r + 1) / self.size - 1.0], np.float32)

    def _info(self) -> dict:
        return {"target": self.target()}

    def step(self, action):
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be 2 finite numbers, got {action!r}")
        reward = -float(np.linalg.norm(np.clip(action, -1.0, 1.0) - self.target()))
        return self._observation(), reward, True, False, self._info()
