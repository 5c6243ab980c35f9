"""Small datasets, toy environments and helpers shared by the tests in tests/algos."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from armfarm.algos import DatasetStats, algorithms, make_train_fn
from armfarm.algos.core.batches import add_batch_columns

# every registered algorithm is tested: no list to update when one is added
# those `armfarm train` learns from a store; the goal-conditioned ones have their own tests (test_goal_algorithms.py)
# continuous-action learners here; the discrete-action ones have theirs (test_discrete.py)
ALGO_NAMES = tuple(n for n, a in algorithms("offline").items() if not a.goal_conditioned and not a.discrete)
CONTRACT_NAMES = tuple(n for n, a in algorithms().items()
                       if a.export_policy is not None and not a.goal_conditioned and not a.discrete)
DISCRETE_NAMES = tuple(n for n, a in algorithms().items() if a.discrete)
PIXEL_NAMES = tuple(n for n, a in algorithms().items() if a.images and not a.discrete)  # continuous, from images
GOAL_NAMES = tuple(n for n, a in algorithms().items() if a.goal_conditioned)
_SMALL = {"num_samples": 4, "num_critics": 4}  # sampled actions and ensemble members, at most


def small_config(algo, hidden=(32, 32), **changes):
    """``algo``'s default config with small networks (every ``hidden*`` field), at most a few sampled
    actions and critics, a batch of at most 256, and ``changes`` for the fields it has."""
    fields = {f.name for f in dataclasses.fields(algo.config_cls)}
    default = algo.config_cls()
    values = {name: hidden for name in fields if name.startswith("hidden")}
    values.update({name: min(cap, getattr(default, name)) for name, cap in _SMALL.items() if name in fields})
    if "batch_size" in fields:
        values["batch_size"] = min(256, default.batch_size)
    values.update({k: v for k, v in changes.items() if k in fields})
    return dataclasses.replace(default, **values)


# tiny networks so every test compiles and runs in seconds on 2 CPU cores
TINY_CONFIGS = {name: small_config(algo) for name, algo in algorithms().items()}


@dataclasses.dataclass
class ArrayDataset:
    """The slice of the ``TransitionDataset`` interface the learners use."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    episode_returns: np.ndarray | None = None
    obs_keys: list[str] | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.rewards)

    def sample_stacked(self, rng: np.random.Generator, num_batches: int, batch_size: int) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, (num_batches, batch_size))
        return {
            "observations": self.observations[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_observations": self.next_observations[idx],
            "terminals": self.terminals[idx],
            **{k: v[idx] for k, v in self.extra.items()},
        }


def random_dataset(n: int = 512, obs_dim: int = 5, act_dim: int = 2, seed: int = 0, scale: float = 1.0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32) * 3 + 1
    act = rng.uniform(-scale, scale, (n, act_dim)).astype(np.float32)
    return ArrayDataset(
        observations=obs,
        actions=act,
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=np.roll(obs, -1, axis=0),
        terminals=(rng.random(n) < 0.05).astype(np.float32),
        episode_returns=rng.normal(size=8) * 10,
    )


def train(algo, config, stats: DatasetStats, ds: ArrayDataset, steps: int, seed: int = 0,
          chunk: int = 250, data_seed: int | None = None):
    """Train ``steps`` updates in chunks of ``chunk`` with batches of ``config.batch_size``."""
    assert steps % chunk == 0
    state = algo.init(config, stats, seed)
    fn = make_train_fn(algo, config)
    add_batch_columns(ds, algo.batch_keys, config)
    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    metrics = None
    for _ in range(steps // chunk):
        state, metrics = fn(state, ds.sample_stacked(rng, chunk, config.batch_size))
    return state, {k: float(v) for k, v in metrics.items()}


def assert_trees_bitwise_equal(a, b) -> None:
    la, ta = jax.tree_util.tree_flatten_with_path(jax.device_get(a))
    lb, tb = jax.tree_util.tree_flatten_with_path(jax.device_get(b))
    assert ta == tb, "tree structures differ"
    for (path, x), (_, y) in zip(la, lb, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, jax.tree_util.keystr(path)
        assert x.tobytes() == y.tobytes(), f"leaf {jax.tree_util.keystr(path)} differs"


# ------------------------------------------------------------------------------------ point env


class PointEnv:
    """A 2-D point that must reach a target: obs = (x, y, target_x, target_y), action in [-2, 2]^2
    moves the point by 0.05 * action, reward = -distance to the target, 20-step episodes."""

    horizon = 20
    action_low = np.array([-2.0, -2.0], np.float32)
    action_high = np.array([2.0, 2.0], np.float32)
    step_size = 0.05

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def reset(self) -> np.ndarray:
        self.pos = self.rng.uniform(-1, 1, 2)
        self.target = self.rng.uniform(-1, 1, 2)
        self.t = 0
        return self._obs()

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.target]).astype(np.float32)

    def step(self, action) -> tuple[np.ndarray, float, bool]:
        a = np.clip(np.asarray(action, np.float64), self.action_low, self.action_high)
        self.pos = self.pos + self.step_size * a
        self.t += 1
        reward = -float(np.linalg.norm(self.pos - self.target))
        return self._obs(), reward, self.t >= self.horizon

    @classmethod
    def expert(cls, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs[..., 2:] - obs[..., :2]) / cls.step_size, cls.action_low, cls.action_high)


def rollout_returns(policy, episodes: int = 30, seed: int = 123) -> np.ndarray:
    """Returns of ``policy(obs) -> action`` over ``episodes`` fixed-seed PointEnv episodes."""
    env = PointEnv(seed)
    out = []
    for _ in range(episodes):
        obs, done, ret = env.reset(), False, 0.0
        while not done:
            obs, r, done = env.step(policy(obs))
            ret += r
        out.append(ret)
    return np.asarray(out)


def point_dataset(episodes: int = 300, seed: int = 0, noise: float = 1.0, random_frac: float = 0.5) -> ArrayDataset:
    """Mixed data: a ``random_frac`` share of uniformly random episodes, the rest a noisy expert."""
    env = PointEnv(seed)
    rng = np.random.default_rng(seed + 1)
    obs_l, act_l, rew_l, next_l, returns = [], [], [], [], []
    for ep in range(episodes):
        obs, done, ret = env.reset(), False, 0.0
        random_ep = ep < random_frac * episodes
        while not done:
            if random_ep:
                a = rng.uniform(env.action_low, env.action_high)
            else:
                a = np.clip(env.expert(obs) + noise * rng.normal(size=2), env.action_low, env.action_high)
            nxt, r, done = env.step(a)
            obs_l.append(obs)
            act_l.append(a)
            rew_l.append(r)
            next_l.append(nxt)
            obs, ret = nxt, ret + r
        returns.append(ret)
    n = len(rew_l)
    return ArrayDataset(
        observations=np.asarray(obs_l, np.float32),
        actions=np.asarray(act_l, np.float32),
        rewards=np.asarray(rew_l, np.float32),
        next_observations=np.asarray(next_l, np.float32),
        terminals=np.zeros(n, np.float32),  # time-limit truncation only: always bootstrap
        episode_returns=np.asarray(returns),
    )


# ------------------------------------------------------------------------------------ shared tester


def check_algorithm(algo, config, tmp_path, obs_dim: int = 5, act_dim: int = 2, K: int = 8) -> None:
    """Behaviour every registered algorithm must have; reusable for new algorithms.

    fit a few fused steps -> metrics finite and parameters moved; export a NumpyPolicy that matches
    the state and respects the action bounds; checkpoint save/load round-trips bitwise (and training
    continues identically); NumpyPolicy.save/load round-trips; bad batches raise clear errors.
    """
    import pytest

    from armfarm.algos import load_checkpoint, save_checkpoint
    from armfarm.policy import NumpyPolicy

    ds = random_dataset(obs_dim=obs_dim, act_dim=act_dim, scale=3.0)
    add_batch_columns(ds, algo.batch_keys, config)
    low, high = np.full(act_dim, -3.0), np.array([3.0, 5.0][:act_dim])
    stats = DatasetStats.from_dataset(ds, action_low=low, action_high=high)
    rng = np.random.default_rng(0)
    B = 32
    batches = [ds.sample_stacked(rng, K, B) for _ in range(3)]

    state0 = algo.init(config, stats, 0)
    fn = make_train_fn(algo, config)
    state, metrics = fn(state0, batches[0])
    state, metrics = fn(state, batches[1])
    assert int(state["step"]) == 2 * K
    assert metrics, "update must report metrics"
    for k, v in metrics.items():
        assert np.shape(v) == (), f"metric {k} is not a scalar"
        assert np.isfinite(float(v)), f"metric {k} = {v} is not finite"
    moved = jax.tree.map(lambda a, b: not np.array_equal(np.asarray(a), np.asarray(b)),
                         state0["actor"]["params"], state["actor"]["params"])
    assert any(jax.tree.leaves(moved)), "actor parameters did not change"

    # ---- exported policy
    policy = algo.export_policy(config, state)
    assert isinstance(policy, NumpyPolicy)
    assert (policy.obs_dim, policy.act_dim) == (obs_dim, act_dim)
    assert policy.metadata["algo"] == algo.name and policy.metadata["step"] == 2 * K
    obs = rng.normal(size=(50, obs_dim)).astype(np.float32) * 10
    acts = policy(obs)
    assert acts.shape == (50, act_dim) and acts.dtype == np.float32
    assert np.all(acts >= low - 1e-5) and np.all(acts <= high + 1e-5)
    np.testing.assert_allclose(policy(obs[3]), acts[3], rtol=1e-5, atol=1e-6)
    assert np.array_equal(policy(obs), acts), "policy must be deterministic"

    # ---- checkpoint round trip
    ckpt_dir = tmp_path / "ckpt"
    save_checkpoint(ckpt_dir, algo.name, config, state, stats, {"epoch": 3, "note": "x"})
    ckpt = load_checkpoint(ckpt_dir)
    assert ckpt.algo_name == algo.name and ckpt.config == config and ckpt.step == 2 * K
    assert ckpt.extra == {"epoch": 3, "note": "x"}
    np.testing.assert_array_equal(ckpt.stats.obs_mean, stats.obs_mean)
    np.testing.assert_array_equal(ckpt.stats.action_high, stats.action_high)
    assert_trees_bitwise_equal(ckpt.state, state)
    cont_a, _ = fn(state, batches[2])
    cont_b, _ = fn(ckpt.state, batches[2])
    assert_trees_bitwise_equal(cont_a, cont_b)
    saved_policy = NumpyPolicy.load(ckpt_dir / "policy.npz")
    np.testing.assert_array_equal(saved_policy(obs), acts)

    # ---- NumpyPolicy file round trip
    path = policy.save(tmp_path / "p.npz")
    loaded = NumpyPolicy.load(path)
    np.testing.assert_array_equal(loaded(obs), acts)
    assert loaded.metadata == policy.metadata

    # ---- clear errors for malformed batches
    good = batches[0]
    with pytest.raises(ValueError, match="observations"):
        fn(state, {**good, "observations": good["observations"][..., :-1]})
    with pytest.raises(ValueError, match="actions"):
        fn(state, {**good, "actions": good["actions"][..., None]})
    with pytest.raises(ValueError, match="rewards"):
        fn(state, {**good, "rewards": good["rewards"][..., None]})
    with pytest.raises(ValueError, match="terminals"):
        fn(state, {k: v for k, v in good.items() if k != "terminals"})
    with pytest.raises(ValueError, match=r"\(K, B"):
        fn(state, {k: v[0] for k, v in good.items()})  # a single batch is not a stack
