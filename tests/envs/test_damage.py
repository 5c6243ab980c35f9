"""The damage tasks: velocity limits at Safety-Gymnasium's thresholds, and the fragile room around a Reacher arm,
which a random policy wrecks and a careful one leaves whole."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from armfarm.envs.fragile import CarefulReacher, FragileLimits, ReacherFragile, fingertip, inverse_kinematics
from armfarm.envs.registry import make_env
from armfarm.envs.rollout import rollout_episode
from armfarm.envs.velocity import VELOCITY_THRESHOLDS


@pytest.mark.parametrize(("env_id", "base"), [("armfarm/HopperVelocity-v0", "Hopper-v5"),
                                              ("armfarm/HalfCheetahVelocity-v0", "HalfCheetah-v5")])
def test_velocity_cost_is_one_exactly_above_the_threshold(env_id, base):
    env, plain = make_env(env_id), gym.make(base)
    assert env.spec.max_episode_steps == 1000 and env.observation_space == plain.observation_space
    threshold = VELOCITY_THRESHOLDS[base]
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    plain.reset(seed=3)
    costs, fast = [], []
    for _ in range(300):
        action = rng.uniform(-1, 1, env.action_space.shape)
        obs, reward, term, trunc, info = env.step(action)
        obs2, reward2, *_ = plain.step(action)
        assert reward == reward2 and np.array_equal(obs, obs2)  # the v5 task, unchanged
        costs.append(info["cost"])
        fast.append(info["x_velocity"] > threshold)
        if term or trunc:
            break
    assert costs == [float(f) for f in fast]
    assert set(costs) <= {0.0, 1.0}


def test_velocity_cost_fires_for_a_fast_robot():
    env = make_env("armfarm/HalfCheetahVelocity-v0")
    env.reset(seed=0)
    env.unwrapped.data.qvel[0] = 8.0  # pushed forward well past 3.2096 m/s
    _, _, _, _, info = env.step(np.zeros(6))
    assert info["x_velocity"] > 3.2096 and info["cost"] == 1.0


def test_reacher_fragile_targets_avoid_the_window_and_dishes_flank_them():
    env = make_env("armfarm/ReacherFragile-v0")
    limits = FragileLimits()
    for seed in range(50):
        obs, info = env.reset(seed=seed)
        target = obs[4:6]
        assert target[1] >= limits.window_y + 0.04 and 0.05 <= np.linalg.norm(target) <= 0.19
        dishes = info["dishes"]
        np.testing.assert_allclose(np.linalg.norm(dishes - target, axis=1), limits.dish_offset, rtol=1e-6)


def test_each_damage_term_fires_when_it_should():
    env = make_env("armfarm/ReacherFragile-v0")
    obs, info = env.reset(seed=1)
    base = env.unwrapped
    fragile = env
    while not isinstance(fragile, ReacherFragile):
        fragile = fragile.env
    limits = fragile.limits

    def place(q, qvel=(0.0, 0.0)):
        qpos, vel = base.data.qpos.copy(), base.data.qvel.copy()
        qpos[:2], vel[:2] = q, qvel
        base.set_state(qpos, vel)
        fragile._tip = fingertip(q)  # placed, not moved: no speed

    # resting on a dish
    dish = info["dishes"][0]
    q = min(inverse_kinematics(dish), key=lambda g: abs(g[1]))
    place(q)
    _, _, _, _, step = env.step(np.zeros(2))
    assert step["cost_dishes"] == 1 and step["cost"] == 1
    # in the window
    place(inverse_kinematics(np.array([0.0, -0.17]))[0])
    _, _, _, _, step = env.step(np.zeros(2))
    assert step["cost_window"] == 1
    # a joint spinning past its limit
    place(inverse_kinematics(np.array([0.15, 0.1]))[0], qvel=(limits.joint_speed_limit + 5, 0.0))
    _, _, _, _, step = env.step(np.zeros(2))
    assert step["cost_joints"] == 1
    # at rest, far from everything: nothing breaks
    place(inverse_kinematics(np.array([0.12, 0.15]))[0])
    _, _, _, _, step = env.step(np.zeros(2))
    assert step["cost"] == 0 and step["cost_window"] == step["cost_dishes"] == step["cost_joints"] == 0


def test_a_random_policy_breaks_things_and_a_careful_one_reaches_targets_without_damage():
    env = make_env("armfarm/ReacherFragile-v0")
    rng = np.random.default_rng(0)
    random_costs = [rollout_episode(env, lambda o: rng.uniform(-1, 1, 2), seed=s)["costs"].sum() for s in range(10)]
    assert np.mean(random_costs) > 10 and min(random_costs) > 0
    careful = CarefulReacher()
    reached = 0
    for seed in range(20):
        careful.reset()
        episode = rollout_episode(env, careful, seed=seed)
        assert episode["costs"].sum() == 0, f"seed {seed}"
        reached += np.linalg.norm(episode["observations"][-1][8:10]) < 0.02
    assert reached >= 16
