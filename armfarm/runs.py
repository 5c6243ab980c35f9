"""One run directory: its layout, prepare/resume/overwrite, config, metrics, summary and checkpoints.

Offline training (:mod:`armfarm.train`), online training (:mod:`armfarm.online`) and the farm's rounds
all write the same layout::

    RUN_DIR/config.json          what was run: algorithm, full config, data or env, seed, chunking
    RUN_DIR/metrics.csv          training metrics (``train/...``), one row per fused call
    RUN_DIR/eval.csv             evaluation returns over training (``eval/...``)
    RUN_DIR/tb/                  the same metrics as TensorBoard events
    RUN_DIR/checkpoints/step_N/  resumable checkpoints (complete once their meta.json exists)
    RUN_DIR/policy.npz           the final policy, runnable with NumPy alone
    RUN_DIR/summary.json         what came out: steps, speed and the final evaluation

A run is never deleted unasked: :meth:`RunDir.prepare` refuses a directory that holds a run unless the
caller resumes it or overwrites it, and never deletes a directory that is not a run directory.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

from armfarm.algos.core.checkpoints import latest_checkpoint
from armfarm.durable import write_atomic, write_json
from armfarm.evaluate.rollouts import EvalResult

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
POLICY_FILE = "policy.npz"
METRICS_FILE = "metrics.csv"
EVAL_FILE = "eval.csv"


class RunDir:
    """A run directory at ``path`` (see the module docstring for its layout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def policy_path(self) -> Path:
        return self.path / POLICY_FILE

    def checkpoint_dir(self, step: int) -> Path:
        return self.path / "checkpoints" / f"step_{step}"

    def latest_checkpoint(self, required: tuple[str, ...] = ()) -> Path | None:
        """The newest complete checkpoint (see :func:`armfarm.algos.latest_checkpoint`)."""
        return latest_checkpoint(self.path, required)

    def is_run(self) -> bool:
        return (self.path / CONFIG_FILE).is_file()

    def prepare(self, resume: bool, overwrite: bool, required: tuple[str, ...] = ()) -> Path | None:
        """Make the directory ready for a run; return the checkpoint to resume from, or None.

        With ``resume``, the newest complete checkpoint is returned and the directory kept (a run with
        no checkpoint yet starts afresh in it). Otherwise a directory that holds a run is refused,
        unless ``overwrite`` replaces it; a non-empty directory that is not a run is always refused.
        """
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} exists and is not a directory; choose another --out")
        checkpoint = self.latest_checkpoint(required) if resume else None
        if self.path.exists() and any(self.path.iterdir()) and checkpoint is None:
            if not self.is_run():
                raise FileExistsError(f"{self.path} exists and is not an armfarm run directory; choose another --out")
            if not (overwrite or resume):
                raise FileExistsError(
                    f"{self.path} already holds a run; pass --resume to continue it or --overwrite to replace it"
                )
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        return checkpoint

    def write_config(self, config: dict) -> None:
        write_json(self.path / CONFIG_FILE, config)

    def read_config(self) -> dict:
        return json.loads((self.path / CONFIG_FILE).read_text())

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / SUMMARY_FILE, summary)

    def read_summary(self) -> dict | None:
        path = self.path / SUMMARY_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def metrics(self) -> MetricsLog:
        return MetricsLog(self.path)


def eval_block(result: EvalResult) -> dict[str, Any]:
    """The ``eval`` block of a summary."""
    return {"env_id": result.env_id, "episodes": result.episodes, "return_mean": result.return_mean,
            "return_std": result.return_std, "normalized": result.normalized, "cost_mean": result.cost_mean,
            "cost_std": result.cost_std, "normalized_cost": result.normalized_cost}


class MetricsLog:
    """CSV + TensorBoard logging of namespaced metrics (``train/critic_loss``, ``eval/return_mean``)."""

    def __init__(self, run_dir: str | Path):
        from tensorboardX import SummaryWriter

        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(str(self.run_dir / "tb"))

    def _append(self, name: str, row: dict) -> None:
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def train(self, step: int, wall: float, metrics: dict) -> None:
        row = {"step": step, "wall_s": round(wall, 3)}
        row.update({f"train/{k}": float(v) for k, v in sorted(metrics.items())})
        self._append(METRICS_FILE, row)
        for key, value in row.items():
            if key.startswith("train/"):
                self.writer.add_scalar(key, value, step)

    def eval(self, step: int, result: EvalResult, extra: dict | None = None) -> None:
        row = {"step": step, "eval/return_mean": result.return_mean, "eval/return_std": result.return_std,
               "eval/normalized": "" if result.normalized is None else result.normalized, **(extra or {})}
        self._append(EVAL_FILE, row)
        self.writer.add_scalar("eval/return_mean", result.return_mean, step)
        if result.normalized is not None:
            self.writer.add_scalar("eval/normalized", result.normalized, step)

    def drop_after(self, step: int) -> None:
        """Forget the CSV rows logged after ``step``: a run resumed from a checkpoint at ``step`` logs
        them again."""
        for name in (METRICS_FILE, EVAL_FILE):
            path = self.run_dir / name
            if not path.exists():
                continue
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                fields, rows = reader.fieldnames, [r for r in reader if int(r["step"]) <= step]
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
            write_atomic(path, lambda f, text=out.getvalue(): f.write(text.encode()))

    def close(self) -> None:
        self.writer.close()
