"""Environments: Gymnasium ids armfarm adds (the ``armfarm/`` namespace), registered on import.

* ``armfarm/HopperVelocity-v0``, ``armfarm/HalfCheetahVelocity-v0``: velocity-limit costs
  (:mod:`armfarm.envs.velocity`);
* ``armfarm/ReacherFragile-v0``: an arm among dishes, a window and its own motor limits
  (:mod:`armfarm.envs.fragile`).

* ``armfarm/QuadrantDot-v0``, ``armfarm/DotPoint-v0``: one-step bandits from 16x16 images, with
  discrete and continuous actions, and ``armfarm/DotPointState-v0``, DotPoint from states
  (:mod:`armfarm.envs.pixels`);
* ``armfarm/MinAtar-<Game>-v0``: MinAtar's five games as ``uint8`` images (:mod:`armfarm.envs.minatar`,
  needs the optional ``minatar`` extra).

The damage tasks each report a per-step ``info["cost"]`` (Safety-Gymnasium's convention), which armfarm records.
The velocity tasks have a default cost budget of 20 per 1000-step episode (armfarm's choice, in the
range of the thresholds offline safe-RL benchmarks evaluate these tasks at; pass ``--cost-budget`` to
match a benchmark's); normalised cost is the mean episode cost over the budget (DSRL's measure).
"""

import gymnasium as gym

from armfarm.envs.minatar import GAMES as MINATAR_GAMES
from armfarm.envs.minatar import MAX_STEPS as MINATAR_MAX_STEPS
from armfarm.envs.minatar import env_id as minatar_id

VELOCITY_COST_BUDGET = 20.0

DAMAGE_TASKS = {
    "armfarm/HopperVelocity-v0": ("armfarm.envs.velocity:make_velocity_env", {"base_id": "Hopper-v5"}, 1000),
    "armfarm/HalfCheetahVelocity-v0": ("armfarm.envs.velocity:make_velocity_env", {"base_id": "HalfCheetah-v5"}, 1000),
    "armfarm/ReacherFragile-v0": ("armfarm.envs.fragile:make_reacher_fragile", {}, 100),
}

for _id, (_entry, _kwargs, _steps) in DAMAGE_TASKS.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry, kwargs=_kwargs, max_episode_steps=_steps)


for _name in ("QuadrantDot", "DotPoint"):
    if f"armfarm/{_name}-v0" not in gym.registry:
        gym.register(f"armfarm/{_name}-v0", entry_point=f"armfarm.envs.pixels:{_name}", max_episode_steps=1)
if "armfarm/DotPointState-v0" not in gym.registry:
    gym.register("armfarm/DotPointState-v0", entry_point="armfarm.envs.pixels:DotPoint", kwargs={"observation": "state"},
                 max_episode_steps=1)
for _game in MINATAR_GAMES:
    if minatar_id(_game) not in gym.registry:
        gym.register(minatar_id(_game), entry_point="armfarm.envs.minatar:make_minatar", kwargs={"game": _game},
                     max_episode_steps=MINATAR_MAX_STEPS)


def default_cost_budget(env_id: str) -> float | None:
    """The episode cost budget armfarm evaluates ``env_id`` against by default (None: no default)."""
    return VELOCITY_COST_BUDGET if env_id in ("armfarm/HopperVelocity-v0", "armfarm/HalfCheetahVelocity-v0") else None
