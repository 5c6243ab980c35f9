"""A policy that ships with its shield: one signed ``policy.npz`` carries both, so robots update them together.

:func:`attach_shield` copies a shield directory's files into a policy file (as the policy format's
``shield__<file>`` members, see :mod:`armfarm.policy`); ``armfarm fleet publish POLICY --shield DIR`` does
this before publishing. A robot that adopts such a version unpacks the shield with :func:`unpack_shield`
into a directory named after the files' digest and runs the policy behind it (and behind nothing else).
NumPy only, like the rest of the robot side.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from armfarm.policy import SHIELD_MEMBERS, NumpyPolicy
from armfarm.shield.config import ShieldError
from armfarm.shield.runtime import Shield


def read_shield_files(directory: str | Path) -> dict[str, bytes]:
    """The files of a shield directory that a policy can carry, after checking that they load."""
    directory = Path(directory)
    Shield.load(directory)  # refuse a broken shield before it travels anywhere
    return {name: (directory / name).read_bytes() for name in SHIELD_MEMBERS if (directory / name).is_file()}


def attach_shield(policy_path: str | Path, shield_dir: str | Path, out: str | Path) -> Path:
    """Write ``out``: the policy at ``policy_path`` carrying the shield in ``shield_dir``.

    Raises:
        ShieldError: the shield does not load, or its observation and action sizes differ from the policy's.
    """
    policy = NumpyPolicy.load(policy_path)
    files = read_shield_files(shield_dir)
    check_fits(Shield.load(shield_dir), policy, str(shield_dir))
    return NumpyPolicy(policy.weights, policy.biases, policy.obs_mean, policy.obs_std, policy.action_low,
                       policy.action_high, policy.obs_keys, policy.metadata, shield_files=files,
                       subgoal=policy.subgoal).save(out)


def check_fits(shield: Shield, policy: NumpyPolicy, where: str) -> None:
    """Raise :class:`ShieldError` unless ``shield`` guards a robot of ``policy``'s sizes."""
    if (shield.config.obs_dim, shield.config.act_dim) != (policy.obs_dim, policy.act_dim):
        raise ShieldError(f"{where}: the shield is for {shield.config.obs_dim} observation features and "
                          f"{shield.config.act_dim} actions, but the policy has {policy.obs_dim} and {policy.act_dim}")


def shield_digest(files: dict[str, bytes]) -> str:
    """A digest of a shield's files (names and contents), which names its unpacked directory."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def unpack_shield(policy: NumpyPolicy, root: str | Path) -> Shield | None:
    """The shield ``policy`` ships with, unpacked under ``root/<digest>`` and loaded (None if it ships none).

    The directory is written to a temporary name and renamed, so a robot killed mid-way never finds a
    half-written shield; an existing one (the same digest) is reused.

    Raises:
        ShieldError: the shipped shield does not load or does not fit the policy.
    """
    if not policy.shield_files:
        return None
    root = Path(root)
    target = root / shield_digest(policy.shield_files)
    if not target.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".unpacking-"))
        try:
            for name, data in policy.shield_files.items():
                (tmp / name).write_bytes(data)
            try:
                os.rename(tmp, target)
            except OSError:  # another process unpacked the same shield first
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    shield = Shield.load(target)
    check_fits(shield, policy, str(target))
    return shield
