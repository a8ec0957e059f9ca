"""The Plan page's state: widgets in closed popovers and collapsed expanders keep the scenario's values
after reruns, and every scenario field survives a shared link (URL -> app -> URL)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from planner.scenario import SCENARIO_FIELDS, Scenario
from ui.support import scenario_to_text
from ui.support.scenario_io import SERVER_PATH_FIELDS

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT_S = 60

# One valid, non-default value for every field a link may carry (a new field must be added here).
NON_DEFAULT = {
    "model": "meta-llama/Llama-3.1-8B", "gpu": "H200", "num_gpus_per_replica": 2, "tp": 2, "pp": 1,
    "precision": "fp8", "kv_dtype": "fp8", "engine": "sglang", "profile": "sglang-datacenter", "expert_parallel": True,
    "max_num_seqs": 128, "speculative": "eagle3", "speculative_draft_tokens": 3, "speculative_acceptance_frac": 0.7,
    "quality_policy": "any", "provider_policy": "any", "preset": "rag",
    "requests_per_day": 250_000.0, "tokens_per_month": 3e9, "input_tokens_mean": 1500.0,
    "output_tokens_mean": 250.0, "peak_to_average_ratio": 3.5, "hourly_profile": tuple(float(h + 1) for h in range(24)),
    "monthly_growth_frac": 0.02, "prompt_cache_hit_frac": 0.3, "prompt_cache_write_frac": 0.1, "offline_frac": 0.2,
    "ttft_target_s": 1.5, "tpot_target_s": 0.04, "latency_percentile": 0.99, "mode": "owned",
    "rental_tier": "reserved_1y", "provider": "aws", "autoscale": True, "redundancy_replicas": 2,
    "headroom_frac": 0.25, "gpu_price_usd_per_gpu_hour": 2.5, "spot_interruption_overhead_frac": 0.2,
    "reserved_1y_discount_frac": 0.3, "reserved_3y_discount_frac": 0.5, "gpu_purchase_usd": 30_000.0,
    "gpu_power_w": 650.0, "server_network_capex_frac": 0.4, "amortisation_years": 5.0,
    "cost_of_capital_frac_per_year": 0.07, "residual_value_frac": 0.1, "server_to_gpu_power_ratio": 2.0,
    "power_load_frac": 0.6, "pue": 1.3, "electricity_usd_per_kwh": 0.12, "colocation_usd_per_kw_month": 150.0,
    "software_usd_per_gpu_year": 500.0, "staff_fte": 0.5, "staff_usd_per_fte_year": 200_000.0,
    "api_id": "anthropic.claude-opus-4-1-20250805-v1:0", "api_price_decline_frac_per_year": 0.5,
    "horizon_months": 24, "finetune_runs_per_year": 4.0, "finetune_method": "qlora",
    "finetune_dataset_tokens": 1e8, "finetune_epochs": 2.0, "finetune_seq_len": 2048, "finetune_gpu": "H100-SXM",
    "finetune_num_gpus": 4, "finetune_lora_rank": 32,
}


def _app(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    if params:
        at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def _scenario(at: AppTest) -> dict:
    return dict(at.session_state["_scenario"])


def _scenario_widget_defaults(at: AppTest) -> dict[str, object]:
    """What each scenario widget would show when the browser first mounts it (its proto's default)."""
    out: dict[str, object] = {}
    for w in at.number_input:
        if w.key and w.key.startswith("sc_"):
            out[w.key[3:]] = w.proto.default if w.proto.HasField("default") else None
    for kind in ("selectbox", "radio"):
        for w in getattr(at, kind):
            if w.key and w.key.startswith("sc_"):
                out[w.key[3:]] = w.options[w.proto.default]
    for w in at.toggle:
        if w.key and w.key.startswith("sc_"):
            out[w.key[3:]] = w.proto.default
    return out


def _shown(at: AppTest, field: str) -> object:
    """The current value of a field's widget as the browser shows it (formatted for choices)."""
    for kind in ("number_input", "selectbox", "radio", "toggle"):
        for w in getattr(at, kind):
            if w.key == f"sc_{field}":
                return w.value if kind in ("number_input", "toggle") else w.options[w.index]
    raise KeyError(field)


def test_widgets_mounted_after_a_rerun_show_the_scenario_not_their_minimum() -> None:
    """A widget in a closed popover is mounted by the browser only when opened and then shows its proto's
    default; that default must be the scenario's value (the bug: horizon 1, discounts 0, N+k 0)."""
    at = _app({"horizon_months": "24", "redundancy_replicas": "2", "headroom_frac": "0.25",
               "reserved_1y_discount_frac": "0.3", "mode": "owned"})
    at.run()
    at.run()
    assert not at.exception, at.exception
    defaults = _scenario_widget_defaults(at)
    assert {"horizon_months", "redundancy_replicas", "headroom_frac", "reserved_1y_discount_frac",
            "spot_interruption_overhead_frac", "kv_dtype", "expert_parallel", "pue"} <= set(defaults)
    for field, default in defaults.items():
        assert default == _shown(at, field), (field, default, _shown(at, field))
    assert defaults["horizon_months"] == 24 and defaults["redundancy_replicas"] == 2
    assert defaults["headroom_frac"] == 0.25 and defaults["reserved_1y_discount_frac"] == 0.3


def test_interacting_after_reruns_changes_only_that_field() -> None:
    at = _app()
    at.run()
    before = _scenario(at)
    at.number_input(key="sc_pue").set_value(1.3).run()
    assert not at.exception, at.exception
    after = _scenario(at)
    assert after["pue"] == 1.3
    assert {k: v for k, v in after.items() if k != "pue"} == {k: v for k, v in before.items() if k != "pue"}


def test_every_field_survives_url_to_app_to_url() -> None:
    linkable = [name for name in SCENARIO_FIELDS if name not in SERVER_PATH_FIELDS]
    assert sorted(NON_DEFAULT) == sorted(linkable), set(NON_DEFAULT) ^ set(linkable)
    default = Scenario()
    assert all(getattr(default, k) != v for k, v in NON_DEFAULT.items())
    params = scenario_to_text(Scenario(**NON_DEFAULT))
    assert sorted(params) == sorted(linkable)  # every field differs from its default, so every one is in the link
    at = _app(params)
    at.run()  # a rerun, as after any interaction
    assert not at.exception, at.exception
    assert dict(at.query_params) == {k: [v] for k, v in params.items()} or \
        {k: at.query_params[k] for k in at.query_params} == params
    scenario = _scenario(at)
    for name, value in NON_DEFAULT.items():
        got = scenario[name]
        assert (tuple(got) if name == "hourly_profile" else got) == value, name


def test_url_notes_are_plain_text() -> None:
    at = _app({"requests_per_day": "**bold** [link](http://x.example)", "nonsense_<b>x</b>": "1"})
    notes = [str(w.body) for w in at.warning if "Shared link" in str(w.body)]
    assert len(notes) == 2, notes
    for note in notes:
        for special in "*[]()<>":
            assert all(note[i - 1] == "\\" for i, c in enumerate(note) if c == special), (special, note)


def test_plain_markdown_escapes_every_markup_character() -> None:
    from ui.state import plain_markdown
    assert plain_markdown("a *b* [c](d) <e> :red[f]") == r"a \*b\* \[c\]\(d\) \<e\> \:red\[f\]"
