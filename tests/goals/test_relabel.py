"""Hindsight relabeling: goals from the right places at the configured rates, never across episodes,
and rewards that mark exactly the reached goals."""

import dataclasses

import numpy as np
import pytest
from goal_testlib import mixed_dataset

from armfarm.algos.core.batches import episode_bounds
from armfarm.algos.gciql import GCIQLConfig
from armfarm.data import TransitionDataset
from armfarm.goals import GoalSampler, GoalSpace, resolve_goal_space


def _line_dataset(lengths=(7, 3, 12, 1, 9)):
    """Episodes whose states are (episode, step): a goal names where it came from."""
    obs, nxt = [], []
    for e, n in enumerate(lengths):
        for t in range(n):
            obs.append([e, t]), nxt.append([e, t + 1])
    n = len(obs)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return TransitionDataset.from_arrays(np.array(obs), np.zeros((n, 1)), np.zeros(n), np.array(nxt), np.zeros(n),
                                         episode_starts=starts)


def _indices_of(data, goals):
    """The transition index of each goal (states are unique in _line_dataset)."""
    lookup = {tuple(o): i for i, o in enumerate(data.observations.tolist())}
    return np.array([lookup[tuple(g)] for g in goals.tolist()])


@pytest.mark.parametrize("geom", [True, False])
def test_goals_come_from_the_configured_places_at_the_configured_rates(geom):
    data = _line_dataset()
    config = GCIQLConfig(value_p_curgoal=0.2, value_p_trajgoal=0.5, value_p_randomgoal=0.3, value_geom_sample=geom,
                         gamma=0.7)
    sampler = GoalSampler(data, GoalSpace(2, (0, 1)), config)
    batch = sampler.sample_stacked(np.random.default_rng(0), 50, 400)
    obs, goals = batch["observations"].reshape(-1, 2), batch["value_goals"].reshape(-1, 2)
    # a goal from another episode can only be a random one: 0.3 times the chance that a uniform state
    # lies outside the sampled state's episode
    lengths = np.diff(np.append(data.episode_starts, data.size))
    outside = 1 - lengths[obs[:, 0].astype(int)] / data.size
    assert abs((obs[:, 0] != goals[:, 0]).mean() - 0.3 * outside.mean()) < 0.015
    assert (obs == goals).all(axis=1).mean() >= 0.2 - 0.015
    # without random goals the split is exact in distribution
    exact = dataclasses.replace(config, value_p_randomgoal=0.0, value_p_trajgoal=0.8)
    batch = GoalSampler(data, GoalSpace(2, (0, 1)), exact).sample_stacked(np.random.default_rng(1), 50, 400)
    obs, goals = batch["observations"].reshape(-1, 2), batch["value_goals"].reshape(-1, 2)
    assert (obs[:, 0] == goals[:, 0]).all(), "with no random goals every goal is from the same episode"
    assert (goals[:, 1] >= obs[:, 1]).all(), "future goals never go back in time"
    not_last = ~np.isin(_indices_of(data, obs), episode_bounds(data)[1] - 1)
    assert abs((obs == goals).all(axis=1)[not_last].mean() - 0.2) < 0.02


def test_a_future_goal_is_never_drawn_from_another_episode():
    data = mixed_dataset(episodes=30, length=17)
    config = GCIQLConfig(value_p_curgoal=0.0, value_p_trajgoal=1.0, value_p_randomgoal=0.0, value_geom_sample=True,
                         actor_p_curgoal=0.0, actor_p_trajgoal=1.0, actor_p_randomgoal=0.0, gamma=0.99)
    sampler = GoalSampler(data, GoalSpace(2, (0, 1)), config)
    rng = np.random.default_rng(3)
    idx = rng.integers(0, data.size, 100_000)
    starts, ends = episode_bounds(data)
    episode = np.searchsorted(starts, idx, side="right") - 1
    for role in ("value", "actor"):
        goal_idx = sampler.goal_indices(rng, idx, role)
        assert (goal_idx >= np.minimum(idx + 1, ends[episode] - 1)).all()
        assert (goal_idx <= ends[episode] - 1).all(), f"{role}: a goal past its episode's end"


def test_geometric_offsets_follow_the_discount():
    data = _line_dataset(lengths=(5000,))
    config = GCIQLConfig(value_p_curgoal=0.0, value_p_trajgoal=1.0, value_p_randomgoal=0.0, gamma=0.9)
    sampler = GoalSampler(data, GoalSpace(2, (0, 1)), config)
    idx = np.zeros(200_000, np.int64)
    offsets = sampler.goal_indices(np.random.default_rng(0), idx, "value")
    assert abs(offsets.mean() - 1 / (1 - 0.9)) < 0.1  # Geometric(1 - gamma) has mean 1 / (1 - gamma)


@pytest.mark.parametrize("negative", [False, True])
def test_the_success_reward_is_exactly_one_where_the_goal_is_reached(negative):
    data = _line_dataset()
    config = GCIQLConfig(gc_negative=negative)
    batch = GoalSampler(data, GoalSpace(2, (0, 1)), config).sample_stacked(np.random.default_rng(2), 20, 256)
    reached = (batch["observations"] == batch["value_goals"]).all(axis=-1)
    expected = reached.astype(np.float32) - (1.0 if negative else 0.0)
    np.testing.assert_array_equal(batch["rewards"], expected)
    np.testing.assert_array_equal(batch["terminals"], reached.astype(np.float32))
    assert reached.any() and not reached.all()


def test_a_distance_threshold_counts_nearby_states_as_reached():
    data = _line_dataset(lengths=(40,))
    space = GoalSpace(2, (1,), threshold=2.0)  # goal: the step number; within 2 steps counts
    config = GCIQLConfig(gc_negative=False, value_p_curgoal=0.0, value_p_trajgoal=1.0, value_p_randomgoal=0.0,
                         value_geom_sample=False)
    batch = GoalSampler(data, space, config).sample_stacked(np.random.default_rng(4), 10, 500)
    gap = np.abs(batch["observations"][..., 1] - batch["value_goals"][..., 0])
    np.testing.assert_array_equal(batch["rewards"], (gap <= 2.0).astype(np.float32))
    assert (gap <= 2.0).any() and (gap > 2.0).any()


def test_sampling_is_deterministic_for_a_generator_state():
    data = mixed_dataset(episodes=10, length=20)
    sampler = GoalSampler(data, GoalSpace(2, (0, 1)), GCIQLConfig())
    a = sampler.sample_stacked(np.random.default_rng(9), 3, 64)
    b = sampler.sample_stacked(np.random.default_rng(9), 3, 64)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert a["value_goals"].shape == (3, 64, 2) and a["actor_goals"].shape == (3, 64, 2)


def test_goal_spaces_for_dict_and_flat_observations():
    flat = resolve_goal_space(4, None, 0.0)
    assert flat.dims == (0, 1, 2, 3) and flat.slot is None and flat.input_dim == 8
    sizes = {"achieved_goal": 2, "desired_goal": 2, "observation": 4}
    robotics = resolve_goal_space(8, None, 0.45, sizes)
    assert robotics.dims == (0, 1) and robotics.slot == (2, 4) and robotics.input_dim == 8
    obs, goal = np.arange(8.0), np.array([-1.0, -2.0])
    np.testing.assert_array_equal(robotics.compose(obs, goal), [0, 1, -1, -2, 4, 5, 6, 7])
    np.testing.assert_array_equal(resolve_goal_space(3, (2,), 0.0).compose(np.arange(3.0), np.array([9.0])),
                                  [0, 1, 2, 9])
    with pytest.raises(ValueError, match="achieved_goal"):
        resolve_goal_space(8, (4, 5), 0.0, sizes)
    with pytest.raises(ValueError, match="goal dims"):
        resolve_goal_space(3, (3,), 0.0)


def test_bad_rates_are_refused_naming_the_fields():
    with pytest.raises(ValueError, match="value_p_curgoal"):
        GCIQLConfig(value_p_curgoal=0.5, value_p_trajgoal=0.5, value_p_randomgoal=0.3)
    with pytest.raises(ValueError, match="actor_p_curgoal"):
        GCIQLConfig(actor_p_curgoal=-0.1, actor_p_trajgoal=1.1)


def test_hierarchical_subgoals_are_k_steps_ahead_in_the_episode_and_never_past_the_goal():
    from armfarm.algos.hiql import HIQLConfig

    data = _line_dataset(lengths=(30, 4, 25))
    k = 5
    config = HIQLConfig(subgoal_steps=k, actor_p_curgoal=0.0, actor_p_trajgoal=0.7, actor_p_randomgoal=0.3)
    batch = GoalSampler(data, GoalSpace(2, (0, 1)), config).sample_stacked(np.random.default_rng(0), 20, 500)
    obs = batch["observations"].reshape(-1, 2)
    sub, target = batch["subgoals"].reshape(-1, 2), batch["subgoal_targets"].reshape(-1, 2)
    goal = batch["actor_goals"].reshape(-1, 2)
    last = np.array([29, 3, 24])[obs[:, 0].astype(int)]
    assert (sub[:, 0] == obs[:, 0]).all() and (target[:, 0] == obs[:, 0]).all(), "subgoals stay in the episode"
    np.testing.assert_array_equal(sub[:, 1], np.minimum(obs[:, 1] + k, last))
    same = goal[:, 0] == obs[:, 0]
    future = same & (goal[:, 1] >= obs[:, 1])
    np.testing.assert_array_equal(target[future, 1], np.minimum(np.minimum(obs[future, 1] + k, last[future]),
                                                                goal[future, 1]))
    np.testing.assert_array_equal(target[~future, 1], np.minimum(obs[~future, 1] + k, last[~future]))
    assert (~future).mean() > 0.1 and (target[future, 1] < obs[future, 1] + k).any(), "both branches are exercised"
    np.testing.assert_array_equal(batch["subgoal_target_observations"], batch["subgoal_targets"])
