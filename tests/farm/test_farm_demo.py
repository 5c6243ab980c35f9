"""armfarm demo (the farm) on a smaller budget: its artefacts, and its claim."""

import json

import pytest
from farmlib import free_port

from armfarm.farm.demo import FarmDemoConfig, run_farm_demo


@pytest.mark.slow
def test_the_demo_farm_beats_its_default_behaviour_and_writes_its_summary_and_plot(tmp_path):
    # the demo itself, cut to 2 of its 5 rounds (in every run so far it promoted in round 0 or 1)
    config = FarmDemoConfig(rounds=2, port=free_port())
    printed = []
    summary = run_farm_demo(tmp_path, config, log=printed.append)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "rounds.png").stat().st_size > 10_000
    assert any("/dashboard" in line for line in printed)
    assert set(summary) >= {"behavior", "rounds", "final"}
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    assert any(r["promoted"] for r in summary["rounds"]), [r["reason"] for r in summary["rounds"]]
    live = summary["behavior"]["return_mean"]
    for r in summary["rounds"]:  # a promotion never lowers the live policy's measured return
        if r["promoted"]:
            assert r["candidate"]["eval"]["return_mean"] > live
            live = r["candidate"]["eval"]["return_mean"]
    assert summary["final"]["return_mean"] == pytest.approx(live)
    assert summary["final"]["return_mean"] > summary["behavior"]["return_mean"] + 20, summary
    # a second demo into the same directory replaces the first one's farm
    again = run_farm_demo(tmp_path, FarmDemoConfig(robots=1, rounds=1, episodes_per_round=5, gradient_steps=200,
                                                   eval_episodes=2, port=free_port()), log=lambda _m: None)
    assert [r["round"] for r in again["rounds"]] == [0]
