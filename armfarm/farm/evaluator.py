"""The farm's evaluator: gates each trained candidate and publishes the winners, as its own process
(``python -m armfarm.farm.evaluator FARM_DIR``, started by the supervisor).

For a round in phase ``trained`` it rolls out the candidate (deterministic, no noise) and the live
policy (or, before any promotion, the robots' default behaviour with its noise) on the farm's
evaluation seeds, behind the farm's current shield when ``[shield]`` is on (as the robots run them),
decides with :mod:`armfarm.farm.gate` (better return, and evaluated cost within ``cost_budget``), publishes a promoted candidate as the newest
policy version, and records the decision (phase ``decided``). Publishing is idempotent: a version
already published for this round (an evaluator killed between publishing and recording) is reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from armfarm.farm.gate import decide, summary
from armfarm.farm.state import (
    DECIDED,
    TRAINED,
    FarmPaths,
    live,
    now_iso,
    rounds,
    start_component,
    write_json,
    write_round,
)

log = logging.getLogger("armfarm.farm.evaluator")
POLL_S = 0.5


@contextmanager
def live_lock(paths: FarmPaths):
    """Serialise updates of ``live.json`` (the evaluator's promotions and ``farm rollback``)."""
    paths.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.state / "live.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def default_behavior_spec(config):
    from armfarm.envs.behavior import BehaviorSpec

    return BehaviorSpec(config.default_behavior, config.default_noise, config.default_good_fraction)


def evaluate(config, policy: str | Path | None, shield: Path | None = None):
    """The :class:`~armfarm.evaluate.rollouts.EvalResult` of ``policy`` (a policy file; None: the default
    behaviour) on the farm's evaluation seeds, behind ``shield`` when given (as the robots run it).

    On Ray (``farm run --ray``) the episodes run as ``eval_tasks`` parallel tasks; the episodes are
    independent and seeded alike, so the result is the same as here."""
    from armfarm.evaluate.rollouts import summarize_rollouts
    from armfarm.launch.ray_cluster import ADDRESS_ENV, run_tasks

    indices = list(range(config.eval_episodes))
    address = os.environ.get(ADDRESS_ENV)
    if address and config.eval_tasks > 1:
        size = -(-len(indices) // config.eval_tasks)  # contiguous chunks, so concatenation keeps the order
        chunks = [indices[k:k + size] for k in range(0, len(indices), size)]
        parts = run_tasks(evaluate_episodes, [(config, policy, shield, c) for c in chunks], address,
                          num_cpus=config.evaluator_cpus)
        stats = {key: [v for part in parts for v in part[key]] for key in parts[0]}
    else:
        stats = evaluate_episodes(config, policy, shield, indices)
    return summarize_rollouts(config.env, stats)


def evaluate_episodes(config, policy: str | Path | None, shield: Path | None, indices: list[int]) -> dict:
    """Evaluation episodes ``indices`` of ``policy`` (see :func:`evaluate`), as rollout statistics."""
    from armfarm.envs.behavior import BehaviorSpec, make_behavior
    from armfarm.envs.registry import make_env
    from armfarm.evaluate.rollouts import rollout_stats

    env = make_env(config.env)
    spec = default_behavior_spec(config) if policy is None else BehaviorSpec(str(policy), 0.0)
    behavior = make_behavior(spec, env)
    env.close()
    if shield is not None:
        from armfarm.shield import Shield

        behavior = Shield.load(shield).wrap(behavior)
    return rollout_stats(behavior, config.env, indices, seed=config.eval_seed, max_steps=config.max_steps)


def eval_block(result, confidence: float) -> dict:
    """A policy's evaluation as a round records it: the return summary, plus costs and interventions."""
    return {**summary(result.returns, confidence), "cost_mean": result.cost_mean, "cost_std": result.cost_std,
            "costs": result.costs, "interventions_mean": result.interventions_mean}


def publish(paths: FarmPaths, policy_file: Path, source: str) -> int:
    """Publish ``policy_file`` as the newest version (or find the version already published from
    ``source`` with the same bytes); returns the version."""
    from armfarm.data import EpisodeStore
    from armfarm.fleet.registry import Registry

    data = policy_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    registry = Registry(EpisodeStore(paths.store), paths.signing_key)
    for version in registry.policies():
        if version.source == source and version.sha256 == digest:
            return version.version
    return registry.publish(data, source).version


def set_live(paths: FarmPaths, entry: dict) -> None:
    """Make ``entry`` the live policy, keeping the history of live versions."""
    current = live(paths) or {}
    history = [*current.get("history", []), {k: v for k, v in entry.items() if k != "history"}]
    write_json(paths.live, {**entry, "history": history})


def decide_round(paths: FarmPaths, config, record: dict) -> dict:
    current = live(paths)
    if current is not None and current.get("round") == record["round"]:
        # killed after promoting this round but before recording it: gate again against what was live before
        earlier = current.get("history", [])[:-1]
        current = {**earlier[-1], "history": earlier} if earlier else None
    shield = paths.shield if config.shield and paths.shield.exists() else None
    try:
        candidate = evaluate(config, record["candidate"]["policy"], shield)
    except (OSError, ValueError) as e:  # a candidate that cannot run is kept out, not a crash loop
        record = {**record, "phase": DECIDED, "finished_at": now_iso(), "promoted": False,
                  "policy_version": None if current is None else current["version"],
                  "reason": f"not promoted: the candidate cannot run ({e})"}
        write_round(paths, record)
        return record
    if current is None:
        live_name, baseline = f"the default behaviour ({config.default_behavior})", evaluate(config, None, shield)
    else:
        live_name, baseline = f"live v{current['version']}", evaluate(config, current["policy"], shield)
    decision = decide(candidate.returns, baseline.returns, live_name, config.promotion_margin, config.confidence,
                      candidate_cost=candidate.cost_mean, cost_budget=config.cost_budget)
    version = None if current is None else current["version"]
    if decision.promoted:
        version = publish(paths, Path(record["candidate"]["policy"]), f"farm round {record['round']}")
        with live_lock(paths):
            set_live(paths, {"version": version, "round": record["round"], "policy": record["candidate"]["policy"],
                             "checkpoint": record["candidate"]["checkpoint"], "promoted_at": now_iso(),
                             "eval": eval_block(candidate, config.confidence)})
    record = {**record, "phase": DECIDED, "finished_at": now_iso(), "promoted": decision.promoted,
              "policy_version": version, "reason": decision.reason,
              "candidate": {**record["candidate"], "eval": eval_block(candidate, config.confidence)},
              "baseline": {"name": live_name, "eval": eval_block(baseline, config.confidence)},
              "difference": decision.difference, "evaluated_behind_shield": None if shield is None else
              str(shield.resolve())}
    write_round(paths, record)
    return record


def run_evaluator(farm_dir: str) -> int:
    paths, config, stop = start_component(farm_dir, "evaluator")
    while not stop.is_set():
        pending = [r for r in rounds(paths) if r["phase"] == TRAINED]
        if not pending:
            stop.wait(POLL_S)
            continue
        record = decide_round(paths, config, pending[0])
        log.warning("round %d: %s", record["round"], record["reason"])
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s [evaluator] %(levelname)s %(message)s")
    sys.exit(run_evaluator(sys.argv[1]))
