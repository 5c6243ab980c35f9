"""armfarm: data-driven reinforcement learning for robot fleets.

Robots collect episodes into a durable episode store (:mod:`armfarm.data`); a learner extracts a
policy from the static data with pessimistic offline RL (:mod:`armfarm.algos`); policies are
evaluated (:mod:`armfarm.evaluate`) and run anywhere NumPy runs (:mod:`armfarm.policy`).
"""

__version__ = "0.1.0"
