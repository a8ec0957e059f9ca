"""Workload: request sizes, profiles, token volumes, design rate and preset resolution (hand-derived values)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.econ.workload import (
    PRESET_SCHEMA,
    Workload,
    design_rate_factor,
    hourly_rate_factors,
    load_presets,
    monthly_tokens,
    normalised_profile,
    preset,
    request_sizes,
    request_sizes_from_csv,
    requests_per_day_at_month,
    requests_per_day_from_tokens_per_month,
    resolve_workload,
)
from planner.errors import CatalogError, InvalidInputError, UnknownNameError

BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1.0]


def test_request_sizes_mean_and_percentiles():
    sizes = request_sizes([100, 200, 300, 400], [10, 20, 30, 40])
    assert sizes.n_requests == 4
    assert sizes.input_tokens_mean == pytest.approx(250)
    assert sizes.output_tokens_mean == pytest.approx(25)
    assert sizes.input_tokens_p50 == pytest.approx(250)
    # numpy's linear percentile: position 0.9 x 3 = 2.7 -> 300 + 0.7 x 100 = 370
    assert sizes.input_tokens_p90 == pytest.approx(370)
    # contexts 110, 220, 330, 440: p99 at 2.97 -> 330 + 0.97 x 110 = 436.7
    assert sizes.context_tokens_p99 == pytest.approx(436.7)


def test_request_sizes_from_csv_bytes_ignores_extra_columns():
    data = b"input_tokens,output_tokens,user\n100,10,alice\n300,30,bob\n"
    sizes = request_sizes_from_csv(data, name="upload.csv")
    assert sizes.input_tokens_mean == pytest.approx(200)
    assert sizes.output_tokens_mean == pytest.approx(20)


def test_request_sizes_from_csv_path(tmp_path):
    path = tmp_path / "sizes.csv"
    path.write_text("input_tokens,output_tokens\n1000,100\n")
    assert request_sizes_from_csv(path).input_tokens_mean == pytest.approx(1000)


@pytest.mark.parametrize("data, match", [
    (b"input_tokens,output_tokens\n100,abc\n", "row 2.*output_tokens"),
    (b"input_tokens,output_tokens\n100,0\n", "output_tokens"),
    (b"input_tokens\n100\n", "missing column"),
    (b"input_tokens,output_tokens\n", "no data rows"),
    (b"", "empty"),
    (b"\xff\xfe", "UTF-8"),
])
def test_request_sizes_from_csv_bad_files(data, match):
    with pytest.raises(InvalidInputError, match=match):
        request_sizes_from_csv(data, name="upload.csv")


@pytest.mark.parametrize("inputs, outputs", [([], []), ([1, 2], [1]), ([math.nan], [1]), ([0], [1]), ([1], [-1])])
def test_request_sizes_rejects_bad_lists(inputs, outputs):
    with pytest.raises(InvalidInputError):
        request_sizes(inputs, outputs)


def test_normalised_profile_scales_to_mean_one():
    # mean of 12 x 1 and 12 x 3 is 2
    assert normalised_profile([1] * 12 + [3] * 12) == pytest.approx(tuple([0.5] * 12 + [1.5] * 12))


@pytest.mark.parametrize("profile, match", [
    ([1] * 23, "24 values"), ([1] * 23 + [-1], r"hourly_profile\[23\]"), ([1] * 23 + [math.nan], "finite"),
    ([0] * 24, "some traffic"), ([1] * 23 + [math.inf], "finite"), ([1] * 23 + [True], "finite"),
])
def test_normalised_profile_rejects(profile, match):
    with pytest.raises(InvalidInputError, match=match):
        normalised_profile(profile)


def test_requests_per_day_from_tokens_per_month():
    # 1e9 tokens / (800 + 200) tokens per request / (365 / 12) days = 32,876.7 requests/day
    assert requests_per_day_from_tokens_per_month(1e9, 800, 200) == pytest.approx(32_876.712, rel=1e-6)


def test_monthly_tokens():
    # 1,000 requests/day x 365/12 days = 30,416.67 requests/month
    inp, out = monthly_tokens(1000, 1000, 100)
    assert inp == pytest.approx(30_416_666.67, rel=1e-9)
    assert out == pytest.approx(3_041_666.667, rel=1e-9)


@pytest.mark.parametrize("peak, offline, expected", [
    (2.0, 0.0, 2.0),  # all online: size for the peak
    (2.0, 0.5, 1.0),  # half of the peak is online; the day's average (1) dominates
    (3.0, 0.5, 1.5),
    (1.5, 0.9, 1.0),
    (1.0, 1.0, 1.0),  # all offline: the average
])
def test_design_rate_factor(peak, offline, expected):
    assert design_rate_factor(peak, offline) == pytest.approx(expected)


@pytest.mark.parametrize("offline, expected", [
    (0.0, [0.5] * 12 + [1.5] * 12),
    # online 0.45 / 1.35; 0.1 x 24 = 2.4 average-hours of batch work lift the 12 quiet hours to 0.65
    (0.1, [0.65] * 12 + [1.35] * 12),
    # online 0.25 / 0.75; 12 average-hours of batch work level the whole day at 1
    (0.5, [1.0] * 24),
    (1.0, [1.0] * 24),
])
def test_hourly_rate_factors_fill_quiet_hours_first(offline, expected):
    factors = hourly_rate_factors([0.5] * 12 + [1.5] * 12, offline)
    assert list(factors) == pytest.approx(expected)
    assert factors.mean() == pytest.approx(1.0)


@given(st.lists(st.floats(0, 10), min_size=24, max_size=24).filter(lambda v: sum(v) > 1e-9), st.floats(0, 1))
def test_hourly_factors_agree_with_the_fixed_design_rate(profile, offline):
    shape = normalised_profile(profile)
    factors = hourly_rate_factors(shape, offline)
    assert factors.mean() == pytest.approx(1.0)
    assert factors.max() == pytest.approx(design_rate_factor(max(shape), offline))


def test_requests_per_day_at_month_compounds():
    # 1,000 x 1.1^2 = 1,210 in the third month
    assert requests_per_day_at_month(1000, 0.1, 3) == pytest.approx(1210)
    assert requests_per_day_at_month(1000, -0.5, 2) == pytest.approx(500)
    with pytest.raises(InvalidInputError, match="month"):
        requests_per_day_at_month(1000, 0.1, 0)


def _workload(**kw):
    base = dict(requests_per_day=1000.0, input_tokens_mean=100.0, output_tokens_mean=10.0, peak_to_average_ratio=2.0,
                hourly_profile=None, monthly_growth_frac=0.0, prompt_cache_hit_frac=0.0, prompt_cache_write_frac=0.0,
                offline_frac=0.0)
    base.update(kw)
    return Workload(**base)


@pytest.mark.parametrize("field", ["requests_per_day", "input_tokens_mean", "output_tokens_mean",
                                   "peak_to_average_ratio", "prompt_cache_hit_frac", "offline_frac"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_workload_rejects_bad_numbers(field, value):
    with pytest.raises(InvalidInputError, match=field):
        _workload(**{field: value})


@pytest.mark.parametrize("kw, match", [
    (dict(input_tokens_mean=0.0), "input_tokens_mean"), (dict(peak_to_average_ratio=0.5), "peak_to_average"),
    (dict(prompt_cache_hit_frac=0.7, prompt_cache_write_frac=0.4), "<= 1"), (dict(offline_frac=1.5), "offline"),
    (dict(monthly_growth_frac=-1.0), "monthly_growth"), (dict(monthly_growth_frac=math.nan), "monthly_growth"),
])
def test_workload_rejects(kw, match):
    with pytest.raises(InvalidInputError, match=match):
        _workload(**kw)


def test_real_presets_load_with_sources():
    presets = load_presets()
    assert set(presets) == {"chat", "rag", "code_completion", "coding_agent", "batch_summarisation", "reasoning"}
    chat = presets["chat"]
    assert (chat.input_tokens_mean, chat.output_tokens_mean) == (1155, 211)  # Azure 2023 conversation means
    assert (chat.ttft_target_s, chat.tpot_target_s) == (0.45, 0.04)  # MLPerf llama2-70b interactive
    assert all(p.source_url.startswith("https://") and p.slo_source_url.startswith("https://")
               for p in presets.values())
    assert preset(presets, "CHAT") is chat
    with pytest.raises(UnknownNameError, match="known: .*chat"):
        preset(presets, "chatbot")


@pytest.mark.parametrize("column, value, problem", [
    ("offline_frac", "1.5", "must be in"), ("peak_to_average_ratio", "0.5", ">= 1"),
    ("ttft_target_s", "0", "> 0"), ("source_url", "ftp://x", "http"),
])
def test_bad_preset_file(tmp_path, column, value, problem):
    header = list(PRESET_SCHEMA)
    row = {"preset_id": "x", "name": "X", "input_tokens_mean": "1", "output_tokens_mean": "1",
           "peak_to_average_ratio": "2", "ttft_target_s": "1", "tpot_target_s": "0.1", "offline_frac": "0",
           "prompt_cache_hit_frac": "0", "source_url": "https://a", "slo_source_url": "https://b",
           "traffic_source_url": "https://c", "source_accessed": "2026-11-29", "notes": ""}
    row[column] = value
    path = tmp_path / "workload_presets.csv"
    path.write_text(",".join(header) + "\n" + ",".join(row[h] for h in header) + "\n")
    with pytest.raises(CatalogError, match=problem):
        load_presets(path)


def _resolve(**kw):
    args = dict(requests_per_day=1000.0, tokens_per_month=None, input_tokens_mean=None, output_tokens_mean=None,
                peak_to_average_ratio=None, hourly_profile=None, monthly_growth_frac=0.0, prompt_cache_hit_frac=None,
                prompt_cache_write_frac=0.0, offline_frac=None)
    args.update(kw)
    warnings: list[str] = []
    w, sources = resolve_workload(load_presets()["chat"], kw.pop("sizes", None), warnings=warnings,
                                  **{k: v for k, v in args.items() if k != "sizes"})
    return w, sources, warnings


def test_resolve_workload_takes_preset_values():
    w, sources, _ = _resolve()
    assert (w.input_tokens_mean, w.output_tokens_mean, w.peak_to_average_ratio) == (1155, 211, 2.06)
    assert "AzurePublicDataset" in sources["input_tokens_mean"]


def test_resolve_workload_precedence_explicit_then_csv_then_preset():
    sizes = request_sizes([500, 700], [50, 70])
    w, sources, warnings = _resolve(sizes=sizes, input_tokens_mean=900.0)
    assert w.input_tokens_mean == 900  # explicit wins
    assert w.output_tokens_mean == pytest.approx(60)  # CSV mean over the preset
    assert sources["output_tokens_mean"] == "request sizes CSV"
    assert any("not used" in m for m in warnings)


def test_resolve_workload_tokens_per_month_and_profile():
    # 1,366 tokens per chat request: 1e9 / 1,366 / (365/12) = 24,067.7 requests/day
    w, sources, warnings = _resolve(tokens_per_month=1e9, hourly_profile=[1] * 12 + [3] * 12,
                                    peak_to_average_ratio=5.0)
    assert w.requests_per_day == pytest.approx(1e9 / 1366 / (365 / 12))
    assert w.peak_to_average_ratio == pytest.approx(1.5)  # the profile's max over its mean
    assert any("ignored" in m for m in warnings)


@given(st.floats(1, 1e9), st.floats(1, 1e5), st.floats(1, 1e5))
def test_tokens_round_trip(requests_per_day, inp, out):
    tokens_in, tokens_out = monthly_tokens(requests_per_day, inp, out)
    assert requests_per_day_from_tokens_per_month(tokens_in + tokens_out, inp, out) == pytest.approx(requests_per_day)
