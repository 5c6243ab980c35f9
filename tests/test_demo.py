"""The demo end to end on a small budget: every artefact a user is promised appears."""

import json

import pytest

from armfarm.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_small_demo_writes_summary_plot_and_runs(tmp_path):
    config = DemoConfig(episodes=8, workers=2, bc_steps=100, offline_steps=100, eval_episodes=2)
    summary = run_demo(tmp_path, config, log=lambda _msg: None)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    for name in ("behavior", "bc", "iql"):
        assert set(summary[name]) >= {"return_mean", "return_std"}
    assert summary["dataset"]["episodes"] == 8 and summary["dataset"]["transitions"] == 8 * 300
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "run_iql" / "summary.json").exists()


@pytest.mark.slow
def test_offline_rl_beats_the_data_and_bc_on_the_mixed_maze_dataset(tmp_path):
    """The demo's claim, on half its budget: IQL keeps the purposeful actions, BC imitates the mixture."""
    config = DemoConfig(episodes=100, bc_steps=8000, offline_steps=8000, eval_episodes=10, seed=1)
    summary = run_demo(tmp_path, config, log=lambda _msg: None)
    data, bc, iql = (summary[k]["return_mean"] for k in ("behavior", "bc", "iql"))
    assert iql > data + 20, summary
    assert iql > bc + 20, summary
