"""Cal-QL: calibrated CQL, for offline pre-training that fine-tunes online without an initial collapse.

Nakamoto, Zhai, Singh, Sobol Mark, Ma, Finn, Kumar & Levine 2023, "Cal-QL: Calibrated Offline RL
Pre-Training for Efficient Online Fine-Tuning" (NeurIPS). CQL (:mod:`armfarm.algos.cql`) whose push-down
term is taken on ``max(Q, V_ref)`` at the policy's actions (Eq. 5.1/Alg. 1):

    R(theta) = E_{s~D, a~pi}[ max(Q_theta(s, a), V_ref(s)) ] - E_{(s,a)~D}[ Q_theta(s, a) ]

(in CQL(H)'s log-sum-exp form, with the uniform samples unchanged), so the learned Q is conservative
but never below the reference value of the behaviour policy, ``V_ref(s) = `` the Monte-Carlo discounted
return-to-go of the transition's episode (batch key ``mc_returns``, computed from the store's episodes
with the config's ``gamma``; online transitions get a reference of 0). The rest (critics, SAC actor,
temperature) is CQL's.

Defaults are CQL's except where the Cal-QL reference differs: ``backup_entropy=False`` and
``cql_alpha=5`` (its AntMaze and locomotion setting).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from armfarm.algos import cql
from armfarm.algos.core import sac_core
from armfarm.algos.core.batches import BATCH_KEYS, AgentState
from armfarm.algos.core.contract import Algorithm, register
from armfarm.algos.core.pixels import with_encoder

NAME = "calql"


@dataclasses.dataclass(frozen=True)
class CalQLConfig(cql.CQLConfig):
    """Cal-QL hyperparameters: CQL's, with the Monte-Carlo reference as a floor (Nakamoto et al. 2023)."""


def update(config: CalQLConfig, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
    """One Cal-QL step: CQL's, with the push-down term floored at ``V_ref`` (Nakamoto et al. 2023, Eq. 5.1)."""
    reference = jnp.asarray(batch["mc_returns"], jnp.float32) * state["norm"]["reward_scale"]
    return cql.update(config, state, batch, lower_bound=reference)


export_policy = sac_core.policy_exporter(NAME)  # the deterministic tanh(mean(s))


ALGORITHM = register(with_encoder(Algorithm(NAME, "offline-to-online", CalQLConfig, cql.init, update, export_policy,
                               "Cal-QL: CQL calibrated by the behaviour's Monte-Carlo returns (Nakamoto et al. 2023)",
                               batch_keys=(*BATCH_KEYS, "mc_returns"), finetune={}), ("critic_loss",)))
