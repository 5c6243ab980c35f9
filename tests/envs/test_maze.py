"""The maze2d waypoint controller: grid distances with known answers, and it reaches goals."""

import numpy as np
import pytest

from armfarm.envs.behavior import BehaviorSpec, make_behavior
from armfarm.envs.maze import WaypointController, grid_distances
from armfarm.envs.registry import make_env
from armfarm.envs.rollout import rollout_episode


def test_grid_distances_follow_the_corridor_not_the_wall():
    # U-shaped corridor: the straight-line neighbour of (1, 1) is (3, 1), but a wall separates them.
    free = np.array([[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
    dist = grid_distances(free, (3, 1))
    assert dist[3, 1] == 0
    assert dist[1, 1] == 6  # (1,1)->(1,2)->(1,3)->(2,3)->(3,3)->(3,2)->(3,1)
    assert np.isinf(dist[2, 1]) and np.isinf(dist[0, 0])


def test_controller_reaches_goals_far_more_often_than_random():
    env = make_env("PointMaze_UMazeDense-v3")
    controller = WaypointController(env.unwrapped.maze)
    expert = [rollout_episode(env, controller, seed=s)["rewards"].sum() for s in range(4)]
    behavior = make_behavior(BehaviorSpec("random"), env)
    behavior.reset(np.random.default_rng(0))
    random = [rollout_episode(env, behavior, seed=s)["rewards"].sum() for s in range(4)]
    assert np.mean(expert) > 1.5 * np.mean(random)


def test_maze_behaviours_need_a_maze():
    env = make_env("Hopper-v5")
    with pytest.raises(ValueError, match="PointMaze"):
        make_behavior(BehaviorSpec("maze-mixed"), env)


def test_rollout_records_t_plus_one_observations_and_separate_flags():
    env = make_env("PointMaze_UMazeDense-v3")
    behavior = make_behavior(BehaviorSpec("random"), env)
    episode = rollout_episode(env, behavior, seed=0, max_steps=7)
    assert episode["actions"].shape == (7, 2)
    assert episode["observations"]["observation"].shape == (8, 4)
    assert episode["truncated"][-1] and not episode["terminated"].any()
