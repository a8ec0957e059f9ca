"""The planner's error family and the input checks every public function runs first.

The library raises; the CLI and the app turn a `PlannerError` into one clear line.
A `PlannerError` is an outcome the user can act on; anything else is a bug.
"""

from __future__ import annotations

import math
import sys
from typing import Any

MESSAGE_VALUE_CHARS = 80  # longest value echoed in a message; longer ones end with an ellipsis
_FLOAT_MAX_INT = int(sys.float_info.max)  # ints beyond this overflow when mixed with floats


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
        shown = "" if value is None else f" (value {brief(value)})"
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


def brief(value: object, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """`repr(value)` cut to `limit` characters with an ellipsis, safe for any value.

    Messages never echo a whole input: a 20 MB string, a 10**5000 integer (whose repr
    raises ValueError in Python >= 3.11) or a deep list become a short, readable excerpt.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits} digits"
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[: 4 * limit]  # repr of a prefix: never build the repr of a huge string
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still reported, not crashed on
        text = f"<{type(value).__name__}>"
    return truncate(text, limit)


def truncate(text: str, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """`text` cut to at most `limit` characters, ending with an ellipsis when it was cut; newlines shown as \\n."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_real(value: object) -> bool:
    """True for a float that is finite or an int within float range; never raises (math.isfinite(10**400) does)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -_FLOAT_MAX_INT <= value <= _FLOAT_MAX_INT
    return isinstance(value, float) and math.isfinite(value)


def require_finite(**values: float) -> None:
    """Raise InvalidInputError unless every value is a finite real number."""
    for name, value in values.items():
        if not is_finite_real(value):
            raise InvalidInputError(f"{name} must be a finite number, got {brief(value)}")


def require_positive(**values: float) -> None:
    """Raise InvalidInputError unless every value is finite and > 0."""
    for name, value in values.items():
        if not is_finite_real(value) or value <= 0:
            raise InvalidInputError(f"{name} must be finite and > 0, got {brief(value)}")


def require_non_negative(**values: float) -> None:
    """Raise InvalidInputError unless every value is finite and >= 0."""
    for name, value in values.items():
        if not is_finite_real(value) or value < 0:
            raise InvalidInputError(f"{name} must be finite and >= 0, got {brief(value)}")


def require_frac(*, allow_zero: bool = False, **values: float) -> None:
    """Raise InvalidInputError unless every value is finite and in (0, 1] (or [0, 1] with allow_zero)."""
    for name, value in values.items():
        ok = is_finite_real(value) and value <= 1 and (value >= 0 if allow_zero else value > 0)
        if not ok:
            interval = "[0, 1]" if allow_zero else "(0, 1]"
            raise InvalidInputError(f"{name} must be finite and in {interval}, got {brief(value)}")


def require_positive_int(**values: int) -> None:
    """Raise InvalidInputError unless every value is an integer >= 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be an integer >= 1, got {brief(value)}")


def require_in_range(name: str, value: float, low: float, high: float) -> None:
    """Raise InvalidInputError unless low <= value <= high (finite)."""
    if not is_finite_real(value) or not (low <= value <= high):
        raise InvalidInputError(f"{name} must be finite and in [{low:g}, {high:g}], got {brief(value)}")


def bounded_int(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high], or InvalidInputError naming the bounds.

    Accepts an int, or a float that is exactly integral (JSON writers emit 4096.0); rejects
    bools, strings, NaN, inf and 10**400 (compared as ints, so nothing overflows).
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    if number is None or not (low <= number <= high):
        raise InvalidInputError(f"{name} must be an integer in [{low}, {high}], got {brief(value)}")
    return number


def bounded_float(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    """`value` as a finite float in [low, high] ((low, high] with low_open), or InvalidInputError; never overflows."""
    ok = is_finite_real(value) and (low < value if low_open else low <= value) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise InvalidInputError(f"{name} must be a finite number in {interval}, got {brief(value)}")
    return float(value)  # type: ignore[arg-type]


def counted(n: int, noun: str) -> str:
    """'1 replica', '2 replicas': a whole count with its noun in the right number (English plural in -s)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
