"""The farm's learner: trains each round's candidate on the whole store, as its own process
(``python -m armfarm.farm.learner FARM_DIR``, started by the supervisor).

A round starts once ``episodes_per_round`` new episodes are stored since the previous round began. Its
record (``rounds/round_NNNN/round.json``) fixes the data first: the first ``episodes_used`` episodes of
the store in commit order, which later uploads never change. The candidate trains on exactly those,
warm-started from the live policy's checkpoint (or from scratch), with checkpoints every
``checkpoint_every`` steps. A learner killed mid-round resumes the round from its last checkpoint on
the same data, so the result is what an uninterrupted round would have given; SIGTERM checkpoints at
once and exits. With ``[shield]`` the robots' shield is then refitted on the whole store. When training
ends the round passes to the evaluator (phase ``trained``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from armfarm.farm.state import (
    DECIDED,
    TRAINED,
    TRAINING,
    FarmPaths,
    live,
    now_iso,
    rounds,
    start_component,
    write_json,
    write_round,
)

log = logging.getLogger("armfarm.farm.learner")
POLL_S = 0.5


def _next_round(paths: FarmPaths, config, store, stop: threading.Event) -> dict | None:
    """The round to work on: one in training (resumed), or a new one once enough new episodes are stored.
    None when asked to stop first."""
    last_written = None
    while not stop.is_set():
        records = rounds(paths)
        if records and records[-1]["phase"] == TRAINING:
            return records[-1]
        if not records or records[-1]["phase"] == DECIDED:
            previous = records[-1]["episodes_used"] if records else 0
            stored = store.num_episodes
            waiting = {"round": len(records), "phase": "waiting for data", "episodes": stored,
                       "needed": previous + config.episodes_per_round}
            if waiting != last_written:  # only when it changes: no needless fsyncs while idle
                write_json(paths.learner, {**waiting, "updated_at": now_iso()})
                last_written = waiting
            if stored >= previous + config.episodes_per_round:
                snapshot = store.snapshot()
                current = live(paths)
                warm = (current or {}).get("checkpoint") if config.warm_start else None
                record = {
                    "round": len(records), "phase": TRAINING, "started_at": now_iso(), "finished_at": None,
                    "episodes_used": len(snapshot), "transitions_used": int(sum(r.length for r in snapshot)),
                    "algo": config.algo, "gradient_steps": config.gradient_steps, "warm_start_from": warm,
                    "live_version_at_start": (current or {}).get("version"),
                    "candidate": {"run_dir": str(paths.run_dir(len(records)))},
                }
                write_round(paths, record)
                return record
        stop.wait(POLL_S)  # waiting for data, or for the evaluator to decide the previous round
    return None


def train_round(paths: FarmPaths, config, store, record: dict, stop: threading.Event) -> dict:
    """Train (or resume) the round's candidate; returns the record in phase ``trained``.
    Raises TrainingStopped when ``stop`` is set first."""
    from armfarm.data import TransitionDataset
    from armfarm.train import train

    records = store.snapshot()[: record["episodes_used"]]
    dataset = TransitionDataset.from_store(store, records=records)
    started, last = time.monotonic(), [0.0]

    def progress(step: int, metrics: dict) -> None:
        if time.monotonic() - last[0] < 1.0 and step < config.gradient_steps:
            return
        last[0] = time.monotonic()
        write_json(paths.learner, {
            "round": record["round"], "phase": "training", "step": step, "total": config.gradient_steps,
            "steps_per_s": round(step / max(time.monotonic() - started, 1e-9), 1),
            "metrics": {k: float(v) for k, v in metrics.items()}, "updated_at": now_iso()})

    kwargs = dict(steps=config.gradient_steps, seed=config.seed + record["round"], steps_per_call=config.steps_per_call,
                  checkpoint_every=config.checkpoint_every, config_overrides=config.algo_config, resume=True,
                  dataset=dataset, on_progress=progress, stop=stop)
    try:
        summary = train(config.algo, store.path, paths.run_dir(record["round"]), init_from=record["warm_start_from"],
                        **kwargs)
    except ValueError as e:
        if record["warm_start_from"] is None or "warm-start" not in str(e):
            raise
        log.warning("round %d: %s; training from scratch", record["round"], e)
        record = {**record, "warm_start_from": None, "warm_start_skipped": str(e)}
        write_round(paths, record)
        summary = train(config.algo, store.path, paths.run_dir(record["round"]), **kwargs)
    if config.shield:  # the robots' shield learns from the same growing store, once per round
        from armfarm.farm.shielding import refit

        shield = refit(paths, config, store.path, record["round"])
        record = {**record, "shield": None if shield is None else str(shield)}
    record = {**record, "phase": TRAINED, "trained_at": now_iso(),
              "candidate": {**record["candidate"], "policy": str(paths.run_dir(record["round"]) / "policy.npz"),
                            "checkpoint": str(paths.run_dir(record["round"]) / "checkpoints" / f"step_{config.gradient_steps}"),
                            "grad_steps_per_s": summary["grad_steps_per_s"]}}
    write_round(paths, record)
    write_json(paths.learner, {"round": record["round"], "phase": "trained", "step": config.gradient_steps,
                               "total": config.gradient_steps, "updated_at": now_iso()})
    return record


def run_learner(farm_dir: str) -> int:
    from armfarm.data import EpisodeStore
    from armfarm.train import TrainingStopped

    paths, config, stop = start_component(farm_dir, "learner")
    store = EpisodeStore(paths.store)
    while not stop.is_set():
        record = _next_round(paths, config, store, stop)
        if record is None:
            break
        log.warning("round %d: training %s on %d episodes", record["round"], config.algo, record["episodes_used"])
        try:
            train_round(paths, config, store, record, stop)
        except TrainingStopped as e:
            log.warning("round %d: %s", record["round"], e)
            break
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s [learner] %(levelname)s %(message)s")
    sys.exit(run_learner(sys.argv[1]))
