"""`armfarm plot`: evaluation curves of several runs in one figure, with clear errors for runs it cannot plot."""

import json

import matplotlib.image as mpimg
import pytest
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.evaluate.plots import read_eval_curve
from armfarm.evaluate.rollouts import EvalResult
from armfarm.runs import MetricsLog

runner = CliRunner()


def fake_run(path, algo, returns, normalized=True, online=False):
    """A run directory as armfarm.runs writes it: config.json and eval.csv (via MetricsLog)."""
    path.mkdir(parents=True)
    config = {"algo": algo, "env": "Hopper-v5"} if online else {"algo": algo, "store": "s", "env": "Hopper-v5"}
    (path / "config.json").write_text(json.dumps(config))
    log = MetricsLog(path)
    for i, r in enumerate(returns):
        log.eval((i + 1) * 1000, EvalResult("Hopper-v5", 2, r, 1.0, r / 30 if normalized else None, [r, r], [9, 9]))
    log.close()
    return path


def test_curves_are_read_back_and_plotted(tmp_path):
    a = fake_run(tmp_path / "a", "iql", [100.0, 300.0, 900.0])
    b = fake_run(tmp_path / "b", "td3bc", [50.0, 60.0])
    curve = read_eval_curve(a)
    assert curve["steps"] == [1000, 2000, 3000] and curve["mean"] == [100.0, 300.0, 900.0]
    assert curve["normalized"] == pytest.approx([100 / 30, 10.0, 30.0]) and curve["label"] == "a (iql)"
    for flags in ([], ["--normalized"]):
        out = tmp_path / f"curves{len(flags)}.png"
        result = runner.invoke(app, ["plot", str(a), str(b), "--out", str(out), *flags])
        assert result.exit_code == 0, result.output
        assert mpimg.imread(out).shape[0] > 100


@pytest.mark.parametrize("case", ["no eval", "not normalised", "mixed axes"])
def test_runs_that_cannot_be_plotted_get_a_clear_error(tmp_path, case):
    good = fake_run(tmp_path / "good", "bc", [1.0, 2.0])
    if case == "no eval":
        (tmp_path / "bad").mkdir()
        args, match = [str(tmp_path / "bad")], "no eval.csv"
    elif case == "not normalised":
        fake_run(tmp_path / "bad", "bc", [1.0], normalized=False)
        args, match = [str(good), str(tmp_path / "bad"), "--normalized"], "no normalised scores"
    else:
        fake_run(tmp_path / "bad", "sac", [1.0], online=True)
        args, match = [str(good), str(tmp_path / "bad")], "online runs"
    result = runner.invoke(app, ["plot", *args, "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and match in " ".join(result.output.split())
    assert not (tmp_path / "x.png").exists()
