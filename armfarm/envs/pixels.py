"""Small pixel tasks with known answers, for testing and demonstrating learners from images.

``armfarm/QuadrantDot-v0``
    A one-step bandit from images: the observation is a ``size x size x 1`` ``uint8`` image (16x16 by
    default) that is black except for a 2x2 white dot at a random place; the four actions name the
    quadrant the dot is in (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right). Reward 1 for the
    right quadrant, else 0, and the episode ends. A uniform-random policy scores 0.25, a perfect one 1,
    and the only way above 0.25 is to read the image.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class QuadrantDot(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, size: int = 16, render_mode: str | None = None):
        if size < 4 or size % 2:
            raise ValueError(f"size must be an even number >= 4, got {size}")
        self.size = int(size)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 1), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self._dot = (0, 0)

    def _image(self) -> np.ndarray:
        image = np.zeros((self.size, self.size, 1), np.uint8)
        r, c = self._dot
        image[r:r + 2, c:c + 2] = 255
        return image

    def quadrant(self) -> int:
        """The right answer for the current image."""
        half = self.size // 2
        r, c = self._dot
        return 2 * int(r >= half) + int(c >= half)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        half = self.size // 2
        # a dot never straddles two quadrants: its 2x2 block lies inside one half on each axis
        rows = np.concatenate([np.arange(0, half - 1), np.arange(half, self.size - 1)])
        self._dot = (int(self.np_random.choice(rows)), int(self.np_random.choice(rows)))
        return self._image(), {"quadrant": self.quadrant()}

    def step(self, action):
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action must be one of 0..3, got {action!r}")
        reward = float(int(action) == self.quadrant())
        return self._image(), reward, True, False, {"quadrant": self.quadrant()}

    def render(self):
        return np.repeat(self._image(), 3, axis=2)
