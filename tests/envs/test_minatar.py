"""MinAtar's games as armfarm image tasks (the optional, GPL-3.0 `minatar` extra)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minatar")

from armfarm.envs.minatar import GAMES, env_id  # noqa: E402
from armfarm.envs.registry import make_env  # noqa: E402

CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}
ACTIONS = {"asterix": 5, "breakout": 3, "freeway": 3, "seaquest": 6, "space_invaders": 4}


@pytest.mark.parametrize("game", GAMES)
def test_games_are_uint8_images_with_minimal_action_sets_and_seeded_resets(game):
    env = make_env(env_id(game))
    assert env.observation_space.shape == (10, 10, CHANNELS[game]) and env.observation_space.dtype == np.uint8
    assert env.action_space.n == ACTIONS[game]

    def run(seed):
        obs, _ = env.reset(seed=seed)
        frames, total = [obs], 0.0
        for t in range(50):
            obs, reward, term, trunc, _ = env.step(t % ACTIONS[game])
            frames.append(obs)
            total += reward
            if term or trunc:
                break
        return np.stack(frames), total

    a, b = run(3), run(3)
    assert set(np.unique(a[0])) <= {0, 255} and a[0].max() == 255
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    env.close()


def test_unknown_game_names_the_games():
    with pytest.raises(ValueError, match="asterix, breakout"):
        env_id("pong")


def test_breakout_collects_trains_and_evaluates(tmp_path):
    from armfarm.collect import collect
    from armfarm.data import EpisodeStore
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    eid = env_id("breakout")
    collect(eid, tmp_path / "store", BehaviorSpec("random"), episodes=4)
    spec = EpisodeStore(tmp_path / "store").spec
    assert spec.observation.shape == (10, 10, 4) and spec.action.num_choices == 3
    train("dqn", tmp_path / "store", tmp_path / "run", steps=20, steps_per_call=10,
          config_overrides={"encoder_channels": 4, "hidden": (16,)})
    result = evaluate_policy(NumpyPolicy.load(tmp_path / "run" / "policy.npz"), eid, episodes=2)
    assert result.episodes == 2 and all(length >= 1 for length in result.lengths)
