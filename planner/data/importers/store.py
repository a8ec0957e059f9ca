"""The user's price store: imported GPU and API price tables, kept as CSVs in the catalog's own schemas.

Where: `$PLANNER_PRICES_DIR` if set, else `~/.config/llm-planner/prices/`. Two files,
`gpu_prices.csv` (GpuPrice's columns) and `api_prices.csv` (ApiPrice's columns), so the same
validation as `data/` applies when they are read back. Every write is atomic: the imported
rows are first checked on their own (a failure is the input's fault: InvalidInputError naming
the input, exit 2), then the merged table is serialised, re-read through the catalog's schema
check and written with `safe_io.write_text_atomic` (temporary file + `os.replace`), so a failed
import leaves the store unchanged. A store file that cannot be read is the store's fault
(CatalogError naming the store file, exit 4).

Merging: an import supersedes the store's rows it replaces (GPU prices: every row of the
same provider; API prices: the same `api_id`) and keeps the rest. `with_user_prices()`
overlays the store on a catalog: a (gpu_id, provider) pair present in the store replaces
the shipped rows of that pair, and an `api_id` present in the store replaces the shipped one.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from planner.data._csvschema import read_records
from planner.data.catalog import Catalog
from planner.data.columns import columns
from planner.data.records import ApiPrice, GpuPrice
from planner.data.safe_io import InputFileError, read_bytes, refused_root, write_text_atomic
from planner.errors import CatalogError, InvalidInputError, brief, truncate

PRICES_DIR_ENV = "PLANNER_PRICES_DIR"
GPU_FILE = "gpu_prices.csv"
API_FILE = "api_prices.csv"


def prices_dir(override: str | Path | None = None) -> Path:
    """The store directory: `override`, else $PLANNER_PRICES_DIR, else ~/.config/llm-planner/prices."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(PRICES_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "llm-planner" / "prices"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (tuple, list)):
        return ";".join(str(v) for v in value)
    return str(value)


def to_csv(records: Sequence[Any], record_type: type) -> str:
    """Records as CSV text with the columns `record_type` declares, in order (the format of data/*.csv)."""
    names = list(columns(record_type))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        values = dataclasses.asdict(record)
        writer.writerow([_cell(values[col]) for col in names])
    return out.getvalue()


def _gpu_rows(text: bytes, label: str, catalog: Catalog | None) -> tuple[GpuPrice, ...]:
    table = read_records(text, GpuPrice, name=label)
    if catalog is not None:
        table.require("gpu_id", lambda v: v in catalog.gpus, "gpu_id (see `planner gpus`)")
    return table.records


def _api_rows(text: bytes, label: str) -> tuple[ApiPrice, ...]:
    return read_records(text, ApiPrice, name=label, id_column="api_id").records


def _read(path: Path) -> bytes | None:
    """A store file's bytes, None when it does not exist; CatalogError (the store's fault) otherwise."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        pass  # read_bytes names the problem
    try:
        return read_bytes(path, what="price store file")
    except InputFileError as err:
        raise CatalogError(str(path), None, None, None,
                           f"{err.problem} (fix it or run `planner prices reset`)") from None


def _store_dir(directory: str | Path | None) -> Path:
    """The store directory, created if needed; InvalidInputError when it cannot be one."""
    base = prices_dir(directory)
    root = refused_root(base)
    if root is not None:
        raise InvalidInputError(f"price store directory {brief(str(base))} is under {root}; choose a normal folder")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidInputError(f"price store directory {brief(str(base))} is a file, not a folder") from None
    except OSError as err:
        raise InvalidInputError(f"price store directory {brief(str(base))} cannot be created "
                                f"({err.strerror})") from None
    if not stat.S_ISDIR(os.stat(base).st_mode):
        raise InvalidInputError(f"price store directory {brief(str(base))} is not a folder")
    return base


def _check_imported(records: Sequence[Any], record_type: type, source: str,
                    check: Callable[[bytes, str], Any]) -> None:
    """The imported rows alone pass the store's checks; a failure is the input's (InvalidInputError)."""
    try:
        check(to_csv(records, record_type).encode(), source)
    except CatalogError as err:
        where = "" if err.column is None else f"{err.column}: "
        shown = "" if err.value is None else f", value {brief(err.value)}"
        raise InvalidInputError(f"{truncate(source, 120)}: an imported price row fails the price table's check "
                                f"({where}{err.problem}{shown}); nothing was written") from None


def load_user_prices(directory: str | Path | None = None, *,
                     catalog: Catalog | None = None) -> tuple[list[GpuPrice], list[ApiPrice]]:
    """The imported (GPU prices, API prices) of the store, each an empty list when nothing was imported.

    Validated like `data/` (CatalogError naming the store file, row and column); with a
    catalog, GPU ids must be ones it knows.
    """
    base = prices_dir(directory)
    root = refused_root(base)
    if root is not None:
        raise InvalidInputError(f"price store directory {brief(str(base))} is under {root}; choose a normal folder")
    gpu_text, api_text = _read(base / GPU_FILE), _read(base / API_FILE)
    gpu = list(_gpu_rows(gpu_text, str(base / GPU_FILE), catalog)) if gpu_text is not None else []
    api = list(_api_rows(api_text, str(base / API_FILE))) if api_text is not None else []
    return gpu, api


def overlay_prices(catalog: Catalog, gpu_prices: Iterable[GpuPrice], api_prices: Iterable[ApiPrice]) -> Catalog:
    """A catalog copy with user prices laid over the shipped ones (see the module docstring for the rule)."""
    user_gpu, user_api = tuple(gpu_prices), tuple(api_prices)
    for price in user_gpu:
        if price.gpu_id not in catalog.gpus:
            raise InvalidInputError(f"user price for unknown GPU {price.gpu_id!r} ({price.provider}); "
                                    f"run `planner prices reset` or re-import")
    replaced = {(p.gpu_id, p.provider) for p in user_gpu}
    kept = [p for p in catalog.gpu_prices if (p.gpu_id, p.provider) not in replaced]
    api = dict(catalog.api_prices)
    lower = {k.lower(): k for k in api}
    for price in user_api:
        api.pop(lower.get(price.api_id.lower(), price.api_id), None)
        api[price.api_id] = price
    return catalog.with_gpu_prices(kept + list(user_gpu)).with_api_prices(api.values())


def with_user_prices(catalog: Catalog, directory: str | Path | None = None) -> Catalog:
    """`catalog` with the user's imported prices overlaid; the catalog itself when the store is empty."""
    gpu, api = load_user_prices(directory, catalog=catalog)
    if not gpu and not api:
        return catalog
    return overlay_prices(catalog, gpu, api)


def merge_gpu_prices(existing: Sequence[GpuPrice], new: Sequence[GpuPrice]) -> list[GpuPrice]:
    """The store after an import: rows of the providers in `new` are replaced, others kept."""
    providers = {p.provider for p in new}
    return [p for p in existing if p.provider not in providers] + list(new)


def merge_api_prices(existing: Sequence[ApiPrice], new: Sequence[ApiPrice]) -> list[ApiPrice]:
    """The store after an import: rows with an `api_id` in `new` (case-insensitive) are replaced."""
    ids = {p.api_id.lower() for p in new}
    return [p for p in existing if p.api_id.lower() not in ids] + list(new)


def save_gpu_prices(new: Sequence[GpuPrice], catalog: Catalog, directory: str | Path | None = None, *,
                    source: str = "the imported prices") -> Path:
    """Merge `new` into the store's GPU table and write it atomically; returns the file written."""
    _check_imported(new, GpuPrice, source, lambda text, label: _gpu_rows(text, label, catalog))
    path = _store_dir(directory) / GPU_FILE
    current = _read(path)
    existing = _gpu_rows(current, str(path), None) if current is not None else ()
    text = to_csv(merge_gpu_prices(existing, new), GpuPrice)
    _gpu_rows(text.encode(), str(path), catalog)  # the table we are about to write passes the catalog check
    write_text_atomic(path, text, what="price store file")
    return path


def save_api_prices(new: Sequence[ApiPrice], directory: str | Path | None = None, *,
                    source: str = "the imported prices") -> Path:
    """Merge `new` into the store's API table and write it atomically; returns the file written."""
    _check_imported(new, ApiPrice, source, _api_rows)
    path = _store_dir(directory) / API_FILE
    current = _read(path)
    existing = _api_rows(current, str(path)) if current is not None else ()
    text = to_csv(merge_api_prices(existing, new), ApiPrice)
    _api_rows(text.encode(), str(path))
    write_text_atomic(path, text, what="price store file")
    return path


def reset_user_prices(directory: str | Path | None = None) -> list[Path]:
    """Delete the store's tables; returns the files removed."""
    base = prices_dir(directory)
    removed = []
    for name in (GPU_FILE, API_FILE):
        path = base / name
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
