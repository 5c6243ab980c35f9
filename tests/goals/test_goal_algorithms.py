"""The goal-conditioned learners: their contract (finite metrics, a NumPy policy on [s, g] that matches
the state, bit-exact resume through `armfarm train`) and a known answer on mixed data."""

import json

import numpy as np
import pytest
from goal_testlib import mixed_dataset, success_rate

from armfarm.algos import DatasetStats, get_algorithm, load_checkpoint, make_train_fn
from armfarm.algos.core.goals import batch_source
from armfarm.data import Episode, EpisodeStore
from armfarm.goals import GoalPolicy
from armfarm.policy import NumpyPolicy
from armfarm.train import train

GOAL_ALGOS = ("gcbc", "gciql", "gcivl", "crl", "hiql")
TINY = {"hidden": (32, 32), "batch_size": 64}


def _learn(name, data, steps, seed=0, **changes):
    algo = get_algorithm(name)
    config, source = batch_source(algo, algo.config_cls(**{**TINY, **changes}), data)
    stats = DatasetStats.from_dataset(data, action_low=-1.0, action_high=1.0)
    state, fn, rng = algo.init(config, stats, seed), make_train_fn(algo, config), np.random.default_rng(seed)
    metrics = {}
    for _ in range(steps // 250):
        state, metrics = fn(state, source.sample_stacked(rng, 250, config.batch_size))
    return algo, config, state, {k: float(v) for k, v in metrics.items()}


@pytest.mark.parametrize("name", GOAL_ALGOS)
def test_goal_algorithms_train_and_export_a_policy_on_state_and_goal(name):
    data = mixed_dataset(episodes=20, length=25)
    algo, config, state, metrics = _learn(name, data, 500)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert config.goal_dims == (0, 1) and config.goal_slot is None
    policy = algo.export_policy(config, state)
    assert policy.obs_dim == 4 and policy.metadata["goal"]["dims"] == [0, 1]
    act = GoalPolicy(policy)
    obs, goal = np.array([0.1, -0.2], np.float32), np.array([0.5, 0.5], np.float32)
    np.testing.assert_array_equal(act(obs, goal), policy(np.concatenate([obs, goal])))
    with pytest.raises(ValueError, match="batch field 'value_goals'"):
        fn = make_train_fn(algo, config)
        good = batch_source(algo, config, data)[1].sample_stacked(np.random.default_rng(0), 2, 8)
        fn(state, {**good, "value_goals": good["value_goals"][..., :1]})


def test_a_plain_policy_is_refused_as_a_goal_policy():
    policy = NumpyPolicy([np.zeros((2, 2))], [np.zeros(2)], metadata={"algo": "bc"})
    with pytest.raises(ValueError, match="not goal-conditioned"):
        GoalPolicy(policy)


@pytest.mark.slow
def test_value_learners_reach_goals_that_gcbc_on_mixed_data_does_not():
    """Mostly random data: GCBC averages random actions on hindsight goals and crawls (about half the
    far goals within the time limit); the value learners (GCIQL, GCIVL, CRL's contrastive critic and
    HIQL's subgoals) pick full speed towards the goal."""
    data = mixed_dataset()
    common = {"hidden": (64, 64), "batch_size": 256, "gamma": 0.9}
    rates = {}
    for name, steps, extra in (("gcbc", 6000, {}), ("gciql", 6000, {}), ("gcivl", 3000, {}),
                               ("crl", 6000, {"latent_dim": 64}), ("hiql", 3000, {"subgoal_steps": 5})):
        algo, config, state, metrics = _learn(name, data, steps, **common, **extra)
        rates[name] = success_rate(GoalPolicy(algo.export_policy(config, state)))
        if name == "crl":  # the critic ranks each row's own future goal first far more often than chance
            assert metrics["categorical_accuracy"] > 10 / common["batch_size"], metrics
            assert metrics["logits_pos"] > metrics["logits_neg"] + 3, metrics
    assert rates["gcbc"] < 0.7, rates
    assert all(rates[n] >= 0.9 for n in ("gciql", "gcivl", "crl", "hiql")), rates


def _store_from(data, path):
    store = EpisodeStore(path, create=True)
    episodes = []
    for e, start in enumerate(data.episode_starts):
        end = data.episode_starts[e + 1] if e + 1 < len(data.episode_starts) else data.size
        obs = np.concatenate([data.observations[start:end], data.next_observations[end - 1:end]])
        n = end - start
        episodes.append(Episode(obs, data.actions[start:end], np.zeros(n, np.float32), np.zeros(n, bool),
                                np.eye(n, dtype=bool)[-1], episode_id=f"ep{e}"))
    store.write(episodes)
    return store


@pytest.mark.parametrize("name", ["gciql", "gcivl", "crl", "hiql"])
def test_training_from_a_store_resumes_bit_for_bit(name, tmp_path):
    _store_from(mixed_dataset(episodes=12, length=20), tmp_path / "store")
    kw = dict(steps=40, steps_per_call=10, checkpoint_every=20, config_overrides=TINY)
    train(name, tmp_path / "store", tmp_path / "full", **kw)
    train(name, tmp_path / "store", tmp_path / "half", **{**kw, "steps": 20})
    train(name, tmp_path / "store", tmp_path / "half", **kw, resume=True)
    a, b = (NumpyPolicy.load(tmp_path / run / "policy.npz") for run in ("full", "half"))
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    ckpt = load_checkpoint(tmp_path / "full" / "checkpoints" / "step_40")
    assert ckpt.config.goal_dims == (0, 1)
    assert json.loads((tmp_path / "full" / "config.json").read_text())["config"]["goal_dims"] == [0, 1]


def test_with_standardised_inputs_the_saved_policy_matches_the_jax_actor(tmp_path):
    from armfarm.algos.core.goals import goal_inputs
    from armfarm.algos.gcbc import actor_mean

    data = mixed_dataset(episodes=10, length=20)
    data.observations *= 5
    data.next_observations *= 5
    algo, config, state, _ = _learn("gcbc", data, 250, normalize_obs=True)
    batch = batch_source(algo, config, data)[1].sample(np.random.default_rng(1), 16)
    want = np.asarray(actor_mean(state["actor"]["params"], goal_inputs(config, state, batch)["actor_in"]))
    policy = NumpyPolicy.load(algo.export_policy(config, state).save(tmp_path / "p.npz"))
    got = policy(np.concatenate([batch["observations"], batch["actor_goals"]], axis=-1))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_saved_hierarchical_policy_matches_hiqls_two_levels_in_jax(tmp_path):
    import jax.numpy as jnp

    from armfarm.algos.core.goals import goal_inputs
    from armfarm.algos.hiql import length_normalize
    from armfarm.nets.mlp import mlp_apply

    data = mixed_dataset(episodes=10, length=20)
    data.observations *= 5
    data.next_observations *= 5
    algo, config, state, _ = _learn("hiql", data, 250, normalize_obs=True, subgoal_steps=3, rep_dim=4)
    batch = batch_source(algo, config, data)[1].sample(np.random.default_rng(1), 16)
    x = goal_inputs(config, state, batch)["actor_in"]
    z = length_normalize(mlp_apply(state["high"]["params"], x))
    want = np.asarray(mlp_apply(state["low"]["params"], jnp.concatenate([x[:, :2], z], axis=-1), final_activation=jnp.tanh))
    policy = NumpyPolicy.load(algo.export_policy(config, state).save(tmp_path / "p.npz"))
    assert policy.subgoal is not None and policy.obs_dim == 4 and policy.subgoal.rep_dim == 4
    got = policy(np.concatenate([batch["observations"], batch["actor_goals"]], axis=-1))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_conservative_negative_actions_push_unseen_actions_to_the_never_reached_value():
    """Actionable Models' negatives: where the data only ever moves one way, GCIQL with negatives values
    the opposite action near Q_min = -1/(1 - gamma) and below the data's own action."""
    import jax.numpy as jnp

    from armfarm.algos.core.goals import goal_inputs
    from armfarm.nets.mlp import critic_ensemble_apply

    data = mixed_dataset(episodes=60, length=20, expert_frac=0.0)
    data.actions[:] = np.clip(0.6 + 0.1 * np.random.default_rng(0).normal(size=data.actions.shape), -1, 1)
    q = {}
    for n in (0, 4):
        algo, config, state, metrics = _learn("gciql", data, 2000, gamma=0.9, negative_actions=n)
        assert np.isfinite(metrics["critic_loss"])
        batch = batch_source(algo, config, data)[1].sample(np.random.default_rng(1), 256)
        x = goal_inputs(config, state, batch)["value_in"]
        q[n] = {a: float(jnp.mean(critic_ensemble_apply(state["critic"]["params"], x, jnp.full((256, 2), a))))
                for a in (0.6, -1.0)}
    floor = -1 / (1 - 0.9)
    assert q[4][-1.0] < q[4][0.6] - 1.0, q
    assert abs(q[4][-1.0] - floor) < abs(q[0][-1.0] - floor) - 1.0, q
