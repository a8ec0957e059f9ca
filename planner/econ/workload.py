"""Workload: how much traffic, of what shape, arrives when.

A workload is a request rate (requests per day, or tokens per month converted at the mean
request size), the mean input and output tokens per request, how peaky the day is (a
peak-to-average ratio or a 24-hour profile), monthly growth, the prompt-cache hit rate and
the share of traffic that may wait for offline batches. Presets carry sourced defaults
(`data/workload_presets.csv`; sources in workloads literature: Azure LLM inference trace
2023, Mooncake, NVIDIA NIM benchmarking guide, InferenceMAX, ServeGen, MLPerf Inference).

Everything here is a pure function of numbers, except the two readers of CSV files
(`load_presets`, `request_sizes_from_csv`), which go through the schema-checked reader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from planner import units
from planner.data._csvschema import read_records
from planner.data.catalog import DATA_DIR
from planner.data.columns import Count, Date, Number, Positive, Share, Url, columns
from planner.errors import (
    CatalogError,
    InvalidInputError,
    UnknownNameError,
    require_frac,
    require_non_negative,
    require_positive,
)

HOURS_PER_PROFILE = 24  # one value per hour of the day


@dataclass(frozen=True)
class WorkloadPreset:
    """A named workload shape with sourced defaults (one row of workload_presets.csv)."""

    preset_id: str
    name: str
    input_tokens_mean: Positive
    output_tokens_mean: Positive
    peak_to_average_ratio: Annotated[float, Number(ge=1)]  # a peak is never below the average
    ttft_target_s: Positive
    tpot_target_s: Positive
    offline_frac: Share
    prompt_cache_hit_frac: Share
    source_url: Url
    slo_source_url: Url
    traffic_source_url: Url
    source_accessed: Date
    notes: str | None


PRESET_SCHEMA = columns(WorkloadPreset)  # the columns of data/workload_presets.csv


@dataclass(frozen=True)
class RequestSize:
    """One request of an uploaded request-size CSV (other columns are ignored)."""

    input_tokens: Count
    output_tokens: Count


def load_presets(path: str | Path = DATA_DIR / "workload_presets.csv") -> dict[str, WorkloadPreset]:
    """Read and check the preset table; CatalogError names the file, row and column of a problem."""
    return read_records(path, WorkloadPreset, id_column="preset_id").by("preset_id")


def preset(presets: dict[str, WorkloadPreset], name: str) -> WorkloadPreset:
    """The preset called `name` (case-insensitive); UnknownNameError lists the known ones."""
    if not isinstance(name, str):
        raise InvalidInputError(f"preset must be a name, got {name!r}")
    found = presets.get(name.strip().lower())
    if found is None:
        raise UnknownNameError(f"unknown workload preset {name!r}; known: {', '.join(sorted(presets))}")
    return found


@dataclass(frozen=True)
class RequestSizes:
    """Observed request sizes: mean and tail of input and output tokens."""

    n_requests: int
    input_tokens_mean: float
    output_tokens_mean: float
    input_tokens_p50: float
    input_tokens_p90: float
    input_tokens_p99: float
    output_tokens_p50: float
    output_tokens_p90: float
    output_tokens_p99: float
    context_tokens_p99: float  # p99 of input + output per request


def request_sizes(input_tokens: Sequence[float], output_tokens: Sequence[float]) -> RequestSizes:
    """Mean and percentiles (linear interpolation, numpy's default) of observed request sizes."""
    inp = np.asarray(input_tokens, dtype=float)
    out = np.asarray(output_tokens, dtype=float)
    if inp.size == 0 or inp.shape != out.shape:
        raise InvalidInputError(f"request sizes need equally many input and output counts (at least one), got "
                                f"{inp.size} and {out.size}")
    if not (np.all(np.isfinite(inp)) and np.all(np.isfinite(out)) and inp.min() > 0 and out.min() > 0):
        raise InvalidInputError("request sizes must be finite and > 0")
    p = np.percentile
    return RequestSizes(
        n_requests=int(inp.size), input_tokens_mean=float(inp.mean()), output_tokens_mean=float(out.mean()),
        input_tokens_p50=float(p(inp, 50)), input_tokens_p90=float(p(inp, 90)), input_tokens_p99=float(p(inp, 99)),
        output_tokens_p50=float(p(out, 50)), output_tokens_p90=float(p(out, 90)),
        output_tokens_p99=float(p(out, 99)), context_tokens_p99=float(p(inp + out, 99)),
    )


def request_sizes_from_csv(source: str | Path | bytes, *, name: str | None = None) -> RequestSizes:
    """Request sizes from a CSV with columns input_tokens and output_tokens (other columns are ignored).

    Accepts a path or the bytes of an upload; a malformed file raises InvalidInputError naming
    the row and column.
    """
    try:
        rows = read_records(source, RequestSize, name=name, strict_columns=False)
    except CatalogError as err:
        raise InvalidInputError(f"request sizes CSV: {err}") from None
    if not rows:
        raise InvalidInputError(f"request sizes CSV {name or source!s}: no data rows")
    return request_sizes([r.input_tokens for r in rows], [r.output_tokens for r in rows])


def normalised_profile(hourly_profile: Sequence[float]) -> tuple[float, ...]:
    """A 24-hour traffic profile scaled to mean 1 (any unit in, relative load out)."""
    values = tuple(hourly_profile)
    if len(values) != HOURS_PER_PROFILE:
        raise InvalidInputError(f"hourly_profile must have {HOURS_PER_PROFILE} values (one per hour), "
                                f"got {len(values)}")
    for hour, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InvalidInputError(f"hourly_profile[{hour}] must be finite and >= 0, got {v!r}")
    mean = sum(values) / HOURS_PER_PROFILE
    if mean <= 0:
        raise InvalidInputError("hourly_profile must have some traffic (all 24 values are 0)")
    return tuple(v / mean for v in values)


@dataclass(frozen=True)
class Workload:
    """The resolved workload the sizing and costing work on."""

    requests_per_day: float
    input_tokens_mean: float
    output_tokens_mean: float
    peak_to_average_ratio: float  # derived from the profile when one is given
    hourly_profile: tuple[float, ...] | None  # normalised to mean 1
    monthly_growth_frac: float
    prompt_cache_hit_frac: float
    prompt_cache_write_frac: float
    offline_frac: float

    def __post_init__(self) -> None:
        require_non_negative(requests_per_day=self.requests_per_day)
        require_positive(input_tokens_mean=self.input_tokens_mean, output_tokens_mean=self.output_tokens_mean)
        if not (isinstance(self.peak_to_average_ratio, (int, float)) and math.isfinite(self.peak_to_average_ratio)
                and self.peak_to_average_ratio >= 1):
            raise InvalidInputError(f"peak_to_average_ratio must be finite and >= 1, got "
                                    f"{self.peak_to_average_ratio!r}")
        require_frac(allow_zero=True, prompt_cache_hit_frac=self.prompt_cache_hit_frac,
                     prompt_cache_write_frac=self.prompt_cache_write_frac, offline_frac=self.offline_frac)
        if self.prompt_cache_hit_frac + self.prompt_cache_write_frac > 1:
            raise InvalidInputError(f"prompt_cache_hit_frac + prompt_cache_write_frac must be <= 1, got "
                                    f"{self.prompt_cache_hit_frac} + {self.prompt_cache_write_frac}")
        if not math.isfinite(self.monthly_growth_frac) or self.monthly_growth_frac <= -1:
            raise InvalidInputError(f"monthly_growth_frac must be finite and > -1, got {self.monthly_growth_frac!r}")

    @property
    def tokens_per_request(self) -> float:
        return self.input_tokens_mean + self.output_tokens_mean


def requests_per_day_from_tokens_per_month(tokens_per_month: float, input_tokens_mean: float,
                                           output_tokens_mean: float) -> float:
    """Requests per day that carry `tokens_per_month` (input + output) at the mean request size.

    requests/day = tokens/month / (input + output tokens per request) / days per month (365/12).
    """
    require_positive(tokens_per_month=tokens_per_month, input_tokens_mean=input_tokens_mean,
                     output_tokens_mean=output_tokens_mean)
    return tokens_per_month / (input_tokens_mean + output_tokens_mean) / units.DAYS_PER_MONTH


def monthly_tokens(requests_per_day: float, input_tokens_mean: float, output_tokens_mean: float) -> tuple[float, float]:
    """(input, output) tokens per month: requests/day x days/month (365/12) x tokens per request."""
    require_non_negative(requests_per_day=requests_per_day)
    require_positive(input_tokens_mean=input_tokens_mean, output_tokens_mean=output_tokens_mean)
    requests_per_month = requests_per_day * units.DAYS_PER_MONTH
    return requests_per_month * input_tokens_mean, requests_per_month * output_tokens_mean


def design_rate_factor(peak_to_average_ratio: float, offline_frac: float) -> float:
    """Rate a fixed fleet must serve, as a multiple of the daily average rate.

    The online share (1 - f) must be served at its peak, (1 - f) x peak/average; offline
    work (share f) can wait for the troughs, so over the day capacity must also cover the
    average of all traffic (factor 1). A fleet sized for max((1 - f) x peak/avg, 1) serves
    both when a scheduler fills the troughs with offline work (batch APIs give 24 h).
    """
    require_frac(allow_zero=True, offline_frac=offline_frac)
    require_positive(peak_to_average_ratio=peak_to_average_ratio)
    return max((1.0 - offline_frac) * peak_to_average_ratio, 1.0)


def hourly_rate_factors(hourly_profile: Sequence[float], offline_frac: float) -> np.ndarray:
    """Per-hour load, as a multiple of the daily average, when the fleet follows the profile.

    The online share follows the (mean-1) profile, (1 - f) x profile(h); the offline share
    (f x 24 average-hours of work) is poured into the quietest hours first (water-filling up
    to a level L), so factor(h) = max(online(h), L). The factors average to 1, and their
    maximum equals `design_rate_factor` for the same inputs.
    """
    require_frac(allow_zero=True, offline_frac=offline_frac)
    online = (1.0 - offline_frac) * np.asarray(hourly_profile, dtype=float)
    offline_total = offline_frac * online.size
    if offline_total == 0:
        return online
    ordered = np.sort(online)
    filled = (offline_total + np.cumsum(ordered)) / np.arange(1, ordered.size + 1)  # level if k lowest hours fill
    upper = np.append(ordered[1:], np.inf)
    level = filled[np.argmax(filled <= upper)]
    return np.maximum(online, level)


def requests_per_day_at_month(requests_per_day: float, monthly_growth_frac: float, month: int) -> float:
    """Traffic in month `month` (1 = the first) with compound growth: v x (1 + g)^(month - 1)."""
    require_non_negative(requests_per_day=requests_per_day)
    if month < 1:
        raise InvalidInputError(f"month must be >= 1, got {month}")
    return requests_per_day * (1.0 + monthly_growth_frac) ** (month - 1)


def average_rate_per_s(requests_per_day: float) -> float:
    """Average arrival rate in requests per second: requests/day / 86,400 s."""
    return requests_per_day / units.S_PER_DAY


def resolve_workload(preset_row: WorkloadPreset, sizes: RequestSizes | None, *, requests_per_day: float,
                     tokens_per_month: float | None, input_tokens_mean: float | None,
                     output_tokens_mean: float | None, peak_to_average_ratio: float | None,
                     hourly_profile: Sequence[float] | None, monthly_growth_frac: float,
                     prompt_cache_hit_frac: float | None, prompt_cache_write_frac: float,
                     offline_frac: float | None, warnings: list[str]) -> tuple[Workload, dict[str, str]]:
    """The workload a plan uses: explicit values first, then observed request sizes, then the preset.

    Returns the workload and where each value came from; notes about ignored inputs go to `warnings`.
    """
    sources: dict[str, str] = {}

    def pick(name: str, explicit: float | None, observed: float | None, default: float, default_source: str
             ) -> float:
        if explicit is not None:
            if observed is not None:
                warnings.append(f"{name} = {explicit:g} set explicitly; the request sizes CSV's mean "
                                f"{observed:g} is not used")
            sources[name] = "scenario"
            return explicit
        if observed is not None:
            sources[name] = "request sizes CSV"
            return observed
        sources[name] = default_source
        return default

    p = preset_row
    inp = pick("input_tokens_mean", input_tokens_mean, sizes.input_tokens_mean if sizes else None,
               p.input_tokens_mean, p.source_url)
    out = pick("output_tokens_mean", output_tokens_mean, sizes.output_tokens_mean if sizes else None,
               p.output_tokens_mean, p.source_url)
    if tokens_per_month is not None:
        rate = requests_per_day_from_tokens_per_month(tokens_per_month, inp, out)
        sources["requests_per_day"] = "tokens_per_month"
        warnings.append(f"requests_per_day derived from tokens_per_month: {rate:,.0f} requests/day")
    else:
        rate = requests_per_day
        sources["requests_per_day"] = "scenario"
    profile = normalised_profile(hourly_profile) if hourly_profile is not None else None
    if profile is not None:
        if peak_to_average_ratio is not None:
            warnings.append("peak_to_average_ratio is ignored: the hourly_profile sets the peak")
        peak = max(profile)
        sources["peak_to_average_ratio"] = "hourly_profile"
    else:
        peak = pick("peak_to_average_ratio", peak_to_average_ratio, None, p.peak_to_average_ratio,
                    p.traffic_source_url)
    hit = pick("prompt_cache_hit_frac", prompt_cache_hit_frac, None, p.prompt_cache_hit_frac, p.source_url)
    offline = pick("offline_frac", offline_frac, None, p.offline_frac, p.source_url)
    if sizes is not None and sizes.context_tokens_p99 > 2 * (inp + out):
        warnings.append(f"long tail: p99 request is {sizes.context_tokens_p99:,.0f} tokens against a mean of "
                        f"{inp + out:,.0f}; latency targets are checked for the mean request")
    return Workload(requests_per_day=rate, input_tokens_mean=inp, output_tokens_mean=out,
                    peak_to_average_ratio=peak, hourly_profile=profile, monthly_growth_frac=monthly_growth_frac,
                    prompt_cache_hit_frac=hit, prompt_cache_write_frac=prompt_cache_write_frac,
                    offline_frac=offline), sources
