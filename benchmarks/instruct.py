"""Instruction following in an OGBench maze: grounding accuracy of paraphrased landmark phrases, and
per-landmark and whole-instruction success of a trained goal-conditioned policy, with and without
waypoint planning.

    .venv/bin/python benchmarks/instruct.py RUN_DIR [--env pointmaze-medium-v0] [--instructions 30] [--seed 0]

Instructions come from templates ("go to X, then Y", "first X; after that Y", ...) filled with
paraphrases that differ from the maze's landmark names ("upper left corner" for "top-left corner");
each starts at a random landmark and visits two or three others. Grounding is also scored without the
direction-word vocabulary (``canonicalise=False``), and unknown places are checked to be refused.
Results go to benchmarks/results/instruct.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Paraphrases per landmark name: none is the name itself, and most use other words for its directions.
PARAPHRASES = {
    "top-left corner": ["the upper left corner", "the top left", "the north-west corner", "the corner at the top left",
                        "the top left spot"],
    "top-right corner": ["the upper right corner", "the north-east corner", "the top right",
                         "the corner at the upper right", "the top right nook"],
    "bottom-left corner": ["the lower left corner", "the south-west corner", "the bottom left",
                           "the corner at the lower left", "the bottom left spot"],
    "bottom-right corner": ["the lower right corner", "the south-east corner", "the far lower right corner",
                            "the corner at the bottom right", "the lower right nook"],
    "centre of the maze": ["the middle of the maze", "the center", "the maze centre", "the heart of the maze",
                           "the central point"],
    "dead end at the bottom right": ["the dead end in the lower right", "the cul-de-sac at the bottom right",
                                     "the south-east dead end", "the blind alley at the lower right",
                                     "the bottom right dead-end corridor"],
}
UNKNOWN = ["the kitchen", "the fridge", "the red door", "the garage", "a staircase", "the charging dock"]
TEMPLATES = [  # paraphrases bring their own article, if any
    "go to {0}, then {1}",
    "head to {0} and then go to {1}",
    "first visit {0}; after that, {1}",
    "drive over to {0}, then to {1}, then {2}",
    "go to {0}. after that go to {1}. finally return to {2}",
    "make your way to {0}, next {1}",
]


def make_instructions(n: int, names: list[str], rng: np.random.Generator) -> list[dict]:
    out = []
    for k in range(n):
        template = TEMPLATES[k % len(TEMPLATES)]
        count = template.count("{")
        route = list(rng.choice(len(names), size=count + 1, replace=False))
        start, visits = names[route[0]], [names[i] for i in route[1:]]
        phrases = [PARAPHRASES[v][int(rng.integers(len(PARAPHRASES[v])))] for v in visits]
        out.append({"text": template.format(*phrases), "start": start, "intended": visits})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--env", default="pointmaze-medium-v0")
    p.add_argument("--instructions", type=int, default=30)
    p.add_argument("--steps-per-landmark", type=int, default=1000)
    p.add_argument("--nodes", type=int, default=300)
    p.add_argument("--max-edge", type=float, default=None, help="default: the planner's, log 0.9 / log gamma")
    p.add_argument("--reach", type=float, default=None, help="default: the planner's, max_edge / 4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "instruct.json")
    args = p.parse_args(argv)

    from armfarm.goals.planner import WaypointPlanner
    from armfarm.language.encoder import default_encoder
    from armfarm.language.ground import ground
    from armfarm.language.instruct import available_landmarks, follow_instruction
    from armfarm.language.parse import InstructionError, landmark_phrases
    from armfarm.policy import NumpyPolicy

    t0 = time.perf_counter()
    encoder = default_encoder()
    load_s = time.perf_counter() - t0
    landmarks = available_landmarks(args.env)
    names = [lm.name for lm in landmarks]
    missing = [n for n in names if n not in PARAPHRASES]
    if missing:
        raise SystemExit(f"no paraphrases for {missing}; this benchmark's templates cover pointmaze-medium")
    instructions = make_instructions(args.instructions, names, np.random.default_rng(args.seed))

    grounding = {}
    for canonicalise in (True, False):
        right = total = 0
        for ins in instructions:
            try:
                got = [g.name for g in ground(landmark_phrases(ins["text"]), names, encoder, canonicalise=canonicalise)]
            except InstructionError:
                got = []
            right += sum(a == b for a, b in zip(got, ins["intended"], strict=False))
            total += len(ins["intended"])
        grounding["with_direction_vocabulary" if canonicalise else "encoder_only"] = {
            "correct": right, "phrases": total, "accuracy": right / total}
    refused = 0
    for phrase in UNKNOWN:
        try:
            ground([phrase], names, encoder)
        except InstructionError:
            refused += 1

    policy = NumpyPolicy.load(args.run_dir / "policy.npz")
    t0 = time.perf_counter()
    planner = WaypointPlanner.from_run(args.run_dir, num_nodes=args.nodes, max_edge=args.max_edge, reach=args.reach,
                                       seed=args.seed)
    graph_s = time.perf_counter() - t0
    modes = {}
    for mode, plan in (("direct", None), ("waypoints", planner)):
        rows, t0 = [], time.perf_counter()
        for k, ins in enumerate(instructions):
            try:
                report = follow_instruction(policy, args.env, ins["text"], landmarks=landmarks, encoder=encoder,
                                            planner=plan, start=ins["start"], seed=args.seed + k,
                                            steps_per_landmark=args.steps_per_landmark)
            except InstructionError as e:
                rows.append({"text": ins["text"], "refused": str(e), "intended": ins["intended"], "success": False,
                             "landmarks": []})
                continue
            report.pop("path")
            rows.append({"text": ins["text"], "start": ins["start"], "intended": ins["intended"], **report})
        legs = [leg for r in rows for leg in r["landmarks"]]
        per_landmark: dict[str, list[bool]] = {}
        for leg in legs:
            per_landmark.setdefault(leg["name"], []).append(leg["reached"])
        as_meant = [r["success"] and [leg["name"] for leg in r["landmarks"]] == r["intended"] for r in rows]
        modes[mode] = {
            "instruction_success": float(np.mean([r["success"] for r in rows])),
            "intended_success": float(np.mean(as_meant)),
            "landmark_success": float(np.mean([leg["reached"] for leg in legs])) if legs else 0.0,
            "per_landmark": {n: {"reached": int(sum(v)), "visits": len(v)} for n, v in sorted(per_landmark.items())},
            "seconds": round(time.perf_counter() - t0, 1),
            "instructions": rows,
        }
        print(f"{mode}: instructions {modes[mode]['instruction_success']:.0%} "
              f"(as meant {modes[mode]['intended_success']:.0%}), "
              f"landmarks {modes[mode]['landmark_success']:.0%}", file=sys.stderr)

    report = {"command": " ".join(["python", "benchmarks/instruct.py", *(argv or sys.argv[1:])]),
              "run": json.loads((args.run_dir / "config.json").read_text()) | {"path": str(args.run_dir)},
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "encoder_load_s": round(load_s, 2), "graph_build_s": round(graph_s, 1), "graph_edges": planner.num_edges,
              "max_edge": planner.max_edge, "reach": planner.reach,
              "grounding": grounding, "unknown_refused": {"refused": refused, "phrases": len(UNKNOWN)}, "modes": modes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({"grounding": grounding, "unknown_refused": report["unknown_refused"],
                      **{m: {k: v for k, v in r.items() if k != "instructions"} for m, r in modes.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
