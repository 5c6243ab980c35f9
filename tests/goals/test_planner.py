"""Waypoint planning over stored states: shortest paths on a graph whose edges the distance estimate
trusts, checked on a line whose distances are known."""

import numpy as np
import pytest

from armfarm.goals.planner import WaypointPlanner, farthest_points
from armfarm.goals.space import GoalSpace


class LineDistance:
    """Steps between points on a line, 10 per unit (a stand-in for a learned value with a known answer)."""

    space = GoalSpace(1, (0,), None, 0.0)
    gamma = 0.99

    def __init__(self, gap=None):
        self.gap = gap  # (low, high): an interval no single edge may cross

    def __call__(self, obs, goals):
        d = np.abs(np.asarray(obs)[:, None, 0] - np.asarray(goals)[None, :, 0]) * 10.0
        if self.gap is not None:
            low, high = self.gap
            a, b = np.asarray(obs)[:, None, 0], np.asarray(goals)[None, :, 0]
            crosses = (np.minimum(a, b) < low) & (np.maximum(a, b) > high)
            d = np.where(crosses, 1e6, d)
        return d.astype(np.float32)


def line(n=11):
    return np.linspace(0.0, n - 1, n, dtype=np.float32)[:, None]


def test_shortest_paths_go_through_every_intermediate_node_when_edges_are_short():
    planner = WaypointPlanner(LineDistance(), line(), num_nodes=11, max_edge=15.0, reach=5.0, pool=11)
    nodes = planner.node_goals[:, 0]
    route = planner.path(np.array([0.0]), np.array([10.0]))
    assert list(nodes[route]) == list(range(11)), "one node per unit, in order"
    assert planner.dist[int(np.argmin(nodes)), int(np.argmax(nodes))] == pytest.approx(100.0)
    assert planner.waypoint(np.array([0.0]), np.array([10.0]))[0] == 1.0, "the first node at least `reach` away"
    assert planner.waypoint(np.array([0.8]), np.array([10.0]))[0] == 2.0, "a node already reached is passed"
    assert planner.waypoint(np.array([9.2]), np.array([10.0]))[0] == 10.0, "a goal in reach is pursued directly"


def test_a_goal_with_no_path_is_pursued_directly():
    planner = WaypointPlanner(LineDistance(gap=(4.2, 4.8)), line(), num_nodes=11, max_edge=15.0, reach=5.0, pool=11)
    assert planner.path(np.array([0.0]), np.array([10.0])) == []
    assert planner.waypoint(np.array([0.0]), np.array([10.0]))[0] == 10.0
    assert planner.path(np.array([5.0]), np.array([10.0])), "the far side is still connected"


def test_nodes_cover_the_data_and_bad_settings_are_refused():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (500, 2)), rng.normal(10, 0.1, (5, 2))])
    picked = points[farthest_points(points, 4, rng)]
    assert (picked[:, 0] > 5).any() and (picked[:, 0] < 5).any(), "a small far cluster still gets a node"
    default = WaypointPlanner(LineDistance(), line(), num_nodes=11, pool=11)
    assert default.max_edge == pytest.approx(10.48, abs=0.01) and default.reach == pytest.approx(default.max_edge / 4)
    with pytest.raises(ValueError, match="reach < max_edge"):
        WaypointPlanner(LineDistance(), line(), max_edge=5.0, reach=5.0)


@pytest.mark.parametrize("negative", [True, False])
def test_a_goal_value_converts_back_to_its_number_of_steps(negative):
    import jax.numpy as jnp

    from armfarm.algos.core.goals import steps_to_goal
    from armfarm.algos.gciql import GCIQLConfig

    config = GCIQLConfig(gamma=0.99, gc_negative=negative)
    d = jnp.array([0.0, 1.0, 10.0, 250.0])
    value = -(1 - 0.99 ** d) / (1 - 0.99) if negative else 0.99 ** d
    assert np.allclose(steps_to_goal(config, value), d, atol=1e-2)
