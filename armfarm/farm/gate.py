"""The promotion gate: promote a candidate only when it beats the live policy on the same seeds.

Both policies are rolled out on the same evaluation seeds (which no robot collects on), so the returns
pair up episode by episode and the start-state luck cancels out of their difference. The candidate is
promoted when the lower end of a two-sided ``confidence`` Student-t interval on the mean paired
difference exceeds the promotion margin, and its mean evaluated episode cost is within the farm's
``cost_budget``; a promotion therefore never lowers the live policy's measured mean return on those
seeds, and never puts a policy above the cost budget live.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def interval(values: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)``: the sample mean, its std (ddof 0), and a Student-t interval on the mean."""
    values = np.asarray(values, np.float64)
    mean, n = float(values.mean()), len(values)
    if n < 2:
        return mean, 0.0, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, float(values.std()), mean - half, mean + half


def summary(returns: list[float], confidence: float) -> dict:
    mean, std, low, high = interval(np.asarray(returns), confidence)
    return {"return_mean": mean, "return_std": std, "ci_low": low, "ci_high": high, "episodes": len(returns),
            "returns": [float(r) for r in returns]}


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    difference: dict


def decide(candidate: list[float], live: list[float], live_name: str, margin: float, confidence: float,
           candidate_cost: float = 0.0, cost_budget: float = float("inf")) -> Decision:
    """Gate a candidate against the live policy (or the default behaviour) on paired returns; a candidate
    whose mean evaluated episode cost is above ``cost_budget`` is refused however good its return."""
    if len(candidate) != len(live) or not candidate:
        raise ValueError(f"the candidate and {live_name} need the same evaluation episodes, "
                         f"got {len(candidate)} and {len(live)}")
    diff = np.asarray(candidate, np.float64) - np.asarray(live, np.float64)
    mean, _, low, high = interval(diff, confidence)
    if not np.all(np.isfinite(diff)):
        return Decision(False, "not promoted: an evaluation return is not finite", {})
    block = {"mean": mean, "ci_low": low, "ci_high": high, "confidence": confidence, "margin": margin}
    text = (f"candidate {np.mean(candidate):.2f} vs {live_name} {np.mean(live):.2f} on the same {len(diff)} seeds; "
            f"paired difference {mean:+.2f}, {confidence:.0%} interval [{low:+.2f}, {high:+.2f}]")
    if low > margin and candidate_cost > cost_budget:
        return Decision(False, f"not promoted: unsafe, its evaluated cost {candidate_cost:.3g} per episode is above "
                        f"the budget {cost_budget:g} (although {text} clears the margin {margin:g})",
                        {**block, "cost": candidate_cost, "cost_budget": cost_budget})
    if low > margin:
        return Decision(True, f"promoted: {text} clears the margin {margin:g}", block)
    if candidate_cost > cost_budget:
        return Decision(False, f"not promoted: {text} does not clear the margin {margin:g}, and its evaluated cost "
                        f"{candidate_cost:.3g} is above the budget {cost_budget:g}",
                        {**block, "cost": candidate_cost, "cost_budget": cost_budget})
    return Decision(False, f"not promoted: {text} does not clear the margin {margin:g}", block)
