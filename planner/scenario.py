"""Scenarios: every input of a plan as one flat, unit-suffixed, validated record.

`Scenario` is a frozen dataclass whose class body is the one declaration of every field, written in
pydantic v2: each annotation is `Annotated[type, _about(group, unit, description, source, ge= / gt= /
le=), ...]` (`_about` is a `pydantic.Field`). A pydantic model of the same fields, built from those
annotations on the first construction (`_model`), validates them. Everything else is derived too:

- validation of every way a scenario comes in: `Scenario(...)`, `dataclasses.replace`, files,
  `--set key=value` (`apply_overrides`), URL parameters (`coerce_field`, `clip_to_field`);
- `SCENARIO_FIELDS`, the per-field metadata the app's widgets, the URL parser and the CSV report read;
- the published JSON Schema (`scenario_json_schema`, docs/scenario.schema.json) and the field table
  of docs/scenario.md (`python -m planner.scenario` regenerates both).

A bad value raises InvalidInputError with one line naming the field, the allowed interval or choices
and the value (cut to a short excerpt), never pydantic's multi-line report. Defaults that come from
data/ (cost defaults, preset names) are read on first use, never at import; None means "take it from
the preset", "from the catalog" or "searched by the planner". The bounds are validation limits that
keep inputs sane, not model parameters.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import tomli_w

from planner.data.safe_io import read_json, read_toml
from planner.econ.costs import RENTAL_TIERS, CostDefault, load_cost_defaults
from planner.econ.workload import HOURS_PER_PROFILE, WorkloadPreset, load_presets
from planner.errors import InvalidInputError, brief, truncate
from planner.perf.speculative import MAX_DRAFT_TOKENS
from planner.perf.speculative import METHODS as SPECULATIVE_METHODS

if TYPE_CHECKING:  # pydantic is imported on first use (`_model`), not at import: see "Laziness" below
    from pydantic import BaseModel, TypeAdapter
    from pydantic.fields import FieldInfo
    from pydantic_core import ErrorDetails, core_schema

    Text = Choice = str
    Hourly = tuple[float, ...]
    WHOLE: Any = None


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
_LARGEST_WHOLE = 2**63  # a whole-number field's value beyond this is out of every bound (and int64)
_SEARCHED = "searched by the planner when empty"
_PRESET_SOURCE = "preset (data/workload_presets.csv)"
_CATALOG_SOURCE = "catalog (data/*.csv)"
_ILLUSTRATIVE = "illustrative starting value, not a measured default: set your own"
_COST_SOURCE = "data/cost_defaults.csv"  # resolved to the row's source URL and date (`FieldSpec.source`)


# --- the value types: pydantic's strict checks (no text for a number, no bool for an int, floats finite) -----------

def _error(kind: str, message: str) -> Exception:
    from pydantic_core import PydanticCustomError
    return PydanticCustomError(kind, message)


def _whole(value: Any) -> Any:
    """Before pydantic's strict int check: a float that is a whole number is taken as that int (JSON writers
    emit 4096.0); 1.5, NaN, inf and bools are refused. Other values go on to pydantic's check as they are."""
    if isinstance(value, bool):
        raise _error("scenario_number", "must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error("scenario_number", "must be a finite number")
        if abs(value) >= _LARGEST_WHOLE:
            raise _error("scenario_range", "out of range")
        if not value.is_integer():
            raise _error("scenario_whole", "must be a whole number")
        return int(value)
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _hourly(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if not isinstance(value, tuple):
        raise _error("scenario_profile", "must be a list of numbers")
    return value


def _some_traffic(value: tuple[float, ...]) -> tuple[float, ...]:
    if sum(value) <= 0:
        raise _error("scenario_no_traffic", "must have some traffic (all values are 0)")
    return value


@dataclass(frozen=True)
class OneOf:
    """Annotated marker: the value must be one of `options`, a tuple or a function returning them (called at
    validation and schema time, so the preset names are read from data/ on first use, not at import)."""

    options: tuple[Any, ...] | Callable[[], Iterable[Any]]

    def names(self) -> tuple[Any, ...]:
        return tuple(self.options() if callable(self.options) else self.options)

    def _check(self, value: Any) -> Any:
        if value not in self.names():
            raise _error("scenario_choice", "must be one of the choices")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        from pydantic_core import core_schema
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> dict[str, Any]:
        return {**handler(schema), "enum": list(self.names())}


@functools.cache
def _value_types() -> dict[str, Any]:
    """The pydantic types the field annotations name (Text, Choice, Hourly, WHOLE), built on first use.

    WHOLE goes after a field's bounds (`_about`): pydantic then checks the bounds natively (and publishes them
    as minimum / maximum in the JSON Schema); a validator before them would hide them from the schema."""
    from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
    return {
        "WHOLE": BeforeValidator(_whole),
        "Text": Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS)],
        "Choice": Annotated[str, BeforeValidator(_lower)],
        "Hourly": Annotated[tuple[Annotated[float, Field(ge=0)], ...],
                            Field(min_length=HOURS_PER_PROFILE, max_length=HOURS_PER_PROFILE),
                            BeforeValidator(_hourly), AfterValidator(_some_traffic)],
    }


def _about(group: str, unit: str, help_: str, source: str, **bounds: float) -> Any:
    """A field's description, group, unit and source of its default (published in the JSON Schema as
    description, x-group, x-unit and x-default-source) with its bounds (ge=, gt=, le=)."""
    from pydantic import Field
    return Field(description=help_, json_schema_extra={"x-group": group, "x-unit": unit, "x-default-source": source},
                 **bounds)


def _cost_value(name: str) -> float:
    return cost_defaults()[name].value


def _cost(name: str) -> Any:
    """The default of a cost field: data/cost_defaults.csv's row `name`, read when a Scenario is first built."""
    return dataclasses.field(default_factory=functools.partial(_cost_value, name))


# strict: no text for a number, no number for a bool, no bool for a number; allow_inf_nan=False: floats finite
_VALUES: dict[str, Any] = {"strict": True, "allow_inf_nan": False}


@dataclass(frozen=True)
class Scenario:
    """Every input of a plan. None: take the value from the preset, the catalog or the planner's search.

    Each annotation is the field's pydantic type: `Annotated[type, _about(group, unit, description, source,
    ge= / gt= / le=), ...]`. `__post_init__` validates every field with the pydantic model built from them
    (`_model`), so `Scenario(...)` and `dataclasses.replace` raise one InvalidInputError line."""

    # --- model and deployment layout
    model: Annotated[Text, _about("model", "", "catalog model id or alias, or a path to a config.json",
                                  _ILLUSTRATIVE)] = "meta-llama/Llama-3.3-70B-Instruct"
    gpu: Annotated[Text, _about("model", "", "GPU id or alias, or auto (the planner searches the catalog's GPUs)",
                                _ILLUSTRATIVE)] = "H100-SXM"
    num_gpus_per_replica: Annotated[int | None, _about(
        "model", "gpus", "GPUs holding one model copy (empty: the planner searches the counts that fit and meet the "
        "latency targets)", _SEARCHED, ge=1, le=4096), WHOLE] = None
    tp: Annotated[int | None, _about("model", "gpus", "tensor-parallel degree inside a replica (empty: the planner "
                                       "searches the layout)", _SEARCHED, ge=1, le=4096), WHOLE] = None
    pp: Annotated[int | None, _about("model", "stages", "pipeline-parallel stages inside a replica (empty: the "
                                       "planner searches the layout)", _SEARCHED, ge=1, le=4096), WHOLE] = None
    precision: Annotated[Text | None, _about("model", "", "weight precision (empty: the planner searches the "
                                             "precisions the quality policy allows)", _SEARCHED)] = None
    kv_dtype: Annotated[Text | None, _about("model", "", "KV cache dtype (empty: the planner searches the KV dtypes "
                                            "the quality policy allows)", _SEARCHED)] = None
    engine: Annotated[Text | None, _about("model", "", "serving engine (empty: the planner searches the engines)",
                                          _SEARCHED)] = None
    profile: Annotated[Text | None, _about("model", "", "named efficiency profile", _CATALOG_SOURCE)] = None
    expert_parallel: Annotated[bool | None, _about("model", "", "spread MoE experts over the replica's GPUs (empty: "
                                                   "the planner searches)", "engine default (off)")] = False
    max_num_seqs: Annotated[int | None, _about("model", "sequences", "the engine's concurrency limit per replica "
                                               "(empty: the planner searches)", _SEARCHED, ge=1, le=65536),
                            WHOLE] = None
    speculative: Annotated[Choice, OneOf(SPECULATIVE_METHODS), _about(
        "model", "", "speculative decoding: off, mtp (the model's MTP layers) or eagle3 (a published EAGLE-3 head); "
        "kept only where it lowers TPOT (docs/speculative.md)", "off unless set")] = "off"
    speculative_draft_tokens: Annotated[int | None, _about(
        "model", "tokens", "draft tokens per verify step (empty: the shortest draft length data/speculative.csv "
        "measured)", "data/speculative.csv", ge=1, le=MAX_DRAFT_TOKENS), WHOLE] = None
    speculative_acceptance_frac: Annotated[float | None, _about(
        "model", "fraction", "per-position acceptance of a draft token (empty: data/speculative.csv for the model)",
        "data/speculative.csv", gt=0, le=1)] = None
    quality_policy: Annotated[Choice, OneOf(QUALITY_POLICIES), _about(
        "model", "", "which precisions and KV dtypes the planner may pick: lossless (native only), low-risk (8-bit "
        "and well-measured 4-bit), any", "low-risk unless set")] = "low-risk"
    provider_policy: Annotated[Choice, OneOf(PROVIDER_POLICIES), _about(
        "deployment", "", "which GPU clouds the planner may rent from: no-marketplace, hyperscaler (only), any",
        "no-marketplace unless set")] = "no-marketplace"

    # --- workload
    preset: Annotated[Choice, OneOf(presets), _about("workload", "", "workload shape supplying the empty workload "
                                                     "and latency fields", _PRESET_SOURCE)] = "chat"
    requests_per_day: Annotated[float, _about("workload", "requests_per_day", "average daily requests (ignored when "
                                             "tokens_per_month is set)", _ILLUSTRATIVE, gt=0, le=1e12)] = 100_000.0
    tokens_per_month: Annotated[float | None, _about("workload", "tokens_per_month", "input + output tokens a month, "
                                                    "instead of requests_per_day", "user input", gt=0, le=1e16)] = None
    input_tokens_mean: Annotated[float | None, _about("workload", "tokens", "mean prompt tokens per request",
                                                     _PRESET_SOURCE, ge=1, le=10_000_000)] = None
    output_tokens_mean: Annotated[float | None, _about("workload", "tokens", "mean generated tokens per request",
                                                      _PRESET_SOURCE, ge=1, le=10_000_000)] = None
    request_sizes_csv: Annotated[Text | None, _about("workload", "", "CSV of observed request sizes (columns "
                                                     "input_tokens, output_tokens); its means replace the preset's",
                                                     "user input")] = None
    peak_to_average_ratio: Annotated[float | None, _about("workload", "ratio", "busiest hour / daily average",
                                                         _PRESET_SOURCE, ge=1, le=1000)] = None
    hourly_profile: Annotated[Hourly | None, _about("workload", "relative_load", f"{HOURS_PER_PROFILE} relative "
                                                    "hourly loads; sets the peak and lets rented fleets follow the "
                                                    "day", "user input")] = None
    monthly_growth_frac: Annotated[float, _about("workload", "fraction_per_month", "compound traffic growth",
                                                "no growth unless set", ge=-0.9, le=10)] = 0.0
    prompt_cache_hit_frac: Annotated[float | None, _about("workload", "fraction", "share of input tokens read from the "
                                                         "prompt cache (API prices them at the cached rate)",
                                                         _PRESET_SOURCE, ge=0, le=1)] = None
    prompt_cache_write_frac: Annotated[float, _about("workload", "fraction", "share of input tokens written to the "
                                                    "prompt cache (priced at the cache-write rate)",
                                                    "no cache writes unless set", ge=0, le=1)] = 0.0
    offline_frac: Annotated[float | None, _about("workload", "fraction", "share of requests that can wait for "
                                                "offline batches", _PRESET_SOURCE, ge=0, le=1)] = None

    # --- latency targets
    ttft_target_s: Annotated[float | None, _about("slo", "s", "time-to-first-token target", _PRESET_SOURCE,
                                                 gt=0, le=3600)] = None
    tpot_target_s: Annotated[float | None, _about("slo", "s", "time-per-output-token target", _PRESET_SOURCE,
                                                 gt=0, le=60)] = None
    latency_percentile: Annotated[float, _about(
        "slo", "quantile", "the percentile the latency targets hold at (0.5, 0.9, 0.95 or 0.99)", "p95 unless set",
        ge=0.5, le=0.99), OneOf(LATENCY_PERCENTILES)] = 0.95

    # --- deployment
    mode: Annotated[Choice, OneOf(MODES), _about("deployment", "", "headline deployment: rented or owned",
                                                 "rented unless set")] = "rented"
    rental_tier: Annotated[Choice, OneOf(RENTAL_TIERS), _about("deployment", "", "headline rental tier",
                                                               "on_demand unless set")] = "on_demand"
    provider: Annotated[Text | None, _about("deployment", "", "GPU cloud for every rental tier (empty: each tier "
                                            "takes its own cheapest offer across providers)",
                                            "data/gpu_prices.csv")] = None
    autoscale: Annotated[bool, _about("deployment", "", "rented on-demand and spot fleets follow the hourly_profile",
                                      "off unless set")] = False
    redundancy_replicas: Annotated[int, _about("deployment", "replicas", "N+k spare replicas", "none unless set",
                                                 ge=0, le=1000), WHOLE] = 0
    headroom_frac: Annotated[float, _about("deployment", "fraction", "extra capacity above the peak hour for bursts",
                                          "none unless set", ge=0, le=10)] = 0.0
    gpu_price_usd_per_gpu_hour: Annotated[float | None, _about(
        "deployment", "usd_per_gpu_hour", "your price for the headline rental tier", "data/gpu_prices.csv",
        gt=0, le=1000)] = None
    spot_interruption_overhead_frac: Annotated[float, _about(
        "deployment", "fraction", "extra spot GPU-hours for interruptions", _COST_SOURCE, ge=0, le=1,
    )] = _cost("spot_interruption_overhead_frac")
    reserved_1y_discount_frac: Annotated[float, _about(
        "deployment", "fraction", "1-year discount where none is listed", _COST_SOURCE, ge=0, le=0.99,
    )] = _cost("reserved_1y_discount_frac")
    reserved_3y_discount_frac: Annotated[float, _about(
        "deployment", "fraction", "3-year discount where none is listed", _COST_SOURCE, ge=0, le=0.99,
    )] = _cost("reserved_3y_discount_frac")

    # --- owned hardware (software and staff apply to rented fleets too)
    gpu_purchase_usd: Annotated[float | None, _about("owned", "usd_per_gpu", "GPU purchase price", "data/gpus.csv",
                                                    gt=0, le=1e7)] = None
    gpu_power_w: Annotated[float | None, _about("owned", "w", "GPU board power (TDP)", "data/gpus.csv",
                                               gt=0, le=1e5)] = None
    server_network_capex_frac: Annotated[float, _about(
        "owned", "fraction", "server and network capex per GPU / GPU price", _COST_SOURCE, ge=0, le=10,
    )] = _cost("server_network_capex_frac")
    amortisation_years: Annotated[float, _about(
        "owned", "years", "economic life of owned hardware (at least a month)", _COST_SOURCE, ge=1 / 12, le=30,
    )] = _cost("amortisation_years")
    cost_of_capital_frac_per_year: Annotated[float, _about(
        "owned", "fraction_per_year", "interest on the capital", _COST_SOURCE, ge=0, le=1,
    )] = _cost("cost_of_capital_frac_per_year")
    residual_value_frac: Annotated[float, _about(
        "owned", "fraction", "resale value at the end of life / capex", _COST_SOURCE, ge=0, le=1,
    )] = _cost("residual_value_frac")
    server_to_gpu_power_ratio: Annotated[float, _about(
        "owned", "ratio", "server maximum power / GPU TDP", _COST_SOURCE, ge=1, le=10,
    )] = _cost("server_to_gpu_power_ratio")
    power_load_frac: Annotated[float, _about(
        "owned", "fraction", "average power / maximum", _COST_SOURCE, ge=0, le=1,
    )] = _cost("power_load_frac")
    pue: Annotated[float, _about("owned", "ratio", "facility power / IT power", _COST_SOURCE, ge=1, le=5,
                                )] = _cost("pue")
    electricity_usd_per_kwh: Annotated[float, _about(
        "owned", "usd_per_kwh", "electricity price", _COST_SOURCE, ge=0, le=10,
    )] = _cost("electricity_usd_per_kwh")
    colocation_usd_per_kw_month: Annotated[float, _about(
        "owned", "usd_per_kw_month", "colocation rent per kW of IT load", _COST_SOURCE, ge=0, le=10_000,
    )] = _cost("colocation_usd_per_kw_month")
    software_usd_per_gpu_year: Annotated[float, _about(
        "owned", "usd_per_gpu_year", "software licences (rented and owned)", _COST_SOURCE, ge=0, le=1e6,
    )] = _cost("software_usd_per_gpu_year")
    staff_fte: Annotated[float, _about(
        "owned", "fte", "engineers' time operating the stack (rented and owned)", _COST_SOURCE, ge=0, le=1000,
    )] = _cost("staff_fte")
    staff_usd_per_fte_year: Annotated[float, _about(
        "owned", "usd_per_fte_year", "loaded cost of one engineer", _COST_SOURCE, ge=0, le=1e7,
    )] = _cost("staff_usd_per_fte_year")

    # --- the API compared with
    api_id: Annotated[Text | None, _about("api", "", "API to compare with (empty: the cheapest API serving the same "
                                          "model)", "data/api_prices.csv")] = None
    api_price_decline_frac_per_year: Annotated[float, _about(
        "api", "fraction_per_year", "yearly API price decline; for fixed capability prices fell about 10x a year in "
        "2021-2024 (0.9)", "list prices held unless set; trend: https://a16z.com/llmflation-llm-inference-cost/",
        ge=0, le=0.99)] = 0.0
    horizon_months: Annotated[int, _about("api", "months", "months in the monthly table",
                                            "the longest rental commitment (3 years)", ge=1, le=120), WHOLE] = 36

    # --- fine-tuning in the TCO
    finetune_runs_per_year: Annotated[float, _about("finetune", "runs_per_year", "fine-tuning runs a year added to "
                                                   "the TCO (0: none)", "no fine-tuning unless set",
                                                   ge=0, le=1e6)] = 0.0
    finetune_method: Annotated[Choice, OneOf(FINETUNE_METHODS), _about("finetune", "", "full, lora or qlora",
                                                                       "lora unless set")] = "lora"
    finetune_dataset_tokens: Annotated[float | None, _about(
        "finetune", "tokens", "training tokens per epoch (required when finetune_runs_per_year > 0)", "user input",
        gt=0, le=1e15)] = None
    finetune_epochs: Annotated[float, _about("finetune", "epochs", "passes over the dataset per run",
                                            "one epoch unless set", gt=0, le=1000)] = 1.0
    finetune_seq_len: Annotated[int, _about("finetune", "tokens", "training sequence length", "4096 unless set",
                                              ge=1, le=10_000_000), WHOLE] = 4096
    finetune_gpu: Annotated[Text | None, _about("finetune", "", "GPU for fine-tuning (empty: the serving GPU)",
                                                "the serving GPU unless set")] = None
    finetune_num_gpus: Annotated[int | None, _about("finetune", "gpus", "GPUs per fine-tuning run (empty: the "
                                                      "fewest that fit)", "the fewest that fit unless set",
                                                      ge=1, le=4096), WHOLE] = None
    finetune_lora_rank: Annotated[int, _about("finetune", "rank", "LoRA / QLoRA adapter rank", "16 unless set",
                                                ge=1, le=65536), WHOLE] = 16

    def __post_init__(self) -> None:
        _validate(self)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Scenario))


# --- Laziness: pydantic is imported and the validator built on the first construction, not at import -------------
# The annotations above are strings (PEP 563) that nothing evaluates at import. `_model` evaluates them with the
# pydantic types of `_value_types` and builds a pydantic model of the same fields, which also gives
# SCENARIO_FIELDS, `coerce_field` and the JSON Schema. `import planner` pays neither pydantic's import nor the
# schema build (about 65 ms of CPU time at import with a pydantic dataclass instead; docs/scenario.md).

@functools.cache
def _model() -> type[BaseModel]:
    """The pydantic model of Scenario's fields, from its annotations and defaults (built once, on first use)."""
    from pydantic import ConfigDict, Field, create_model
    hints = typing.get_type_hints(Scenario, localns=_value_types(), include_extras=True)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(Scenario):
        default = Field(default_factory=f.default_factory) if f.default is dataclasses.MISSING else f.default
        fields[f.name] = (hints[f.name], default)
    config = ConfigDict(**_VALUES, extra="forbid", title="Scenario")  # type: ignore[typeddict-item]
    return create_model("Scenario", __config__=config, __doc__=Scenario.__doc__, **fields)


def _validate(scenario: Scenario) -> None:
    """Every field validated and normalised in place (4096.0 -> 4096, " Owned " -> "owned", a list -> a tuple);
    the first bad field raises one InvalidInputError line."""
    from pydantic_core import ValidationError
    values = scenario.__dict__
    try:
        valid = _model().__pydantic_validator__.validate_python({name: values[name] for name in _FIELD_NAMES})
    except ValidationError as err:
        raise InvalidInputError(_one_line(err.errors(include_url=False))) from None
    values.update(valid.__dict__)  # the instance's own dict: frozen forbids setattr, not this
    hit, write = scenario.prompt_cache_hit_frac, scenario.prompt_cache_write_frac
    if hit is not None and hit + write > 1:
        raise InvalidInputError(f"scenario fields prompt_cache_hit_frac + prompt_cache_write_frac must be <= 1, "
                                f"got {hit:g} + {write:g}")


@dataclass(frozen=True)
class FieldSpec:
    """One scenario field as the app, the URL parser and the CSV report read it; derived from `Scenario`."""

    name: str
    kind: str  # str | int | float | bool | choice | profile
    group: str  # model | workload | slo | deployment | owned | api | finetune
    unit: str
    default: Any
    help: str
    source: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: value must be > low
    nullable: bool = False
    choices: tuple[Any, ...] = ()


def _strip_annotated(tp: Any) -> Any:
    return tp.__origin__ if typing.get_origin(tp) is Annotated else tp


def _spec(name: str, info: FieldInfo) -> FieldSpec:
    """A field's FieldSpec from its pydantic declaration (type, metadata, description, json_schema_extra)."""
    annotation = info.annotation
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    nullable = type(None) in members
    base = _strip_annotated(next(m for m in members if m is not type(None)) if nullable else annotation)
    one_of = next((m for m in info.metadata if isinstance(m, OneOf)), None)
    kind = ("profile" if typing.get_origin(base) is tuple else "choice" if base is str and one_of
            else {str: "str", int: "int", float: "float", bool: "bool"}[base])
    low = high = None
    low_open = False
    for m in info.metadata:
        if getattr(m, "ge", None) is not None:
            low = m.ge
        if getattr(m, "gt", None) is not None:
            low, low_open = m.gt, True
        if getattr(m, "le", None) is not None:
            high = m.le
    extra = info.json_schema_extra
    assert isinstance(extra, dict), name  # every field is declared with _about()
    source = str(extra["x-default-source"])
    if source == _COST_SOURCE:
        row = cost_defaults()[name]
        source = f"{row.source_url} ({row.source_accessed})"
    default = info.get_default(call_default_factory=True)
    return FieldSpec(name, kind, str(extra["x-group"]), str(extra["x-unit"]), default, info.description or "",
                     source, low, high, low_open, nullable, one_of.names() if one_of else ())


@functools.cache
def _fields_by_name() -> dict[str, FieldSpec]:
    return {name: _spec(name, info) for name, info in _model().model_fields.items()}


SCENARIO_FIELDS: Mapping[str, FieldSpec] = _LazyMapping(_fields_by_name)
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "scenario_range"}


def _interval(low: float | None, high: float | None, low_open: bool) -> str:
    low_text = "-inf" if low is None else f"{low:g}"
    return f"{'(' if low_open or low is None else '['}{low_text}, {'inf)' if high is None else f'{high:g}]'}"


def _choice_text(choice: Any) -> str:
    return f"{choice:g}" if isinstance(choice, float) else str(choice)


def _message(error: ErrorDetails, spec: FieldSpec, loc: tuple[Any, ...]) -> str:
    """The one-line message for pydantic's first error on a field: the field, what it allows, the value given."""
    where = f"scenario field {spec.name!r}" + "".join(f"[{i}]" for i in loc[1:])
    value, etype = error["input"], error["type"]
    unit = f" ({spec.unit})" if spec.unit else ""
    if value is None and len(loc) == 1 and not spec.nullable:
        return f"{where} is required"
    if etype == "scenario_no_traffic":
        return f"{where} {error['msg']}"
    if etype == "scenario_choice" or spec.kind == "choice":
        return f"{where} must be one of {', '.join(_choice_text(c) for c in spec.choices)}, got {brief(value)}"
    if spec.kind == "profile" and len(loc) == 1:
        return f"{where} must be a list of {HOURS_PER_PROFILE} numbers, got {brief(value)}"
    if spec.kind in ("int", "float", "profile"):
        interval = _interval(0, None, False) if spec.kind == "profile" else _interval(spec.low, spec.high,
                                                                                       spec.low_open)
        if etype == "scenario_whole":
            return f"{where} must be a whole number in {interval}{unit}, got {brief(value)}"
        if etype in _RANGE_ERRORS:
            return f"{where} must be in {interval}{unit}, got {brief(value)}"
        return f"{where} must be a finite number in {interval}{unit}, got {brief(value)}"
    if spec.kind == "bool":
        return f"{where} must be true or false, got {brief(value)}"
    if etype == "string_too_long":
        return f"{where} must be at most {MAX_TEXT_CHARS} characters, got {len(value):,}: {brief(value)}"
    return f"{where} must be a non-empty string, got {brief(value)}"


def _one_line(errors: list[ErrorDetails], name: str | None = None) -> str:
    """pydantic's first error as one line; `name`: the field a single-field validator checked."""
    error = errors[0]
    loc = ((name,) if name else ()) + tuple(error["loc"])
    if not loc:  # a rule across fields (the model validator) says it all
        return truncate(error["msg"], 400)
    spec = SCENARIO_FIELDS.get(loc[0]) if isinstance(loc[0], str) else None
    if spec is None:
        return f"unknown scenario field {brief(loc[0])}{_closest_field(truncate(str(loc[0])))}"
    return _message(error, spec, loc)


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
    return f"; closest: {', '.join(close)}" if close else "; see `SCENARIO_FIELDS` or docs/scenario.md"


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """A validated Scenario from a mapping of field names; one clear error per bad field."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"a scenario must be a mapping of field names to values, got {type(data).__name__}")
    for key in data:
        if key not in SCENARIO_FIELDS:
            raise InvalidInputError(f"unknown scenario field {brief(key)}{_closest_field(truncate(str(key)))}")
    return _with_given(Scenario(**data), data)


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Every field, in declaration order (the profile as a list). The values are immutable (numbers, text, a
    tuple), so no deep copy is needed."""
    out = {name: getattr(scenario, name) for name in _FIELD_NAMES}
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


@functools.cache
def _field_validator(name: str) -> TypeAdapter:
    """pydantic's validator of one field, from the same declaration (built on first use)."""
    from pydantic import ConfigDict, TypeAdapter
    return TypeAdapter(_model().model_fields[name].rebuild_annotation(), config=ConfigDict(**_VALUES))


def coerce_field(name: str, value: Any) -> Any:
    """Validate one field's value (text is parsed first); InvalidInputError names the field."""
    spec = SCENARIO_FIELDS.get(name)
    if spec is None:
        raise InvalidInputError(f"unknown scenario field {brief(name)}{_closest_field(truncate(name))}")
    parsed = _parse_text(spec, value) if isinstance(value, str) else value
    from pydantic_core import ValidationError
    try:
        return _field_validator(name).validate_python(parsed)
    except ValidationError as err:
        raise InvalidInputError(_one_line(err.errors(include_url=False), name)) from None


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


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file: pydantic's schema of `Scenario` (docs/scenario.schema.json),
    with the defaults read from data/ filled in and each field's source of the default resolved."""
    schema = _model().model_json_schema()
    for name, prop in schema["properties"].items():
        spec = SCENARIO_FIELDS[name]
        prop.pop("title", None)
        prop["default"] = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        prop["x-default-source"] = spec.source
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "description": "Every input of a plan (planner/scenario.py). Fields left out take their defaults; "
                       "null: the preset, the catalog or the planner's search supplies the value. "
                       "Also: prompt_cache_hit_frac + prompt_cache_write_frac <= 1.",
    }


def scenario_fields_markdown() -> str:
    """The field table of docs/scenario.md."""
    lines = ["| field | group | type | unit | allowed | default | description | source of the default |",
             "|---|---|---|---|---|---|---|---|"]
    for spec in SCENARIO_FIELDS.values():
        if spec.choices:
            allowed = " / ".join(_choice_text(c) for c in spec.choices)
        elif spec.kind in ("int", "float") and (spec.low is not None or spec.high is not None):
            allowed = _interval(spec.low, spec.high, spec.low_open)
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
