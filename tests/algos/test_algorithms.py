"""Contract tests run for every registered algorithm (see algo_testlib.check_algorithm)."""

import dataclasses
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from algo_testlib import (
    ALGO_NAMES,
    CONTRACT_NAMES,
    TINY_CONFIGS,
    assert_trees_bitwise_equal,
    check_algorithm,
    random_dataset,
    small_config,
    train,
)

from armfarm.algos import (
    DatasetStats,
    algorithms,
    describe_config,
    get_algorithm,
    load_checkpoint,
    make_train_fn,
    save_checkpoint,
)
from armfarm.algos.core.batches import add_batch_columns


def test_the_registry_finds_every_algorithm_module_and_each_declares_itself():
    registered = algorithms()
    assert {"bc", "cql", "iql", "sac", "td3bc"} <= set(registered)
    assert set(algorithms("online")) >= {"sac"} and "sac" not in algorithms("offline")
    for name, algo in registered.items():
        assert algo.name == name and algo.summary and algo.kind in ("offline", "online", "offline-to-online",
                                                                     "evaluator")
        assert isinstance(algo.config_cls(), algo.config_cls)
        assert all(doc for _, _, _, doc in describe_config(algo.config_cls)), f"{name}: a config field lacks its doc"


def test_unknown_algorithm_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: " + ", ".join(sorted(algorithms()))):
        get_algorithm("ppo")


def test_configs_describe_their_fields_with_defaults():
    rows = {name: (kind, default, doc) for name, kind, default, doc in describe_config(get_algorithm("iql").config_cls)}
    assert rows["expectile"][:2] == ("float", 0.7) and "expectile" in rows["expectile"][2]
    assert [f.name for f in dataclasses.fields(get_algorithm("iql").config_cls)] == list(rows)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_algorithm_contract(name, tmp_path):
    check_algorithm(get_algorithm(name), TINY_CONFIGS[name], tmp_path)


def _stats_and_batches(n_chunks=4, K=8, B=32, algo=None, config=None):
    ds = random_dataset()
    if algo is not None:
        add_batch_columns(ds, algo.batch_keys, config)
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    rng = np.random.default_rng(7)
    return stats, [ds.sample_stacked(rng, K, B) for _ in range(n_chunks)]


@pytest.mark.parametrize("name", ALGO_NAMES)
def test_same_seed_bitwise_identical(name):
    algo, config = get_algorithm(name), TINY_CONFIGS[name]
    stats, batches = _stats_and_batches(algo=algo, config=config)
    fn = make_train_fn(algo, config)
    runs = []
    for seed in (3, 3, 4):
        state = algo.init(config, stats, seed)
        for b in batches:
            state, _ = fn(state, b)
        runs.append(state)
    assert_trees_bitwise_equal(runs[0], runs[1])
    with pytest.raises(AssertionError):
        assert_trees_bitwise_equal(runs[0], runs[2])


@pytest.mark.parametrize("name", ALGO_NAMES)
def test_resume_from_checkpoint_is_bitwise_identical(name, tmp_path):
    """Train N steps in K-chunks; save at N/2, load, continue == uninterrupted run."""
    algo, config = get_algorithm(name), TINY_CONFIGS[name]
    stats, batches = _stats_and_batches(n_chunks=4, algo=algo, config=config)
    fn = make_train_fn(algo, config)
    state = algo.init(config, stats, 11)
    for b in batches:
        state, _ = fn(state, b)

    resumed = algo.init(config, stats, 11)
    for b in batches[:2]:
        resumed, _ = fn(resumed, b)
    save_checkpoint(tmp_path, name, config, resumed, stats, {"chunk": 2})
    del resumed
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.extra == {"chunk": 2}
    resumed = ckpt.state
    for b in batches[2:]:
        resumed, _ = fn(resumed, b)
    assert_trees_bitwise_equal(state, resumed)


def test_resume_in_a_new_process_is_bitwise_identical(tmp_path):
    """Determinism across processes: a fresh interpreter continues a checkpoint to the same bits."""
    algo, config = get_algorithm("td3bc"), TINY_CONFIGS["td3bc"]
    stats, batches = _stats_and_batches(n_chunks=4)
    np.savez(tmp_path / "batches.npz", **{f"{i}_{k}": v for i, b in enumerate(batches) for k, v in b.items()})
    fn = make_train_fn(algo, config)
    state = algo.init(config, stats, 5)
    for b in batches[:2]:
        state, _ = fn(state, b)
    save_checkpoint(tmp_path / "half", "td3bc", config, state, stats)
    for b in batches[2:]:
        state, _ = fn(state, b)

    script = textwrap.dedent(f"""
        import numpy as np
        from armfarm.algos import load_checkpoint, make_train_fn, save_checkpoint, get_algorithm
        z = np.load({str(tmp_path / "batches.npz")!r})
        ck = load_checkpoint({str(tmp_path / "half")!r})
        fn = make_train_fn(get_algorithm(ck.algo_name), ck.config)
        state = ck.state
        for i in (2, 3):
            b = {{k: z[f"{{i}}_{{k}}"] for k in ("observations", "actions", "rewards", "next_observations", "terminals")}}
            state, _ = fn(state, b)
        save_checkpoint({str(tmp_path / "full")!r}, ck.algo_name, ck.config, state, ck.stats)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    assert_trees_bitwise_equal(load_checkpoint(tmp_path / "full").state, state)


def test_cql_lagrange_variant(tmp_path):
    """CQL-Lagrange: contract holds with the extra alpha' state, and alpha' shrinks while the
    conservative gap stays below the threshold target_action_gap."""
    from armfarm.algos.cql import CQLConfig

    config = CQLConfig(hidden=(32, 32), num_samples=4, lagrange=True, target_action_gap=1000.0)
    check_algorithm(get_algorithm("cql"), config, tmp_path)
    stats, batches = _stats_and_batches()
    algo = get_algorithm("cql")
    state = algo.init(config, stats, 0)
    fn = make_train_fn(algo, config)
    for b in batches:
        state, metrics = fn(state, b)
    assert float(metrics["alpha_prime"]) < 1.0
    assert float(metrics["cql_gap"]) * config.cql_alpha < config.target_action_gap


def test_critic_dropout_masks_units_in_training_and_is_off_without_a_key():
    import jax
    import jax.numpy as jnp

    from armfarm.nets.mlp import critic_ensemble_apply, init_critic_ensemble

    one = init_critic_ensemble(0, 1, 4, 2, (64, 64))
    params = jax.tree.map(lambda leaf: jnp.concatenate([leaf, leaf, leaf]), one)  # three identical members
    obs, act = jnp.ones((128, 4)), jnp.zeros((128, 2))
    plain = critic_ensemble_apply(params, obs, act)
    assert jnp.array_equal(plain, critic_ensemble_apply(params, obs, act, 0.5, None))  # evaluation: no dropout
    assert jnp.array_equal(plain, critic_ensemble_apply(params, obs, act, 0.0, jax.random.key(0)))
    dropped = critic_ensemble_apply(params, obs, act, 0.5, jax.random.key(0))
    assert not jnp.allclose(dropped, plain)
    assert not jnp.allclose(dropped[0], dropped[1])  # each member draws its own masks
    again = critic_ensemble_apply(params, obs, act, 0.5, jax.random.key(0))
    assert jnp.array_equal(dropped, again)  # the masks come from the key: a resumed run repeats them


@pytest.mark.parametrize("name", ["rebrac", "edac"])
def test_critic_dropout_trains_deterministically_and_changes_training(name):
    algo = get_algorithm(name)
    ds = random_dataset(n=256, obs_dim=3, act_dim=2)
    stats = DatasetStats.from_dataset(ds)
    with_dropout = small_config(algo, hidden=(16, 16), critic_dropout=0.1, batch_size=32)
    a, _ = train(algo, with_dropout, stats, ds, steps=50, chunk=50)
    b, _ = train(algo, with_dropout, stats, ds, steps=50, chunk=50)
    assert_trees_bitwise_equal(a, b)
    c, _ = train(algo, dataclasses.replace(with_dropout, critic_dropout=0.0), stats, ds, steps=50, chunk=50)
    pairs = zip(jax.tree.leaves(a["critic"]["params"]), jax.tree.leaves(c["critic"]["params"]), strict=True)
    assert not all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)
