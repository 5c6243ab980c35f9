"""Many seeds on one load of the store: each seed's run directory, the summary over seeds, and what each
mode promises against training the seed alone (sequential: bit-identical; vmap: one compiled call)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.policy import NumpyPolicy
from armfarm.train import bootstrap_ci, train, train_seeds

SMALL = {"hidden": "32,32", "batch_size": 64}


def weights(run):
    return NumpyPolicy.load(run / "policy.npz").weights


@pytest.mark.parametrize("algo", ["td3bc", "iql"])
def test_sequential_seeds_are_bit_identical_to_training_each_seed_alone(tmp_path, hopper_store, algo):
    summary = train_seeds(algo, hopper_store, tmp_path / "many", [0, 3], steps=60, steps_per_call=20,
                          vectorize="sequential", config_overrides=SMALL)
    assert summary["runs"] == [str(tmp_path / "many" / f"seed_{s}") for s in (0, 3)]
    train(algo, hopper_store, tmp_path / "alone", seed=3, steps=60, steps_per_call=20, config_overrides=SMALL)
    for a, b in zip(weights(tmp_path / "many" / "seed_3"), weights(tmp_path / "alone"), strict=True):
        assert a.tobytes() == b.tobytes()
    assert any(a.tobytes() != b.tobytes() for a, b in zip(weights(tmp_path / "many" / "seed_0"),
                                                          weights(tmp_path / "alone"), strict=True))


def test_vmapped_seeds_run_in_one_call_and_match_each_seed_alone_to_float_tolerance(tmp_path, hopper_store):
    summary = train_seeds("bc", hopper_store, tmp_path / "many", [1, 2], steps=40, steps_per_call=20,
                          vectorize="vmap", config_overrides=SMALL, env_id="Hopper-v5", eval_episodes=2)
    for seed in (1, 2):
        run = tmp_path / "many" / f"seed_{seed}"
        for name in ("config.json", "metrics.csv", "policy.npz", "summary.json", "checkpoints/step_40/meta.json"):
            assert (run / name).exists(), name
        train("bc", hopper_store, tmp_path / f"alone{seed}", seed=seed, steps=40, steps_per_call=20,
              config_overrides=SMALL)
        for a, b in zip(weights(run), weights(tmp_path / f"alone{seed}"), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert summary["vectorize"] == "vmap" and len(summary["eval"]["returns"]) == 2
    low, high = summary["eval"]["return_ci95"]
    assert low <= summary["eval"]["return_mean"] <= high
    assert json.loads((tmp_path / "many" / "summary.json").read_text()) == summary


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(10, 2, 3).tolist(), rng.normal(10, 2, 30).tolist()
    lo, hi = bootstrap_ci(few)
    assert lo <= np.mean(few) <= hi
    assert bootstrap_ci(many)[1] - bootstrap_ci(many)[0] < hi - lo


def test_the_cli_trains_seeds_and_refuses_bad_lists(tmp_path, hopper_store):
    result = CliRunner().invoke(app, ["train", "bc", str(hopper_store), "--out", str(tmp_path / "cli"), "--steps", "20",
                                      "--steps-per-call", "20", "--seeds", "0,1", "--set", "hidden=32,32"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "seed_1" / "policy.npz").exists() and "2 seeds" in result.stdout
    bad = CliRunner().invoke(app, ["train", "bc", str(hopper_store), "--out", str(tmp_path / "bad"), "--seeds", "0,x"])
    assert bad.exit_code != 0 and "comma-separated" in bad.output
