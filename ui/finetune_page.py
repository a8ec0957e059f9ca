"""Fine-tune: what one fine-tuning run needs (memory per GPU, by component) and costs (GPU-hours, wall
clock, each rental tier and owned). Every number comes from planner.econ.finetune.finetune()."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from planner.econ.finetune import FinetuneEstimate, FinetuneRequest, finetune
from planner.econ.finetune_memory import METHODS, OPTIMIZERS
from planner.errors import PlannerError
from ui import state, widgets

_DEFAULT_MODEL = "meta-llama/Llama-3.1-8B"
_DEFAULT_GPU = "H100-SXM"
_COMPONENT_LABELS = {"weights": "Base weights", "adapter": "Adapter", "gradients": "Gradients",
                     "optimizer": "Optimizer states", "master_weights": "fp32 master weights",
                     "activations": "Activations", "overhead": "Runtime and FSDP buffers"}


def _breakdown_chart(est: FinetuneEstimate) -> go.Figure:
    parts = est.memory_breakdown_gb_per_gpu
    fig = go.Figure()
    for name, gb in parts.items():
        fig.add_trace(go.Bar(name=_COMPONENT_LABELS[name], x=[gb], y=["per GPU"], orientation="h",
                             hovertemplate=f"{_COMPONENT_LABELS[name]}: %{{x:.2f}} GB<extra></extra>"))
    fig.add_vline(x=est.usable_memory_gb_per_gpu, line_dash="dash",
                  annotation_text=f"usable {est.usable_memory_gb_per_gpu:.1f} GB")
    fig.update_layout(barmode="stack", height=240, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "GB per GPU"}, legend={"orientation": "h", "y": -0.4})
    return fig


def _inputs() -> FinetuneRequest:
    catalog = state.catalog()
    models, gpus = catalog.model_ids, catalog.gpu_ids
    left, right = st.columns(2)
    model = left.selectbox("Model", models, index=widgets.index_of(models, _DEFAULT_MODEL), key="ft_model",
                           format_func=widgets.model_label(catalog))
    gpu = right.selectbox("GPU", gpus, index=widgets.index_of(gpus, _DEFAULT_GPU), key="ft_gpu",
                          format_func=widgets.gpu_label(catalog))
    a, b, c = st.columns(3)
    method = a.segmented_control("Method", list(METHODS), default="lora", key="ft_method", required=True)
    num_gpus = b.number_input("GPUs (FSDP / ZeRO-3 sharded)", min_value=1, max_value=4096, value=1, step=1,
                              key="ft_num_gpus")
    optimizer = c.selectbox("Optimizer", list(OPTIMIZERS), key="ft_optimizer")
    d, e, f, g = st.columns(4)
    dataset = d.number_input("Dataset (million tokens)", min_value=0.001, max_value=1e9, value=100.0,
                             key="ft_dataset_mtok")
    epochs = e.number_input("Epochs", min_value=0.01, max_value=1000.0, value=1.0, key="ft_epochs")
    seq_len = f.number_input("Sequence length (tokens)", min_value=1, max_value=10_000_000, value=2048, step=256,
                             key="ft_seq_len")
    micro_batch = g.number_input("Micro-batch (sequences per GPU)", min_value=1, max_value=4096, value=1, step=1,
                                 key="ft_micro_batch")
    h, i = st.columns(2)
    rank = h.number_input("LoRA rank", min_value=1, max_value=65536, value=16, step=1, key="ft_lora_rank",
                          disabled=method == "full")
    checkpointing = i.toggle("Gradient checkpointing", value=True, key="ft_checkpointing")
    return FinetuneRequest(model=model, gpu=gpu, method=method, dataset_tokens=float(dataset) * 1e6,
                           epochs=float(epochs), num_gpus=int(num_gpus), seq_len_tokens=int(seq_len),
                           micro_batch=int(micro_batch), lora_rank=int(rank), optimizer=optimizer,
                           gradient_checkpointing=bool(checkpointing))


def render() -> None:
    st.title("Fine-tune")
    st.caption("Memory per GPU of a full, LoRA or QLoRA fine-tune under FSDP / ZeRO-3, and its GPU-hours and cost. "
               "Time uses the model-FLOPs utilisation fitted on published measurements (data/finetune_mfu.csv).")
    req = _inputs()
    try:
        est = finetune(state.catalog(), req)
    except PlannerError as err:
        widgets.show_error(err)
        return
    if est.fits:
        st.success(est.fit_message, icon=":material/check_circle:")
    else:
        lines = [est.fit_message.split("; would fit:")[0]]
        if est.suggestions:
            lines += ["Configurations that would fit:", *(f"- {s}" for s in est.suggestions)]
        st.error("\n".join(lines), icon=":material/block:")
    st.plotly_chart(_breakdown_chart(est), key="ft_memory_chart", config={"displaylogo": False})
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Memory per GPU (GB)", f"{est.memory_gb_per_gpu:,.1f}")
    m2.metric("GPU-hours", widgets.fmt_range(est.gpu_hours, est.gpu_hours_low, est.gpu_hours_high, ",.1f"))
    m3.metric("Wall clock (hours)", f"{est.wall_clock_hours:,.2f}")
    m4.metric("MFU (fitted)", f"{est.mfu_frac:.2f}", help=f"class {est.mfu_gpu_class}")
    st.subheader("Cost of the run")
    widgets.table([{"tier": c.tier, "usd_per_gpu_hour": c.usd_per_gpu_hour if c.available else math.nan,
                    "total_usd": c.total_usd, "provider": c.provider, "note": c.note} for c in est.costs.values()],
                  key="ft_costs", column_config={
                      "tier": st.column_config.TextColumn("Tier"),
                      "usd_per_gpu_hour": st.column_config.NumberColumn("USD per GPU-hour", format="%.2f"),
                      "total_usd": st.column_config.NumberColumn("Run cost (USD)", format="%,.2f"),
                      "provider": st.column_config.TextColumn("GPU cloud"),
                      "note": st.column_config.TextColumn("Basis")})
    st.caption(f"{est.tokens_total:,.0f} tokens x {est.flops_per_token:.3g} FLOPs per token = "
               f"{est.flops_total:.3g} FLOPs. Trainable parameters: {est.trainable_params_b:,.3g} B of "
               f"{est.total_params_b:,.1f} B.")
    widgets.show_warnings(est.warnings)
    if not est.fits:
        st.caption("The cost above is what the run would take if it fitted; change the configuration first.")


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
