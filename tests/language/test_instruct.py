"""Landmarks from maze maps and from the store, and `armfarm instruct` end to end: parse, ground,
run a goal-conditioned policy through the landmarks in order, with and without waypoints."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.datasets import build_dataset
from armfarm.goals.landmarks import Landmark, load_landmark_file, maze_landmarks, save_landmark_file
from armfarm.goals.space import GoalSpace
from armfarm.language.instruct import available_landmarks, follow_instruction
from armfarm.language.parse import InstructionError
from armfarm.policy import NumpyPolicy

ENV = "pointmaze-medium-v0"


def test_a_maze_names_its_corners_centre_and_dead_ends_from_its_map():
    maze = np.array([[1, 1, 1, 1, 1, 1, 1],
                     [1, 0, 0, 0, 1, 0, 1],
                     [1, 0, 1, 0, 0, 0, 1],
                     [1, 0, 1, 1, 1, 0, 1],
                     [1, 0, 0, 0, 1, 0, 1],
                     [1, 1, 1, 1, 1, 1, 1]])
    named = {lm.name: lm.cell for lm in maze_landmarks(maze)}
    assert named == {"top-left corner": (1, 1), "top-right corner": (1, 5), "bottom-left corner": (4, 1),
                     "bottom-right corner": (4, 5), "centre of the maze": (2, 3), "dead end at the bottom": (4, 3)}
    comb = np.ones((5, 11), int)
    comb[1, 1:10] = 0
    comb[2:4, 4] = comb[2:4, 6] = 0  # two spurs hanging from a corridor
    named = {lm.name: lm.cell for lm in maze_landmarks(comb)}
    assert named == {"top-left corner": (1, 1), "top-right corner": (1, 9), "centre of the maze": (1, 5),
                     "first dead end at the bottom": (3, 4), "second dead end at the bottom": (3, 6)}


def test_landmark_files_round_trip_and_refuse_bad_content(tmp_path):
    path = tmp_path / "landmarks.json"
    assert load_landmark_file(path) == []
    marks = [Landmark("the charger", goal=(1.0, 2.0), source="user")]
    save_landmark_file(path, marks)
    assert load_landmark_file(path) == marks
    with pytest.raises(ValueError, match="unique"):
        save_landmark_file(path, marks * 2)
    path.write_text('{"name": "x"}')
    with pytest.raises(ValueError, match="not a landmark file"):
        load_landmark_file(path)
    with pytest.raises(ValueError, match="finite"):
        Landmark("bad", goal=(float("nan"), 0.0))
    with pytest.raises(ValueError, match="not both or neither"):
        Landmark("both", cell=(1, 1), goal=(0.0, 0.0))


def straight_line_policy(gain: float) -> NumpyPolicy:
    """a = tanh(gain (g - s)) on the point maze's [x, y, gx, gy]: a known controller for open ground."""
    weights = gain * np.array([[-1, 0], [0, -1], [1, 0], [0, 1]], np.float32)
    return NumpyPolicy([weights], [np.zeros(2, np.float32)],
                       metadata={"algo": "straight-line", "goal": GoalSpace(2, (0, 1), None, 0.0).to_json()})


def test_the_robot_visits_the_landmarks_in_order_and_reports_which_it_reached():
    # the maze's top-left block of four cells is open, so a straight-line controller reaches across it
    spot = Landmark("the charging spot", goal=(4.0, 4.0), source="user")  # cell (2, 2); (1, 1) is at xy (0, 0)
    landmarks = available_landmarks(ENV, [spot])
    text = "go to the charging spot, then back to the upper left corner"
    report = follow_instruction(straight_line_policy(2.0), ENV, text, landmarks=landmarks, start="top-left corner",
                                steps_per_landmark=150)
    assert [(r["phrase"], r["name"]) for r in report["landmarks"]] == [
        ("charging spot", "the charging spot"), ("upper left corner", "top-left corner")]
    assert all(r["reached"] for r in report["landmarks"]) and report["success"]
    assert all(0 < r["steps"] < 150 for r in report["landmarks"])
    assert len(report["path"]) == 1 + sum(r["steps"] for r in report["landmarks"])
    assert np.linalg.norm(np.array(report["path"][-1]) - report["landmarks"][-1]["goal_xy"]) <= 1.0
    away = follow_instruction(straight_line_policy(-2.0), ENV, text, landmarks=landmarks, start="top-left corner",
                              steps_per_landmark=150)
    assert not any(r["reached"] for r in away["landmarks"]) and not away["success"]
    with pytest.raises(InstructionError, match="closest"):
        follow_instruction(straight_line_policy(2.0), ENV, "go to the kitchen", landmarks=landmarks)
    with pytest.raises(InstructionError, match="--start"):
        follow_instruction(straight_line_policy(2.0), ENV, text, landmarks=landmarks, start="the charging spot")


@pytest.mark.slow
def test_instruct_runs_end_to_end_on_a_small_maze_dataset(tmp_path):
    build_dataset("pointmaze-medium-navigate", tmp_path / "store", size=3000, seed=0)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "gciql", str(tmp_path / "store"), "--out", str(tmp_path / "run"),
                                  "--steps", "200", "--set", "hidden=32,32", "--set", "batch_size=64"])
    assert trained.exit_code == 0, trained.output

    listed = runner.invoke(app, ["instruct", "--env", ENV, "--landmarks", "--json"])
    assert listed.exit_code == 0, listed.output
    names = [lm["name"] for lm in json.loads(listed.stdout)["landmarks"]]
    assert "top-left corner" in names and "centre of the maze" in names

    marks = tmp_path / "marks.json"
    added = runner.invoke(app, ["instruct", "--env", ENV, "--add-landmark", "the charger", "--landmark-file", str(marks),
                                "--store", str(tmp_path / "store"), "--episode", _first_episode(tmp_path / "store"),
                                "--step", "10"])
    assert added.exit_code == 0, added.output
    again = runner.invoke(app, ["instruct", "--env", ENV, "--add-landmark", "the charger", "--landmark-file", str(marks),
                                "--store", str(tmp_path / "store"), "--episode", _first_episode(tmp_path / "store")])
    assert again.exit_code == 2 and "unique" in again.output

    for plan in ("--no-plan", "--plan"):
        result = runner.invoke(app, ["instruct", str(tmp_path / "run"), "go to the upper left corner, then the middle "
                                     "of the maze, after that the charger", "--env", ENV, "--landmark-file", str(marks),
                                     "--steps-per-landmark", "20", plan, "--json", "--plot", str(tmp_path / f"{plan}.png")])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert [r["name"] for r in report["landmarks"]] == ["top-left corner", "centre of the maze", "the charger"]
        assert [r["phrase"] for r in report["landmarks"]] == ["upper left corner", "middle of the maze", "charger"]
        assert all(isinstance(r["reached"], bool) for r in report["landmarks"])
        assert report["success"] == all(r["reached"] for r in report["landmarks"])
        assert report["planner"] == (plan == "--plan")
        assert (tmp_path / f"{plan}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    unknown = runner.invoke(app, ["instruct", str(tmp_path / "run"), "go to the fridge", "--env", ENV])
    assert unknown.exit_code == 2 and "fridge" in unknown.output and "closest" in unknown.output
    gcbc = runner.invoke(app, ["train", "gcbc", str(tmp_path / "store"), "--out", str(tmp_path / "bc"),
                               "--steps", "50", "--set", "hidden=16"])
    assert gcbc.exit_code == 0, gcbc.output
    refused = runner.invoke(app, ["instruct", str(tmp_path / "bc"), "the centre", "--env", ENV, "--plan"])
    assert refused.exit_code == 2 and "cannot plan" in refused.output


def _first_episode(store) -> str:
    from armfarm.data import EpisodeStore

    return next(iter(EpisodeStore(store).records())).episode_id
