"""Calibrate: fit an efficiency profile to your own `vllm bench serve --save-result` run, and list the profiles.

What `planner calibrate --vllm-bench FILE --gpu G --name N` and `planner profiles` do, in the app: the
upload becomes measured points (planner.fit.profile_store.points_from_vllm_bench), "Calibrate" refits
the catalog profile of that engine and GPU to them (planner.fit.calibration.calibrate_profile; scipy is
imported only then) and shows each point measured, predicted before and after. The profile is kept in
this session only (ui.state), not written to the server's disk, so users of one server never share
profiles; the Plan page's "Efficiency profile" choice names it, and the CSV download keeps a copy.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from planner.data.catalog import Catalog, EfficiencyProfile
from planner.errors import InvalidInputError, PlannerError
from planner.fit.measured import MeasuredPoint
from planner.fit.profile_store import check_profile_name, efficiency_rows, points_from_vllm_bench
from planner.report import write_csv
from ui import state, widgets

NUM_GPUS_CHOICES = [1, 2, 4, 8, 16, 32, 64]
ALL_GPUS = "all GPUs of the replica"
_RESULT = "_calibration_result"  # (profile, rows of the points table) of this session's last calibration
_BENCH_KEY = "bench_upload"
MAX_UPLOAD_BYTES = 1_000_000  # the server's upload limit (.streamlit/config.toml maxUploadSize = 1 MB)


def _points(data: bytes, label: str, inputs: dict[str, Any]) -> list[MeasuredPoint]:
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError(f"{label}: {len(data):,} bytes is over the {MAX_UPLOAD_BYTES:,}-byte upload limit")
    return points_from_vllm_bench(data, model=inputs["model"], gpu=inputs["gpu"], num_gpus=inputs["num_gpus"],
                                  tp=inputs["tp"], precision=inputs["precision"], kv_dtype=inputs["kv_dtype"],
                                  engine=inputs["engine"], label=label[:80])


def _inputs(cat: Catalog) -> dict[str, Any]:
    """The run's setup, which the JSON does not record: GPU, model, GPUs, TP, precision, engine, name."""
    fields = state.scenario_fields()
    gpu_ids, model_ids = cat.gpu_ids, cat.model_ids
    c1, c2 = st.columns(2)
    gpu = c1.selectbox("GPU the benchmark ran on", gpu_ids, key="cal_gpu",
                       index=widgets.index_of(gpu_ids, fields.get("gpu")), format_func=widgets.gpu_label(cat),
                       help="Default: the scenario's GPU. The profile applies to this GPU only.")
    model = c2.selectbox("Model served", model_ids, key="cal_model",
                         index=widgets.index_of(model_ids, fields.get("model")), format_func=widgets.model_label(cat),
                         help="Default: the scenario's model (the JSON's model_id is not read: pick it here).")
    c1, c2, c3, c4 = st.columns(4)
    num_gpus = c1.selectbox("GPUs of the replica", NUM_GPUS_CHOICES, key="cal_num_gpus")
    tp = c2.selectbox("Tensor parallel", [ALL_GPUS, *[n for n in NUM_GPUS_CHOICES if n <= num_gpus]], key="cal_tp")
    precisions, kv_dtypes, engines = list(cat.precisions), list(cat.kv_dtypes), list(cat.engines)
    precision = c3.selectbox("Weight precision", precisions, key="cal_precision",
                             index=widgets.index_of(precisions, "bf16"))
    kv_dtype = c4.selectbox("KV cache dtype", kv_dtypes, key="cal_kv_dtype", index=widgets.index_of(kv_dtypes, "bf16"))
    c1, c2 = st.columns(2)
    engine = c1.selectbox("Engine that produced the file", engines, key="cal_engine",
                          index=widgets.index_of(engines, "vllm"))
    name = c2.text_input("Profile name", key="cal_name", max_chars=64, placeholder="e.g. my-h100-vllm",
                         help="Letters, digits, '-', '_' or '.'; not a shipped profile's name.")
    return {"gpu": gpu, "model": model, "num_gpus": int(num_gpus), "tp": None if tp == ALL_GPUS else int(tp),
            "precision": precision, "kv_dtype": kv_dtype, "engine": engine, "name": name.strip()}


def _calibrate(cat: Catalog, points: list[MeasuredPoint], name: str) -> None:
    """Fit, keep the profile in the session and the points table for display; an error is one st.error line."""
    from planner.fit.calibration import calibrate_profile  # scipy is imported here, on the first calibration

    try:
        check_profile_name(name, reserved=state.reserved_profile_names())
        profile, rows = calibrate_profile(cat, points, name=name)
    except PlannerError as err:
        widgets.show_error(err)
        return
    except (ValueError, ArithmeticError) as err:  # a fit that cannot run on these points, said in one line
        st.error(f"calibration failed on these points: {str(err)[:300]}", icon=":material/block:")
        return
    state.add_session_profile(profile)
    table = [{"point": p.row_id, "metric": p.metric, "measured": p.measured_value, "predicted before": before,
              "predicted after": after, "error before": before / p.measured_value - 1,
              "error after": after / p.measured_value - 1} for p, before, after in rows]
    st.session_state[_RESULT] = (profile, table)


def profile_csv(profile: EfficiencyProfile) -> str:
    """One profile in the data/efficiency.csv schema (what `planner calibrate` saves), formula-safe."""
    return write_csv(efficiency_rows([profile]))


def _show_result() -> None:
    result = st.session_state.get(_RESULT)
    if not result:
        return
    profile, table = result
    st.success(f"Calibrated profile {profile.profile_id!r} ({profile.engine} on {profile.gpu_match}, "
               f"{profile.n_points} points) is kept for this session; choose it on the Plan page under "
               "'Efficiency profile'.", icon=":material/check_circle:")
    pct = st.column_config.NumberColumn(format="percent")
    widgets.table(table, key="cal_points", column_config={
        "measured": st.column_config.NumberColumn(format="%.4g"),
        "predicted before": st.column_config.NumberColumn("predicted before (catalog profile)", format="%.4g"),
        "predicted after": st.column_config.NumberColumn("predicted after (this profile)", format="%.4g"),
        "error before": pct, "error after": pct})
    c1, c2, _ = st.columns([1.2, 1.2, 2])
    if c1.button("Use it in the plan", key="cal_use", type="primary", icon=":material/calculate:"):
        state.queue_scenario_update(profile=profile.profile_id, gpu=profile.gpu_match, engine=profile.engine,
                                    model=st.session_state.get("cal_model"))
        st.switch_page(state.page("plan"))
    c2.download_button("Profile (CSV)", lambda: profile_csv(profile), file_name=f"{profile.profile_id}.csv",
                       mime="text/csv", key="cal_download", icon=":material/download:",
                       help="Keep it: put the file in $PLANNER_PROFILE_DIR to use it with "
                            "`python -m planner plan --profile NAME`.")


def _factors(p: EfficiencyProfile) -> str:
    return (f"MBU {p.mbu_frac:.3f} · MFU decode {p.mfu_decode_frac:.3f} · MFU prefill {p.mfu_prefill_frac:.3f} · "
            f"step overhead {p.step_overhead_ms:.3g} ms")


def profile_rows(session: list[EfficiencyProfile], folder: list[EfficiencyProfile],
                 shipped: list[EfficiencyProfile]) -> list[dict[str, Any]]:
    """The profiles table: this session's, the server folder's, then the shipped ones."""
    out = []
    for origin, profiles in (("this session", session), ("server folder", folder), ("shipped", shipped)):
        for p in profiles:
            out.append({"profile": p.profile_id, "origin": origin, "engine": p.engine,
                        "applies to GPUs": p.gpu_match, "fitted factors": _factors(p), "points": int(p.n_points),
                        "range": f"{p.range_low_factor:.2f}{widgets.EN_DASH}{p.range_high_factor:.2f}x",
                        "fit error (median)": p.fit_mdape_frac})
    return out


def _profiles_table() -> None:
    st.subheader("Efficiency profiles")
    folder, note = state.server_profiles()
    if note:
        st.info(note, icon=":material/folder_off:")
    rows = profile_rows(list(state.session_profiles().values()), list(folder), list(state.shipped_catalog().efficiency))
    widgets.table(rows, key="profiles_table", column_config={
        "fit error (median)": st.column_config.NumberColumn(format="percent"),
        "applies to GPUs": st.column_config.TextColumn(help="A GPU id, generation, category, vendor or * (every GPU)."),
        "range": st.column_config.TextColumn(help="Throughput range factors from the profile's validation error.")})
    st.caption("A profile applies only to its engine and the GPUs it names; the Plan page refuses it elsewhere. "
               "This session's profiles end with the session: download the CSV to keep one.")


def render() -> None:
    st.title("Calibrate")
    st.caption("Measure your own throughput with `vllm bench serve --save-result` and fit the planner's efficiency "
               "factors to it; the plan then uses your measurement instead of the catalog's averages.")
    cat = state.catalog()
    upload = st.file_uploader("vllm bench serve result (JSON)", type=["json"], key=_BENCH_KEY,
                              help="The file `vllm bench serve --save-result` writes (up to 1 MB).")
    inputs = _inputs(cat)
    points: list[MeasuredPoint] = []
    if upload is not None:
        try:
            data = upload.getvalue()
            points = _points(data, upload.name, inputs)
        except PlannerError as err:
            widgets.show_error(err)
            points = []
        else:
            st.caption(f"{upload.name}: {len(points)} measured points ({', '.join(p.metric for p in points)}) at "
                       f"{points[0].input_tokens:,} input / {points[0].output_tokens:,} output tokens per request.")
    ready = bool(points) and bool(inputs["name"])
    if st.button("Calibrate", key="cal_run", type="primary", disabled=not ready,
                 help=None if ready else "Upload a file and name the profile first."):
        _calibrate(cat, points, inputs["name"])
    _show_result()
    _profiles_table()


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
