"""Exceptions with messages a researcher can act on.

Every error raised for bad input names the problem, the offending value and what to
do. The CLI prints ``str(err)`` as one line instead of a traceback.
"""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["RaidstudyError", "ParameterError", "DataError", "ModelError", "IngestError"]


class RaidstudyError(Exception):
    """Base class for errors caused by user input rather than by a bug."""


class ParameterError(RaidstudyError, ValueError):
    """A study parameter is unknown, of the wrong type or out of range.

    Parameters
    ----------
    name : str
        The parameter's name.
    value : object
        The offending value.
    problem : str
        What is wrong, in words.
    accepted : iterable, optional
        The accepted values, listed in the message.
    hint : str, optional
        What to do instead.
    """

    def __init__(
        self,
        name: str,
        value: Any,
        problem: str,
        accepted: Iterable[Any] | None = None,
        hint: str | None = None,
    ):
        self.name = name
        self.value = value
        self.problem = problem
        self.accepted = list(accepted) if accepted is not None else None
        msg = f"parameter {name!r} = {value!r}: {problem}"
        if self.accepted is not None:
            shown = ", ".join(repr(a) for a in self.accepted[:40])
            more = f" (and {len(self.accepted) - 40} more)" if len(self.accepted) > 40 else ""
            msg += f"; accepted values: {shown}{more}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)


class DataError(RaidstudyError, ValueError):
    """The data cannot support what was asked (missing file, bad series, window outside the data)."""


class ModelError(RaidstudyError, ValueError):
    """The model cannot be estimated as specified (singular design, constant series, ...)."""


class IngestError(RaidstudyError):
    """A raw input file cannot be read at all."""
