"""EDAC and SAC-N: the ensemble disagrees away from the data, and EDAC's term diversifies its gradients."""

import jax.numpy as jnp
import numpy as np
from algo_testlib import ArrayDataset, small_config, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.edac import gradient_similarity
from armfarm.nets.mlp import critic_ensemble_apply


def test_ensemble_disagreement_grows_away_from_the_data_and_edac_decorrelates_action_gradients():
    rng = np.random.default_rng(0)
    n = 4000
    obs = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    act = np.clip(0.3 * obs[:, :1] + rng.normal(0, 0.05, (n, 1)), -1, 1).astype(np.float32)  # a narrow band
    rewards = (1 - (act[:, 0] - 0.3 * obs[:, 0]) ** 2).astype(np.float32)
    ds = ArrayDataset(obs, act, rewards, rng.uniform(-1, 1, (n, 2)).astype(np.float32), np.zeros(n, np.float32),
                      episode_returns=np.array([1.0]))
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    o, a = jnp.asarray(obs[:512]), jnp.asarray(act[:512])
    similarity = {}
    for name in ("edac", "sacn"):
        algo = get_algorithm(name)
        config = small_config(algo, hidden=(64, 64), gamma=0.9, num_critics=4)
        state, _ = train(algo, config, stats, ds, steps=2000)
        critics = state["critic"]["params"]

        def spread(actions, critics=critics):
            return float(jnp.mean(jnp.std(critic_ensemble_apply(critics, o, actions), axis=0)))

        far = (spread(jnp.full((512, 1), 0.95)) + spread(jnp.full((512, 1), -0.95))) / 2
        assert far > 3 * spread(a), (name, far, spread(a))
        similarity[name] = float(gradient_similarity(critics, o, a))
    assert similarity["edac"] < similarity["sacn"] - 0.1, similarity  # what eta * L_ES minimises


def test_gradient_similarity_is_n_for_identical_critics_and_minus_n_for_an_opposed_pair():
    import jax

    from armfarm.nets.mlp import init_critic_ensemble

    one = init_critic_ensemble(0, 1, 3, 2, (8,))
    same = jax.tree.map(lambda leaf: jnp.repeat(leaf, 4, axis=0), one)
    obs, act = jnp.ones((5, 3)), jnp.zeros((5, 2))
    assert abs(float(gradient_similarity(same, obs, act)) - 4.0) < 1e-5
    # Q_2 = -Q_1: opposite gradients, cosine -1 for both ordered pairs, over N - 1 = 1: -2 = -N
    opposed = jax.tree.map(lambda leaf: jnp.concatenate([leaf, leaf]), one)
    opposed[-1]["w"] = opposed[-1]["w"].at[1].multiply(-1.0)
    assert abs(float(gradient_similarity(opposed, obs, act)) + 2.0) < 1e-5
