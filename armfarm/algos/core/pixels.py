"""Learning from images: the encoder settings every image learner shares, DrQ's augmentation, and
:func:`with_encoder`, which puts a conv encoder in front of a continuous-action learner built for
state vectors.

The arrangement is DrQ's (Kostrikov et al. 2020, "Image Augmentation Is All You Need", and DrQ-v2,
Yarats et al. 2021): a conv encoder ``f = E(s)`` from :mod:`armfarm.nets.conv` feeds the learner's
networks, which stay the MLPs they are on state vectors. Observations and next observations are
shifted at random (``shift_pad`` pixels, independently). The encoder learns from the learner's value
losses only (the critic's Bellman loss, with CQL's penalty where there is one, and IQL's expectile
loss); the actor sees the features under ``stop_gradient``, so its loss never moves the encoder. Next
observations are encoded by the online encoder under ``stop_gradient`` (DrQ-v2's target). Behaviour
cloning, which has no value loss, trains the encoder with its own loss.

How one step runs: ``f = E(aug(s))`` and ``f' = sg(E(aug(s')))``; the learner's own ``update`` runs on
the batch with ``f, f'`` in place of ``s, s'``; the encoder's gradient is the pullback through ``E`` of
``d L_enc / d f``, where ``L_enc`` is the sum of the loss metrics named at wrapping, as that same
``update`` computes them from the parameters before its step. The learner's code is unchanged, and
the gradient is exact for any learner whose named metrics are its losses before the step.

The exported policy is the learner's MLP policy behind an :class:`~armfarm.policy.EncoderStage`, run
by NumPy alone on the robot, which also stacks ``frame_stack`` frames itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from armfarm.algos.core.batches import AgentState, check_batch
from armfarm.algos.core.config import param
from armfarm.algos.core.contract import Algorithm
from armfarm.algos.core.params import new_group, step_group
from armfarm.algos.core.prng import derived_key, seed_streams, split_key
from armfarm.algos.core.stats import DatasetStats
from armfarm.nets.conv import (
    ENCODERS,
    NORMS,
    as_numpy,
    default_shift_pad,
    encoder_apply,
    encoder_layers,
    init_encoder,
    random_shift,
)
from armfarm.policy import EncoderStage, NumpyPolicy

ENCODER_STATE_KEYS = ("encoder", "obs_shape", "encoder_key")


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """Config fields of a learner that takes images (a mixin placed before ``ConfigBase``)."""

    encoder: str = param("auto", "image encoder: drq, impala, or auto (drq for images; none for state vectors)")
    encoder_channels: int = param(32, "encoder width: drq filters per conv; impala stages (c/2, c, c)")
    encoder_norm: str = param("group", "normalisation in the impala encoder's residual blocks: group, layer, none")
    shift_pad: int = param(-1, "DrQ random-shift padding in pixels; -1: min(H, W) // 21 (4 on 84x84, 0 below 21)")
    frame_stack: int = param(1, "frames stacked along channels by the sampler (image stores)")

    def __post_init__(self) -> None:
        if self.encoder not in ("auto", *ENCODERS):
            raise ValueError(f"encoder must be auto, {', '.join(ENCODERS)}; got {self.encoder!r}")
        if self.encoder_norm not in NORMS:
            raise ValueError(f"encoder_norm must be one of {', '.join(NORMS)}; got {self.encoder_norm!r}")
        if self.frame_stack < 1 or self.encoder_channels < 2:
            raise ValueError("frame_stack must be >= 1 and encoder_channels >= 2")
        super().__post_init__()  # type: ignore[misc]  # ConfigBase's checks


@dataclasses.dataclass(frozen=True)
class SeparateEncoderSettings(EncoderSettings):
    """:class:`EncoderSettings` for a learner whose encoder has an optimiser of its own
    (:func:`with_encoder`)."""

    encoder_lr: float = param(3e-4, "Adam step size of the image encoder (DrQ: the critic's)")


def encoder_layers_for(config: EncoderSettings, obs_shape: tuple[int, ...] | None) -> list[dict] | None:
    """The encoder's layer list for observations of ``obs_shape`` (None for state vectors, which take no
    encoder: asking for one, or for stacked frames, is a ``ValueError``)."""
    if obs_shape is None or len(obs_shape) != 3:
        if config.encoder != "auto" or config.frame_stack != 1:
            raise ValueError(f"encoder={config.encoder}, frame_stack={config.frame_stack} are for image "
                             "observations, but these observations are state vectors")
        return None
    name = "drq" if config.encoder == "auto" else config.encoder
    return encoder_layers(name, config.encoder_channels, config.encoder_norm)


def shift_augment(config: EncoderSettings, raw_key: jax.Array, obs: jax.Array,
                  next_obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """DrQ's random shift of ``(B, H, W, C)`` observations and next observations, drawn independently
    (``shift_pad`` pixels; none on images below 21 pixels by default). Returns the key advanced past
    its draws and the two batches."""
    pad = config.shift_pad if config.shift_pad >= 0 else default_shift_pad(obs.shape[1:3])
    if not pad:
        return raw_key, obs, next_obs
    raw_key, (k1, k2) = split_key(raw_key, 2)
    return raw_key, random_shift(k1, obs, pad), random_shift(k2, next_obs, pad)


def feature_stats(stats: DatasetStats, feature_dim: int) -> DatasetStats:
    """The statistics the wrapped learner sees: ``feature_dim`` features that need no standardising
    (mean 0, std 1), and the data's action bounds and return range."""
    return DatasetStats(obs_dim=feature_dim, act_dim=stats.act_dim, obs_mean=np.zeros(feature_dim),
                        obs_std=np.ones(feature_dim), action_low=stats.action_low, action_high=stats.action_high,
                        return_range=stats.return_range)


def with_encoder(algo: Algorithm, encoder_losses: tuple[str, ...]) -> Algorithm:
    """``algo`` (a continuous-action learner on state vectors, whose config mixes in
    :class:`SeparateEncoderSettings`) made to learn from images too, as the module docstring describes.
    ``encoder_losses`` names the metrics of ``algo.update`` whose sum trains the encoder. On state
    vectors the learner runs exactly as before."""
    if not issubclass(algo.config_cls, SeparateEncoderSettings):
        raise TypeError(f"{algo.name}: with_encoder needs a config that mixes in SeparateEncoderSettings")
    inner_init, inner_update, inner_export = algo.init, algo.update, algo.export_policy

    def init(config: Any, stats: DatasetStats, seed: int) -> AgentState:
        layers = encoder_layers_for(config, stats.obs_shape)
        if layers is None:
            return inner_init(config, stats, seed)
        key, _ = seed_streams(seed)
        params, features = init_encoder(np.random.default_rng([int(seed), 0xE4C]), layers, stats.obs_shape,
                                        config.init)
        return {**inner_init(config, feature_stats(stats, features), seed),
                "encoder": new_group(params, optax.adam(config.encoder_lr)),
                "obs_shape": jnp.asarray(stats.obs_shape, jnp.int32),
                "encoder_key": derived_key(key, 0xE4C)}

    def update(config: Any, state: AgentState, batch: dict) -> tuple[AgentState, dict[str, jax.Array]]:
        if "encoder" not in state:
            return inner_update(config, state, batch)
        shape = tuple(np.shape(batch["observations"])[1:])
        if len(shape) != 3:
            raise ValueError(f"batch field 'observations' has shape {np.shape(batch['observations'])}; this "
                             f"{algo.name} was built for (B, H, W, C) images")
        check_batch(batch, shape, state["norm"]["act_low"].shape[0])
        layers = encoder_layers_for(config, shape)
        key, obs, next_obs = shift_augment(config, state["encoder_key"], batch["observations"],
                                           batch["next_observations"])
        encoder = state["encoder"]
        feats, pullback = jax.vjp(lambda p: encoder_apply(layers, p, obs), encoder["params"])
        next_feats = jax.lax.stop_gradient(encoder_apply(layers, encoder["params"], next_obs))
        inner_state = {k: v for k, v in state.items() if k not in ENCODER_STATE_KEYS}
        featured = {**batch, "observations": feats, "next_observations": next_feats}

        def encoder_loss(f: jax.Array) -> jax.Array:
            """L_enc: the named losses of the learner's update at features ``f`` (see the module docstring)."""
            _, metrics = inner_update(config, inner_state, {**featured, "observations": f})
            return sum(metrics[name] for name in encoder_losses)

        (grads,) = pullback(jax.grad(encoder_loss)(feats))
        new_state, metrics = inner_update(config, inner_state, featured)
        new_state = {**new_state, "encoder": step_group(encoder, grads, optax.adam(config.encoder_lr)),
                     "obs_shape": state["obs_shape"], "encoder_key": key}
        return new_state, {**metrics, "encoder_grad_norm": optax.global_norm(grads)}

    def export_policy(config: Any, state: AgentState) -> NumpyPolicy:
        inner_state = {k: v for k, v in state.items() if k not in ENCODER_STATE_KEYS}
        policy = inner_export(config, inner_state)
        if "encoder" not in state:
            return policy
        shape = tuple(int(d) for d in jax.device_get(state["obs_shape"]))
        stage = EncoderStage(encoder_layers_for(config, shape), as_numpy(state["encoder"]["params"]), shape)
        # the learner's features need no standardising (feature_stats), so its obs_mean/std are the identity
        return NumpyPolicy(policy.weights, policy.biases, action_low=policy.action_low,
                           action_high=policy.action_high, encoder=stage, frame_stack=config.frame_stack,
                           metadata=policy.metadata)

    return dataclasses.replace(algo, init=init, update=update, export_policy=export_policy, images=True)

