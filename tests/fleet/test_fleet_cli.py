"""The README's fleet walk-through with the real commands (serve, register, robot, train, publish), and TLS."""

import json
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from fleetlib import ProcessServer
from postgres_cluster import free_port
from shieldlib import write_shield

from armfarm.data import EpisodeStore
from armfarm.shield import Limits


def armfarm(*args, check=True, timeout=600):
    result = subprocess.run([sys.executable, "-m", "armfarm.cli.main", *map(str, args)], capture_output=True,
                            text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_serve_register_collect_train_publish(tmp_path, backend):
    store = tmp_path / "store"
    server = ProcessServer(store, backend).start()
    try:
        admin = store / "admin.token"
        token = tmp_path / "arm-1.token"
        armfarm("fleet", "register", "arm-1", "--env", "Hopper-v5", "--server", server.url, "--token-file", admin,
                "--out", token)
        assert token.stat().st_mode & 0o777 == 0o600
        key = tmp_path / "arm-1.pub"  # the signing key the robot pins, beside its token
        assert key.read_text().strip() == httpx.get(f"{server.url}/v1/signing-key", headers={
            "Authorization": f"Bearer {server.admin_token}"}).json()["signing_key"]
        again = armfarm("fleet", "register", "arm-1", "--env", "Hopper-v5", "--server", server.url,
                        "--token-file", admin, check=False)
        assert again.returncode == 2 and "already registered" in again.stderr
        robot = ("fleet", "robot", "arm-1", "--env", "Hopper-v5", "--server", server.url, "--token-file", token,
                 "--signing-key", key, "--spool", tmp_path / "spool")
        armfarm(*robot, "--episodes", 8)
        assert EpisodeStore(store).num_episodes == 8

        run = tmp_path / "runs" / "bc"
        armfarm("train", "bc", store, "--out", run, "--steps", 200, "--steps-per-call", 100)
        checkpoint = run / "checkpoints" / "step_200"
        published = json.loads(armfarm("fleet", "publish", checkpoint, "--server", server.url,
                                       "--token-file", admin, "--json").stdout)
        assert published["version"] == 1 and published["config"]["obs_dim"] == 11
        assert published["source"] == str(checkpoint)

        armfarm(*robot, "--episodes", 2, "--seed", 100)
        policies = [r.policy_id for r in EpisodeStore(store).records(collector_id="arm-1")]
        assert policies[:8] == ["default:random"] * 8 and all(p.startswith("v1:bc@") for p in policies[8:])
        assert len(policies) == 10

        upper = write_shield(tmp_path / "shield", 11, 3, limits=Limits(high=[-0.5] * 3))  # actions in [-1, -0.5]
        shipped = armfarm("fleet", "publish", checkpoint, "--shield", upper, "--server", server.url,
                          "--token-file", admin)
        assert "with the shield" in shipped.stdout and "version 2" in shipped.stdout
        armfarm(*robot, "--episodes", 1, "--seed", 200)
        latest = list(EpisodeStore(store).records(collector_id="arm-1"))[-1]
        assert latest.policy_id.startswith("v2:bc@")
        assert (EpisodeStore(store).read_episode(latest.episode_id).actions <= -0.5 + 1e-6).all()
        assert armfarm("data", "check", store).returncode == 0

        armfarm("fleet", "register", "typo", "--env", "Hopper-v5", "--server", server.url, "--token-file", admin)
        gone = armfarm("fleet", "deregister", "typo", "--server", server.url, "--token-file", admin)
        assert "typo deregistered" in gone.stdout and "released" not in gone.stdout  # arm-1 and episodes remain
        missing = armfarm("fleet", "deregister", "typo", "--server", server.url, "--token-file", admin, check=False)
        assert missing.returncode == 2 and "no robot 'typo'" in missing.stderr
    finally:
        server.stop()


def test_serve_over_tls(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "armfarm.cli.main", "serve", str(tmp_path / "store"), "--port",
                               str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=str(cert))
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "no TLS server came up"
                time.sleep(0.1)
        assert response.json()["status"] == "ok"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")  # no plain HTTP on a TLS port
    finally:
        server.terminate()
        server.wait()
