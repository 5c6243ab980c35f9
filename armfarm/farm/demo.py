"""``armfarm demo``: a short farm that shows the whole loop, on 2 cores, in a few minutes, offline.

Three simulated robots in Gymnasium-Robotics' PointMaze (U-maze, dense reward) start from a poor
default behaviour: D4RL's maze2d waypoint controller with N(0, 0.5) action noise, where half the
episodes head for a decoy point instead of the goal (the goal is in the observation, so the data mixes
purposeful and misleading actions in the same states). The robots step at 300 Hz, like a real control
loop, and upload everything they record. Each round IQL trains a candidate on the whole store,
warm-started from the live policy; the evaluator rolls it out on 20 seeds no robot collects on and
promotes it only when its paired-seed interval clears the live policy. Robots adopt each promotion at
their next episode, with exploration noise and a fifth of their episodes still on the default
behaviour, so the next round learns from better data.

Why this task: it runs at thousands of steps per second on a CPU, its default behaviour is measurably
poor (about 150 against about 250 for the noise-free controller), and the improvement has a known
cause (advantage-weighted extraction keeps the purposeful actions), so the rounds show real learning
and gated promotion, not noise.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from armfarm.evaluate.plots import plot_rounds
from armfarm.farm.config import CONFIG_FILE, init
from armfarm.farm.state import FarmPaths, live, rounds
from armfarm.farm.status import farm_status
from armfarm.farm.supervisor import run_farm


@dataclass(frozen=True)
class FarmDemoConfig:
    """The demo farm's size; the defaults take about three minutes on a 2-core CPU."""

    env_id: str = "PointMaze_UMazeDense-v3"
    robots: int = 3
    rounds: int = 5
    episodes_per_round: int = 60
    gradient_steps: int = 8000
    eval_episodes: int = 20
    control_hz: float = 300.0
    port: int = 8765
    seed: int = 0

    def settings(self) -> dict[str, str]:
        return {k: str(v) for k, v in {
            "default_behavior": "maze-mixed", "default_noise": 0.5, "default_good_fraction": 0.5, "noise": 0.2,
            "default_fraction": 0.2, "episodes_per_round": self.episodes_per_round,
            "gradient_steps": self.gradient_steps, "checkpoint_every": max(self.gradient_steps // 4, 1),
            "eval_episodes": self.eval_episodes, "control_hz": self.control_hz, "port": self.port,
            "seed": self.seed, "policy_poll_s": 1.0}.items()}


def run_farm_demo(out_dir: str | Path, config: FarmDemoConfig = FarmDemoConfig(),
                  log: Callable[[str], None] = print, on_round: Callable[[dict], None] | None = None) -> dict:
    """Run the demo farm in ``out_dir/farm`` (a previous demo's farm there is replaced) and write
    ``out_dir/summary.json`` and ``out_dir/rounds.png``; returns the summary."""
    out = Path(out_dir)
    farm = out / "farm"
    if farm.exists():
        if not (farm / CONFIG_FILE).is_file():
            raise FileExistsError(f"{farm} exists and is not a farm directory; choose another --out")
        shutil.rmtree(farm)
    out.mkdir(parents=True, exist_ok=True)
    init(farm, config.env_id, robots=config.robots, algo="iql", overrides=config.settings())
    log(f"farm {farm}: {config.robots} robots in {config.env_id} with a poor default behaviour; "
        f"{config.rounds} rounds of IQL ({config.gradient_steps} gradient steps each), gated on "
        f"{config.eval_episodes} evaluation seeds")
    started = time.perf_counter()

    def on_event(kind: str, payload: dict) -> None:
        if kind == "started":
            log(f"dashboard: {payload['url']}/dashboard (sign in with the token in {farm / 'admin.token'})")
        elif kind == "round" and on_round is not None:
            on_round(payload["record"])
        elif kind in ("died", "killed"):
            log(f"{kind}: {payload}")

    report = run_farm(farm, rounds=config.rounds, on_event=on_event)
    paths = FarmPaths(farm)
    status = farm_status(farm)
    decided = [r for r in rounds(paths) if r.get("phase") == "decided"]
    if not decided:
        raise RuntimeError(f"the demo farm stopped before any round was decided ({report.stopped_because})")
    behavior = next(r["baseline"]["eval"] for r in decided if r["baseline"]["name"].startswith("the default"))
    current = live(paths)
    final = (current["eval"] if current is not None else behavior)
    summary = {
        "env_id": config.env_id, "farm": str(farm),
        "behavior": {"return_mean": behavior["return_mean"], "return_std": behavior["return_std"]},
        "final": {"return_mean": final["return_mean"], "return_std": final["return_std"],
                  "policy_version": status["policy_version"]},
        "rounds": [r for r in status["rounds"] if r["phase"] == "decided"],
        "episodes": status["episodes"], "transitions": status["transitions"],
        "seconds": round(time.perf_counter() - started, 1), "plot": str(out / "rounds.png"),
    }
    plot_rounds(summary["rounds"], behavior["return_mean"], out / "rounds.png",
                title=f"armfarm demo: {config.env_id}, return per round")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
