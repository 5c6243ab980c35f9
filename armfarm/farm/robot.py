"""One farm robot: a :class:`~armfarm.fleet.client.FleetClient` in its Gymnasium environment, as its own
process (``python -m armfarm.farm.robot FARM_DIR ROBOT_ID``, started by the supervisor).

It records episodes with the live policy plus exploration noise (a configured share with the default
behaviour), spools each one durably before sending it, appends every ack to ``acks/<robot>.jsonl``, and
writes a heartbeat to ``state/robots/<robot>.json`` every second. On SIGTERM it finishes the running
episode, spools it, gives the uplink a few seconds to drain, and exits; whatever is still in the spool
uploads when it starts again. Robot ``r``'s episode ``i`` is seeded ``(r + 1) * ROBOT_SEED_STRIDE + i``,
and the count carries over restarts, so no two episodes share a seed and none uses an evaluation seed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime

from armfarm.durable import append_line
from armfarm.farm import config as farm_config
from armfarm.farm.state import FarmPaths, read_json, write_json

DRAIN_ON_STOP_S = 5.0
HEARTBEAT_S = 1.0


def _acks_logged(path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def run_robot(farm_dir: str, robot_id: str) -> int:
    from armfarm.fleet.admin import read_token
    from armfarm.fleet.client import ClientConfig, FleetClient

    paths = FarmPaths(farm_dir)
    config = farm_config.load(paths.root)
    index = int(robot_id.rsplit("-", 1)[1])
    previous = read_json(paths.robot_state(robot_id), {}) or {}
    recorded = int(previous.get("episodes_recorded", 0))
    acked = [_acks_logged(paths.ack_log(robot_id))]
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host  # the server is on this machine
    client_config = ClientConfig(
        server=f"http://{host}:{config.port}", allow_insecure_http=True,  # the farm's own server
        token=read_token(paths.token(robot_id)), signing_key=str(paths.signing_pub), robot_id=robot_id,
        env_id=config.env, spool_dir=paths.spool(robot_id), default_behavior=config.default_behavior,
        default_noise=config.default_noise, default_good_fraction=config.default_good_fraction,
        default_fraction=config.default_fraction, noise=config.noise,
        seed=(index + 1) * farm_config.ROBOT_SEED_STRIDE, max_steps=config.max_steps,
        control_hz=config.control_hz, policy_poll_s=config.policy_poll_s, backoff_max_s=5.0,
        shield=paths.shield if config.shield else None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def on_ack(ack: dict) -> None:
        append_line(paths.ack_log(robot_id), {**ack, "acked_at": datetime.now(UTC).isoformat()})
        acked[0] += 1

    with FleetClient(client_config, on_ack=on_ack) as client:
        client.episodes_recorded = recorded

        def heartbeat() -> None:
            write_json(paths.robot_state(robot_id), {
                "robot_id": robot_id, "pid": os.getpid(), "episodes_recorded": client.episodes_recorded,
                "episodes_acked": acked[0], "pending": len(client.spool.pending()),
                "rejected": len(client.spool.rejected()), "policy_version": client.policy_version,
                "last_seen": None if client.last_contact is None
                else datetime.fromtimestamp(client.last_contact, UTC).isoformat(),
                "last_error": client.last_error, "heartbeat_at": datetime.now(UTC).isoformat(),
            })

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                heartbeat()

        threading.Thread(target=beat, daemon=True).start()
        heartbeat()
        client.run(stop=stop)
        client.drain(DRAIN_ON_STOP_S)
        heartbeat()
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s [{argv[1]}] %(levelname)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_robot(argv[0], argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
