"""d3rlpy half of the scoreboard (runs inside .venv-d3rlpy, never in the project's .venv).

    .venv-d3rlpy/bin/python benchmarks/_d3rlpy_scores.py DATA.npz --algo cql --seed 0 --steps 5000
        --policy-out POLICY.npz [--threads 2]

Trains one d3rlpy 2.8.1 algorithm with d3rlpy's default hyperparameters (nothing overridden: d3rlpy's
own batch sizes, learning rates, encoders and no observation scaler) on DATA.npz (flat D4RL-style
arrays: observations, actions, rewards, terminals, timeouts) with ``fit(n_steps=STEPS)``, logging and
progress bars off. The deterministic policy d3rlpy's ``predict`` uses, ``tanh(fc(encoder(obs)))``, is
written to POLICY.npz as plain weight matrices, so that the project's venv evaluates it with exactly the
rollout code it uses for armfarm (benchmarks/scores.py). One JSON object on stdout: timings and config.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("npz")
    p.add_argument("--algo", required=True, choices=("bc", "cql", "iql", "td3bc", "awac", "rebrac", "calql"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--policy-out", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # d3rlpy's structlog writes to stdout; keep stdout for the JSON
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import d3rlpy
    from d3rlpy.algos import (
        AWACConfig,
        BCConfig,
        CalQLConfig,
        CQLConfig,
        IQLConfig,
        ReBRACConfig,
        TD3PlusBCConfig,
    )

    started = time.perf_counter()
    d3rlpy.seed(args.seed)
    data = np.load(args.npz)
    dataset = d3rlpy.dataset.MDPDataset(
        observations=np.asarray(data["observations"], np.float32),
        actions=np.asarray(data["actions"], np.float32),
        rewards=np.asarray(data["rewards"], np.float32),
        terminals=np.asarray(data["terminals"], np.float32),
        timeouts=np.asarray(data["timeouts"], np.float32),
        action_space=d3rlpy.ActionSpace.CONTINUOUS,
    )
    config = {"bc": BCConfig, "cql": CQLConfig, "iql": IQLConfig, "td3bc": TD3PlusBCConfig, "awac": AWACConfig,
              "rebrac": ReBRACConfig, "calql": CalQLConfig}[args.algo]()
    if config.observation_scaler is not None or config.action_scaler is not None:
        raise SystemExit("expected d3rlpy's defaults without observation/action scalers")
    algo = config.create(device="cpu:0")
    algo.build_with_dataset(dataset)
    setup_s = time.perf_counter() - started
    tick = time.perf_counter()
    algo.fit(
        dataset,
        n_steps=args.steps,
        n_steps_per_epoch=args.steps,
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
        experiment_name=f"{args.algo}-{args.seed}",
    )
    fit_s = time.perf_counter() - tick

    policy = algo.impl.modules.imitator if args.algo == "bc" else algo.impl.modules.policy
    linears = [m for m in policy._encoder.modules() if isinstance(m, torch.nn.Linear)]
    linears.append(policy._fc if hasattr(policy, "_fc") else policy._mu)
    weights = [m.weight.detach().numpy().T for m in linears]
    biases = [m.bias.detach().numpy() for m in linears]
    probe = dataset.sample_transition_batch(64).observations
    x = probe
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        x = np.maximum(x @ w + b, 0.0)
    if not np.allclose(np.tanh(x @ weights[-1] + biases[-1]), algo.predict(probe), atol=1e-5):
        raise SystemExit(
            "the exported weights do not reproduce d3rlpy's predict(); the policy layout changed"
        )
    np.savez(
        args.policy_out,
        **{f"weight_{i}": w for i, w in enumerate(weights)},
        **{f"bias_{i}": b for i, b in enumerate(biases)},
    )
    real_stdout.write(
        json.dumps(
            {
                "library": "d3rlpy",
                "d3rlpy_version": d3rlpy.__version__,
                "torch_version": torch.__version__,
                "threads": torch.get_num_threads(),
                "algo": args.algo,
                "seed": args.seed,
                "steps": args.steps,
                "batch_size": config.batch_size,
                "setup_s": setup_s,
                "fit_s": fit_s,
                "wall_s": setup_s + fit_s,
                "steps_per_s": args.steps / fit_s,
                "layers": len(linears),
            }
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
