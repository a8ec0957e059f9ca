"""Exporters: the plan as CSV (for finance) and JSON, and the safe CSV writer every export uses.

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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from planner.econ.costs import ALL_TIERS
from planner.plan import Plan
from planner.scenario import SCENARIO_FIELDS

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


def _resolved(plan: Plan, name: str) -> Any:
    """The value a plan used for a scenario field (the preset's or catalog's where the field was empty)."""
    value = getattr(plan.scenario, name)
    if value is not None:
        return value
    resolved = {"input_tokens_mean": plan.workload.input_tokens_mean,
                "output_tokens_mean": plan.workload.output_tokens_mean,
                "peak_to_average_ratio": plan.workload.peak_to_average_ratio,
                "prompt_cache_hit_frac": plan.workload.prompt_cache_hit_frac,
                "offline_frac": plan.workload.offline_frac, "ttft_target_s": plan.ttft_target_s,
                "tpot_target_s": plan.tpot_target_s, "num_gpus_per_replica": plan.num_gpus_per_replica,
                "precision": plan.estimate.precision, "kv_dtype": plan.estimate.kv_dtype,
                "engine": plan.estimate.engine, "profile": plan.estimate.efficiency_profile,
                "api_id": plan.api.api_id if plan.api else None}
    return resolved.get(name)


def _assumption_rows(plan: Plan, version: str, generated_on: dt.date) -> list[list[Any]]:
    rows: list[list[Any]] = [["meta", "planner_version", version, "", ""],
                             ["meta", "generated_on", generated_on, "date", ""]]
    for spec in SCENARIO_FIELDS.values():
        value = _resolved(plan, spec.name)
        if isinstance(value, tuple):
            value = ";".join(f"{v:g}" for v in value)
        given = getattr(plan.scenario, spec.name)
        source = plan.sources.get(spec.name, spec.source)
        if given is None and spec.name not in plan.sources:
            source = f"default: {spec.source}"
        elif spec.name not in plan.sources and given != spec.default:
            source = "set in the scenario"
        rows.append(["assumption", spec.name, value, spec.unit, source])
    return rows


def _result_rows(plan: Plan) -> list[list[Any]]:
    e = plan.estimate
    rows: list[list[Any]] = [
        ["result", "model_id", e.model_id, "", ""], ["result", "gpu_id", e.gpu_id, "", ""],
        ["result", "gpus_per_replica", plan.num_gpus_per_replica, "gpus", f"tp {e.tp}, pp {e.pp}"],
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


def plan_to_rows(plan: Plan, *, version: str | None = None, generated_on: dt.date | None = None
                 ) -> list[list[Any]]:
    """The report as rows: assumptions and results (section,name,value,unit,source), a blank row, the monthly table."""
    if version is None:
        from planner import __version__ as version
    rows: list[list[Any]] = [["section", "name", "value", "unit", "source"]]
    rows += _assumption_rows(plan, version, generated_on or dt.date.today())
    rows += _result_rows(plan)
    tiers = [t for t in ALL_TIERS if plan.costs[t].available]
    rows.append([])
    headline = plan.headline_tier if plan.headline_tier in tiers else None
    header = ["month", "requests_per_day", "input_tokens", "output_tokens", "api_usd", *[f"{t}_usd" for t in tiers]]
    if headline and plan.api:
        header.append(f"cumulative_saving_usd_{headline}")
    rows.append(header)
    saving = 0.0
    for m in plan.monthly:
        row = [m.month, m.requests_per_day, m.input_tokens, m.output_tokens, m.api_usd,
               *[m.self_hosted_usd[t] for t in tiers]]
        if headline and plan.api:
            saving += m.api_usd - m.self_hosted_usd[headline]
            row.append(saving)
        rows.append(row)
    return rows


def plan_to_csv(plan: Plan, *, version: str | None = None, generated_on: dt.date | None = None) -> str:
    """The CSV report: every input with its unit and source, planner version and date, results, monthly table."""
    return write_csv(plan_to_rows(plan, version=version, generated_on=generated_on))


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
