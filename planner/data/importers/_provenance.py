"""Shared helpers for the importers: file reading with a digest, and the error every importer raises."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import InvalidInputError


class MalformedInputError(InvalidInputError):
    """An imported file is malformed: names the file, line, field and value (nothing was applied)."""

    def __init__(self, file: str, line: int | None, field: str | None, value: Any, problem: str) -> None:
        self.file, self.line, self.field, self.value, self.problem = file, line, field, value, problem
        where = file if line is None else f"{file}, line {line}"
        if field is not None:
            where += f", field {field!r}"
        shown = "" if value is None else f" (value {value!r})"
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


def read_source(path: str | Path, *, label: str | None = None) -> SourceFile:
    """Read a UTF-8 text file; MalformedInputError naming it when it is missing or not text."""
    p = Path(path)
    name = label or str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise MalformedInputError(name, None, None, None, "no such file") from None
    except IsADirectoryError:
        raise MalformedInputError(name, None, None, None, "is a directory, expected a file") from None
    except OSError as err:
        raise MalformedInputError(name, None, None, None, f"cannot be read ({err.strerror})") from None
    return source_from_bytes(raw, name)


def source_from_bytes(raw: bytes, label: str) -> SourceFile:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedInputError(label, None, None, None, "is not UTF-8 text") from None
    return SourceFile(label, text, hashlib.sha256(raw).hexdigest()[:12])


def bad(label: str, line: int | None, field: str | None, value: Any, problem: str) -> MalformedInputError:
    """The importers' error: `file, line N, field 'x': problem (value ...)`."""
    return MalformedInputError(label, line, field, value, problem)
