"""Environments: Gymnasium ids armfarm adds (the ``armfarm/`` namespace), registered on import.

* ``armfarm/HopperVelocity-v0``, ``armfarm/HalfCheetahVelocity-v0``: velocity-limit costs
  (:mod:`armfarm.envs.velocity`);
* ``armfarm/ReacherFragile-v0``: an arm among dishes, a window and its own motor limits
  (:mod:`armfarm.envs.fragile`).

Each reports a per-step ``info["cost"]`` (Safety-Gymnasium's convention), which armfarm records.
"""

import gymnasium as gym

DAMAGE_TASKS = {
    "armfarm/HopperVelocity-v0": ("armfarm.envs.velocity:make_velocity_env", {"base_id": "Hopper-v5"}, 1000),
    "armfarm/HalfCheetahVelocity-v0": ("armfarm.envs.velocity:make_velocity_env", {"base_id": "HalfCheetah-v5"}, 1000),
    "armfarm/ReacherFragile-v0": ("armfarm.envs.fragile:make_reacher_fragile", {}, 100),
}

for _id, (_entry, _kwargs, _steps) in DAMAGE_TASKS.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry, kwargs=_kwargs, max_episode_steps=_steps)
