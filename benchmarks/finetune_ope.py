"""Fine-tuning and off-policy evaluation on Hopper, in one run, at a budget that fits 2 CPU cores.

    .venv/bin/python benchmarks/finetune_ope.py [--behavior-steps 20000] [--offline-steps 5000]
        [--online-steps 5000] [--fqe-steps 5000] [--eval-episodes 5] [--out benchmarks/_out/finetune_ope]

1. **Data.** SAC learns Hopper-v5 online for ``--behavior-steps``; its whole replay buffer becomes a store
   (a short "medium-replay": every policy from random to the last), and its checkpoints are policies of
   rising quality.
2. **OPE.** FQE (``armfarm ope``) estimates, on that store, the value of at least 8 policies: the SAC
   checkpoints, BC and IQL trained on the store, and a random-weight network; each is also run for
   ``--eval-episodes`` episodes. Spearman and regret@1 as DOPE defines them.
3. **Fine-tuning.** ``calql``, ``cql`` and ``iql`` train offline for ``--offline-steps`` on the store, then
   ``armfarm finetune`` runs ``--online-steps`` environment steps with mix 0.5; SAC learns from scratch
   for the same number of steps. Returns before and after, on the same evaluation seeds.

Writes ``OUT/result.json`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--behavior-steps", type=int, default=20_000)
    p.add_argument("--offline-steps", type=int, default=5_000)
    p.add_argument("--online-steps", type=int, default=5_000)
    p.add_argument("--fqe-steps", type=int, default=5_000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "_out" / "finetune_ope")
    args = p.parse_args(argv)

    from armfarm.data import Episode, EpisodeStore, StoreSpec
    from armfarm.envs.registry import make_env
    from armfarm.evaluate.ope import off_policy_evaluation
    from armfarm.online import ReplayBuffer, finetune, train_online
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    out, env_id = args.out, "Hopper-v5"
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "timings_s": {}}

    def timed(name, fn):
        t0 = time.perf_counter()
        value = fn()
        result["timings_s"][name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {result['timings_s'][name]} s", file=sys.stderr, flush=True)
        return value

    behavior = out / "behavior"
    n = args.behavior_steps
    timed("behavior_sac", lambda: train_online("sac", env_id, behavior, steps=n, start_steps=min(5000, n // 4),
                                              eval_every=n, eval_episodes=args.eval_episodes,
                                              checkpoint_every=n // 5, overwrite=True))
    store_path = out / "store"
    if not (store_path / "store.json").exists():
        env = make_env(env_id)
        store = EpisodeStore(store_path, create=True, spec=StoreSpec.from_gymnasium(env.observation_space,
                                                                                    env.action_space))
        episodes = ReplayBuffer.load(behavior / "replay.npz").episodes()
        store.write([Episode(e["observations"], e["actions"], e["rewards"], e["terminated"], e["truncated"],
                             env_id=env_id, policy_id="sac-replay") for e in episodes])
    result["store"] = {"episodes": EpisodeStore(store_path).num_episodes}

    # --- offline runs (they are also OPE candidates and fine-tuning starts)
    offline = {}
    for algo in ("bc", "iql", "calql", "cql"):
        run = out / f"offline_{algo}"
        offline[algo] = timed(f"offline_{algo}", lambda algo=algo, run=run: train(
            algo, store_path, run, steps=args.offline_steps, env_id=env_id, eval_episodes=args.eval_episodes,
            overwrite=True))

    # --- OPE over >= 8 policies of different quality
    rng = np.random.default_rng(0)
    random_policy = out / "random_policy.npz"
    NumpyPolicy([rng.normal(0, 0.5, (11, 64)), rng.normal(0, 0.5, (64, 3))], [np.zeros(64), np.zeros(3)],
                action_low=-np.ones(3), action_high=np.ones(3)).save(random_policy)
    checkpoints = sorted((behavior / "checkpoints").glob("step_*"), key=lambda d: int(d.name.split("_")[1]))
    candidates = [*checkpoints, *(out / f"offline_{a}" for a in ("bc", "iql", "calql", "cql")), random_policy]
    ope = timed("ope", lambda: off_policy_evaluation(store_path, candidates, env_id=env_id, steps=args.fqe_steps,
                                                     eval_episodes=args.eval_episodes))
    result["ope"] = ope.to_json()

    # --- fine-tuning against SAC from scratch, same online budget
    tuned = {}
    for algo in ("iql", "calql", "cql"):
        tuned[algo] = timed(f"finetune_{algo}", lambda algo=algo: finetune(
            out / f"offline_{algo}", env_id, out / f"finetune_{algo}", steps=args.online_steps, mix=0.5,
            eval_every=args.online_steps, eval_episodes=args.eval_episodes, overwrite=True))
    scratch = timed("sac_scratch", lambda: train_online(
        "sac", env_id, out / "sac_scratch", steps=args.online_steps, start_steps=min(1000, args.online_steps // 5),
        eval_every=args.online_steps, eval_episodes=args.eval_episodes, overwrite=True))
    result["finetune"] = {a: {k: s[k] for k in ("return_before", "return_after", "regret", "env_steps", "seconds")}
                          for a, s in tuned.items()}
    result["sac_scratch"] = {"return_after": scratch["eval"]["return_mean"], "env_steps": scratch["env_steps"],
                             "seconds": scratch["seconds"]}
    (out / "result.json").write_text(json.dumps(result, indent=1))

    print("| policy | FQE estimate | true return |\n|---|---|---|")
    for row in ope.policies:
        print(f"| {Path(row['run_dir']).name} | {row['estimate']:.1f} | {row['true_return']:.1f} ± {row['true_return_std']:.1f} |")
    print(f"\nSpearman {ope.spearman:.3f}, regret@1 {ope.regret_at_1:.3f}\n")
    print("| start | return before | return after | seconds |\n|---|---|---|---|")
    for algo, s in result["finetune"].items():
        print(f"| {algo} (offline {args.offline_steps}) | {s['return_before']:.1f} | {s['return_after']:.1f} | {s['seconds']:.0f} |")
    print(f"| SAC from scratch | - | {result['sac_scratch']['return_after']:.1f} | {result['sac_scratch']['seconds']:.0f} |")


if __name__ == "__main__":
    main()
