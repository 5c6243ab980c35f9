"""The CLI contract other tools script against: verbs, JSON output and exit codes."""

import json
import shutil

import numpy as np
from typer.testing import CliRunner

from armfarm.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_data_info_json_has_integer_counts_spaces_returns_and_provenance(hopper_store):
    result = invoke("data", "info", hopper_store, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert isinstance(info["episodes"], int) and info["episodes"] == 12
    assert isinstance(info["transitions"], int) and info["transitions"] > 12
    assert "spaces" in info and "returns" in info
    assert info["provenance"]["collection"]["env_id"] == "Hopper-v5"


def test_data_check_exits_nonzero_on_a_damaged_store(tmp_path, hopper_store):
    store = tmp_path / "store"
    shutil.copytree(hopper_store, store)
    assert invoke("data", "check", store).exit_code == 0
    shard = sorted((store / "shards").iterdir())[0]
    shard.write_bytes(shard.read_bytes()[:100])
    result = invoke("data", "check", store, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["ok"] and any(shard.name in p for p in report["problems"])


def test_import_npz_train_and_eval_through_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    np.savez(
        tmp_path / "data.npz", observations=rng.normal(size=(n, 11)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, 3)).astype(np.float32), rewards=rng.normal(size=n).astype(np.float32),
        terminals=np.zeros(n, bool), timeouts=(np.arange(n) % 100 == 99),
    )
    store, run = tmp_path / "store", tmp_path / "run"
    result = invoke("data", "import", "npz", tmp_path / "data.npz", store)
    assert result.exit_code == 0, result.output
    result = invoke("train", "td3bc", store, "--out", run, "--steps", 60, "--steps-per-call", 30,
                    "--set", "hidden=32,32", "--env", "Hopper-v5", "--eval-episodes", 2)
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    assert {"algo", "steps", "seconds", "grad_steps_per_s", "eval"} <= set(summary)
    assert set(summary["eval"]) >= {"return_mean", "return_std", "normalized"}
    result = invoke("eval", run, "--env", "Hopper-v5", "--episodes", 2, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["episodes"] == 2


def test_user_errors_are_one_clear_line_not_a_traceback(tmp_path, hopper_store):
    result = invoke("train", "ppo", hopper_store, "--out", tmp_path / "r", "--steps", 5)
    assert result.exit_code == 2
    assert "bc" in result.output and "iql" in result.output and "Traceback" not in result.output
    result = invoke("train", "dqn", hopper_store, "--out", tmp_path / "r", "--steps", 5)
    assert result.exit_code == 2 and "continuous actions; dqn learns discrete ones" in result.output
    result = invoke("data", "info", tmp_path / "not-a-store")
    assert result.exit_code == 2 and "not-a-store" in result.output
    result = invoke("data", "import", "d4rl", tmp_path / "missing.hdf5", tmp_path / "s")
    assert result.exit_code == 2 and "missing.hdf5" in result.output


def test_pixels_collect_train_and_eval_through_the_cli_beside_random(tmp_path):
    env, store, run = "armfarm/QuadrantDot-v0", tmp_path / "store", tmp_path / "run"
    assert invoke("collect", env, store, "--episodes", 300).exit_code == 0
    result = invoke("train", "discrete_cql", store, "--out", run, "--steps", 40, "--steps-per-call", 20,
                    "--set", "encoder_channels=4", "--set", "hidden=16", "--set", "frame_stack=2")
    assert result.exit_code == 0, result.output
    trained = json.loads(invoke("eval", run, "--env", env, "--episodes", 20, "--json").stdout)
    rand = json.loads(invoke("eval", "random", "--env", env, "--episodes", 200, "--json").stdout)
    assert trained["episodes"] == 20 and set(trained["returns"]) <= {0.0, 1.0}
    assert 0.15 < rand["return_mean"] < 0.35  # one in four
    again = json.loads(invoke("eval", "random", "--env", env, "--episodes", 200, "--json").stdout)
    assert again["returns"] == rand["returns"]  # seeded per episode


def _pipe(*args):
    """Run ``armfarm ARGS`` as a user's shell would, with stdout a pipe."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "armfarm.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_results_go_to_stdout_so_they_pipe(hopper_store):
    info = _pipe("data", "info", hopper_store)
    assert info.returncode == 0 and any("episodes" in line and "12" in line for line in info.stdout.splitlines())
    check = _pipe("data", "check", hopper_store)
    assert check.returncode == 0 and "ok" in check.stdout and "12 episodes" in check.stdout
    recipes = _pipe("datasets", "list")
    assert "hopper-medium" in recipes.stdout
    bad = _pipe("data", "info", hopper_store / "missing")
    assert bad.returncode == 2 and bad.stdout == "" and "error:" in bad.stderr


def test_the_readme_lists_every_registered_algorithm_as_armfarm_algos_prints_them():
    from pathlib import Path

    from typer.testing import CliRunner

    from armfarm.algos import algorithms
    from armfarm.cli.main import app

    table = CliRunner().invoke(app, ["algos", "--markdown"]).stdout
    assert all(f"| `{name}` |" in table for name in algorithms())
    assert table in (Path(__file__).parents[1] / "README.md").read_text(), "README's algorithm table is stale"
    fields = CliRunner().invoke(app, ["algos", "iql"])
    assert fields.exit_code == 0 and "expectile" in fields.stdout
    unknown = CliRunner().invoke(app, ["algos", "ppo"])
    assert unknown.exit_code != 0 and "valid names" in unknown.output


def test_eval_reports_costs_and_the_normalized_cost_on_damage_tasks(tmp_path):
    from armfarm.policy import NumpyPolicy

    rng = np.random.default_rng(0)
    for env_id, obs_dim, act_dim in (("armfarm/ReacherFragile-v0", 10, 2), ("armfarm/HopperVelocity-v0", 11, 3)):
        path = NumpyPolicy([rng.normal(size=(obs_dim, 16)) * 2, rng.normal(size=(16, act_dim)) * 2],
                           [np.zeros(16), np.zeros(act_dim)]).save(tmp_path / f"{obs_dim}.npz")
        result = invoke("eval", path, "--env", env_id, "--episodes", 3, "--json")
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["cost_mean"] == np.mean(out["costs"]) and len(out["costs"]) == 3
        assert {"return_mean", "return_std", "cost_std", "interventions_mean"} <= set(out)
        if env_id.startswith("armfarm/Hopper"):
            assert out["cost_budget"] == 20 and out["normalized_cost"] == out["cost_mean"] / 20
        else:
            assert out["cost_mean"] > 0 and out["normalized_cost"] is None
    again = invoke("eval", path, "--env", "armfarm/HopperVelocity-v0", "--episodes", 1, "--cost-budget", 5)
    assert again.exit_code == 0 and "budget 5" in again.stdout


def test_shield_fit_info_and_eval_behind_the_shield(tmp_path):
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.policy import NumpyPolicy

    collect("armfarm/ReacherFragile-v0", tmp_path / "store", BehaviorSpec("random"), episodes=20)
    result = invoke("shield", "fit", tmp_path / "store", "--out", tmp_path / "shield", "--steps", 200,
                    "--budget", 0.3, "--episode-cost-budget", 5, "--json")
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config["cost"]["budget"] == 0.3 and config["watchdog"]["episode_cost_budget"] == 5
    assert config["provenance"]["episodes"] == 20 and config["provenance"]["cost_per_step"] > 0
    assert invoke("shield", "fit", tmp_path / "store", "--out", tmp_path / "shield", "--steps", 10).exit_code == 2
    info = invoke("shield", "info", tmp_path / "shield")
    assert info.exit_code == 0 and "10 observations -> 2 actions" in info.stdout
    rng = np.random.default_rng(1)
    policy = NumpyPolicy([rng.normal(size=(10, 16)) * 3, rng.normal(size=(16, 2)) * 3], [np.zeros(16), np.zeros(2)])
    policy.save(tmp_path / "wild.npz")
    shielded = invoke("eval", tmp_path / "wild.npz", "--env", "armfarm/ReacherFragile-v0", "--episodes", 3,
                      "--shield", tmp_path / "shield", "--json")
    assert shielded.exit_code == 0, shielded.output
    out = json.loads(shielded.stdout)
    assert out["interventions_mean"] > 0
    assert max(out["costs"]) <= 5 + 1  # the watchdog stops an episode on the step its cost passes 5
    (tmp_path / "shield" / "shield.json").write_text("{")
    broken = invoke("eval", tmp_path / "wild.npz", "--env", "armfarm/ReacherFragile-v0", "--shield", tmp_path / "shield")
    assert broken.exit_code == 2 and "shield.json" in broken.output
