"""SLO validation: measured serving runs against the queueing model (planner.fit.slo_validation)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from planner.cli import main
from planner.data.catalog import load_catalog
from planner.errors import InvalidInputError
from planner.fit.measured import MeasuredPoint
from planner.fit.slo_validation import (
    SloRow,
    serving_pairs,
    slo_stats,
    summarize_slo,
    validate_slo,
)
from planner.fit.validation import model_row
from planner.perf import evaluator
from planner.perf.estimate import efficiency_of, max_running_sequences
from planner.perf.evaluator import gemm_format_of
from planner.perf.queueing import latency_percentiles, mean_latency_s


def _point(metric: str, value: float, **kw) -> MeasuredPoint:
    base = dict(row_id=f"run-{metric}", split="holdout", model="Qwen/Qwen3-8B", gpu="H100-SXM", num_gpus=1,
                precision="bf16", engine="vllm", scenario="serving", input_tokens=1000, output_tokens=101,
                metric=metric, measured_value=value, concurrency=8, tp=1, source_url="https://example.com/run")
    return MeasuredPoint(**(base | kw))


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _closed(cat, ttft: MeasuredPoint, tpot: MeasuredPoint, c: int) -> tuple[float, float]:
    """The closed-loop model's mean TTFT and TPOT (s) at c clients, as validation predicts the run's rows."""
    out = []
    for p in (ttft, tpot):
        m = model_row(cat, dataclasses.replace(p, concurrency=c))
        out.append(m.predict(efficiency_of(m.setup.profile, gemm_format_of(m.setup.candidate))) / 1000)
    return out[0], out[1]


def test_closed_loop_run_hand_checked(cat):
    # concurrency 8, mean TTFT 200 ms, mean TPOT 20 ms, 101 output tokens: each request is in flight
    # 0.2 + 100 x 0.02 = 2.2 s, so by Little's law the run served 8 / 2.2 = 3.636 requests/s
    ttft, tpot = _point("ttft_ms", 200.0), _point("tpot_ms", 20.0)
    rows, skipped = validate_slo(cat, [ttft, tpot])
    assert not skipped and len(rows) == 1
    r = rows[0]
    assert r.rate_from == "little" and r.measured_rate_per_s == pytest.approx(8 / 2.2)
    assert (r.measured_ttft_s, r.measured_tpot_s) == (pytest.approx(0.2), pytest.approx(0.02))
    assert r.ttft_error_frac == pytest.approx(r.predicted_ttft_s / 0.2 - 1.0)
    # (a) a closed loop is predicted as one (like with like): validation's closed-loop rows at its concurrency
    assert r.model_kind == "closed loop"
    assert (r.predicted_ttft_s, r.predicted_tpot_s) == tuple(pytest.approx(v) for v in _closed(cat, ttft, tpot, 8))
    # (b) the largest concurrency c* whose TTFT and TPOT meet the measured ones, at Little's law's rate
    assert r.predicted_rate_per_s > 0
    best = next(c for c in range(1, 129) if not all(
        v <= m for v, m in zip(_closed(cat, ttft, tpot, c + 1), (0.2, 0.02), strict=True)))
    t, p = _closed(cat, ttft, tpot, best)
    assert t <= 0.2 and p <= 0.02
    assert r.predicted_rate_per_s == pytest.approx(best / (t + 100 * p))


def test_open_loop_rate_and_unpaired_rows(cat):
    ttft = _point("ttft_ms", 150.0, concurrency=None, request_rate_per_s=2.0)
    tpot = _point("tpot_ms", 15.0, concurrency=None, request_rate_per_s=2.0)
    lone = _point("ttft_ms", 150.0, row_id="lone", concurrency=16)  # its run has no TPOT row
    offline = _point("ttft_ms", 150.0, row_id="offline", scenario="offline")
    pairs, left = serving_pairs([ttft, tpot, lone, offline])
    assert pairs == [(ttft, tpot)] and left == [lone]
    rows, skipped = validate_slo(cat, [ttft, tpot, lone])
    assert rows[0].rate_from == "request_rate" and rows[0].measured_rate_per_s == 2.0
    # an open loop is a Poisson stream: (a) the queueing model's mean at its rate (plus the request overhead)
    setup = model_row(cat, ttft).setup
    step = evaluator.step_time_fn(setup.model.arch, [setup.candidate], input_tokens=1000, output_tokens=101)
    kw = dict(input_tokens=1000, output_tokens=101, max_batch=float(max_running_sequences(setup, 1000, 101)),
              token_budget=float(setup.prefill_budget_tokens or 1e12))
    mean_ttft, mean_tpot, _ = mean_latency_s(step, rate_per_s=2.0, **kw)
    overhead = (setup.profile.request_overhead_ms or 0.0) / 1000  # every request's TTFT, outside the GPU steps
    assert rows[0].model_kind == "poisson"
    assert (rows[0].predicted_ttft_s, rows[0].predicted_tpot_s) == (pytest.approx(mean_ttft[0] + overhead),
                                                                    pytest.approx(mean_tpot[0]))
    # (b) at the rate found, the p50 latencies meet the measured ones; 10 % more misses one (unless saturation binds)
    r = rows[0]
    if r.predicted_rate_per_s > 0:
        at = latency_percentiles(step, rate_per_s=r.predicted_rate_per_s, **kw)
        assert at.ttft_p50_s[0] + overhead <= 0.15 * 1.0001 and at.tpot_p50_s[0] <= 0.015 * 1.0001
        if r.bound_by != "saturation":
            over = latency_percentiles(step, rate_per_s=1.1 * r.predicted_rate_per_s, **kw)
            assert over.ttft_p50_s[0] + overhead > 0.15 or over.tpot_p50_s[0] > 0.015 or not over.stable[0]
    assert [u.point.row_id for u in skipped] == ["lone"] and "only one of TTFT and TPOT" in skipped[0].reason


def _row(ttft_err: float, tpot_err: float, rate_err: float, split: str = "fit", engine: str = "vllm") -> SloRow:
    return SloRow("t", "p", split, engine, "m", "g", 1, 4, 2.0, "little", "fixed", 0.1, 0.01, 0.1 * (1 + ttft_err),
                  0.01 * (1 + tpot_err), 0.5, 2.0 * (1 + rate_err), "ttft")


def test_stats_by_hand():
    # TTFT errors +10 %, -20 %, +30 %: median |error| 20 %, median error (bias) +10 %
    # rate errors -50 %, -10 %, +20 %: median |error| 20 %, bias -10 %
    rows = [_row(0.1, 0.0, -0.5), _row(-0.2, 0.05, -0.1, split="holdout"), _row(0.3, -0.1, 0.2, engine="sglang")]
    st = slo_stats(rows)
    assert st.n == 3 and st.beyond_saturation == 0
    assert st.ttft_median_abs_error_frac == pytest.approx(0.2) and st.ttft_bias_frac == pytest.approx(0.1)
    assert st.tpot_median_abs_error_frac == pytest.approx(0.05) and st.tpot_bias_frac == pytest.approx(0.0)
    assert st.rate_median_abs_error_frac == pytest.approx(0.2) and st.rate_bias_frac == pytest.approx(-0.1)
    by = summarize_slo(rows)
    assert set(by) == {"all", "fit", "holdout"} and set(by["all"]) == {"sglang", "vllm", "overall"}
    assert by["holdout"]["overall"].n == 1 and by["fit"]["overall"].n == 2
    # a run the model puts beyond saturation has no latency error; it still counts for the rate
    unstable = SloRow("t", "p", "fit", "vllm", "m", "g", 1, 4, 2.0, "little", "fixed", 0.1, 0.01, math.inf, math.inf,
                      1.2, 1.0, "tpot")
    st2 = slo_stats(rows[:1] + [unstable])
    assert st2.beyond_saturation == 1 and st2.ttft_median_abs_error_frac == pytest.approx(0.1)
    assert st2.rate_median_abs_error_frac == pytest.approx(0.5)
    with pytest.raises(InvalidInputError, match="no serving runs"):
        slo_stats([])


def test_cli_validate_slo_user_csv(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    csv.write_text("model,gpu,num_gpus,precision,engine,scenario,concurrency,input_tokens,output_tokens,metric,"
                   "measured_value\n"
                   "Qwen/Qwen3-8B,H100-SXM,1,bf16,vllm,serving,8,1000,101,ttft_ms,200\n"
                   "Qwen/Qwen3-8B,H100-SXM,1,bf16,vllm,serving,8,1000,101,tpot_ms,20\n")
    assert main(["validate", "--slo", "--data", str(csv), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["runs"]) == 1 and data["runs"][0]["measured_rate_per_s"] == pytest.approx(8 / 2.2)
    assert data["summary"]["holdout"]["overall"]["n"] == 1 and data["percentile"] == 0.5
    assert data["by_run_kind"]["closed loop, fixed lengths"]["n"] == 1
    assert main(["validate", "--slo", "--data", str(csv)]) == 0
    text = capsys.readouterr().out
    assert "SLO-bound throughput" in text and "1 runs predicted" in text
    assert np.isfinite(data["runs"][0]["rate_error_frac"])
