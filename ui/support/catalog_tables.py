"""Catalog tables for the app: price tables from edits and uploads, models with license terms and minimum
hardware, and the hardware-fit grid. Wiring of `_csvschema.read_records`, `estimate()` and `hardware_fit`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from planner.data._csvschema import read_records
from planner.data.catalog import ApiPrice, Catalog, GpuPrice, Model
from planner.data.columns import Col
from planner.errors import DoesNotFitError, InvalidInputError, PlannerError
from planner.perf.estimate import Estimate, EstimateRequest, estimate
from planner.perf.hardware_fit import hardware_fit

# GPU counts tried for "minimum hardware": whole 8-GPU nodes beyond one node, as serving stacks deploy.
GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64)


# --- price tables ---------------------------------------------------------------------------------------------

def price_rows(prices: Iterable[Any], schema: Mapping[str, Col]) -> list[dict[str, Any]]:
    """Price records as dicts in the CSV's column order (dates as ISO text), ready for a table or a CSV."""
    out = []
    for record in prices:
        values = dataclasses.asdict(record)
        out.append({col: values[col].isoformat() if isinstance(values[col], dt.date) else values[col]
                    for col in schema})
    return out


def gpu_prices_from_csv(data: bytes, catalog: Catalog, *, name: str = "uploaded GPU prices") -> tuple[GpuPrice, ...]:
    """Parse and validate a GPU price table (the columns of data/gpu_prices.csv).

    Raises CatalogError naming the row (header = row 1), column and value of the first problem,
    including a gpu_id the catalog does not know and a pricing tier outside records.PRICING_TIERS.
    """
    table = read_records(data, GpuPrice, name=name)
    if not table:
        raise InvalidInputError(f"{name}: has no price rows")
    table.require("gpu_id", lambda v: v in catalog.gpus, "gpu_id (see the GPU catalog)")
    return table.records


def api_prices_from_csv(data: bytes, catalog: Catalog | None = None, *,
                        name: str = "uploaded API prices") -> tuple[ApiPrice, ...]:
    """Parse and validate an API price table (the columns of data/api_prices.csv); ids must be unique."""
    table = read_records(data, ApiPrice, name=name, id_column="api_id")
    if not table:
        raise InvalidInputError(f"{name}: has no price rows")
    return table.records


# --- models ---------------------------------------------------------------------------------------------------

def license_restrictions(catalog: Catalog, license_id: str) -> str:
    """The license's conditions in a few words, from data/licenses.csv ("none" for a permissive license)."""
    lic = catalog.license(license_id)
    parts = []
    if not lic.commercial_use:
        parts.append("no commercial use")
    if lic.research_only:
        parts.append("research only")
    if lic.mau_limit is not None:
        parts.append(f"MAU limit {lic.mau_limit:,}")
    if lic.acceptable_use_policy:
        parts.append("acceptable-use policy")
    if lic.naming_requirement:
        parts.append("naming or display requirement")
    if lic.attribution_required:
        parts.append("attribution")
    return "; ".join(parts) if parts else "none"


def model_row(catalog: Catalog, model: Model) -> dict[str, Any]:
    """One model's facts for the comparison table (parameters from its config, license from the catalog)."""
    lic = catalog.license(model.license_id)
    return {
        "model_id": model.model_id, "name": model.name, "family": model.family, "developer": model.developer,
        "release_date": model.release_date.isoformat(),
        "total_params_b": model.arch.total_params_b, "active_params_b": model.arch.active_params_b,
        "moe": model.arch.is_moe, "attention": model.arch.attention,
        "context_length_tokens": model.context_length_tokens,
        "languages": ", ".join(model.languages or ()), "languages_count": model.languages_count,
        "license": lic.name, "license_id": lic.license_id, "commercial_use": lic.commercial_use,
        "research_only": lic.research_only, "osi_approved": lic.osi_approved, "mau_limit": lic.mau_limit,
        "acceptable_use_policy": lic.acceptable_use_policy,
        "restrictions": license_restrictions(catalog, model.license_id), "license_summary": lic.summary,
        "naming_requirement": lic.naming_requirement,
        "openness": model.openness, "native_precision": model.native_precision,
        "strengths": ", ".join(model.strengths or ()), "source_url": model.source_url,
    }


def model_languages(catalog: Catalog) -> list[str]:
    """Every language code some catalog model lists, sorted."""
    return sorted({lang for m in catalog.models.values() for lang in (m.languages or ())})


@dataclasses.dataclass(frozen=True)
class MinimumHardware:
    """The fewest GPUs of one kind that hold a model at a precision with one sequence of KV cache."""

    precision: str
    weights_gb: float | None  # None when the precision cannot run on this GPU/engine at all
    min_gpus: int | None  # None: nothing up to max(GPU_COUNTS) fits, or the precision is unsupported
    note: str


def minimum_hardware(catalog: Catalog, model_id: str, precision: str, gpu_id: str, *, input_tokens: int,
                     output_tokens: int, engine: str | None = None) -> MinimumHardware:
    """Smallest GPU count in GPU_COUNTS for which `estimate()` fits one sequence of this length."""
    weights_gb = None
    for n in GPU_COUNTS:
        req = EstimateRequest(model=model_id, gpu=gpu_id, num_gpus=n, precision=precision, engine=engine,
                              input_tokens=input_tokens, output_tokens=output_tokens, concurrency=1)
        try:
            est = estimate(catalog, req)
        except DoesNotFitError:
            continue
        except PlannerError as err:
            return MinimumHardware(precision, weights_gb, None, str(err))
        return MinimumHardware(precision, est.weights_gb, n, "")
    return MinimumHardware(precision, weights_gb, None, f"does not fit on {GPU_COUNTS[-1]} x {gpu_id}")


def model_table(catalog: Catalog, *, gpu_id: str, precisions: Iterable[str], input_tokens: int,
                output_tokens: int) -> list[dict[str, Any]]:
    """`model_row` for every catalog model plus, per precision, the weights (GB) and the fewest `gpu_id`s
    that serve one sequence of `input_tokens + output_tokens` (columns `weights_gb_<p>`, `min_gpus_<p>`)."""
    rows = []
    for model in catalog.models.values():
        row = model_row(catalog, model)
        for precision in precisions:
            hw = minimum_hardware(catalog, model.model_id, precision, gpu_id, input_tokens=input_tokens,
                                  output_tokens=output_tokens)
            row[f"weights_gb_{precision}"] = hw.weights_gb
            row[f"min_gpus_{precision}"] = hw.min_gpus
        rows.append(row)
    return rows


@dataclasses.dataclass(frozen=True)
class ModelFilter:
    """What the "Compare models" page filters on; None or empty means no constraint."""

    commercial_use: bool = False  # license allows commercial use (and is not research-only)
    no_mau_limit: bool = False
    osi_approved: bool = False
    no_acceptable_use_policy: bool = False
    openness: tuple[str, ...] = ()  # e.g. ("open-source",)
    languages: tuple[str, ...] = ()  # the model must list every one
    moe: bool | None = None
    precision: str | None = None  # with max_weights_gb: weights at this precision
    max_weights_gb: float | None = None


def filter_models(rows: Iterable[dict[str, Any]], f: ModelFilter) -> list[dict[str, Any]]:
    """The rows of `model_table` that meet every constraint in `f`."""
    out = []
    for row in rows:
        if f.commercial_use and (not row["commercial_use"] or row["research_only"]):
            continue
        if f.no_mau_limit and row["mau_limit"] is not None:
            continue
        if f.osi_approved and not row["osi_approved"]:
            continue
        if f.no_acceptable_use_policy and row["acceptable_use_policy"]:
            continue
        if f.openness and row["openness"] not in f.openness:
            continue
        if f.languages and not set(f.languages) <= set(row["languages"].split(", ")):
            continue
        if f.moe is not None and row["moe"] != f.moe:
            continue
        if f.max_weights_gb is not None and f.precision is not None:
            weights = row.get(f"weights_gb_{f.precision}")
            if weights is None or weights > f.max_weights_gb:
                continue
        out.append(row)
    return out


# --- hardware fit ---------------------------------------------------------------------------------------------

def estimate_or_reason(catalog: Catalog, req: EstimateRequest) -> Estimate | str:
    """`estimate()`, or the engine's one-line reason when the configuration is infeasible or unsupported."""
    try:
        return estimate(catalog, req)
    except PlannerError as err:
        return str(err)


def hardware_grid(catalog: Catalog, model_id: str, *, gpu_ids: Iterable[str], precisions: Iterable[str],
                  gpu_counts: Iterable[int], input_tokens: int, output_tokens: int,
                  reserved_1y_discount_frac: float, reserved_3y_discount_frac: float,
                  pricing_tier: str = "on_demand") -> list[dict[str, Any]]:
    """The Hardware fit page's rows: `planner.perf.hardware_fit.hardware_fit` (speeds with their calibrated range,
    the tier's price with its provider, and the full-load USD per Mtok)."""
    return hardware_fit(catalog, model_id, gpu_ids=gpu_ids, precisions=precisions, gpu_counts=gpu_counts,
                        input_tokens=input_tokens, output_tokens=output_tokens,
                        reserved_1y_discount_frac=reserved_1y_discount_frac,
                        reserved_3y_discount_frac=reserved_3y_discount_frac, pricing_tier=pricing_tier)
