"""Faults: the server is SIGKILLed at random moments while a simulated fleet uploads."""

import json
import random
import subprocess
import sys
import time

import pytest
from fleetlib import ProcessServer

from armfarm.data import EpisodeStore, check_store

ROBOTS, EPISODES = 4, 6


def acked(ack_log) -> list[dict]:
    if not ack_log.exists():
        return []
    return [json.loads(line) for line in ack_log.read_text().splitlines()]


@pytest.mark.slow
def test_sigkilled_server_loses_no_acknowledged_episode(tmp_path, backend):
    store = tmp_path / "store"
    server = ProcessServer(store, backend).start()
    ack_log = tmp_path / "acks.jsonl"
    sim = subprocess.Popen(
        [sys.executable, "-m", "armfarm.cli.main", "fleet", "sim", "--server", server.url,
         "--token-file", str(store / "admin.token"), "--env", "Hopper-v5", "--robots", str(ROBOTS),
         "--episodes", str(EPISODES), "--max-steps", "80", "--ack-log", str(ack_log), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    rng = random.Random(0)
    kills_during_uploads = 0
    try:
        for _ in range(3):
            seen = len(acked(ack_log))
            deadline = time.monotonic() + 120
            while len(acked(ack_log)) == seen and sim.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)  # wait until uploads flow again
            time.sleep(rng.uniform(0.0, 0.05))
            kills_during_uploads += len(acked(ack_log)) < ROBOTS * EPISODES
            server.kill()
            time.sleep(rng.uniform(0.05, 0.5))  # the robots keep recording into their spools
            server.start()
        out, err = sim.communicate(timeout=300)
    finally:
        if sim.poll() is None:
            sim.kill()
        server.stop()
    assert sim.returncode == 0, err[-3000:]
    assert kills_during_uploads >= 2, "the kills missed the uploads; the test exercised nothing"
    report = json.loads(out)
    assert report["acked"] >= ROBOTS * EPISODES and report["ok"]

    records = {r.episode_id: r for r in EpisodeStore(store).records()}
    assert len(records) == ROBOTS * EPISODES  # every episode exactly once (ids are unique in a store)
    log = acked(ack_log)
    assert {a["episode_id"] for a in log} == set(records)
    for ack in log:  # what was acknowledged is what is stored, whole
        assert records[ack["episode_id"]].length == ack["transitions"]
        assert records[ack["episode_id"]].collector_id == ack["robot_id"]
    integrity = check_store(store)
    assert integrity.ok, integrity.problems
    cli = subprocess.run([sys.executable, "-m", "armfarm.cli.main", "data", "check", str(store)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
