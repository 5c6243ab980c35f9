"""The one exception type of the fleet server: a refusal with its HTTP status and a clear message."""

from __future__ import annotations


class FleetError(Exception):
    """A request the server refuses; answered as ``{"detail": message}`` with ``status``.

    Messages name what was wrong: the robot, the episode, the field.
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
