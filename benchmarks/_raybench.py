"""Local Ray clusters for the Ray benchmarks: token authentication on, nodes of 1 CPU, small limits."""

from __future__ import annotations

import os
import platform
import secrets

from _cpumeter import cpu_model

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 128 * 1024 * 1024, "include_dashboard": False}


def use_token_auth() -> None:
    """Token authentication for every cluster this process starts or joins (a fresh token unless one is set)."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    from ray._raylet import Config

    Config.initialize("")  # Ray caches RAY_AUTH_MODE at import


def start_cluster(nodes: int):
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` nodes of :data:`NODE_ARGS`, this driver connected to it."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args=NODE_ARGS)
    for _ in range(nodes - 1):
        cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    return cluster


def stop_cluster(cluster) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()


def machine() -> dict:
    import ray

    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "ray": ray.__version__}
