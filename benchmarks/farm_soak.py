"""Farm benchmarks (not tests): a soak under random SIGKILLs, and the loop's latency.

    python benchmarks/farm_soak.py soak --minutes 60 --robots 8 --out soak_out
    python benchmarks/farm_soak.py latency FARM_DIR
    python benchmarks/farm_soak.py damage --minutes 10 --robots 4 --out damage_out

``soak`` runs ``armfarm farm run`` for ``--minutes`` while this script SIGKILLs a random component
(server, learner, evaluator or a robot) every 1-3 minutes. It samples which robots are alive every
second (collector uptime), the server's and learner's RSS every 30 s, and at the end reports rounds,
promotions, restarts, episodes acknowledged versus stored, and disk use per million transitions, as
JSON (``OUT/soak.json``) and as a Markdown block for BENCHMARKS.md.

``latency`` reads a farm directory and reports, per promoted round, the time from the acknowledgement
of the newest episode that round trained on to (a) the promoted version's publication and (b) the end
of the first episode a robot recorded with it.

``damage`` is the compressed "days of unattended practice": the farm on ``armfarm/ReacherFragile-v0``
(robots paced at 100 Hz, IQL trained for reward only each round, a random default behaviour until the
first promotion and on ``default_fraction`` of the episodes after it) run twice for ``--minutes``,
without and with ``[shield]`` (refitted each round, ``min-cost`` fallback, the watchdog e-stopping an
episode after ``--episode-cost-budget`` damage events). It reports, per arm, the damage events (the store's summed costs) per 100k robot steps,
overall and after the first promotion, interventions and e-stops, as ``OUT/damage.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from armfarm.data import EpisodeStore, check_store  # noqa: E402
from armfarm.farm.config import init  # noqa: E402
from armfarm.farm.state import FarmPaths, read_json, rounds  # noqa: E402
from armfarm.fleet.registry import Registry  # noqa: E402

SOAK_SETTINGS = {
    "default_behavior": "maze-mixed", "default_noise": "0.5", "default_good_fraction": "0.5", "noise": "0.2",
    "default_fraction": "0.2", "episodes_per_round": "150", "gradient_steps": "6000", "checkpoint_every": "1000",
    "eval_episodes": "20", "control_hz": "100", "policy_poll_s": "2.0", "max_restarts": "20",
}


def rss_mb(pid: int | None) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, TypeError, ValueError):
        return None
    return None


def components(paths: FarmPaths) -> dict[str, dict]:
    return {c["name"]: c for c in (read_json(paths.components, {}) or {}).get("components", [])}


def acked(paths: FarmPaths) -> dict[str, str]:
    """episode_id -> acked_at of every acknowledgement the robots logged."""
    out = {}
    for log in paths.acks.glob("*.jsonl"):
        for line in log.read_text().splitlines():
            if line.strip():
                ack = json.loads(line)
                out.setdefault(ack["episode_id"], ack["acked_at"])
    return out


def soak(minutes: float, robots: int, out: Path, port: int, seed: int) -> dict:
    farm = out / "farm"
    if farm.exists():
        raise SystemExit(f"{farm} exists; choose another --out")
    init(farm, "PointMaze_UMazeDense-v3", robots=robots, algo="iql", overrides={**SOAK_SETTINGS, "port": str(port)})
    paths = FarmPaths(farm)
    rng = random.Random(seed)
    process = subprocess.Popen([sys.executable, "-m", "armfarm.cli.main", "farm", "run", str(farm), "--minutes",
                                str(minutes)], stdout=open(out / "farm.out", "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    started = time.monotonic()
    next_kill = started + rng.uniform(60, 180)
    next_rss = started
    kills, rss, alive_samples, robot_samples = [], [], 0, 0
    while process.poll() is None:
        now = time.monotonic()
        table = components(paths)
        if table:
            for r in range(robots):
                c = table.get(f"robot-{r}")
                robot_samples += 1
                alive_samples += bool(c and c["alive"])
        if now >= next_rss and table:
            rss.append({"t_s": round(now - started), **{name: rss_mb(table.get(name, {}).get("pid"))
                                                         for name in ("server", "learner", "evaluator")}})
            next_rss = now + 30
        if now >= next_kill and now - started < minutes * 60 - 30 and table:
            name = rng.choice(sorted(table))
            pid = table[name]["pid"]
            if table[name]["alive"] and pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append({"t_s": round(now - started), "component": name})
                except ProcessLookupError:
                    pass
            next_kill = now + rng.uniform(60, 180)
        time.sleep(1.0)
    seconds = time.monotonic() - started
    store = EpisodeStore(paths.store)
    stored = {r.episode_id for r in store.snapshot()}
    acks = acked(paths)
    report = check_store(paths.store)
    decided = [r for r in rounds(paths) if r.get("phase") == "decided"]
    disk = sum(f.stat().st_size for f in paths.store.rglob("*") if f.is_file())
    pending = sum(1 for _ in paths.spools.glob("*/pending/*.episode"))
    result = {
        "minutes": round(seconds / 60, 1), "robots": robots, "exit_code": process.returncode,
        "rounds_decided": len(decided), "promotions": sum(1 for r in decided if r["promoted"]),
        "kills": kills, "restarts": {k: v["restarts"] for k, v in components(paths).items()},
        "episodes_acked": len(acks), "episodes_stored": len(stored), "acked_not_stored": len(set(acks) - stored),
        "stored_not_acked": len(stored - set(acks)), "left_in_spools": pending,
        "transitions_stored": store.num_transitions, "data_check_ok": report.ok, "data_check_problems": report.problems,
        "collector_uptime": alive_samples / max(robot_samples, 1),
        "rss_mb": {"first": rss[0] if rss else None, "last": rss[-1] if rss else None,
                   "max": {n: max((s[n] for s in rss if s[n]), default=None) for n in ("server", "learner", "evaluator")}},
        "rss_samples": rss,
        "disk_bytes_per_1m_transitions": round(disk / max(store.num_transitions, 1) * 1e6),
        "returns": [(r["round"], r["candidate"]["eval"]["return_mean"], r["promoted"]) for r in decided],
        "latency": latency(farm),
    }
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    return result


def latency(farm: Path) -> list[dict]:
    paths = FarmPaths(farm)
    store = EpisodeStore(paths.store)
    snapshot = store.snapshot()
    acks = acked(paths)
    versions = {p.version: p for p in Registry(store).policies()}
    first_use: dict[str, str] = {}
    for rec in snapshot:
        tag = rec.policy_id.split(":")[0]
        if tag.startswith("v") and (tag not in first_use or rec.created_at < first_use[tag]):
            first_use[tag] = rec.created_at
    out = []
    for r in rounds(paths):
        if not r.get("promoted"):
            continue
        used = [rec.episode_id for rec in snapshot[: r["episodes_used"]]]
        times = [acks[e] for e in used if e in acks]
        if not times:
            continue
        newest = max(datetime.fromisoformat(t) for t in times)
        published = datetime.fromisoformat(versions[r["policy_version"]].published_at)
        used_at = first_use.get(f"v{r['policy_version']}")
        out.append({"round": r["round"], "version": r["policy_version"],
                    "ack_to_published_s": round((published - newest).total_seconds(), 1),
                    "ack_to_first_robot_episode_s": None if used_at is None
                    else round((datetime.fromisoformat(used_at) - newest).total_seconds(), 1)})
    return out


def markdown(result: dict) -> str:
    rss = result["rss_mb"]
    lines = [
        f"- duration {result['minutes']} min, {result['robots']} robots, {len(result['kills'])} SIGKILLs "
        f"({', '.join(sorted({k['component'] for k in result['kills']}))})",
        f"- rounds decided {result['rounds_decided']}, promotions {result['promotions']}",
        f"- episodes acknowledged {result['episodes_acked']}, stored {result['episodes_stored']}, acknowledged but "
        f"not stored {result['acked_not_stored']}, stored without a logged ack {result['stored_not_acked']}, "
        f"left in spools {result['left_in_spools']}; `data check` ok: {result['data_check_ok']}",
        f"- restarts: {', '.join(f'{k} {v}' for k, v in sorted(result['restarts'].items()) if v) or 'none'}",
        f"- collector uptime {100 * result['collector_uptime']:.2f}%",
        f"- RSS (MiB) first/last/max: server {rss['first']['server']:.0f}/{rss['last']['server']:.0f}/"
        f"{rss['max']['server']:.0f}, learner {rss['first']['learner']:.0f}/{rss['last']['learner']:.0f}/"
        f"{rss['max']['learner']:.0f}" if rss["first"] and rss["last"] and rss["first"]["server"] and rss["last"]["learner"]
        and rss["first"]["learner"] else "- RSS: not sampled",
        f"- disk {result['disk_bytes_per_1m_transitions'] / 2**20:.0f} MiB per 1M transitions",
    ]
    med = [x["ack_to_first_robot_episode_s"] for x in result["latency"] if x["ack_to_first_robot_episode_s"] is not None]
    if med:
        lines.append(f"- loop latency (ack of the newest trained-on episode -> first robot episode with the policy): "
                     f"median {np.median(med):.0f} s over {len(med)} promotions")
    return "\n".join(lines)


DAMAGE_SETTINGS = {  # robots paced at 100 Hz (a real arm's control rate), so the learner keeps up on 2 cores
    "default_behavior": "random", "default_fraction": "0.1", "noise": "0.1", "episodes_per_round": "50",
    "gradient_steps": "1500", "checkpoint_every": "500", "algo_config.hidden": "64,64", "eval_episodes": "10",
    "policy_poll_s": "1.0", "control_hz": "100",
}


def damage_arm(farm: Path, minutes: float, robots: int, port: int, shielded: bool, episode_cost_budget: float) -> dict:
    overrides = {**DAMAGE_SETTINGS, "port": str(port)}
    if shielded:
        overrides |= {"shield": "true", "shield_fallback": "min-cost", "shield_steps": "3000",
                      "shield_episode_cost_budget": str(episode_cost_budget)}
    init(farm, "armfarm/ReacherFragile-v0", robots=robots, algo="iql", overrides=overrides)
    paths = FarmPaths(farm)
    with open(farm.parent / f"{farm.name}.out", "w") as log:
        code = subprocess.run([sys.executable, "-m", "armfarm.cli.main", "farm", "run", str(farm), "--minutes",
                               str(minutes)], stdout=log, stderr=subprocess.STDOUT).returncode
    store = EpisodeStore(paths.store)
    records = sorted(store.snapshot(), key=lambda r: r.created_at)
    decided = [r for r in rounds(paths) if r.get("phase") == "decided"]
    first_live = min((rec.created_at for rec in records if rec.policy_id.split(":")[0].startswith("v")), default=None)

    def rate(recs) -> dict:
        steps = sum(r.length for r in recs)
        events = sum(r.cost_return for r in recs)
        return {"episodes": len(recs), "steps": steps, "damage_events": events,
                "damage_per_100k_steps": None if not steps else events / steps * 1e5,
                "interventions": sum(r.interventions for r in recs),
                "estops": sum(1 for r in recs if r.end_reason)}

    return {"exit_code": code, "shielded": shielded, "minutes": minutes, "robots": robots,
            "rounds_decided": len(decided), "promotions": sum(1 for r in decided if r["promoted"]),
            "all": rate(records),
            "after_first_promotion": rate([r for r in records if first_live and r.created_at >= first_live]),
            "candidates": [{"round": r["round"], "return": r["candidate"]["eval"]["return_mean"],
                            "cost": r["candidate"]["eval"].get("cost_mean"), "promoted": r["promoted"],
                            "reason": r.get("reason")} for r in decided],
            "data_check_ok": check_store(paths.store).ok}


def damage(minutes: float, robots: int, out: Path, port: int, episode_cost_budget: float) -> dict:
    result = {"task": "armfarm/ReacherFragile-v0", "settings": DAMAGE_SETTINGS, "arms": {}}
    for name, shielded in (("unshielded", False), ("shielded", True)):
        farm = out / name
        if farm.exists():
            raise SystemExit(f"{farm} exists; choose another --out")
        result["arms"][name] = damage_arm(farm, minutes, robots, port, shielded, episode_cost_budget)
        print(json.dumps(result["arms"][name]), flush=True)
        (out / "damage.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("soak")
    s.add_argument("--minutes", type=float, default=60)
    s.add_argument("--robots", type=int, default=8)
    s.add_argument("--out", type=Path, default=Path("soak_out"))
    s.add_argument("--port", type=int, default=8790)
    s.add_argument("--seed", type=int, default=0)
    lat = sub.add_parser("latency")
    lat.add_argument("farm", type=Path)
    d = sub.add_parser("damage")
    d.add_argument("--minutes", type=float, default=10)
    d.add_argument("--robots", type=int, default=2)
    d.add_argument("--out", type=Path, default=Path("damage_out"))
    d.add_argument("--port", type=int, default=8791)
    d.add_argument("--episode-cost-budget", type=float, default=5.0)
    args = parser.parse_args()
    if args.command == "damage":
        args.out.mkdir(parents=True, exist_ok=True)
        damage(args.minutes, args.robots, args.out, args.port, args.episode_cost_budget)
    elif args.command == "soak":
        args.out.mkdir(parents=True, exist_ok=True)
        result = soak(args.minutes, args.robots, args.out, args.port, args.seed)
        print(markdown(result))
    else:
        print(json.dumps(latency(args.farm), indent=2))


if __name__ == "__main__":
    main()
