"""What the discrete-action learners share: their config, the Q (or logit) network over state vectors
or images, batch preprocessing, the hard target update and the exported argmax policy.

The network is ``head(features(s))`` with one output per action. ``features`` is the identity on
standardised state vectors, or a conv encoder from :mod:`armfarm.nets.conv` on ``uint8`` images
(``encoder``: ``drq`` by default for images, or ``impala``), trained with the rest of the network by
the learner's one loss. Image batches are augmented with DrQ's random shift inside the fused update
(``shift_pad``). Actions are the store's integers ``low .. high`` (a ``Discrete`` space), used as
indices ``a - low``.

Defaults follow MinAtar's DQN (Young & Tian 2019), the testbed these learners are built for: batch 32,
discount 0.99, a target network copied every 1000 steps, step size 2.5e-4 (Adam here, RMSProp there)
and a head of 128 units.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from armfarm.algos.core.batches import AgentState, check_batch
from armfarm.algos.core.config import ConfigBase, param
from armfarm.algos.core.export import policy_metadata
from armfarm.algos.core.params import new_group
from armfarm.algos.core.pixels import EncoderSettings, encoder_layers_for, shift_augment
from armfarm.algos.core.prng import seed_streams
from armfarm.algos.core.stats import DatasetStats, make_norm
from armfarm.nets.conv import as_numpy, encoder_apply, init_encoder
from armfarm.nets.mlp import init_mlp, mlp_apply
from armfarm.policy import EncoderStage, NumpyPolicy


@dataclasses.dataclass(frozen=True)
class DiscreteConfig(EncoderSettings, ConfigBase):
    """Shared hyperparameters of the discrete-action learners (defaults: MinAtar's DQN)."""

    hidden: tuple[int, ...] = param((128,), "hidden layer widths of the head above the features")
    batch_size: int = param(32, "transitions per gradient step")
    lr: float = param(2.5e-4, "Adam step size (the encoder's too)")
    gamma: float = param(0.99, "discount")
    target_update_every: int = param(1000, "gradient steps between copies of the network into its target")
    normalize_obs: bool = param(True, "standardise state-vector observations with the data's mean and std")
    init: str = param("orthogonal", "weight initialiser: torch, lecun or orthogonal")

    def _validate(self) -> None:
        if self.target_update_every < 1:
            raise ValueError("target_update_every must be >= 1")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")


def num_actions(stats: DatasetStats) -> int:
    """The number of discrete actions, from the store's integer action bounds ``low .. high``."""
    low, high = float(stats.action_low[0]), float(stats.action_high[0])
    if stats.act_dim != 1 or low != round(low) or high != round(high):
        raise ValueError(f"a discrete learner needs one integer action with integer bounds (a Discrete space); "
                         f"this data has {stats.act_dim} action dims with bounds {stats.action_low}..{stats.action_high}")
    return int(high - low) + 1


def init_network(config: DiscreteConfig, stats: DatasetStats, seed: int, opt: optax.GradientTransformation,
                 outputs_per_action: int = 1) -> AgentState:
    """The state of a learner with one network ``{"encoder", "head"}`` and a target copy of it; the head
    has ``outputs_per_action`` outputs per action (a distributional head's quantiles), action-major."""
    key, rng = seed_streams(seed)
    layers = encoder_layers_for(config, stats.obs_shape)
    params: dict[str, Any] = {}
    features = stats.obs_dim
    if layers is not None:
        params["encoder"], features = init_encoder(rng, layers, stats.obs_shape, config.init)
    params["head"] = init_mlp(rng, (features, *config.hidden, num_actions(stats) * outputs_per_action), config.init)
    state = {"step": jnp.zeros((), jnp.int32), "key": key, "norm": make_norm(stats),
             "q": new_group(params, opt, target=True)}
    if layers is not None:  # the image shape, which the exported policy's encoder takes
        state["obs_shape"] = jnp.asarray(stats.obs_shape, jnp.int32)
    return state


def apply_network(config: DiscreteConfig, params: dict, obs: jax.Array) -> jax.Array:
    """``(B, num_actions)`` outputs for observations ``(B, obs_dim)`` or images ``(B, H, W, C)``."""
    if "encoder" in params:
        obs = encoder_apply(encoder_layers_for(config, obs.shape[-3:]), params["encoder"], obs)
    return mlp_apply(params["head"], obs)


def prepare(config: DiscreteConfig, state: AgentState, batch: dict) -> tuple[dict, jax.Array]:
    """Check one batch (at trace time), standardise state vectors or shift-augment images (observations
    and next observations independently, as DrQ does), and turn actions into indices. Returns the batch
    and the state's key advanced past the augmentation's draws."""
    norm = state["norm"]
    obs_dim = norm["obs_mean"].shape[0]
    images = np.ndim(batch["observations"]) == 4
    if images and int(np.prod(np.shape(batch["observations"])[1:])) != obs_dim:
        raise ValueError(f"batch images have shape {np.shape(batch['observations'])[1:]}, not the "
                         f"{obs_dim} pixels of the data this learner was built for")
    check_batch(batch, tuple(np.shape(batch["observations"])[1:]) if images else obs_dim, 1)
    obs, next_obs = batch["observations"], batch["next_observations"]
    key = state["key"]
    if images:
        key, obs, next_obs = shift_augment(config, key, obs, next_obs)
    else:
        obs, next_obs = jnp.asarray(obs, jnp.float32), jnp.asarray(next_obs, jnp.float32)
        if config.normalize_obs:
            obs = (obs - norm["obs_mean"]) / norm["obs_std"]
            next_obs = (next_obs - norm["obs_mean"]) / norm["obs_std"]
    actions = jnp.round(jnp.asarray(batch["actions"], jnp.float32)[:, 0] - norm["act_low"][0]).astype(jnp.int32)
    return {"observations": obs, "actions": actions, "rewards": jnp.asarray(batch["rewards"], jnp.float32),
            "next_observations": next_obs, "terminals": jnp.asarray(batch["terminals"], jnp.float32)}, key


def taken(values: jax.Array, actions: jax.Array) -> jax.Array:
    """``values[b, actions[b]]`` for ``values (B, n)``."""
    return jnp.take_along_axis(values, actions[:, None], axis=1)[:, 0]


def copy_target(config: DiscreteConfig, group: dict, step: jax.Array) -> dict:
    """The group with its target replaced by the online parameters every ``target_update_every`` steps
    (Mnih et al. 2015's periodic target network)."""
    due = (step % config.target_update_every) == 0
    target = jax.tree.map(lambda t, o: jnp.where(due, o, t), group["target"], group["params"])
    return {**group, "target": target}


def export_argmax_policy(name: str, config: DiscreteConfig, state: AgentState, params: dict,
                         outputs_per_action: int = 1) -> NumpyPolicy:
    """The deployable greedy policy ``low + argmax_a head(features(s))_a``, run by NumPy alone. With
    ``outputs_per_action = N`` (quantiles), the action's value is the mean of its N outputs; since the
    last layer is linear, that mean is the layer with its weights and biases averaged, so the policy
    keeps one output per action exactly."""
    host = jax.device_get({"params": params, "norm": state["norm"], "obs_shape": state.get("obs_shape")})
    head = host["params"]["head"]
    weights = [np.asarray(layer["w"]) for layer in head]
    biases = [np.asarray(layer["b"]) for layer in head]
    if outputs_per_action > 1:
        weights[-1] = weights[-1].reshape(weights[-1].shape[0], -1, outputs_per_action).mean(axis=-1)
        biases[-1] = biases[-1].reshape(-1, outputs_per_action).mean(axis=-1)
    norm = host["norm"]
    offset = int(round(float(norm["act_low"][0])))
    encoder, obs_mean, obs_std = None, None, None
    if "encoder" in host["params"]:
        input_shape = tuple(int(d) for d in host["obs_shape"])
        encoder = EncoderStage(encoder_layers_for(config, input_shape), as_numpy(host["params"]["encoder"]), input_shape)
    elif config.normalize_obs:
        obs_mean, obs_std = norm["obs_mean"], norm["obs_std"]
    return NumpyPolicy(weights, biases, obs_mean=obs_mean, obs_std=obs_std, encoder=encoder, output="argmax",
                       action_offset=offset, frame_stack=config.frame_stack if encoder is not None else 1,
                       metadata=policy_metadata(name, state))
