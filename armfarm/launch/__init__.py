"""Starting components as processes: :mod:`armfarm.launch.local` today; a Ray launcher can sit beside it
with the same small interface (``start(spec) -> handle`` with ``pid``, ``alive()``, ``terminate()``,
``kill()``, ``wait(timeout)``, ``returncode``)."""

from armfarm.launch.local import ComponentSpec, LocalLauncher, LocalProcess

__all__ = ["ComponentSpec", "LocalLauncher", "LocalProcess"]
