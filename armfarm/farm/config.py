"""``farm.toml``: every setting of a farm, with its default, a one-line comment and its allowed values.

The file is grouped into tables for people (``[robots]``, ``[learner]``, ...), but every key is unique,
so ``armfarm farm init --set KEY=VALUE`` names a setting by its key alone; the algorithm's own config
overrides live in ``[algo_config]`` (``--set algo_config.expectile=0.9``). Values are coerced by the
field types (:mod:`armfarm.overrides`) and checked against their allowed values at ``init`` and at every
``run``, so a bad setting is refused with the key and what it may be.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from armfarm.durable import write_atomic
from armfarm.overrides import coerce_fields
from armfarm.shield.config import FALLBACKS

CONFIG_FILE = "farm.toml"
ROBOT_SEED_STRIDE = 10_000_000  # robot r's episode i is seeded (r + 1) * stride + i; evaluation seeds lie below


def _setting(default: Any, section: str, doc: str, allowed: str = "") -> Any:
    kwargs = {"default_factory": lambda: dict(default)} if isinstance(default, dict) else {"default": default}
    return field(metadata={"section": section, "doc": doc, "allowed": allowed}, **kwargs)


@dataclass(frozen=True)
class FarmConfig:
    """The settings of one farm (see each field's ``doc`` in ``farm.toml``)."""

    env: str = _setting("", "robots", "Gymnasium environment id every robot runs and policies are evaluated in",
                        "a registered Gymnasium id, e.g. PointMaze_UMazeDense-v3")
    robots: int = _setting(2, "robots", "number of robot processes", "1 to 256")
    default_behavior: str = _setting("random", "robots", "what robots run before any policy is promoted",
                                     "random, maze-expert, maze-mixed or a policy.npz path")
    default_noise: float = _setting(0.0, "robots", "std of Gaussian noise on the default behaviour's actions", ">= 0")
    default_good_fraction: float = _setting(0.5, "robots", "maze-mixed only: share of episodes heading for the real goal",
                                            "0 to 1")
    noise: float = _setting(0.1, "robots", "std of Gaussian exploration noise added to the live policy's actions",
                            ">= 0")
    default_fraction: float = _setting(0.1, "robots",
                                       "share of episodes run with the default behaviour even after a promotion "
                                       "(keeps the data's coverage)", "0 to 1")
    max_episode_steps: int = _setting(0, "robots", "cut robots' episodes after this many steps (0: the env's limit)",
                                      ">= 0")
    control_hz: float = _setting(0.0, "robots", "simulated robots step at most this often, like a real "
                                 "control loop (0: as fast as the simulator)", ">= 0")
    policy_poll_s: float = _setting(2.0, "robots", "seconds between robots' checks for a new policy", "> 0")

    algo: str = _setting("iql", "learner", "offline algorithm that trains each round's candidate",
                         "an offline algorithm that `armfarm algos` lists (bc, iql, rebrac, ...)")
    episodes_per_round: int = _setting(20, "learner", "new stored episodes that start a round", ">= 1")
    gradient_steps: int = _setting(5000, "learner", "gradient steps per round", ">= 1")
    steps_per_call: int = _setting(250, "learner", "gradient steps fused into one compiled call", ">= 1")
    checkpoint_every: int = _setting(1000, "learner", "gradient steps between checkpoints (a killed learner "
                                     "resumes from the last)", ">= 1")
    warm_start: bool = _setting(True, "learner", "start each candidate from the live policy's checkpoint "
                                "(false: retrain from scratch)", "true or false")
    seed: int = _setting(0, "learner", "seed of initialisation and batch sampling", ">= 0")
    algo_config: dict = _setting({}, "algo_config", "", "the algorithm's config fields")

    eval_episodes: int = _setting(10, "evaluation", "episodes per evaluation of the candidate and of the live "
                                  "policy", "2 to 10000")
    eval_seed: int = _setting(0, "evaluation", "evaluation episodes are seeded eval_seed, eval_seed+1, ...; no "
                              f"robot collects on them (robots use seeds from {ROBOT_SEED_STRIDE})",
                              f">= 0, with eval_seed + eval_episodes <= {ROBOT_SEED_STRIDE}")
    promotion_margin: float = _setting(0.0, "evaluation", "the candidate must beat the live policy's mean return "
                                       "by this much on the same seeds", ">= 0")
    confidence: float = _setting(0.9, "evaluation", "confidence of the interval on the paired return difference "
                                 "whose lower end must clear the margin", "0.5 to 0.999")
    cost_budget: float = _setting(float("inf"), "evaluation", "a candidate is promoted only if its mean evaluated "
                                  "episode cost is at most this (inf: no cost check)", ">= 0 or inf")
    shield: bool = _setting(False, "shield", "every robot runs behind a safety shield, refitted from the store "
                            "after each round (see `armfarm shield fit`)", "true or false")
    shield_budget: float = _setting(0.5, "shield", "the shield's cost-critic budget: expected discounted cost "
                                    "above which an action is refused", ">= 0")
    shield_fallback: str = _setting("stop", "shield", "what acts instead of a refused action", "stop, bc or min-cost")
    shield_project: bool = _setting(False, "shield", "replace an action over the cost budget by the nearest accepted "
                                    "action on the way to the fallback's (see `armfarm shield fit --project`)",
                                    "true or false")
    shield_steps: int = _setting(5000, "shield", "gradient steps of each shield refit", ">= 1")
    shield_episode_cost_budget: float = _setting(float("inf"), "shield", "the watchdog e-stops an episode whose "
                                                 "cost passes this (inf: off)", ">= 0 or inf")

    robot_cpus: float = _setting(0.25, "ray", "with `farm run --ray`: CPUs each robot actor holds", "> 0")
    learner_cpus: float = _setting(1.0, "ray", "with --ray: CPUs the learner actor holds", "> 0")
    learner_gpus: float = _setting(0.0, "ray", "with --ray: GPUs the learner asks for (used when the cluster has "
                                   "them; the learner then trains on JAX's GPU backend)", ">= 0")
    evaluator_cpus: float = _setting(0.5, "ray", "with --ray: CPUs the evaluator actor holds", "> 0")
    eval_tasks: int = _setting(4, "ray", "with --ray: evaluation episodes run as this many parallel Ray tasks "
                               "(each holding evaluator_cpus)", ">= 1")

    host: str = _setting("127.0.0.1", "server", "address the fleet server listens on", "an IP address or localhost")
    port: int = _setting(8765, "server", "TCP port of the fleet server and its /dashboard", "1 to 65535")
    max_request_bytes: int = _setting(64 << 20, "server", "largest upload the server accepts", ">= 1024")
    rate_limit: float = _setting(100.0, "server", "requests per second per token (0: no limit)", ">= 0")

    max_restarts: int = _setting(5, "supervisor", "a component that dies this many times within "
                                 "restart_window_s stops the farm", ">= 1")
    restart_window_s: float = _setting(600.0, "supervisor", "window of max_restarts, in seconds", "> 0")
    backoff_s: float = _setting(1.0, "supervisor", "first restart delay; doubles per death, up to backoff_max_s", "> 0")
    backoff_max_s: float = _setting(30.0, "supervisor", "longest restart delay", ">= backoff_s")

    def __post_init__(self) -> None:
        checks = {
            "env": bool(self.env.strip()),
            "robots": 1 <= self.robots <= 256,
            "default_noise": self.default_noise >= 0,
            "default_good_fraction": 0 <= self.default_good_fraction <= 1,
            "noise": self.noise >= 0,
            "default_fraction": 0 <= self.default_fraction <= 1,
            "max_episode_steps": self.max_episode_steps >= 0,
            "control_hz": self.control_hz >= 0,
            "policy_poll_s": self.policy_poll_s > 0,
            "episodes_per_round": self.episodes_per_round >= 1,
            "gradient_steps": self.gradient_steps >= 1,
            "steps_per_call": self.steps_per_call >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "seed": self.seed >= 0,
            "eval_episodes": 2 <= self.eval_episodes <= 10_000,
            "eval_seed": self.eval_seed >= 0 and self.eval_seed + self.eval_episodes <= ROBOT_SEED_STRIDE,
            "promotion_margin": self.promotion_margin >= 0,
            "confidence": 0.5 <= self.confidence <= 0.999,
            "cost_budget": self.cost_budget >= 0,
            "shield_budget": 0 <= self.shield_budget < float("inf"),
            "shield_fallback": self.shield_fallback in FALLBACKS,
            "shield_steps": self.shield_steps >= 1,
            "shield_episode_cost_budget": self.shield_episode_cost_budget >= 0,
            "robot_cpus": self.robot_cpus > 0,
            "learner_cpus": self.learner_cpus > 0,
            "learner_gpus": self.learner_gpus >= 0,
            "evaluator_cpus": self.evaluator_cpus > 0,
            "eval_tasks": self.eval_tasks >= 1,
            "host": bool(self.host.strip()) and not any(c.isspace() for c in self.host),
            "port": 1 <= self.port <= 65535,
            "max_request_bytes": self.max_request_bytes >= 1024,
            "rate_limit": self.rate_limit >= 0,
            "max_restarts": self.max_restarts >= 1,
            "restart_window_s": self.restart_window_s > 0,
            "backoff_s": self.backoff_s > 0,
            "backoff_max_s": self.backoff_max_s >= self.backoff_s,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"farm setting {key}={getattr(self, key)!r} is not allowed: {key} must be "
                                 f"{_FIELDS[key].metadata['allowed']}")
        from armfarm.algos import get_algorithm

        try:
            algo = get_algorithm(self.algo)
        except (KeyError, ValueError):
            raise ValueError(f"farm setting algo={self.algo!r} is not allowed: algo must be "
                             f"{_FIELDS['algo'].metadata['allowed']}") from None
        if not algo.offline:  # online learners and evaluators do not train from the store
            raise ValueError(f"farm setting algo={self.algo!r} is not allowed: the farm learns offline; algo "
                             f"must be {_FIELDS['algo'].metadata['allowed']}")
        if algo.goal_conditioned:  # the farm's gate compares returns; goal success is not a return
            raise ValueError(f"farm setting algo={self.algo!r} is not allowed: the farm promotes by return, and "
                             f"{self.algo} learns to reach goals; train it with `armfarm train` and score it with "
                             "`armfarm eval --tasks`")
        try:  # algo_config values typed by the algorithm's config (TOML lists become tuples)
            object.__setattr__(self, "algo_config", coerce_fields(algo.config_cls, self.algo_config))
        except ValueError as e:
            raise ValueError(f"farm setting algo_config: {e}") from None
        self.algo_settings()  # refuses a bad value of an algo_config field, naming it

    def algo_settings(self):
        """The algorithm's config with ``algo_config`` applied."""
        from armfarm.algos import config_from_dict, get_algorithm

        algo = get_algorithm(self.algo)
        try:
            return config_from_dict(algo.config_cls, self.algo_config)
        except ValueError as e:
            raise ValueError(f"farm setting algo_config: {e}") from None

    @property
    def max_steps(self) -> int | None:
        return self.max_episode_steps or None

    def with_overrides(self, pairs: dict[str, str]) -> FarmConfig:
        """A copy with ``KEY=VALUE`` settings applied (``algo_config.NAME=VALUE`` for the algorithm's)."""
        algo_config = dict(self.algo_config)
        plain = {}
        for key, value in pairs.items():
            if key.startswith("algo_config."):
                algo_config[key.split(".", 1)[1]] = value
            else:
                plain[key] = value
        values = coerce_fields(FarmConfig, plain, what="farm.toml")
        return dataclasses.replace(self, **values, algo_config=algo_config)


_FIELDS = {f.name: f for f in dataclasses.fields(FarmConfig)}
_SECTIONS = ["robots", "learner", "algo_config", "evaluation", "shield", "ray", "server", "supervisor"]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


def to_toml(config: FarmConfig) -> str:
    """``farm.toml`` text: every setting with its value and a one-line comment."""
    lines = ["# armfarm farm settings. Edit and restart `armfarm farm run`; every key is checked at start.", ""]
    for section in _SECTIONS:
        lines.append(f"[{section}]")
        if section == "algo_config":
            lines.append(f"# overrides of {config.algo}'s config fields (see `armfarm train --help` and its dataclass)")
            for key, value in sorted(config.algo_config.items()):
                lines.append(f"{key} = {_toml_value(value)}")
        for f in dataclasses.fields(FarmConfig):
            if f.metadata["section"] != section or f.name == "algo_config":
                continue
            lines.append(f"{f.name} = {_toml_value(getattr(config, f.name))}  # {f.metadata['doc']} "
                         f"({f.metadata['allowed']})")
        lines.append("")
    return "\n".join(lines)


def from_toml(text: str, source: str = CONFIG_FILE) -> FarmConfig:
    """Parse ``farm.toml`` text; raises ValueError naming the file and the bad key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{source} is not valid TOML: {e}") from None
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise ValueError(f"{source}: unknown table [{section}]; tables are: {', '.join(_SECTIONS)}")
        if section == "algo_config":
            values["algo_config"] = dict(table)
            continue
        for key, value in table.items():
            f = _FIELDS.get(key)
            if f is None or f.metadata["section"] != section:
                where = f"[{f.metadata['section']}]" if f is not None else "no table"
                raise ValueError(f"{source}: unknown setting {key!r} in [{section}] (it belongs in {where}); "
                                 f"settings of [{section}]: "
                                 + ", ".join(n for n, g in _FIELDS.items() if g.metadata["section"] == section))
            values[key] = value
    algo_config = values.pop("algo_config", {})
    try:
        return FarmConfig(**coerce_fields(FarmConfig, values, what=source), algo_config=algo_config)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def load(farm_dir: str | Path) -> FarmConfig:
    """Read ``FARM_DIR/farm.toml`` and check that its environment exists."""
    farm_dir = Path(farm_dir)
    if farm_dir.exists() and not farm_dir.is_dir():
        raise NotADirectoryError(f"{farm_dir} is a file, not a farm directory")
    path = farm_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{farm_dir} holds no {CONFIG_FILE}; create one with `armfarm farm init {farm_dir} --env ENV_ID`")
    config = from_toml(path.read_text(), str(path))
    check_env(config)
    return config


def check_env(config: FarmConfig) -> None:
    """Refuse an unknown environment id, or one whose actions or observations ``config.algo`` (or, with
    ``shield``, the shield) cannot learn from, with a one-line error."""
    from armfarm.algos import check_fits
    from armfarm.data.schema import StoreSpec
    from armfarm.envs.registry import make_env

    env = make_env(config.env)
    try:
        spec = StoreSpec.from_gymnasium(env.observation_space, env.action_space)
    finally:
        env.close()
    try:
        check_fits(config.algo, spec, config.env)
    except ValueError as e:
        raise ValueError(f"farm setting algo={config.algo!r} is not allowed: {e}") from None
    if config.shield:
        from armfarm.shield.fit import check_shieldable

        try:
            check_shieldable(spec, config.env)
        except ValueError as e:
            raise ValueError(f"farm setting shield=true is not allowed: {e}") from None


def init(farm_dir: str | Path, env: str, robots: int | None = None, algo: str | None = None,
         overrides: dict[str, str] | None = None, overwrite: bool = False) -> FarmConfig:
    """Write ``FARM_DIR/farm.toml`` with every default, the given settings applied; returns the config."""
    farm_dir = Path(farm_dir)
    if farm_dir.exists() and not farm_dir.is_dir():
        raise NotADirectoryError(f"{farm_dir} is a file, not a farm directory")
    path = farm_dir / CONFIG_FILE
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; edit it, or pass --overwrite to write the defaults again")
    pairs = dict(overrides or {})
    pairs["env"] = env
    if robots is not None:
        pairs["robots"] = str(robots)
    if algo is not None:
        pairs["algo"] = algo
    config = FarmConfig(env="placeholder-v0").with_overrides(pairs)
    check_env(config)
    farm_dir.mkdir(parents=True, exist_ok=True)
    text = to_toml(config).encode()
    write_atomic(path, lambda f: f.write(text))
    return config
