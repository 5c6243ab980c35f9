"""Continuous-action learners from images (armfarm.algos.core.pixels): the contract on images, the
encoder's gradient (the value loss's alone, never the actor's), a refusal on state vectors, and a
known answer: TD3+BC points at a dot it can only see, from random data in a real store."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from algo_testlib import PIXEL_NAMES, ArrayDataset, assert_trees_bitwise_equal, small_config

from armfarm.algos import DatasetStats, get_algorithm, load_checkpoint, make_train_fn, save_checkpoint
from armfarm.algos.core.batches import add_batch_columns
from armfarm.algos.core.pixels import encoder_layers_for
from armfarm.algos.td3bc import _pi
from armfarm.nets.conv import encoder_apply
from armfarm.nets.mlp import critic_ensemble_apply
from armfarm.policy import NumpyPolicy

SHAPE = (8, 8, 2)


def pixel_config(name: str, **changes):
    return small_config(get_algorithm(name), hidden=(16,), batch_size=16, encoder_channels=4, **changes)


def image_data(n: int = 256, act_dim: int = 2) -> tuple[ArrayDataset, DatasetStats]:
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8)
    ds = ArrayDataset(observations=obs, actions=rng.uniform(-2, 2, (n, act_dim)).astype(np.float32),
                      rewards=rng.normal(size=n).astype(np.float32), next_observations=np.roll(obs, -1, 0),
                      terminals=(rng.random(n) < 0.1).astype(np.float32))
    d = int(np.prod(SHAPE))
    stats = DatasetStats(obs_dim=d, act_dim=act_dim, obs_mean=np.zeros(d), obs_std=np.ones(d),
                         action_low=[-2] * act_dim, action_high=[2] * act_dim, return_range=4.0, obs_shape=SHAPE)
    return ds, stats


def test_the_learners_that_take_images_include_the_main_continuous_ones():
    assert {"td3bc", "iql", "cql", "bc"} <= set(PIXEL_NAMES)


@pytest.mark.parametrize("name", PIXEL_NAMES)
def test_pixel_contract(name, tmp_path):
    """Fit from images, train every parameter (encoder and networks above it), export a NumPy policy
    that equals the JAX encoder under the learner's actor, round-trip checkpoints and policy files
    bitwise, and refuse malformed batches."""
    algo, config = get_algorithm(name), pixel_config(name)
    ds, stats = image_data()
    add_batch_columns(ds, algo.batch_keys, config)
    rng = np.random.default_rng(1)
    batches = [ds.sample_stacked(rng, 4, 16) for _ in range(3)]
    state0 = algo.init(config, stats, 0)
    fn = make_train_fn(algo, config)
    state, metrics = fn(fn(state0, batches[0])[0], batches[1])
    assert int(state["step"]) == 8 and all(np.isfinite(float(v)) for v in metrics.values())
    assert float(metrics["encoder_grad_norm"]) > 0
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), state0["encoder"]["params"], state["encoder"]["params"])
    assert all(jax.tree.leaves(moved)), "every encoder parameter should train"
    assert not np.array_equal(jax.tree.leaves(state0["actor"]["params"])[0], jax.tree.leaves(state["actor"]["params"])[0])

    policy = algo.export_policy(config, state)
    assert policy.encoder is not None and policy.encoder.input_shape == SHAPE and policy.obs_mean is None
    images = ds.observations[:24]
    actions = policy(images)
    assert actions.shape == (24, 2) and np.all(np.abs(actions) <= 2.0)
    feats = np.asarray(encoder_apply(encoder_layers_for(config, SHAPE), state["encoder"]["params"], images))
    head = NumpyPolicy(policy.weights, policy.biases, action_low=policy.action_low, action_high=policy.action_high)
    np.testing.assert_allclose(actions, head(feats), atol=1e-5)
    np.testing.assert_allclose(policy(images[5]), actions[5], atol=1e-6)

    save_checkpoint(tmp_path / "ckpt", algo.name, config, state, stats, {"k": 1})
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert ckpt.config == config and ckpt.stats.obs_shape == SHAPE
    assert_trees_bitwise_equal(ckpt.state, state)
    assert_trees_bitwise_equal(fn(state, batches[2])[0], fn(ckpt.state, batches[2])[0])
    np.testing.assert_array_equal(NumpyPolicy.load(policy.save(tmp_path / "p.npz"))(images), actions)

    good = batches[0]
    with pytest.raises(ValueError, match="observations"):
        fn(state, {**good, "observations": good["observations"][..., :-1]})
    with pytest.raises(ValueError, match="next_observations"):
        fn(state, {**good, "next_observations": good["next_observations"][:, :, :-1]})
    with pytest.raises(ValueError, match="actions"):
        fn(state, {**good, "actions": good["actions"][..., :1]})


def test_the_encoder_learns_from_the_critic_loss_and_never_from_the_actors():
    """TD3+BC with an actor step every step (policy_freq 1) and no smoothing noise: the encoder's
    gradient is exactly that of the critic's Bellman loss through the encoder (computed here on its
    own), not that of critic + actor loss."""
    algo = get_algorithm("td3bc")
    config = pixel_config("td3bc", policy_freq=1, policy_noise=0.0, shift_pad=0)
    ds, stats = image_data()
    ds = dataclasses.replace(ds, actions=np.clip(ds.actions, -2, 2))
    state = algo.init(config, stats, 3)
    batch = {k: v[0] for k, v in ds.sample_stacked(np.random.default_rng(2), 1, 32).items()}
    _, metrics = jax.jit(lambda s, b: algo.update(config, s, b))(state, batch)

    layers = encoder_layers_for(config, SHAPE)
    obs, next_obs = jnp.asarray(batch["observations"]), jnp.asarray(batch["next_observations"])
    act = jnp.asarray(batch["actions"]) / 2.0  # bounds [-2, 2] -> [-1, 1]
    actor, critic = state["actor"], state["critic"]

    def critic_loss(enc):
        f, f_next = encoder_apply(layers, enc, obs), jax.lax.stop_gradient(encoder_apply(layers, enc, next_obs))
        next_act = jnp.clip(_pi(actor["target"], f_next), -1.0, 1.0)
        y = batch["rewards"] + config.gamma * (1 - batch["terminals"]) * jnp.min(
            critic_ensemble_apply(critic["target"], f_next, next_act), axis=0)
        return jnp.sum(jnp.mean(jnp.square(critic_ensemble_apply(critic["params"], f, act) - y), axis=1))

    def with_actor_loss(enc):
        f = encoder_apply(layers, enc, obs)
        pi = _pi(actor["params"], f)
        q = critic_ensemble_apply(critic["params"], f, pi)[0]
        return critic_loss(enc) - config.alpha / jnp.mean(jnp.abs(jax.lax.stop_gradient(q))) * jnp.mean(q)

    alone = float(optax.global_norm(jax.grad(critic_loss)(state["encoder"]["params"])))
    both = float(optax.global_norm(jax.grad(with_actor_loss)(state["encoder"]["params"])))
    assert float(metrics["encoder_grad_norm"]) == pytest.approx(alone, rel=1e-4)
    assert abs(both - alone) > 1e-3 * alone  # the test could tell the two apart


@pytest.mark.parametrize("changes", [{"encoder": "drq"}, {"frame_stack": 2}])
def test_image_settings_on_state_vectors_are_refused(changes):
    algo = get_algorithm("td3bc")
    stats = DatasetStats(obs_dim=3, act_dim=1, obs_mean=np.zeros(3), obs_std=np.ones(3), action_low=[-1],
                         action_high=[1])
    algo.init(pixel_config("td3bc"), stats, 0)  # the defaults learn from state vectors as before
    with pytest.raises(ValueError, match="state vectors"):
        algo.init(pixel_config("td3bc", **changes), stats, 0)


@pytest.mark.slow
def test_td3bc_points_at_a_dot_it_sees_from_random_data_in_a_store(tmp_path):
    """Random actions in the real DotPoint env (reward -||a - p||, p where the dot is), trained with
    `train` from the store's images and evaluated in the env: TD3+BC nears the optimum 0; BC, which
    copies uniform-random actions, does no better than the blind a = 0 (about -0.75)."""
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.train import train as train_run

    env_id = "armfarm/DotPoint-v0"
    collect(env_id, tmp_path / "store", BehaviorSpec("random"), episodes=2000)
    scores = {}
    for name, lrs in (("td3bc", {"actor_lr": 1e-3, "critic_lr": 1e-3}), ("bc", {"lr": 1e-3})):
        train_run(name, tmp_path / "store", tmp_path / name, steps=1000, config_overrides={
            "batch_size": 64, "hidden": (64, 64), "encoder_channels": 8, "encoder_lr": 1e-3, **lrs})
        policy = NumpyPolicy.load(tmp_path / name / "policy.npz")
        assert policy.encoder is not None and policy.encoder.input_shape == (16, 16, 1)
        scores[name] = evaluate_policy(policy, env_id, episodes=200, seed=5).return_mean
    assert scores["td3bc"] > -0.2, scores
    assert scores["bc"] < -0.6, scores


def test_online_training_refuses_an_image_env_with_a_clear_error(tmp_path):
    from armfarm.online import train_online

    with pytest.raises(ValueError, match=r"\(16, 16, 1\) uint8 images; online training learns from state vectors"):
        train_online("sac", "armfarm/DotPoint-v0", tmp_path / "run", steps=10)


def test_stacked_frames_train_and_the_published_policy_stacks_them_itself(tmp_path):
    """frame_stack=2 on an image store: the sampler stacks frames by index, the encoder takes both, and
    the exported policy, given one frame at a time, stacks the episode's last two itself."""
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.train import train as train_run

    collect("armfarm/DotPoint-v0", tmp_path / "store", BehaviorSpec("random"), episodes=64)
    train_run("iql", tmp_path / "store", tmp_path / "run", steps=20, steps_per_call=10, config_overrides={
        "batch_size": 16, "hidden": (16,), "encoder_channels": 4, "frame_stack": 2})
    policy = NumpyPolicy.load(tmp_path / "run" / "policy.npz")
    assert policy.frame_stack == 2 and policy.encoder.input_shape == (16, 16, 2)
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    policy.reset()
    policy(frames[0])  # the first frame stands in for the missing one before it
    second = policy(frames[1])
    np.testing.assert_allclose(second, policy(np.concatenate([frames[0], frames[1]], axis=-1)), atol=1e-6)
