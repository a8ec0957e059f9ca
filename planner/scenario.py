"""Scenarios: every input of a plan as one flat, unit-suffixed, validated record.

`SCENARIO_FIELDS` describes each field (unit, bounds, default, help, source of the default)
so that the app can build widgets and check URL parameters, and the CSV report can list
every assumption. Defaults come from data/cost_defaults.csv and data/workload_presets.csv
(None means "take it from the preset" or "from the catalog"). Scenarios round-trip through
JSON and TOML; `apply_overrides` takes `key=value` strings as the CLI's --set does.
The bounds are validation limits that keep inputs sane, not model parameters.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from planner.data.safe_io import read_json, read_toml
from planner.econ.costs import RENTAL_TIERS, CostDefault, load_cost_defaults
from planner.econ.workload import HOURS_PER_PROFILE, WorkloadPreset, load_presets
from planner.errors import InvalidInputError, brief, truncate


@functools.cache
def cost_defaults() -> dict[str, CostDefault]:
    """data/cost_defaults.csv, read on first use and cached (nothing is read at import)."""
    return load_cost_defaults()


@functools.cache
def presets() -> dict[str, WorkloadPreset]:
    """data/workload_presets.csv, read on first use and cached."""
    return load_presets()


class _LazyMapping(Mapping):
    """A read-only mapping filled by `loader` on first access, so importing this module reads no file."""

    def __init__(self, loader: Callable[[], Mapping]) -> None:
        self._loader = loader

    def __getitem__(self, key: Any) -> Any:
        return self._loader()[key]

    def __iter__(self) -> Iterator:
        return iter(self._loader())

    def __len__(self) -> int:
        return len(self._loader())

    def __repr__(self) -> str:
        return repr(dict(self._loader()))


COST_DEFAULTS: Mapping[str, CostDefault] = _LazyMapping(cost_defaults)
PRESETS: Mapping[str, WorkloadPreset] = _LazyMapping(presets)
MODES = ("rented", "owned")
QUALITY_POLICIES = ("lossless", "low-risk", "any")
PROVIDER_POLICIES = ("no-marketplace", "hyperscaler", "any")
LATENCY_PERCENTILES = (0.5, 0.9, 0.95, 0.99)
FINETUNE_METHODS = ("full", "lora", "qlora")
MAX_TEXT_CHARS = 4096  # a model id, GPU id or file path; longer text is a mistake
_SEARCHED = "searched by the planner when empty"
_PRESET_SOURCE = "preset (data/workload_presets.csv)"
_CATALOG_SOURCE = "catalog (data/*.csv)"
_ILLUSTRATIVE = "illustrative starting value, not a measured default: set your own"


@dataclass(frozen=True)
class FieldSpec:
    """Metadata of one scenario field."""

    name: str
    kind: str  # str | int | float | bool | choice | profile
    group: str  # model | workload | slo | deployment | owned | api
    unit: str
    default: Any
    help: str
    source: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: value must be > low
    nullable: bool = False
    choices: tuple[Any, ...] = ()


def _cost(name: str, group: str, unit: str, help_: str, low: float, high: float, *, low_open: bool = False
          ) -> FieldSpec:
    row = cost_defaults()[name]
    return FieldSpec(name, "float", group, unit, row.value, help_, f"{row.source_url} ({row.source_accessed})",
                     low, high, low_open)


@functools.cache
def _field_specs() -> tuple[FieldSpec, ...]:
    """Every field's spec, built on first use (the cost defaults and preset names come from data/)."""
    return (
    FieldSpec("model", "str", "model", "", "meta-llama/Llama-3.3-70B-Instruct", "catalog model id or alias, or a "
              "path to a config.json", _ILLUSTRATIVE),
    FieldSpec("gpu", "str", "model", "", "H100-SXM", "GPU id or alias, or auto (the planner searches the "
              "catalog's GPUs)", _ILLUSTRATIVE),
    FieldSpec("num_gpus_per_replica", "int", "model", "gpus", None, "GPUs holding one model copy (empty: the "
              "planner searches the counts that fit and meet the latency targets)", _SEARCHED, 1, 4096,
              nullable=True),
    FieldSpec("tp", "int", "model", "gpus", None, "tensor-parallel degree inside a replica (empty: the planner "
              "searches the layout)", _SEARCHED, 1, 4096, nullable=True),
    FieldSpec("pp", "int", "model", "stages", None, "pipeline-parallel stages inside a replica (empty: the "
              "planner searches the layout)", _SEARCHED, 1, 4096, nullable=True),
    FieldSpec("precision", "str", "model", "", None, "weight precision (empty: the planner searches the "
              "precisions the quality policy allows)", _SEARCHED, nullable=True),
    FieldSpec("kv_dtype", "str", "model", "", None, "KV cache dtype (empty: the planner searches the KV dtypes "
              "the quality policy allows)", _SEARCHED, nullable=True),
    FieldSpec("engine", "str", "model", "", None, "serving engine (empty: the planner searches the engines)",
              _SEARCHED, nullable=True),
    FieldSpec("profile", "str", "model", "", None, "named efficiency profile", _CATALOG_SOURCE, nullable=True),
    FieldSpec("expert_parallel", "bool", "model", "", False, "spread MoE experts over the replica's GPUs "
              "(empty: the planner searches)", "engine default (off)", nullable=True),
    FieldSpec("max_num_seqs", "int", "model", "sequences", None, "the engine's concurrency limit per replica "
              "(empty: the planner searches)", _SEARCHED, 1, 65536, nullable=True),
    FieldSpec("quality_policy", "choice", "model", "", "low-risk", "which precisions and KV dtypes the planner "
              "may pick: lossless (native only), low-risk (8-bit and well-measured 4-bit), any",
              "low-risk unless set", choices=QUALITY_POLICIES),
    FieldSpec("provider_policy", "choice", "deployment", "", "no-marketplace", "which GPU clouds the planner may "
              "rent from: no-marketplace, hyperscaler (only), any", "no-marketplace unless set",
              choices=PROVIDER_POLICIES),
    FieldSpec("preset", "choice", "workload", "", "chat", "workload shape supplying the empty workload and "
              "latency fields", _PRESET_SOURCE, choices=tuple(presets())),
    FieldSpec("requests_per_day", "float", "workload", "requests_per_day", 100_000.0, "average daily requests "
              "(ignored when tokens_per_month is set)", _ILLUSTRATIVE, 0, 1e12, low_open=True),
    FieldSpec("tokens_per_month", "float", "workload", "tokens_per_month", None, "input + output tokens a month, "
              "instead of requests_per_day", "user input", 0, 1e16, low_open=True, nullable=True),
    FieldSpec("input_tokens_mean", "float", "workload", "tokens", None, "mean prompt tokens per request",
              _PRESET_SOURCE, 1, 10_000_000, nullable=True),
    FieldSpec("output_tokens_mean", "float", "workload", "tokens", None, "mean generated tokens per request",
              _PRESET_SOURCE, 1, 10_000_000, nullable=True),
    FieldSpec("request_sizes_csv", "str", "workload", "", None, "CSV of observed request sizes (columns "
              "input_tokens, output_tokens); its means replace the preset's", "user input", nullable=True),
    FieldSpec("peak_to_average_ratio", "float", "workload", "ratio", None, "busiest hour / daily average",
              _PRESET_SOURCE, 1, 1000, nullable=True),
    FieldSpec("hourly_profile", "profile", "workload", "relative_load", None, f"{HOURS_PER_PROFILE} relative "
              "hourly loads; sets the peak and lets rented fleets follow the day", "user input", nullable=True),
    FieldSpec("monthly_growth_frac", "float", "workload", "fraction_per_month", 0.0, "compound traffic growth",
              "no growth unless set", -0.9, 10),
    FieldSpec("prompt_cache_hit_frac", "float", "workload", "fraction", None, "share of input tokens read from "
              "the prompt cache (API prices them at the cached rate)", _PRESET_SOURCE, 0, 1, nullable=True),
    FieldSpec("prompt_cache_write_frac", "float", "workload", "fraction", 0.0, "share of input tokens written to "
              "the prompt cache (priced at the cache-write rate)", "no cache writes unless set", 0, 1),
    FieldSpec("offline_frac", "float", "workload", "fraction", None, "share of requests that can wait for "
              "offline batches", _PRESET_SOURCE, 0, 1, nullable=True),
    FieldSpec("ttft_target_s", "float", "slo", "s", None, "time-to-first-token target", _PRESET_SOURCE, 0, 3600,
              low_open=True, nullable=True),
    FieldSpec("tpot_target_s", "float", "slo", "s", None, "time-per-output-token target", _PRESET_SOURCE, 0, 60,
              low_open=True, nullable=True),
    FieldSpec("latency_percentile", "float", "slo", "quantile", 0.95, "the percentile the latency targets hold "
              "at (0.5, 0.9, 0.95 or 0.99)", "p95 unless set", 0.5, 0.99, choices=LATENCY_PERCENTILES),
    FieldSpec("mode", "choice", "deployment", "", "rented", "headline deployment: rented or owned",
              "rented unless set", choices=MODES),
    FieldSpec("rental_tier", "choice", "deployment", "", "on_demand", "headline rental tier",
              "on_demand unless set", choices=RENTAL_TIERS),
    FieldSpec("provider", "str", "deployment", "", None, "GPU cloud for every rental tier (empty: each tier "
              "takes its own cheapest offer across providers)",
              "data/gpu_prices.csv", nullable=True),
    FieldSpec("autoscale", "bool", "deployment", "", False, "rented on-demand and spot fleets follow the "
              "hourly_profile", "off unless set"),
    FieldSpec("redundancy_replicas", "int", "deployment", "replicas", 0, "N+k spare replicas", "none unless set",
              0, 1000),
    FieldSpec("headroom_frac", "float", "deployment", "fraction", 0.0, "extra capacity above the peak hour for "
              "bursts", "none unless set", 0, 10),
    FieldSpec("gpu_price_usd_per_gpu_hour", "float", "deployment", "usd_per_gpu_hour", None, "your price for the "
              "headline rental tier", "data/gpu_prices.csv", 0, 1000, low_open=True, nullable=True),
    _cost("spot_interruption_overhead_frac", "deployment", "fraction", "extra spot GPU-hours for interruptions", 0, 1),
    _cost("reserved_1y_discount_frac", "deployment", "fraction", "1-year discount where none is listed", 0, 0.99),
    _cost("reserved_3y_discount_frac", "deployment", "fraction", "3-year discount where none is listed", 0, 0.99),
    FieldSpec("gpu_purchase_usd", "float", "owned", "usd_per_gpu", None, "GPU purchase price",
              "data/gpus.csv", 0, 1e7, low_open=True, nullable=True),
    FieldSpec("gpu_power_w", "float", "owned", "w", None, "GPU board power (TDP)", "data/gpus.csv", 0, 1e5,
              low_open=True, nullable=True),
    _cost("server_network_capex_frac", "owned", "fraction", "server and network capex per GPU / GPU price", 0, 10),
    _cost("amortisation_years", "owned", "years", "economic life of owned hardware", 0, 30, low_open=True),
    _cost("cost_of_capital_frac_per_year", "owned", "fraction_per_year", "interest on the capital", 0, 1),
    _cost("residual_value_frac", "owned", "fraction", "resale value at the end of life / capex", 0, 1),
    _cost("server_to_gpu_power_ratio", "owned", "ratio", "server maximum power / GPU TDP", 1, 10),
    _cost("power_load_frac", "owned", "fraction", "average power / maximum", 0, 1),
    _cost("pue", "owned", "ratio", "facility power / IT power", 1, 5),
    _cost("electricity_usd_per_kwh", "owned", "usd_per_kwh", "electricity price", 0, 10),
    _cost("colocation_usd_per_kw_month", "owned", "usd_per_kw_month", "colocation rent per kW of IT load", 0, 10_000),
    _cost("software_usd_per_gpu_year", "owned", "usd_per_gpu_year", "software licences (rented and owned)", 0, 1e6),
    _cost("staff_fte", "owned", "fte", "engineers' time operating the stack (rented and owned)", 0, 1000),
    _cost("staff_usd_per_fte_year", "owned", "usd_per_fte_year", "loaded cost of one engineer", 0, 1e7),
    FieldSpec("api_id", "str", "api", "", None, "API to compare with (empty: the cheapest API serving the same "
              "model)", "data/api_prices.csv", nullable=True),
    FieldSpec("api_price_decline_frac_per_year", "float", "api", "fraction_per_year", 0.0, "yearly API price "
              "decline; for fixed capability prices fell about 10x a year in 2021-2024 (0.9)",
              "list prices held unless set; trend: https://a16z.com/llmflation-llm-inference-cost/", 0, 0.99),
    FieldSpec("horizon_months", "int", "api", "months", 36, "months in the monthly table",
              "the longest rental commitment (3 years)", 1, 120),
    FieldSpec("finetune_runs_per_year", "float", "finetune", "runs_per_year", 0.0, "fine-tuning runs a year "
              "added to the TCO (0: none)", "no fine-tuning unless set", 0, 1e6),
    FieldSpec("finetune_method", "choice", "finetune", "", "lora", "full, lora or qlora", "lora unless set",
              choices=FINETUNE_METHODS),
    FieldSpec("finetune_dataset_tokens", "float", "finetune", "tokens", None, "training tokens per epoch "
              "(required when finetune_runs_per_year > 0)", "user input", 0, 1e15, low_open=True, nullable=True),
    FieldSpec("finetune_epochs", "float", "finetune", "epochs", 1.0, "passes over the dataset per run",
              "one epoch unless set", 0, 1000, low_open=True),
    FieldSpec("finetune_seq_len", "int", "finetune", "tokens", 4096, "training sequence length",
              "4096 unless set", 1, 10_000_000),
    FieldSpec("finetune_gpu", "str", "finetune", "", None, "GPU for fine-tuning (empty: the serving GPU)",
              "the serving GPU unless set", nullable=True),
    FieldSpec("finetune_num_gpus", "int", "finetune", "gpus", None, "GPUs per fine-tuning run (empty: the "
              "fewest that fit)", "the fewest that fit unless set", 1, 4096, nullable=True),
    FieldSpec("finetune_lora_rank", "int", "finetune", "rank", 16, "LoRA / QLoRA adapter rank",
              "16 unless set", 1, 65536),
    )


@functools.cache
def _fields_by_name() -> dict[str, FieldSpec]:
    return {f.name: f for f in _field_specs()}


SCENARIO_FIELDS: Mapping[str, FieldSpec] = _LazyMapping(_fields_by_name)


def _cost_default(name: str) -> Any:
    return field(default_factory=lambda: cost_defaults()[name].value)


def _check(spec: FieldSpec, value: Any) -> Any:
    """The value normalised to the field's type, or InvalidInputError naming the field."""
    where = f"scenario field {spec.name!r}"
    if value is None:
        if spec.nullable:
            return None
        raise InvalidInputError(f"{where} is required")
    if spec.kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{where} must be a non-empty string, got {brief(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise InvalidInputError(f"{where} must be at most {MAX_TEXT_CHARS} characters, got {len(value):,}: "
                                    f"{brief(value)}")
        return value.strip()
    if spec.kind == "choice":
        low = value.strip().lower() if isinstance(value, str) else None
        if low not in spec.choices:
            raise InvalidInputError(f"{where} must be one of {', '.join(spec.choices)}, got {brief(value)}")
        return low
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise InvalidInputError(f"{where} must be true or false, got {brief(value)}")
        return value
    if spec.kind == "profile":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != HOURS_PER_PROFILE:
            raise InvalidInputError(f"{where} must be a list of {HOURS_PER_PROFILE} numbers, got {brief(value)}")
        out = tuple(_number(spec, v, f"{where}[{i}]", 0, math.inf, False) for i, v in enumerate(value))
        if sum(out) <= 0:
            raise InvalidInputError(f"{where} must have some traffic (all values are 0)")
        return out
    number = _number(spec, value, where, spec.low, spec.high, spec.low_open)
    if spec.choices and number not in spec.choices:
        raise InvalidInputError(f"{where} must be one of {', '.join(f'{c:g}' for c in spec.choices)}, "
                                f"got {brief(value)}")
    if spec.kind == "int":
        if number != int(number):
            raise InvalidInputError(f"{where} must be a whole number, got {brief(value)}")
        return int(number)
    return float(number)


def _number(spec: FieldSpec, value: Any, where: str, low: float | None, high: float | None, low_open: bool) -> float:
    unit = f" ({spec.unit})" if spec.unit else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{where} must be a finite number{unit}, got {brief(value)}")
    huge = isinstance(value, int) and value.bit_length() > 64  # beyond every bound; float() would overflow
    if not huge and not math.isfinite(value):
        raise InvalidInputError(f"{where} must be a finite number{unit}, got {brief(value)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if huge or too_low or (high is not None and value > high):
        bracket = "(" if low_open else "["
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        raise InvalidInputError(f"{where} must be in {bracket}{low_text}, {high_text}]{unit}, got {brief(value)}")
    return value


@dataclass(frozen=True)
class Scenario:
    """Every input of a plan. None: take the value from the preset, the catalog or the cost defaults."""

    model: str = "meta-llama/Llama-3.3-70B-Instruct"
    gpu: str = "H100-SXM"
    num_gpus_per_replica: int | None = None
    tp: int | None = None
    pp: int | None = None
    precision: str | None = None
    kv_dtype: str | None = None
    engine: str | None = None
    profile: str | None = None
    expert_parallel: bool | None = False
    max_num_seqs: int | None = None
    quality_policy: str = "low-risk"
    provider_policy: str = "no-marketplace"
    preset: str = "chat"
    requests_per_day: float = 100_000.0
    tokens_per_month: float | None = None
    input_tokens_mean: float | None = None
    output_tokens_mean: float | None = None
    request_sizes_csv: str | None = None
    peak_to_average_ratio: float | None = None
    hourly_profile: tuple[float, ...] | None = None
    monthly_growth_frac: float = 0.0
    prompt_cache_hit_frac: float | None = None
    prompt_cache_write_frac: float = 0.0
    offline_frac: float | None = None
    ttft_target_s: float | None = None
    tpot_target_s: float | None = None
    latency_percentile: float = 0.95
    mode: str = "rented"
    rental_tier: str = "on_demand"
    provider: str | None = None
    autoscale: bool = False
    redundancy_replicas: int = 0
    headroom_frac: float = 0.0
    gpu_price_usd_per_gpu_hour: float | None = None
    spot_interruption_overhead_frac: float = _cost_default("spot_interruption_overhead_frac")
    reserved_1y_discount_frac: float = _cost_default("reserved_1y_discount_frac")
    reserved_3y_discount_frac: float = _cost_default("reserved_3y_discount_frac")
    gpu_purchase_usd: float | None = None
    gpu_power_w: float | None = None
    server_network_capex_frac: float = _cost_default("server_network_capex_frac")
    amortisation_years: float = _cost_default("amortisation_years")
    cost_of_capital_frac_per_year: float = _cost_default("cost_of_capital_frac_per_year")
    residual_value_frac: float = _cost_default("residual_value_frac")
    server_to_gpu_power_ratio: float = _cost_default("server_to_gpu_power_ratio")
    power_load_frac: float = _cost_default("power_load_frac")
    pue: float = _cost_default("pue")
    electricity_usd_per_kwh: float = _cost_default("electricity_usd_per_kwh")
    colocation_usd_per_kw_month: float = _cost_default("colocation_usd_per_kw_month")
    software_usd_per_gpu_year: float = _cost_default("software_usd_per_gpu_year")
    staff_fte: float = _cost_default("staff_fte")
    staff_usd_per_fte_year: float = _cost_default("staff_usd_per_fte_year")
    api_id: str | None = None
    api_price_decline_frac_per_year: float = 0.0
    horizon_months: int = 36
    finetune_runs_per_year: float = 0.0
    finetune_method: str = "lora"
    finetune_dataset_tokens: float | None = None
    finetune_epochs: float = 1.0
    finetune_seq_len: int = 4096
    finetune_gpu: str | None = None
    finetune_num_gpus: int | None = None
    finetune_lora_rank: int = 16

    def __post_init__(self) -> None:
        for spec in _field_specs():
            object.__setattr__(self, spec.name, _check(spec, getattr(self, spec.name)))
        hit = self.prompt_cache_hit_frac
        if hit is not None and hit + self.prompt_cache_write_frac > 1:
            raise InvalidInputError(f"scenario fields prompt_cache_hit_frac + prompt_cache_write_frac must be <= 1, "
                                    f"got {hit} + {self.prompt_cache_write_frac}")


_GIVEN = "_fields_given"  # instance attribute (not a field): names given explicitly, where known


@functools.cache
def _default_scenario() -> Scenario:
    return Scenario()


def fields_given(scenario: Scenario) -> frozenset[str]:
    """The fields set explicitly: the keys of the file or mapping it was read from plus --set overrides;
    for a Scenario built directly, the fields that differ from the defaults."""
    given = scenario.__dict__.get(_GIVEN)
    if given is not None:
        return given
    default = _default_scenario()
    return frozenset(n for n in _fields_by_name() if getattr(scenario, n) != getattr(default, n))


def _with_given(scenario: Scenario, given: Iterable[str]) -> Scenario:
    object.__setattr__(scenario, _GIVEN, frozenset(given))
    return scenario


def _closest_field(name: str) -> str:
    close = difflib.get_close_matches(name, SCENARIO_FIELDS, n=3, cutoff=0.6)
    return f"; closest: {', '.join(close)}" if close else "; see `SCENARIO_FIELDS` or docs/tco.md"


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """A validated Scenario from a mapping of field names; one clear error per bad field."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"a scenario must be a mapping of field names to values, got {type(data).__name__}")
    for key in data:
        if key not in SCENARIO_FIELDS:
            raise InvalidInputError(f"unknown scenario field {brief(key)}{_closest_field(truncate(str(key)))}")
    return _with_given(Scenario(**data), data)


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Every field, in declaration order (the profile as a list)."""
    out = dataclasses.asdict(scenario)
    if out["hourly_profile"] is not None:
        out["hourly_profile"] = list(out["hourly_profile"])
    return out


def _parse_text(spec: FieldSpec, text: str) -> Any:
    """A field value from text (CLI --set, URL parameters)."""
    raw = text.strip()
    if raw.lower() in ("", "none", "null") and spec.nullable:
        return None
    try:
        if spec.kind == "bool":
            low = raw.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            return raw
        if spec.kind in ("int", "float"):
            return float(raw) if spec.kind == "float" or not raw.lstrip("+-").isdigit() else int(raw)
        if spec.kind == "profile":
            return [float(part) for part in raw.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise InvalidInputError(f"scenario field {spec.name!r}: cannot read {brief(text)} as a "
                                f"{'list of numbers' if spec.kind == 'profile' else 'number'}") from None
    return raw


def clip_to_field(name: str, value: float) -> float | None:
    """A number moved into a numeric field's bounds (SCENARIO_FIELDS): below low -> low, above high -> high,
    whole-number fields rounded. None when the value is not finite, or when it would sit on an open lower
    bound (a field that must be > low cannot take low)."""
    spec = SCENARIO_FIELDS.get(name)
    if spec is None or spec.kind not in ("int", "float"):
        raise InvalidInputError(f"{brief(name)} is not a numeric scenario field{_closest_field(truncate(name))}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if spec.high is not None:
        value = min(value, spec.high)
    if spec.low is not None:
        value = max(value, spec.low)
        if spec.low_open and value <= spec.low:
            return None
    return float(round(value)) if spec.kind == "int" else float(value)


def coerce_field(name: str, value: Any) -> Any:
    """Validate one field's value (text is parsed first); InvalidInputError names the field."""
    spec = SCENARIO_FIELDS.get(name)
    if spec is None:
        raise InvalidInputError(f"unknown scenario field {brief(name)}{_closest_field(truncate(name))}")
    return _check(spec, _parse_text(spec, value) if isinstance(value, str) else value)


def apply_overrides(scenario: Scenario, overrides: Iterable[str]) -> Scenario:
    """A copy with `key=value` overrides applied in order (`none` empties an optional field)."""
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"override {brief(item)} must look like key=value")
        changes[key.strip()] = coerce_field(key.strip(), text)
    return _with_given(dataclasses.replace(scenario, **changes), fields_given(scenario) | set(changes))


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from a .json or .toml file (fields left out keep their defaults).

    Read through planner.data.safe_io: size and nesting bounded, duplicate keys, NaN/inf and
    huge integers refused with one line naming the file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise InvalidInputError(f"scenario file {brief(str(p))} must end in .json or .toml")
    if not p.exists() and not p.is_symlink():
        raise InvalidInputError(f"scenario file {brief(str(p))} does not exist")
    data = (read_json if suffix == ".json" else read_toml)(p, what="scenario file")
    try:
        return scenario_from_dict(data)
    except InvalidInputError as err:
        raise InvalidInputError(f"{p.name}: {err}") from None


def dump_scenario(scenario: Scenario, path: str | Path) -> None:
    """Write a scenario as .json (every field, null for empty) or .toml (empty fields left out)."""
    p = Path(path)
    data = scenario_to_dict(scenario)
    if p.suffix.lower() == ".json":
        p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    elif p.suffix.lower() == ".toml":
        p.write_text(tomli_w.dumps({k: v for k, v in data.items() if v is not None}), encoding="utf-8")
    else:
        raise InvalidInputError(f"scenario file {brief(str(p))} must end in .json or .toml")


_JSON_TYPES = {"str": "string", "choice": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "profile":
        item: dict[str, Any] = {"type": "array", "items": {"type": "number", "minimum": 0},
                                "minItems": HOURS_PER_PROFILE, "maxItems": HOURS_PER_PROFILE}
    else:
        item = {"type": _JSON_TYPES[spec.kind]}
        if spec.kind == "str":
            item.update(minLength=1, maxLength=MAX_TEXT_CHARS)
        if spec.choices:
            item["enum"] = list(spec.choices)
        if spec.kind in ("int", "float") and not spec.choices:
            if spec.low is not None:
                item["exclusiveMinimum" if spec.low_open else "minimum"] = spec.low
            if spec.high is not None:
                item["maximum"] = spec.high
    schema = {"anyOf": [item, {"type": "null"}]} if spec.nullable else item
    default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
    unit = f" [{spec.unit}]" if spec.unit else ""
    return {**schema, "default": default, "description": f"{spec.help}{unit}. Default from: {spec.source}",
            "x-unit": spec.unit, "x-group": spec.group}


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file, from the field specs (docs/scenario.schema.json)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Scenario",
        "description": "Every input of a plan (planner/scenario.py). Fields left out take their defaults; "
                       "null: the preset, the catalog or the planner's search supplies the value. "
                       "Also: prompt_cache_hit_frac + prompt_cache_write_frac <= 1.",
        "type": "object",
        "additionalProperties": False,
        "properties": {spec.name: _field_schema(spec) for spec in _field_specs()},
    }


def scenario_fields_markdown() -> str:
    """The field table of docs/scenario.md."""
    lines = ["| field | group | type | unit | allowed | default | description | source of the default |",
             "|---|---|---|---|---|---|---|---|"]
    for spec in _field_specs():
        if spec.choices:
            allowed = " / ".join(f"{c:g}" if isinstance(c, float) else str(c) for c in spec.choices)
        elif spec.kind in ("int", "float") and (spec.low is not None or spec.high is not None):
            allowed = (f"{'(' if spec.low_open else '['}{spec.low:g}, {spec.high:g}]" if spec.low is not None
                       else f"<= {spec.high:g}")
        elif spec.kind == "profile":
            allowed = f"{HOURS_PER_PROFILE} numbers >= 0"
        else:
            allowed = ""
        kind = f"{spec.kind} or empty" if spec.nullable else spec.kind
        default = "empty" if spec.default is None else f"{spec.default:g}" if isinstance(spec.default, float) \
            else str(spec.default)
        cells = [spec.name, spec.group, kind, spec.unit, allowed, default, spec.help, spec.source]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m planner.scenario: regenerate docs/scenario.schema.json and the docs table
    _docs = Path(__file__).resolve().parents[1] / "docs"
    (_docs / "scenario.schema.json").write_text(json.dumps(scenario_json_schema(), indent=2) + "\n",
                                                encoding="utf-8")
    _md = _docs / "scenario.md"
    _begin, _end = "<!-- fields:begin -->\n", "<!-- fields:end -->"
    _text = _md.read_text(encoding="utf-8")
    _head, _rest = _text.split(_begin, 1)
    _md.write_text(_head + _begin + scenario_fields_markdown() + _end + _rest.split(_end, 1)[1], encoding="utf-8")
