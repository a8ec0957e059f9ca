"""Measured throughput and latency rows: the schema of data/measured/*.csv and its reader.

A row names a model, GPU, precision, engine (with its build month), parallelism (tensor and
expert parallel sizes, data-parallel instances, attention data parallelism), workload (input/output
tokens, scenario, concurrency or request rate, whether every request has the same lengths) and one
measured metric, with its source.
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
from typing import Annotated
from urllib.parse import urlsplit

from planner.data._csvschema import read_records
from planner.data.catalog import DATA_DIR
from planner.data.columns import MAY_BE_ABSENT, Count, Date, OneOf, Positive, Url, columns
from planner.data.safe_io import iter_csv_rows
from planner.errors import CatalogError, InvalidInputError

MEASURED_DIR = DATA_DIR / "measured"
MEASURED_FILE = MEASURED_DIR / "throughput.csv"

SCENARIOS = ("offline", "static_batch", "serving", "batch1")
METRICS = ("output_tokens_per_s", "batch1_decode_tokens_per_s", "prefill_tokens_per_s", "ttft_ms", "tpot_ms")
SPLITS = ("fit", "holdout")
# Request lengths of a serving run: "fixed" (synthetic random prompts of one length, output forced to
# one length: a closed-loop client then runs in synchronised waves) or "variable" (ShareGPT-like
# traces: requests desynchronise into a steady state). Empty means fixed, the benchmark tools' default.
LENGTHS = ("fixed", "variable")
# Whether a fixed-length closed loop's clients start together and stay synchronised, per benchmark tool (the
# `staggered` column; empty = false; set it true on the rows of a tool that does not synchronise):
#   vllm bench serve (--max-concurrency, request rate inf), SGLang bench_serving, InferenceX sa-bench: all c
#     requests are sent at once (no warm-up), so the first wave is synchronised; fixed lengths keep it so
#     (InferenceX's --random-range-ratio 0.8 makes its lengths variable instead): false
#   genai-perf / AIPerf (NIM's benchmarking guide): genai-perf measures perf_analyzer's stability windows of a
#     running loop, AIPerf keeps the concurrency with a semaphore over a long request count: true, the means
#     of staggered clients (an approximation: how much of the first wave a run keeps is not stated)
#   LLMPerf: each client loops on its own with a spread of input lengths (--stddev-input-tokens): variable
# Engine build month (YYYY-MM: the release, or the run date where the build is not stated). Kernels change
# faster than hardware, so the error report separates current engines from older builds.
MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")
RECENT_FROM = "2025-07"  # engines built from this month on count as current (vLLM V1 default, SGLang 0.4.9+, TRT 1.0)
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
    """One measured figure and the setup that produced it: the one declaration of the data/measured/*.csv
    columns (their checks are the annotations; `columns(MeasuredPoint)`), also built by hand from a
    `vllm bench serve` result. Provenance is required in the project's files (`read_measured`), optional in a
    user's CSV (`read_points(..., user=True)`); columns added after the format settled may be absent."""

    row_id: str
    split: Annotated[str, OneOf(SPLITS)]
    model: str
    gpu: str
    num_gpus: Count
    precision: str
    engine: str
    scenario: Annotated[str, OneOf(SCENARIOS)]
    input_tokens: Count
    output_tokens: Count
    metric: Annotated[str, OneOf(METRICS)]
    measured_value: Positive
    model_config: str | None = None
    tp: Count | None = None
    kv_dtype: str | None = None
    concurrency: Count | None = None
    request_rate_per_s: Positive | None = None
    engine_version: str | None = None
    source_url: Url | None = None
    source_accessed: Date | None = None
    source_detail: str | None = None
    notes: str | None = None
    lengths: Annotated[Annotated[str, OneOf(LENGTHS)] | None, MAY_BE_ABSENT] = None  # "fixed" (default) or "variable"
    engine_date: Annotated[str | None, MAY_BE_ABSENT] = None  # YYYY-MM of the engine build (MONTH)
    # expert-parallel group size (None or 1: experts split by tensor parallelism)
    ep: Annotated[Count | None, MAY_BE_ABSENT] = None
    # names one source spread over several URLs (files of one results commit)
    source_group: Annotated[str | None, MAY_BE_ABSENT] = None
    # data-parallel instances the num_gpus are split into (None: one instance over all)
    dp: Annotated[Count | None, MAY_BE_ABSENT] = None
    # MoE: attention data-parallel over each instance's tp GPUs with the experts expert-parallel (SGLang
    # --enable-dp-attention, vLLM --data-parallel-size + --enable-expert-parallel, TensorRT-LLM enable_attention_dp);
    # None or false: attention tensor-parallel
    attn_dp: Annotated[bool | None, MAY_BE_ABSENT] = None
    # requests the run sent in all (N of a closed loop at concurrency c: its first wave is c / N of them;
    # None: not stated)
    num_requests: Annotated[Count | None, MAY_BE_ABSENT] = None
    # a fixed-length closed loop whose clients do not stay synchronised (STAGGERED_BY_TOOL): true = the
    # steady state of staggered clients (TTFT one prefill step, TPOT with the other requests' prompt chunks);
    # None or false: the tool starts its c clients together and fixed lengths keep them in waves
    staggered: Annotated[bool | None, MAY_BE_ABSENT] = None
    # admission knobs the source's server command sets (None: the engine's default, no admission wait):
    # SGLang --scheduler-recv-interval k (with a batch running, new requests are read every k decode steps)
    recv_interval: Annotated[Count | None, MAY_BE_ABSENT] = None
    # TensorRT-LLM batch_wait_timeout_iters and batch_wait_max_tokens_ratio x max_num_tokens (context requests
    # are held until that many prompt tokens wait or that many iterations pass)
    batch_wait_iters: Annotated[Count | None, MAY_BE_ABSENT] = None
    batch_wait_tokens: Annotated[Count | None, MAY_BE_ABSENT] = None
    # whether the source's engine ran its context (prefill) steps from a CUDA graph: true (SGLang
    # --enable-piecewise-cuda-graph, TensorRT-LLM torch_compile_config.enable_piecewise_cuda_graph), false (eager: every
    # kernel launched from Python); None: the engine's default for its build (`serving.prefill_graph_max_tokens`)
    prefill_cuda_graph: Annotated[bool | None, MAY_BE_ABSENT] = None

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
    """The row as one of its `dp` identical engine instances sees it: num_gpus, concurrency, request rate, the run's
    requests and throughput divided by dp (TTFT and TPOT unchanged), the layout inside the instance kept. MLPerf-style
    systems run N data-parallel replicas of K GPUs; the step model describes one instance."""
    dp = point.dp or 1
    if dp == 1:
        return point
    speed = point.metric.endswith("_per_s") and point.metric != "batch1_decode_tokens_per_s"
    return dataclasses.replace(
        point, num_gpus=point.num_gpus // dp, dp=None,
        concurrency=max(1, round(point.concurrency / dp)) if point.concurrency else None,
        request_rate_per_s=point.request_rate_per_s / dp if point.request_rate_per_s else None,
        num_requests=max(1, round(point.num_requests / dp)) if point.num_requests else None,
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


PROVENANCE = ("source_url", "source_accessed")  # required in the project's files


def read_points(source: str | Path | bytes, *, name: str | None = None, user: bool = False) -> list[MeasuredPoint]:
    """Read measured rows (the project's file, or a user's CSV when `user`) into MeasuredPoints.

    CatalogError names the file, row, column and value of the first problem. A user's file may leave
    out every optional column and the row_id / split columns (rows are then row-N, held out) and may
    carry columns of its own.
    """
    label = name or (Path(source).name if not isinstance(source, (bytes, bytearray)) else "uploaded CSV")
    if user:
        source = _user_csv(source, label)
    table = read_records(source, MeasuredPoint, name=label, id_column=None if user else "row_id",
                         strict_columns=not user)
    for number, point in table.numbered():
        if point.engine_date is not None and not MONTH.match(point.engine_date):
            raise CatalogError(label, number, "engine_date", point.engine_date, "must be a month YYYY-MM")
        for column in () if user else PROVENANCE:
            if getattr(point, column) is None:
                raise CatalogError(label, number, column, None, "is empty but required")
    return list(table)


def _user_csv(source: str | Path | bytes, name: str) -> bytes:
    """A user's CSV with the optional columns it leaves out added empty, and row_id / split filled where
    missing or empty (row-N, holdout), so the record's checks apply as to the project's files."""
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
        return data  # read_records reports it
    lines = [cells for _, cells in iter_csv_rows(text, what="measured-points CSV", path=name)]  # bounded cells/rows
    if not lines:
        return data
    header = [h.strip() for h in lines[0]]
    extra = [c for c, col in columns(MeasuredPoint).items()
             if c not in header and (not col.required or c in ("row_id", "split"))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header + extra)
    at = {c: i for i, c in enumerate(header + extra)}
    for number, row in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in row):
            writer.writerow(row)
            continue
        cells = row + [""] * len(extra)
        for column, fill in (("row_id", f"row-{number}"), ("split", "holdout")):
            if at[column] < len(cells) and not cells[at[column]].strip():
                cells[at[column]] = fill
        writer.writerow(cells)
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
