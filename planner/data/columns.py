"""Column types for the typed catalog records: each table is declared once, as a frozen dataclass.

A record's annotations are its CSV columns: the type, the check, the plausible band with its
source, whether the column is part of the row key, may be empty (`X | None`) or may be absent
from older files. For example

    usd_per_gpu_hour: Annotated[Positive, Band(0.01, 200.0, "shipped prices span ...")]
    region: Annotated[str | None, KEY]
    price_as_of: Annotated[PastDate | None, MAY_BE_ABSENT] = None

`columns(Record)` reads that declaration into one `Col` per column (what the CSV reader, the CSV
writers and the app's table editors need), and `validator(columns)` compiles it into a
pydantic-core `SchemaValidator` (pydantic v2's validation engine) the first time a table is read:
nothing here imports pydantic at `import planner`, and records built in code below the boundary
are plain frozen dataclasses that are not validated again. Each check's `parse` is its exact rule
and the source of its one-line messages; numbers, words and URLs run as pydantic-core's native
validators (no Python call per cell), and a failure there is re-read by `parse` for the message.

The markers also implement `__get_pydantic_core_schema__`, so `pydantic.TypeAdapter(Record)` validates
a row with the same checks (a test holds the two equal).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from planner.errors import brief

MAX_COUNT = 10**12  # largest whole number a catalog cell may hold (token limits are < 1e8, counts < 1e6)


def _fmt(value: float) -> str:
    return f"{value:,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _fail(problem: str) -> Any:
    from pydantic_core import PydanticCustomError

    # The problem is the whole message: no {placeholders} are filled in (a source text may hold braces).
    return PydanticCustomError("catalog", problem.replace("{", "(").replace("}", ")"))


class _Check:
    """A column's parser and check: `parse(value)` returns the typed value or raises ValueError(problem).

    Values may be cell text (the CSV reader) or already typed (a record built in code and validated).
    `takes_empty`: an empty cell is parsed too (an empty list), not read as None.
    """

    kind = "str"
    takes_empty = False
    refused = "is not accepted"

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def core_schema(self) -> Any:
        from pydantic_core import core_schema

        def run(value: Any) -> Any:
            try:
                return self.parse(value)
            except ValueError as err:
                raise _fail(str(err)) from None

        return core_schema.no_info_plain_validator_function(run)

    def describe(self, error: dict[str, Any]) -> str:
        """The problem of a failed cell in this check's words (a native check's error is re-read by `parse`)."""
        if error["type"] == "catalog":
            return str(error["msg"])
        try:
            self.parse(error["input"])
        except ValueError as err:
            return str(err)
        return self.refused  # the native check is stricter than `parse` here (digits of other scripts)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return self.core_schema()


@dataclass(frozen=True)
class Text(_Check):
    """Any text (a cell is never longer than safe_io's 65,536-character limit)."""

    kind = "str"

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value

    def core_schema(self) -> Any:
        from pydantic_core import core_schema

        return core_schema.str_schema(strict=True)


@dataclass(frozen=True)
class OneOf(_Check):
    """One of a fixed set of words (a pricing tier, an engine policy)."""

    allowed: tuple[str, ...]
    kind = "str"

    def parse(self, value: Any) -> str:
        if value not in self.allowed:
            raise ValueError(f"unknown value (allowed: {', '.join(self.allowed)})")
        return value

    def core_schema(self) -> Any:
        from pydantic_core import core_schema

        return core_schema.literal_schema(list(self.allowed))


@dataclass(frozen=True)
class Number(_Check):
    """A finite number above `gt` (or at least `ge`) and at most `le`."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    refused = "must be a number"

    @property
    def kind(self) -> str:  # type: ignore[override]
        if (self.gt, self.ge, self.le) == (0, None, None):
            return "float+"
        if (self.gt, self.ge, self.le) == (None, 0, None):
            return "float0"
        if (self.gt, self.ge, self.le) == (0, None, 1):
            return "frac"
        return "float"

    def _range(self) -> str:
        low = f"({_fmt(self.gt)}" if self.gt is not None else f"[{_fmt(self.ge)}"  # type: ignore[arg-type]
        return f"must be in {low}, {_fmt(self.le)}]"  # type: ignore[arg-type]

    def parse(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be finite")
        bounded = self.le is not None and (self.gt is not None or self.ge is not None)
        if self.gt is not None and not number > self.gt:
            raise ValueError(self._range() if bounded else f"must be > {_fmt(self.gt)}")
        if self.ge is not None and not number >= self.ge:
            raise ValueError(self._range() if bounded else f"must be >= {_fmt(self.ge)}")
        if self.le is not None and not number <= self.le:
            raise ValueError(self._range() if bounded else f"must be <= {_fmt(self.le)}")
        return number

    def core_schema(self) -> Any:  # the same check in pydantic-core (no Python call per cell)
        from pydantic_core import core_schema

        return core_schema.float_schema(allow_inf_nan=False, gt=self.gt, ge=self.ge, le=self.le)


@dataclass(frozen=True)
class Whole(_Check):
    """A whole number in [ge, le] (a count, a token limit)."""

    ge: int = 1
    le: int = MAX_COUNT
    kind = "int+"
    refused = "must be a whole number"

    def parse(self, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ValueError("must be a whole number") from None
        if not isinstance(value, int):
            raise ValueError("must be a whole number")
        if value < self.ge:
            raise ValueError(f"must be >= {self.ge:,}")
        if value > self.le:
            raise ValueError(f"must be <= {self.le:,}")
        return value

    def core_schema(self) -> Any:
        from pydantic_core import core_schema

        return core_schema.int_schema(ge=self.ge, le=self.le)


@dataclass(frozen=True)
class TrueFalse(_Check):
    """`true` or `false` (any case); nothing else (no yes/no, 1/0)."""

    kind = "bool"

    def parse(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        low = value.lower() if isinstance(value, str) else None
        if low not in ("true", "false"):
            raise ValueError("must be true or false")
        return low == "true"


@dataclass(frozen=True)
class IsoDay(_Check):
    """An ISO date YYYY-MM-DD; `past`: not after today (an access date is a day that has happened)."""

    past: bool = False

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "past_date" if self.past else "date"

    def parse(self, value: Any) -> dt.date:
        if isinstance(value, dt.datetime) or not isinstance(value, (str, dt.date)):
            raise ValueError("must be an ISO date YYYY-MM-DD")
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError("must be an ISO date YYYY-MM-DD") from None
        today = dt.date.today()
        if self.past and value > today:
            raise ValueError(f"is in the future (today is {today.isoformat()})")
        return value


@dataclass(frozen=True)
class HttpUrl(_Check):
    """An http(s) URL (a source the reader can open)."""

    kind = "url"

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    def core_schema(self) -> Any:
        from pydantic_core import core_schema

        return core_schema.str_schema(pattern=r"^https?://", strict=True)


@dataclass(frozen=True)
class Words(_Check):
    """A `;`-separated list of words in one cell (aliases, languages, engines) as a tuple.

    `may_be_empty`: an empty cell is the empty tuple; `allowed`: the words it may hold (None: any)."""

    may_be_empty: bool = False
    allowed: tuple[str, ...] | None = None
    kind = "list"

    @property
    def takes_empty(self) -> bool:  # type: ignore[override]
        return self.may_be_empty

    def parse(self, value: Any) -> tuple[str, ...]:
        if value is None and self.may_be_empty:
            return ()
        if isinstance(value, str):
            words = tuple(part.strip() for part in value.split(";") if part.strip())
        elif isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
            words = tuple(value)
        else:
            raise ValueError("must be a ;-separated list of words")
        if self.allowed is not None:
            for word in words:
                if word not in self.allowed:
                    raise ValueError(f"unknown value {brief(word)} (allowed: {', '.join(self.allowed)})")
        return words


@dataclass(frozen=True)
class Band:
    """The plausible band of a number: outside [low, high] is a unit or typing error, not a value.

    `source` says where the bounds come from (shown in the error)."""

    low: float
    high: float
    source: str

    def problem(self, value: float) -> str | None:
        if self.low <= value <= self.high:
            return None
        return f"is outside the plausible band [{self.low:g}, {self.high:g}] ({self.source})"

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def check(value: Any) -> Any:
            problem = None if value is None else self.problem(value)
            if problem:
                raise _fail(problem)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))


class _Marker:
    """A flag in a column's annotation that pydantic leaves alone (it changes no value)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        return handler(source)


KEY = _Marker("KEY")  # part of the row key: two rows with the same key must not differ elsewhere
MAY_BE_ABSENT = _Marker("MAY_BE_ABSENT")  # a column added later: files without it still load (cells become None)


class _Derived(_Marker):
    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.any_schema()


DERIVED = _Derived("DERIVED")  # not a CSV column: the loader sets it after validation (a model's architecture)

# The column types the records use.
Positive = Annotated[float, Number(gt=0)]
NonNegative = Annotated[float, Number(ge=0)]
Frac = Annotated[float, Number(gt=0, le=1)]  # a fraction in (0, 1]
Share = Annotated[float, Number(ge=0, le=1)]  # a share in [0, 1]
Count = Annotated[int, Whole()]
Url = Annotated[str, HttpUrl()]
PastDate = Annotated[dt.date, IsoDay(past=True)]
Date = Annotated[dt.date, IsoDay()]
Flag = Annotated[bool, TrueFalse()]
Names = Annotated[tuple[str, ...], Words()]  # "a;b;c" in a cell
NamesOrEmpty = Annotated[tuple[str, ...], Words(may_be_empty=True)]  # an empty cell is ()
# An annotation without a check gets the one its type names.
_DEFAULT_CHECK: dict[Any, _Check] = {str: Text(), float: Number(), int: Whole(), bool: TrueFalse(),
                                     dt.date: IsoDay(), tuple: Words()}


@dataclass(frozen=True)
class Col:
    """One CSV column: how to parse it and whether it may be empty.

    Read from a record's declaration by `columns()`; `kind` names the check for the app's table
    editors (str | float+ | float0 | frac | float | int+ | bool | date | past_date | list | url).
    A Col built by hand from a kind alone (an older table not yet declared as a record) works the same.
    """

    kind: str
    required: bool = True
    may_be_absent: bool = False  # a column added later: files without it still load (cells become None)
    band: tuple[float, float, str] | None = None  # (low, high, where the bound comes from) for a number
    key: bool = False  # part of the row key: two rows with the same key must not differ elsewhere
    check: _Check | None = None  # the parser (None: the one `kind` names)

    @property
    def parser(self) -> _Check:
        return self.check if self.check is not None else _KIND_CHECKS[self.kind]


_KIND_CHECKS: dict[str, _Check] = {
    "str": Text(), "float+": Number(gt=0), "float0": Number(ge=0), "frac": Number(gt=0, le=1), "float": Number(),
    "int+": Whole(), "bool": TrueFalse(), "date": IsoDay(), "past_date": IsoDay(past=True), "list": Words(),
    "url": HttpUrl(),
}


def _unwrap(hint: Any) -> tuple[Any, list[Any], bool]:
    """(base type, metadata found on the way, whether None is allowed) of an annotation."""
    metadata: list[Any] = []
    optional = False
    while True:
        if typing.get_origin(hint) is Annotated:
            metadata.extend(hint.__metadata__)
            hint = hint.__origin__
            continue
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            arms = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(arms) != 1:
                raise TypeError(f"a column holds one type or None, not {hint!r}")
            optional = True
            hint = arms[0]
            continue
        break
    return (typing.get_origin(hint) or hint), metadata, optional


@functools.cache
def columns(record: type) -> dict[str, Col]:
    """The CSV columns a record declares, in its field order (derived fields left out)."""
    hints = typing.get_type_hints(record, include_extras=True)
    out: dict[str, Col] = {}
    for fld in dataclasses.fields(record):
        base, metadata, optional = _unwrap(hints[fld.name])
        if DERIVED in metadata:
            continue
        check = next((m for m in metadata if isinstance(m, _Check)), None) or _DEFAULT_CHECK[base]
        band = next((m for m in metadata if isinstance(m, Band)), None)
        out[fld.name] = Col(check.kind, required=not optional and not check.takes_empty,
                            may_be_absent=MAY_BE_ABSENT in metadata,
                            band=(band.low, band.high, band.source) if band else None, key=KEY in metadata,
                            check=check)
    return out


def derived_fields(record: type) -> tuple[str, ...]:
    """The fields a record holds that are not CSV columns (the loader sets them)."""
    return tuple(f.name for f in dataclasses.fields(record) if f.name not in columns(record))


@functools.cache
def _compiled(schema: tuple[tuple[str, Col], ...]) -> Any:
    from pydantic_core import SchemaValidator, core_schema

    fields = {}
    for name, col in schema:
        one = col.parser.core_schema()
        if col.band is not None:
            one = Band(*col.band).__get_pydantic_core_schema__(None, lambda _, inner=one: inner)
        if (not col.required or col.may_be_absent) and not col.parser.takes_empty:
            one = core_schema.nullable_schema(one)
        fields[name] = core_schema.typed_dict_field(one, required=True)
    return SchemaValidator(core_schema.typed_dict_schema(fields, extra_behavior="forbid"))


def validator(schema: dict[str, Col]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that validates one row (column -> cell text or None) and returns the typed values.

    It raises pydantic_core.ValidationError; `first_problem` reads the first error as (column, problem).
    """
    return _compiled(tuple(schema.items())).validate_python


def first_problem(error: Any, schema: dict[str, Col], order: Sequence[str]) -> tuple[str, str]:
    """(column, problem) of the error in the column that comes first in `order` (the file's header)."""
    position = {name: i for i, name in enumerate(order)}
    errors = error.errors(include_url=False)
    first = min(errors, key=lambda e: position.get(str(e["loc"][0]) if e["loc"] else "", len(position)))
    column = str(first["loc"][0]) if first["loc"] else ""
    col = schema.get(column)
    return column, (col.parser.describe(first) if col is not None else str(first["msg"]))
