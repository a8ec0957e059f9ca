"""The Plan page's results: headline metrics with ranges, warnings, the break-even chart, the cost
breakdown, every tier side by side, capacity and latency, and the monthly table.

Rendering only: every number is a field of planner.plan.Plan (costs with their `_low`/`_high` ranges,
warnings) or of planner.econ.cost_curves.breakeven_chart.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from planner.econ.cost_curves import breakeven_chart
from planner.econ.costs import ALL_TIERS, TierCost
from planner.errors import PlannerError
from planner.handoff.deploy_targets import deployment_files, deployment_from_plan
from planner.optimizer import end_to_end_s
from planner.plan import Plan
from planner.scenario import Scenario
from ui import state, widgets

TIER_LABELS = {"on_demand": "on-demand", "spot": "spot", "reserved_1y": "reserved 1 y", "reserved_3y": "reserved 3 y",
               "owned": "owned"}
TIER_COLOURS = {"on_demand": "#1f77b4", "spot": "#2ca02c", "reserved_1y": "#9467bd", "reserved_3y": "#8c564b",
                "owned": "#ff7f0e"}
API_COLOUR = "#d62728"


_num = widgets.fmt_num  # "n/a" for a missing value


def _metric(column, label: str, value: str, caption: str, help_text: str) -> None:
    column.metric(label, value, help=help_text)
    column.caption(caption)


def _headline(p: Plan) -> None:
    head = p.headline
    tier = TIER_LABELS.get(p.headline_tier, p.headline_tier)
    cols = st.columns(5)
    if head.available and head.fleet is not None:
        f = head.fleet
        _metric(cols[0], "GPUs", f"{f.total_gpus:,}",
                f"{widgets.fmt_range(f.total_gpus, head.total_gpus_low, head.total_gpus_high)}; {f.total_replicas} x "
                f"{p.num_gpus_per_replica} {p.estimate.gpu_id}, {tier}",
                f"{f.total_replicas} replicas ({f.serving_replicas} serving + {f.redundancy_replicas} spare) of "
                f"{p.num_gpus_per_replica} x {p.estimate.gpu_id}" + (" at the peak hour (autoscaled)"
                                                                     if f.autoscaled else "")
                + ". Value (low-high): the range comes from the performance model's calibrated error.")
        _metric(cols[1], "Self-hosted USD/month", _num(head.monthly_usd),
                widgets.fmt_range(head.monthly_usd, head.monthly_usd_low, head.monthly_usd_high)
                + f" USD, {tier}" + (f" at {head.provider}" if head.provider else ""),
                "Value (low-high): the range comes from the performance model's calibrated error on replica "
                "throughput. Price: " + head.note)
        _metric(cols[3], "Self-hosted USD/Mtok", _num(head.blended_usd_per_mtok, ",.3f"),
                widgets.fmt_range(head.blended_usd_per_mtok, head.blended_usd_per_mtok_low,
                                  head.blended_usd_per_mtok_high, ",.3f")
                + f"; in {_num(head.input_usd_per_mtok, ',.3f')} / out {_num(head.output_usd_per_mtok, ',.3f')}",
                "Reservation-based: the whole bill over the tokens served, input + output; split between input "
                "and output by the prefill share of replica time.")
    else:
        _metric(cols[0], "GPUs", "n/a", "no price for this tier", head.note)
        _metric(cols[1], "Self-hosted USD/month", "n/a", f"{tier} unavailable", head.note)
        _metric(cols[3], "Self-hosted USD/Mtok", "n/a", "", head.note)
    if p.api is not None:
        _metric(cols[2], "API USD/month", _num(p.api.monthly_usd),
                f"{p.api.api_id}; {_num(p.api.blended_usd_per_mtok, ',.3f')} USD/Mtok",
                f"{_num(p.api.usd_per_request, ',.5f')} USD per request; per Mtok: input "
                f"{_num(p.api.input_usd_per_mtok, ',.3f')}, output {_num(p.api.output_usd_per_mtok, ',.3f')}, "
                f"blended {_num(p.api.blended_usd_per_mtok, ',.3f')} (cache and batch shares included). "
                f"{p.api.note}")
    else:
        _metric(cols[2], "API USD/month", "n/a", "no API serves this model",
                "Pick one under 'API to compare with' in the sidebar.")
    be = p.breakeven.get(p.headline_tier)
    growth = p.growth.get(p.headline_tier)
    month = f"; with growth: month {growth.breakeven_month}" if growth and growth.breakeven_month else ""
    if be is not None and be.found:
        _metric(cols[4], "Break-even (req/day)", _num(be.requests_per_day),
                f"{_breakeven_range(be.requests_per_day, head)}{month}",
                f"{be.note}; {_num(be.tokens_per_month)} tokens/month.")
    elif be is not None and math.isfinite(head.breakeven_requests_per_day_low):
        _metric(cols[4], "Break-even (req/day)", "none",
                f"{_num(head.breakeven_requests_per_day_low)} if throughput is at the high end{month}", be.note)
    elif p.best_breakeven_tier is not None:
        other = p.breakeven[p.best_breakeven_tier]
        _metric(cols[4], "Break-even (req/day)", f"none on {TIER_LABELS.get(tier, tier)}",
                f"{TIER_LABELS.get(p.best_breakeven_tier, p.best_breakeven_tier)}: {_num(other.requests_per_day)}",
                f"The headline tier never breaks even; the cheapest tier that does is {p.best_breakeven_tier} "
                f"({other.note}).")
    else:
        _metric(cols[4], "Break-even (req/day)", "none", "the API stays cheaper on every tier" if be else
                "needs an API", be.note if be is not None else "Needs an API price and the headline tier.")


def _breakeven_range(value: float, head: TierCost) -> str:
    low, high = head.breakeven_requests_per_day_low, head.breakeven_requests_per_day_high
    if math.isfinite(low) and math.isfinite(high):
        return widgets.fmt_range(value, low, high)
    if math.isfinite(low):
        return f"{_num(value)} ({_num(low)}{widgets.EN_DASH}none)"
    return _num(value)


# One tick and grid line per decade on the log axes, the same list for every plan: Vega draws only the values
# inside the scale's domain, and an unchanged spec lets the browser update the chart's data in place instead of
# building a new view (it rebuilds on any spec change, e.g. when a move changed the decades in view).
AXIS_DECADES = [10.0 ** k for k in range(-3, 13)]

# Canvas, not Streamlit's default SVG: a move redraws ~150 marks on one canvas instead of updating as many SVG
# nodes (measured: browser CPU per move 0.50 -> 0.40 s, docs/app.md). Vega-Embed reads this from the spec.
CHART_EMBED_OPTIONS = {"renderer": "canvas"}

# No ARIA descriptions: Vega-Lite writes one per mark item (every point of every line, its fields formatted as text)
# on every data update, and they serve SVG output only, not this canvas (measured: browser CPU per slider move
# 0.21 -> 0.16-0.17 s with the chart alone at 300k-40M requests/day, docs/app.md).
CHART_CONFIG = {"aria": False}


def breakeven_chart_spec(p: Plan) -> tuple[pd.DataFrame, dict]:
    """The break-even chart as one table and a Vega-Lite spec: every tier's step function, the API line, the
    crossings and your volume, on log axes.

    Vega-Lite, not Plotly, because it is the Plan page's first view: Plotly's 4.7 MB script is what a browser
    then parses on every page load (measured: about 1 s of the ~5 s of browser CPU a load costs on this 2-core
    machine); the other pages and tabs keep Plotly."""
    data = breakeven_chart(p)
    rows: list[dict] = []
    domain, colours = [], []

    def add_series(label: str, colour: str | None, xs, ys, width: float, dash: str) -> None:
        domain.append(label)
        colours.append(colour or "#7f7f7f")
        rows.extend({"layer": "curve", "series": label, "requests_per_day": float(x), "usd_per_month": float(y),
                     "width": width, "dash": dash} for x, y in zip(xs, ys, strict=True))

    for curve in data.tiers:
        add_series(f"self-hosted, {TIER_LABELS.get(curve.name, curve.name)}", TIER_COLOURS.get(curve.name),
                   curve.requests_per_day, curve.usd_per_month, 3 if curve.name == p.headline_tier else 1.5, "solid")
    if data.api is not None:
        add_series(f"API: {p.api.api_id}", API_COLOUR, data.api.requests_per_day, data.api.usd_per_month, 3, "dash")
    for tier, x, y in data.crossovers:
        rows.append({"layer": "crossing", "series": f"break-even ({TIER_LABELS.get(tier, tier)})",
                     "requests_per_day": float(x), "usd_per_month": float(y), "colour": TIER_COLOURS.get(tier),
                     "text": f"break-even {x:,.0f}/day" if tier == p.headline_tier else ""})
    for y in (p.headline.monthly_usd if p.headline.available else None, p.api.monthly_usd if p.api else None):
        if y is not None:
            rows.append({"layer": "here", "series": "your volume", "requests_per_day": data.current_requests_per_day,
                         "usd_per_month": float(y)})
    frame = pd.DataFrame([r for r in rows if math.isfinite(r["usd_per_month"]) and r["usd_per_month"] > 0
                          and math.isfinite(r["requests_per_day"]) and r["requests_per_day"] > 0])
    # the repeated labels as categories: Arrow sends each once (dictionary-encoded), not on every row
    frame = frame.astype({c: "category" for c in ("layer", "series", "dash", "colour", "text") if c in frame})
    x = {"field": "requests_per_day", "type": "quantitative", "scale": {"type": "log"},
         "axis": {"title": "traffic (requests/day, log scale)", "format": "~s",
                  "values": AXIS_DECADES}}
    y = {"field": "usd_per_month", "type": "quantitative", "scale": {"type": "log"},
         "axis": {"title": "cost (USD/month, log scale)", "format": "$~s",
                  "values": AXIS_DECADES}}
    tooltip = [{"field": "series", "title": "line"},
               {"field": "requests_per_day", "title": "requests/day", "format": ",.0f"},
               {"field": "usd_per_month", "title": "USD/month", "format": "$,.0f"}]

    def only(layer: str) -> list[dict]:
        return [{"filter": {"field": "layer", "equal": layer}}]

    spec = {"height": 460, "usermeta": {"embedOptions": CHART_EMBED_OPTIONS}, "config": CHART_CONFIG, "layer": [
        {"transform": only("curve"), "mark": {"type": "line", "interpolate": "step-after"},
         "encoding": {"x": x, "y": y, "tooltip": tooltip,
                      "color": {"field": "series", "type": "nominal", "title": None,
                                "scale": {"domain": domain, "range": colours},
                                "legend": {"orient": "top", "columns": 3, "labelLimit": 320}},
                      "strokeWidth": {"field": "width", "type": "quantitative", "scale": None},
                      "strokeDash": {"field": "dash", "type": "nominal", "legend": None,
                                     "scale": {"domain": ["solid", "dash"], "range": [[1, 0], [7, 4]]}}}},
        {"transform": only("crossing"), "mark": {"type": "point", "shape": "diamond", "filled": True, "size": 170,
                                                 "stroke": "black", "strokeWidth": 1, "opacity": 1},
         "encoding": {"x": x, "y": y, "tooltip": tooltip,
                      "fill": {"field": "colour", "type": "nominal", "scale": None}}},
        {"transform": only("crossing"), "mark": {"type": "text", "align": "right", "dx": -8, "dy": -12,
                                                 "fontSize": 13},
         "encoding": {"x": x, "y": y, "text": {"field": "text"},
                      "color": {"field": "colour", "type": "nominal", "scale": None}}},
        {"transform": only("here"), "mark": {"type": "point", "shape": "circle", "filled": False, "size": 130,
                                             "color": "black", "strokeWidth": 2, "opacity": 1},
         "encoding": {"x": x, "y": y, "tooltip": tooltip}},
    ]}
    return frame, spec


@st.cache_data(max_entries=256, show_spinner=False)
def _cached_chart_spec(scenario: Scenario, prices_key: str, _plan: Plan) -> tuple[pd.DataFrame, dict]:
    """One chart per scenario and price table, computed once for every session (each gets its own copy)."""
    return breakeven_chart_spec(_plan)


def _chart(p: Plan) -> None:
    frame, spec = _cached_chart_spec(p.scenario, state.catalog_key(), p)
    st.vega_lite_chart(frame, spec, width="stretch", key="breakeven_chart")
    st.caption("Along these curves the replica configuration is held fixed (the one chosen for your volume) and only "
               "the number of replicas changes; move the volume slider to re-optimise the configuration at another "
               "volume. The Sensitivity page re-runs the search at every point (engine and precision held).\n\n"
               "Self-hosting is a step function: each step adds a replica that is paid for whether busy or not. "
               "The API line is linear in volume. Month-1 prices; growth and API price decline are in the "
               "monthly table.")  # one element, not two: each costs the browser time on every slider move


def _breakdown(p: Plan) -> None:
    tiers = [t for t in ALL_TIERS if p.costs[t].available]
    if not tiers:
        st.info("No tier has a price for this GPU: set a price under 'Capacity, prices and horizon'.")
        return
    drivers = sorted({d for t in tiers for d in p.costs[t].drivers_usd_per_month})
    fig = go.Figure()
    for driver in drivers:
        fig.add_trace(go.Bar(y=[TIER_LABELS.get(t, t) for t in tiers], orientation="h", name=driver.replace("_", " "),
                             x=[p.costs[t].drivers_usd_per_month.get(driver, 0.0) for t in tiers],
                             hovertemplate="%{y}: %{x:$,.0f} per month<extra>" + driver + "</extra>"))
    if p.api is not None:
        for name, value in (("API input", p.api.input_usd_per_month), ("API output", p.api.output_usd_per_month)):
            fig.add_trace(go.Bar(y=["API"], x=[value], orientation="h", name=name,
                                 hovertemplate="%{x:$,.0f} per month<extra>" + name + "</extra>"))
    fig.update_layout(barmode="stack", height=120 + 45 * (len(tiers) + 1), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"title": "USD per month"}, legend={"orientation": "h", "y": -0.3})
    st.plotly_chart(fig, key="breakdown_chart", config={"displaylogo": False})
    rows = [{"driver": d.replace("_", " "), **{TIER_LABELS.get(t, t): p.costs[t].drivers_usd_per_month.get(d)
                                               for t in tiers}} for d in drivers]
    rows.append({"driver": "total", **{TIER_LABELS.get(t, t): p.costs[t].monthly_usd for t in tiers}})
    widgets.table(rows, key="breakdown_table",
                  column_config={TIER_LABELS.get(t, t): st.column_config.NumberColumn(
                      f"{TIER_LABELS.get(t, t)} (USD/month)", format="dollar") for t in tiers})


def _tiers(p: Plan) -> None:
    rows = []
    for tier in ALL_TIERS:
        c = p.costs[tier]
        be, g, f = p.breakeven.get(tier), p.growth.get(tier), c.fleet
        rows.append({
            "tier": TIER_LABELS.get(tier, tier), "provider": c.provider, "price_basis": c.price_basis,
            "usd_per_gpu_hour": c.usd_per_gpu_hour if c.available else None,
            "replicas": f"{f.serving_replicas} + {f.redundancy_replicas}" if f else None,
            "gpus": f.total_gpus if f else None,
            "utilisation_avg_frac": f.utilisation_avg_frac if f else None,
            "utilisation_peak_frac": f.utilisation_peak_frac if f else None,
            "monthly": (widgets.fmt_range(c.monthly_usd, c.monthly_usd_low, c.monthly_usd_high)
                        if c.available else "unavailable"),
            "blended_usd_per_mtok": c.blended_usd_per_mtok if c.available else None,
            "breakeven_requests_per_day": be.requests_per_day if be is not None and be.found else None,
            "breakeven_month": g.breakeven_month if g is not None else None,
            "cumulative_saving_usd": g.cumulative_saving_usd if g is not None else None,
            "note": c.note, "price_source_url": c.price_source_url,
        })
    cc = st.column_config
    widgets.table(rows, key="tiers_table", column_config={
        "tier": cc.TextColumn("Tier"), "provider": cc.TextColumn("Provider"),
        "price_basis": cc.TextColumn("Price basis"),
        "usd_per_gpu_hour": cc.NumberColumn("All-in (USD per GPU-hour)", format="%.3f"),
        "replicas": cc.TextColumn("Replicas (serving + spare)"), "gpus": cc.NumberColumn("GPUs (count)"),
        "utilisation_avg_frac": cc.NumberColumn("Utilisation, average", format="percent"),
        "utilisation_peak_frac": cc.NumberColumn("Utilisation, peak", format="percent"),
        "monthly": cc.TextColumn("USD/month (range)"),
        "blended_usd_per_mtok": cc.NumberColumn("USD per Mtok", format="%.3f"),
        "breakeven_requests_per_day": cc.NumberColumn("Break-even (req/day)", format="localized"),
        "breakeven_month": cc.NumberColumn("Break-even month (with growth)"),
        "cumulative_saving_usd": cc.NumberColumn(f"Saving over {p.scenario.horizon_months} months (USD)",
                                                 format="dollar"),
        "note": cc.TextColumn("Where the price comes from", width="large"),
        "price_source_url": cc.LinkColumn("Price source", display_text="source"),
    })
    if p.hybrid is not None:
        h = p.hybrid
        st.info(f"Hybrid: {h.base_serving_replicas} {TIER_LABELS.get(h.tier, h.tier)} replicas plus the API for "
                f"{h.api_share_of_requests_frac:.0%} of requests costs {h.total_usd_per_month:,.0f} USD/month, "
                f"{h.saving_vs_best_pure_usd_per_month:,.0f} USD/month less than the cheaper pure option.",
                icon=":material/call_split:")


def _capacity(p: Plan) -> None:
    e = p.estimate
    c1, c2, c3 = st.columns(3)
    _metric(c1, "TTFT (s)", f"{e.ttft_s:.3f}",
            f"{widgets.fmt_range(e.ttft_s, e.ttft_s_low, e.ttft_s_high, '.3f')} s; target {p.ttft_target_s:g} s",
            f"Time to first token at the operating concurrency. Target source: {p.sources.get('ttft_target_s', '')}")
    _metric(c2, "TPOT (s per token)", f"{e.tpot_s:.4f}",
            f"{widgets.fmt_range(e.tpot_s, e.tpot_s_low, e.tpot_s_high, '.4f')} s; target {p.tpot_target_s:g} s",
            f"Time per output token at the operating concurrency. Target source: "
            f"{p.sources.get('tpot_target_s', '')}")
    _metric(c3, "Capacity per replica (requests/s)", f"{p.capacity_requests_per_s_per_replica:.2f}",
            widgets.fmt_range(p.capacity_requests_per_s_per_replica, p.capacity_requests_per_s_per_replica_low,
                              p.capacity_requests_per_s_per_replica_high, ".2f") + " requests/s",
            "Requests per second one replica completes under the latency targets; the range is the efficiency "
            "profile's calibrated error.")
    rows = [
        ("Replica", f"{e.num_gpus} x {e.gpu_id} ({e.layout}: tensor parallel {e.tp}, pipeline {e.pp}, data "
                    f"parallel {e.dp}{', expert parallel' if e.expert_parallel else ''})"),
        ("Engine / precision / KV cache", f"{e.engine} / {e.precision} / {e.kv_dtype}"
                                          + ("" if e.native_compute else " (dequantized to bf16)")),
        ("Operating concurrency (sequences)",
         f"{p.operating_concurrency:,} of {e.max_concurrency:,} that fit, bound by {p.concurrency_bound_by}"),
        ("Output tokens/s per replica",
         widgets.fmt_range(e.output_tokens_per_s, e.output_tokens_per_s_low, e.output_tokens_per_s_high)),
        ("Output tokens/s per user", f"{e.output_tokens_per_s_per_user:,.1f}"),
        ("Weights (GB, per GPU)", f"{e.weights_gb:,.1f} ({e.weights_gb_per_gpu:,.1f})"),
        ("KV cache (GB per GPU at this concurrency)", f"{e.kv_cache_gb_per_gpu:,.1f}"),
        ("Bottleneck", e.bottleneck), ("Efficiency profile", e.efficiency_profile),
        ("Workload", f"{p.workload.requests_per_day:,.0f} requests/day, {p.workload.input_tokens_mean:,.0f} in / "
                     f"{p.workload.output_tokens_mean:,.0f} out tokens, peak {p.workload.peak_to_average_ratio:g}x "
                     f"average"),
        ("Tokens per month (input / output)",
         f"{p.input_tokens_per_month:,.3g} / {p.output_tokens_per_month:,.3g}"),
    ]
    widgets.table([{"quantity": k, "value": v} for k, v in rows], key="capacity_table", height="content",
                  column_config={"quantity": st.column_config.TextColumn("Quantity"),
                                 "value": st.column_config.TextColumn("Value", width="large")})


def _monthly(p: Plan) -> None:
    tiers = [t for t in ALL_TIERS if p.costs[t].available]
    rows = [{"month": m.month, "requests_per_day": m.requests_per_day, "api_usd": m.api_usd,
             **{t: m.self_hosted_usd.get(t) for t in tiers}} for m in p.monthly]
    cc = st.column_config
    widgets.table(rows, key="monthly_table", height=360, column_config={
        "month": cc.NumberColumn("Month"), "requests_per_day": cc.NumberColumn("Requests/day", format="localized"),
        "api_usd": cc.NumberColumn("API (USD)", format="dollar"),
        **{t: cc.NumberColumn(f"{TIER_LABELS.get(t, t)} (USD)", format="dollar") for t in tiers}})
    st.caption("The growth plan keeps the configuration chosen for month 1 (GPU, layout, precision, engine) and adds "
               "replicas as the volume grows; it does not re-optimise per month. Fixed fleets (owned, reserved) never "
               "shrink once grown; the full table is in the CSV report.")


def _deploy(p: Plan) -> None:
    """The launch script, SkyPilot service and Kubernetes objects of the headline tier."""
    st.caption("What the plan needs to run: the engine's launch command with the plan's parallelism, precision, KV "
               "cache dtype, context and concurrency; a SkyPilot service; a Kubernetes Deployment and Service. "
               "The same files as `python -m planner deploy --scenario FILE --target ...`.")
    try:
        files, unavailable = deployment_files(deployment_from_plan(p, state.catalog()))
    except PlannerError as err:
        widgets.show_error(err)
        return
    columns = st.columns(max(len(files) + len(unavailable), 1))
    for column, (target, (name, text)) in zip(columns, files.items(), strict=False):
        column.download_button(f"{target} ({name})", text, file_name=name, mime="text/plain", key=f"dl_{target}",
                               icon=":material/download:", width="stretch")
    for target, why in unavailable.items():
        st.info(f"{target}: not generated ({why})")
    if files:
        first = next(iter(files.values()))
        st.code(first[1], language="bash" if first[0].endswith(".sh") else "yaml")


def _why(p: Plan) -> None:
    """The search behind the choice: what it tried, the latency at the percentile, and what else would cost.

    The slider's plan leaves out the frontier and the alternatives (state.cached_cost_plan); this tab takes the
    full plan of the same scenario (cached, computed when the tab is first opened at this volume)."""
    if p.search is not None and not p.search.frontier and not p.search.alternatives:
        p = state.cached_plan(p.scenario)
    s = p.search
    if s is None:
        st.info("This plan was not produced by the configuration search.")
        return
    st.caption(f"{s.n_configurations:,} configurations searched (GPU, engine, precision and KV cache under the "
               f"quality policy, GPUs per replica, layout, batch limit), {s.n_fitting:,} fit, {s.n_meeting_targets:,} "
               f"meet TTFT {p.ttft_target_s:g} s and TPOT {p.tpot_target_s * 1e3:g} ms at "
               f"p{round(p.latency_percentile * 100)} with queueing; the cheapest fleet wins, ties go to fewer GPUs "
               f"and then lower latency. Search time {s.elapsed_s:.2f} s.")
    for line in s.explanation:
        st.text(line)
    lat = s.best.latency
    if lat:
        rows = [{"percentile": f"p{q}", "ttft_s": lat[f"ttft_p{q}_s"], "tpot_ms": lat[f"tpot_p{q}_s"] * 1e3}
                for q in (50, 90, 95, 99)]
        st.markdown("**Latency of one replica at the fleet's design load** (queueing model; "
                    "`python -m planner simulate` checks it request by request)")
        widgets.table(rows, key="latency_table", height="content", column_config={
            "percentile": st.column_config.TextColumn("Percentile"),
            "ttft_s": st.column_config.NumberColumn("TTFT (s)", format="%.3f"),
            "tpot_ms": st.column_config.NumberColumn("TPOT (ms)", format="%.1f")})
    if s.frontier:
        out = p.estimate.output_tokens
        e2e = [end_to_end_s(f.ttft_s, f.tpot_s, out) for f in s.frontier]
        fig = go.Figure(go.Scatter(
            x=[f.monthly_usd for f in s.frontier], y=e2e, mode="lines+markers",
            line_shape="hv", name="latency", text=[f.configuration for f in s.frontier],
            customdata=[[f.ttft_s, f.tpot_s * 1e3, f.total_gpus] for f in s.frontier],
            hovertemplate="%{x:$,.0f}/month, %{customdata[2]} GPUs<br>TTFT %{customdata[0]:.3f} s, TPOT "
                          "%{customdata[1]:.1f} ms<br>%{text}<extra></extra>"))
        best_e2e = end_to_end_s(s.best.ttft_s_at_percentile, s.best.tpot_s_at_percentile, out)
        fig.add_trace(go.Scatter(x=[s.best.monthly_usd], y=[best_e2e], mode="markers",
                                 name="the plan", marker={"size": 13, "symbol": "diamond", "color": "black"}))
        fig.update_xaxes(type="log", title="fleet cost (USD/month, log scale)", tickformat="$~s")
        fig.update_yaxes(title=f"TTFT + {out - 1} x TPOT at p{round(p.latency_percentile * 100)} (s)")
        fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                          title="Cost-latency frontier: each step buys lower end-to-end latency")
        st.plotly_chart(fig, key="frontier_chart", config={"displaylogo": False})
    alts = [{"configuration": f"{a.num_gpus_per_replica} x {a.gpu_id}, {a.layout.label}, {a.precision}/{a.kv_dtype} "
                              f"KV, {a.engine}, batch limit {a.max_num_seqs}",
             "gpus": a.total_gpus, "usd_per_month": a.monthly_usd,
             "ratio": a.monthly_usd / s.best.monthly_usd if s.best.monthly_usd else float("nan")}
            for a in sorted(s.alternatives, key=lambda a: a.monthly_usd)]
    if alts:
        st.markdown("**The cheapest configuration for each other choice**")
        widgets.table(alts, key="alternatives_table", height=320, column_config={
            "configuration": st.column_config.TextColumn("Configuration", width="large"),
            "gpus": st.column_config.NumberColumn("GPUs"),
            "usd_per_month": st.column_config.NumberColumn("USD/month", format="dollar"),
            "ratio": st.column_config.NumberColumn("x the plan", format="%.2f")})


def render_headline(p: Plan) -> None:
    _headline(p)


def render_details(p: Plan) -> None:
    widgets.show_warnings(p.warnings)
    # Lazy tabs: only the open tab's content runs, which keeps a slider move's re-render short.
    tabs = st.tabs(["Break-even", "Why this configuration", "Cost breakdown", "All tiers", "Capacity and latency",
                    "Monthly", "Deploy"], key="plan_tab", on_change="rerun")
    for tab, draw in zip(tabs, (_chart, _why, _breakdown, _tiers, _capacity, _monthly, _deploy), strict=True):
        if tab.open:
            with tab:
                draw(p)
