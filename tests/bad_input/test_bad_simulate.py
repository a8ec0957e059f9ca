"""`simulate` at a load too small for its clock: one clear error naming the field, not a silent TPOT of 0 ms."""

from __future__ import annotations

import pytest
from _hostile import assert_clean_outcome, run_cli

from planner.errors import InvalidInputError
from planner.perf.simulation import MAX_SPAN_S, simulate


@pytest.fixture(autouse=True)
def _empty_price_store(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))


def test_a_near_zero_rate_is_refused_by_the_cli_naming_requests_per_day():
    # 1e-9 requests a day on one instance: 100 arrivals span about 100 / (1e-9 / 86,400 x the peak factor) ~ 4e15 s,
    # where float64 spacing is ~0.5 s and every step time rounds away (before: TPOT p50 printed as 0.000 ms)
    code, out, err = run_cli(["simulate", "--set", "requests_per_day=1e-9", "--requests", "100"])
    assert_clean_outcome(code, err)
    assert code == 2 and "requests_per_day = 1e-09" in err and "span" in err and out == ""


def test_the_simulation_refuses_a_span_its_clock_cannot_resolve():
    step = lambda decodes, prompt_tokens: 0.02  # noqa: E731  (a constant 20 ms step)
    # 100 arrivals at 1e-9 /s: about 1e11 s > MAX_SPAN_S (1e10 s)
    with pytest.raises(InvalidInputError, match=r"rate_per_s = 1e-09"):
        simulate(step, rate_per_s=1e-9, input_tokens=10, output_tokens=4, max_batch=4, token_budget=64,
                 n_requests=100)
    # 100 arrivals at 1e-7 /s: 1e9 s, within the span; each request is alone: TPOT is the 20 ms step exactly
    # (to float64 spacing at ~1e9 s, 1.2e-7 s)
    res = simulate(step, rate_per_s=100 / MAX_SPAN_S * 10, input_tokens=10, output_tokens=4, max_batch=4,
                   token_budget=64, n_requests=100)
    assert res.percentile("tpot", 0.5) == pytest.approx(0.02, abs=1e-6)
