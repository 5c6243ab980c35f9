"""The robot-side image policy: armfarm's NumPy pass (im2col) against the same network exported to ONNX
and run by onnxruntime, the other way a policy could run without JAX.

    .venv/bin/pip install onnx onnxruntime        # benchmark-only; armfarm itself never imports them
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/policy_onnx.py [--calls 300] [--threads 1]

For each image size (64x64x3, 32x32x3 and MinAtar's 10x10x4) a ``td3bc`` policy with the DrQ encoder
(32 channels) is exported as armfarm publishes it (``NumpyPolicy``), and the same weights are written as
an ONNX graph (Cast, Mul 1/255, Transpose to NCHW, Conv with the SAME pads armfarm uses, Relu, Transpose
back and Flatten in armfarm's NHWC order, Gemm, LayerNormalization, Tanh, the MLP, the rescale to the
action bounds). Both get the same 64 random images: the largest difference is reported (it must be
within 1e-5), then the median and p95 time of one action for one image over ``--calls`` calls, with
onnxruntime held to ``--threads`` intra-op threads and NumPy's BLAS to ``OPENBLAS_NUM_THREADS`` (a
robot's controller has a core, not the machine).
Only the DrQ encoder is exported here (no pools or residual blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpumeter import cores, cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAPES = {"64x64x3": (64, 64, 3), "32x32x3": (32, 32, 3), "10x10x4": (10, 10, 4)}


def numpy_policy(shape):
    from armfarm.algos import DatasetStats, get_algorithm

    algo = get_algorithm("td3bc")
    d = int(np.prod(shape))
    stats = DatasetStats(obs_dim=d, act_dim=6, obs_mean=np.zeros(d), obs_std=np.ones(d), action_low=[-2.0] * 6,
                         action_high=[1.0] * 6, obs_shape=shape)
    config = algo.config_cls()
    return algo.export_policy(config, algo.init(config, stats, 0))


def onnx_model(policy):
    """The ONNX graph of ``policy`` (a NumpyPolicy with a DrQ encoder stage and a tanh output)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from armfarm.encoders import NORM_EPS, same_padding

    shape = policy.encoder.input_shape
    nodes, inits, count = [], [], [0]

    def const(array, name=None):
        count[0] += 1
        name = name or f"c{count[0]}"
        inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(op, inputs, **attrs):
        count[0] += 1
        out = f"t{count[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    x = node("Cast", ["image"], to=TensorProto.FLOAT)
    h, w = shape[0], shape[1]
    x = node("Transpose", [x], perm=[0, 3, 1, 2])
    for layer, p in zip(policy.encoder.layers, policy.encoder.params, strict=True):
        op = layer["op"]
        if op == "rescale":
            x = node("Mul", [x, const(layer["factor"])])
        elif op == "conv":
            k, s = int(layer["kernel"]), int(layer["stride"])
            (top, bottom), (left, right) = same_padding(h, k, s), same_padding(w, k, s)
            x = node("Conv", [x, const(np.transpose(p["w"], (3, 2, 0, 1))), const(p["b"])], kernel_shape=[k, k],
                     strides=[s, s], pads=[top, left, bottom, right])
            h, w = -(-h // s), -(-w // s)
        elif op == "relu":
            x = node("Relu", [x])
        elif op == "flatten":
            x = node("Flatten", [node("Transpose", [x], perm=[0, 2, 3, 1])], axis=1)  # armfarm's NHWC order
        elif op == "dense":
            x = node("Gemm", [x, const(p["w"]), const(p["b"])])
        elif op == "layernorm":
            x = node("LayerNormalization", [x, const(p["scale"]), const(p["offset"])], axis=-1, epsilon=NORM_EPS)
        elif op == "tanh":
            x = node("Tanh", [x])
        else:
            raise ValueError(f"this benchmark exports the DrQ encoder only, not {op!r}")
    for i, (wi, bi) in enumerate(zip(policy.weights, policy.biases, strict=True)):
        x = node("Gemm", [x, const(wi), const(bi)])
        x = node("Relu" if i < len(policy.weights) - 1 else "Tanh", [x])
    half = 0.5 * (policy.action_high - policy.action_low)
    x = node("Add", [node("Mul", [x, const(half)]), const(policy.action_low + half)])
    nodes[-1].output[0] = "action"
    graph = helper.make_graph(nodes, "armfarm_policy",
                              [helper.make_tensor_value_info("image", TensorProto.UINT8, [None, *shape])],
                              [helper.make_tensor_value_info("action", TensorProto.FLOAT, [None, policy.act_dim])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def timed(fn, image, calls: int) -> dict:
    fn(image)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * statistics.median(times), "p95_ms": 1e3 * float(np.quantile(times, 0.95))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results" / "policy_onnx.json")
    args = p.parse_args(argv)
    import onnxruntime as ort

    rows = []
    for name, shape in SHAPES.items():
        policy = numpy_policy(shape)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(onnx_model(policy).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        images = np.random.default_rng(0).integers(0, 256, (64, *shape), dtype=np.uint8)
        ours = policy(images)
        theirs = session.run(["action"], {"image": images})[0]
        diff = float(np.max(np.abs(ours - theirs)))
        one = images[:1]
        rows.append({"images": name, "max_abs_diff": diff,
                     "numpy": timed(policy, one, args.calls),
                     "onnxruntime": timed(lambda x, s=session: s.run(["action"], {"image": x}), one, args.calls)})
        print(f"{name}: max |numpy - onnx| = {diff:.2e}", file=sys.stderr, flush=True)
    report = {"cpu": cpu_model(), "cores": cores(), "onnxruntime": ort.__version__, "threads": args.threads,
              "numpy_blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
              "calls": args.calls, "rows": rows}
    print(f"\n{cpu_model()}; onnxruntime {ort.__version__} on {args.threads} thread(s); td3bc, DrQ encoder")
    print("| images | max abs diff | NumPy median ms | NumPy p95 | onnxruntime median ms | onnxruntime p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['images']} | {r['max_abs_diff']:.1e} | {r['numpy']['median_ms']:.2f} | {r['numpy']['p95_ms']:.2f} | "
              f"{r['onnxruntime']['median_ms']:.2f} | {r['onnxruntime']['p95_ms']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(r["max_abs_diff"] <= 1e-5 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
