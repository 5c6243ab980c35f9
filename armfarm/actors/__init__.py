"""Actors: an environment, a behaviour and a sink (a store or a fleet client).

One loop serves ``armfarm collect`` (store sinks in worker processes), ``armfarm fleet sim`` and the
farm's robots (a :class:`~armfarm.fleet.client.FleetClient`, which spools and uploads what it is given).
This package imports NumPy and Gymnasium only; the store sink imports the store when it is built.
"""

from armfarm.actors.actor import Actor, RecordedEpisode
from armfarm.actors.store_sink import StoreSink

__all__ = ["Actor", "RecordedEpisode", "StoreSink"]
