"""Measured throughput and latency rows: the schema of data/measured/*.csv and its reader.

A row names a model, GPU, precision, engine (with its build month), parallelism (tensor and
expert parallel sizes), workload (input/output tokens, scenario, concurrency or request rate,
whether every request has the same lengths) and one measured metric, with its source.
`read_points` validates a file (the project's, or a user's CSV where provenance columns are
optional) into `MeasuredPoint`s; `planner.fit.validation` predicts them.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from planner.data._csvschema import Col, read_rows
from planner.data.catalog import DATA_DIR
from planner.data.safe_io import iter_csv_rows
from planner.errors import CatalogError, InvalidInputError

MEASURED_DIR = DATA_DIR / "measured"
MEASURED_FILE = MEASURED_DIR / "throughput.csv"

_SOURCE_OPTIONAL = {"source_url": Col("url", False), "source_accessed": Col("date", False)}
MEASURED_SCHEMA = {
    "row_id": Col("str"), "split": Col("str"), "source_url": Col("url"), "source_accessed": Col("date"),
    "source_detail": Col("str", False), "model": Col("str"), "model_config": Col("str", False), "gpu": Col("str"),
    "num_gpus": Col("int+"), "tp": Col("int+", False), "precision": Col("str"), "kv_dtype": Col("str", False),
    "engine": Col("str"), "engine_version": Col("str", False), "scenario": Col("str"),
    "concurrency": Col("int+", False), "request_rate_per_s": Col("float+", False), "input_tokens": Col("int+"),
    "output_tokens": Col("int+"), "metric": Col("str"), "measured_value": Col("float+"), "notes": Col("str", False),
    "lengths": Col("str", False), "engine_date": Col("str", False), "ep": Col("int+", False),
    "source_group": Col("str", False), "dp": Col("int+", False),
}
# A user's own points (`planner calibrate --csv`): provenance and bookkeeping columns are optional.
POINT_SCHEMA = {**MEASURED_SCHEMA, **_SOURCE_OPTIONAL, "row_id": Col("str", False), "split": Col("str", False)}

SCENARIOS = ("offline", "static_batch", "serving", "batch1")
METRICS = ("output_tokens_per_s", "batch1_decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "tpot_ms")
SPLITS = ("fit", "holdout")
# Request lengths of a serving run: "fixed" (synthetic random prompts of one length, output forced to
# one length: a closed-loop client then runs in synchronised waves) or "variable" (ShareGPT-like
# traces: requests desynchronise into a steady state). Empty means fixed, the benchmark tools' default.
LENGTHS = ("fixed", "variable")
# Engine build month (YYYY-MM: the release, or the run date where the build is not stated). Kernels change
# faster than hardware, so the error report separates current engines from older builds.
MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")
RECENT_FROM = "2025-07"  # engines built from this month on count as current (vLLM V1 default, SGLang 0.4.9+, TRT 1.0)
# Columns added after the file's format settled: an older CSV may leave them out.
LATE_COLUMNS = ("lengths", "engine_date", "ep", "source_group", "dp")
# Source-held-out split: a source (one document, PR, issue or results commit) is wholly in the fit set or
# wholly held out, decided by a hash of its key, so no held-out row shares a source (an author, a benchmark
# harness, a build) with a fit row. Half the sources are held out.
HOLDOUT_FRAC = 0.5
# The error-report groups the issue asks for: max-throughput, batch-1 decode, prefill, TTFT/TPOT,
# plus the throughput of fixed batches and of serving loads.
METRIC_GROUPS = {
    ("offline", "output_tokens_per_s"): "max_throughput_output_tokens_per_s",
    ("static_batch", "output_tokens_per_s"): "fixed_batch_output_tokens_per_s",
    ("serving", "output_tokens_per_s"): "serving_output_tokens_per_s",
    ("batch1", "batch1_decode_tokens_per_s"): "batch1_decode_tokens_per_s",
    ("batch1", "prefill_tokens_per_s"): "prefill_tokens_per_s",
}


@dataclass(frozen=True)
class MeasuredPoint:
    """One measured figure and the setup that produced it (columns of MEASURED_SCHEMA)."""

    row_id: str
    split: str
    model: str
    gpu: str
    num_gpus: int
    precision: str
    engine: str
    scenario: str
    input_tokens: int
    output_tokens: int
    metric: str
    measured_value: float
    model_config: str | None = None
    tp: int | None = None
    kv_dtype: str | None = None
    concurrency: int | None = None
    request_rate_per_s: float | None = None
    engine_version: str | None = None
    source_url: str | None = None
    notes: str | None = None
    lengths: str | None = None  # "fixed" (default) or "variable"
    engine_date: str | None = None  # YYYY-MM of the engine build
    ep: int | None = None  # expert-parallel group size (None or 1: experts split by tensor parallelism)
    source_group: str | None = None  # names one source spread over several URLs (files of one results commit)
    dp: int | None = None  # data-parallel instances the num_gpus are split into (None: one instance over all)

    @property
    def source_key(self) -> str:
        """The source this row comes from (see `source_key`); rows without a URL each count as their own."""
        if not self.source_group and not self.source_url:
            return f"row:{self.row_id}"
        return source_key(self.source_url or "", self.source_group)

    @property
    def metric_group(self) -> str:
        return METRIC_GROUPS.get((self.scenario, self.metric), self.metric.removesuffix("_ms"))

    @property
    def era(self) -> str:
        """'current' for engines built from RECENT_FROM on, 'older' before, 'undated' without a date."""
        if not self.engine_date:
            return "undated"
        return "current" if self.engine_date >= RECENT_FROM else "older"


def per_instance(point: MeasuredPoint) -> MeasuredPoint:
    """The row as one of its `dp` identical engine instances sees it: num_gpus, concurrency, request rate and
    throughput divided by dp (TTFT and TPOT unchanged), the layout inside the instance kept. MLPerf-style
    systems run N data-parallel replicas of K GPUs; the step model describes one instance."""
    dp = point.dp or 1
    if dp == 1:
        return point
    speed = point.metric.endswith("_per_s") and point.metric != "batch1_decode_tokens_per_s"
    return dataclasses.replace(
        point, num_gpus=point.num_gpus // dp, dp=None,
        concurrency=max(1, round(point.concurrency / dp)) if point.concurrency else None,
        request_rate_per_s=point.request_rate_per_s / dp if point.request_rate_per_s else None,
        measured_value=point.measured_value / dp if speed else point.measured_value)


def source_key(url: str, group: str | None = None) -> str:
    """The normalised key of a source: `group` when given (one study spread over several URLs), else the URL
    without scheme, `www.`, query, fragment or trailing slash, host lower-cased (`#discussioncomment-5` and
    `?tab=readme` point into the same document)."""
    if group:
        return "group:" + group.strip().lower()
    parts = urlsplit(url.strip())
    host = parts.netloc.lower().removeprefix("www.")
    return host + parts.path.rstrip("/")


def source_split(key: str) -> str:
    """'holdout' for the sources whose key hashes below HOLDOUT_FRAC (SHA-256, first 32 bits), else 'fit'."""
    digest = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16)
    return "holdout" if digest / 2**32 < HOLDOUT_FRAC else "fit"


def since(points: list[MeasuredPoint], month: str) -> list[MeasuredPoint]:
    """The points whose engine was built in `month` (YYYY-MM) or later (undated points are left out)."""
    if not isinstance(month, str) or not MONTH.match(month):
        raise InvalidInputError(f"since must be a month YYYY-MM, got {month!r}")
    return [p for p in points if p.engine_date and p.engine_date >= month]


def _check_choice(label: str, rows: list[dict[str, Any]], column: str, allowed: tuple[str, ...]) -> None:
    for row in rows:
        if row.get(column) is not None and row[column] not in allowed:
            raise CatalogError(label, row["_row"], column, row[column], f"must be one of {', '.join(allowed)}")


def read_points(source: str | Path | bytes, *, name: str | None = None, user: bool = False) -> list[MeasuredPoint]:
    """Read measured rows (the project's file, or a user's CSV when `user`) into MeasuredPoints.

    CatalogError names the file, row, column and value of the first problem.
    """
    schema = POINT_SCHEMA if user else MEASURED_SCHEMA
    label = name or (Path(source).name if not isinstance(source, (bytes, bytearray)) else "uploaded CSV")
    # a user's file may leave out every optional column; the project's only those added after its format settled
    source = _with_optional_columns(source, schema if user else {c: schema[c] for c in LATE_COLUMNS}, label)
    rows = read_rows(source, schema, name=label, id_column=None if user else "row_id", strict_columns=not user)
    _check_choice(label, rows, "scenario", SCENARIOS)
    _check_choice(label, rows, "metric", METRICS)
    _check_choice(label, rows, "split", SPLITS)
    _check_choice(label, rows, "lengths", LENGTHS)
    for row in rows:
        if row.get("engine_date") is not None and not MONTH.match(row["engine_date"]):
            raise CatalogError(label, row["_row"], "engine_date", row["engine_date"], "must be a month YYYY-MM")
    fields = set(MeasuredPoint.__dataclass_fields__)
    points = []
    for row in rows:
        data = {k: v for k, v in row.items() if k in fields}
        data["row_id"] = data.get("row_id") or f"row-{row['_row']}"
        data["split"] = data.get("split") or "holdout"
        points.append(MeasuredPoint(**data))
    return points


def _with_optional_columns(source: str | Path | bytes, schema: dict[str, Col], name: str | None) -> bytes:
    """A user's CSV with every optional column it leaves out added empty (the reader wants them all present)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as err:
            raise CatalogError(name or str(source), None, None, None, f"cannot be read ({err.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data  # read_rows reports it
    lines = [cells for _, cells in iter_csv_rows(text, what="measured-points CSV", path=name)]  # bounded cells/rows
    if not lines:
        return data
    header = [h.strip() for h in lines[0]]
    extra = [c for c, spec in schema.items() if not spec.required and c not in header]
    if not extra:
        return data
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header + extra)
    for row in lines[1:]:
        writer.writerow(row + [""] * len(extra) if any(c.strip() for c in row) else row)
    return out.getvalue().encode("utf-8")


def read_measured(path: str | Path = MEASURED_FILE) -> list[MeasuredPoint]:
    """The project's measured rows (data/measured/throughput.csv by default).

    Each row's `split` must be its source's (`source_split`): CatalogError names the first row that differs.
    """
    points = read_points(path)
    for point in points:
        want = source_split(point.source_key)
        if point.split != want:
            raise CatalogError(Path(path).name, None, "split", point.split,
                               f"row {point.row_id} must be {want!r}, the split of its source {point.source_key!r}")
    return points
