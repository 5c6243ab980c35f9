"""The learner loop: run directory contents, exact resume, clear config errors."""

import csv
import json

import numpy as np
import pytest

from armfarm.policy import NumpyPolicy
from armfarm.train import train

SMALL = {"hidden": "64,64"}


def test_run_directory_holds_config_metrics_logs_checkpoints_and_summary(tmp_path, hopper_store):
    run = tmp_path / "run"
    summary = train("bc", hopper_store, run, steps=120, steps_per_call=40, config_overrides=SMALL,
                    env_id="Hopper-v5", eval_episodes=2)
    for name in ("config.json", "metrics.csv", "eval.csv", "policy.npz", "summary.json"):
        assert (run / name).exists(), name
    assert any((run / "tb").iterdir())
    assert max(int(p.name.split("_")[1]) for p in (run / "checkpoints").iterdir()) == 120
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [40, 80, 120]
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["algo"] == "bc" and summary["steps"] == 120 and summary["grad_steps_per_s"] > 0
    assert summary["eval"]["normalized"] is not None  # hopper has a D4RL reference
    assert json.loads((run / "config.json").read_text())["config"]["hidden"] == [64, 64]


@pytest.mark.parametrize("algo", ["td3bc", "iql"])
def test_resumed_run_matches_uninterrupted_run_exactly(tmp_path, hopper_store, algo):
    straight = tmp_path / "straight"
    train(algo, hopper_store, straight, steps=80, steps_per_call=20, config_overrides=SMALL)
    interrupted = tmp_path / "interrupted"
    train(algo, hopper_store, interrupted, steps=40, steps_per_call=20, config_overrides=SMALL)
    train(algo, hopper_store, interrupted, steps=80, steps_per_call=20, config_overrides=SMALL, resume=True)
    a, b = NumpyPolicy.load(straight / "policy.npz"), NumpyPolicy.load(interrupted / "policy.npz")
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_unknown_config_field_lists_valid_fields(tmp_path, hopper_store):
    with pytest.raises(ValueError, match="no setting 'learning_rat'.*batch_size"):
        train("bc", hopper_store, tmp_path / "r", steps=10, config_overrides={"learning_rat": "1"})


def test_refuses_to_overwrite_a_directory_that_is_not_a_run(tmp_path, hopper_store):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError):
        train("bc", hopper_store, tmp_path / "precious", steps=10)
    assert (tmp_path / "precious" / "thesis.tex").exists()


def test_a_run_is_replaced_only_when_asked(tmp_path, hopper_store):
    run = tmp_path / "run"
    first = train("bc", hopper_store, run, steps=20, steps_per_call=10, config_overrides=SMALL)
    with pytest.raises(FileExistsError, match="already holds a run.*--resume.*--overwrite"):
        train("bc", hopper_store, run, steps=10, config_overrides=SMALL)
    assert json.loads((run / "summary.json").read_text()) == first  # untouched
    second = train("bc", hopper_store, run, steps=10, config_overrides=SMALL, overwrite=True)
    assert json.loads((run / "summary.json").read_text()) == second and second["steps"] == 10


def test_resume_skips_a_checkpoint_cut_short_by_a_crash(tmp_path, hopper_store):
    kwargs = dict(steps_per_call=20, checkpoint_every=20, config_overrides=SMALL)
    train("td3bc", hopper_store, tmp_path / "straight", steps=80, **kwargs)
    run = tmp_path / "crashed"
    train("td3bc", hopper_store, run, steps=40, **kwargs)
    (run / "checkpoints" / "step_40" / "meta.json").unlink()  # killed before the save finished
    summary = train("td3bc", hopper_store, run, steps=80, resume=True, **kwargs)
    assert summary["steps"] == 80
    a, b = NumpyPolicy.load(tmp_path / "straight" / "policy.npz"), NumpyPolicy.load(run / "policy.npz")
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    with (run / "metrics.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [20, 40, 60, 80]
