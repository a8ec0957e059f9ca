"""Sensitivity and scenarios: a tornado chart of the monthly cost and the break-even volume over the main
drivers of the current scenario, and saved scenarios side by side.

Each driver is moved down and up by the chosen swing and the scenario is re-planned
(planner.econ.sensitivity.sensitivity: the configuration search runs again at every point, with the GPU,
engine and weight precision held at the plan's choice, and the page says so); model throughput swings
over its calibrated range.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from planner.econ.sensitivity import HELD_AXES, Swing, held_configuration
from planner.errors import PlannerError
from planner.scenario import Scenario
from ui import state, widgets
from ui.support import plan_summary

LOW_COLOUR, HIGH_COLOUR = "#1f77b4", "#ff7f0e"


def _tornado(swings: tuple[Swing, ...], base: float, low_attr: str, high_attr: str, title: str,
             axis: str) -> go.Figure | None:
    shown = [s for s in swings if math.isfinite(getattr(s, low_attr)) or math.isfinite(getattr(s, high_attr))]
    if not shown or not math.isfinite(base):
        return None
    fig = go.Figure()
    for end, attr, colour in (("low", low_attr, LOW_COLOUR), ("high", high_attr, HIGH_COLOUR)):
        for i, s in enumerate(shown):
            value = getattr(s, attr)
            if not math.isfinite(value):
                continue
            driver_value = s.low_value if end == "low" else s.high_value
            fig.add_trace(go.Scatter(
                x=[base, value], y=[s.label, s.label], mode="lines", line={"color": colour, "width": 18},
                name=f"driver {end}", legendgroup=end, showlegend=i == 0,
                hovertemplate=f"{s.label} at {driver_value:,.4g}: %{{x:,.0f}}<extra>{end}</extra>"))
    fig.add_trace(go.Scatter(x=[base, base], y=[shown[0].label, shown[-1].label], mode="lines",
                             line={"color": "black", "width": 1}, name="current scenario", hoverinfo="skip"))
    fig.update_layout(title=title, height=90 + 48 * len(shown), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis={"title": axis}, yaxis={"autorange": "reversed", "type": "category"},
                      legend={"orientation": "h", "y": -0.2})
    return fig


def _held_note(result) -> str:
    """What each bar re-optimises and what it holds at this plan's choice (planner.econ.sensitivity.HELD_AXES)."""
    held = held_configuration(result)
    searched = "GPUs per replica, layout, KV-cache dtype, batch limit, fleet size and GPU cloud"
    if not held:
        return f"Every bar re-runs the configuration search: {searched} are re-optimised at each end."
    pinned = ", ".join(f"{HELD_AXES[k]} {v}" for k, v in held.items())
    return (f"Every bar re-runs the configuration search at each end: {searched} are re-optimised; the "
            f"{pinned} are held at this plan's choice (searching them too takes several times longer).")


def _sensitivity(scenario: Scenario) -> None:
    st.subheader("Tornado: what moves the answer")
    swing = st.slider("Swing of each driver (down and up)", min_value=0.05, max_value=0.9, value=0.25, step=0.05,
                      format="percent", key="sens_swing",
                      help="Each driver is moved down and up by this share of the value the plan used; model "
                           "throughput moves over its calibrated range instead.")
    try:
        result = state.cached_plan(scenario)
        swings = state.sensitivity(scenario, swing)
    except PlannerError as err:
        widgets.show_error(err)
        return
    st.caption(_held_note(result))
    head = result.headline
    be = result.breakeven.get(result.headline_tier)
    c1, c2 = st.columns(2)
    cost = _tornado(swings, head.monthly_usd if head.available else math.nan, "monthly_usd_at_low",
                    "monthly_usd_at_high", "Self-hosted cost", "USD per month")
    if cost is not None:
        c1.plotly_chart(cost, key="tornado_cost", config={"displaylogo": False})
    else:
        c1.info("No self-hosted cost for the headline tier: it has no price.")
    be_fig = _tornado(swings, be.requests_per_day if be is not None and be.found else math.nan,
                      "breakeven_requests_per_day_at_low", "breakeven_requests_per_day_at_high",
                      "Break-even volume", "requests per day")
    if be_fig is not None:
        c2.plotly_chart(be_fig, key="tornado_breakeven", config={"displaylogo": False})
    else:
        c2.info(f"No break-even at the current scenario ({be.note if be is not None else 'no API to compare'}); "
                "the table shows where a swing finds one.")
    cc = st.column_config
    widgets.table([{"driver": s.label, "low_value": s.low_value, "high_value": s.high_value,
                    "monthly_low": s.monthly_usd_at_low, "monthly_high": s.monthly_usd_at_high,
                    "be_low": s.breakeven_requests_per_day_at_low, "be_high": s.breakeven_requests_per_day_at_high,
                    "note": s.note} for s in swings], key="sens_table", column_config={
        "driver": cc.TextColumn("Driver"), "low_value": cc.NumberColumn("Low value", format="%.4g"),
        "high_value": cc.NumberColumn("High value", format="%.4g"),
        "monthly_low": cc.NumberColumn("USD/month at low", format="dollar"),
        "monthly_high": cc.NumberColumn("USD/month at high", format="dollar"),
        "be_low": cc.NumberColumn("Break-even at low (requests/day)", format="localized"),
        "be_high": cc.NumberColumn("Break-even at high (requests/day)", format="localized"),
        "note": cc.TextColumn("Note", width="large")})
    st.caption("Empty cells: the plan is infeasible there (see the note) or the API stays cheaper at every volume.")


_ROWS = [("model", "Model", None), ("gpu", "Replica", None), ("precision", "Precision", None),
         ("workload", "Workload", None), ("deployment", "Deployment", None), ("gpus", "GPUs (count)", ",.0f"),
         ("self_hosted_usd_per_month", "Self-hosted (USD/month)", ",.0f"),
         ("provider", "GPU cloud", None),
         ("self_hosted_usd_per_mtok", "Self-hosted (USD/Mtok)", ",.3f"), ("api", "API", None),
         ("api_usd_per_month", "API (USD/month)", ",.0f"), ("api_usd_per_mtok", "API (USD/Mtok)", ",.3f"),
         ("breakeven_requests_per_day", "Break-even (requests/day)", ",.0f"),
         ("utilisation_avg_frac", "Utilisation, average", ".0%")]


def _cell(summary: dict, field: str, fmt: str | None) -> str:
    value = summary.get(field)
    if field in ("self_hosted_usd_per_month", "self_hosted_usd_per_mtok") and value is not None:
        return widgets.fmt_range(value, summary[f"{field}_low"], summary[f"{field}_high"], fmt)
    if value is None:
        return "n/a"
    return format(value, fmt) if fmt else str(value)


def _saved(current: Scenario | None) -> None:
    st.subheader("Saved scenarios side by side")
    saved = state.saved_scenarios()
    columns: dict[str, dict | str] = {}
    pairs = ([("current (Plan page)", current)] if current is not None else []) + list(saved.items())
    for name, scenario in pairs:
        try:
            columns[name] = plan_summary(state.cached_plan(scenario))
        except PlannerError as err:
            columns[name] = str(err)
    if not saved:
        st.info("Save scenarios from the Plan page ('Save to compare') to see them here side by side.")
    rows = []
    for field, label, fmt in _ROWS:
        row = {"quantity": label}
        for name, summary in columns.items():
            row[name] = _cell(summary, field, fmt) if isinstance(summary, dict) else ("infeasible" if field == "model"
                                                                                       else "")
        rows.append(row)
    widgets.table(rows, key="saved_table", height="content")
    for name, summary in columns.items():
        if isinstance(summary, str):
            st.error(f"{name}: {summary}", icon=":material/block:")
    if saved:
        c1, c2, c3 = st.columns([2, 1, 1])
        chosen = c1.selectbox("Saved scenario", list(saved), key="saved_pick")
        if c2.button("Open in Plan", key="saved_open", icon=":material/open_in_new:", width="stretch"):
            state.replace_scenario(saved[chosen])
            st.switch_page(state.page("plan"))
        if c3.button("Delete", key="saved_delete", icon=":material/delete:", width="stretch"):
            state.delete_saved(chosen)
            st.rerun()


def render() -> None:
    st.title("Sensitivity and scenarios")
    st.caption("How the Plan page's current scenario responds to its main drivers, and saved scenarios side by side.")
    try:
        scenario = Scenario(**state.scenario_fields())
    except PlannerError as err:
        widgets.show_error(err)
        scenario = None
    if scenario is not None:
        _sensitivity(scenario)
    _saved(scenario)


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
