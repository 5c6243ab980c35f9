"""Real local Ray clusters for tests: several raylets on loopback, token authentication on, small limits."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1, head_gpus: int = 0) -> Iterator:
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` nodes (the first is the head), ``cpus_per_node`` CPUs
    each, 128 MiB object stores and no dashboard; the token is a fresh one in ``RAY_AUTH_TOKEN`` unless one
    is set. ``head_gpus``: GPUs the head declares (Ray schedules by them; no device needs to exist).
    Yields the cluster (``.address``, ``.add_node``, ``.remove_node``)."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    from ray._raylet import Config
    from ray.cluster_utils import Cluster

    Config.initialize("")  # Ray caches RAY_AUTH_MODE at import
    args = {"num_cpus": cpus_per_node, "object_store_memory": 128 * 1024 * 1024, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**args, "num_gpus": head_gpus})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**args)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()
