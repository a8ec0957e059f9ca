"""Compare models: architecture, context, languages, license terms and minimum hardware per precision.

Filters: license policy, openness, languages, MoE or dense, and a memory budget for the weights
at one precision. Minimum hardware is the fewest GPUs of a reference kind on which `estimate()`
fits one sequence of the chosen length (ui.support.model_table).
"""

from __future__ import annotations

import streamlit as st

from ui import state, widgets
from ui.support import ModelFilter, filter_models, model_languages

PRECISIONS = ("bf16", "fp8", "int4-awq", "q4_k_m")  # the usual serving choices: native, 8-bit, 4-bit, GGUF 4-bit


def _filters(languages: list[str], openness: list[str]) -> ModelFilter:
    with st.container(border=True):
        st.markdown("**Filters**")
        c1, c2, c3, c4 = st.columns([1.2, 1.2, 1, 1.2])
        commercial = c1.checkbox("Commercial use allowed", key="cmp_commercial",
                                 help="The license permits commercial use and is not research-only.")
        no_mau = c1.checkbox("No monthly-active-user cap", key="cmp_no_mau",
                             help="Excludes licenses such as Llama's 700M MAU clause.")
        osi = c2.checkbox("OSI-approved license only", key="cmp_osi",
                          help="Apache-2.0, MIT and other licenses approved by the Open Source Initiative.")
        no_aup = c2.checkbox("No acceptable-use policy", key="cmp_no_aup",
                             help="Excludes licenses that bind you to a separate use policy.")
        open_sel = c3.multiselect("Openness", openness, key="cmp_openness",
                                  help="open-weight: weights downloadable under a license; open-source: weights, "
                                       "code and data under an OSI license.")
        arch = c3.segmented_control("Architecture", ["dense", "MoE"], key="cmp_arch",
                                    help="Mixture-of-experts models hold all experts in memory but read few per token.")
        langs = c4.multiselect("Languages (all required)", languages, key="cmp_langs",
                               help="ISO 639-1 codes the model card lists as supported.")
        budget_on = c4.toggle("Memory budget", key="cmp_budget_on",
                              help="Keep models whose weights at the chosen precision fit the budget "
                                   "(KV cache and runtime overhead come on top; see the minimum GPU columns).")
        budget_prec, budget_gb = None, None
        if budget_on:
            b1, b2 = c4.columns(2)
            budget_prec = b1.selectbox("Precision", PRECISIONS, key="cmp_budget_prec")
            budget_gb = b2.number_input("Budget (GB)", min_value=1.0, max_value=100_000.0, value=80.0, step=8.0,
                                        key="cmp_budget_gb")
    moe = None if arch is None else arch == "MoE"
    return ModelFilter(commercial_use=commercial, no_mau_limit=no_mau, osi_approved=osi,
                       no_acceptable_use_policy=no_aup, openness=tuple(open_sel), languages=tuple(langs), moe=moe,
                       precision=budget_prec, max_weights_gb=budget_gb)


def _column_config(gpu_id: str) -> dict:
    cc = st.column_config
    config = {
        "name": cc.TextColumn("Model", pinned=True),
        "family": cc.TextColumn("Family"),
        "developer": cc.TextColumn("Developer"),
        "total_params_b": cc.NumberColumn("Total params (B)", format="%.1f",
                                          help="Counted from the config.json (all experts)."),
        "active_params_b": cc.NumberColumn("Active params (B)", format="%.1f", help="Used per token."),
        "moe": cc.CheckboxColumn("MoE"),
        "context_length_tokens": cc.NumberColumn("Context (tokens)", format="localized"),
        "languages_count": cc.NumberColumn("Languages (count)", format="%d"),
        "languages": cc.TextColumn("Languages"),
        "license": cc.TextColumn("License"),
        "restrictions": cc.TextColumn("License restrictions", width="large"),
        "openness": cc.TextColumn("Openness"),
        "native_precision": cc.TextColumn("Native precision"),
        "release_date": cc.TextColumn("Released"),
    }
    for p in PRECISIONS:
        config[f"weights_gb_{p}"] = cc.NumberColumn(f"Weights {p} (GB)", format="%.1f")
        config[f"min_gpus_{p}"] = cc.NumberColumn(f"Min GPUs {p} (count)", format="%d",
                                                  help=f"Fewest {gpu_id} GPUs (1-64) that hold the weights, "
                                                       "the runtime overhead and one sequence of KV cache.")
    return config


def render() -> None:
    st.title("Compare models")
    st.caption("Open-weight models in the catalog: size, context, languages, license terms and the smallest "
               "hardware that holds them. Parameters come from each model's config.json; licenses from "
               "data/licenses.csv.")
    cat = state.shipped_catalog()
    c1, c2, c3 = st.columns(3)
    gpu_ids = cat.gpu_ids
    gpu_id = c1.selectbox("Reference GPU for minimum hardware", gpu_ids, key="cmp_gpu",
                          index=widgets.index_of(gpu_ids, "H100-SXM"), format_func=widgets.gpu_label(cat))
    input_tokens = c2.number_input("Input tokens per request (tokens)", min_value=1, max_value=1_000_000, value=1024,
                                   step=256, key="cmp_in")
    output_tokens = c3.number_input("Output tokens per request (tokens)", min_value=1, max_value=1_000_000,
                                    value=256, step=64, key="cmp_out")
    rows = state.model_table(gpu_id, PRECISIONS, int(input_tokens), int(output_tokens))
    openness = sorted({r["openness"] for r in rows})
    shown = filter_models(rows, _filters(model_languages(cat), openness))
    st.subheader(f"{len(shown)} of {len(rows)} models")
    if not shown:
        st.info("No model meets every filter; relax one.")
        return
    order = ["name", "total_params_b", "active_params_b", "moe", "context_length_tokens"]
    order += [f"min_gpus_{p}" for p in PRECISIONS]
    order += ["license", "restrictions", "openness", "languages_count", "native_precision"]
    order += [f"weights_gb_{p}" for p in PRECISIONS]
    order += ["family", "developer", "languages", "release_date"]
    widgets.table(shown, column_config=_column_config(gpu_id), column_order=order, key="cmp_table", height=700)
    st.caption("Empty minimum-hardware cells: the precision does not run there, or nothing up to 64 GPUs holds it.")

    st.subheader("Details")
    ids = [r["model_id"] for r in shown]
    chosen = st.selectbox("Model", ids, key="cmp_detail", format_func=widgets.model_label(cat))
    row = next(r for r in shown if r["model_id"] == chosen)
    d1, d2 = st.columns([2, 1])
    with d1:
        st.markdown(f"**{row['name']}** by {row['developer']} ({row['family']}, released {row['release_date']})")
        st.markdown(f"**License:** {row['license']} ({row['openness']}). {row['license_summary']}")
        if row["naming_requirement"]:
            st.markdown(f"**Naming or display requirement:** {row['naming_requirement']}")
        if row["strengths"]:
            st.markdown(f"**Strengths:** {row['strengths']}")
        st.markdown(f"[Model card]({row['source_url']})")
    with d2:
        if st.button("Plan with this model", key="cmp_plan", type="primary"):
            state.queue_scenario_update(model=chosen)
            st.switch_page(state.page("plan"))


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
