"""Choose a model: planner.advice.advisor.recommend filters the catalog by task, license policy, languages,
context, jurisdiction and hardware, and ranks what is left by published benchmark evidence.

Every verdict carries the data file and source it came from. The chosen model (and the precision
and GPUs the advisor picked) is handed to the Plan page.
"""

from __future__ import annotations

import streamlit as st

from planner.advice.advisor import (
    LICENSE_POLICIES,
    TASK_EVIDENCE,
    Constraints,
    RankedModel,
    Recommendation,
    latency_handover,
)
from planner.errors import PlannerError
from planner.scenario import PRESETS
from ui import state, widgets
from ui.support import model_languages

_VERDICT_ICON = {"pass": ":material/check_circle:", "fail": ":material/cancel:", "caution": ":material/warning:",
                 "info": ":material/info:", "evidence": ":material/bar_chart:"}
_HARDWARE_MODES = ("No hardware constraint", "GPUs I have", "Memory budget")


def _constraints() -> Constraints:
    cat = state.catalog()
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        task = c1.selectbox("Task", list(TASK_EVIDENCE), index=widgets.index_of(list(TASK_EVIDENCE), "general"),
                            key="adv_task", help="Ranks by published benchmarks that evidence this task.")
        policies = list(LICENSE_POLICIES)
        policy = c1.selectbox("License policy", policies, index=widgets.index_of(policies, "commercial"),
                              key="adv_policy", format_func=lambda p: f"{p}: {LICENSE_POLICIES[p][1]}")
        languages = c2.multiselect("Languages (all required, ISO 639-1)", model_languages(cat), key="adv_langs")
        countries = sorted({m.developer_country for m in cat.models.values() if m.developer_country})
        dev_countries = c2.multiselect("Developer jurisdictions accepted (ISO 3166-1)", countries,
                                       key="adv_countries", help="Empty: any jurisdiction.")
        open_source = c2.checkbox("Open-source only (training code and data published)", key="adv_open")
        context_on = c3.toggle("Require a context length", key="adv_ctx_on")
        context = None
        if context_on:
            context = int(c3.number_input("Context per request (tokens, prompt + output)", min_value=2,
                                          max_value=10_000_000, value=32_768, step=4096, key="adv_ctx"))
        mode = c3.radio("Hardware", _HARDWARE_MODES, key="adv_hw", horizontal=True)
        gpu, num_gpus, memory_gb, min_speed = None, 1, None, None
        if mode == _HARDWARE_MODES[1]:
            h1, h2, h3 = st.columns(3)
            gpu_ids = cat.gpu_ids
            gpu = h1.selectbox("GPU", gpu_ids, index=widgets.index_of(gpu_ids, "H100-SXM"), key="adv_gpu",
                               format_func=widgets.gpu_label(cat))
            num_gpus = int(h2.number_input("GPUs (count)", min_value=1, max_value=64, value=1, key="adv_ngpu"))
            if h3.toggle("Minimum speed per user", key="adv_speed_on"):
                min_speed = h3.number_input("Output tokens/s per user (tokens/s)", min_value=1.0, max_value=10_000.0,
                                            value=20.0, step=5.0, key="adv_speed")
        elif mode == _HARDWARE_MODES[2]:
            memory_gb = st.number_input("Accelerator memory (GB, all devices)", min_value=1.0, max_value=100_000.0,
                                        value=80.0, step=8.0, key="adv_mem")
    return Constraints(task=task, license_policy=policy, languages=tuple(languages), context_tokens=context,
                       gpu=gpu, num_gpus=num_gpus, memory_gb=memory_gb, min_output_tokens_per_s_per_user=min_speed,
                       developer_countries=tuple(dev_countries), open_source_only=open_source)


def _rows(models: tuple[RankedModel, ...]) -> list[dict]:
    rows = []
    for m in models:
        fit = m.hardware
        rows.append({
            "rank": m.rank, "name": m.name, "model_id": m.model_id, "task_score_frac": m.task_score_frac,
            "benchmarks": f"{m.benchmarks_scored} of {m.benchmarks_considered}", "license_id": m.license_id,
            "developer_country": m.developer_country,
            "precision": fit.precision if fit else None, "weights_gb": fit.weights_gb if fit else None,
            "speed": (widgets.fmt_range(fit.output_tokens_per_s_per_user, fit.output_tokens_per_s_per_user_low,
                                        fit.output_tokens_per_s_per_user_high, ",.0f")
                      if fit and fit.output_tokens_per_s_per_user is not None else None),
            "cautions": sum(1 for r in m.reasons if r.verdict == "caution"),
            "known": "; ".join(f"{e.benchmark} {e.score:g} ({e.task_category})" for e in m.known_elsewhere) or None,
        })
    return rows


_COLUMNS = {
    "rank": st.column_config.NumberColumn("Rank", format="%d"),
    "name": st.column_config.TextColumn("Model"),
    "model_id": None,
    "task_score_frac": st.column_config.ProgressColumn(
        "Task score", min_value=0.0, max_value=1.0, format="%.2f",
        help="Smoothed mean percentile over the benchmarks that evidence the task (1 = best)."),
    "benchmarks": st.column_config.TextColumn("Benchmarks scored"),
    "license_id": st.column_config.TextColumn("License"),
    "developer_country": st.column_config.TextColumn("Developer country"),
    "precision": st.column_config.TextColumn("Precision picked"),
    "weights_gb": st.column_config.NumberColumn("Weights (GB)", format="%.1f"),
    "speed": st.column_config.TextColumn("Tokens/s per user at batch 1 (range)"),
    "cautions": st.column_config.NumberColumn("Cautions (count)"),
    "known": st.column_config.TextColumn("Known scores on other tasks", width="large",
                                         help="Published scores on benchmarks of other tasks (not ranked)."),
}


def _ranked_table(models: tuple[RankedModel, ...], key: str) -> None:
    """The ranked or unranked models; hardware columns only when a hardware constraint was given."""
    config = dict(_COLUMNS)
    if all(not m.known_elsewhere for m in models):
        config.update(known=None)
    if all(m.hardware is None for m in models):
        config.update(precision=None, weights_gb=None, speed=None)
    elif all(m.hardware.output_tokens_per_s_per_user is None for m in models if m.hardware is not None):
        config.update(speed=None)
    widgets.table(_rows(models), column_config=config, key=key)


def _details(rec: Recommendation) -> None:
    kept = rec.ranked + rec.unranked
    if not kept:
        return
    st.subheader("Why, and hand over to the plan")
    cat = state.catalog()
    chosen = st.selectbox("Model", [m.model_id for m in kept], key="adv_pick", format_func=widgets.model_label(cat))
    model = next(m for m in kept if m.model_id == chosen)
    for reason in model.reasons:
        st.markdown(f"{_VERDICT_ICON.get(reason.verdict, '')} **{reason.constraint}**: {reason.message} "
                    f"([{reason.source_file}]({reason.source_url}), {reason.source_accessed})")
    fit = model.hardware
    update: dict[str, object] = {"model": chosen}
    if fit is not None and fit.mode == "gpu":
        update.update(precision=fit.precision, gpu=fit.gpu_id)
        fields = state.scenario_fields()
        preset = PRESETS.get(str(fields.get("preset")))
        ttft = fields.get("ttft_target_s") or (preset.ttft_target_s if preset else None)
        tpot = fields.get("tpot_target_s") or (preset.tpot_target_s if preset else None)
        handover = latency_handover(fit, ttft, tpot)
        if handover.changed:
            update.update(ttft_target_s=handover.ttft_target_s, tpot_target_s=handover.tpot_target_s)
            st.warning("Latency targets for the plan: " + " ".join(f"{n}." for n in handover.notes),
                       icon=":material/timer:")
        else:
            st.caption("Latency targets for the plan: " + " ".join(f"{n}." for n in handover.notes))
    if st.button("Plan with this model", type="primary", key="adv_plan",
                 help="Opens the Plan page with this model" + (" and the precision and GPU picked here."
                                                                 if len(update) > 1 else ".")):
        state.queue_scenario_update(**update)
        st.switch_page(state.page("plan"))


def render() -> None:
    st.title("Choose a model")
    st.caption("Filters the catalog by your constraints and ranks the rest by published benchmark scores. A model "
               "without a published score for the task is listed as unranked, never as last.")
    constraints = _constraints()
    try:
        rec = state.recommendation(constraints)
    except PlannerError as err:
        widgets.show_error(err)
        return
    st.subheader(f"{len(rec.ranked)} ranked, {len(rec.unranked)} unranked, {len(rec.excluded)} excluded")
    if rec.benchmarks:
        st.caption(f"Benchmarks that rank '{constraints.task}': {', '.join(rec.benchmarks)}.")
    if rec.ranked:
        _ranked_table(rec.ranked, "adv_ranked")
    else:
        st.info("No model with published scores meets every constraint.")
    if rec.unranked:
        st.markdown(f"**Unranked: {len(rec.unranked)} models meet the constraints but have no published score for "
                    f"'{constraints.task}'** (shown with what is known about them, not ranked last)")
        _ranked_table(rec.unranked, "adv_unranked")
    if rec.excluded:
        with st.expander(f"Excluded: {len(rec.excluded)} models, with the failing reason"):
            widgets.table([{"name": m.name, "reason": "; ".join(f"{r.constraint}: {r.message}" for r in m.failing)}
                           for m in rec.excluded], key="adv_excluded",
                          column_config={"name": st.column_config.TextColumn("Model"),
                                         "reason": st.column_config.TextColumn("Why excluded", width="large")})
    _details(rec)


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
