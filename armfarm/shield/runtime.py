"""The shield on the robot: NumPy only, like the fleet client, so a robot runs it without JAX.

:meth:`Shield.load` reads a shield directory (see :mod:`armfarm.shield.config`); :meth:`Shield.wrap` puts
it around a policy. Each step the wrapped policy proposes an action and the layers act in order:

1. **limits** clip it (bounds, per-dimension limits, rate limit);
2. the **support gate** replaces it with the fallback if the behaviour model's score
   ``-log pi_beta(a|s)`` is above its calibrated threshold;
3. the **cost critic** replaces it with the fallback if ``Q_c(s, a)`` is above the budget (with
   ``cost.project``, with the accepted action nearest to it on the way to the fallback's action);

and the fallback's action is clipped by the limits again. ``last_intervention`` holds the layers that
acted (bit flags :data:`LIMITS`, :data:`SUPPORT`, :data:`COST`, :data:`WATCHDOG`), which the episode
records as ``interventions``. After each step the loop calls :meth:`ShieldedPolicy.observe` with the
reward and cost; the **watchdog** then sets ``stop_reason`` (the loop ends the episode, truncated, with
that reason), after running the recovery behaviour when the robot was stuck.
"""

from __future__ import annotations

import json
import zipfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from armfarm.shield.config import CONFIG_FILE, WEIGHTS_FILE, ShieldConfig, ShieldError

LIMITS, SUPPORT, COST, WATCHDOG = 1, 2, 4, 8
LAYER_NAMES = {LIMITS: "limits", SUPPORT: "support", COST: "cost", WATCHDOG: "watchdog"}
LOG_STD_RANGE = (-5.0, 2.0)  # the behaviour model's log-std is clipped to this range (fit and runtime)
_MODELS = {"behavior": "the behaviour model (support gate and 'bc' fallback)", "cost_critic": "the cost critic"}
MIN_COST_CANDIDATES = 32  # actions the 'min-cost' fallback compares: the behaviour mean and 31 fixed draws
PROJECTION_POINTS = 8  # points of the line search from a refused action to the fallback's (cost.project)


def describe_interventions(flags: int) -> list[str]:
    """The names of the layers in an intervention flag value, e.g. ``5 -> ['limits', 'cost']``."""
    return [name for bit, name in LAYER_NAMES.items() if flags & bit]


def unfitted_models(obs_dim: int, act_dim: int) -> dict[str, np.ndarray]:
    """``weights.npz`` arrays of a shield fitted on nothing: identity normalisation, a behaviour model
    N(0, 1) in scaled action units and a cost critic of 0 (for shields whose support gate and cost critic
    are off, or whose models are set by hand)."""
    return {"obs_mean": np.zeros(obs_dim), "obs_std": np.ones(obs_dim),
            "behavior.w0": np.zeros((obs_dim, 2 * act_dim)), "behavior.b0": np.zeros(2 * act_dim),
            "cost_critic.w0": np.zeros((obs_dim + act_dim, 1)), "cost_critic.b0": np.zeros(1)}


def mlp_forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """A ReLU MLP (no activation after the last layer) in NumPy."""
    for w, b in layers[:-1]:
        x = np.maximum(x @ w + b, 0.0)
    w, b = layers[-1]
    return x @ w + b


class Shield:
    """A loaded shield: its config and NumPy models. Use :meth:`wrap` to shield a policy."""

    def __init__(self, config: ShieldConfig, arrays: dict[str, np.ndarray], fallback: Callable | None = None,
                 recovery: Callable | None = None, where: str = "shield"):
        self.config = config
        self.obs_mean = _array(arrays, "obs_mean", (config.obs_dim,), where)
        self.obs_std = _array(arrays, "obs_std", (config.obs_dim,), where)
        if (self.obs_std <= 0).any():
            raise ShieldError(f"{where}/{WEIGHTS_FILE}: field 'obs_std' must be > 0")
        self.low = np.asarray(config.action_low, np.float64)
        self.high = np.asarray(config.action_high, np.float64)
        self.center, self.half = (self.high + self.low) / 2, np.maximum((self.high - self.low) / 2, 1e-12)
        self.models = {}
        for name, outputs in (("behavior", 2 * config.act_dim), ("cost_critic", 1)):
            inputs = config.obs_dim + (config.act_dim if name == "cost_critic" else 0)
            self.models[name] = _layers(arrays, name, inputs, outputs, where)
        clip_low = self.low if config.limits.low is None else np.maximum(self.low, config.limits.low)
        clip_high = self.high if config.limits.high is None else np.minimum(self.high, config.limits.high)
        if (clip_high < clip_low).any():
            raise ShieldError(f"{where}/{CONFIG_FILE}: field 'limits' leaves no allowed action in some dimension")
        self.clip_low, self.clip_high = clip_low, clip_high
        self._candidate_z = np.random.default_rng(0).standard_normal((MIN_COST_CANDIDATES, config.act_dim))
        self._candidate_z[0] = 0.0  # the mean itself is always a candidate (ties go to it)
        self._fallback = self._behaviour(config.fallback, fallback, "fallback", where)
        self._recovery = self._behaviour(config.watchdog.recovery, recovery, "watchdog.recovery", where)

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: str | Path) -> Shield:
        """Read a shield directory; raises :class:`ShieldError` (naming the file and field) if it is
        missing, corrupt or inconsistent, so that a robot can refuse to move rather than move unshielded."""
        from armfarm.policy import NumpyPolicy, PolicyFormatError

        directory = Path(directory)
        where = str(directory)
        if not directory.is_dir():
            raise ShieldError(f"{where}: no shield directory here (make one with `armfarm shield fit`)")
        try:
            data = json.loads((directory / CONFIG_FILE).read_text())
        except FileNotFoundError:
            raise ShieldError(f"{where}/{CONFIG_FILE}: missing; this is not a shield directory") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ShieldError(f"{where}/{CONFIG_FILE}: unreadable ({e})") from None
        config = ShieldConfig.from_json(data, f"{where}/{CONFIG_FILE}")
        try:
            with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as npz:
                arrays = {k: np.asarray(npz[k]) for k in npz.files}
        except FileNotFoundError:
            raise ShieldError(f"{where}/{WEIGHTS_FILE}: missing; refit the shield") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise ShieldError(f"{where}/{WEIGHTS_FILE}: unreadable ({e}); refit the shield") from None
        policies = {}
        for role, name in (("fallback", config.fallback), ("recovery", config.watchdog.recovery)):
            if name == "policy":
                try:
                    policies[role] = NumpyPolicy.load(directory / f"{role}.npz")
                except (OSError, PolicyFormatError, ValueError) as e:
                    raise ShieldError(f"{where}/{role}.npz: the {role} policy cannot be loaded ({e})") from None
        return cls(config, arrays, policies.get("fallback"), policies.get("recovery"), where)

    def _behaviour(self, kind: str, policy: Callable | None, field: str, where: str) -> Callable[[np.ndarray], np.ndarray]:
        if kind == "stop":
            return lambda obs: self.center.copy()
        if kind == "bc":
            return self.behaviour_mean
        if kind == "min-cost":
            return self.min_cost_action
        if policy is None:
            raise ShieldError(f"{where}/{CONFIG_FILE}: field '{field}' is 'policy' but no policy file was given")
        if getattr(policy, "obs_dim", self.config.obs_dim) != self.config.obs_dim or \
                getattr(policy, "act_dim", self.config.act_dim) != self.config.act_dim:
            raise ShieldError(f"{where}: the {field} policy's shapes differ from the shield's "
                              f"({self.config.obs_dim} observations, {self.config.act_dim} actions)")
        return lambda obs: np.asarray(policy(obs), np.float64)

    # -- the models ------------------------------------------------------------------------------

    def _norm_obs(self, obs: np.ndarray) -> np.ndarray:
        return (np.asarray(obs, np.float64).reshape(-1, self.config.obs_dim) - self.obs_mean) / self.obs_std

    def _norm_act(self, action: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(action, np.float64).reshape(-1, self.config.act_dim) - self.center) / self.half, -1, 1)

    def _behaviour_head(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = mlp_forward(self.models["behavior"], self._norm_obs(obs))
        mean, log_std = np.tanh(out[:, : self.config.act_dim]), np.clip(out[:, self.config.act_dim:], *LOG_STD_RANGE)
        return mean, log_std

    def support_score(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``-log pi_beta(a|s)`` (up to a constant) of the behaviour model, for each row."""
        mean, log_std = self._behaviour_head(obs)
        z = (self._norm_act(action) - mean) / np.exp(log_std)
        return 0.5 * np.sum(z * z, axis=-1) + np.sum(log_std, axis=-1)

    def behaviour_mean(self, obs: np.ndarray) -> np.ndarray:
        """The behaviour model's mean action (the ``bc`` fallback) in the robot's action units."""
        return (self.center + self.half * self._behaviour_head(obs)[0])[0]

    def min_cost_action(self, obs: np.ndarray) -> np.ndarray:
        """The ``min-cost`` fallback: of the behaviour model's mean and ``MIN_COST_CANDIDATES - 1`` fixed
        draws from it (``mean + std * z`` with ``z`` the same standard-normal draws every call, so the
        fallback is deterministic), the action with the lowest ``Q_c(s, a)``, in the robot's action units.

        This is Recovery RL's recovery objective (Thananjeyan et al. 2021: act to minimise the safety
        critic), searched only among actions the data supports, where the critic was trained."""
        mean, log_std = self._behaviour_head(obs)
        scaled = np.clip(mean + np.exp(log_std) * self._candidate_z, -1.0, 1.0)
        actions = self.center + self.half * scaled
        obs_rows = np.broadcast_to(np.asarray(obs, np.float64).reshape(1, -1), (len(actions), self.config.obs_dim))
        return actions[int(np.argmin(self.cost_value(obs_rows, actions)))]

    def cost_value(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``Q_c(s, a)``: the expected discounted future cost of taking ``a`` in ``s``, for each row."""
        x = np.concatenate([self._norm_obs(obs), self._norm_act(action)], axis=-1)
        return mlp_forward(self.models["cost_critic"], x)[:, 0]

    # -- acting ----------------------------------------------------------------------------------

    def limit(self, action: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Layer 1 on one action: clipped to the limits and, given the last action, rate-limited."""
        out = np.clip(np.asarray(action, np.float64).reshape(self.config.act_dim), self.clip_low, self.clip_high)
        if previous is not None and self.config.limits.max_delta is not None:
            d = self.config.limits.max_delta
            out = np.clip(out, previous - d, previous + d)
        return out

    def filter(self, obs: np.ndarray, action: np.ndarray, previous: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Layers 1-3 on one proposed action: the action to take and the flags of the layers that acted."""
        c = self.config
        flags = 0
        proposed = np.asarray(action, np.float64).reshape(c.act_dim)
        if not np.isfinite(proposed).all():  # a broken policy: never pass NaN to the motors
            proposed, flags = self._fallback(obs), flags | LIMITS
        out = self.limit(proposed, previous) if c.limits.enabled else proposed
        if c.limits.enabled and np.abs(out - proposed).max() > 1e-6 * max(1.0, float(np.abs(self.half).max())):
            flags |= LIMITS
        refused = 0
        if c.support.enabled and self.support_score(obs, out)[0] > c.support.threshold:
            refused |= SUPPORT
        if c.cost.enabled and self.cost_value(obs, out)[0] > c.cost.budget:
            refused |= COST
        if refused:
            fallback = self._fallback(obs)
            fallback = self.limit(fallback, previous) if c.limits.enabled else fallback
            out = self._project(obs, out, fallback) if c.cost.enabled and c.cost.project else fallback
            flags |= refused
        return out, flags

    def _project(self, obs: np.ndarray, refused: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """The point of the segment ``refused -> fallback`` nearest to ``refused`` that the cost critic and
        the support gate (when on) accept, of ``PROJECTION_POINTS`` evenly spaced ones ending at the
        fallback's action (which is taken when none is accepted). Both ends are within the limits, and the
        limits are boxes, so every point of the segment is too."""
        c = self.config
        t = np.arange(1, PROJECTION_POINTS + 1, dtype=np.float64)[:, None] / PROJECTION_POINTS
        candidates = refused + t * (fallback - refused)
        rows = np.broadcast_to(np.asarray(obs, np.float64).reshape(1, -1), (len(candidates), c.obs_dim))
        accepted = self.cost_value(rows, candidates) <= c.cost.budget
        if c.support.enabled:
            accepted &= self.support_score(rows, candidates) <= c.support.threshold
        return candidates[int(np.argmax(accepted))] if accepted.any() else fallback

    def wrap(self, policy: Callable[[Any], np.ndarray]) -> ShieldedPolicy:
        """``policy`` behind this shield (a fresh watchdog per wrapped policy)."""
        return ShieldedPolicy(policy, self)


class ShieldedPolicy:
    """A policy behind a shield: call it with an observation; after each step call :meth:`observe`."""

    def __init__(self, policy: Callable[[Any], np.ndarray], shield: Shield):
        self.policy, self.shield = policy, shield
        self.reset()

    @property
    def policy_id(self) -> str:
        """The wrapped policy's id (the shield does not change what is recorded as acting)."""
        return getattr(self.policy, "policy_id", "")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Reset the wrapped policy (if it can be) with ``rng``, and start a new episode."""
        if rng is not None and hasattr(self.policy, "reset"):
            self.policy.reset(rng)
        self.begin_episode()

    def begin_episode(self) -> None:
        """Forget the last episode: its actions, cost, rewards, interventions and stop reason."""
        w = self.shield.config.watchdog
        self.previous: np.ndarray | None = None
        self.last_intervention = 0
        self.stop_reason = ""
        self.episode_cost = 0.0
        self._rewards: deque[float] = deque(maxlen=max(w.no_progress_steps, 1))
        self._recovering = 0  # steps of recovery left
        self._interventions = 0

    def __call__(self, obs: Any) -> np.ndarray:
        flat = self._flat(obs)
        if self._recovering > 0:
            action = self.shield._recovery(flat)
            if self.shield.config.limits.enabled:
                action = self.shield.limit(action, self.previous)
            flags = WATCHDOG
        else:
            action, flags = self.shield.filter(flat, self.policy(obs), self.previous)
        self.previous, self.last_intervention = action, flags
        self._interventions += bool(flags)
        return action.astype(np.float32)

    def observe(self, reward: float, cost: float) -> None:
        """The outcome of the step just taken: the watchdog's input."""
        w = self.shield.config.watchdog
        self.episode_cost += float(cost)
        self._rewards.append(float(reward))
        if not w.enabled or self.stop_reason:
            return
        if self._recovering > 0:
            self._recovering -= 1
            if self._recovering == 0:
                self.stop_reason = (f"watchdog: no progress (reward {self._stuck_sum:.3g} over {w.no_progress_steps} "
                                    f"steps < {w.min_progress:g}); recovered for {w.recovery_steps} steps")
            return
        if w.episode_cost_budget is not None and self.episode_cost > w.episode_cost_budget:
            self.stop_reason = f"watchdog: episode cost {self.episode_cost:g} passed the budget {w.episode_cost_budget:g}"
        elif w.no_progress_steps and len(self._rewards) == w.no_progress_steps and sum(self._rewards) < w.min_progress:
            self._stuck_sum = sum(self._rewards)
            if w.recovery_steps:
                self._recovering = w.recovery_steps
            else:
                self.stop_reason = (f"watchdog: no progress (reward {self._stuck_sum:.3g} over {w.no_progress_steps} "
                                    f"steps < {w.min_progress:g})")

    def interventions_in_episode(self) -> int:
        """Steps of this episode at which a layer acted."""
        return self._interventions

    def _flat(self, obs: Any) -> np.ndarray:
        if isinstance(obs, dict):
            return np.concatenate([np.asarray(obs[k], np.float64).reshape(-1) for k in sorted(obs)])
        return np.asarray(obs, np.float64).reshape(-1)


def _array(arrays: dict, name: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    if name not in arrays:
        raise ShieldError(f"{where}/{WEIGHTS_FILE}: field '{name}' is missing; refit the shield")
    a = np.asarray(arrays[name])
    if a.dtype.kind != "f" or a.shape != shape or not np.isfinite(a).all():
        raise ShieldError(f"{where}/{WEIGHTS_FILE}: field '{name}' must be finite floats of shape {shape}, "
                          f"got {a.dtype} {a.shape}")
    return a.astype(np.float64)


def _layers(arrays: dict, model: str, inputs: int, outputs: int, where: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The layers ``<model>.w<i>`` / ``<model>.b<i>`` of an MLP from ``inputs`` to ``outputs``."""
    count = sum(1 for k in arrays if k.startswith(f"{model}.w"))
    if count == 0:
        raise ShieldError(f"{where}/{WEIGHTS_FILE}: {_MODELS[model]} ('{model}.w0', ...) is missing; refit the shield")
    layers, width = [], inputs
    for i in range(count):
        w = arrays.get(f"{model}.w{i}")
        b = arrays.get(f"{model}.b{i}")
        if w is None or b is None or w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],) \
                or w.dtype.kind != "f" or not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ShieldError(f"{where}/{WEIGHTS_FILE}: layer {i} of {_MODELS[model]} is missing, misshapen or "
                              "not finite; refit the shield")
        layers.append((w.astype(np.float64), b.astype(np.float64)))
        width = w.shape[1]
    if width != outputs:
        raise ShieldError(f"{where}/{WEIGHTS_FILE}: {_MODELS[model]} has {width} outputs, expected {outputs}")
    return layers
