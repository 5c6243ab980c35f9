"""Image observations and discrete actions in the data layer: stored as uint8 and int64 byte for
byte, sampled as images (in RAM or memory-mapped, the same batches) with frame stacking by index,
exported to Minari with a Discrete space, and bad discrete actions refused."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from armfarm.data import (
    DataError,
    Episode,
    EpisodeStore,
    FrameSampler,
    StoreSpec,
    export_minari,
    import_minari,
)
from armfarm.data.schema import ArraySpec

SHAPE = (6, 5, 2)


def image_episode(rng, T: int, start: int = 0, n: int = 4, **meta) -> Episode:
    frames = rng.integers(0, 256, (T + 1, *SHAPE), dtype=np.uint8)
    terminated = np.zeros(T, bool)
    terminated[-1] = True
    return Episode(frames, rng.integers(start, start + n, T).astype(np.int64), rng.normal(size=T).astype(np.float32),
                   terminated, np.zeros(T, bool), **meta)


@pytest.fixture
def image_store(tmp_path):
    rng = np.random.default_rng(0)
    spec = StoreSpec.from_gymnasium(gym.spaces.Box(0, 255, SHAPE, np.uint8), gym.spaces.Discrete(4, start=1))
    store = EpisodeStore(tmp_path / "store", create=True, spec=spec)
    episodes = [image_episode(rng, T, start=1) for T in (3, 1, 7, 5)]
    store.write(episodes[:2])
    store.write(episodes[2:])  # two shards
    return store, episodes


def test_discrete_spec_and_images_round_trip_byte_for_byte(image_store):
    store, episodes = image_store
    assert store.spec.action == ArraySpec((), "int64", 1, 4) and store.spec.action.num_choices == 4
    assert store.spec.observation.is_image
    for stored, original in zip(store.iter_episodes(), episodes, strict=True):
        assert stored.observations.dtype == np.uint8 and stored.actions.dtype == np.int64
        assert stored.observations.tobytes() == original.observations.tobytes()
        assert np.array_equal(stored.actions, original.actions)


def test_discrete_actions_outside_the_space_are_refused_and_nothing_is_written(image_store):
    store, _ = image_store
    before = len(store.snapshot())
    bad = image_episode(np.random.default_rng(1), 4, start=1)
    bad.actions[2] = 5
    with pytest.raises(DataError, match="discrete action 5 at step 2 is outside 1..4"):
        store.write([image_episode(np.random.default_rng(2), 3, start=1), bad])
    assert len(store.snapshot()) == before


@pytest.mark.parametrize("frame_stack", [1, 3])
def test_frame_sampler_batches_are_the_stored_frames(image_store, frame_stack):
    store, episodes = image_store
    ram = FrameSampler.from_store(store, frame_stack=frame_stack, in_memory=True)
    mapped = FrameSampler.from_store(store, frame_stack=frame_stack, in_memory=False)
    assert ram.size == mapped.size == sum(e.length for e in episodes) and ram.obs_shape == (6, 5, 2 * frame_stack)
    a, b = ram.sample(np.random.default_rng(3), 64), mapped.sample(np.random.default_rng(3), 64)
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
    assert a["observations"].dtype == np.uint8
    # every transition against the episodes, oldest stacked frame first, repeating frame 0 before the start
    everything = ram._gather(np.arange(ram.size))
    i = 0
    for ep in episodes:
        for t in range(ep.length):
            window = [ep.observations[max(s, 0)] for s in range(t - frame_stack + 1, t + 1)]
            nxt = [ep.observations[max(s, 0)] for s in range(t - frame_stack + 2, t + 2)]
            assert np.array_equal(everything["observations"][i], np.concatenate(window, axis=-1))
            assert np.array_equal(everything["next_observations"][i], np.concatenate(nxt, axis=-1))
            assert everything["actions"][i, 0] == ep.actions[t] and everything["rewards"][i] == ep.rewards[t]
            assert everything["terminals"][i] == float(t == ep.length - 1)
            i += 1
    mapped.close()


def test_frame_sampler_refuses_state_vectors(tmp_path):
    store = EpisodeStore(tmp_path / "s", create=True)
    store.write([Episode(np.zeros((3, 4), np.float32), np.zeros((2, 1), np.float32), np.zeros(2), [0, 1], [0, 0])])
    with pytest.raises(DataError, match="not uint8 \\(H, W, C\\) images"):
        FrameSampler.from_store(store)


def test_minari_export_keeps_the_discrete_space_and_the_images(image_store, tmp_path):
    store, episodes = image_store
    dest = export_minari(store, tmp_path / "export-v0")
    again = EpisodeStore(import_minari(dest, tmp_path / "again").store_path)
    assert again.spec == store.spec
    for a, b in zip(again.iter_episodes(), episodes, strict=True):
        assert a.observations.tobytes() == b.observations.tobytes() and np.array_equal(a.actions, b.actions)
