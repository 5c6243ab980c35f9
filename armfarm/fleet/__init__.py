"""The fleet: robots upload episodes over HTTP into one durable store and pull published policies.

* :mod:`armfarm.fleet.server` — the FastAPI app behind ``armfarm serve`` (its HTTP API is at
  ``/openapi.json``); :mod:`~armfarm.fleet.ingest` turns uploads into stored episodes,
  :mod:`~armfarm.fleet.staging` keeps the chunks of long episodes until they are complete,
  :mod:`~armfarm.fleet.registry` keeps robots and policy versions in the store's index,
  :mod:`~armfarm.fleet.auth` and :mod:`~armfarm.fleet.limits` guard the door.
* :mod:`armfarm.fleet.payload` — the binary episode wire format (NumPy only).
* :mod:`armfarm.fleet.client` — the robot side: act, record, buffer on disk, upload, follow policies.
* :mod:`armfarm.fleet.admin` — admin calls (register robots, publish policies);
  :mod:`armfarm.fleet.sim` — a simulated fleet of robot processes.
"""
