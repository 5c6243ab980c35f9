"""Episode validation, specs and DataError."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from episode_factory import make_episode

from armfarm.data import ArraySpec, DataError, Episode, StoreSpec


def test_data_error_names_path_field_and_hint():
    err = DataError("contains NaN", path="/data/x.npz", field="rewards", hint="repair it")
    text = str(err)
    assert "/data/x.npz" in text and "'rewards'" in text and "repair it" in text
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.field, copy.hint, str(copy)) == (err.path, err.field, err.hint, text)


def test_array_spec_canonicalises_floats():
    assert ArraySpec((3,), "float64").dtype == "float32"
    assert ArraySpec((84, 84, 3), "uint8").dtype == "uint8"
    assert ArraySpec([2], "bool").shape == (2,)
    with pytest.raises(DataError, match="complex"):
        ArraySpec((2,), "complex64")


@pytest.mark.parametrize("dict_obs", [False, True])
def test_store_spec_json_round_trip(dict_obs):
    ep = make_episode(np.random.default_rng(0), dict_obs=dict_obs)
    spec = StoreSpec.from_episode(ep)
    assert StoreSpec.from_json(spec.to_json()) == spec
    assert StoreSpec.from_json(spec.to_dict()) == spec
    if dict_obs:
        assert spec.obs_keys == ["achieved_goal", "desired_goal", "observation"]
        assert spec.obs_dim == 3 + 3 + 11


def test_store_spec_from_gymnasium():
    env = gym.make("Hopper-v5")
    spec = StoreSpec.from_gymnasium(env.observation_space, env.action_space)
    assert spec.observation == ArraySpec((11,), "float32")
    assert spec.action.low == [-1.0, -1.0, -1.0] and spec.action.high == [1.0, 1.0, 1.0]
    goal = gym.spaces.Dict(
        {"observation": gym.spaces.Box(-1, 1, (4,)), "desired_goal": gym.spaces.Box(-1, 1, (2,))}
    )
    spec = StoreSpec.from_gymnasium(goal, gym.spaces.Box(-2, 2, (2,)))
    assert spec.obs_keys == ["desired_goal", "observation"] and spec.obs_dim == 6
    spec = StoreSpec.from_gymnasium(goal, gym.spaces.Discrete(3, start=1))
    assert spec.action == ArraySpec((), "int64", low=1, high=3) and spec.action.num_choices == 3
    with pytest.raises(DataError) as info:
        StoreSpec.from_gymnasium(goal, gym.spaces.MultiDiscrete([3, 2]))
    assert info.value.field == "action_space"


def test_valid_episodes_pass():
    rng = np.random.default_rng(0)
    make_episode(rng).validate()
    make_episode(rng, dict_obs=True, end="truncated").validate()
    make_episode(rng, T=1, end="none").validate()
    images = Episode(np.zeros((4, 8, 8, 3), np.uint8), np.zeros((3, 2)), np.zeros(3), [0, 0, 1], [0, 0, 0])
    images.validate()
    assert StoreSpec.from_episode(images).observation == ArraySpec((8, 8, 3), "uint8")
    assert images.length == 3 and images.episode_return == 0.0


def _broken(field, value, dict_obs=False):
    ep = make_episode(np.random.default_rng(1), T=5, dict_obs=dict_obs)
    if field.startswith("observations."):
        ep.observations[field.split(".", 1)[1]] = value
    else:
        setattr(ep, field, value)
    return ep


T = 5
BAD = [
    ("rewards", np.zeros(0, np.float32), "empty"),
    ("observations", np.zeros((T, 11), np.float32), "rows"),
    ("actions", np.zeros((T + 1, 3), np.float32), "rows"),
    ("terminated", np.zeros(T - 1, bool), "rows"),
    ("truncated", np.zeros(T + 2, bool), "rows"),
    ("rewards", np.array([0, 0, np.nan, 0, 0], np.float32), "NaN"),
    ("rewards", np.array([0, 0, 0, np.inf, 0], np.float64), "inf"),
    ("actions", np.full((T, 3), np.nan), "NaN"),
    ("observations", np.full((T + 1, 11), -np.inf), "inf"),
    ("observations", np.array([None] * (T + 1), dtype=object), "object"),
    ("actions", np.array(["a"] * T), "<U1"),
    ("rewards", np.zeros(T, np.complex64), "complex"),
    ("rewards", np.zeros((T, 2), np.float32), "shape"),
    ("terminated", np.array([1, 0, 0, 0, 1]), "before the last step"),
    ("terminated", np.array([0, 0, 0, 0, 2]), "booleans"),
    ("observations", np.full((T + 1, 11), 1e300), "float32"),
    ("seed", 1.5, "int"),
    ("episode_id", "", "non-empty"),
]


@pytest.mark.parametrize(("field", "value", "match"), BAD)
def test_invalid_episodes_name_the_field(field, value, match):
    with pytest.raises(DataError, match=match) as info:
        _broken(field, value).validate(source="robot7.npz")
    assert info.value.field == field
    assert "robot7.npz" in str(info.value) and f"'{field}'" in str(info.value)


def test_invalid_dict_observation_names_the_key():
    bad = np.zeros((T + 1, 3), np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="NaN") as info:
        _broken("observations.desired_goal", bad, dict_obs=True).validate()
    assert info.value.field == "observations.desired_goal"


def test_ragged_observations_are_a_data_error():
    with pytest.raises(DataError) as info:
        Episode([[0.0, 1.0], [0.0]], [[0.0]], [0.0], [True], [False])
    assert info.value.field == "observations"


def test_spec_mismatch_names_the_field():
    rng = np.random.default_rng(0)
    spec = StoreSpec.from_episode(make_episode(rng))
    with pytest.raises(DataError, match=r"\(4,\)") as info:
        make_episode(rng, obs_shape=(4,)).validate(spec)
    assert info.value.field == "observations"
    with pytest.raises(DataError) as info:
        make_episode(rng, act_shape=(2,)).validate(spec)
    assert info.value.field == "actions"
    with pytest.raises(DataError, match="keys") as info:
        make_episode(rng, dict_obs=True).validate(spec)
    ints = make_episode(rng)
    ints.actions = ints.actions.astype(np.int64)
    with pytest.raises(DataError, match="int64") as info:
        ints.validate(spec)
