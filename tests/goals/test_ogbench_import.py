"""`armfarm data import ogbench`: OGBench's three dataset layouts, and corrupt files refused by name."""

import numpy as np
import pytest
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.data import DataError, EpisodeStore, TransitionDataset, import_ogbench


def _shipped(lengths=(4, 6, 3), obs_dim=3, seed=0):
    """OGBench's file layout: a row per state, terminals = 1 on each trajectory's last state."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    terminals = np.zeros(n, np.float32)
    terminals[np.cumsum(lengths) - 1] = 1
    return {"observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, 2)).astype(np.float32), "terminals": terminals,
            "qpos": rng.normal(size=(n, 2))}


def _compact(data):
    valids = 1.0 - data["terminals"]
    terminals = np.minimum(data["terminals"] + np.concatenate([data["terminals"][1:], [1.0]]), 1.0)
    return {**data, "terminals": terminals.astype(np.float32), "valids": valids.astype(np.float32)}


def _regular(data):
    keep = data["terminals"] == 0
    next_keep = np.concatenate([[False], keep[:-1]])
    terminals = np.concatenate([data["terminals"][1:], [1.0]])[keep]
    return {"observations": data["observations"][keep], "actions": data["actions"][keep],
            "next_observations": data["observations"][next_keep], "terminals": terminals.astype(np.float32)}


@pytest.mark.parametrize("layout", ["shipped", "compact", "regular"])
def test_every_layout_gives_the_same_episodes(tmp_path, layout):
    base = _shipped()
    arrays = {"shipped": base, "compact": _compact(base), "regular": _regular(base)}[layout]
    np.savez(tmp_path / "d.npz", **arrays)
    report = import_ogbench(tmp_path / "d.npz", tmp_path / "store", env_id="pointmaze-medium-v0")
    assert (report.episodes, report.transitions) == (3, 3 + 5 + 2)
    episodes = list(EpisodeStore(tmp_path / "store").iter_episodes())
    starts = np.concatenate([[0], np.cumsum((4, 6, 3))[:-1]])
    for ep, start, length in zip(episodes, starts, (4, 6, 3), strict=True):
        np.testing.assert_array_equal(ep.observations, base["observations"][start:start + length])
        np.testing.assert_array_equal(ep.actions, base["actions"][start:start + length - 1])
        assert ep.truncated[-1] and not ep.terminated.any() and ep.env_id == "pointmaze-medium-v0"
    data = TransitionDataset.from_store(tmp_path / "store")
    np.testing.assert_array_equal(data.next_observations[0], base["observations"][1])


def _refused(tmp_path, arrays, field):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as info:
        import_ogbench(tmp_path / "bad.npz", tmp_path / "store")
    assert info.value.field == field and "bad.npz" in str(info.value)
    assert not (tmp_path / "store").exists(), "a refused file must not create the store"


def test_corrupt_files_are_refused_naming_the_file_and_the_field(tmp_path):
    base = _shipped()
    _refused(tmp_path, {k: v for k, v in base.items() if k != "actions"}, "actions")
    _refused(tmp_path, {k: v for k, v in base.items() if k != "terminals"}, "terminals")
    _refused(tmp_path, {**base, "actions": base["actions"][:-1]}, "actions")
    nan = base["observations"].copy()
    nan[5, 1] = np.nan
    _refused(tmp_path, {**base, "observations": nan}, "observations")
    _refused(tmp_path, {**base, "terminals": base["terminals"] * 2}, "terminals")
    cut = {**base, "terminals": base["terminals"].copy()}
    cut["terminals"][-1] = 0
    _refused(tmp_path, cut, "terminals")
    regular = _regular(base)
    broken = regular["next_observations"].copy()
    broken[1] += 1.0
    _refused(tmp_path, {**regular, "next_observations": broken}, "next_observations")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="junk.npz"):
        import_ogbench(tmp_path / "junk.npz", tmp_path / "store")


def test_the_cli_imports_an_ogbench_file(tmp_path):
    np.savez(tmp_path / "d.npz", **_shipped())
    result = CliRunner().invoke(app, ["data", "import", "ogbench", str(tmp_path / "d.npz"), str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "imported 3 episodes (10 transitions)" in result.output
    bad = CliRunner().invoke(app, ["data", "import", "ogbench", str(tmp_path / "missing.npz"), str(tmp_path / "t")])
    assert bad.exit_code == 2 and "missing.npz" in bad.output
