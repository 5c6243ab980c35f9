"""Sweeps: grid x seeds as ordinary runs, results with a best configuration and curves, resumption that
reruns nothing finished, and the same numbers as Ray tasks on a real two-node cluster."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.policy import NumpyPolicy
from armfarm.sweep import parse_grid, parse_seeds, run_sweep
from armfarm.train import train

GRID = {"lr": ["1e-3", "1e-4"]}
SMALL = {"hidden": "32,32", "batch_size": "64"}


def weights(run):
    return [w.tobytes() for w in NumpyPolicy.load(run / "policy.npz").weights]


def test_seeds_and_grids_parse_and_bad_ones_are_refused():
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert parse_grid(["lr=1e-3,1e-4", "hidden=64,64|256,256"]) == {"lr": ["1e-3", "1e-4"],
                                                                     "hidden": ["64,64", "256,256"]}
    for bad in ("", "3-1", "0,0", "a"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)
    for bad in (["lr"], ["lr="], ["lr=1,1"], ["lr=1", "lr=2"]):
        with pytest.raises(ValueError, match="grid"):
            parse_grid(bad)


def test_a_sweep_trains_each_trial_as_train_would_ranks_configs_and_resumes(tmp_path, hopper_store):
    out = tmp_path / "sweep"
    results = run_sweep("bc", hopper_store, out, [0, 1], GRID, steps=40, env_id="Hopper-v5", eval_episodes=2,
                        eval_every=20, settings=SMALL)
    assert results["finished"] == results["trials"] == 4 and results["ran"]["trials"] == 4
    configs = results["configs"]
    means = {name: c["return_mean"] for name, c in configs.items()}
    assert results["best"] == max(means, key=means.get) and len(means) == 2
    for c in configs.values():
        assert len(c["returns"]) == 2 and c["return_ci95"][0] <= c["return_mean"] <= c["return_ci95"][1]
    assert (out / "curves.png").stat().st_size > 0 and "**(best)**" in (out / "results.md").read_text()
    # a trial is `armfarm train` with that seed and those settings, bit for bit
    overrides = {"lr": "1e-4", **SMALL}
    alone = train("bc", hopper_store, tmp_path / "alone", steps=40, seed=1, env_id="Hopper-v5", eval_episodes=2,
                  eval_every=20, config_overrides=overrides)
    trial = out / "trials" / "lr=1e-4" / "seed_1"
    assert weights(trial) == weights(tmp_path / "alone")
    assert json.loads((trial / "summary.json").read_text())["eval"] == alone["eval"]
    # resuming reruns only what is unfinished
    (trial / "summary.json").unlink()
    before = (out / "trials" / "lr=1e-3" / "seed_0" / "policy.npz").stat().st_mtime_ns
    again = run_sweep("bc", hopper_store, out, [0, 1], GRID, steps=40, env_id="Hopper-v5", eval_episodes=2,
                      eval_every=20, settings=SMALL)
    assert again["ran"]["trials"] == 1 and again["ran"]["skipped"] == 3
    assert (out / "trials" / "lr=1e-3" / "seed_0" / "policy.npz").stat().st_mtime_ns == before
    assert weights(trial) == weights(tmp_path / "alone") and again["configs"] == results["configs"]
    with pytest.raises(ValueError, match="another sweep.*steps"):
        run_sweep("bc", hopper_store, out, [0, 1], GRID, steps=50, settings=SMALL)
    with pytest.raises(ValueError, match="no setting 'actor_lr'"):
        run_sweep("bc", hopper_store, tmp_path / "bad", [0], {"actor_lr": ["1e-3"]}, steps=10)
    with pytest.raises(ValueError, match="lr: set both"):
        run_sweep("bc", hopper_store, tmp_path / "bad", [0], GRID, steps=10, settings={"lr": "1e-2"})


@pytest.mark.slow
def test_a_sweep_on_a_two_node_ray_cluster_gives_the_same_numbers(tmp_path, hopper_store, ray_address):
    here = run_sweep("bc", hopper_store, tmp_path / "here", [0, 1], GRID, steps=40, env_id="Hopper-v5",
                     eval_episodes=2, settings=SMALL)
    there = run_sweep("bc", hopper_store, tmp_path / "ray", [0, 1], GRID, steps=40, env_id="Hopper-v5",
                      eval_episodes=2, settings=SMALL, ray_address=ray_address)
    assert there["ran"]["ray"] == ray_address and there["ran"]["trials"] == 4
    for name, c in here["configs"].items():
        assert there["configs"][name]["returns"] == c["returns"]
        for seed in (0, 1):
            assert weights(tmp_path / "here" / "trials" / name / f"seed_{seed}") == \
                weights(tmp_path / "ray" / "trials" / name / f"seed_{seed}")
    assert there["best"] == here["best"]


def test_the_cli_sweeps_and_reports_errors(tmp_path, hopper_store):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["sweep", "bc", str(hopper_store), "--out", str(out), "--seeds", "0-1",
                                      "--grid", "lr=1e-3,1e-4", "--set", "hidden=32,32", "--steps", "20",
                                      "--env", "Hopper-v5", "--eval-episodes", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["finished"] == 4 and payload["best"] in payload["configs"]
    bad = CliRunner().invoke(app, ["sweep", "bc", str(hopper_store), "--out", str(tmp_path / "x"), "--grid", "lr"])
    assert bad.exit_code == 2 and "KEY=V1,V2" in bad.output


@pytest.mark.slow
def test_a_sweep_whose_ray_head_dies_fails_and_resumes_without_losing_trials(tmp_path, hopper_store):
    """The head's death ends the driver (here, `armfarm sweep` in its own process); rerunning the same
    sweep, without Ray, keeps every finished trial and ends with the numbers of an uninterrupted sweep."""
    import subprocess
    import sys
    import time

    import ray
    from raylib import local_cluster

    ray.shutdown()  # a cluster of its own, whose head this test kills
    out, grid = tmp_path / "sweep", {"lr": ["1e-3", "3e-4", "1e-4"]}
    args = ["bc", str(hopper_store), "--out", str(out), "--seeds", "0-1", "--grid", "lr=" + ",".join(grid["lr"]),
            *(x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")), "--steps", "600"]
    with local_cluster(nodes=2) as cluster:
        driver = subprocess.Popen([sys.executable, "-m", "armfarm.cli.main", "sweep", *args, "--ray", cluster.address],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None and \
                not list(out.glob("trials/*/seed_*/summary.json")):
            time.sleep(0.2)
        cluster.remove_node(cluster.head_node, allow_graceful=False)
        try:
            driver.wait(timeout=180)
        except subprocess.TimeoutExpired:
            driver.kill()  # a driver that waits forever on a dead head is stopped by its user
            driver.wait()
    finished_before = len(list(out.glob("trials/*/seed_*/summary.json")))
    assert 1 <= finished_before and (driver.returncode != 0 or finished_before == 6)
    resumed = run_sweep("bc", hopper_store, out, [0, 1], grid, steps=600, settings=SMALL)
    assert resumed["finished"] == 6 and resumed["ran"]["trials"] == 6 - finished_before
    reference = run_sweep("bc", hopper_store, tmp_path / "reference", [0, 1], grid, steps=600, settings=SMALL)
    for name in reference["configs"]:
        for seed in (0, 1):
            assert weights(out / "trials" / name / f"seed_{seed}") == \
                weights(tmp_path / "reference" / "trials" / name / f"seed_{seed}")
