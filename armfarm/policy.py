"""``NumpyPolicy``: a published deterministic MLP policy that runs with NumPy alone.

A learner exports its actor with ``export_policy``; the result runs on a robot, a notebook or a CI box
with nothing but NumPy installed (this module must never import JAX). The network is

    x = (flatten(obs) - obs_mean) / obs_std          # if obs_mean / obs_std are given
    h = relu(x @ W_0 + b_0) ... relu(h @ W_{L-2} + b_{L-2})
    y = tanh(h @ W_{L-1} + b_{L-1})                   # in [-1, 1]
    action = low + (y + 1) / 2 * (high - low)         # if action_low / action_high are given

A hierarchical policy (HIQL's) has a subgoal stage in front: from the normalised input ``x`` it
predicts a latent subgoal ``z`` with a second ReLU MLP of linear output, rescales it to length
``sqrt(rep_dim)``, and the network above then acts on ``concat((x * subgoal_mask)[:, :keep], z)``
(:class:`SubgoalStage`; archive members ``subgoal_weight_i``, ``subgoal_bias_i``, ``subgoal_mask``).

A policy from images has an encoder stage in front (:class:`EncoderStage`): a conv encoder from
:mod:`armfarm.encoders` turns ``(H, W, C)`` images into features, and the network above acts on them
(archive members ``encoder_<layer>_<w|b|scale|offset>``). A policy over discrete actions (DQN, CQL, BC
on ``Discrete`` spaces) has ``output="argmax"``: the network's last layer gives one value per action
and the policy returns ``action_offset + argmax`` as an integer.

Dict observations are flattened by concatenating ``obs[k]`` for ``k`` in ``obs_keys`` (the sorted key
order recorded by the data layer). Files are ``.npz`` archives of plain arrays plus a JSON header
(stored as a ``uint8`` array), loaded with ``allow_pickle=False``.

A policy may ship with its shield: the files of a shield directory (``armfarm shield fit``) ride in the
archive as ``uint8`` members ``shield__<file>`` (see :data:`SHIELD_MEMBERS`), so that one signed file
carries both and a robot updates them together (:func:`armfarm.shield.attach_shield`). Files without
them are the policies of earlier releases and load unchanged.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from armfarm import __version__
from armfarm.durable import write_atomic
from armfarm.encoders import PARAM_NAMES, check_layers, encode

POLICY_FORMAT = "armfarm-numpy-policy"
POLICY_FORMAT_VERSION = 1

__all__ = ["NumpyPolicy", "PolicyFormatError", "SubgoalStage", "EncoderStage", "POLICY_FORMAT", "POLICY_FORMAT_VERSION",
           "SHIELD_MEMBERS"]


class PolicyFormatError(ValueError):
    """A policy file is missing pieces, corrupt, or written by an incompatible armfarm version."""


MAX_HEADER_BYTES = 64 << 10  # a policy header is a small JSON object
MAX_MEMBER_BYTES = 256 << 20  # one array, inflated
MAX_TOTAL_BYTES = 1 << 30  # all arrays, inflated
SHIELD_MEMBERS = ("shield.json", "weights.npz", "fallback.npz", "recovery.npz")  # a shield directory's files
_SHIELD_PREFIX = "shield__"
_MEMBER = re.compile(r"(header_json|weight_\d{1,3}|bias_\d{1,3}|obs_mean|obs_std|action_low|action_high|"
                     r"subgoal_weight_\d{1,3}|subgoal_bias_\d{1,3}|subgoal_mask|encoder_\d{1,3}_(?:w|b|scale|offset)|"
                     r"shield__(?:shield\.json|weights\.npz|fallback\.npz|recovery\.npz))\.npy")


def _read_members(path: Path) -> dict[str, np.ndarray]:
    """The policy's arrays, reading only the members a policy has, each after checking its declared
    inflated size, so a zip bomb or a foreign member is refused before it is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            unknown = [i.filename for i in infos if not _MEMBER.fullmatch(i.filename)]
            if unknown:
                raise PolicyFormatError(f"{path}: unexpected members {unknown[:5]}; not an armfarm policy file")
            big = [i.filename for i in infos if i.file_size > MAX_MEMBER_BYTES]
            total = sum(i.file_size for i in infos)
            if big or total > MAX_TOTAL_BYTES:
                raise PolicyFormatError(f"{path}: members inflate to {total} bytes (each at most {MAX_MEMBER_BYTES}, "
                                        f"all at most {MAX_TOTAL_BYTES}); refusing to read it")
            arrays = {}
            for info in infos:
                with archive.open(info) as member:
                    data = member.read(info.file_size + 1)
                if len(data) != info.file_size:
                    raise PolicyFormatError(f"{path}: member {info.filename} is not the size it declares")
                arrays[info.filename[:-4]] = np.load(io.BytesIO(data), allow_pickle=False)
            return arrays
    except PolicyFormatError:
        raise
    except Exception as e:  # zipfile.BadZipFile, CRC errors, truncated files, pickled content...
        raise PolicyFormatError(f"{path}: not a readable armfarm policy file ({type(e).__name__}: {e})") from e


def _bytes_member(a: np.ndarray, name: str, path: Path) -> bytes:
    if a.dtype != np.uint8 or a.ndim != 1:
        raise PolicyFormatError(f"{path}: member {name} must be a 1-D uint8 array (a file's bytes), got {a.dtype} {a.shape}")
    return a.tobytes()


def _vec(x: Any, name: str, dim: int) -> np.ndarray | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.float32).reshape(-1)
    if a.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},), got {np.shape(x)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


class SubgoalStage:
    """The high level of a hierarchical policy: ``z = MLP(x)`` (ReLU hidden layers, linear output),
    ``z <- z / ||z|| * sqrt(rep_dim)``; the low level's input is ``concat((x * mask)[:, :keep], z)``."""

    def __init__(self, weights: Sequence[Any], biases: Sequence[Any], mask: Any, keep: int):
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float32).reshape(-1) for b in biases]
        if not self.weights or len(self.weights) != len(self.biases):
            raise ValueError("a subgoal stage needs the same positive number of weights and biases")
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[1],) or (i and w.shape[0] != self.weights[i - 1].shape[1]):
                raise ValueError(f"subgoal layer {i}: inconsistent shapes {w.shape} and {b.shape}")
        self.input_dim, self.rep_dim = int(self.weights[0].shape[0]), int(self.weights[-1].shape[1])
        self.mask = np.asarray(mask, np.float32).reshape(-1)
        if self.mask.shape != (self.input_dim,):
            raise ValueError(f"subgoal mask must have shape ({self.input_dim},), got {self.mask.shape}")
        self.keep = int(keep)
        if not 0 <= self.keep <= self.input_dim:
            raise ValueError(f"subgoal keep must be in [0, {self.input_dim}], got {keep}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        z = h @ self.weights[-1] + self.biases[-1]
        z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-6) * np.sqrt(self.rep_dim)
        return np.concatenate([(x * self.mask)[:, :self.keep], z], axis=-1)


class EncoderStage:
    """An image encoder in front of a policy's network: ``(N, H, W, C)`` images -> ``(N, F)`` features
    (:func:`armfarm.encoders.encode`). ``layers`` is the JSON-able layer list, ``params`` one dict of arrays
    per layer, ``input_shape`` the ``(H, W, C)`` the policy takes."""

    def __init__(self, layers: Sequence[Mapping[str, Any]], params: Sequence[Mapping[str, Any]],
                 input_shape: Sequence[int]):
        self.layers = [dict(layer) for layer in layers]
        self.params = [{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in p.items()} for p in params]
        check_layers(self.layers, self.params)
        self.input_shape = tuple(int(d) for d in input_shape)
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"an encoder's input_shape must be (H, W, C), got {self.input_shape}")
        self.feature_dim = int(encode(self.layers, self.params, np.zeros((1, *self.input_shape), np.float32)).shape[1])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return encode(self.layers, self.params, images)


class NumpyPolicy:
    """Deterministic ReLU MLP with a tanh output, observation normalisation and action rescaling.

    Args:
        weights: ``[W_0 (obs_dim, h_1), ..., W_{L-1} (h_{L-1}, act_dim)]``.
        biases: ``[b_0 (h_1,), ..., b_{L-1} (act_dim,)]``.
        obs_mean, obs_std: per-feature normalisation (both or neither).
        action_low, action_high: bounds that ``[-1, 1]`` is mapped onto (both or neither).
        obs_keys: key order for dict observations.
        metadata: JSON-serialisable dict (``algo``, ``step``, ``armfarm_version``, ...).
        shield_files: the files of the shield this policy ships with (name in :data:`SHIELD_MEMBERS` ->
            bytes), or None. The policy itself never reads them; :mod:`armfarm.shield` does.
        subgoal: a :class:`SubgoalStage` in front of the network (hierarchical policies), or None.
        encoder: an :class:`EncoderStage` in front of the network (policies from images), or None.
        output: ``"tanh"`` (continuous actions, rescaled to the bounds) or ``"argmax"`` (a discrete action:
            ``action_offset`` plus the index of the network's largest output).
        action_offset: the first discrete action's number (a ``Discrete(n, start)`` space's ``start``).
        frame_stack: with an encoder trained on ``k`` stacked frames, the policy stacks them itself: given
            one frame ``(H, W, C)`` it acts on the last ``k`` frames of the episode, oldest first, the
            episode's first frame repeated before it began (as the learner's sampler did); :meth:`reset`
            starts an episode. A stacked image ``(H, W, k C)`` or a batch of them is taken as it is.
    """

    def __init__(
        self,
        weights: Sequence[Any],
        biases: Sequence[Any],
        obs_mean: Any = None,
        obs_std: Any = None,
        action_low: Any = None,
        action_high: Any = None,
        obs_keys: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        shield_files: Mapping[str, bytes] | None = None,
        subgoal: SubgoalStage | None = None,
        encoder: EncoderStage | None = None,
        output: str = "tanh",
        action_offset: int = 0,
        frame_stack: int = 1,
    ):
        if len(weights) == 0 or len(weights) != len(biases):
            raise ValueError(f"need the same positive number of weights and biases, got {len(weights)} and {len(biases)}")
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.ascontiguousarray(b, dtype=np.float32).reshape(-1) for b in biases]
        prev = None
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2:
                raise ValueError(f"weights[{i}] must be 2-D, got shape {w.shape}")
            if b.shape != (w.shape[1],):
                raise ValueError(f"biases[{i}] must have shape ({w.shape[1]},), got {b.shape}")
            if prev is not None and w.shape[0] != prev:
                raise ValueError(f"weights[{i}] has {w.shape[0]} inputs but layer {i - 1} has {prev} outputs")
            prev = w.shape[1]
        self.subgoal = subgoal
        if subgoal is not None and self.weights[0].shape[0] != subgoal.keep + subgoal.rep_dim:
            raise ValueError(f"weights[0] has {self.weights[0].shape[0]} inputs; the subgoal stage gives "
                             f"{subgoal.keep} + {subgoal.rep_dim}")
        self.encoder = encoder
        if encoder is not None:
            if subgoal is not None:
                raise ValueError("a policy has an encoder stage or a subgoal stage, not both")
            if self.weights[0].shape[0] != encoder.feature_dim:
                raise ValueError(f"weights[0] has {self.weights[0].shape[0]} inputs; the encoder gives "
                                 f"{encoder.feature_dim} features")
        if output not in ("tanh", "argmax"):
            raise ValueError(f"output must be 'tanh' or 'argmax', got {output!r}")
        self.output, self.action_offset = output, int(action_offset)
        self.frame_stack = int(frame_stack)
        if self.frame_stack < 1 or (self.frame_stack > 1 and (encoder is None or encoder.input_shape[2] % self.frame_stack)):
            raise ValueError(f"frame_stack {frame_stack} needs an encoder whose channels it divides")
        self._frames: list[np.ndarray] = []
        if output == "argmax" and (action_low is not None or action_high is not None):
            raise ValueError("a discrete (argmax) policy has no action bounds to rescale to")
        if encoder is not None:
            self.obs_dim = int(np.prod(encoder.input_shape))
        else:
            self.obs_dim = int(self.weights[0].shape[0] if subgoal is None else subgoal.input_dim)
        self.act_dim = int(self.weights[-1].shape[1])
        if (obs_mean is None) != (obs_std is None):
            raise ValueError("give both obs_mean and obs_std, or neither")
        if encoder is not None and obs_mean is not None:
            raise ValueError("a policy from images rescales pixels in its encoder; it takes no obs_mean/obs_std")
        if (action_low is None) != (action_high is None):
            raise ValueError("give both action_low and action_high, or neither")
        self.obs_mean = _vec(obs_mean, "obs_mean", self.obs_dim)
        self.obs_std = _vec(obs_std, "obs_std", self.obs_dim)
        if self.obs_std is not None and np.any(self.obs_std <= 0):
            raise ValueError("obs_std must be positive")
        self.action_low = _vec(action_low, "action_low", self.act_dim)
        self.action_high = _vec(action_high, "action_high", self.act_dim)
        if self.action_low is not None and np.any(self.action_high < self.action_low):
            raise ValueError("action_high must be >= action_low")
        self.obs_keys = None if obs_keys is None else [str(k) for k in obs_keys]
        self.metadata = dict(metadata) if metadata is not None else {"armfarm_version": __version__}
        if shield_files is not None:
            unknown = sorted(set(shield_files) - set(SHIELD_MEMBERS))
            if unknown or "shield.json" not in shield_files:
                raise ValueError(f"shield_files must hold shield.json and only files among {SHIELD_MEMBERS}, "
                                 f"got {sorted(shield_files)}")
        self.shield_files = None if shield_files is None else {k: bytes(v) for k, v in shield_files.items()}

    # ------------------------------------------------------------------------------------ inference

    def _flatten(self, obs: Any) -> tuple[np.ndarray, bool]:
        d = self.obs_dim
        if isinstance(obs, Mapping):
            if self.obs_keys is None:
                raise ValueError("this policy has no obs_keys, so it cannot flatten a dict observation; pass an array")
            missing = [k for k in self.obs_keys if k not in obs]
            if missing:
                raise ValueError(f"observation dict lacks keys {missing}; the policy expects {self.obs_keys}")
            parts = [np.asarray(obs[k], dtype=np.float32) for k in self.obs_keys]
            lead = {p.shape[0] if p.ndim >= 2 else None for p in parts}
            if len(lead) == 1 and None not in lead:
                n = lead.pop()
                if sum(int(np.prod(p.shape[1:])) for p in parts) == d:
                    return np.concatenate([p.reshape(n, -1) for p in parts], axis=1), False
            if sum(p.size for p in parts) == d:
                return np.concatenate([p.reshape(-1) for p in parts])[None], True
            shapes = {k: p.shape for k, p in zip(self.obs_keys, parts, strict=True)}
            raise ValueError(f"observation dict with shapes {shapes} does not flatten to {d} features")
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim == 1 and x.shape[0] == d:
            return x[None], True
        if x.ndim == 2 and x.shape[1] == d:
            return x, False
        if x.ndim >= 2 and x.size == d:
            return x.reshape(1, d), True
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == d:
            return x.reshape(x.shape[0], d), False
        raise ValueError(
            f"observation has shape {x.shape}; this policy expects {d} features "
            f"(a single observation ({d},) or a batch (N, {d}))"
        )

    def reset(self, rng: Any = None) -> None:
        """Start an episode: forget the stacked frames (a no-op without frame stacking)."""
        self._frames = []

    def _images(self, obs: Any) -> tuple[np.ndarray, bool]:
        shape = self.encoder.input_shape
        x = np.asarray(obs)
        frame = (shape[0], shape[1], shape[2] // self.frame_stack)
        if self.frame_stack > 1 and x.shape == frame:
            x = x.copy()  # an environment may reuse its observation buffer
            self._frames = (self._frames or [x] * self.frame_stack)[1:] + [x]
            return np.concatenate(self._frames, axis=-1)[None], True
        if x.shape == shape:
            return x[None], True
        if x.ndim == 4 and x.shape[1:] == shape:
            return x, False
        frames = f" or one frame {frame} to stack" if self.frame_stack > 1 else ""
        raise ValueError(f"observation has shape {x.shape}; this policy takes images {shape} "
                         f"(one image {shape} or a batch (N, {', '.join(map(str, shape))})){frames}")

    def __call__(self, obs: Any) -> np.ndarray:
        """Actions for one observation -> ``(act_dim,)`` or for a batch -> ``(N, act_dim)``; a discrete
        policy returns one integer action (``()``) or ``(N,)`` of them."""
        if self.encoder is not None:
            images, single = self._images(obs)
            x = self.encoder(images)
        else:
            x, single = self._flatten(obs)
        if self.obs_mean is not None:
            x = (x - self.obs_mean) / self.obs_std
        if self.subgoal is not None:
            x = self.subgoal(x)
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = np.maximum(x @ w + b, 0.0)
        if self.output == "argmax":
            choice = np.argmax(x @ self.weights[-1] + self.biases[-1], axis=-1).astype(np.int64) + self.action_offset
            return choice[0] if single else choice
        y = np.tanh(x @ self.weights[-1] + self.biases[-1])
        if self.action_low is not None:
            y = self.action_low + (y + 1.0) * 0.5 * (self.action_high - self.action_low)
        y = y.astype(np.float32, copy=False)
        return y[0] if single else y

    def __repr__(self) -> str:
        sizes = [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]
        stage = "" if self.subgoal is None else f", subgoal_sizes={[self.obs_dim] + [w.shape[1] for w in self.subgoal.weights]}"
        if self.encoder is not None:
            stage = f", encoder_input={self.encoder.input_shape}"
        if self.output != "tanh":
            stage += f", output={self.output}"
        return f"NumpyPolicy(sizes={sizes}{stage}, obs_keys={self.obs_keys}, metadata={self.metadata})"

    # ------------------------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> Path:
        """Write the policy to ``path`` (an ``.npz``; written to a temporary file, then renamed)."""
        path = Path(path)
        header = {
            "format": POLICY_FORMAT,
            "format_version": POLICY_FORMAT_VERSION,
            "num_layers": len(self.weights),
            "hidden_activation": "relu",
            "output_activation": self.output,
            "action_offset": self.action_offset,
            "normalize_obs": self.obs_mean is not None,
            "rescale_actions": self.action_low is not None,
            "obs_keys": self.obs_keys,
            "metadata": self.metadata,
        }
        if self.subgoal is not None:
            header["subgoal"] = {"num_layers": len(self.subgoal.weights), "keep": self.subgoal.keep}
        if self.encoder is not None:
            header["encoder"] = {"layers": self.encoder.layers, "input_shape": list(self.encoder.input_shape),
                                 "frame_stack": self.frame_stack}
        try:
            header_bytes = json.dumps(header, sort_keys=True).encode()
        except TypeError as e:
            raise TypeError(f"policy metadata must be JSON-serialisable: {e}") from e
        arrays: dict[str, np.ndarray] = {"header_json": np.frombuffer(header_bytes, dtype=np.uint8)}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"weight_{i}"] = w
            arrays[f"bias_{i}"] = b
        for name in ("obs_mean", "obs_std", "action_low", "action_high"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        if self.subgoal is not None:
            for i, (w, b) in enumerate(zip(self.subgoal.weights, self.subgoal.biases, strict=True)):
                arrays[f"subgoal_weight_{i}"] = w
                arrays[f"subgoal_bias_{i}"] = b
            arrays["subgoal_mask"] = self.subgoal.mask
        if self.encoder is not None:
            for i, p in enumerate(self.encoder.params):
                arrays.update({f"encoder_{i}_{name}": a for name, a in p.items()})
        for name, data in (self.shield_files or {}).items():
            arrays[_SHIELD_PREFIX + name] = np.frombuffer(data, dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: np.savez(f, **arrays))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NumpyPolicy:
        """Read a policy written by :meth:`save`; raises :class:`PolicyFormatError` if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no policy file at {path}")
        arrays = _read_members(path)
        if "header_json" not in arrays:
            raise PolicyFormatError(f"{path}: no header_json entry; not an armfarm policy file")
        raw = arrays["header_json"].astype(np.uint8).tobytes()
        if len(raw) > MAX_HEADER_BYTES:
            raise PolicyFormatError(f"{path}: policy header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
        try:
            header = json.loads(raw.decode())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise PolicyFormatError(f"{path}: corrupt policy header ({type(e).__name__}: {e})") from e
        if not isinstance(header, dict) or header.get("format") != POLICY_FORMAT:
            raise PolicyFormatError(f"{path}: header format is not {POLICY_FORMAT!r}")
        version = header.get("format_version")
        if version != POLICY_FORMAT_VERSION:
            raise PolicyFormatError(
                f"{path}: policy format version {version}; this armfarm ({__version__}) reads version "
                f"{POLICY_FORMAT_VERSION}"
            )
        shield_files = {k[len(_SHIELD_PREFIX):]: _bytes_member(arrays[k], k, path)
                        for k in arrays if k.startswith(_SHIELD_PREFIX)}
        try:
            n = int(header["num_layers"])
            weights = [arrays[f"weight_{i}"] for i in range(n)]
            biases = [arrays[f"bias_{i}"] for i in range(n)]
            subgoal = None
            if header.get("subgoal") is not None:
                m = int(header["subgoal"]["num_layers"])
                subgoal = SubgoalStage([arrays[f"subgoal_weight_{i}"] for i in range(m)],
                                       [arrays[f"subgoal_bias_{i}"] for i in range(m)], arrays["subgoal_mask"],
                                       int(header["subgoal"]["keep"]))
            encoder = None
            if header.get("encoder") is not None:
                layers = header["encoder"]["layers"]
                encoder = EncoderStage(layers, [{name: arrays[f"encoder_{i}_{name}"] for name in PARAM_NAMES
                                                 if f"encoder_{i}_{name}" in arrays} for i in range(len(layers))],
                                       header["encoder"]["input_shape"])
            return cls(
                weights,
                biases,
                obs_mean=arrays["obs_mean"] if header["normalize_obs"] else None,
                obs_std=arrays["obs_std"] if header["normalize_obs"] else None,
                action_low=arrays["action_low"] if header["rescale_actions"] else None,
                action_high=arrays["action_high"] if header["rescale_actions"] else None,
                obs_keys=header.get("obs_keys"),
                metadata=header.get("metadata") or {},
                shield_files=shield_files or None,
                subgoal=subgoal,
                encoder=encoder,
                output=header.get("output_activation", "tanh"),
                action_offset=int(header.get("action_offset", 0)),
                frame_stack=int((header.get("encoder") or {}).get("frame_stack", 1)),
            )
        except KeyError as e:
            raise PolicyFormatError(f"{path}: policy file lacks entry {e}") from e
        except (ValueError, TypeError, AttributeError) as e:
            raise PolicyFormatError(f"{path}: inconsistent policy file ({e})") from e
