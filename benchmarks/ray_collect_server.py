"""Ray collection through a fleet server against into a shared store, on the same local cluster.

    .venv/bin/python benchmarks/ray_collect_server.py [--env HalfCheetah-v5] [--episodes 24] [--repeats 3]

For W = 1 and 2 collectors on a ``ray.cluster_utils.Cluster`` of W nodes of 1 CPU each (token
authentication on): ``collect(ENV, STORE_DIR, ..., ray_address=...)`` (actors write the store, batches of 8
episodes) against ``collect(ENV, SERVER_URL, ..., ray_address=..., admin_token=...)`` (actors are robots of an
``armfarm serve`` app running in this process on loopback, one upload and ack per episode, each collector
registered by the registrar). Wall time of the collection call (the cluster is started before the clock);
median of ``--repeats``; both modes alternate so drift hits them alike. The server shares this machine's two
cores with the collectors, as it would not on a real cluster.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _raybench import machine, start_cluster, stop_cluster, use_token_auth  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--episodes", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results" / "ray_collect_server.json")
    args = p.parse_args(argv)
    use_token_auth()
    import httpx
    import uvicorn

    from armfarm.collect import collect
    from armfarm.data import EpisodeStore
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.fleet.server import ServerConfig, create_app

    work = Path(tempfile.mkdtemp(prefix="ray_collect_server_"))
    spec = BehaviorSpec("random")
    report = {"command": "python benchmarks/ray_collect_server.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "settings": vars(args) | {"out": str(args.out)}, "rows": []}
    app = create_app(ServerConfig(store=work / "served"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    admin_token = app.state.fleet.admin_token_path.read_text().strip()
    served = app.state.fleet.store
    run = 0
    try:
        for workers in (1, 2):
            cluster = start_cluster(workers)
            walls: dict[str, list[float]] = {"store": [], "server": []}
            transitions: dict[str, list[int]] = {"store": [], "server": []}
            for _ in range(args.repeats):
                for mode in ("store", "server"):
                    run += 1
                    before = served.num_transitions
                    target = str(url) if mode == "server" else work / f"store{run}"
                    tick = time.perf_counter()
                    collect(args.env, target, spec, args.episodes, workers=workers, seed=run,
                            ray_address=cluster.address, admin_token=admin_token)
                    walls[mode].append(time.perf_counter() - tick)
                    if mode == "server":
                        transitions[mode].append(served.num_transitions - before)
                    else:
                        transitions[mode].append(EpisodeStore(target).num_transitions)
                        shutil.rmtree(target)
            stop_cluster(cluster)
            row = {"workers": workers, "ray_nodes": workers}
            for mode in walls:
                wall = statistics.median(walls[mode])
                row[mode] = {"wall_s": round(wall, 3), "walls": [round(w, 3) for w in walls[mode]],
                             "transitions_per_s": round(statistics.median(
                                 t / w for t, w in zip(transitions[mode], walls[mode], strict=True)), 1)}
            row["server_over_store"] = round(row["server"]["transitions_per_s"] / row["store"]["transitions_per_s"], 3)
            row["server_overhead_per_episode_ms"] = round(
                (row["server"]["wall_s"] - row["store"]["wall_s"]) / args.episodes * 1000, 1)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.should_exit = True
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
