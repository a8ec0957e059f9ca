"""Exporters: the plan as CSV (for finance) and JSON, and the safe CSV writer every export uses.

The CSV report is two tables, one per file: `plan_to_csv` (assumptions, results, warnings:
section,name,value,unit,source) and `plan_monthly_to_csv` (one row a month); `plan_to_zip` bundles
both. Each assumption's source column starts with its provenance: "set by you", "default: ..."
(the preset's or the cost table's sourced value, or the catalog's), or "chosen by the planner".
Numbers are rounded to 9 significant digits (float noise such as -11822495.999999998 removed).

Spreadsheet programs run a cell that starts with = + - @ (or a tab or carriage return) as a
formula, so every string cell, headers included, that starts with one of them is prefixed
with a single quote, the neutralisation OWASP recommends
(https://owasp.org/www-community/attacks/CSV_Injection). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from planner.data.catalog import Catalog
from planner.econ.costs import ALL_TIERS
from planner.plan import Plan
from planner.scenario import SCENARIO_FIELDS, fields_given

SIGNIFICANT_DIGITS = 9  # a report figure carries no more; float sums carry noise beyond it
SET_BY_YOU = "set by you"
DEFAULT = "default"
CHOSEN_BY_PLANNER = "chosen by the planner"
# fields left empty that the planner's search (or the catalog lookup of the chosen config) fills
_PLANNER_CHOSEN = ("gpu", "num_gpus_per_replica", "tp", "pp", "precision", "kv_dtype", "engine", "profile",
                   "expert_parallel", "max_num_seqs", "api_id", "provider")


def round_figure(value: Any) -> Any:
    """A float rounded to SIGNIFICANT_DIGITS significant digits (other values unchanged)."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def sanitize_csv_cell(value: Any) -> Any:
    """A cell safe for spreadsheets: strings starting with a formula character get a leading quote.

    Numbers are returned unchanged (NaN and inf become empty cells), booleans become
    true/false, None an empty cell, dates ISO text; anything else is turned into text first.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_csv(rows: Iterable[Sequence[Any]], out: IO[str] | str | Path | None = None) -> str:
    """Write rows (the first is usually the header) with every cell sanitised; returns the CSV text.

    `out` may be a path, an open text file, or None (only return the text).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([sanitize_csv_cell(cell) for cell in row])
    text = buffer.getvalue()
    if isinstance(out, (str, Path)):
        Path(out).write_text(text, encoding="utf-8", newline="")
    elif out is not None:
        out.write(text)
    return text


def _resolved(plan: Plan, name: str, catalog: Catalog | None) -> Any:
    """The value a plan used for a scenario field (the preset's or catalog's where the field was empty)."""
    value = getattr(plan.scenario, name)
    if value is not None and not (name == "gpu" and value == "auto"):
        return value
    e = plan.estimate
    gpu = catalog.gpus.get(e.gpu_id) if catalog is not None else None
    headline = plan.costs.get(plan.headline_tier)
    resolved = {"gpu": e.gpu_id, "tp": getattr(e, "tp", None), "pp": getattr(e, "pp", None),
                "max_num_seqs": plan.operating_concurrency, "expert_parallel": getattr(e, "expert_parallel", None),
                "gpu_purchase_usd": gpu.purchase_usd if gpu else None, "gpu_power_w": gpu.tdp_w if gpu else None,
                "gpu_price_usd_per_gpu_hour": headline.usd_per_gpu_hour if headline and headline.available else None,
                "provider": headline.provider if headline and headline.available else None,
                "tokens_per_month": plan.input_tokens_per_month + plan.output_tokens_per_month,
                "input_tokens_mean": plan.workload.input_tokens_mean,
                "output_tokens_mean": plan.workload.output_tokens_mean,
                "peak_to_average_ratio": plan.workload.peak_to_average_ratio,
                "prompt_cache_hit_frac": plan.workload.prompt_cache_hit_frac,
                "offline_frac": plan.workload.offline_frac, "ttft_target_s": plan.ttft_target_s,
                "tpot_target_s": plan.tpot_target_s, "num_gpus_per_replica": plan.num_gpus_per_replica,
                "precision": plan.estimate.precision, "kv_dtype": plan.estimate.kv_dtype,
                "engine": plan.estimate.engine, "profile": plan.estimate.efficiency_profile,
                "api_id": plan.api.api_id if plan.api else None,
                "speculative_draft_tokens": (e.speculative or {}).get("draft_tokens"),
                "speculative_acceptance_frac": (e.speculative or {}).get("acceptance_frac")}
    return resolved.get(name)


def _gpu_source(catalog: Catalog | None, gpu_id: str, name: str) -> str:
    gpu = catalog.gpus.get(gpu_id) if catalog is not None else None
    if gpu is None:
        return "data/gpus.csv"
    if name == "gpu_purchase_usd" and gpu.purchase_source_url:
        return f"data/gpus.csv: {gpu.purchase_source_url} ({gpu.purchase_source_accessed})"
    return f"data/gpus.csv: {gpu.source_url} ({gpu.source_accessed})"


def assumption_provenance(plan: Plan, name: str, catalog: Catalog | None = None) -> str:
    """The source column of one assumption: provenance first ("set by you", "default: ...",
    "chosen by the planner"), then where the value comes from."""
    spec = SCENARIO_FIELDS[name]
    given = getattr(plan.scenario, name)
    if name in fields_given(plan.scenario) and not (name == "gpu" and given == "auto"):
        return SET_BY_YOU
    if given is None or (name == "gpu" and given == "auto"):
        if name in plan.sources and plan.sources[name] != "scenario":
            return f"{DEFAULT}: preset {plan.scenario.preset} ({plan.sources[name]})"
        if name in ("gpu_purchase_usd", "gpu_power_w"):
            return f"{DEFAULT}: {_gpu_source(catalog, plan.estimate.gpu_id, name)}"
        if name in _PLANNER_CHOSEN:
            return CHOSEN_BY_PLANNER
        return f"{DEFAULT}: {spec.source}"
    return f"{DEFAULT}: {spec.source}"


def _assumption_rows(plan: Plan, version: str, generated_on: dt.date, catalog: Catalog | None
                     ) -> list[list[Any]]:
    rows: list[list[Any]] = [["meta", "planner_version", version, "", ""],
                             ["meta", "generated_on", generated_on, "date", ""]]
    for spec in SCENARIO_FIELDS.values():
        value = _resolved(plan, spec.name, catalog)
        if isinstance(value, tuple):
            value = ";".join(f"{v:g}" for v in value)
        rows.append(["assumption", spec.name, value, spec.unit, assumption_provenance(plan, spec.name, catalog)])
    return rows


def _result_rows(plan: Plan) -> list[list[Any]]:
    e = plan.estimate
    rows: list[list[Any]] = [
        ["result", "model_id", e.model_id, "", ""], ["result", "gpu_id", e.gpu_id, "", ""],
        ["result", "gpus_per_replica", plan.num_gpus_per_replica, "gpus",
         f"{e.layout}: tp {e.tp}, pp {e.pp}, dp {e.dp}; chosen by the planner"],
        ["result", "engine", e.engine, "", "chosen by the planner unless set"],
        ["result", "precision", e.precision, "", f"KV cache {e.kv_dtype}"],
        ["result", "operating_concurrency", plan.operating_concurrency, "sequences",
         f"bound by {plan.concurrency_bound_by}"],
        ["result", "ttft_s", e.ttft_s, "s", f"range {e.ttft_s_low:.3g}-{e.ttft_s_high:.3g}"],
        ["result", "tpot_s", e.tpot_s, "s", f"range {e.tpot_s_low:.3g}-{e.tpot_s_high:.3g}"],
        ["result", "capacity_requests_per_s_per_replica", plan.capacity_requests_per_s_per_replica, "requests_per_s",
         e.efficiency_profile],
        ["result", "input_tokens_per_month", plan.input_tokens_per_month, "tokens", ""],
        ["result", "output_tokens_per_month", plan.output_tokens_per_month, "tokens", ""],
        ["result", "headline_tier", plan.headline_tier, "", ""],
    ]
    if plan.latency:
        q = round(plan.latency_percentile * 100)
        rows += [["result", f"ttft_p{q}_s_at_design_load", plan.latency[f"ttft_p{q}_s"], "s", "queueing model"],
                 ["result", f"tpot_p{q}_s_at_design_load", plan.latency[f"tpot_p{q}_s"], "s", "queueing model"]]
    if plan.finetune_usd_per_month:
        rows.append(["result", "finetune_usd_per_month", plan.finetune_usd_per_month, "usd_per_month",
                     "fine-tuning runs, in every tier's monthly total (planner.econ.finetune)"])
    for tier in ALL_TIERS:
        c = plan.costs[tier]
        if not c.available:
            rows.append(["result", f"{tier}_available", False, "", c.note])
            continue
        f = c.fleet
        rows += [["result", f"{tier}_provider", c.provider, "", c.price_source_url or ""],
                 ["result", f"{tier}_price_basis", c.price_basis, "", c.price_source_accessed],
                 ["result", f"{tier}_replicas", f.total_replicas, "replicas",
                  f"{f.serving_replicas} serving + {f.redundancy_replicas} spare" + (" (peak hour)" if f.autoscaled
                                                                                     else "")],
                 ["result", f"{tier}_gpus", f.total_gpus, "gpus", f"range {c.total_gpus_low}-{c.total_gpus_high}"],
                 ["result", f"{tier}_utilisation_avg_frac", f.utilisation_avg_frac, "fraction", ""],
                 ["result", f"{tier}_usd_per_gpu_hour", c.usd_per_gpu_hour, "usd_per_gpu_hour", c.note],
                 ["result", f"{tier}_monthly_usd", c.monthly_usd, "usd_per_month",
                  f"range {c.monthly_usd_low:,.0f}-{c.monthly_usd_high:,.0f}"],
                 ["result", f"{tier}_input_usd_per_mtok", c.input_usd_per_mtok, "usd_per_mtok",
                  f"reservation-based; range {c.input_usd_per_mtok_low:.4g}-{c.input_usd_per_mtok_high:.4g}"],
                 ["result", f"{tier}_output_usd_per_mtok", c.output_usd_per_mtok, "usd_per_mtok",
                  f"reservation-based; range {c.output_usd_per_mtok_low:.4g}-{c.output_usd_per_mtok_high:.4g}"],
                 ["result", f"{tier}_blended_usd_per_mtok", c.blended_usd_per_mtok, "usd_per_mtok",
                  f"reservation-based; range {c.blended_usd_per_mtok_low:.4g}-{c.blended_usd_per_mtok_high:.4g}"]]
        rows += [["result", f"{tier}_{name}_share_frac", share, "fraction", ""]
                 for name, share in c.driver_shares_frac.items()]
        b = plan.breakeven.get(tier)
        if b is not None:
            rows += [["result", f"{tier}_breakeven_requests_per_day", b.requests_per_day, "requests_per_day", b.note],
                     ["result", f"{tier}_breakeven_requests_per_day_low", c.breakeven_requests_per_day_low,
                      "requests_per_day", "at the optimistic end of the throughput range (empty: none)"],
                     ["result", f"{tier}_breakeven_requests_per_day_high", c.breakeven_requests_per_day_high,
                      "requests_per_day", "at the pessimistic end of the throughput range (empty: none)"],
                     ["result", f"{tier}_breakeven_tokens_per_month", b.tokens_per_month, "tokens_per_month", ""],
                     ["result", f"{tier}_first_cheaper_requests_per_day", b.first_cheaper_requests_per_day,
                      "requests_per_day", "may hold only at the top of one replica step"]]
        g = plan.growth.get(tier)
        if g is not None:
            rows += [["result", f"{tier}_breakeven_month", g.breakeven_month, "month", ""],
                     ["result", f"{tier}_cumulative_saving_usd", g.cumulative_saving_usd, "usd",
                      f"over {plan.scenario.horizon_months} months"]]
    if plan.api is not None:
        a = plan.api
        rows += [["result", "api_monthly_usd", a.monthly_usd, "usd_per_month", a.note],
                 ["result", "api_input_usd_per_mtok", a.input_usd_per_mtok, "usd_per_mtok", "effective"],
                 ["result", "api_output_usd_per_mtok", a.output_usd_per_mtok, "usd_per_mtok", "effective"],
                 ["result", "api_blended_usd_per_mtok", a.blended_usd_per_mtok, "usd_per_mtok",
                  "effective: the bill over input + output tokens"]]
    if plan.hybrid is not None:
        h = plan.hybrid
        rows += [["result", "hybrid_total_usd_per_month", h.total_usd_per_month, "usd_per_month",
                  f"{h.base_serving_replicas} {h.tier} replicas + API for {h.api_share_of_requests_frac:.0%} of "
                  f"requests"]]
    rows += [["warning", f"warning_{i}", text, "", ""] for i, text in enumerate(plan.warnings, start=1)]
    return rows


def _rounded(rows: list[list[Any]]) -> list[list[Any]]:
    return [[round_figure(cell) for cell in row] for row in rows]


def plan_to_rows(plan: Plan, *, version: str | None = None, generated_on: dt.date | None = None,
                 catalog: Catalog | None = None) -> list[list[Any]]:
    """The report table: assumptions and results (section,name,value,unit,source), then the warnings.

    `catalog` resolves the GPU's purchase price and power where the scenario left them empty."""
    if version is None:
        from planner import __version__ as version
    rows: list[list[Any]] = [["section", "name", "value", "unit", "source"]]
    rows += _assumption_rows(plan, version, generated_on or dt.date.today(), catalog)
    rows += _result_rows(plan)
    return _rounded(rows)


def plan_monthly_rows(plan: Plan) -> list[list[Any]]:
    """The monthly table: month, traffic, the API bill and each available tier's cost (USD), and the
    cumulative saving of the headline tier against the API."""
    tiers = [t for t in ALL_TIERS if plan.costs[t].available]
    headline = plan.headline_tier if plan.headline_tier in tiers else None
    header = ["month", "requests_per_day", "input_tokens", "output_tokens", "api_usd", *[f"{t}_usd" for t in tiers]]
    if headline and plan.api:
        header.append(f"cumulative_saving_usd_{headline}")
    rows: list[list[Any]] = [header]
    saving = 0.0
    for m in plan.monthly:
        row = [m.month, m.requests_per_day, m.input_tokens, m.output_tokens, m.api_usd,
               *[m.self_hosted_usd[t] for t in tiers]]
        if headline and plan.api:
            saving += m.api_usd - m.self_hosted_usd[headline]
            row.append(saving)
        rows.append(row)
    return _rounded(rows)


def plan_to_csv(plan: Plan, *, version: str | None = None, generated_on: dt.date | None = None,
                catalog: Catalog | None = None) -> str:
    """The CSV report table: every input with its unit and provenance, planner version and date, results."""
    return write_csv(plan_to_rows(plan, version=version, generated_on=generated_on, catalog=catalog))


def plan_monthly_to_csv(plan: Plan) -> str:
    """The monthly table as its own CSV file."""
    return write_csv(plan_monthly_rows(plan))


def plan_to_zip(plan: Plan, *, version: str | None = None, generated_on: dt.date | None = None,
                catalog: Catalog | None = None) -> bytes:
    """Both CSV files (cost_report.csv, monthly.csv) in one zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cost_report.csv", plan_to_csv(plan, version=version, generated_on=generated_on,
                                                        catalog=catalog))
        archive.writestr("monthly.csv", plan_monthly_to_csv(plan))
    return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON types (NaN and inf as null)."""
    return _jsonable(plan)


def plan_to_json(plan: Plan, *, indent: int = 2) -> str:
    """The plan as a JSON document."""
    return json.dumps(plan_to_dict(plan), indent=indent, ensure_ascii=False, allow_nan=False)
