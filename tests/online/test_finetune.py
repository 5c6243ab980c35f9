"""Offline -> online fine-tuning: a poor offline policy improves with interaction, the run resumes
bit-for-bit, and its episodes go into a store."""

import json

import numpy as np
import pytest
from reach_env import ReachEnv
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.data import Episode, EpisodeStore, StoreSpec
from armfarm.online import finetune
from armfarm.policy import NumpyPolicy
from armfarm.train import train

TINY = {"hidden": (32, 32), "batch_size": 128}


def random_store(path, episodes=40, seed=0):
    env = ReachEnv()
    rng = np.random.default_rng(seed)
    store = EpisodeStore(path, create=True, spec=StoreSpec.from_gymnasium(env.observation_space, env.action_space))
    batch = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards = [obs], [], []
        for _ in range(25):
            a = rng.uniform(-1, 1, 1).astype(np.float32)
            obs, r, _, _, _ = env.step(a)
            observations.append(obs)
            actions.append(a)
            rewards.append(r)
        batch.append(Episode(np.stack(observations), np.stack(actions), np.asarray(rewards, np.float32),
                             np.zeros(25, bool), np.eye(25, dtype=bool)[-1], env_id="ArmfarmTestReach-v0"))
    store.write(batch)
    return path


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    store = random_store(root / "store")
    train("calql", store, root / "calql", steps=300, steps_per_call=100, config_overrides=TINY)
    return root


@pytest.mark.slow
def test_a_poor_offline_policy_improves_online_and_its_episodes_reach_the_store(offline_run, tmp_path):
    summary = finetune(offline_run / "calql", "ArmfarmTestReach-v0", tmp_path / "ft", steps=4000, mix=0.5,
                       store_out=tmp_path / "online_store", eval_every=4000, eval_episodes=20)
    assert summary["algo"] == "calql" and summary["return_before"] is not None
    assert summary["return_after"] > summary["return_before"] + 5, summary
    assert summary["regret"] is None  # no D4RL reference score for this task
    online = EpisodeStore(tmp_path / "online_store")
    assert online.num_episodes == summary["episodes"] == 160
    assert all(r.policy_id.startswith("calql@") for r in online.records())
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["mix"] == 0.5 and config["init_from"].endswith("step_300")


def test_finetuning_resumes_bit_for_bit_and_writes_no_episode_twice(offline_run, tmp_path):
    kwargs = dict(mix=0.5, updates_per_call=25, eval_every=400, eval_episodes=1, buffer_size=400,
                  store_out=tmp_path / "s1")
    finetune(offline_run / "calql", "ArmfarmTestReach-v0", tmp_path / "whole", steps=400, **kwargs)
    kwargs["store_out"] = tmp_path / "s2"
    finetune(offline_run / "calql", "ArmfarmTestReach-v0", tmp_path / "halves", steps=200, checkpoint_every=200,
             **kwargs)
    summary = finetune(offline_run / "calql", "ArmfarmTestReach-v0", tmp_path / "halves", steps=400, resume=True,
                       **kwargs)
    assert summary["resumed_exact"]
    a, b = (NumpyPolicy.load(tmp_path / n / "policy.npz") for n in ("whole", "halves"))
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    ids = [sorted(r.episode_id.split("-s0-")[1] for r in EpisodeStore(tmp_path / s).records()) for s in ("s1", "s2")]
    assert ids[0] == ids[1] and len(ids[0]) == 16  # 400 steps of 25-step episodes, each once


def test_algorithms_without_an_online_phase_are_refused_by_name(offline_run, tmp_path):
    train("td3bc", offline_run / "store", tmp_path / "td3bc", steps=100, config_overrides=TINY)
    with pytest.raises(ValueError, match="td3bc has no online phase; these algorithms fine-tune: .*calql"):
        finetune(tmp_path / "td3bc", "ArmfarmTestReach-v0", tmp_path / "ft", steps=10)
    result = CliRunner().invoke(app, ["finetune", str(offline_run / "calql"), "--env", "ArmfarmTestReach-v0",
                                      "--out", str(tmp_path / "cli"), "--steps", "100", "--mix", "1.5"])
    assert result.exit_code != 0


def test_ope_ranks_runs_from_the_store_and_reports_dopes_metrics_as_json(offline_run, tmp_path):
    train("bc", offline_run / "store", tmp_path / "bc", steps=200, config_overrides=TINY)
    result = CliRunner().invoke(app, ["ope", str(offline_run / "store"), str(offline_run / "calql"), str(tmp_path / "bc"),
                                      "--env", "ArmfarmTestReach-v0", "--steps", "300", "--eval-episodes", "3",
                                      "--set", "hidden=[32,32]", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [p["run_dir"] for p in report["policies"]] == [str(offline_run / "calql"), str(tmp_path / "bc")]
    assert all(np.isfinite(p["estimate"]) and np.isfinite(p["true_return"]) for p in report["policies"])
    assert abs(abs(report["spearman"]) - 1.0) < 1e-9 and 0.0 <= report["regret_at_1"] <= 1.0  # two policies
    unknown = CliRunner().invoke(app, ["ope", str(offline_run / "store"), str(tmp_path / "nothing")])
    assert unknown.exit_code != 0
