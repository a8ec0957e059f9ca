"""Turn a usage export (one request per CSV row or JSONL line) into a workload description.

Each request needs a timestamp, its input (prompt) tokens and its output (generated) tokens;
cached input tokens are optional. Column names are mapped (`timestamp=ts,input_tokens=
prompt_tokens`); unmapped fields are looked up under common names (the Azure LLM inference
trace's TIMESTAMP/ContextTokens/GeneratedTokens, OpenAI-style prompt_tokens/completion_tokens,
Mooncake's timestamp/input_length/output_length). JSONL keys may be dotted paths into nested
objects (`usage.prompt_tokens`).

Timestamps: ISO 8601 text (an offset is converted to UTC; text without one is read as UTC),
or numbers in `time_unit` ("s" or "ms"; "auto" reads numbers above 1e11 as milliseconds,
since 1e11 s is beyond the year 5000). Hours of day are therefore UTC hours.

The derived workload (see `describe_usage`): request volume per day, token distributions
(mean, p50, p90, p99, max), the hour-of-day profile and the peak-to-average ratio, defined as in
the public trace studies: the busiest clock hour's request rate over the mean hourly rate [1].
Every row is checked before anything is computed; a bad value raises MalformedInputError
with the file, line and field: timestamps after now (plus a day of clock skew) or before 1970,
token counts above `MAX_TOKENS_PER_REQUEST`, 400-digit numbers, duplicate JSON keys, deep
nesting, NUL bytes and CSV cells over 65,536 characters. Bursty traces are real: the peak-to-
average ratio is reported whatever its size, and a scenario field the scenario cannot take is left
out of the snippet with a warning instead of failing the import.

[1] Y. Xiang et al., "ServeGen: Workload Characterization and Generation of Large Language Model
    Serving in Production", NSDI 2026, arXiv:2505.09999 (peak-to-average of hourly request rates);
    the Azure LLM inference trace 2023 is from P. Patel et al., "Splitwise", ISCA 2024, arXiv:2311.18677.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner import units
from planner.data.importers._provenance import SourceFile, bad, read_source
from planner.data.safe_io import InputFileError, iter_csv_rows, loads_json
from planner.errors import InvalidInputError, brief, is_finite_real

FIELDS = ("timestamp", "input_tokens", "output_tokens", "cached_input_tokens")
REQUIRED_FIELDS = FIELDS[:3]
# Names tried, in order, for a field the user did not map.
DEFAULT_NAMES = {
    "timestamp": ("timestamp", "TIMESTAMP", "Timestamp", "created_at", "created", "time", "startTime", "start_time"),
    "input_tokens": ("input_tokens", "prompt_tokens", "ContextTokens", "input_length", "Request tokens",
                     "usage.prompt_tokens", "usage.input_tokens"),
    "output_tokens": ("output_tokens", "completion_tokens", "GeneratedTokens", "output_length", "Response tokens",
                      "usage.completion_tokens", "usage.output_tokens"),
    "cached_input_tokens": ("cached_input_tokens", "cached_tokens", "usage.prompt_tokens_details.cached_tokens"),
}
TIME_UNITS = ("auto", "s", "ms")
MS_THRESHOLD = 1e11  # numbers above this are epoch milliseconds in "auto" mode (1e11 s is the year 5138)
QUANTILES = (50, 90, 99)
MAX_TOKENS_PER_REQUEST = 100_000_000  # 10x the longest context any catalog model serves (10.5M tokens)
CLOCK_SKEW_S = 86_400  # timestamps up to a day ahead of this machine's clock are accepted (time zones, skew)


def parse_mapping(text: str | None) -> dict[str, str]:
    """`"timestamp=ts,input_tokens=prompt_tokens"` -> {"timestamp": "ts", ...}; InvalidInputError if malformed."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not column:
            raise InvalidInputError(f"--map entry {part.strip()!r} must look like field=column")
        if key not in FIELDS:
            raise InvalidInputError(f"--map field {key!r} is not one of {', '.join(FIELDS)}")
        mapping[key] = column
    return mapping


@dataclass(frozen=True)
class Request:
    timestamp_s: float
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int | None


def _lookup(record: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    if name in record:
        return True, record[name]
    node: Any = record
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _resolve(available: Sequence[str] | Mapping[str, Any], mapping: Mapping[str, str], label: str,
             line: int, *, nested: bool = False) -> dict[str, str | None]:
    """Which column holds each field: the mapping first, then the default names."""
    out: dict[str, str | None] = {}
    for name in FIELDS:
        if name in mapping:
            present = (_lookup(available, mapping[name])[0] if nested else mapping[name] in available)
            if not present:
                raise bad(label, line, mapping[name], None, f"mapped {name} column not found")
            out[name] = mapping[name]
            continue
        found = next((c for c in DEFAULT_NAMES[name]
                      if (_lookup(available, c)[0] if nested else c in available)), None)
        if found is None and name in REQUIRED_FIELDS:
            raise bad(label, line, name, None, f"no {name} column (tried {', '.join(DEFAULT_NAMES[name])}); "
                      f"map one with --map {name}=COLUMN")
        out[name] = found
    return out


def _timestamp(label: str, line: int, column: str, value: Any, time_unit: str) -> float:
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                stamp = dt.datetime.fromisoformat(text)
            except ValueError:
                raise bad(label, line, column, value, "is not an ISO 8601 time or a number") from None
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            return _not_future(label, line, column, value, stamp.timestamp())
        value = number
    if not is_finite_real(value) or value < 0:
        raise bad(label, line, column, value, "must be an ISO 8601 time or a finite number >= 0")
    if time_unit == "ms" or (time_unit == "auto" and value > MS_THRESHOLD):
        return _not_future(label, line, column, value, float(value) / units.MS_PER_S)
    return _not_future(label, line, column, value, float(value))


def _not_future(label: str, line: int, column: str, value: Any, timestamp_s: float) -> float:
    now_s = time.time()
    if timestamp_s > now_s + CLOCK_SKEW_S:
        shown = _iso(timestamp_s) if timestamp_s < 253_402_300_800 else "after the year 9999"  # 9999-12-31
        raise bad(label, line, column, value, f"is in the future ({shown}; now is {_iso(now_s)})")
    if timestamp_s < 0:
        raise bad(label, line, column, value, "is before 1970-01-01")
    return timestamp_s


def _tokens(label: str, line: int, column: str, value: Any) -> int:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise bad(label, line, column, value, "must be a whole number of tokens >= 0") from None
    if not is_finite_real(value) or value < 0 or value != int(value):
        raise bad(label, line, column, value, "must be a whole number of tokens >= 0")
    if value > MAX_TOKENS_PER_REQUEST:
        raise bad(label, line, column, value, f"is more tokens than any model's context (at most "
                  f"{MAX_TOKENS_PER_REQUEST:,} per request)")
    return int(value)


def _request(label: str, line: int, record: Mapping[str, Any], columns: Mapping[str, str | None],
             time_unit: str) -> Request:
    values = {}
    for name, column in columns.items():
        if column is None:
            values[name] = None
            continue
        found, value = _lookup(record, column)
        if not found or value is None or value == "":
            if name == "cached_input_tokens":
                values[name] = None
                continue
            raise bad(label, line, column, None, "is missing or empty")
        values[name] = (_timestamp(label, line, column, value, time_unit) if name == "timestamp"
                        else _tokens(label, line, column, value))
    if values["cached_input_tokens"] is not None and values["cached_input_tokens"] > values["input_tokens"]:
        raise bad(label, line, columns["cached_input_tokens"], values["cached_input_tokens"],
                  "exceeds the input tokens of the same request")
    return Request(values["timestamp"], values["input_tokens"], values["output_tokens"],
                   values["cached_input_tokens"])


def _csv_requests(src: SourceFile, mapping: Mapping[str, str], time_unit: str) -> Iterator[Request]:
    rows = iter_csv_rows(src.text, what=src.label)
    try:
        _, cells = next(rows)
        header = [h.strip() for h in cells]
    except StopIteration:
        raise bad(src.label, 1, None, None, "is empty (no header row)") from None
    except InputFileError as err:
        raise bad(src.label, err.line, None, None, err.problem) from None
    columns = _resolve(header, mapping, src.label, 1)
    while True:
        try:
            line, cells = next(rows)
        except StopIteration:
            return
        except InputFileError as err:
            raise bad(src.label, err.line, None, None, err.problem) from None
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise bad(src.label, line, None, None, f"has {len(cells)} cells, the header has {len(header)}")
        yield _request(src.label, line, dict(zip(header, cells, strict=True)), columns, time_unit)


def _jsonl_requests(src: SourceFile, mapping: Mapping[str, str], time_unit: str) -> Iterator[Request]:
    columns: dict[str, str | None] | None = None
    for line, text in enumerate(src.text.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = loads_json(text, what=src.label, allow_nonfinite=True)  # NaN reported per field below
        except InputFileError as err:
            raise bad(src.label, line, None, None, err.problem) from None
        if not isinstance(record, dict):
            raise bad(src.label, line, None, None, "must be a JSON object (one request per line)")
        if columns is None:
            columns = _resolve(record, mapping, src.label, line, nested=True)
        yield _request(src.label, line, record, columns, time_unit)


@dataclass(frozen=True)
class UsageWorkload:
    """A workload measured from a usage export; token figures are per request, hours are UTC."""

    requests: int
    first_request_utc: str
    last_request_utc: str
    window_s: float
    requests_per_day: float
    mean_requests_per_s: float
    peak_requests_per_s: float
    peak_to_average_ratio: float
    input_tokens_mean: float
    input_tokens_p50: float
    input_tokens_p90: float
    input_tokens_p99: float
    input_tokens_max: int
    output_tokens_mean: float
    output_tokens_p50: float
    output_tokens_p90: float
    output_tokens_p99: float
    output_tokens_max: int
    prompt_cache_hit_frac: float | None
    hourly_profile: tuple[float | None, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hourly_profile"] = list(self.hourly_profile)
        out["warnings"] = list(self.warnings)
        return out


def _iso(timestamp_s: float) -> str:
    return dt.datetime.fromtimestamp(timestamp_s, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def describe_usage(timestamps_s: Sequence[float], input_tokens: Sequence[int], output_tokens: Sequence[int],
                   cached_input_tokens: Sequence[int] | None = None) -> UsageWorkload:
    """Volume, token distributions, hour-of-day profile and peak-to-average ratio of a set of requests.

    Window: an export spanning at least a day is taken to cover whole clock hours, from the
    first request's hour to the last one's (exports are cut at hour boundaries); a shorter one
    covers exactly first..last request. Mean rate = requests / window; requests_per_day = mean
    rate x 86,400 s. Peak-to-average = busiest whole clock hour inside the window / mean hourly
    rate (at least 1; exactly 1 when no whole hour is inside). hourly_profile[h] = mean count
    of the whole hours at UTC hour h / mean hourly rate (1.0 = average; None where the window
    has no such hour). Quantiles are linear-interpolated percentiles (numpy's default).
    """
    n = len(timestamps_s)
    if n == 0:
        raise InvalidInputError("the usage export has no requests")
    if not len(input_tokens) == len(output_tokens) == n:
        raise InvalidInputError("timestamps, input_tokens and output_tokens must have the same length")
    t = np.asarray(timestamps_s, dtype=float)
    if not np.all(np.isfinite(t)):
        raise InvalidInputError("timestamps must be finite")
    first_s, last_s = float(t.min()), float(t.max())
    if last_s <= first_s:
        raise InvalidInputError("the usage export needs requests at two or more distinct times to measure a rate")
    hour_index = np.floor(t / units.S_PER_HOUR).astype(np.int64)
    first_hour, last_hour = int(hour_index.min()), int(hour_index.max())
    counts = np.bincount(hour_index - first_hour, minlength=last_hour - first_hour + 1)
    if last_s - first_s >= units.S_PER_DAY:
        window_s = (last_hour - first_hour + 1) * units.S_PER_HOUR
        whole = np.ones(counts.size, dtype=bool)
    else:
        window_s = last_s - first_s
        starts = (first_hour + np.arange(counts.size)) * units.S_PER_HOUR
        whole = (starts >= first_s) & (starts + units.S_PER_HOUR <= last_s)
    mean_per_hour = n / window_s * units.S_PER_HOUR
    hour_of_day = (first_hour + np.arange(counts.size)) % units.HOURS_PER_DAY
    profile: list[float | None] = []
    for h in range(units.HOURS_PER_DAY):
        in_hour = counts[whole & (hour_of_day == h)]
        profile.append(float(in_hour.mean() / mean_per_hour) if in_hour.size else None)
    peak_per_hour = max(float(counts[whole].max()) if whole.any() else 0.0, mean_per_hour)
    warnings = []
    if last_s - first_s < units.S_PER_DAY:
        warnings.append(f"the export spans {(last_s - first_s) / units.S_PER_HOUR:.2f} h, less than a day: the "
                        f"hourly profile is partial and the peak-to-average ratio understates daily peaks")
    inp, out = np.asarray(input_tokens, dtype=float), np.asarray(output_tokens, dtype=float)
    q_in, q_out = np.percentile(inp, QUANTILES), np.percentile(out, QUANTILES)
    cached_frac = None
    if cached_input_tokens is not None:
        total_in = float(inp.sum())
        cached_frac = float(np.sum(cached_input_tokens)) / total_in if total_in > 0 else 0.0
    return UsageWorkload(
        requests=n, first_request_utc=_iso(first_s), last_request_utc=_iso(last_s),
        window_s=float(window_s), requests_per_day=mean_per_hour * units.HOURS_PER_DAY,
        mean_requests_per_s=mean_per_hour / units.S_PER_HOUR,
        peak_requests_per_s=peak_per_hour / units.S_PER_HOUR,
        peak_to_average_ratio=peak_per_hour / mean_per_hour,
        input_tokens_mean=float(inp.mean()), input_tokens_p50=float(q_in[0]), input_tokens_p90=float(q_in[1]),
        input_tokens_p99=float(q_in[2]), input_tokens_max=int(inp.max()),
        output_tokens_mean=float(out.mean()), output_tokens_p50=float(q_out[0]), output_tokens_p90=float(q_out[1]),
        output_tokens_p99=float(q_out[2]), output_tokens_max=int(out.max()),
        prompt_cache_hit_frac=cached_frac, hourly_profile=tuple(profile), warnings=tuple(warnings),
    )


def usage_format(path: str | Path, text: str) -> str:
    """"jsonl" for .jsonl/.ndjson files (or text starting with '{'), else "csv"."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def read_requests(src: SourceFile, *, mapping: Mapping[str, str] | None = None, time_unit: str = "auto",
                  fmt: str | None = None) -> list[Request]:
    """Every request of a CSV or JSONL usage export, checked row by row (MalformedInputError on the first bad one)."""
    if time_unit not in TIME_UNITS:
        raise InvalidInputError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    kind = fmt or usage_format(src.label, src.text)
    reader = _jsonl_requests if kind == "jsonl" else _csv_requests
    requests = list(reader(src, dict(mapping or {}), time_unit))
    if not requests:
        raise bad(src.label, None, None, None, "has no requests")
    return requests


def workload_from_requests(requests: Sequence[Request]) -> UsageWorkload:
    cached = [r.cached_input_tokens for r in requests]
    has_cached = any(c is not None for c in cached)
    return describe_usage([r.timestamp_s for r in requests], [r.input_tokens for r in requests],
                          [r.output_tokens for r in requests],
                          [c or 0 for c in cached] if has_cached else None)


def import_usage_file(path: str | Path, *, mapping: Mapping[str, str] | None = None,
                      time_unit: str = "auto") -> UsageWorkload:
    """Read a usage export and describe its workload."""
    return workload_from_requests(read_requests(read_source(path), mapping=mapping, time_unit=time_unit))


def scenario_fields(workload: UsageWorkload) -> dict[str, Any]:
    """The scenario's workload fields measured from the export, each checked by the scenario's own rules.

    The hourly profile is included only when the export covers every hour of the day. A field the
    scenario rejects raises InvalidInputError; `scenario_fields_and_warnings` leaves it out instead.
    """
    fields, problems = scenario_fields_and_warnings(workload)
    if problems:
        raise InvalidInputError(problems[0])
    return fields


def scenario_fields_and_warnings(workload: UsageWorkload) -> tuple[dict[str, Any], list[str]]:
    """(fields the scenario accepts, a warning for each measured field it does not take).

    A real trace may be burstier than the scenario's bounds (a 10-day trace with a busiest hour at
    236x the mean): the measurement stands and is printed; only the snippet leaves the field out.
    """
    from planner.scenario import coerce_field  # the scenario sits above data/ in the layers: imported on use

    fields: dict[str, Any] = {
        "requests_per_day": workload.requests_per_day,
        "input_tokens_mean": workload.input_tokens_mean,
        "output_tokens_mean": workload.output_tokens_mean,
        "peak_to_average_ratio": workload.peak_to_average_ratio,
    }
    if all(v is not None for v in workload.hourly_profile):
        fields["hourly_profile"] = [round(float(v), 6) for v in workload.hourly_profile]
    if workload.prompt_cache_hit_frac is not None:
        fields["prompt_cache_hit_frac"] = workload.prompt_cache_hit_frac
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in fields.items():
        value = round(value, 6) if isinstance(value, float) else value
        try:
            checked = coerce_field(name, value)
        except InvalidInputError as err:
            problems.append(f"measured {name} = {brief(value)} is left out of the scenario snippet: {err}")
            continue
        out[name] = list(checked) if isinstance(checked, tuple) else checked
    return out, problems
