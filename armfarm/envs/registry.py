"""Creating Gymnasium environments by id, with Gymnasium-Robotics registered on demand."""

from __future__ import annotations

import contextlib
import io
import warnings

import gymnasium as gym

_ROBOTICS_REGISTERED = False


def _register_robotics() -> None:
    """Register Gymnasium-Robotics environments (PointMaze, AntMaze, Fetch, ...) once."""
    global _ROBOTICS_REGISTERED
    if _ROBOTICS_REGISTERED:
        return
    # gymnasium_robotics prints a notice about Adroit reward versions on import; keep our output clean.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
    _ROBOTICS_REGISTERED = True


OGBENCH_FAMILIES = ("pointmaze", "antmaze", "humanoidmaze", "antsoccer", "cube", "scene", "puzzle")


def _register_ogbench(env_id: str) -> None:
    """Register OGBench's environments (importing ``ogbench`` does), or say how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ogbench  # noqa: F401
    except ImportError:
        raise ValueError(f"{env_id} is an OGBench environment; install it with `pip install 'armfarm[goals]'`") from None


@contextlib.contextmanager
def global_numpy_seed(seed: int):
    """Seed NumPy's global generator for the block and restore its state afterwards. OGBench's
    environments draw start and goal noise from ``np.random``; this makes their episodes repeatable
    without disturbing anyone else's use of the global generator."""
    import numpy as np

    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def make_env(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make(env_id)``, registering Gymnasium-Robotics or OGBench first when the id needs it.

    Raises a ``ValueError`` that names the id when no such environment exists.
    """
    if env_id not in gym.registry and env_id.split("-")[0] in OGBENCH_FAMILIES:
        _register_ogbench(env_id)
    if env_id.split("/")[-1].split("_")[0] not in gym.registry and env_id not in gym.registry:
        _register_robotics()
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise ValueError(
            f"unknown environment id {env_id!r}: {str(exc).rstrip('.')}. Try e.g. Hopper-v5, HalfCheetah-v5, "
            "Walker2d-v5 or PointMaze_UMazeDense-v3."
        ) from exc


def env_family(env_id: str) -> str:
    """The lower-case family name used for score normalisation: ``Hopper-v5`` -> ``hopper``."""
    return env_id.split("/")[-1].split("-")[0].split("_")[0].lower()
