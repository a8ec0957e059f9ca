"""AppTest for every page of the Streamlit app: default runs raise nothing, inputs change the numbers,
infeasible scenarios and bad uploads show an error message (never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner.data.catalog import load_catalog
from planner.econ.cost_curves import breakeven_chart
from planner.errors import CatalogError, InvalidInputError
from planner.plan import plan
from planner.scenario import Scenario
from ui.plan_results import breakeven_chart_spec
from ui.support import (
    ModelFilter,
    filter_models,
    gpu_prices_from_csv,
    hardware_grid,
    model_row,
    plan_summary,
    scenario_fields_from_text,
    scenario_from_json,
    scenario_to_json,
    scenario_to_text,
)

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT_S = 60
PAGES = ["plan", "advisor", "compare", "hardware", "sensitivity", "prices", "calibrate"]
GPU_PRICE_HEADER = ("gpu_id,provider,pricing,usd_per_gpu_hour,region,instance_type,gpus_per_instance,source_url,"
                    "source_accessed,notes")


def _page_file(name: str) -> str:
    return f"ui/{name}_page.py"


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, at.exception
    return at


def _open(name: str) -> AppTest:
    at = _app()
    if name != "plan":
        at.switch_page(_page_file(name)).run()
    return at


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_runs_without_exception(name: str) -> None:
    at = _open(name)
    assert not at.exception, at.exception
    assert at.title, f"page {name} has no title"


# --- Plan ---------------------------------------------------------------------------------------------------

def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_plan_default_shows_the_headline() -> None:
    at = _app()
    metrics = _metrics(at)
    for label in ("GPUs", "Self-hosted USD/month", "API USD/month", "Self-hosted USD/Mtok", "Break-even (req/day)"):
        assert label in metrics, metrics
    assert not at.error, _texts(at, "error")
    assert at.download_button(key="dl_report") is not None


@pytest.mark.parametrize("tab", ["Cost breakdown", "All tiers", "Capacity and latency", "Monthly"])
def test_every_result_tab_renders(tab: str) -> None:
    at = _app()
    at.session_state["plan_tab"] = tab  # tabs run lazily: only the open one renders
    at.run()
    assert not at.exception, at.exception
    assert at.dataframe, f"tab {tab} shows no table"
    _no_none_or_nan_shown(at)


def test_deploy_tab_offers_the_deployment_files() -> None:
    at = _app()
    at.session_state["plan_tab"] = "Deploy"
    at.run()
    assert not at.exception, at.exception
    keys = {b.key for b in at.get("download_button")}
    # the default plan runs on vLLM: its launch script, the SkyPilot service and the Kubernetes objects
    engines = {"dl_vllm", "dl_sglang", "dl_trtllm", "dl_llama.cpp"}
    assert {"dl_skypilot", "dl_kubernetes"} <= keys and keys & engines, keys
    serve = ("vllm serve", "python -m sglang.launch_server", "trtllm-serve", "llama-server")
    assert any(any(cmd in c.value for cmd in serve) for c in at.code), [c.value[:80] for c in at.code]


def _no_none_or_nan_shown(at: AppTest) -> None:
    """Read-only tables show a missing value as an em dash, editable ones as an empty cell (never "None" or
    "nan"), and no cell holds those words as text."""
    for table in at.dataframe:
        assert table.proto.HasField("placeholder") and table.proto.placeholder in ("\u2014", ""), table.proto.key
        frame = table.value
        cells = {v for col in frame.select_dtypes(include=["object", "string"]) for v in frame[col]
                 if isinstance(v, str)}
        assert not {"None", "nan", "NaN"} & cells


@pytest.mark.parametrize("name", ["hardware", "sensitivity", "prices", "compare", "calibrate"])
def test_no_table_shows_none_or_nan(name: str) -> None:
    at = _open(name)
    if name == "hardware":  # spot: several GPUs have no spot offer, so the price column has gaps
        at.selectbox(key="hw_tier").set_value("spot").run()
        assert not at.exception, at.exception
        prices = next(t.value for t in at.dataframe if "usd_per_gpu_hour" in t.value.columns)["usd_per_gpu_hour"]
        assert prices.isna().any() and prices.notna().any()
    _no_none_or_nan_shown(at)


def test_moving_the_volume_slider_changes_the_numbers() -> None:
    at = _app()
    before = _metrics(at)
    at.select_slider(key="sc_requests_per_day").set_value(3_000_000.0)
    at.run()
    assert not at.exception
    after = _metrics(at)
    assert after["GPUs"] != before["GPUs"]
    assert after["Self-hosted USD/month"] != before["Self-hosted USD/month"]
    assert after["API USD/month"] != before["API USD/month"]


def test_infeasible_scenario_shows_the_engines_message() -> None:
    at = _app()
    at.selectbox(key="sc_model").set_value("deepseek-ai/DeepSeek-V3")
    at.selectbox(key="sc_gpu").set_value("RTX-4090")
    at.selectbox(key="sc_num_gpus_per_replica").set_value(1)
    at.run()
    assert not at.exception
    errors = _texts(at, "error")
    assert any("does not fit" in e for e in errors), errors
    assert not at.metric


def test_unreachable_latency_target_shows_an_error() -> None:
    at = _app()
    at.number_input(key="sc_tpot_target_s").set_value(0.001)
    at.run()
    assert not at.exception
    assert any("unreachable" in e for e in _texts(at, "error")), _texts(at, "error")


def test_shared_link_round_trips_and_clips() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.query_params.update({"model": "llama-3.1-8b", "requests_per_day": "250000", "horizon_months": "999",
                            "request_sizes_csv": "/etc/passwd", "nonsense": "1"})
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sc_model").value == "meta-llama/Llama-3.1-8B"
    assert at.select_slider(key="sc_requests_per_day").value == 250_000.0
    notes = " ".join(_texts(at, "warning")).replace("\\", "")  # the notes are Markdown-escaped (plain text)
    assert "horizon_months=999 adjusted to 120" in notes and "request_sizes_csv" in notes and "nonsense" in notes
    shared = dict(at.query_params)
    assert shared["model"] == "meta-llama/Llama-3.1-8B"
    assert float(shared["requests_per_day"]) == 250_000.0
    assert shared["horizon_months"] == "120"
    assert "request_sizes_csv" not in shared and "nonsense" not in shared


def test_bad_scenario_upload_names_the_field() -> None:
    at = _app()
    at.file_uploader(key="scenario_upload").set_value(
        ("s.json", b'{"model": "meta-llama/Llama-3.1-8B", "pue": 0.2}', "application/json"))
    at.run()
    assert not at.exception
    assert any("pue" in e and "s.json" in e for e in _texts(at, "error")), _texts(at, "error")


def test_scenario_upload_replaces_the_inputs() -> None:
    at = _app()
    at.file_uploader(key="scenario_upload").set_value(
        ("s.json", b'{"model": "qwen/qwen3-8b", "requests_per_day": 5000}', "application/json"))
    at.run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert at.selectbox(key="sc_model").value == "Qwen/Qwen3-8B"
    assert at.select_slider(key="sc_requests_per_day").value == 5000.0


# --- Sensitivity and scenarios --------------------------------------------------------------------------------

def test_sensitivity_shows_saved_scenarios_side_by_side() -> None:
    at = _app()
    at.text_input(key="save_name").set_value("small")
    at.button(key="save_scenario").click()
    at.run()
    at.select_slider(key="sc_requests_per_day").set_value(3_000_000.0)
    at.run()
    at.switch_page(_page_file("sensitivity")).run()
    assert not at.exception, at.exception
    tables = [d.value for d in at.dataframe]
    side_by_side = next(t for t in tables if "quantity" in t.columns)
    assert {"current (Plan page)", "small"} <= set(side_by_side.columns)
    tornado = next(t for t in tables if "driver" in t.columns)
    assert tornado["driver"].str.contains("traffic volume").any()



def test_sensitivity_page_says_what_each_bar_holds_and_searches() -> None:
    at = _app()
    at.switch_page(_page_file("sensitivity")).run()
    assert not at.exception, at.exception
    captions = " ".join(_texts(at, "caption"))
    # the default scenario leaves engine and precision to the search: the bars hold the plan's choice of both
    result = plan(Scenario(), load_catalog())
    assert (f"serving engine {result.estimate.engine}, weight precision {result.estimate.precision} are held at "
            "this plan's choice") in captions, captions
    searched = "GPUs per replica, layout, KV-cache dtype, batch limit, fleet size and GPU cloud are re-optimised"
    assert searched in captions, captions


def test_breakeven_chart_spec_has_every_line_and_the_crossings() -> None:
    result = plan(Scenario(requests_per_day=3_000_000.0), load_catalog())
    data = breakeven_chart(result)
    frame, spec = breakeven_chart_spec(result)
    curves = frame[frame["layer"] == "curve"]
    # one series per priced tier plus the API, each with all of its (positive) points
    assert curves["series"].nunique() == len(data.tiers) + (data.api is not None)
    assert len(curves) == sum(len(c.requests_per_day) for c in data.tiers) + len(data.api.requests_per_day)
    crossings = frame[frame["layer"] == "crossing"]
    assert len(crossings) == len(data.crossovers)
    # only the headline tier's crossing carries its label (no crossing in range: no text column at all)
    labelled = crossings[crossings["text"] != ""] if len(crossings) else crossings
    assert len(labelled) <= 1
    here = frame[frame["layer"] == "here"]
    assert set(here["requests_per_day"]) == {3_000_000.0}
    x_ticks = spec["layer"][0]["encoding"]["x"]["axis"]["values"]
    assert x_ticks[0] <= curves["requests_per_day"].min() and x_ticks[-1] >= curves["requests_per_day"].max()
    assert all(b / a == pytest.approx(10.0) for a, b in zip(x_ticks, x_ticks[1:], strict=False))  # a tick a decade


def test_the_plan_page_draws_the_breakeven_chart_without_plotly() -> None:
    at = _app()
    assert len(at.get("vega_lite_chart")) == 1
    assert not at.get("plotly_chart")  # the first view loads no Plotly script in the browser

# --- Prices ---------------------------------------------------------------------------------------------------

def _gpu_price_csv(*rows: str) -> bytes:
    return ("\n".join([GPU_PRICE_HEADER, *rows]) + "\n").encode()


GOOD_ROW = "H100-SXM,mycloud,on_demand,1.5,eu,box.8x,8,https://example.org/p,2026-11-01,"


def test_bad_gpu_price_upload_names_the_row_and_keeps_prices() -> None:
    at = _open("prices")
    bad = _gpu_price_csv(GOOD_ROW, "H100-SXM,mycloud,on_demand,-2,eu,box.8x,8,https://example.org/p,2026-11-01,")
    at.file_uploader(key="gpu_upload").set_value(("prices.csv", bad, "text/csv"))
    at.run()
    assert not at.exception
    errors = _texts(at, "error")
    assert any("row 3" in e and "usd_per_gpu_hour" in e for e in errors), errors


def test_unknown_gpu_in_upload_is_rejected_with_its_row() -> None:
    at = _open("prices")
    bad = _gpu_price_csv(GOOD_ROW, GOOD_ROW.replace("H100-SXM", "NOT-A-GPU"))
    at.file_uploader(key="gpu_upload").set_value(("prices.csv", bad, "text/csv"))
    at.run()
    assert any("row 3" in e and "gpu_id" in e for e in _texts(at, "error")), _texts(at, "error")


def test_good_gpu_price_upload_replaces_the_session_table() -> None:
    at = _open("prices")
    at.file_uploader(key="gpu_upload").set_value(("prices.csv", _gpu_price_csv(GOOD_ROW), "text/csv"))
    at.run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert any("1 rows in use" in c and "changed in this session" in c for c in _texts(at, "caption"))


def test_uploaded_gpu_prices_are_used_by_the_plan() -> None:
    at = _app()
    before = _metrics(at)["Self-hosted USD/month"]
    at.switch_page(_page_file("prices")).run()
    at.file_uploader(key="gpu_upload").set_value(
        ("p.csv", _gpu_price_csv(GOOD_ROW.replace(",1.5,", ",50,")), "text/csv"))
    at.run()
    at.switch_page(_page_file("plan")).run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert _metrics(at)["Self-hosted USD/month"] != before


def test_invalid_cell_edit_shows_the_row() -> None:
    at = _open("prices")
    at.session_state["gpu_price_editor_0"] = {"edited_rows": {2: {"usd_per_gpu_hour": None}}, "added_rows": [],
                                              "deleted_rows": []}
    at.run()
    errors = _texts(at, "error")
    # the third data row is CSV row 4 (header = row 1)
    assert any("row 4" in e and "usd_per_gpu_hour" in e for e in errors), errors


def test_bad_api_price_upload_names_the_row() -> None:
    at = _open("prices")
    header = ("api_id,provider,model_name,category,catalog_model_id,input_usd_per_mtok,output_usd_per_mtok,"
              "cached_input_usd_per_mtok,cache_write_usd_per_mtok,batch_input_usd_per_mtok,batch_output_usd_per_mtok,"
              "max_input_tokens,source_url,source_accessed,notes")
    bad = "\n".join([header, "x,acme,X,closed,,1,4,,,,,,https://example.org,2026-11-01,",
                      "y,acme,Y,closed,,abc,4,,,,,,https://example.org,2026-11-01,"]).encode()
    at.file_uploader(key="api_upload").set_value(("api.csv", bad, "text/csv"))
    at.run()
    assert any("row 3" in e and "input_usd_per_mtok" in e for e in _texts(at, "error")), _texts(at, "error")


# --- Compare models -------------------------------------------------------------------------------------------

def _subheader_count(at: AppTest) -> str:
    return next(s for s in _texts(at, "subheader") if " of " in s and "models" in s)


def test_compare_filters_reduce_the_list() -> None:
    at = _open("compare")
    before = _subheader_count(at)
    at.checkbox(key="cmp_osi").check()
    at.run()
    after = _subheader_count(at)
    assert not at.exception
    assert before != after, (before, after)


def test_compare_hands_the_model_to_the_plan_page() -> None:
    at = _open("compare")
    model = "meta-llama/Llama-3.1-70B"
    at.selectbox(key="cmp_detail").set_value(model)
    at.run()
    at.button(key="cmp_plan").click()
    at.run()
    assert not at.exception
    assert _texts(at, "title") == ["Plan"]
    assert at.selectbox(key="sc_model").value == model


# --- Hardware fit ---------------------------------------------------------------------------------------------

def test_hardware_fit_infeasible_model_shows_an_error() -> None:
    at = _open("hardware")
    at.selectbox(key="hw_model").set_value("deepseek-ai/DeepSeek-V4-Pro")
    at.multiselect(key="hw_counts").set_value([1])
    at.multiselect(key="hw_cats").set_value(["consumer"])
    at.run()
    assert not at.exception
    assert any("fits none" in e for e in _texts(at, "error")), _texts(at, "error")


def test_hardware_fit_changes_with_the_model() -> None:
    at = _open("hardware")
    first = _texts(at, "caption")
    at.selectbox(key="hw_model").set_value("meta-llama/Llama-3.1-405B")
    at.run()
    assert not at.exception
    assert _texts(at, "caption") != first


# --- Choose a model -------------------------------------------------------------------------------------------

def test_advisor_hands_the_model_to_the_plan_page() -> None:
    at = _open("advisor")
    assert not at.exception
    chosen = at.selectbox(key="adv_pick").value
    at.button(key="adv_plan").click()
    at.run()
    assert not at.exception
    assert _texts(at, "title") == ["Plan"]
    assert at.selectbox(key="sc_model").value == chosen


def test_advisor_impossible_constraints_rank_nothing() -> None:
    at = _open("advisor")
    at.radio(key="adv_hw").set_value("GPUs I have")
    at.run()
    at.number_input(key="adv_ngpu").set_value(1)
    at.selectbox(key="adv_gpu").set_value("RTX-4080")
    at.toggle(key="adv_speed_on").set_value(True)
    at.run()
    at.number_input(key="adv_speed").set_value(10_000.0)
    at.run()
    assert not at.exception
    assert "0 ranked" in _texts(at, "subheader")[0]


# --- ui.support: the app's wiring helpers, without Streamlit -----------------------------------------

def test_scenario_text_round_trip(real_catalog) -> None:
    scenario = Scenario(model="Qwen/Qwen3-8B", requests_per_day=12_345.5, expert_parallel=True,
                        hourly_profile=tuple(range(1, 25)), precision="fp8", mode="owned")
    fields, notes = scenario_fields_from_text(scenario_to_text(scenario), real_catalog)
    assert notes == []
    assert Scenario(**fields) == scenario


def test_scenario_text_clips_numbers_and_refuses_server_paths(real_catalog) -> None:
    fields, notes = scenario_fields_from_text(
        {"pue": "0.2", "requests_per_day": "-5", "request_sizes_csv": "/etc/passwd", "model": "/etc/x.json"},
        real_catalog)
    assert fields == {"pue": 1.0}  # PUE is at least 1 (SCENARIO_FIELDS)
    assert len(notes) == 4 and "server" in notes[2] and "model" in notes[3]


@pytest.mark.parametrize(("body", "match"), [
    (b'{"request_sizes_csv": "/etc/passwd"}', "server"),
    (b'{"model": "/tmp/config.json"}', "model"),
    (b'{"horizon_months": 0}', "horizon_months"),
    (b'[1, 2]', "JSON object"),
    (b'{"model": ', "not valid JSON"),
])
def test_scenario_json_rejects_bad_files(real_catalog, body: bytes, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        scenario_from_json(body, real_catalog, name="s.json")


def test_scenario_json_round_trip(real_catalog) -> None:
    scenario = Scenario(model="meta-llama/Llama-3.1-8B", requests_per_day=5_000.0, tpot_target_s=0.05)
    assert scenario_from_json(scenario_to_json(scenario).encode(), real_catalog) == scenario


def test_gpu_price_upload_checks_the_tier_and_the_gpu(real_catalog) -> None:
    with pytest.raises(CatalogError, match=r"row 2, column 'pricing'"):
        gpu_prices_from_csv(_gpu_price_csv(GOOD_ROW.replace("on_demand", "hourly")), real_catalog)
    prices = gpu_prices_from_csv(_gpu_price_csv(GOOD_ROW), real_catalog)
    assert prices[0].usd_per_gpu_hour == pytest.approx(1.5)


def test_hardware_grid_marks_a_missing_price_as_nan_not_none(real_catalog) -> None:
    # RTX-5090 is priced on demand only: its spot price is missing, shown as an em dash by the table
    rows = hardware_grid(real_catalog, "Qwen/Qwen3-8B", gpu_ids=["RTX-5090"], precisions=["fp8"], gpu_counts=[1],
                         input_tokens=1000, output_tokens=100, reserved_1y_discount_frac=0.3,
                         reserved_3y_discount_frac=0.5, pricing_tier="spot")
    assert rows and all(r["usd_per_gpu_hour"] != r["usd_per_gpu_hour"] for r in rows)  # NaN
    assert all(r["provider"] is None for r in rows)


def test_plan_summary_reads_plan_fields(real_catalog) -> None:
    result = plan(Scenario(model="meta-llama/Llama-3.1-8B", api_id="gpt-5-mini", requests_per_day=3_000_000.0),
                  real_catalog)
    summary = plan_summary(result)
    head = result.headline
    assert summary["self_hosted_usd_per_mtok_low"] == head.blended_usd_per_mtok_low
    assert summary["api_usd_per_mtok"] == result.api.blended_usd_per_mtok
    assert summary["provider"] == head.provider


def test_model_filter_needs_every_language(real_catalog) -> None:
    rows = [model_row(real_catalog, m) for m in real_catalog.models.values()]
    both = filter_models(rows, ModelFilter(languages=("de", "th")))
    assert both and all({"de", "th"} <= set(r["languages"].split(", ")) for r in both)
    assert len(filter_models(rows, ModelFilter(osi_approved=True))) < len(rows)


def test_typed_volume_moves_the_slider_and_the_plan():
    from ui import widgets

    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception, at.exception
    box = at.number_input(key="requests_per_day_box")
    box.set_value(250_000.0).run()
    assert not at.exception, at.exception
    slider = at.select_slider(key=widgets.widget_key("requests_per_day"))
    assert slider.value == 250_000.0
    assert at.number_input(key="requests_per_day_box").value is None  # emptied: the slider shows the volume
