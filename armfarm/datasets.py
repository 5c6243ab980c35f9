"""D4RL-style benchmark datasets, built locally with recorded provenance (``armfarm datasets``).

D4RL (Fu et al. 2020, "D4RL: Datasets for Deep Data-Driven Reinforcement Learning") and Minari cannot
be downloaded everywhere, so armfarm rebuilds their recipes. Names follow D4RL's, lower-case; the data
is D4RL-*style*, not D4RL's own (other simulator versions, other behaviour policies, smaller sizes).

Locomotion (Hopper-v5, HalfCheetah-v5, Walker2d-v5)
    ``random``         uniform random actions.
    ``medium``         SAC (:mod:`armfarm.online`) trained until its evaluation return reaches 1/3 of D4RL's
                       expert reference return, then sampled from that (stochastic) policy.
    ``medium-replay``  the whole replay buffer of that SAC run, up to the stopping point.
    ``expert``         SAC trained for its full budget (or until it reaches D4RL's expert reference), sampled.
    ``medium-expert``  half medium, half expert samples.
PointMaze (Gymnasium-Robotics UMaze / Medium / Large, sparse and ``-dense`` rewards)
    D4RL's maze2d recipe: one long continuing run in which Q-iteration on the maze grid gives waypoints,
    a PD controller ``clip(10 (waypoint - pos) - vel, -1, 1)`` drives to them with N(0, 0.5) action noise,
    and a new goal is drawn whenever the current one is reached (the environment's ``continuing_task`` and
    ``reset_target``). The goal is the ``desired_goal`` entry of the observation dict. The run is cut into
    fixed-length episodes (D4RL's maze2d time limits), each marked truncated.

OGBench point mazes (``pointmaze-medium-navigate``, ``pointmaze-large-navigate``, ``pointmaze-medium-stitch``)
    OGBench's recipes (Park et al. 2024, App. D) on its own environments (the ``ogbench`` package, extra
    ``goals``): a noisy oracle heads for the environment's shortest-path subgoal, ``clip(d / ||d|| + N(0,
    0.5^2), -1, 1)``. ``navigate``: 1000-step episodes from a random free cell, with a new goal (a random
    junction, corner or dead end) each time the current one is reached. ``stitch``: 200-step episodes to a
    goal 4 cells away, so that long paths exist only as stitched pieces. Observations are the (x, y)
    position; goals are states, so the data carries no goal and relabeling supplies it.

OGBench manipulation (``cube-single-play``)
    OGBench's ``play`` recipe on ``cube-single-v0``: the package's own scripted plan oracle
    (``CubePlanOracle``, action noise 0.1 smoothed with 0.5) picks up the cube and places it at a random
    target, and gets a new target each time it finishes, through 1000-step episodes. Observations are the
    28-dimensional arm and cube state; goals are states, as for the mazes.

SAC behaviour runs are cached in a behaviour directory and shared: ``hopper-medium`` and
``hopper-medium-replay`` with the same seed come from the same run. A build is deterministic for a seed:
the same recipe, seed and size give the same episodes (ids included; only creation times differ).
Every store records its recipe, seeds, sizes, behaviour policy, checkpoint hash and evaluated return, and
the armfarm version under the ``recipe`` key of its provenance (``armfarm data info``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from armfarm import __version__
from armfarm.actors import Actor, RecordedEpisode, StoreSink
from armfarm.actors.store_sink import FLUSH_TRANSITIONS
from armfarm.data import EpisodeStore
from armfarm.envs.behavior import BehaviorSpec, make_behavior
from armfarm.envs.registry import global_numpy_seed, make_env
from armfarm.evaluate.scores import D4RL_REFERENCE_RETURNS

MAZE_NOISE = 0.5  # D4RL maze2d --noisy
SAC_EVAL_EVERY = 5_000
SAC_CHECKPOINT_EVERY = 10_000  # an interrupted behaviour run resumes from here
SAC_EVAL_EPISODES = 10

LOCOMOTION = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}
# (Gymnasium-Robotics maze, D4RL maze2d max_episode_steps)
MAZES = {"umaze": ("UMaze", 300), "medium": ("Medium", 600), "large": ("Large", 800)}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to build one dataset.

    ``size`` is the default number of transitions (``None`` for ``medium-replay``, whose size is the
    number of environment steps its SAC run took); ``sac_steps`` the default environment-step budget of
    the SAC behaviour run(s); ``build_time`` the build time measured (or estimated, marked "est.") on a
    2-core CPU with the defaults, including the SAC run when it is not cached yet.
    """

    name: str
    env_id: str
    kind: str
    size: int | None
    sac_steps: int | None = None
    episode_length: int | None = None
    build_time: str = ""

    @property
    def family(self) -> str:
        return self.name.split("-")[0]


def _locomotion_recipes() -> list[Recipe]:
    # Hopper measured on 2 shared cores (BENCHMARKS.md): SAC reached 1/3 of expert at 110k env steps in
    # 17.4 min (105 steps/s), sampling 200k steps took 33 s, random 200k steps 94 s. The others are
    # estimates from those rates and typical SAC curves.
    times = {
        "hopper": {"random": "1.5 min", "medium": "18 min (SAC 17.4 min + 33 s)", "medium-replay": "17.4 min (SAC)",
                   "expert": "≈2.7 h (est.: 1M SAC steps)", "medium-expert": "≈3 h (est.)"},
        "halfcheetah": {"medium": "15-30 min (est.)", "medium-replay": "15-30 min (est.)"},
        "walker2d": {"medium": "20-40 min (est.)", "medium-replay": "20-40 min (est.)"},
    }
    estimates = {"random": "1.5 min (est.)", "expert": "≈2.7 h (est.)", "medium-expert": "≈3 h (est.)"}
    recipes = []
    for family, env_id in LOCOMOTION.items():
        for kind, size, sac_steps in (("random", 200_000, None), ("medium", 200_000, 300_000),
                                      ("medium-replay", None, 300_000), ("expert", 200_000, 1_000_000),
                                      ("medium-expert", 400_000, 1_000_000)):
            build_time = times[family].get(kind, estimates.get(kind, ""))
            recipes.append(Recipe(f"{family}-{kind}", env_id, kind, size, sac_steps, build_time=build_time))
    return recipes


def _maze_recipes() -> list[Recipe]:
    recipes = []
    for name, (maze, length) in MAZES.items():
        for suffix, reward in (("", ""), ("-dense", "Dense")):
            recipes.append(Recipe(f"pointmaze-{name}{suffix}", f"PointMaze_{maze}{reward}-v3", "maze2d", 1_000_000,
                                  episode_length=length, build_time="≈4 min (est.: 5k steps/s)"))
    return recipes


OGBENCH_NOISE = 0.5  # OGBench's data_gen_scripts/commands.sh, --noise=0.5 for every point maze
OGBENCH_PLAY_NOISE, OGBENCH_PLAY_SMOOTHING = 0.1, 0.5  # generate_manipspace.py's defaults for play data


def _ogbench_maze_recipes() -> list[Recipe]:
    return [
        Recipe("pointmaze-medium-navigate", "pointmaze-medium-v0", "ogbench-navigate", 1_000_000, episode_length=1000,
               build_time="2.7 min (measured)"),
        Recipe("pointmaze-large-navigate", "pointmaze-large-v0", "ogbench-navigate", 1_000_000, episode_length=1000,
               build_time="3.4 min (measured)"),
        Recipe("pointmaze-medium-stitch", "pointmaze-medium-v0", "ogbench-stitch", 1_000_000, episode_length=200,
               build_time="≈3 min (est.)"),
        Recipe("cube-single-play", "cube-single-v0", "ogbench-play", 1_000_000, episode_length=1000,
               build_time="29 min (measured)"),
    ]


RECIPES: dict[str, Recipe] = {r.name: r for r in _locomotion_recipes() + _maze_recipes() + _ogbench_maze_recipes()}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; `armfarm datasets list` shows the {len(RECIPES)} recipes") from None


def list_recipes() -> list[dict[str, Any]]:
    """One JSON-able row per recipe: name, env, kind, default size, SAC budget, build time."""
    return [{"name": r.name, "env_id": r.env_id, "kind": r.kind, "size": r.size, "sac_steps": r.sac_steps,
             "episode_length": r.episode_length, "build_time": r.build_time} for r in RECIPES.values()]


def default_behavior_root() -> Path:
    """Where SAC behaviour runs are cached: ``$ARMFARM_CACHE/behavior`` (default ``~/.cache/armfarm``)."""
    return Path(os.environ.get("ARMFARM_CACHE", Path.home() / ".cache" / "armfarm")) / "behavior"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ============================================================================ SAC behaviour runs


def sac_target_return(env_id: str, stage: str) -> float:
    """The evaluation return a SAC behaviour run stops at: 1/3 of D4RL's expert reference for ``medium``
    (how D4RL made its medium data), the reference itself for ``expert``."""
    from armfarm.envs.registry import env_family

    expert = D4RL_REFERENCE_RETURNS[env_family(env_id)][1]
    return expert / 3.0 if stage == "medium" else expert


def behavior_run(
    env_id: str,
    stage: str,
    seed: int,
    sac_steps: int,
    run_dir: str | Path | None = None,
    config_overrides: dict | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Path, dict]:
    """The SAC run behind ``stage`` (``medium`` or ``expert``) data: reused from ``run_dir`` when a
    finished run with the same environment, seed, budget, target and config is there, resumed from its
    newest checkpoint when that run was interrupted, else trained. Returns the run directory and its
    summary."""
    from armfarm.online import DEFAULT_START_STEPS, train_online

    target = sac_target_return(env_id, stage)
    if run_dir is None:
        run_dir = default_behavior_root() / f"{env_id}-sac-{stage}-s{seed}-n{sac_steps}"
    run_dir = Path(run_dir)
    overrides = dict(config_overrides or {})
    summary_path, config_path = run_dir / "summary.json", run_dir / "config.json"
    resume = False
    if config_path.exists():
        config = json.loads(config_path.read_text())
        wanted = {"env": env_id, "seed": seed, "steps": sac_steps, "target_return": target}
        same_config = all(config["config"].get(k) == (list(v) if isinstance(v, tuple) else v)
                          for k, v in overrides.items())
        if not (all(config.get(k) == v for k, v in wanted.items()) and same_config):
            raise FileExistsError(f"{run_dir} holds a different SAC run ({ {k: config.get(k) for k in wanted} }); "
                                  "pass another behaviour directory")
        if summary_path.exists():
            return run_dir, json.loads(summary_path.read_text())
        resume = True  # an interrupted run: continue from its newest checkpoint
    progress = (lambda step, _m: on_progress(f"SAC {stage}", step, sac_steps)) if on_progress else None
    summary = train_online("sac", env_id, run_dir, steps=sac_steps, seed=seed, eval_every=SAC_EVAL_EVERY,
                           checkpoint_every=SAC_CHECKPOINT_EVERY, start_steps=min(DEFAULT_START_STEPS, sac_steps // 4),
                           eval_episodes=SAC_EVAL_EPISODES, target_return=target, config_overrides=overrides,
                           resume=resume, on_progress=progress)
    return run_dir, summary


def _checkpoint_dir(run_dir: Path, summary: dict) -> Path:
    """The final checkpoint of a SAC run, found inside ``run_dir`` (wherever the run was started from)."""
    return run_dir / "checkpoints" / Path(summary["checkpoint"]).name


def _behavior_provenance(run_dir: Path, summary: dict) -> dict:
    checkpoint = _checkpoint_dir(run_dir, summary)
    meta = json.loads((checkpoint / "meta.json").read_text())
    return {
        "type": "sac", "run_dir": str(run_dir), "checkpoint": str(checkpoint),
        "checkpoint_sha256": _sha256(checkpoint / meta["state_file"]),
        "policy_sha256": _sha256(checkpoint / "policy.npz"),
        "seed": summary["seed"], "env_steps": summary["env_steps"], "grad_steps": summary["grad_steps"],
        "train_seconds": summary["seconds"], "target_return": summary["target_return"],
        "reached_target": summary["reached_target"], "eval_return_mean": summary["eval"]["return_mean"],
        "eval_return_std": summary["eval"]["return_std"], "eval_normalized": summary["eval"]["normalized"],
        "eval_episodes": summary["eval"]["episodes"],
    }


class _SACBehavior:
    """Samples actions from a SAC checkpoint's stochastic actor (the behaviour of ``medium``/``expert``)."""

    def __init__(self, checkpoint: Path, policy_id: str):
        from armfarm.algos import load_checkpoint
        from armfarm.online import GaussianActor

        restored = load_checkpoint(checkpoint)
        self.actor = GaussianActor.from_state(restored.config, restored.state)
        self.policy_id = policy_id
        self.rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, obs) -> np.ndarray:
        return self.actor.sample(np.asarray(obs, np.float32).reshape(-1), self.rng)


# ============================================================================ builds


class _Writer:
    """Counts what a build adds and reports progress; batching is the :class:`StoreSink`'s."""

    def __init__(self, store: EpisodeStore, on_progress: Callable[[str, int, int], None] | None, total: int):
        self.sink = StoreSink(store, flush_episodes=1 << 30, flush_transitions=FLUSH_TRANSITIONS)
        self.on_progress, self.total = on_progress, total
        self.stage = ""
        self.written = 0
        self.returns: list[float] = []

    def put(self, episode: RecordedEpisode) -> None:
        self.sink.put(episode)
        self.written += episode.length
        self.returns.append(episode.episode_return)
        if self.on_progress is not None:
            self.on_progress(self.stage, self.written, self.total)

    def add(self, arrays: dict, episode_id: str, stage: str, **meta) -> None:
        self.stage = stage
        self.put(RecordedEpisode(arrays, episode_id, **meta))

    def flush(self) -> None:
        self.sink.flush()


def _sample_episodes(writer: _Writer, recipe: Recipe, behavior, transitions: int, seed: int, tag: str) -> None:
    """Episodes of ``behavior`` until ``transitions`` steps; the last one is cut (and marked truncated).
    Episode ``i`` is reset with seed ``seed + i`` and draws its randomness from ``default_rng([seed, i])``."""
    env = make_env(recipe.env_id)
    writer.stage = tag
    actor = Actor(env, behavior, writer, recipe.env_id, collector_id=f"recipe:{recipe.name}", seed=seed,
                  episode_id=lambda index: f"{recipe.name}-{tag}-s{seed}-{index:07d}")
    try:
        done, index = 0, 0
        while done < transitions:
            done += actor.run_episode(index, max_steps=transitions - done).length
            index += 1
    finally:
        env.close()


def _build_maze(writer: _Writer, recipe: Recipe, transitions: int, seed: int) -> dict:
    """D4RL maze2d: one continuing noisy waypoint-controller run with goal resampling, cut into
    ``recipe.episode_length``-step episodes."""
    env = make_env(recipe.env_id, continuing_task=True, reset_target=True, max_episode_steps=transitions + 1)
    behavior = make_behavior(BehaviorSpec("maze-expert", noise=MAZE_NOISE), env)
    behavior.reset(np.random.default_rng([seed, 0]))
    length = recipe.episode_length
    goals = 0
    try:
        obs, _ = env.reset(seed=seed)
        for index, start in enumerate(range(0, transitions, length)):
            steps = min(length, transitions - start)
            observations, actions, rewards, terminated = [obs], [], [], []
            for _ in range(steps):
                action = behavior(obs)
                obs, reward, term, _trunc, _info = env.step(action)
                goals += int(not np.array_equal(obs["desired_goal"], observations[-1]["desired_goal"]))
                observations.append(obs)
                actions.append(action)
                rewards.append(float(reward))
                terminated.append(bool(term))
            truncated = np.zeros(steps, bool)
            truncated[-1] = not terminated[-1]
            writer.add(dict(
                observations={k: np.stack([o[k] for o in observations]) for k in observations[0]},
                actions=np.stack(actions), rewards=np.asarray(rewards, np.float32),
                terminated=np.asarray(terminated), truncated=truncated,
            ), f"{recipe.name}-s{seed}-{index:07d}", "maze2d", collector_id=f"recipe:{recipe.name}",
                policy_id=behavior.policy_id, env_id=recipe.env_id, seed=seed)
    finally:
        env.close()
    return {"type": "maze2d-waypoint-pd", "kp": 10.0, "kd": 1.0, "action_noise_std": MAZE_NOISE,
            "goal_changes": goals, "policy_id": behavior.policy_id}


def _write_goal_episode(writer: _Writer, recipe: Recipe, seed: int, index: int, observations: list,
                        actions: list, policy_id: str) -> None:
    """One reward-free episode of goal-reaching data, cut by the recipe's length (truncated at its end)."""
    steps = len(actions)
    truncated = np.zeros(steps, bool)
    truncated[-1] = True
    writer.add(dict(observations=np.stack(observations).astype(np.float32), actions=np.stack(actions),
                    rewards=np.zeros(steps, np.float32), terminated=np.zeros(steps, bool), truncated=truncated),
               f"{recipe.name}-s{seed}-{index:07d}", recipe.kind, collector_id=f"recipe:{recipe.name}",
               policy_id=policy_id, env_id=recipe.env_id, seed=seed)


def _build_ogbench_maze(writer: _Writer, recipe: Recipe, transitions: int, seed: int) -> dict:
    """OGBench's navigate / stitch point-maze data: episode ``i`` is reset with seed ``seed + i`` and
    draws its start, goals and action noise from ``default_rng([seed, i])``."""
    from armfarm.envs.maze import OGBenchMazeOracle, cells_at_distance, maze_cells

    length = recipe.episode_length
    env = make_env(recipe.env_id, terminate_at_goal=False, max_episode_steps=length + 1)
    maze_map = np.asarray(env.unwrapped.maze_map)
    free, vertices = maze_cells(maze_map)
    navigate = recipe.kind == "ogbench-navigate"
    arrivals = 0
    try:
        for index, start in enumerate(range(0, transitions, length)):
            rng = np.random.default_rng([seed, index])
            init_ij = free[rng.integers(len(free))]
            targets = vertices if navigate else (cells_at_distance(maze_map, init_ij, 4) or [init_ij])
            goal_ij = targets[rng.integers(len(targets))]
            env.action_space.seed(seed + index)
            with global_numpy_seed(seed + index):  # OGBench's goal noise comes from np.random
                obs, _ = env.reset(seed=seed + index, options={"task_info": {"init_ij": init_ij, "goal_ij": goal_ij}})
                oracle = OGBenchMazeOracle(env, OGBENCH_NOISE, rng)
                steps = min(length, transitions - start)
                observations, actions, at_goal = [obs], [], False
                for _ in range(steps):
                    action = oracle()
                    obs, _reward, _term, _trunc, info = env.step(action)
                    observations.append(obs)
                    actions.append(action)
                    arrivals += bool(info["success"]) and not at_goal
                    at_goal = bool(info["success"])
                    if at_goal and navigate:  # a new goal as soon as this one is reached
                        env.unwrapped.set_goal(goal_ij=vertices[rng.integers(len(vertices))])
                        at_goal = False
            _write_goal_episode(writer, recipe, seed, index, observations, actions, "ogbench-maze-oracle")
    finally:
        env.close()
    return {"type": "ogbench-maze-oracle", "action_noise_std": OGBENCH_NOISE, "goal_arrivals": arrivals,
            "dataset_type": recipe.kind.removeprefix("ogbench-"), "policy_id": "ogbench-maze-oracle",
            "rewards": "zeros (goal-conditioned data: relabeling supplies rewards)"}


def _build_ogbench_play(writer: _Writer, recipe: Recipe, transitions: int, seed: int) -> dict:
    """OGBench's play data for its cube tasks: episode ``i`` is reset with seed ``seed + i`` and runs
    under ``np.random`` seeded with ``seed + i`` (the oracle's noise and the new targets draw from it)."""
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle

    length = recipe.episode_length
    env = make_env(recipe.env_id, terminate_at_goal=False, mode="data_collection", max_episode_steps=length + 1)
    tasks_done = 0
    try:
        for index, start in enumerate(range(0, transitions, length)):
            env.action_space.seed(seed + index)
            with global_numpy_seed(seed + index):
                obs, info = env.reset(seed=seed + index)
                oracle = CubePlanOracle(env=env, noise=OGBENCH_PLAY_NOISE, noise_smoothing=OGBENCH_PLAY_SMOOTHING)
                oracle.reset(obs, info)
                steps = min(length, transitions - start)
                observations, actions = [obs], []
                for _ in range(steps):
                    action = np.clip(np.asarray(oracle.select_action(obs, info), np.float32), -1.0, 1.0)
                    obs, _reward, _term, _trunc, info = env.step(action)
                    observations.append(obs)
                    actions.append(action)
                    if oracle.done:  # the cube is placed: a new target, as OGBench's generator does
                        tasks_done += 1
                        target_obs, target_info = env.unwrapped.set_new_target(p_stack=0.0)
                        oracle.reset(target_obs, target_info)
            _write_goal_episode(writer, recipe, seed, index, observations, actions, "ogbench-cube-plan-oracle")
    finally:
        env.close()
    return {"type": "ogbench-cube-plan-oracle", "action_noise": OGBENCH_PLAY_NOISE,
            "noise_smoothing": OGBENCH_PLAY_SMOOTHING, "tasks_completed": tasks_done, "dataset_type": "play",
            "policy_id": "ogbench-cube-plan-oracle", "rewards": "zeros (goal-conditioned data: relabeling supplies rewards)"}


def build_dataset(
    name: str,
    store_path: str | Path,
    size: int | None = None,
    seed: int = 0,
    sac_steps: int | None = None,
    behavior_dir: str | Path | None = None,
    sac_overrides: dict | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Build dataset ``name`` into a new store at ``store_path``; return its ``recipe`` provenance.

    ``size`` is the number of transitions (default: the recipe's). For ``medium-replay`` the size is set
    by the SAC run (every step it took), so ``size`` caps the SAC budget instead. ``sac_steps`` is the SAC
    behaviour run's environment-step budget, ``behavior_dir`` the directory of its run (for
    ``medium-expert``: a directory holding ``medium/`` and ``expert/``), ``sac_overrides`` SAC config
    fields (e.g. smaller networks for tests). ``on_progress(stage, done, total)`` reports progress.
    """
    recipe = get_recipe(name)
    started = time.perf_counter()
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if sac_steps is not None and sac_steps < 1:
        raise ValueError(f"sac_steps must be >= 1, got {sac_steps}")
    if recipe.kind == "medium-replay" and size is not None:
        sac_steps = size
    transitions = size or recipe.size
    path = Path(store_path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory; a recipe builds a new store")
    if path.exists() and any(path.iterdir()):
        if not ((path / "store.json").exists() and EpisodeStore(path).num_episodes == 0):
            raise FileExistsError(f"{path} is not empty; a recipe builds a new store")
        store = EpisodeStore(path)  # left empty by an interrupted build: build into it
    else:
        store = EpisodeStore(path, create=True)
    writer = _Writer(store, on_progress, transitions or sac_steps or recipe.sac_steps)
    behaviors: list[dict] = []

    def sac(stage: str) -> tuple[Path, dict]:
        """The stage's SAC run; its default budget is that of the ``{family}-{stage}`` recipe, so that
        medium, medium-replay and medium-expert share one medium run."""
        directory = behavior_dir
        if directory is not None and recipe.kind == "medium-expert":
            directory = Path(directory) / stage
        steps = sac_steps or get_recipe(f"{recipe.family}-{stage}").sac_steps
        run_dir, summary = behavior_run(recipe.env_id, stage, seed, steps, directory, sac_overrides, on_progress)
        behaviors.append({"stage": stage, **_behavior_provenance(run_dir, summary)})
        return run_dir, summary

    if recipe.kind == "random":
        env = make_env(recipe.env_id)
        behavior = make_behavior(BehaviorSpec("random"), env)
        env.close()
        _sample_episodes(writer, recipe, behavior, transitions, seed, "random")
        behaviors.append({"type": "uniform-random", "policy_id": "random"})
    elif recipe.kind == "maze2d":
        behaviors.append(_build_maze(writer, recipe, transitions, seed))
    elif recipe.kind == "ogbench-play":
        behaviors.append(_build_ogbench_play(writer, recipe, transitions, seed))
    elif recipe.kind.startswith("ogbench-"):
        behaviors.append(_build_ogbench_maze(writer, recipe, transitions, seed))
    elif recipe.kind == "medium-replay":
        from armfarm.online import REPLAY_FILE, ReplayBuffer

        run_dir, _ = sac("medium")
        buffer = ReplayBuffer.load(run_dir / REPLAY_FILE)
        for index, episode in enumerate(buffer.episodes()):
            writer.add(episode, f"{recipe.name}-s{seed}-{index:07d}", "replay",
                       collector_id=f"recipe:{recipe.name}", policy_id=f"sac-replay@{run_dir.name}",
                       env_id=recipe.env_id, seed=seed)
    else:  # medium, expert, medium-expert: samples of trained SAC policies
        stages = ["medium", "expert"] if recipe.kind == "medium-expert" else [recipe.kind]
        shares = [transitions // len(stages)] * len(stages)
        shares[-1] += transitions - sum(shares)
        for stage, share in zip(stages, shares, strict=True):
            run_dir, summary = sac(stage)
            policy_id = f"sac-{stage}@{behaviors[-1]['checkpoint_sha256'][:12]}"
            behavior = _SACBehavior(_checkpoint_dir(run_dir, summary), policy_id)
            _sample_episodes(writer, recipe, behavior, share, seed, stage)
    writer.flush()

    returns = np.asarray(writer.returns, np.float64)
    provenance = {
        "name": recipe.name, "kind": recipe.kind, "env_id": recipe.env_id, "seed": seed,
        "size_requested": size, "transitions": store.num_transitions, "episodes": store.num_episodes,
        "episode_length": recipe.episode_length,
        "behavior": behaviors if len(behaviors) > 1 else behaviors[0],
        "data_return_mean": float(returns.mean()), "data_return_std": float(returns.std()),
        "build_seconds": round(time.perf_counter() - started, 1), "armfarm_version": __version__,
        "note": (f"{'OGBench' if recipe.kind.startswith('ogbench-') else 'D4RL'}-style data built locally by armfarm, "
                 f"not {'OGBench' if recipe.kind.startswith('ogbench-') else 'D4RL'}'s datasets"),
    }
    store.set_provenance({"recipe": provenance})
    return provenance
