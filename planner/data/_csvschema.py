"""Schema-checked CSV reading for the catalogs (private to catalog.py and the importers).

A schema maps every column to a parser. The whole file is checked: missing or unknown
columns, empty required cells, non-numbers, NaN/inf, non-positive values where a value
must be positive, malformed ISO dates and booleans, duplicate ids, and an empty or
non-http `source_url`, a number outside the column's plausible band (`Col.band`, which
names its source), and rows that repeat a key (`Col.key` columns) with different values. The
text must be UTF-8 without NUL bytes and with cells of at most 65,536 characters (read through
`safe_io`). The first problem raises `CatalogError(file, row, column, value)` with the row number
as a spreadsheet shows it (header = row 1).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.data.safe_io import InputFileError, decode_text, iter_csv_rows, read_bytes
from planner.errors import CatalogError

MAX_COUNT = 10**12  # largest whole number a catalog cell may hold (token limits are < 1e8, counts < 1e6)


@dataclass(frozen=True)
class Col:
    """One column: how to parse it and whether it may be empty."""

    kind: str  # str | float+ | float0 | int+ | bool | date | past_date | list | url | frac
    required: bool = True
    may_be_absent: bool = False  # a column added later: files without it still load (cells become None)
    band: tuple[float, float, str] | None = None  # (low, high, where the bound comes from) for a number
    key: bool = False  # part of the row key: two rows with the same key must not differ elsewhere


def _parse(kind: str, text: str) -> Any:
    if kind == "str":
        return text
    if kind == "list":
        return tuple(part.strip() for part in text.split(";") if part.strip())
    if kind == "url":
        if not text.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return text
    if kind == "bool":
        low = text.lower()
        if low not in ("true", "false"):
            raise ValueError("must be true or false")
        return low == "true"
    if kind in ("date", "past_date"):
        try:
            value = dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError("must be an ISO date YYYY-MM-DD") from None
        if kind == "past_date" and value > dt.date.today():
            raise ValueError(f"is in the future (today is {dt.date.today().isoformat()})")
        return value
    if kind in ("float+", "float0", "frac"):
        try:
            value = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(value):
            raise ValueError("must be finite")
        if kind == "float+" and value <= 0:
            raise ValueError("must be > 0")
        if kind == "float0" and value < 0:
            raise ValueError("must be >= 0")
        if kind == "frac" and not 0 < value <= 1:
            raise ValueError("must be in (0, 1]")
        return value
    if kind == "int+":
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < 1:
            raise ValueError("must be >= 1")
        if value > MAX_COUNT:
            raise ValueError(f"must be <= {MAX_COUNT:,}")
        return value
    raise AssertionError(f"unknown column kind {kind}")


def read_rows(source: str | Path | bytes, schema: dict[str, Col], *, name: str | None = None,
              id_column: str | None = None, strict_columns: bool = True) -> list[dict[str, Any]]:
    """Parse a CSV (path or bytes) against `schema`; CatalogError on the first problem.

    Empty optional cells become None. `strict_columns=False` ignores unknown extra columns
    (for user uploads that carry notes of their own), but never missing ones.
    """
    label = name or ("uploaded CSV" if isinstance(source, (bytes, bytearray)) else Path(source).name)
    try:
        raw = bytes(source) if isinstance(source, (bytes, bytearray)) else read_bytes(source, what=label)
        text = decode_text(raw, what=label)
        numbered = list(iter_csv_rows(text, what=label))
    except InputFileError as err:
        problem = err.problem
        if not problem.startswith(("is ", "has ", "contains ", "cannot ")):
            problem = f"cannot be read ({problem})"
        raise CatalogError(label, err.line, None, None, problem) from None
    rows = [cells for _, cells in numbered]
    if not rows:
        raise CatalogError(label, None, None, None, "is empty (no header row)")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in schema if c not in header and not schema[c].may_be_absent]
    if missing:
        raise CatalogError(label, 1, missing[0], None, f"missing column (expected columns: {', '.join(schema)})")
    unknown = [h for h in header if h not in schema]
    if unknown and strict_columns:
        raise CatalogError(label, 1, unknown[0], None, "unknown column")
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise CatalogError(label, 1, dup, None, "duplicate column")
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    key_columns = [c for c in header if c in schema and schema[c].key]
    keyed: dict[tuple[Any, ...], dict[str, Any]] = {}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise CatalogError(label, number, None, None,
                               f"has {len(cells)} cells, the header has {len(header)}")
        record: dict[str, Any] = {c: None for c in schema if c not in header}
        for column, cell in zip(header, cells, strict=True):
            if column not in schema:
                continue
            spec, text = schema[column], cell.strip()
            if not text:
                if spec.required:
                    raise CatalogError(label, number, column, cell, "is empty but required")
                record[column] = None
                continue
            try:
                record[column] = _parse(spec.kind, text)
            except ValueError as err:
                raise CatalogError(label, number, column, text, str(err)) from None
            if spec.band is not None:
                low, high, why = spec.band
                if not low <= record[column] <= high:
                    raise CatalogError(label, number, column, text,
                                       f"is outside the plausible band [{low:g}, {high:g}] ({why})")
        if key_columns:
            _check_key(label, number, record, key_columns, keyed)
        if id_column:
            key = str(record[id_column]).lower()
            if key in seen:
                raise CatalogError(label, number, id_column, record[id_column],
                                   f"duplicate id (first on row {seen[key]})")
            seen[key] = number
        record["_row"] = number
        out.append(record)
    return out


def _check_key(label: str, number: int, record: dict[str, Any], key_columns: list[str],
               keyed: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    """CatalogError when a row repeats an earlier row's key with a different value elsewhere."""
    key = tuple(str(record.get(c) or "").lower() for c in key_columns)
    first = keyed.get(key)
    if first is None:
        keyed[key] = {**record, "_row": number}
        return
    differing = next((c for c in record if c != "notes" and not c.startswith("_") and record[c] != first.get(c)),
                     None)
    what = f"differs in {differing!r} from" if differing else "repeats"
    raise CatalogError(label, number, differing or key_columns[0], record.get(differing) if differing else None,
                       f"{what} row {first['_row']} with the same {', '.join(key_columns)} (conflicting duplicate)")


def check_unique_names(label: str, rows: list[dict[str, Any]], id_column: str,
                       alias_column: str | None) -> dict[str, str]:
    """Map every lower-cased id and alias to its id; CatalogError if an alias is taken twice."""
    names: dict[str, str] = {}
    for row in rows:
        canonical = row[id_column]
        for name in (canonical, *(row.get(alias_column) or () if alias_column else ())):
            key = str(name).lower()
            if key in names and names[key] != canonical:
                raise CatalogError(label, row["_row"], alias_column or id_column, name,
                                   f"name already used by {names[key]!r}")
            names[key] = canonical
    return names


def require_not_after(label: str, rows: list[dict[str, Any]], column: str, bound_column: str) -> None:
    """CatalogError on the first row whose date `column` is later than its date `bound_column`."""
    for row in rows:
        value, bound = row.get(column), row.get(bound_column)
        if value is not None and bound is not None and value > bound:
            raise CatalogError(label, row["_row"], column, value.isoformat(),
                               f"is later than {bound_column} ({bound.isoformat()})")


def require_refs(label: str, rows: list[dict[str, Any]], column: str, valid: Callable[[Any], bool],
                 what: str) -> None:
    """CatalogError on the first row whose `column` fails `valid` (a dangling reference)."""
    for row in rows:
        value = row.get(column)
        if value is not None and not valid(value):
            raise CatalogError(label, row["_row"], column, value, f"unknown {what}")
