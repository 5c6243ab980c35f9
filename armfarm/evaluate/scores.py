"""D4RL-normalised scores (Fu et al. 2020): ``100 * (R - R_random) / (R_expert - R_random)``.

Reference returns are D4RL's ``infos.py`` values; ``None`` is returned where no reference exists.
"""

from __future__ import annotations

from armfarm.envs.registry import env_family

# (random return, expert return) per environment family, from d4rl/infos.py.
D4RL_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}


def normalized_score(env_id: str, episode_return: float) -> float | None:
    """The D4RL-normalised score of ``episode_return`` in ``env_id``, or ``None`` without a reference."""
    reference = D4RL_REFERENCE_RETURNS.get(env_family(env_id))
    if reference is None:
        return None
    low, high = reference
    return 100.0 * (episode_return - low) / (high - low)
