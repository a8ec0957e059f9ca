"""The planner's error family and the input checks every public function runs first.

The library raises; the CLI and the app turn a `PlannerError` into one clear line.
A `PlannerError` is an outcome the user can act on; anything else is a bug.
"""

from __future__ import annotations

import math
from typing import Any


class PlannerError(Exception):
    """Expected outcome the user can act on; the UI shows the message."""


class InvalidInputError(PlannerError, ValueError):
    """A value the user gave is out of range, malformed or unknown."""


class UnknownNameError(InvalidInputError, KeyError):
    """A model, GPU, precision or other id is not in the catalog; the message lists the closest ones."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CatalogError(PlannerError, ValueError):
    """A data file is malformed: names the file, row, column and value."""

    def __init__(self, file: str, row: int | None, column: str | None, value: Any, problem: str) -> None:
        self.file, self.row, self.column, self.value, self.problem = file, row, column, value, problem
        where = file
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        shown = "" if value is None else f" (value {value!r})"
        super().__init__(f"{where}: {problem}{shown}")


class DoesNotFitError(PlannerError):
    """Weights plus KV cache exceed the memory of the GPUs asked for (a plan outcome, not a bug)."""

    def __init__(self, message: str, *, shortfall_gb: float = math.nan, suggestions: tuple[str, ...] = ()) -> None:
        self.shortfall_gb = shortfall_gb
        self.suggestions = suggestions
        super().__init__(message)


class UnreachableTargetError(PlannerError):
    """A latency target cannot be met on this hardware at any concurrency."""


class NoBreakEvenError(PlannerError):
    """The API is cheaper than self-hosting at every volume considered."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_finite(**values: float) -> None:
    """Raise InvalidInputError unless every value is a finite real number."""
    for name, value in values.items():
        if not _is_number(value) or not math.isfinite(value):
            raise InvalidInputError(f"{name} must be a finite number, got {value!r}")


def require_positive(**values: float) -> None:
    """Raise InvalidInputError unless every value is finite and > 0."""
    for name, value in values.items():
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise InvalidInputError(f"{name} must be finite and > 0, got {value!r}")


def require_non_negative(**values: float) -> None:
    """Raise InvalidInputError unless every value is finite and >= 0."""
    for name, value in values.items():
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            raise InvalidInputError(f"{name} must be finite and >= 0, got {value!r}")


def require_frac(*, allow_zero: bool = False, **values: float) -> None:
    """Raise InvalidInputError unless every value is finite and in (0, 1] (or [0, 1] with allow_zero)."""
    for name, value in values.items():
        ok = _is_number(value) and math.isfinite(value) and value <= 1 and (value >= 0 if allow_zero else value > 0)
        if not ok:
            interval = "[0, 1]" if allow_zero else "(0, 1]"
            raise InvalidInputError(f"{name} must be finite and in {interval}, got {value!r}")


def require_positive_int(**values: int) -> None:
    """Raise InvalidInputError unless every value is an integer >= 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")


def require_in_range(name: str, value: float, low: float, high: float) -> None:
    """Raise InvalidInputError unless low <= value <= high (finite)."""
    if not _is_number(value) or not math.isfinite(value) or not (low <= value <= high):
        raise InvalidInputError(f"{name} must be finite and in [{low:g}, {high:g}], got {value!r}")
