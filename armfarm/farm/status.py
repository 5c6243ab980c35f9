"""``armfarm farm status`` and ``armfarm farm rollback``: what the farm is doing, read from disk.

Status works while the farm runs and after it stopped: every piece comes from FARM_DIR (the rounds'
records, the live policy, the robots' heartbeats, the supervisor's component table) and the store's
index, never from a running process.
"""

from __future__ import annotations

from pathlib import Path

from armfarm.farm.state import FarmPaths, holder, live, now_iso, pid_alive, read_json, robot_ids, rounds

ROUND_KEYS = ("round", "phase", "started_at", "finished_at", "episodes_used", "transitions_used", "candidate",
              "baseline", "difference", "promoted", "policy_version", "reason", "warm_start_from")


def _round_view(record: dict) -> dict:
    view = {key: record.get(key) for key in ROUND_KEYS}
    candidate = dict(record.get("candidate") or {})
    if "eval" in candidate:
        candidate["eval"] = {k: v for k, v in candidate["eval"].items() if k != "returns"}
    view["candidate"] = candidate
    if view["baseline"]:
        view["baseline"] = {"name": view["baseline"]["name"],
                            "eval": {k: v for k, v in view["baseline"]["eval"].items() if k != "returns"}}
    view.setdefault("promoted", None)
    return view


def farm_status(farm_dir: str | Path) -> dict:
    """The farm's state as ``armfarm farm status --json`` prints it."""
    from armfarm.farm import config as farm_config

    paths = FarmPaths(farm_dir)
    if paths.root.exists() and not paths.root.is_dir():
        raise NotADirectoryError(f"{paths.root} is a file, not a farm directory")
    config = farm_config.load(paths.root)
    episodes = transitions = None
    if (paths.store / "store.json").exists():
        from armfarm.data import EpisodeStore

        store = EpisodeStore(paths.store)
        episodes, transitions = store.num_episodes, store.num_transitions
    supervisor = holder(paths)
    table = read_json(paths.components, {}) or {}
    components = [{"name": c["name"], "pid": c["pid"], "alive": bool(supervisor) and pid_alive(c["pid"]),
                   "restarts": c["restarts"], "last_exit": c.get("last_exit")}
                  for c in table.get("components", []) if not c["name"].startswith("robot-")]
    restarts = {c["name"]: c["restarts"] for c in table.get("components", [])}
    robots = []
    for robot_id in robot_ids(config.robots):
        beat = read_json(paths.robot_state(robot_id), {}) or {}
        robots.append({"robot_id": robot_id, "pid": beat.get("pid"),
                       "alive": bool(supervisor) and pid_alive(beat.get("pid")),
                       "episodes_acked": beat.get("episodes_acked", 0), "episodes_recorded": beat.get("episodes_recorded", 0),
                       "pending": beat.get("pending", 0), "rejected": beat.get("rejected", 0),
                       "last_seen": beat.get("last_seen"), "policy_version": beat.get("policy_version"),
                       "last_error": beat.get("last_error"), "restarts": restarts.get(robot_id, 0)})
    current = live(paths)
    return {
        "farm": str(paths.root), "env": config.env, "algo": config.algo, "running": supervisor is not None,
        "supervisor_pid": supervisor, "checked_at": now_iso(),
        "url": f"http://{config.host}:{config.port}", "dashboard": f"http://{config.host}:{config.port}/dashboard",
        "policy_version": None if current is None else current["version"],
        "live": None if current is None else {k: v for k, v in current.items() if k != "history"},
        "episodes": episodes, "transitions": transitions,
        "rounds": [_round_view(r) for r in rounds(paths)],
        "learner": read_json(paths.learner),
        "robots": robots, "components": components,
        "uploads_deferred": [r["robot_id"] for r in robots if r["last_error"]],
    }


def rollback(farm_dir: str | Path, to: int | None = None) -> dict:
    """Republish an earlier live version (``to``; default: the one live before the current one) as the
    newest version, so robots follow it at their next episode; returns the new live entry."""
    from armfarm.farm.evaluator import live_lock, publish, set_live

    paths = FarmPaths(farm_dir)
    with live_lock(paths):
        current = live(paths)
        if current is None:
            raise ValueError(f"farm {paths.root} has no live policy yet; nothing to roll back")
        history = current.get("history", [])
        if to is None:  # the promotion before the one live now (repeated rollbacks go further back)
            origin = current.get("rolled_back_to") or current["version"]
            earlier = [h for h in history if h["version"] < origin and not h.get("rolled_back_to")]
            if not earlier:
                raise ValueError(f"live version {current['version']} is the first promoted; there is no earlier one")
            target = earlier[-1]
        else:
            matches = [h for h in history if h["version"] == to and not h.get("rolled_back_to")]
            if not matches:
                known = ", ".join(str(h["version"]) for h in history)
                raise ValueError(f"version {to} was never live on farm {paths.root}; live versions were: {known}")
            target = matches[-1]
        version = publish(paths, Path(target["policy"]), f"farm rollback to v{target['version']} at {now_iso()}")
        entry = {**{k: v for k, v in target.items() if k not in ("history", "rolled_back_to")},
                 "version": version, "rolled_back_to": target["version"], "promoted_at": now_iso()}
        set_live(paths, entry)
    return entry
