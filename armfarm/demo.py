"""``armfarm demo``: offline RL beating both its data and behaviour cloning, end to end.

1. Collect a deliberately mixed dataset in PointMaze (Gymnasium-Robotics, dense reward): each
   episode runs D4RL's maze2d waypoint controller with N(0, 0.5) action noise, but only half the
   episodes head for the real goal; the other half head for a decoy point. The goal is in the
   observation, so the data holds both purposeful and misleading actions for the same states.
2. Train behaviour cloning, which imitates the average action and so is dragged towards decoys.
3. Train IQL, which weights actions by their advantage and so keeps the purposeful ones.
4. Evaluate both by rollouts and compare them with the data's own return.

Everything is generated locally; no network and no files beyond the install are needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from armfarm.collect import collect
from armfarm.data import EpisodeStore, TransitionDataset
from armfarm.envs.behavior import BehaviorSpec
from armfarm.evaluate.plots import plot_demo, read_eval_curve
from armfarm.train import train


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults finish in about four minutes on a 2-core CPU.

    BC and the offline algorithm get the same number of gradient steps, so neither is undertrained
    relative to the other.
    """

    env_id: str = "PointMaze_UMazeDense-v3"
    episodes: int = 200
    workers: int = 2
    noise: float = 0.5
    good_fraction: float = 0.5
    offline_algo: str = "iql"
    bc_steps: int = 30_000
    offline_steps: int = 30_000
    eval_episodes: int = 20
    seed: int = 0


def run_demo(
    out_dir: str | Path, config: DemoConfig = DemoConfig(), log: Callable[[str], None] = print,
    on_train_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Run the demo into ``out_dir``; returns (and writes) ``summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "store"
    started = time.perf_counter()

    if not (store_path / "store.json").exists() or EpisodeStore(store_path).num_episodes < config.episodes:
        log(f"collecting {config.episodes} episodes of a mixed behaviour policy in {config.env_id} ...")
        spec = BehaviorSpec(policy="maze-mixed", noise=config.noise, good_fraction=config.good_fraction)
        collect(config.env_id, store_path, spec, config.episodes, workers=config.workers, seed=config.seed,
                collector_id="demo")
    dataset = TransitionDataset.from_store(store_path)
    returns = dataset.episode_returns
    results = {"behavior": {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns))}}
    log(f"dataset: {len(returns)} episodes, {dataset.size} transitions, "
        f"return {results['behavior']['return_mean']:.1f} ± {results['behavior']['return_std']:.1f}")

    curves = {}
    for algo, steps in (("bc", config.bc_steps), (config.offline_algo, config.offline_steps)):
        log(f"training {algo} for {steps} gradient steps ...")
        summary = train(
            algo, store_path, out / f"run_{algo}", steps=steps, seed=config.seed, env_id=config.env_id,
            eval_episodes=config.eval_episodes, dataset=dataset, overwrite=True,
            on_progress=(lambda s, _m, a=algo, n=steps: on_train_progress(a, s, n)) if on_train_progress else None,
        )
        results[algo] = {"return_mean": summary["eval"]["return_mean"], "return_std": summary["eval"]["return_std"],
                         "grad_steps_per_s": summary["grad_steps_per_s"]}
        curve = read_eval_curve(out / f"run_{algo}")
        curves[algo] = (curve["steps"], curve["mean"])

    plot_demo(results, curves, out / "demo.png", title=f"{config.env_id}: offline RL vs its data and BC")
    summary = {**results, "env_id": config.env_id, "offline_algo": config.offline_algo,
               "dataset": {"episodes": int(len(returns)), "transitions": int(dataset.size)},
               "seconds": round(time.perf_counter() - started, 1), "plot": str(out / "demo.png")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

