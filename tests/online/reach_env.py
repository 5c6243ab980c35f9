"""A tiny continuous task for the online tests, registered once as ``ArmfarmTestReach-v0``."""

import gymnasium as gym
import numpy as np


class ReachEnv(gym.Env):
    """A point on a line must reach a target: obs = (x, target), x += 0.2 * a with a in [-1, 1],
    reward = -|x - target|, 25-step episodes. Random actions score about -25; reaching and staying
    scores about -4."""

    observation_space = gym.spaces.Box(-3.0, 3.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.target, self.t = self.np_random.uniform(-1, 1), self.np_random.uniform(-1, 1), 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, self.target], np.float32)

    def step(self, action):
        self.x = float(np.clip(self.x + 0.2 * float(np.clip(action[0], -1, 1)), -3, 3))
        self.t += 1
        return self._obs(), -abs(self.x - self.target), False, self.t >= 25, {}


gym.register("ArmfarmTestReach-v0", entry_point=ReachEnv)
