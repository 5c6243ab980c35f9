"""CQL vs naive offline SAC on an MDP whose dataset never takes the catastrophic actions.

True MDP: state s ~ U(-1, 1) (i.i.d., irrelevant to the dynamics), action a in [-1, 1].
For a <= 0 the reward is 1 + a and the episode continues; any a > 0 is catastrophic: reward -10 and
the episode ends. The optimal policy plays a = 0 and is worth V* = 1 / (1 - gamma) = 10.
The dataset only holds actions in [-1, -0.2], where the reward rises with the action, so a critic
that extrapolates the trend believes the unseen actions a > 0 are the best.

Naive offline SAC (``cql_alpha = 0``) bootstraps from those unseen actions: its Q there exceeds its
Q on the data and even V*, and its policy plays them. CQL keeps Q at unseen actions below Q on the
dataset's actions and its policy stays inside the data support.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from algo_testlib import ArrayDataset, train

from armfarm.algos import DatasetStats, get_algorithm
from armfarm.algos.cql import CQLConfig
from armfarm.nets.mlp import critic_ensemble_apply

GAMMA = 0.9
V_STAR = 1.0 / (1.0 - GAMMA)
SUPPORT_MAX = -0.2


def _dataset(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    a = rng.uniform(-1, SUPPORT_MAX, (n, 1)).astype(np.float32)
    return ArrayDataset(s, a, 1.0 + a[:, 0], rng.uniform(-1, 1, (n, 1)).astype(np.float32), np.zeros(n, np.float32))


def true_return(policy, episodes=20, horizon=50, seed=0):
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(episodes):
        for t in range(horizon):
            a = float(policy(rng.uniform(-1, 1, 1))[0])
            if a > 0:
                total += -10.0 * GAMMA**t
                break
            total += (1.0 + a) * GAMMA**t
    return total / episodes


def _config(cql_alpha):
    return CQLConfig(hidden=(64, 64), gamma=GAMMA, cql_alpha=cql_alpha, num_samples=4, batch_size=128, tau=0.05,
                     actor_lr=1e-3, alpha_lr=1e-3, critic_lr=1e-3)


@pytest.fixture(scope="module")
def runs():
    ds = _dataset()
    stats = DatasetStats.from_dataset(ds, action_low=[-1.0], action_high=[1.0])
    algo = get_algorithm("cql")
    states = jnp.linspace(-1, 1, 11)[:, None]
    seen = jnp.linspace(-1, SUPPORT_MAX, 9)
    unseen = jnp.linspace(0.2, 1.0, 9)
    out = {}
    for seed in (0, 1):
        for name, alpha in (("naive", 0.0), ("cql", 5.0)):
            config = _config(alpha)
            state, metrics = train(algo, config, stats, ds, steps=1500, seed=seed)

            def q(actions, state=state):
                acts = jnp.broadcast_to(actions[None, :, None], (len(states), len(actions), 1))
                return np.asarray(critic_ensemble_apply(state["critic"]["params"], states, acts).min(0))

            policy = algo.export_policy(config, state)
            out[name, seed] = {
                "q_seen": q(seen), "q_unseen": q(unseen), "actions": policy(np.asarray(states))[:, 0],
                "return": true_return(policy), "metrics": metrics,
            }
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_naive_sac_overestimates_unseen_actions_and_picks_them(runs, seed):
    r = runs["naive", seed]
    assert np.all(np.isfinite(r["q_unseen"]))
    assert r["q_unseen"].mean() > r["q_seen"].max(), "naive Q should rank unseen actions above the data's"
    assert r["q_unseen"].min() > V_STAR, f"naive Q at unseen actions {r['q_unseen'].min():.1f} <= V* {V_STAR}"
    assert np.all(r["actions"] > 0.0), f"naive policy should leave the support: {r['actions']}"
    assert r["return"] < 0, "the naive policy plays catastrophic actions in the true MDP"


@pytest.mark.parametrize("seed", [0, 1])
def test_cql_stays_conservative_and_inside_the_support(runs, seed):
    r = runs["cql", seed]
    # per state: every unseen action is valued below the average dataset action
    assert np.all(r["q_unseen"].max(axis=1) < r["q_seen"].mean(axis=1)), (r["q_unseen"], r["q_seen"])
    assert r["q_unseen"].max() < V_STAR
    assert np.all(r["actions"] <= SUPPORT_MAX + 0.1), f"CQL policy left the data support: {r['actions']}"
    assert r["return"] > 0, "the CQL policy avoids the catastrophic actions"
    assert r["return"] > runs["naive", seed]["return"] + 5
    assert r["metrics"]["cql_gap"] > 0
