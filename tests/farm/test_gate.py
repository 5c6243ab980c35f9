"""The promotion gate on paired returns: known answers."""

import numpy as np
import pytest

from armfarm.farm.gate import decide, interval


def test_a_consistently_better_candidate_is_promoted():
    rng = np.random.default_rng(0)
    live = rng.normal(100, 30, 20)  # start-state luck, shared by both on the same seeds
    decision = decide(list(live + 5 + rng.normal(0, 1, 20)), list(live), "live v1", margin=0.0, confidence=0.9)
    assert decision.promoted and decision.difference["ci_low"] > 0
    assert decision.reason.startswith("promoted")


def test_an_equal_or_noisy_candidate_is_not_promoted():
    rng = np.random.default_rng(1)
    live = rng.normal(100, 30, 20)
    assert not decide(list(live), list(live), "live", 0.0, 0.9).promoted  # identical: difference 0
    noisy = live + rng.normal(0.5, 20, 20)  # slightly better on average, far within the noise
    assert not decide(list(noisy), list(live), "live", 0.0, 0.9).promoted


def test_the_margin_is_respected():
    live = [10.0, 20.0, 30.0, 40.0]
    better = [x + 3.0 for x in live]
    assert decide(better, live, "live", margin=2.0, confidence=0.9).promoted
    assert not decide(better, live, "live", margin=3.0, confidence=0.9).promoted


def test_interval_matches_student_t():
    mean, std, low, high = interval(np.array([1.0, 2.0, 3.0, 4.0]), 0.95)
    assert mean == 2.5 and std == pytest.approx(np.std([1, 2, 3, 4]))
    assert high - mean == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="same evaluation episodes"):
        decide([1.0], [1.0, 2.0], "live", 0.0, 0.9)


def test_a_better_but_unsafe_candidate_is_refused_with_that_reason():
    live = [10.0, 20.0, 30.0, 40.0]
    better = [x + 5.0 for x in live]
    unsafe = decide(better, live, "live v1", 0.0, 0.9, candidate_cost=12.0, cost_budget=10.0)
    assert not unsafe.promoted and unsafe.reason.startswith("not promoted: unsafe")
    assert "12" in unsafe.reason and "budget 10" in unsafe.reason and unsafe.difference["cost"] == 12.0
    within = decide(better, live, "live v1", 0.0, 0.9, candidate_cost=10.0, cost_budget=10.0)
    assert within.promoted  # at the budget is within it
    assert decide(better, live, "live v1", 0.0, 0.9, candidate_cost=1e6).promoted  # no budget: cost is not gated
    worse = decide(live, better, "live v1", 0.0, 0.9, candidate_cost=12.0, cost_budget=10.0)
    assert not worse.promoted and "above the budget" in worse.reason
