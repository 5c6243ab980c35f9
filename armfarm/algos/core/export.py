"""Exporting a trained actor as a :class:`~armfarm.policy.NumpyPolicy`."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from armfarm import __version__
from armfarm.policy import NumpyPolicy

AgentState = dict[str, Any]


def policy_metadata(algo_name: str, state: AgentState) -> dict[str, Any]:
    return {"algo": algo_name, "step": int(jax.device_get(state["step"])), "armfarm_version": __version__}


def mlp_policy(
    algo_name: str,
    params: list[dict[str, Any]],
    state: AgentState,
    normalize_obs: bool,
    out_slice: int | None = None,
) -> NumpyPolicy:
    """A :class:`NumpyPolicy` from an actor MLP whose output is tanh-squashed into ``[-1, 1]``.

    ``out_slice=n`` keeps the first ``n`` outputs of the last layer (the mean head of a Gaussian actor
    that also outputs log-stds).
    """
    if any("ln_scale" in layer for layer in params):
        raise ValueError(f"{algo_name}: a layer-normalised actor cannot be exported as a NumpyPolicy")
    host = jax.device_get({"params": params, "norm": state["norm"]})
    ws = [np.asarray(layer["w"]) for layer in host["params"]]
    bs = [np.asarray(layer["b"]) for layer in host["params"]]
    if out_slice is not None:
        ws[-1], bs[-1] = ws[-1][:, :out_slice], bs[-1][:out_slice]
    norm = host["norm"]
    return NumpyPolicy(
        ws,
        bs,
        obs_mean=norm["obs_mean"] if normalize_obs else None,
        obs_std=norm["obs_std"] if normalize_obs else None,
        action_low=norm["act_low"],
        action_high=norm["act_high"],
        metadata=policy_metadata(algo_name, state),
    )
