"""The farm: one command runs collect -> learn -> evaluate -> publish, unattended, and survives its faults.

``config`` (farm.toml), ``state`` (everything on disk), ``supervisor`` (processes and restarts),
``robot``, ``learner`` and ``evaluator`` (the components), ``gate`` (the promotion decision),
``status`` (status and rollback), ``dashboard`` (the live page the fleet server serves).
"""
