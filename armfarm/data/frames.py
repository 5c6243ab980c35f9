"""Transitions of a store of image observations, with frames kept as they are stored (``uint8``).

:class:`FrameSampler` hands out the batches of :class:`~armfarm.data.dataset.TransitionDataset` except
that ``observations`` and ``next_observations`` are images ``(B, H, W, C * k)`` in their stored dtype:
never float (a 64x64x3 frame is 12 KiB as ``uint8`` and 48 KiB as float32), and never stored twice.
Each episode's ``T + 1`` frames are held once; transition ``t`` reads frames ``t`` and ``t + 1``.

* **Frame stacking** (``frame_stack=k``) is done by indexing: the observation of step ``t`` is frames
  ``t-k+1 .. t`` of its episode (the first frame repeated before the episode starts), oldest first,
  concatenated along channels. Nothing is copied into the store.
* **Memory**: with ``in_memory=True`` the frames are copied into one array, shard by shard; with
  ``in_memory=False`` every batch is gathered from the memory-mapped shards, so a dataset larger than
  RAM trains in bounded memory (the page cache holds what batches touch, and the OS evicts it). The
  default chooses memory when the frames take under half of the machine's RAM.

Actions, rewards and flags (a few bytes per step) are always in memory, so the per-column helpers of
:mod:`armfarm.algos.core.batches` (``next_actions``, ``mc_returns``) work on this sampler too.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

from armfarm.data.dataset import _open_store, _Sampler, _snapshot
from armfarm.data.errors import DataError
from armfarm.data.shards import ShardReader
from armfarm.data.store import EpisodeRecord, EpisodeStore

IN_MEMORY_FRACTION = 0.5  # default: frames go to RAM when they take less than this share of it


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


class FrameSampler(_Sampler):
    """Uniform transition sampling over a store of image observations (see the module docstring).

    Attributes:
        obs_shape: ``(H, W, C * frame_stack)``, the shape of one batch observation.
        actions: ``(N, act_dim)`` float32; rewards, terminals, timeouts: ``(N,)``; episode_starts,
            episode_returns: per episode (as :class:`~armfarm.data.dataset.TransitionDataset`'s).
        in_memory: whether the frames were copied to RAM.
    """

    def __init__(self, store: EpisodeStore, records: list[EpisodeRecord], frame_stack: int = 1,
                 in_memory: bool | None = None, max_open_shards: int = 64):
        spec = store.spec
        if spec.obs_keys is not None or not spec.observation.is_image:
            raise DataError(
                f"observations are {spec.to_dict()['observation']}, not uint8 (H, W, C) images",
                path=store.path,
                field="observations",
                hint="FrameSampler reads stores of image observations; use TransitionDataset for state vectors",
            )
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        self.store, self.spec, self.frame_stack = store, spec, int(frame_stack)
        self.obs_keys = None
        self.max_open_shards = max_open_shards
        h, w, c = spec.observation.shape
        self.frame_shape = (h, w, c)
        self.obs_shape = (h, w, c * self.frame_stack)
        by_shard: dict[str, list[EpisodeRecord]] = {}
        for rec in records:
            by_shard.setdefault(rec.shard, []).append(rec)
        ordered = [rec for group in by_shard.values() for rec in group]
        self._shard_names = list(by_shard)
        lengths = np.array([r.length for r in ordered], dtype=np.int64)
        self._length = lengths
        self.episode_starts = np.cumsum(lengths) - lengths
        self.episode_returns = np.array([r.episode_return for r in ordered], dtype=np.float32)
        self._shard = np.repeat(np.arange(len(by_shard)), [len(g) for g in by_shard.values()])
        self._offset = np.array([r.row_offset for r in ordered], dtype=np.int64)  # first frame, in its shard
        n = int(lengths.sum())
        frame_bytes = int(lengths.sum() + len(ordered)) * h * w * c
        self.in_memory = frame_bytes < IN_MEMORY_FRACTION * _physical_memory() if in_memory is None else in_memory
        self.actions = np.empty((n, spec.act_dim), np.float32)
        self.rewards, self.terminals, self.timeouts, self.costs = (np.empty(n, np.float32) for _ in range(4))
        self._base = np.cumsum(lengths + 1) - (lengths + 1)  # first frame of each episode in self._frames
        self._frames = np.empty((int((lengths + 1).sum()), h, w, c), np.uint8) if self.in_memory else None
        self.extra: dict[str, np.ndarray] = {}
        pos, frame_pos = 0, 0
        for name, group in by_shard.items():
            with ShardReader(store.shard_path(name), spec) as reader:
                for rec in group:
                    rows = np.arange(rec.row_offset, rec.row_offset + rec.length)
                    if rows[-1] + 1 >= reader.num_rows:
                        raise DataError(f"the index points past the shard's {reader.num_rows} rows", path=reader.path,
                                        hint="the store is damaged; check it with armfarm.data.check_store")
                    end = pos + rec.length
                    self.actions[pos:end] = reader.action().reshape(reader.num_rows, -1)[rows]
                    self.rewards[pos:end] = reader.reward()[rows]
                    self.costs[pos:end] = reader.cost()[rows]
                    self.terminals[pos:end] = reader.flag("terminated")[rows]
                    self.timeouts[pos:end] = reader.flag("truncated")[rows]
                    if self.in_memory:
                        self._frames[frame_pos:frame_pos + rec.length + 1] = \
                            reader.observation()[rec.row_offset:rec.row_offset + rec.length + 1]
                    pos, frame_pos = end, frame_pos + rec.length + 1
        self._open: OrderedDict[int, ShardReader] = OrderedDict()

    @classmethod
    def from_store(cls, path_or_store: EpisodeStore | str | os.PathLike, frame_stack: int = 1,
                   in_memory: bool | None = None, records: Iterable[EpisodeRecord] | None = None) -> FrameSampler:
        """A sampler over a snapshot of the store (or over ``records``)."""
        store = _open_store(path_or_store)
        _, records = _snapshot(store, records)
        return cls(store, records, frame_stack, in_memory)

    def __repr__(self) -> str:
        where = "in memory" if self.in_memory else "memory-mapped"
        return f"FrameSampler(size={self.size}, episodes={len(self._length)}, obs_shape={self.obs_shape}, {where})"

    @property
    def size(self) -> int:
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

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

    def frame_steps(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(episode, steps)``: each transition's episode and the ``(len(idx), k + 1)`` episode steps of
        the frames it needs (``k`` stacked frames ending at ``t``, then ``t + 1``), clamped at step 0."""
        episode = np.searchsorted(self.episode_starts, idx, side="right") - 1
        t = idx - self.episode_starts[episode]
        steps = np.maximum(t[:, None] + np.arange(-self.frame_stack + 1, 2)[None, :], 0)
        return episode, steps

    def _frames_at(self, episode: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """``(B, k + 1, H, W, C)`` frames of ``episode`` at ``steps``."""
        if self.in_memory:
            return self._frames[self._base[episode][:, None] + steps]
        out = np.empty((*steps.shape, *self.frame_shape), np.uint8)
        shard = self._shard[episode]
        for s in np.unique(shard):
            members = np.flatnonzero(shard == s)
            rows = self._offset[episode[members]][:, None] + steps[members]
            out[members] = self._reader(int(s)).observation()[rows]
        return out

    def _stack(self, frames: np.ndarray) -> np.ndarray:
        """``(B, k, H, W, C)`` -> ``(B, H, W, k * C)``, oldest frame first."""
        b, k, h, w, c = frames.shape
        return np.ascontiguousarray(frames.transpose(0, 2, 3, 1, 4).reshape(b, h, w, k * c))

    def _gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        episode, steps = self.frame_steps(idx)
        frames = self._frames_at(episode, steps)
        return {  # steps are clamped one by one, so frames 1..k are exactly the next step's window
            "observations": self._stack(frames[:, :-1]),
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_observations": self._stack(frames[:, 1:]),
            "terminals": self.terminals[idx],
            **{name: v[idx] for name, v in self.extra.items()},
        }
