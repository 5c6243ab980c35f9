"""The one exception type of :mod:`armfarm.data`.

Every problem with data a user handed us (a bad file, a malformed episode, a store that is not a
store) is a :class:`DataError`. Its message always says *where* (the file, ``path=``), *what*
(the field, ``field=``) and *what to do about it* (``hint=``), so that a CLI can print ``str(err)``
and nothing else.
"""

from __future__ import annotations

import os

_DEFAULT_HINT = "check the input data and try again"


class DataError(ValueError):
    """Invalid or unreadable data.

    Args:
        message: what is wrong, e.g. ``"contains NaN at row 17"``.
        path: the file or directory the data came from (or the store it was going to).
        field: the array, column or key concerned, e.g. ``"observations"``.
        hint: what the user can do about it.

    ``str(err)`` reads ``"<path>: field '<field>': <message> (hint: <hint>)"``; the parts that are
    unknown are left out. The parts are also kept as attributes of the same names.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike | None = None,
        field: str | None = None,
        hint: str = _DEFAULT_HINT,
    ):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"{self.path}:")
        if self.field is not None:
            where.append(f"field '{self.field}':")
        return " ".join([*where, f"{self.message} (hint: {self.hint})"])

    def __reduce__(self):
        # Keyword-only arguments are not pickled by the default implementation; errors must cross
        # process boundaries intact (multiprocessing collectors).
        return (_rebuild, (self.message, self.path, self.field, self.hint))


def _rebuild(message: str, path: str | None, field: str | None, hint: str) -> DataError:
    return DataError(message, path=path, field=field, hint=hint)
