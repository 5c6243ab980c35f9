"""Transitions for training: contiguous in-memory arrays, or sampling straight from mapped shards.

Both classes hand out the same batches: a dict with ``observations``, ``actions``, ``rewards``,
``next_observations`` and ``terminals`` (float32; terminals are 0/1). Transition ``i`` of an episode
is ``(o_i, a_i, r_i, o_{i+1}, terminated_i)``, so ``next_observations`` come from the following row
of the shard (the final observation ``o_T`` for the last transition). Dict observations are
flattened by concatenating their keys in sorted order (``obs_keys`` records the order).

* :class:`TransitionDataset` copies a store snapshot into preallocated arrays, one memory-mapped
  shard at a time, so peak memory stays close to the size of the arrays themselves.
* :class:`MemmapSampler` keeps only a per-episode index in memory and gathers each batch from the
  memory-mapped shards, for stores larger than RAM.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from armfarm.data.errors import DataError
from armfarm.data.schema import StoreSpec, check_costs
from armfarm.data.shards import ShardReader
from armfarm.data.store import EpisodeRecord, EpisodeStore

_FLAT = "__flat__"  # key of the whole flattened array among the per-key views in from_store


class _Sampler:
    """Uniform sampling over ``size`` transitions; subclasses gather a batch for given indices."""

    size: int

    def _gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` transitions drawn uniformly with replacement (deterministic given ``rng``)."""
        return self._gather(rng.integers(0, self.size, size=batch_size))

    def sample_stacked(
        self, rng: np.random.Generator, num_batches: int, batch_size: int
    ) -> dict[str, np.ndarray]:
        """``num_batches`` batches at once: each array has shape ``(num_batches, batch_size, ...)``.

        Equivalent in distribution to ``num_batches`` calls of :meth:`sample`, and deterministic
        given ``rng``.
        """
        batch = self._gather(rng.integers(0, self.size, size=num_batches * batch_size))
        return {k: v.reshape(num_batches, batch_size, *v.shape[1:]) for k, v in batch.items()}


def _open_store(path_or_store: EpisodeStore | str | os.PathLike) -> EpisodeStore:
    return path_or_store if isinstance(path_or_store, EpisodeStore) else EpisodeStore(path_or_store)


def _snapshot(store: EpisodeStore, records: Iterable[EpisodeRecord] | None) -> tuple[StoreSpec, list]:
    spec = store.spec
    records = store.snapshot() if records is None else list(records)
    if spec is None or not records:
        raise DataError("the store has no episodes", path=store.path, hint="write or import episodes first")
    return spec, records


def _rows(records: Sequence[EpisodeRecord]) -> np.ndarray:
    """Shard rows of the transitions of ``records``, in order (episode ``e``: offset .. offset+len-1)."""
    lengths = np.array([r.length for r in records], dtype=np.int64)
    offsets = np.array([r.row_offset for r in records], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(offsets - starts, lengths)


def _copy_rows(src: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = src[rows]`` without a temporary when the dtypes agree."""
    src = src.reshape(len(src), *out.shape[1:])
    if src.dtype == out.dtype:
        np.take(src, rows, axis=0, out=out, mode="clip")
    else:
        out[...] = src[rows]


class TransitionDataset(_Sampler):
    """All transitions of a store snapshot as contiguous arrays (float32 unless noted).

    Attributes:
        observations, next_observations: ``(N, obs_dim)``; with ``flatten=False`` their stored
            shape and dtype ``(N, *obs_shape)``, or a dict of such arrays for dict observations.
        actions: ``(N, act_dim)`` (``(N, *act_shape)`` in the stored dtype with ``flatten=False``).
        rewards, terminals, timeouts: ``(N,)``; ``terminals``/``timeouts`` are 0/1 and can only be
            1 on an episode's last transition (``terminated`` / ``truncated``).
        episode_starts: ``(E,)`` int64 index of each episode's first transition.
        episode_returns: ``(E,)`` undiscounted returns.
        costs: ``(N,)`` per-transition costs ``c_i >= 0`` (zeros where the data records none).
        episode_costs: ``(E,)`` undiscounted cost returns.
        obs_keys: sorted keys of dict observations (the flattening order), else ``None``.
        extra: further ``(N, ...)`` columns that batches carry (e.g. ``next_actions``, ``mc_returns``,
            added by :func:`armfarm.algos.core.batches.add_batch_columns`).
    """

    def __init__(
        self,
        observations,
        actions,
        rewards,
        next_observations,
        terminals,
        timeouts,
        episode_starts,
        episode_returns,
        obs_keys=None,
        costs=None,
    ):
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.next_observations = next_observations
        self.terminals = terminals
        self.timeouts = timeouts
        self.episode_starts = episode_starts
        self.episode_returns = episode_returns
        self.obs_keys = obs_keys
        self.costs = np.zeros(len(rewards), np.float32) if costs is None else costs
        self.extra: dict[str, np.ndarray] = {}

    @property
    def episode_costs(self) -> np.ndarray:
        """``(E,)`` undiscounted cost return of each episode."""
        return np.add.reduceat(self.costs.astype(np.float64), self.episode_starts).astype(np.float32)

    def __repr__(self) -> str:
        return (
            f"TransitionDataset(size={self.size}, episodes={len(self.episode_starts)}, obs_dim={self.obs_dim}, "
            f"act_dim={self.act_dim})"
        )

    @property
    def size(self) -> int:
        """Number of transitions ``N``."""
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        """Length of a flattened observation."""
        obs = self.observations
        arrays = obs.values() if isinstance(obs, dict) else [obs]
        return sum(int(np.prod(a.shape[1:])) for a in arrays)

    @property
    def act_dim(self) -> int:
        """Length of a flattened action."""
        return int(np.prod(self.actions.shape[1:]))

    @classmethod
    def from_store(
        cls,
        path_or_store: EpisodeStore | str | os.PathLike,
        flatten: bool = True,
        records: Iterable[EpisodeRecord] | None = None,
    ) -> TransitionDataset:
        """Load a snapshot of a store (or just ``records``, e.g. an earlier snapshot).

        Episodes are ordered by shard, in the order each shard first appears in the records (commit
        order for a snapshot). Each shard is memory-mapped, copied into the preallocated outputs
        and released before the next, so peak memory is the output arrays plus about one shard.
        """
        store = _open_store(path_or_store)
        spec, records = _snapshot(store, records)
        by_shard: dict[str, list[EpisodeRecord]] = {}
        for rec in records:
            by_shard.setdefault(rec.shard, []).append(rec)
        ordered = [rec for group in by_shard.values() for rec in group]
        lengths = np.array([r.length for r in ordered], dtype=np.int64)
        n = int(lengths.sum())

        def obs_buffers() -> dict[str | None, np.ndarray]:
            if flatten:
                flat = np.empty((n, spec.obs_dim), dtype=np.float32)
                views, start = {}, 0
                for key, s in spec.obs_items():
                    views[key] = flat[:, start : start + s.size]
                    start += s.size
                views[_FLAT] = flat
                return views
            return {key: np.empty((n, *s.shape), dtype=s.dtype) for key, s in spec.obs_items()}

        obs, next_obs = obs_buffers(), obs_buffers()
        act_shape = (spec.act_dim,) if flatten else spec.action.shape
        actions = np.empty((n, *act_shape), dtype=np.float32 if flatten else spec.action.dtype)
        rewards, terminals, timeouts, costs = (np.empty(n, dtype=np.float32) for _ in range(4))
        pos = 0
        for shard, group in by_shard.items():
            rows = _rows(group)
            end = pos + len(rows)
            with ShardReader(store.shard_path(shard), spec) as reader:
                if len(rows) and rows[-1] + 1 >= reader.num_rows:
                    raise DataError(
                        f"the index points past the shard's {reader.num_rows} rows",
                        path=reader.path,
                        hint="the store is damaged; check it with armfarm.data.check_store",
                    )
                for key, _ in spec.obs_items():
                    src = reader.observation(key)
                    _copy_rows(src, rows, obs[key][pos:end])
                    _copy_rows(src, rows + 1, next_obs[key][pos:end])
                _copy_rows(reader.action(), rows, actions[pos:end])
                _copy_rows(reader.reward(), rows, rewards[pos:end])
                _copy_rows(reader.cost(), rows, costs[pos:end])
                _copy_rows(reader.flag("terminated"), rows, terminals[pos:end])
                _copy_rows(reader.flag("truncated"), rows, timeouts[pos:end])
            pos = end

        def result(buffers: dict) -> np.ndarray | dict[str, np.ndarray]:
            if flatten:
                return buffers[_FLAT]
            return buffers[None] if spec.obs_keys is None else buffers

        return cls(
            observations=result(obs),
            actions=actions,
            rewards=rewards,
            next_observations=result(next_obs),
            terminals=terminals,
            timeouts=timeouts,
            episode_starts=np.cumsum(lengths) - lengths,
            episode_returns=np.array([r.episode_return for r in ordered], dtype=np.float32),
            obs_keys=spec.obs_keys,
            costs=costs,
        )

    @classmethod
    def from_arrays(
        cls,
        observations,
        actions,
        rewards,
        next_observations,
        terminals,
        timeouts=None,
        episode_starts=None,
        obs_keys: list[str] | None = None,
        costs=None,
    ) -> TransitionDataset:
        """Build a dataset from D4RL-style flat arrays (copied to contiguous float32).

        Without ``episode_starts``, an episode ends at every terminal or timeout (and at the end).
        ``costs`` (the DSRL layout's per-transition costs, ``>= 0``) default to zeros.

        Raises:
            DataError: mismatched lengths, non-finite or negative costs, or malformed ``episode_starts``.
        """
        arrays = {
            "observations": observations,
            "actions": actions,
            "rewards": rewards,
            "next_observations": next_observations,
            "terminals": terminals,
            "timeouts": np.zeros(len(rewards)) if timeouts is None else timeouts,
            "costs": np.zeros(len(rewards)) if costs is None else costs,
        }
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        n = len(arrays["rewards"])
        for name, a in arrays.items():
            if a.ndim < 1 or len(a) != n:
                raise DataError(
                    f"has {len(a) if a.ndim else 0} rows, expected {n} (the length of rewards)",
                    field=name,
                    hint="pass arrays with one row per transition",
                )
            if not np.isfinite(a).all():
                raise DataError("contains NaN or inf", field=name, hint="drop or repair those transitions")
        check_costs(arrays["costs"], None, n)
        for name in ("rewards", "terminals", "timeouts"):
            if arrays[name].ndim != 1:
                raise DataError(
                    f"must be 1-D, got shape {arrays[name].shape}", field=name, hint="pass (N,) arrays"
                )
        if n == 0:
            raise DataError("no transitions", field="rewards", hint="pass at least one transition")
        if episode_starts is None:
            ends = np.flatnonzero((arrays["terminals"] > 0) | (arrays["timeouts"] > 0))
            episode_starts = np.concatenate([[0], ends[ends + 1 < n] + 1])
        episode_starts = np.asarray(episode_starts, dtype=np.int64)
        if (
            episode_starts.ndim != 1
            or not len(episode_starts)
            or episode_starts[0] != 0
            or (np.diff(episode_starts) <= 0).any()
            or episode_starts[-1] >= n
        ):
            raise DataError(
                "must be strictly increasing indices starting at 0 and below N",
                field="episode_starts",
                hint="pass the index of each episode's first transition",
            )
        returns = np.add.reduceat(arrays["rewards"].astype(np.float64), episode_starts).astype(np.float32)
        return cls(episode_starts=episode_starts, episode_returns=returns, obs_keys=obs_keys, **arrays)

    def _gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        def take(a):
            return {k: v[idx] for k, v in a.items()} if isinstance(a, dict) else a[idx]

        return {
            "observations": take(self.observations),
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_observations": take(self.next_observations),
            "terminals": self.terminals[idx],
            **{k: v[idx] for k, v in self.extra.items()},
        }


class MemmapSampler(_Sampler):
    """Uniform transition sampling straight from memory-mapped shards (data larger than RAM).

    Memory use is a few integers per episode plus the pages of the shards that batches touch (page
    cache, which the OS evicts as needed). At most ``max_open_shards`` shards are mapped at once
    (least recently used are closed). Batches match :meth:`TransitionDataset.sample` (flattened
    float32 observations and actions).
    """

    def __init__(
        self,
        store: EpisodeStore,
        spec: StoreSpec,
        records: Sequence[EpisodeRecord],
        max_open_shards: int = 64,
    ):
        self.store = store
        self.spec = spec
        self.obs_keys = spec.obs_keys
        self.max_open_shards = max_open_shards
        self._shard_names = list(dict.fromkeys(r.shard for r in records))
        shard_index = {name: i for i, name in enumerate(self._shard_names)}
        self._episode_shard = np.array([shard_index[r.shard] for r in records], dtype=np.int64)
        self._episode_offset = np.array([r.row_offset for r in records], dtype=np.int64)
        self._episode_length = np.array([r.length for r in records], dtype=np.int64)
        self._episode_terminated = np.array([r.terminated for r in records], dtype=bool)
        self._episode_start = np.cumsum(self._episode_length) - self._episode_length
        self._open: OrderedDict[int, ShardReader] = OrderedDict()

    @classmethod
    def from_store(
        cls,
        path_or_store: EpisodeStore | str | os.PathLike,
        records: Iterable[EpisodeRecord] | None = None,
        max_open_shards: int = 64,
    ) -> MemmapSampler:
        """A sampler over a snapshot of the store (or over ``records``)."""
        store = _open_store(path_or_store)
        spec, records = _snapshot(store, records)
        return cls(store, spec, records, max_open_shards)

    @property
    def size(self) -> int:
        """Number of transitions."""
        return int(self._episode_length.sum())

    @property
    def obs_dim(self) -> int:
        return self.spec.obs_dim

    @property
    def act_dim(self) -> int:
        return self.spec.act_dim

    def _reader(self, shard: int) -> ShardReader:
        if shard in self._open:
            self._open.move_to_end(shard)
        else:
            if len(self._open) >= self.max_open_shards:
                self._open.popitem(last=False)[1].close()
            self._open[shard] = ShardReader(self.store.shard_path(self._shard_names[shard]), self.spec)
        return self._open[shard]

    def close(self) -> None:
        """Unmap all shards (they are mapped again on demand)."""
        while self._open:
            self._open.popitem()[1].close()

    def _gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        episode = np.searchsorted(self._episode_start, idx, side="right") - 1
        step = idx - self._episode_start[episode]
        row = self._episode_offset[episode] + step
        shard = self._episode_shard[episode]
        n = len(idx)
        obs = np.empty((n, self.spec.obs_dim), dtype=np.float32)
        next_obs = np.empty_like(obs)
        actions = np.empty((n, self.spec.act_dim), dtype=np.float32)
        rewards = np.empty(n, dtype=np.float32)
        for s in np.unique(shard):
            members = np.flatnonzero(shard == s)
            rows = row[members]
            reader = self._reader(int(s))
            start = 0
            for key, spec in self.spec.obs_items():
                src = reader.observation(key).reshape(reader.num_rows, spec.size)
                obs[members, start : start + spec.size] = src[rows]
                next_obs[members, start : start + spec.size] = src[rows + 1]
                start += spec.size
            actions[members] = reader.action().reshape(reader.num_rows, -1)[rows]
            rewards[members] = reader.reward()[rows]
        terminals = (step == self._episode_length[episode] - 1) & self._episode_terminated[episode]
        return {
            "observations": obs,
            "actions": actions,
            "rewards": rewards,
            "next_observations": next_obs,
            "terminals": terminals.astype(np.float32),
        }
