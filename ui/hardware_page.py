"""Hardware fit: for one model, which GPU x count x precision combinations fit, how fast, at what cost.

Every cell is the vectorised sweep's max-throughput point (the largest batch whose KV cache fits);
speeds carry the calibrated range of the efficiency profile; $/Mtok is the rental price over one
busy replica's output (planner.perf.hardware_fit, through ui.support.hardware_grid).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from planner.econ.costs import RENTAL_TIERS
from planner.perf.estimate import EstimateRequest
from planner.scenario import PRESETS
from ui import state, widgets
from ui.support import estimate_or_reason

DEFAULT_PRECISIONS = ["bf16", "fp8", "int4-awq"]
GPU_COUNTS = [1, 2, 4, 8]
COUNT_CHOICES = [1, 2, 4, 8, 16, 32, 64]


def _heatmap(fit: pd.DataFrame, value: str, label: str, fmt: str, gpu_order: list[str],
             col_order: list[str], reversescale: bool) -> go.Figure:
    grid = fit.pivot(index="gpu_id", columns="config", values=value).reindex(index=gpu_order, columns=col_order)
    text = grid.map(lambda v: "" if pd.isna(v) else format(v, fmt))
    fig = go.Figure(go.Heatmap(
        z=grid.values, x=col_order, y=gpu_order, text=text.values, texttemplate="%{text}",
        colorscale="Viridis", reversescale=reversescale, colorbar={"title": {"text": label, "side": "right"}},
        hoverongaps=False, hovertemplate="%{y} · %{x}<br>" + label + ": %{text}<extra></extra>", xgap=1, ygap=1))
    fig.update_layout(height=max(320, 24 * len(gpu_order) + 130), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis={"title": "precision x GPUs per replica", "side": "top"},
                      yaxis={"title": None, "autorange": "reversed"})
    return fig


def _default_tokens(field: str) -> int:
    fields = state.scenario_fields()
    value = fields.get(field)
    if value is None:
        value = getattr(PRESETS[fields["preset"]], field)
    return max(1, int(round(value)))


_METRICS = {
    "USD per million output tokens at full load": ("usd_per_mtok_full_load", ",.2f", True),
    "Output tokens/s per replica": ("output_tokens_per_s", ",.0f", False),
    "Max concurrency (sequences)": ("max_concurrency", ",.0f", False),
    "Output tokens/s per user": ("output_tokens_per_s_per_user", ",.1f", False),
}
_TABLE_ORDER = ["gpu_id", "precision", "num_gpus", "engine", "tp", "pp", "output_tokens_per_s",
                "output_tokens_per_s_low", "output_tokens_per_s_high", "usd_per_gpu_hour", "provider",
                "usd_per_mtok_full_load",
                "max_concurrency", "output_tokens_per_s_per_user", "ttft_s", "tpot_s", "weights_gb_per_gpu",
                "efficiency_profile"]


def _table_config() -> dict:
    cc = st.column_config
    return {
        "gpu_id": cc.TextColumn("GPU"), "precision": cc.TextColumn("Precision"),
        "num_gpus": cc.NumberColumn("GPUs (count)"), "engine": cc.TextColumn("Engine"),
        "tp": cc.NumberColumn("TP"), "pp": cc.NumberColumn("PP"),
        "output_tokens_per_s": cc.NumberColumn("Output (tokens/s)", format="%,.0f"),
        "output_tokens_per_s_low": cc.NumberColumn("low (tokens/s)", format="%.0f"),
        "output_tokens_per_s_high": cc.NumberColumn("high (tokens/s)", format="%.0f"),
        "usd_per_gpu_hour": cc.NumberColumn("Price (USD per GPU-hour)", format="%.2f"),
        "provider": cc.TextColumn("GPU cloud"),
        "usd_per_mtok_full_load": cc.NumberColumn("Full-load cost (USD/Mtok out)", format="%.3f"),
        "max_concurrency": cc.NumberColumn("Max concurrency (sequences)"),
        "output_tokens_per_s_per_user": cc.NumberColumn("Per user (tokens/s)", format="%.1f"),
        "ttft_s": cc.NumberColumn("TTFT (s)", format="%.3f"),
        "tpot_s": cc.NumberColumn("TPOT (s)", format="%.4f"),
        "weights_gb_per_gpu": cc.NumberColumn("Weights per GPU (GB)", format="%.1f"),
        "efficiency_profile": cc.TextColumn("Efficiency profile"),
    }


def _nothing_fits(model_id: str, gpu_ids: list[str], precision: str, count: int, tokens: tuple[int, int]) -> None:
    """The engine's own reason for the largest combination asked for (with its suggestions)."""
    req = EstimateRequest(model=model_id, gpu=gpu_ids[0], num_gpus=count, precision=precision,
                          input_tokens=tokens[0], output_tokens=tokens[1])
    reason = estimate_or_reason(state.catalog(), req)
    detail = reason if isinstance(reason, str) else ""
    st.error(f"{model_id} fits none of these combinations. {detail}", icon=":material/block:")


def render() -> None:
    st.title("Hardware fit")
    st.caption("Which GPUs, counts and precisions hold one model, and what one replica delivers at the largest "
               "batch that fits in memory. Empty cells do not fit, or the engine cannot run that precision there. "
               "Latency targets are applied on the Plan page.")
    cat = state.catalog()
    c1, c2, c3 = st.columns([2, 1, 1])
    model_ids = cat.model_ids
    model_id = c1.selectbox("Model", model_ids, key="hw_model", format_func=widgets.model_label(cat),
                            index=widgets.index_of(model_ids, state.current_model_id()))
    input_tokens = c2.number_input("Input tokens per request (tokens)", min_value=1, max_value=1_000_000,
                                   value=_default_tokens("input_tokens_mean"), step=256, key="hw_in")
    output_tokens = c3.number_input("Output tokens per request (tokens)", min_value=1, max_value=1_000_000,
                                    value=_default_tokens("output_tokens_mean"), step=64, key="hw_out")
    c4, c5, c6, c7 = st.columns([2, 1, 1, 1])
    precisions = c4.multiselect("Precisions", list(cat.precisions), default=DEFAULT_PRECISIONS, key="hw_prec",
                                help="Weight formats; GGUF formats (q*) run on llama.cpp, the rest on vLLM.")
    counts = c5.multiselect("GPUs per replica (count)", COUNT_CHOICES, default=GPU_COUNTS, key="hw_counts")
    categories = sorted({g.category for g in cat.gpus.values()})
    chosen_cats = c6.multiselect("GPU categories", categories, default=[c for c in categories if c != "apple"],
                                 key="hw_cats")
    tier = c7.selectbox("Price tier for USD/Mtok", list(RENTAL_TIERS), key="hw_tier",
                        format_func=lambda t: t.replace("_", " "),
                        help="The tier's cheapest offer across providers (see Prices); reserved tiers "
                             "without a listed offer use the cheapest on-demand offer less the scenario's "
                             "discount.")
    gpu_ids = [g.gpu_id for g in cat.gpus.values() if g.category in chosen_cats]
    if not (precisions and counts and gpu_ids):
        st.info("Pick at least one precision, GPU count and GPU category.")
        return
    counts = sorted(counts)
    rows = state.hardware_grid(model_id, tuple(gpu_ids), tuple(precisions), tuple(counts), int(input_tokens),
                               int(output_tokens), tier)
    frame = pd.DataFrame(rows)
    fit = frame[frame["fits"]].copy() if not frame.empty else frame
    if fit.empty:
        _nothing_fits(model_id, gpu_ids, precisions[-1], counts[-1], (int(input_tokens), int(output_tokens)))
        return
    fit["config"] = fit["precision"] + " x " + fit["num_gpus"].astype(str)
    col_order = [f"{p} x {n}" for p in precisions for n in counts]
    gpu_order = [g for g in gpu_ids if g in set(fit["gpu_id"])]
    metric = st.segmented_control("Heat map shows", list(_METRICS), default=list(_METRICS)[1], key="hw_metric",
                                  required=True)
    value, fmt, reverse = _METRICS[metric]
    st.plotly_chart(_heatmap(fit, value, metric, fmt, gpu_order, col_order, reverse), key="hw_heatmap",
                    config={"displaylogo": False})
    st.caption(f"{len(fit):,} of {len(frame):,} combinations fit. Output tokens/s is one replica at its "
               "max-throughput batch; the range in the table is the efficiency profile's calibrated error. "
               "Full-load cost assumes the replica is busy every hour; a real fleet idles off-peak. "
               f"{widgets.EM_DASH} in the table: no listed price for this GPU at the chosen tier.")
    st.subheader("Configurations that fit")
    widgets.table(fit.sort_values("output_tokens_per_s", ascending=False), key="hw_table", height=420,
                  column_order=_TABLE_ORDER, column_config=_table_config())


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
