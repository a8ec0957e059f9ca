"""Shared helpers for the importers: file reading with a digest, and the error every importer raises."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.data.safe_io import MAX_TEXT_BYTES, InputFileError, decode_text, read_bytes
from planner.errors import InvalidInputError, brief, truncate


class MalformedInputError(InvalidInputError):
    """An imported file is malformed: names the file, line, field and value (nothing was applied)."""

    def __init__(self, file: str, line: int | None, field: str | None, value: Any, problem: str) -> None:
        self.file, self.line, self.field, self.value, self.problem = file, line, field, value, problem
        where = truncate(file, 120) if line is None else f"{truncate(file, 120)}, line {line}"
        if field is not None:
            where += f", field {brief(field)}"
        shown = "" if value is None else f" (value {brief(value)})"
        super().__init__(f"{where}: {problem}{shown}")


@dataclass(frozen=True)
class SourceFile:
    """An input file's text with what provenance notes need: its name and a short SHA-256."""

    label: str
    text: str
    sha256_12: str


@dataclass(frozen=True)
class ImportResult:
    """What an import produced: the records, and how many entries were skipped for which reason."""

    records: tuple[Any, ...]
    skipped: tuple[tuple[str, int], ...]
    source: str
    sha256_12: str


def read_source(path: str | Path, *, label: str | None = None, max_bytes: int = MAX_TEXT_BYTES) -> SourceFile:
    """Read a UTF-8 text file through `safe_io` (regular files only, size-limited, never blocking on a FIFO).

    MalformedInputError naming the file (and the line of a bad byte or a NUL) when it cannot be used.
    """
    p = Path(path)
    name = label or str(p)
    try:
        raw = read_bytes(p, what=name, max_bytes=max_bytes)
    except InputFileError as err:
        raise MalformedInputError(name, None, None, None, err.problem) from None
    return source_from_bytes(raw, name)


def source_from_bytes(raw: bytes, label: str) -> SourceFile:
    """A SourceFile from bytes (an upload): UTF-8 without NUL bytes, else MalformedInputError with the line."""
    try:
        text = decode_text(raw, what=label)
    except InputFileError as err:
        raise MalformedInputError(label, err.line, None, None, err.problem) from None
    return SourceFile(label, text, hashlib.sha256(raw).hexdigest()[:12])


def bad(label: str, line: int | None, field: str | None, value: Any, problem: str) -> MalformedInputError:
    """The importers' error: `file, line N, field 'x': problem (value ...)`."""
    return MalformedInputError(label, line, field, value, problem)
