"""The shield: each layer intervenes exactly when it should, a fitted shield learns the costs and the
support of its data, and a damaged shield directory is refused with a clear error."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from armfarm.data import Episode, EpisodeStore, StoreSpec
from armfarm.data.schema import ArraySpec
from armfarm.envs.rollout import rollout_episode
from armfarm.shield import (
    COST,
    LIMITS,
    SUPPORT,
    WATCHDOG,
    CostCritic,
    Limits,
    Shield,
    ShieldConfig,
    ShieldError,
    Support,
    Watchdog,
    describe_interventions,
)
from armfarm.shield.fit import fit_shield
from armfarm.shield.runtime import unfitted_models

OBS, ACT = 2, 2


def hand_shield(limits=Limits(), support=Support(threshold=0.5 * 0.8**2), cost=CostCritic(budget=0.5),
                watchdog=Watchdog(), fallback="stop") -> Shield:
    """A shield with hand-set models over actions in [-2, 2]: the behaviour model is N(0, 1) in scaled units
    (score 0.5 |u|^2), and the cost critic is Q_c = u_0 (the first action dimension, scaled)."""
    arrays = unfitted_models(OBS, ACT)
    arrays["cost_critic.w0"][OBS, 0] = 1.0
    config = ShieldConfig(OBS, ACT, [-2.0, -2.0], [2.0, 2.0], fallback=fallback, limits=limits, support=support,
                          cost=cost, watchdog=watchdog)
    return Shield(config, arrays)


def test_limits_clip_to_bounds_and_per_dimension_limits_and_rate_limit():
    shield = hand_shield(limits=Limits(low=[-1.0, -2.0], high=[1.0, 0.5], max_delta=0.25),
                         support=Support(enabled=False), cost=CostCritic(enabled=False))
    obs = np.zeros(OBS)
    action, flags = shield.filter(obs, [0.1, 0.2])
    assert flags == 0 and np.allclose(action, [0.1, 0.2])  # inside everything: untouched
    action, flags = shield.filter(obs, [1.7, 3.0])
    assert flags == LIMITS and np.allclose(action, [1.0, 0.5])
    action, flags = shield.filter(obs, [0.9, 0.0], previous=np.array([0.0, 0.0]))
    assert flags == LIMITS and np.allclose(action, [0.25, 0.0])  # at most 0.25 per step
    action, flags = shield.filter(obs, [np.nan, 0.0])
    assert flags & LIMITS and np.isfinite(action).all()  # NaN never reaches the motors


def test_support_gate_refuses_unfamiliar_actions_for_the_fallback():
    shield = hand_shield(cost=CostCritic(enabled=False))  # threshold: |u| = 0.8 (u = a / 2)
    obs = np.zeros(OBS)
    action, flags = shield.filter(obs, [1.0, 1.0])  # |u| = 0.71: familiar
    assert flags == 0 and np.allclose(action, [1.0, 1.0])
    action, flags = shield.filter(obs, [1.6, 0.4])  # |u| = 0.82: not
    assert flags == SUPPORT and np.allclose(action, [0.0, 0.0])  # the 'stop' fallback: the centre


def test_cost_critic_refuses_actions_over_budget():
    shield = hand_shield(support=Support(enabled=False))  # Q_c = a_0 / 2 > 0.5 <=> a_0 > 1
    obs = np.zeros(OBS)
    assert shield.filter(obs, [0.9, -1.9])[1] == 0
    action, flags = shield.filter(obs, [1.1, 0.0])
    assert flags == COST and np.allclose(action, [0.0, 0.0])
    both = hand_shield()
    assert both.filter(obs, [1.9, 0.0])[1] == SUPPORT | COST
    assert describe_interventions(SUPPORT | COST) == ["support", "cost"]


def test_projection_takes_the_nearest_accepted_action_on_the_way_to_the_fallback():
    obs = np.zeros(OBS)  # Q_c = a_0 / 2 <= 0.5 <=> a_0 <= 1; the 'stop' fallback is [0, 0]
    cost_only = hand_shield(support=Support(enabled=False), cost=CostCritic(budget=0.5, project=True))
    action, flags = cost_only.filter(obs, [1.8, 1.2])  # a_0 = 1.8 (1 - t) <= 1 first at t = 4/8
    assert flags == COST and np.allclose(action, [0.9, 0.6])
    action, flags = cost_only.filter(obs, [1.2, 1.9])  # t = 2/8
    assert np.allclose(action, [0.9, 1.425])
    both = hand_shield(cost=CostCritic(budget=0.5, project=True))  # the support gate accepts |a| <= 1.6
    action, flags = both.filter(obs, [1.2, 1.9])  # |[0.9, 1.425]| = 1.69: unfamiliar; t = 3/8 is not
    assert flags == SUPPORT | COST and np.allclose(action, [0.75, 1.1875])
    assert cost_only.filter(obs, [0.9, -1.9]) == (pytest.approx([0.9, -1.9]), 0)  # accepted: untouched
    everything = hand_shield(support=Support(enabled=False), cost=CostCritic(budget=0.0, project=True))
    action, _ = everything.filter(obs, [1.0, 1.0])  # only a_0 <= 0 is accepted: the fallback itself
    assert np.allclose(action, [0.0, 0.0])


def test_bc_fallback_is_the_behaviour_models_mean():
    shield = hand_shield(support=Support(enabled=False), fallback="bc")
    shield.models["behavior"][0][1][:ACT] = [0.5, -0.5]  # mean tanh(0.5), tanh(-0.5) in scaled units
    action, flags = shield.filter(np.zeros(OBS), [2.0, 0.0])
    assert flags == COST and np.allclose(action, 2 * np.tanh([0.5, -0.5]))


def test_min_cost_fallback_takes_the_supported_action_the_cost_critic_rates_safest():
    shield = hand_shield(support=Support(enabled=False), fallback="min-cost")  # Q_c = u_0
    bias = shield.models["behavior"][0][1]
    bias[:ACT], bias[ACT:] = [0.5, -0.5], np.log(0.1)  # behaviour: mean tanh(+-0.5), std 0.1 (scaled units)
    mean = np.tanh([0.5, -0.5])
    obs = np.zeros(OBS)
    action, flags = shield.filter(obs, [2.0, 0.0])
    u = action / 2
    assert flags == COST
    assert u[0] < mean[0] - 0.1  # lower cost than the behaviour mean (bc) would have had ...
    assert np.all(np.abs(u - mean) < 0.5)  # ... but still among the actions the data supports
    rng = np.random.default_rng(1)
    draws = np.clip(mean + 0.1 * rng.standard_normal((2000, ACT)), -1, 1)
    assert np.mean(draws[:, 0] < u[0]) < 0.05  # about as safe as the behaviour model's actions get
    assert np.array_equal(shield.filter(obs, [2.0, 0.0])[0], action)  # deterministic


class Steps:
    """A toy environment: 2-D actions, a scripted reward and cost per step, 50 steps."""

    action_space = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)

    def __init__(self, rewards, costs):
        self.rewards, self.costs, self.t = rewards, costs, 0

    def reset(self, seed=None):
        self.t = 0
        return np.zeros(OBS, np.float32), {}

    def step(self, action):
        r, c = self.rewards[self.t], self.costs[self.t]
        self.t += 1
        return np.full(OBS, self.t, np.float32), r, False, self.t >= len(self.rewards), {"cost": c}


def quiet_shield(**watchdog) -> Shield:
    return hand_shield(support=Support(enabled=False), cost=CostCritic(enabled=False), watchdog=Watchdog(**watchdog))


def test_watchdog_stops_the_episode_when_its_cost_passes_the_budget():
    costs = [0.0] * 10 + [1.0, 0.0, 1.0, 1.0] + [0.0] * 36
    policy = quiet_shield(episode_cost_budget=2.5).wrap(lambda o: np.zeros(ACT))
    episode = rollout_episode(Steps([1.0] * 50, costs), policy, seed=0)
    assert len(episode["actions"]) == 14 and episode["truncated"][-1] and not episode["terminated"].any()
    assert episode["end_reason"].startswith("watchdog: episode cost 3 passed the budget 2.5")
    unlimited = rollout_episode(Steps([1.0] * 50, costs), quiet_shield().wrap(lambda o: np.zeros(ACT)), seed=0)
    assert len(unlimited["actions"]) == 50 and unlimited["end_reason"] == ""


def test_watchdog_recovers_then_stops_a_robot_that_makes_no_progress():
    rewards = [1.0] * 20 + [0.0] * 30  # stuck after step 20
    policy = quiet_shield(no_progress_steps=5, min_progress=0.5, recovery="stop", recovery_steps=3).wrap(
        lambda o: np.ones(ACT))
    episode = rollout_episode(Steps(rewards, [0.0] * 50), policy, seed=0)
    # steps 0-24 run the policy; the window of steps 20-24 sums to 0; three recovery steps follow
    assert len(episode["actions"]) == 28 and "no progress" in episode["end_reason"]
    np.testing.assert_array_equal(episode["interventions"][-3:], [WATCHDOG] * 3)
    assert not episode["interventions"][:-3].any()
    np.testing.assert_allclose(episode["actions"][-3:], 0.0)  # the 'stop' recovery
    np.testing.assert_allclose(episode["actions"][:-3], 1.0)
    progressing = rollout_episode(Steps([1.0] * 50, [0.0] * 50), policy, seed=0)
    assert len(progressing["actions"]) == 50


def test_a_fitted_shield_learns_which_actions_cost_and_which_the_data_supports(tmp_path):
    """Bandit-like data: one-step episodes, actions ~ N(0, 0.25) clipped to [-1, 1], cost 1 iff a_0 > 0.3."""
    rng = np.random.default_rng(0)
    spec = StoreSpec(ArraySpec((OBS,), "float32"), ArraySpec((ACT,), "float32", [-1.0, -1.0], [1.0, 1.0]))
    store = EpisodeStore(tmp_path / "s", create=True, spec=spec)
    episodes = []
    for i in range(3000):
        a = np.clip(rng.normal(0, 0.25, size=(1, ACT)), -1, 1)
        episodes.append(Episode(rng.normal(size=(2, OBS)), a, [0.0], [True], [False], costs=[float(a[0, 0] > 0.3)],
                                episode_id=f"e{i}"))
    store.write(episodes)
    config = fit_shield(store.path, tmp_path / "shield", budget=0.5, steps=1500, hidden=(32, 32), quantile=0.98)
    assert config.support.threshold is not None and config.provenance["transitions"] == 3000
    shield = Shield.load(tmp_path / "shield")
    obs = rng.normal(size=(200, OBS))
    q_safe = shield.cost_value(obs, np.tile([-0.2, 0.0], (200, 1)))
    q_costly = shield.cost_value(obs, np.tile([0.6, 0.0], (200, 1)))
    assert np.median(q_safe) < 0.2 and np.median(q_costly) > 0.8
    assert shield.filter(obs[0], [-0.1, 0.1])[1] == 0
    assert shield.filter(obs[0], [0.6, 0.0])[1] & COST
    assert shield.filter(obs[0], [-0.95, 0.95])[1] & SUPPORT  # never seen in the data
    refused = np.mean([shield.filter(o, a)[1] & SUPPORT != 0 for o, a in zip(
        obs, np.clip(rng.normal(0, 0.25, size=(200, ACT)), -1, 1), strict=True)])
    assert refused < 0.08  # about 1 - quantile of the data's own actions


@pytest.mark.parametrize("damage", ["no config", "bad json", "wrong format", "bad field", "no weights",
                                    "bad weights", "nan weights", "wrong shape"])
def test_a_damaged_shield_directory_is_refused_with_the_file_named(tmp_path, damage):
    shield = hand_shield()
    directory = tmp_path / "shield"
    directory.mkdir()
    shield.config.save(directory)
    arrays = unfitted_models(OBS, ACT)
    np.savez(directory / "weights.npz", **arrays)
    Shield.load(directory)  # intact, it loads
    config = json.loads((directory / "shield.json").read_text())
    if damage == "no config":
        (directory / "shield.json").unlink()
    elif damage == "bad json":
        (directory / "shield.json").write_text("{not json")
    elif damage == "wrong format":
        (directory / "shield.json").write_text(json.dumps({**config, "format": "other"}))
    elif damage == "bad field":
        (directory / "shield.json").write_text(json.dumps({**config, "cost": {**config["cost"], "budget": -1}}))
    elif damage == "no weights":
        (directory / "weights.npz").unlink()
    elif damage == "bad weights":
        (directory / "weights.npz").write_bytes(b"PK\x03\x04 truncated")
    elif damage == "nan weights":
        np.savez(directory / "weights.npz", **{**arrays, "cost_critic.w0": np.full((OBS + ACT, 1), np.nan)})
    else:
        np.savez(directory / "weights.npz", **{**arrays, "behavior.w0": np.zeros((OBS + 1, 2 * ACT))})
    with pytest.raises(ShieldError) as raised:
        Shield.load(directory)
    assert str(directory) in str(raised.value)
    expected = {"no config": "shield.json", "bad json": "shield.json", "wrong format": "format",
                "bad field": "cost.budget", "no weights": "weights.npz", "bad weights": "weights.npz",
                "nan weights": "cost critic", "wrong shape": "behaviour model"}[damage]
    assert expected in str(raised.value)


@pytest.mark.parametrize("env_id,message", [
    ("armfarm/DotPoint-v0", r"\(16, 16, 1\) uint8 images; the shield learns from state vectors only"),
    ("armfarm/QuadrantDot-v0", r"discrete actions \(4 choices\); the shield guards continuous \(Box\) actions only"),
])
def test_a_shield_is_refused_for_images_or_discrete_actions_before_it_fits(tmp_path, env_id, message):
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.farm.config import init

    collect(env_id, tmp_path / "store", BehaviorSpec("random"), episodes=4, workers=1)
    with pytest.raises(ValueError, match=message):
        fit_shield(tmp_path / "store", tmp_path / "shield", steps=10)
    assert not (tmp_path / "shield").exists()
    algo = "dqn" if "Quadrant" in env_id else "td3bc"
    with pytest.raises(ValueError, match=f"shield=true is not allowed: {env_id} has {message}"):
        init(tmp_path / "farm", env_id, algo=algo, overrides={"shield": "true"})
