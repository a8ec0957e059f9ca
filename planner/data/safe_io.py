"""Bounded file reading and checked file writing: the only way the planner touches a user's file.

Every reader refuses, with one `InputFileError` naming the file (and the line for JSON/TOML/CSV):
special files (FIFOs, devices, sockets, directories, anything under /proc, /sys or /dev) without
opening them for a blocking read; files over a size limit (read at most `max_bytes + 1` bytes, so
/proc-style files that report size 0 cannot stream without end); text that is not UTF-8 or carries
NUL bytes; JSON/TOML nested deeper than `MAX_NESTING_DEPTH`, with duplicate keys, NaN/Infinity or
numbers beyond float range; CSV with a cell or row count over its limit.

`write_text_atomic` checks the output path (parent exists and is a directory, target not a
directory or special file), writes a temporary file beside it and `os.replace`s it into place, so
a failed write never leaves a half-written file, and turns permission or name errors into one line.

Limits are module constants (documented in docs/bad_input.md); callers may pass tighter ones.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from planner import units
from planner.errors import InvalidInputError, brief, truncate

MAX_TEXT_BYTES = 16 * units.MIB  # largest config/scenario/import file read; real ones are < 1 MiB
MAX_NESTING_DEPTH = 64  # deepest JSON/TOML nesting accepted; config.json and scenarios nest < 5 levels
MAX_CSV_CELL_CHARS = 65_536  # below csv's own 131,072 field limit, so its error never surfaces
MAX_CSV_ROWS = 1_000_000
MAX_DIR_FILES = 10_000  # files listed from one import directory
REFUSED_ROOTS = ("/proc", "/sys", "/dev")  # pseudo-file systems: endless, blocking or side-effecting reads
_PATH_CHARS = 120  # longest path echoed in a message


class InputFileError(InvalidInputError):
    """A file the user named cannot be used: names the file, the line where known, and the problem."""

    def __init__(self, what: str, path: str | os.PathLike[str] | None, problem: str, *,
                 line: int | None = None, key: str | None = None) -> None:
        self.what, self.path, self.line, self.problem = what, None if path is None else str(path), line, problem
        self.key = key  # the JSON key at fault (a duplicate), for callers that report fields
        where = what if path is None else f"{what} {truncate(str(path), _PATH_CHARS)}"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {problem}")


# --------------------------------------------------------------------------- raw reading


def refused_root(path: str | os.PathLike[str]) -> str | None:
    """The pseudo-file-system root (/proc, /sys, /dev) `path` resolves into, else None."""
    return _refused_root(Path(path))


def _refused_root(path: Path) -> str | None:
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return None
    for root in REFUSED_ROOTS:
        if real == root or real.startswith(root + os.sep):
            return root
    return None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _os_problem(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, IsADirectoryError):
        return "is a directory, expected a file"
    if isinstance(err, NotADirectoryError):
        return "a parent in the path is not a directory"
    return f"cannot be read ({err.strerror or str(err) or type(err).__name__})"


def read_bytes(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; InputFileError otherwise, never blocking.

    The file is opened with O_NONBLOCK and checked with fstat before reading, so a FIFO that
    appears between the check and the open still cannot block the read.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputFileError(what, None, f"needs a file path, got {brief(path)}")
    p = Path(path)
    root = _refused_root(p)
    if root is not None:
        raise InputFileError(what, p, f"is under {root}, which holds system pseudo-files, not input files")
    try:
        info = os.stat(p)
    except (OSError, ValueError) as err:
        raise InputFileError(what, p, _os_problem(err) if isinstance(err, OSError) else "is not a valid path") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(what, p, f"is {_kind(info.st_mode)}, expected a regular file")
    if info.st_size > max_bytes:
        raise InputFileError(what, p, f"is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise InputFileError(what, p, _os_problem(err)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputFileError(what, p, f"is {_kind(os.fstat(fd).st_mode)}, expected a regular file")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(max_bytes + 1 - total, units.MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as err:
        raise InputFileError(what, p, _os_problem(err)) from None
    finally:
        os.close(fd)
    if total > max_bytes:
        raise InputFileError(what, p, f"is over the {max_bytes:,}-byte limit")
    return b"".join(chunks)


def decode_text(raw: bytes, *, what: str, path: str | os.PathLike[str] | None = None,
                allow_nul: bool = False) -> str:
    """UTF-8 text (a leading BOM dropped); InputFileError naming the line of a bad byte or a NUL."""
    try:
        text = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputFileError(what, path, f"is not UTF-8 text (byte 0x{raw[err.start]:02x})", line=line) from None
    if not allow_nul and "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputFileError(what, path, "contains a NUL byte (binary data, not text)", line=line)
    return text


def read_text(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file of at most `max_bytes` without NUL bytes; InputFileError otherwise."""
    return decode_text(read_bytes(path, what=what, max_bytes=max_bytes), what=what, path=path)


def list_files(directory: str | os.PathLike[str], *, what: str, pattern: str = "*",
               max_files: int = MAX_DIR_FILES) -> list[Path]:
    """Regular files in `directory` matching `pattern`, sorted; InputFileError on a special entry.

    Entries are checked with lstat-free `os.stat` (symlinks followed) but never opened, so a FIFO
    or device among them is refused by name instead of blocking a later read.
    """
    d = Path(directory)
    root = _refused_root(d)
    if root is not None:
        raise InputFileError(what, d, f"is under {root}, which holds system pseudo-files, not input files")
    try:
        info = os.stat(d)
    except OSError as err:
        raise InputFileError(what, d, "no such directory" if isinstance(err, FileNotFoundError)
                             else _os_problem(err)) from None
    if not stat.S_ISDIR(info.st_mode):
        raise InputFileError(what, d, "is not a directory")
    try:
        entries = sorted(d.glob(pattern))
    except OSError as err:
        raise InputFileError(what, d, _os_problem(err)) from None
    if len(entries) > max_files:
        raise InputFileError(what, d, f"has {len(entries):,} entries matching {pattern!r}, "
                             f"over the {max_files:,} limit")
    files = []
    for entry in entries:
        try:
            mode = os.stat(entry).st_mode
        except OSError as err:
            raise InputFileError(what, entry, _os_problem(err)) from None
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise InputFileError(what, entry, f"is {_kind(mode)}, expected a regular file")
        files.append(entry)
    return files


# --------------------------------------------------------------------------- JSON and TOML


def _line_of_key(text: str, key: str) -> int | None:
    """Line of the second `"key":` in `text` (where a duplicate key appears), if it can be found."""
    pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    hits = [m.start() for m in pattern.finditer(text)]
    return text.count("\n", 0, hits[1]) + 1 if len(hits) > 1 else None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


class _BadNumber(Exception):
    def __init__(self, token: str, problem: str) -> None:
        self.token, self.problem = token, problem


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isnan(value) or (math.isinf(value) and token.lstrip("+-").lower().startswith("inf")):
        raise _BadNumber(token, "is not a finite number (nan and inf are not accepted)")
    if not math.isfinite(value):
        raise _BadNumber(token, "is beyond the range of a float (about 1.8e308)")
    return value


def _bounded_int(token: str) -> int:
    if len(token.lstrip("-+")) > 308:  # beyond float range: every planner field is far smaller
        raise _BadNumber(token, f"is an integer of {len(token)} digits, beyond any sensible value")
    return int(token)


def _reject_constant(token: str) -> float:
    raise _BadNumber(token, "is not valid JSON (NaN and Infinity are not numbers)")


def check_depth(value: Any, *, what: str, path: str | os.PathLike[str] | None = None,
                max_depth: int = MAX_NESTING_DEPTH) -> None:
    """InputFileError when lists/dicts nest deeper than `max_depth` (checked iteratively, no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > max_depth:
                raise InputFileError(what, path, f"nests deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))


def loads_json(text: str | bytes, *, what: str, path: str | os.PathLike[str] | None = None,
               max_depth: int = MAX_NESTING_DEPTH, allow_nonfinite: bool = False) -> Any:
    """Parse JSON strictly: duplicate keys, NaN/Infinity (unless allowed), 1e400 and deep nesting refused.

    `allow_nonfinite=True` reads the NaN/Infinity/-Infinity literals Python's json writes (Hugging Face
    configs carry `"time_step_limit": [0.0, Infinity]`); a number literal beyond float range is
    refused either way.

    InputFileError names `what` (and `path`) and the line. Bytes are decoded as UTF-8 first.
    """
    if isinstance(text, (bytes, bytearray)):
        text = decode_text(bytes(text), what=what, path=path)
    elif "\x00" in text:
        raise InputFileError(what, path, "contains a NUL byte (binary data, not text)",
                             line=text.count("\n", 0, text.index("\x00")) + 1)
    if len(text) > MAX_TEXT_BYTES:
        raise InputFileError(what, path, f"is {len(text):,} characters, over the {MAX_TEXT_BYTES:,} limit")
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates, parse_float=_finite_float,
                          parse_int=_bounded_int,
                          parse_constant=float if allow_nonfinite else _reject_constant)
    except json.JSONDecodeError as err:
        raise InputFileError(what, path, f"is not valid JSON ({err.msg}, column {err.colno})",
                             line=err.lineno) from None
    except _DuplicateKey as err:
        raise InputFileError(what, path, f"has the key {brief(err.key)} twice (a duplicate key is ambiguous)",
                             line=_line_of_key(text, err.key), key=err.key) from None
    except _BadNumber as err:
        raise InputFileError(what, path, f"number {brief(err.token)} {err.problem}",
                             line=_line_of_token(text, err.token)) from None
    except RecursionError:
        raise InputFileError(what, path, f"nests deeper than {max_depth} levels") from None
    except ValueError as err:  # e.g. int() digit limits
        raise InputFileError(what, path, f"is not valid JSON ({truncate(str(err))})") from None
    check_depth(data, what=what, path=path, max_depth=max_depth)
    return data


def _line_of_token(text: str, token: str) -> int | None:
    at = text.find(token)
    return None if at < 0 else text.count("\n", 0, at) + 1


_TOML_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)|\(at end of document\)")


def loads_toml(text: str, *, what: str, path: str | os.PathLike[str] | None = None,
               max_depth: int = MAX_NESTING_DEPTH) -> dict[str, Any]:
    """Parse TOML (duplicate keys are a TOML error); nan/inf floats and deep nesting refused, with the line."""
    if "\x00" in text:
        raise InputFileError(what, path, "contains a NUL byte (binary data, not text)",
                             line=text.count("\n", 0, text.index("\x00")) + 1)
    try:
        data = tomllib.loads(text, parse_float=_finite_float)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        found = _TOML_WHERE.search(message)
        line = None
        if found:
            line = int(found.group(1)) if found.group(1) else text.count("\n") + 1
        problem = _TOML_WHERE.sub("", message).strip()
        raise InputFileError(what, path, f"is not valid TOML ({truncate(problem)})", line=line) from None
    except _BadNumber as err:
        raise InputFileError(what, path, f"number {brief(err.token)} {err.problem}",
                             line=_line_of_token(text, err.token)) from None
    except RecursionError:
        raise InputFileError(what, path, f"nests deeper than {max_depth} levels") from None
    except ValueError:  # tomllib passes int()'s digit-limit error through
        raise InputFileError(what, path, "has an integer of over 4,300 digits, beyond any sensible value") from None
    check_depth(data, what=what, path=path, max_depth=max_depth)
    return data


def read_json(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_TEXT_BYTES,
              allow_nonfinite: bool = False) -> Any:
    """`loads_json` of a file read with `read_text`."""
    return loads_json(read_text(path, what=what, max_bytes=max_bytes), what=what, path=path,
                      allow_nonfinite=allow_nonfinite)


def read_toml(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_TEXT_BYTES) -> dict[str, Any]:
    """`loads_toml` of a file read with `read_text`."""
    return loads_toml(read_text(path, what=what, max_bytes=max_bytes), what=what, path=path)


# --------------------------------------------------------------------------- CSV


def iter_csv_rows(text: str, *, what: str, path: str | os.PathLike[str] | None = None,
                  max_cell_chars: int = MAX_CSV_CELL_CHARS,
                  max_rows: int = MAX_CSV_ROWS) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each CSV record; InputFileError on malformed CSV or a limit crossed.

    The line number is where the record starts, as a text editor shows it (header = line 1).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    count = 0
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            problem = "a cell is over the CSV field size limit" if "field limit" in str(err) else str(err)
            raise InputFileError(what, path, f"is not valid CSV ({problem})", line=reader.line_num) from None
        count += 1
        if count > max_rows:
            raise InputFileError(what, path, f"has more than {max_rows:,} rows")
        for cell in cells:
            if len(cell) > max_cell_chars:
                raise InputFileError(what, path, f"has a cell of {len(cell):,} characters, over the "
                                     f"{max_cell_chars:,} limit", line=start)
        yield start, cells
        start = reader.line_num + 1


def read_csv_rows(source: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_TEXT_BYTES,
                  max_cell_chars: int = MAX_CSV_CELL_CHARS, max_rows: int = MAX_CSV_ROWS) -> list[list[str]]:
    """All records of a CSV file (read with `read_text`), each a list of cells."""
    text = read_text(source, what=what, max_bytes=max_bytes)
    return [cells for _, cells in iter_csv_rows(text, what=what, path=source, max_cell_chars=max_cell_chars,
                                                max_rows=max_rows)]


# --------------------------------------------------------------------------- writing


def check_output_path(path: str | os.PathLike[str], *, what: str) -> Path:
    """`path` as a Path after checking it can take a file: parent is an existing directory, target not special."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputFileError(what, None, f"needs an output file path, got {brief(path)}")
    p = Path(path)
    if "\x00" in str(p):
        raise InputFileError(what, None, "output path contains a NUL byte")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent_info = os.stat(parent)
    except FileNotFoundError:
        raise InputFileError(what, p, f"the folder {truncate(str(parent), _PATH_CHARS)} does not exist") from None
    except OSError as err:
        raise InputFileError(what, p, _write_problem(err)) from None
    if not stat.S_ISDIR(parent_info.st_mode):
        raise InputFileError(what, p, f"{truncate(str(parent), _PATH_CHARS)} is not a folder")
    if _refused_root(parent) is not None:
        raise InputFileError(what, p, "is in a system pseudo-file system; choose a normal folder")
    try:
        info = os.stat(p)
    except FileNotFoundError:
        return p
    except OSError as err:
        raise InputFileError(what, p, _write_problem(err)) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputFileError(what, p, "is a directory; give a file name inside it")
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(what, p, f"is {_kind(info.st_mode)}; give a regular file name")
    return p


def _write_problem(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied (choose a folder you can write to)"
    if err.errno == errno.ENAMETOOLONG:
        return "the file name is too long for the file system"
    if isinstance(err, IsADirectoryError):
        return "is a directory; give a file name inside it"
    return f"cannot be written ({err.strerror or str(err) or type(err).__name__})"


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, what: str, mode: int | None = None) -> Path:
    """Write `data` to `path` through a temporary file and `os.replace`; InputFileError on any failure.

    `mode` (e.g. 0o755 for a script) defaults to the existing file's mode, else 0o666 minus the umask.
    On failure the target is unchanged and the temporary file is removed.
    """
    p = check_output_path(path, what=what)
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(p).st_mode)
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    parent = p.parent if str(p.parent) else Path(".")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".tmp-", suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
        tmp = None
    except OSError as err:
        raise InputFileError(what, p, _write_problem(err)) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return p


def write_text_atomic(path: str | os.PathLike[str], text: str, *, what: str, mode: int | None = None,
                      newline: str | None = None) -> Path:
    """UTF-8 `text` written atomically (see `write_bytes_atomic`); `newline` replaces "\\n" when given."""
    if newline is not None and newline != "\n":
        text = text.replace("\n", newline)
    return write_bytes_atomic(path, text.encode("utf-8"), what=what, mode=mode)
