"""Plan: the scenario's inputs in the sidebar; GPUs, monthly cost, $/Mtok and break-even in the main area.

Inputs are bound to the session's scenario (ui.state) and to the URL, so a page switch keeps them
and the address bar is a shareable link. Every number comes from planner.plan.plan (cached per
scenario and price table); infeasible scenarios show the engine's message and suggestions.

The volume slider and everything that depends on it (share link, headline, warnings, result tabs) are one
`st.fragment`: moving the slider reruns only that part, not the ~40 sidebar inputs nor the export buttons
(which do not change with the volume: they read the fragment's latest plan when clicked), so a move costs the
server and the browser less. A sidebar input reruns the whole page as before.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from planner.econ.costs import RENTAL_TIERS
from planner.errors import PlannerError
from planner.scenario import MODES, PRESETS, SCENARIO_FIELDS, Scenario
from ui import plan_results, state, widgets
from ui.support import requests_per_day_options

NUM_GPUS_CHOICES = [1, 2, 4, 8, 16, 32, 64]


def _apply_pending(fields: dict[str, Any]) -> None:
    """Fields chosen on another page (advisor, compare): into the scenario and the widgets before they render."""
    for name, value in state.take_pending_update().items():
        fields[name] = value
        widgets.set_widget(name, value)


def _model_inputs(fields: dict[str, Any], cat: Any) -> None:
    with st.sidebar.expander("Model and hardware", expanded=True, icon=":material/memory:"):
        widgets.choice_field(fields, "model", "Model", cat.model_ids, format_func=widgets.model_label(cat))
        widgets.choice_field(fields, "gpu", "GPU", cat.gpu_ids, format_func=widgets.gpu_label(cat))
        widgets.choice_field(fields, "precision", "Weight precision", list(cat.precisions),
                             auto_label="searched (quality policy)",
                             help_extra="4-bit and GGUF formats carry a quality risk; evaluate on your task.")
        widgets.choice_field(fields, "engine", "Serving engine", list(cat.engines),
                             auto_label="searched (every engine that runs it)")
        widgets.choice_field(fields, "num_gpus_per_replica", "GPUs per replica", NUM_GPUS_CHOICES,
                             auto_label="searched (cheapest fleet)")
        _profile_input(fields, cat)
        with st.popover("More: search policies, KV cache, expert parallelism", width="stretch"):
            widgets.choice_field(fields, "quality_policy", "Quality policy", ["lossless", "low-risk", "any"],
                                 help_extra="lossless: bf16/fp16 weights and KV; low-risk: also fp8/int8 where the "
                                            "GPU computes them natively; any: 4-bit and GGUF too.")
            widgets.choice_field(fields, "provider_policy", "GPU clouds", ["no-marketplace", "hyperscaler", "any"],
                                 help_extra="no-marketplace leaves out machines that belong to third-party hosts.")
            widgets.choice_field(fields, "latency_percentile", "Latency targets hold at", [0.5, 0.9, 0.95, 0.99],
                                 format_func=lambda q: f"p{round(q * 100)}")
            widgets.choice_field(fields, "kv_dtype", "KV cache dtype", list(cat.kv_dtypes),
                                 auto_label="searched (engine default; 8-bit beyond lossless)")
            widgets.bool_field(fields, "expert_parallel", "Expert parallelism (MoE)")


def _profile_input(fields: dict[str, Any], cat: Any) -> None:
    """The scenario's named efficiency profile: only those that describe its GPU and engine are offered (a
    profile fixes its engine where the scenario leaves it to the search); plan() refuses a mismatch."""
    gpu = cat.gpus.get(fields.get("gpu"))
    engine = fields.get("engine")
    every = list({p.profile_id: p for p in (*cat.efficiency, *cat.user_efficiency)}.values())
    fitting = [p.profile_id for p in every
               if gpu is None or cat.profile_problem(p, engine or p.engine, gpu) is None]
    widgets.choice_field(fields, "profile", "Efficiency profile", fitting, auto_label="catalog default",
                         help_extra="Calibrate your own on the Calibrate page; a profile describes one engine "
                                    "on the GPUs it names.")
    if len(every) > len(fitting):
        st.caption(f"{len(every) - len(fitting)} other profiles describe other GPUs or engines "
                   "(listed on the Calibrate page).")


def _preset_placeholder(fields: dict[str, Any], field: str, fmt: str = "g") -> str:
    preset = PRESETS.get(fields.get("preset"))
    return f"preset: {format(getattr(preset, field), fmt)}" if preset else "from the preset"


def _workload_inputs(fields: dict[str, Any]) -> None:
    # collapsed at first, like "Deployment and comparison": a collapsed expander's widgets are mounted by the
    # browser only when it is opened, which cuts a page load's browser CPU by about a fifth (docs/app.md)
    with st.sidebar.expander("Workload and latency targets", expanded=False, icon=":material/query_stats:"):
        widgets.choice_field(fields, "preset", "Workload preset", list(PRESETS),
                             format_func=lambda p: PRESETS[p].name,
                             help_extra="Empty fields below take the preset's sourced values.")
        c1, c2 = st.columns(2)
        widgets.number_field(fields, "input_tokens_mean", "Input", container=c1, step=100, fmt="%.0f",
                             placeholder=_preset_placeholder(fields, "input_tokens_mean", ",.0f"))
        widgets.number_field(fields, "output_tokens_mean", "Output", container=c2, step=50, fmt="%.0f",
                             placeholder=_preset_placeholder(fields, "output_tokens_mean", ",.0f"))
        widgets.number_field(fields, "ttft_target_s", "TTFT target", container=c1, step=0.05, fmt="%.3f",
                             placeholder=_preset_placeholder(fields, "ttft_target_s"))
        widgets.number_field(fields, "tpot_target_s", "TPOT target", container=c2, step=0.005, fmt="%.3f",
                             placeholder=_preset_placeholder(fields, "tpot_target_s"))
        widgets.number_field(fields, "peak_to_average_ratio", "Peak factor", container=c1, step=0.1, fmt="%.2f",
                             placeholder=_preset_placeholder(fields, "peak_to_average_ratio"))
        widgets.number_field(fields, "prompt_cache_hit_frac", "Cache hits", container=c2, step=0.05, fmt="%.2f",
                             placeholder=_preset_placeholder(fields, "prompt_cache_hit_frac"))
        widgets.number_field(fields, "monthly_growth_frac", "Growth", container=c1, step=0.01, fmt="%.3f")
        widgets.number_field(fields, "offline_frac", "Offline", container=c2, step=0.05, fmt="%.2f",
                             placeholder=_preset_placeholder(fields, "offline_frac"))


def _deployment_inputs(fields: dict[str, Any], cat: Any) -> None:
    with st.sidebar.expander("Deployment and comparison", expanded=False, icon=":material/cloud:"):
        widgets.choice_field(fields, "mode", "Headline deployment", list(MODES), radio=True,
                             format_func=lambda m: {"rented": "Rented GPUs", "owned": "Owned GPUs"}.get(m, m))
        if fields["mode"] == "rented":
            widgets.choice_field(fields, "rental_tier", "Rental tier", list(RENTAL_TIERS),
                                 format_func=lambda t: t.replace("_", " "))
        providers = sorted({p.provider for p in cat.prices_for(fields["gpu"])}) if fields["gpu"] in cat.gpus else []
        widgets.choice_field(fields, "provider", "GPU cloud", providers, auto_label="cheapest offer per tier")
        apis = sorted(cat.api_prices)
        widgets.choice_field(fields, "api_id", "API to compare with", apis,
                             auto_label="cheapest API serving the same model")
        with st.popover("Capacity, prices and horizon", width="stretch"):
            widgets.number_field(fields, "gpu_price_usd_per_gpu_hour", "Your GPU price", step=0.1, fmt="%.3f",
                                 placeholder="from the price table")
            widgets.number_field(fields, "redundancy_replicas", "N+k spare replicas", step=1)
            widgets.number_field(fields, "headroom_frac", "Headroom above peak", step=0.05, fmt="%.2f")
            widgets.number_field(fields, "api_price_decline_frac_per_year", "API price decline", step=0.05,
                                 fmt="%.2f")
            widgets.number_field(fields, "horizon_months", "Horizon", step=6)
            widgets.number_field(fields, "reserved_1y_discount_frac", "1-year reserved discount", step=0.05,
                                 fmt="%.2f")
            widgets.number_field(fields, "reserved_3y_discount_frac", "3-year reserved discount", step=0.05,
                                 fmt="%.2f")
            widgets.number_field(fields, "spot_interruption_overhead_frac", "Spot interruption overhead",
                                 step=0.05, fmt="%.2f")


def _owned_inputs(fields: dict[str, Any], cat: Any) -> None:
    gpu = cat.gpus.get(fields["gpu"])
    with st.sidebar.expander("Owned hardware and staff", expanded=fields["mode"] == "owned", icon=":material/dns:"):
        widgets.number_field(fields, "gpu_purchase_usd", "GPU purchase price", step=1000, fmt="%.0f",
                             placeholder=f"catalog: {gpu.purchase_usd:,.0f}" if gpu and gpu.purchase_usd
                             else "not in the catalog: set it")
        widgets.number_field(fields, "gpu_power_w", "GPU power", step=50, fmt="%.0f",
                             placeholder=f"catalog: {gpu.tdp_w:,.0f}" if gpu and gpu.tdp_w else "not in the catalog")
        c1, c2 = st.columns(2)
        widgets.number_field(fields, "amortisation_years", "Amortisation", container=c1, step=1.0, fmt="%.1f")
        widgets.number_field(fields, "cost_of_capital_frac_per_year", "Cost of capital", container=c2, step=0.01,
                             fmt="%.3f")
        widgets.number_field(fields, "electricity_usd_per_kwh", "Electricity", container=c1, step=0.01, fmt="%.3f")
        widgets.number_field(fields, "pue", "PUE", container=c2, step=0.05, fmt="%.2f")
        widgets.number_field(fields, "colocation_usd_per_kw_month", "Colocation", container=c1, step=10.0,
                             fmt="%.2f")
        widgets.number_field(fields, "server_network_capex_frac", "Server + network capex", container=c2,
                             step=0.05, fmt="%.3f")
        widgets.number_field(fields, "residual_value_frac", "Residual value", container=c1, step=0.05, fmt="%.2f")
        widgets.number_field(fields, "power_load_frac", "Average power load", container=c2, step=0.05, fmt="%.3f")
        widgets.number_field(fields, "server_to_gpu_power_ratio", "Server / GPU power", container=c1, step=0.1,
                             fmt="%.3f")
        widgets.number_field(fields, "software_usd_per_gpu_year", "Software", container=c2, step=100.0, fmt="%.0f")
        widgets.number_field(fields, "staff_fte", "Staff", container=c1, step=0.25, fmt="%.2f")
        widgets.number_field(fields, "staff_usd_per_fte_year", "Staff cost", container=c2, step=10_000.0, fmt="%.0f")


_VOLUME_BOX = "requests_per_day_box"


def _volume_slider(fields: dict[str, Any]) -> None:
    """The traffic volume: a logarithmic slider and, beside it, a number box for an exact value."""
    key = widgets.seed(fields, "requests_per_day")
    spec = SCENARIO_FIELDS["requests_per_day"]

    def typed() -> None:  # runs before the rerun: the slider takes the typed value (added to its steps)
        value = st.session_state.get(_VOLUME_BOX)
        if value is not None:
            st.session_state[key] = float(value)
            st.session_state[_VOLUME_BOX] = None  # the box stays empty: the slider shows the volume

    options = requests_per_day_options(st.session_state[key])
    fields["requests_per_day"] = st.select_slider(
        widgets.field_label("requests_per_day", "Traffic volume"), options=options, key=key,
        format_func=lambda v: f"{v:,.0f}", help=widgets.field_help("requests_per_day", "Logarithmic steps."))
    c2, _ = st.columns([1, 4])
    c2.number_input("Exact requests/day", min_value=1.0, max_value=float(spec.high), value=None, step=1000.0,
                    format="%.0f", key=_VOLUME_BOX, on_change=typed, placeholder="type a volume",
                    help="Type an exact volume; the slider moves to it.")
    if fields.get("tokens_per_month") is not None:
        c1, c2 = st.columns([4, 1])
        c1.info(f"This scenario sets the volume as {fields['tokens_per_month']:,.0f} tokens per month, which "
                "overrides requests per day.")
        if c2.button("Use requests/day", key="clear_tokens_per_month"):
            fields["tokens_per_month"] = None
            st.rerun()


_LATEST = "_plan_page_latest"  # the results fragment's latest scenario and plan, for the export buttons
_NO_PLAN = "No plan for this scenario: see the message on the Plan page.\n"


def _latest() -> dict[str, Any]:
    """The holder the results fragment writes its scenario and plan into (one dict per session, kept in session
    state). The export buttons' callables hold a reference to it: they run when clicked, outside any script run
    (no session state there), and must see the volume of the latest slider move, which reruns only the fragment."""
    return st.session_state.setdefault(_LATEST, {})


def _exports(latest: dict[str, Any]) -> None:
    """CSV cost report, JSON scenario and saving for the side-by-side comparison, above the slider.

    Outside the results fragment: they do not change with the volume, so a slider move neither reruns nor resends
    them (about a dozen elements). The files are generated when a button is clicked (deferred downloads), from the
    plan the fragment computed last (the slider's volume included) and this session's catalog."""
    if latest.get("plan") is None:
        return  # the fragment showed why there is no plan
    cat = state.catalog()

    def of_latest(make: Any) -> Any:
        def generate() -> str:
            result = latest.get("plan")
            return _NO_PLAN if result is None else make(result)
        return generate

    c1, c4, c2, c3, _ = st.columns([1.2, 1.2, 1.2, 1.2, 0.8])
    c1.download_button("Cost report (CSV)", of_latest(lambda p: state.plan_csv(p, cat)), file_name="cost_report.csv",
                       mime="text/csv", key="dl_report", type="primary", icon=":material/download:", width="stretch",
                       help="Every assumption with its unit and source, and the results: the exporter of "
                            "`python -m planner plan --csv` (spreadsheet formulas neutralised).")
    c4.download_button("Monthly table (CSV)", of_latest(state.plan_monthly_csv), file_name="monthly.csv",
                       mime="text/csv", key="dl_monthly", icon=":material/download:", width="stretch",
                       help="Month by month: traffic, the API bill and every tier's self-hosted bill (the second "
                            "file of `python -m planner plan --csv`).")
    c2.download_button("Scenario (JSON)", of_latest(lambda _: state.scenario_json(latest["scenario"])),
                       file_name="scenario.json", mime="application/json", key="dl_scenario",
                       icon=":material/download:", width="stretch",
                       help="Load it again under 'Load and share', or with `python -m planner plan --scenario`.")
    with c3.popover("Save to compare", icon=":material/bookmark_add:", width="stretch"):
        default_name = f"scenario {len(state.saved_scenarios()) + 1}"
        name = st.text_input("Name", key="save_name", max_chars=60, placeholder=default_name)
        if st.button("Save", key="save_scenario", type="primary"):
            state.save_scenario(name or default_name, latest["scenario"])
            st.toast(f"Saved '{name or default_name}'; compare it under Sensitivity and scenarios.")


def _load_and_share() -> Any:
    """Upload a scenario file; returns the slot for the shareable link, which the results fragment fills (the
    address bar holds the same)."""
    with st.sidebar.expander("Load and share", icon=":material/share:"):
        upload = st.file_uploader("Load a scenario (JSON)", type=["json"], key="scenario_upload",
                                  help="A file saved with 'Scenario (JSON)'. Names must be catalog ids.")
        if upload is not None and st.session_state.get("_scenario_upload_id") != upload.file_id:
            try:
                loaded = state.scenario_from_upload(upload.getvalue(), upload.name)
            except PlannerError as err:
                widgets.show_error(err)
            else:
                st.session_state["_scenario_upload_id"] = upload.file_id
                state.replace_scenario(loaded)
                st.rerun()
        return st.empty()


def _share_link(slot: Any, scenario: Scenario) -> None:
    """Plain text, not st.code: the code block's syntax highlighter is a chunk every browser would parse on each
    page load (about 0.4 s of CPU on a loaded 2-core machine) for one line."""
    with slot.container():
        st.caption("Shareable link (the address bar holds the same):")
        st.text(state.share_url(scenario))


@st.fragment
def _volume_and_results(link_slot: Any, latest: dict[str, Any]) -> None:
    """The volume slider and the results: a slider move reruns only this function (st.fragment). What it computed
    goes into `latest` for the export buttons outside it."""
    latest.clear()
    fields = state.scenario_fields()
    _volume_slider(fields)
    try:
        scenario = Scenario(**fields)
    except PlannerError as err:
        widgets.show_error(err)
        link_slot.empty()
        return
    state.write_url(scenario)
    _share_link(link_slot, scenario)
    try:
        result = state.cached_cost_plan(scenario)  # the frontier and alternatives only when their tab is open
    except PlannerError as err:
        widgets.show_error(err)
        return
    latest.update(scenario=scenario, plan=result)
    plan_results.render_headline(result)
    plan_results.render_details(result)


def render() -> None:
    st.title("Plan")
    cat = state.catalog()
    fields = state.scenario_fields()
    _apply_pending(fields)
    for note in state.url_notes():
        st.warning(f"Shared link: {note}", icon=":material/link:")
    _model_inputs(fields, cat)
    _workload_inputs(fields)
    _deployment_inputs(fields, cat)
    _owned_inputs(fields, cat)
    link_slot = _load_and_share()
    toolbar = st.container()  # above the slider, filled once the fragment has planned (full runs only)
    latest = _latest()
    _volume_and_results(link_slot, latest)
    with toolbar:
        _exports(latest)


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
