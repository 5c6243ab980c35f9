"""Resuming online SAC after a crash: the replay buffer, RNGs and the running episode come back, so a
resumed run on a deterministic environment is bit-for-bit the uninterrupted one."""

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
from reach_env import ReachEnv
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.online import train_online
from armfarm.policy import NumpyPolicy

KW = dict(steps=400, start_steps=100, updates_per_call=20, eval_every=200, eval_episodes=2,
          checkpoint_every=120, config_overrides={"hidden": (16,), "batch_size": 32})


class Crash(RuntimeError):
    pass


def crash_at(step_limit):
    def on_progress(step, metrics):
        if step >= step_limit:
            raise Crash(step)

    return on_progress


def same_run(a, b):
    pa, pb = (NumpyPolicy.load(d / "policy.npz") for d in (a, b))
    ra, rb = (np.load(d / "replay.npz") for d in (a, b))
    weights = all(np.array_equal(x, y) for x, y in zip(pa.weights + pa.biases, pb.weights + pb.biases, strict=True))
    replay = ra.files == rb.files and all(np.array_equal(ra[k], rb[k]) for k in ra.files)
    return weights and replay


def steps_logged(run, name):
    with (run / name).open() as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_resumed_run_matches_the_uninterrupted_one(tmp_path):
    full = tmp_path / "full"
    train_online("sac", "ArmfarmTestReach-v0", full, seed=5, **KW)
    run = tmp_path / "crashed"
    with pytest.raises(Crash):  # dies at step 260, 20 steps after the checkpoint at 240 (mid-episode)
        train_online("sac", "ArmfarmTestReach-v0", run, seed=5, on_progress=crash_at(260), **KW)
    assert not (run / "summary.json").exists()
    assert [p.name for p in sorted((run / "checkpoints").glob("step_*/replay.npz"))] == ["replay.npz"]
    summary = train_online("sac", "ArmfarmTestReach-v0", run, seed=5, resume=True, **KW)
    assert summary["resumed_from"].endswith("step_240") and summary["resumed_exact"] is True
    assert summary["env_steps"] == 400 and summary["grad_steps"] == 300
    assert same_run(full, run)
    logged = steps_logged(run, "metrics.csv")
    assert logged == sorted(set(logged)) and logged == steps_logged(full, "metrics.csv")
    assert steps_logged(run, "eval.csv") == [200, 400]


def test_resume_extends_a_finished_run(tmp_path):
    kw = {**KW, "eval_every": 100}
    train_online("sac", "ArmfarmTestReach-v0", tmp_path / "full", seed=1, **{**kw, "steps": 500})
    train_online("sac", "ArmfarmTestReach-v0", tmp_path / "ext", seed=1, **{**kw, "buffer_size": 500})
    summary = train_online("sac", "ArmfarmTestReach-v0", tmp_path / "ext", seed=1, resume=True, **{**kw, "steps": 500})
    assert summary["env_steps"] == 500 and summary["resumed_from"].endswith("step_400")
    assert same_run(tmp_path / "full", tmp_path / "ext")


class JitteryReachEnv(ReachEnv):
    """ReachEnv whose dynamics draw noise from outside ``np_random``: it cannot be replayed."""

    noise = np.random.default_rng()

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.x += float(self.noise.normal(0, 1e-3))
        return self._obs(), reward, terminated, truncated, info


gym.register("ArmfarmTestJitteryReach-v0", entry_point=JitteryReachEnv)


def test_resume_on_an_environment_that_cannot_be_replayed_ends_the_episode(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Crash):
        train_online("sac", "ArmfarmTestJitteryReach-v0", run, on_progress=crash_at(260), **KW)
    with pytest.warns(UserWarning, match="could not be replayed"):
        summary = train_online("sac", "ArmfarmTestJitteryReach-v0", run, resume=True, **KW)
    assert summary["resumed_exact"] is False and summary["env_steps"] == 400
    replay = np.load(run / "replay.npz")
    # ReachEnv episodes are 25 steps; the one running at step 240 was cut after 15 and marked truncated
    ends = np.flatnonzero(replay["truncated"] | replay["terminated"]) + 1
    assert 240 in ends and 250 not in ends and 265 in ends


def test_resume_refuses_a_different_config_or_environment(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Crash):
        train_online("sac", "ArmfarmTestReach-v0", run, on_progress=crash_at(260), **KW)
    with pytest.raises(ValueError, match="different sac config"):
        train_online("sac", "ArmfarmTestReach-v0", run, resume=True,
                     **{**KW, "config_overrides": {"hidden": (32,), "batch_size": 32}})
    with pytest.raises(ValueError, match="not sac in ArmfarmTestJitteryReach-v0"):
        train_online("sac", "ArmfarmTestJitteryReach-v0", run, resume=True, **KW)


@pytest.mark.slow
def test_mujoco_hopper_resumes_exactly(tmp_path):
    kw = dict(steps=600, start_steps=200, updates_per_call=50, eval_every=600, eval_episodes=1,
              checkpoint_every=250, config_overrides={"hidden": (16,), "batch_size": 32})
    train_online("sac", "Hopper-v5", tmp_path / "full", **kw)
    with pytest.raises(Crash):
        train_online("sac", "Hopper-v5", tmp_path / "run", on_progress=crash_at(550), **kw)
    summary = train_online("sac", "Hopper-v5", tmp_path / "run", resume=True, **kw)
    assert summary["resumed_exact"] is True and summary["resumed_from"].endswith("step_500")
    assert same_run(tmp_path / "full", tmp_path / "run")


def test_cli_train_online_resume(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Crash):
        train_online("sac", "ArmfarmTestReach-v0", run, on_progress=crash_at(260), **KW)
    result = CliRunner().invoke(app, ["train-online", "sac", "ArmfarmTestReach-v0", "--out", str(run), "--steps", "400",
                                      "--start-steps", "100", "--updates-per-call", "20", "--eval-episodes", "2",
                                      "--resume"])
    assert result.exit_code == 0, result.output
    assert "resumed from" in result.output
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 400


def test_a_run_that_reached_its_target_stays_stopped_when_resumed(tmp_path):
    run = tmp_path / "run"
    kw = {**KW, "eval_every": 100, "target_return": -1e9}  # reached at the first evaluation
    first = train_online("sac", "ArmfarmTestReach-v0", run, **kw)
    assert first["reached_target"] and first["env_steps"] == 100
    again = train_online("sac", "ArmfarmTestReach-v0", run, resume=True, **kw)
    assert again["reached_target"] and again["env_steps"] == 100 and again["resumed_from"].endswith("step_100")
