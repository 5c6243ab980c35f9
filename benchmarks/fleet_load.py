"""Fleet ingest benchmark: sustained transitions/s and ack latency with N simulated robots.

Records a few episodes in a real environment first (HalfCheetah-v5 by default: 1000 transitions,
17-dim observations, 6-dim actions), then starts ``armfarm serve`` on a fresh store and lets N
robots replay them as fast as the server acknowledges: each robot is a thread with its own
connection and the client's own upload path (``armfarm.fleet.client.Uploader``: encode, POST, check
the ack's digest), every episode under a new id. The robots run in a few client processes on the
same machine as the server, so the environments' cost does not count but the clients' does.

Ingest is counted by the store itself (episodes committed during the measured window, after a
warm-up); latency is request to acknowledgement, i.e. including the durable commit (fsync). The
CPU share taken by other processes during each run is reported, because a shared machine skews
numbers.

    python benchmarks/fleet_load.py [--robots 8 32 128] [--seconds 20] [--env HalfCheetah-v5]
                                    [--max-steps N] [--index-url URL] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _cpumeter import _busy_s, cores, wait_for_quiet  # noqa: E402

from armfarm.data import EpisodeStore  # noqa: E402
from armfarm.envs.behavior import BehaviorSpec, make_behavior  # noqa: E402
from armfarm.envs.registry import make_env  # noqa: E402
from armfarm.envs.rollout import rollout_episode  # noqa: E402
from armfarm.fleet.admin import Admin, env_spec  # noqa: E402
from armfarm.fleet.client import Uploader, _canonical  # noqa: E402
from armfarm.fleet.payload import encode, wire_arrays  # noqa: E402

ROBOTS_PER_PROCESS = 16


def record(env_id: str, episodes: int, max_steps: int | None) -> list[dict]:
    """Episodes of random actions in ``env_id``, as wire arrays (the client's canonical dtypes)."""
    env = make_env(env_id)
    behavior = make_behavior(BehaviorSpec("random"), env)
    recorded = []
    for i in range(episodes):
        behavior.reset(np.random.default_rng(i))
        data = rollout_episode(env, behavior, seed=i, max_steps=max_steps)
        data.pop("end_reason")
        recorded.append(wire_arrays(**{k: _canonical(v) for k, v in data.items()}))
    env.close()
    return recorded


def robot_loop(
    url: str,
    robot_id: str,
    token: str,
    env_id: str,
    episodes: list[dict],
    stop_at: float,
    latencies: list[float],
) -> None:
    """Upload the recorded episodes round-robin, each under a fresh id, until ``stop_at``."""
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        uploader = Uploader(http, robot_id, chunk_steps=10**9)
        i = 0
        while time.time() < stop_at:
            meta = {
                "episode_id": uuid.uuid4().hex,
                "created_at": "2024-05-01T12:00:00+00:00",
                "policy_id": "replay",
                "env_id": env_id,
                "seed": i,
            }
            body = encode(episodes[i % len(episodes)], meta)
            started = time.perf_counter()
            uploader.send(body)
            latencies.append((time.time(), time.perf_counter() - started))
            i += 1


def client_process(
    url: str, robots: list[tuple[str, str]], env_id: str, episodes: list[dict], stop_at: float, results
) -> None:
    latencies: list = []
    threads = [
        threading.Thread(target=robot_loop, args=(url, r, t, env_id, episodes, stop_at, latencies))
        for r, t in robots
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(latencies)


class TreeMeter:
    """The CPU share other processes take: machine busy time minus this process tree's (the server and
    the robots are this benchmark's own children, still running, so rusage cannot count them)."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_s(), self._tree_s()

    @staticmethod
    def _tree_s() -> float:
        total = 0.0
        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def foreign_share(self) -> float | None:
        busy = _busy_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        foreign = (busy - self.busy0) - (self._tree_s() - self.own0)
        return max(0.0, foreign / (wall * cores()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(
    n_robots: int,
    episodes: list[dict],
    env_id: str,
    seconds: float,
    warmup: float,
    index_url: str,
    workdir: Path,
) -> dict:
    store = workdir / f"store-{n_robots}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "armfarm.cli.main",
            "serve",
            str(store),
            "--port",
            str(port),
            "--rate-limit",
            "0",
            "--index-url",
            index_url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Admin(url, _admin_token(store, server), wait_s=60) as admin:
            spec = env_spec(env_id)
            robots = [
                (f"bench-{i}", admin.register(f"bench-{i}", env_id, spec)["token"]) for i in range(n_robots)
            ]
        context = mp.get_context("spawn")
        results = context.Queue()
        start = time.time() + 2.0  # let the client processes start
        stop_at = start + warmup + seconds
        groups = [robots[i : i + ROBOTS_PER_PROCESS] for i in range(0, n_robots, ROBOTS_PER_PROCESS)]
        processes = [
            context.Process(target=client_process, args=(url, g, env_id, episodes, stop_at, results))
            for g in groups
        ]
        for process in processes:
            process.start()
        reader = EpisodeStore(store)
        time.sleep(max(0.0, start + warmup - time.time()))
        meter = TreeMeter()
        first = (reader.num_episodes, reader.num_transitions, time.perf_counter())
        time.sleep(max(0.0, stop_at - time.time()))
        last = (reader.num_episodes, reader.num_transitions, time.perf_counter())
        foreign = meter.foreign_share()
        latencies = [lat for _ in processes for lat in results.get(timeout=300)]
        for process in processes:
            process.join()
    finally:
        server.terminate()
        server.wait()
    window = [lat for t, lat in latencies if start + warmup <= t <= stop_at]
    elapsed = last[2] - first[2]
    shutil.rmtree(store, ignore_errors=True)
    return {
        "robots": n_robots,
        "episodes_per_s": (last[0] - first[0]) / elapsed,
        "transitions_per_s": (last[1] - first[1]) / elapsed,
        "p50_ms": 1000 * float(np.percentile(window, 50)),
        "p99_ms": 1000 * float(np.percentile(window, 99)),
        "acks": len(window),
        "foreign_cpu": foreign,
    }


def _admin_token(store: Path, server: subprocess.Popen) -> str:
    path = store / "admin.token"
    deadline = time.time() + 60
    while not path.exists():
        if server.poll() is not None or time.time() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    time.sleep(0.1)
    return path.read_text().strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--robots", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--recorded", type=int, default=4, help="episodes recorded and replayed")
    parser.add_argument("--index-url", default="sqlite")
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, help="wait up to this long for a quiet machine"
    )
    parser.add_argument("--out", type=Path, default=None, help="append the markdown table to this file")
    args = parser.parse_args()

    episodes = record(args.env, args.recorded, args.max_steps)
    steps = int(np.mean([len(e["actions"]) for e in episodes]))
    body_kb = len(encode(episodes[0], {"episode_id": "x", "created_at": "2024-05-01T12:00:00+00:00"})) / 1024
    workdir = Path(tempfile.mkdtemp(prefix="armfarm-fleet-bench-"))
    rows = []
    try:
        for n in args.robots:
            if args.wait_quiet > 0:
                wait_for_quiet(args.wait_quiet, log=lambda m: print(f"[fleet_load] {m}", file=sys.stderr))
            row = run(n, episodes, args.env, args.seconds, args.warmup, args.index_url, workdir)
            rows.append(row)
            print(f"[fleet_load] {row}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    index = "SQLite" if args.index_url == "sqlite" else "PostgreSQL"
    lines = [
        f"Fleet ingest: `{args.env}` episodes of {steps} transitions ({body_kb:.0f} KiB each), {index} index, "
        f"{cores()} cores ({platform.processor() or platform.machine()}), server and robots on one machine, "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up.",
        "",
        "| robots | transitions/s | episodes/s | ack p50 (ms) | ack p99 (ms) | other processes' CPU |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        other = "n/a" if r["foreign_cpu"] is None else f"{r['foreign_cpu']:.0%}"
        lines.append(
            f"| {r['robots']} | {r['transitions_per_s']:,.0f} | {r['episodes_per_s']:,.1f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {other} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        with open(args.out, "a") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
