"""Schema-checked CSV reading for the catalogs (private to planner.data, the econ and advice tables).

A table is declared once, as a record (a frozen dataclass whose annotations are its columns, see
`columns.py`); `read_records(source, Record)` checks the whole file and returns a `Table` of
records with the spreadsheet row of each. Checked: missing or unknown columns, empty required
cells, non-numbers, NaN/inf, numbers outside their bounds or plausible band (`Band`, which names
its source), malformed ISO dates and booleans, future access dates, non-http URLs, duplicate ids,
and rows that repeat a key (`KEY` columns) with different values. The text must be UTF-8 without
NUL bytes and with cells of at most 65,536 characters (read through `safe_io`). The cells are
validated by a pydantic-core validator compiled from the declaration (`columns.validator`); the
first problem raises `CatalogError(file, row, column, value)` with the row number as a spreadsheet
shows it (header = row 1), in the file's column order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from planner.data.columns import Col, columns, derived_fields, first_problem, validator
from planner.data.safe_io import InputFileError, decode_text, iter_csv_rows, read_bytes
from planner.errors import CatalogError

R = TypeVar("R")

__all__ = ["Col", "Table", "read_records"]


def _checked_rows(source: str | Path | bytes, schema: dict[str, Col], *, name: str | None,
                  id_column: str | None, strict_columns: bool) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """(file label, [(row number, typed values)]) of a CSV checked against `schema`."""
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
    validate = validator(schema)
    from pydantic_core import ValidationError

    out: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    key_columns = [c for c in header if c in schema and schema[c].key]
    keyed: dict[tuple[Any, ...], dict[str, Any]] = {}
    absent = {c: None for c in schema if c not in header}
    for number, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise CatalogError(label, number, None, None,
                               f"has {len(cells)} cells, the header has {len(header)}")
        texts: dict[str, str | None] = dict(absent)
        for column, cell in zip(header, cells, strict=True):
            if column not in schema:
                continue
            text = cell.strip()
            if not text and schema[column].required:
                raise CatalogError(label, number, column, cell, "is empty but required")
            texts[column] = text or None
        try:
            record = validate(texts)
        except ValidationError as err:
            column, problem = first_problem(err, schema, header)
            raise CatalogError(label, number, column, texts.get(column), problem) from None
        if key_columns:
            _check_key(label, number, record, key_columns, keyed)
        if id_column:
            key = str(record[id_column]).lower()
            if key in seen:
                raise CatalogError(label, number, id_column, record[id_column],
                                   f"duplicate id (first on row {seen[key]})")
            seen[key] = number
        out.append((number, record))
    return label, out


@dataclass(frozen=True)
class Table(Generic[R]):
    """The validated records of one CSV, with the spreadsheet row of each (header = row 1)."""

    label: str
    records: tuple[R, ...]
    rows: tuple[int, ...]

    def __iter__(self) -> Iterator[R]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def numbered(self) -> Iterator[tuple[int, R]]:
        return zip(self.rows, self.records, strict=True)

    def by(self, column: str) -> dict[Any, R]:
        """The records keyed by one column (an id column: read_records checked it is unique)."""
        return {getattr(r, column): r for r in self.records}

    def error(self, row: int, column: str | None, value: Any, problem: str) -> CatalogError:
        return CatalogError(self.label, row, column, value, problem)

    def require(self, column: str, valid: Callable[[Any], bool], what: str) -> None:
        """CatalogError on the first row whose `column` fails `valid` ("unknown <what>": a dangling reference)."""
        for row, record in self.numbered():
            value = getattr(record, column)
            if value is not None and not valid(value):
                raise self.error(row, column, value, f"unknown {what}")

    def require_not_after(self, column: str, bound_column: str) -> None:
        """CatalogError on the first row whose date `column` is later than its date `bound_column`."""
        for row, record in self.numbered():
            value, bound = getattr(record, column), getattr(record, bound_column)
            if value is not None and bound is not None and value > bound:
                raise self.error(row, column, value.isoformat(), f"is later than {bound_column} ({bound.isoformat()})")

    def names(self, id_column: str, alias_column: str | None = None) -> dict[str, str]:
        """Every lower-cased id and alias -> its id; CatalogError if a name is taken twice."""
        names: dict[str, str] = {}
        for row, record in self.numbered():
            canonical = getattr(record, id_column)
            for name in (canonical, *(getattr(record, alias_column) or () if alias_column else ())):
                key = str(name).lower()
                if key in names and names[key] != canonical:
                    raise self.error(row, alias_column or id_column, name, f"name already used by {names[key]!r}")
                names[key] = canonical
        return names


def read_records(source: str | Path | bytes, record: type[R], *, name: str | None = None,
                 id_column: str | None = None, strict_columns: bool = True) -> Table[R]:
    """Parse a CSV (path or bytes) into `record`s, checked against the columns the record declares.

    CatalogError on the first problem (see the module docstring); fields the record derives (not
    CSV columns) are None until the loader sets them. `id_column` must be unique (case-insensitive);
    `strict_columns=False` ignores unknown extra columns (user uploads with notes of their own), never
    missing ones.
    """
    label, rows = _checked_rows(source, columns(record), name=name, id_column=id_column,
                                strict_columns=strict_columns)
    extra = dict.fromkeys(derived_fields(record))
    return Table(label, tuple(record(**values, **extra) for _, values in rows), tuple(n for n, _ in rows))


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
