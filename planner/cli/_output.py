"""Shared CLI helpers: JSON, aligned text tables, the catalog loaded once per run, and bounded argument types.

The argument types (`int_arg`, `float_arg`, `text_arg`) check a value where argparse reads it, so
`--limit -1`, `--replicas 10**400`, `--memory-gb nan` or a 100,000-character name end as one
usage line (exit 2) that names the flag, the allowed range and the value cut to ~80 characters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.data.catalog import Catalog, load_catalog
from planner.errors import brief

if TYPE_CHECKING:
    from planner.econ.workload import RequestSizes
    from planner.scenario import Scenario


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The shipped catalog with the user's imported prices (`planner prices import-*`) laid over it."""
    from planner.data.importers import with_user_prices

    return with_user_prices(load_catalog())


def catalog_with_profile(name: str | None) -> Catalog:
    """`catalog()`, and, where `name` names no shipped profile, the user's calibrated profiles (read here, at
    the boundary, from $PLANNER_PROFILE_DIR or ~/.config/llm-planner/profiles) for that named lookup only."""
    cat = catalog()
    if not name or any(p.profile_id.lower() == name.lower() for p in cat.efficiency):
        return cat
    from planner.fit.profile_store import load_user_profiles

    return cat.with_user_profiles(load_user_profiles())


def scenario_inputs(path: str | None, overrides: Sequence[str] | None) -> tuple[Scenario, RequestSizes | None]:
    """The scenario of `--scenario FILE` (built-in defaults without one) with `--set` overrides, and the
    request sizes its `request_sizes_csv` names, read here at the boundary (plan() reads no file).

    A relative `request_sizes_csv` written in a scenario file is looked up beside that file first.
    """
    from planner.econ.workload import request_sizes_from_csv
    from planner.scenario import Scenario, apply_overrides, load_scenario

    scenario = apply_overrides(load_scenario(path) if path else Scenario(), overrides or [])
    sizes_csv = scenario.request_sizes_csv
    if not sizes_csv:
        return scenario, None
    if path and not Path(sizes_csv).is_absolute() and not Path(sizes_csv).exists():
        beside = Path(path).parent / sizes_csv
        if beside.exists():
            sizes_csv = str(beside)
    return scenario, request_sizes_from_csv(sizes_csv)


def _default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(_clean(obj), indent=2, default=_default, ensure_ascii=False) + "\n")


def fmt_number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[fmt_number(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sys.stdout.write(line.rstrip() + "\n")
    for row in cells:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def print_pairs(pairs: Iterable[tuple[str, Any]]) -> None:
    pairs = list(pairs)
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        sys.stdout.write(f"{key.ljust(width)}  {fmt_number(value)}\n")


def int_arg(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type` reading a whole number in [low, high] (never overflowing: compared as ints)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:  # also int()'s limit on 4,300-digit strings
            raise argparse.ArgumentTypeError(f"must be a whole number in [{low:,}, {high:,}], got {brief(text)}") \
                from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number in [{low:,}, {high:,}], got {brief(text)}")
        return value
    return parse


def float_arg(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse `type` reading a finite number in [low, high] ((low, high] with low_open)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {brief(text)}") from None
        inside = (low < value if low_open else low <= value) and value <= high
        if not math.isfinite(value) or not inside:
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {brief(text)}")
        return value
    return parse


def text_arg(max_chars: int = 200) -> Callable[[str], str]:
    """An argparse `type` for a name or list: at most `max_chars` characters, no control characters."""
    def parse(text: str) -> str:
        if len(text) > max_chars:
            raise argparse.ArgumentTypeError(f"is {len(text):,} characters, over {max_chars:,}: {brief(text)}")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise argparse.ArgumentTypeError(f"must not contain control characters (newline, tab...), "
                                             f"got {brief(text)}")
        return text
    return parse
