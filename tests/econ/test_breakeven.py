"""Break-even on the step function, growth, hybrid and the cost-vs-volume invariants."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.econ.breakeven import (
    TierRates,
    VolumeEconomics,
    api_usd_per_month,
    breakeven,
    cost_breakdown,
    growth_outcome,
    hybrid_plan,
    monthly_self_hosted_usd,
    require_breakeven,
    self_hosted_usd_per_month,
    step_breakeven,
    step_edges,
)
from planner.errors import InvalidInputError, NoBreakEvenError

DAYS = 365 / 12


def economics(**kw) -> VolumeEconomics:
    """One 1-GPU replica serves 1 request/s = 86,400 requests/day; $1/GPU-hour -> $730 a replica-month."""
    base = dict(capacity_per_s=1.0, gpus_per_replica=1, design_rate_factor=1.0, hourly_profile=None,
                headroom_frac=0.0, redundancy_replicas=0,
                tiers={"on_demand": TierRates("on_demand", False, {"gpu_rental": 1.0}),
                       "elastic": TierRates("elastic", True, {"gpu_rental": 1.0})},
                fixed_usd_per_month=0.0, input_tokens_mean=1000, output_tokens_mean=500, offline_frac=0.0,
                api_online_usd_per_request=0.0004, api_batch_usd_per_request=0.0002,
                api_price_decline_frac_per_year=0.0)
    base.update(kw)
    return VolumeEconomics(**base)


@pytest.mark.parametrize("c, first, stays", [
    (12, 100 / 12, 25.0),        # thresholds 8.33, 16.67, 25: each step cheaper only at its top
    (15, 100 / 15, 200 / 15),    # thresholds 6.67, 13.33, 20: from 13.33 on for good
    (5, math.nan, math.nan),     # thresholds 20, 40, 60: never cheaper
])
def test_step_breakeven_hand_examples(c, first, stays):
    got = step_breakeven(np.array([0.0, 10, 20, 30]), np.array([100.0, 200, 300]), c)
    assert got[0] == pytest.approx(first, nan_ok=True)
    assert got[1] == pytest.approx(stays, nan_ok=True)


def test_step_breakeven_no_false_crossing():
    # cheaper just below 10 (threshold 9.09), then the second replica makes it dearer to the end of the range
    first, stays = step_breakeven(np.array([0.0, 10, 20]), np.array([100.0, 250]), 11)
    assert first == pytest.approx(100 / 11)
    assert math.isnan(stays)


@pytest.mark.parametrize("edges, costs, c", [
    ([0, 10], [1, 2], 1), ([0, 10, 5], [1, 2], 1), ([0, 10], [1], 0), ([0, 10], [1], math.nan)])
def test_step_breakeven_rejects(edges, costs, c):
    with pytest.raises(InvalidInputError):
        step_breakeven(np.array(edges, dtype=float), np.array(costs, dtype=float), c)


def test_breakeven_worked_example():
    # A replica costs $730/month and covers 86,400 requests/day; the API costs 0.0004 x 365/12 per request/day.
    # Step k is cheaper from k x 60,000 requests/day; it is wholly cheaper once k x 60,000 <= (k-1) x 86,400,
    # i.e. from step 4 on, and step 3 is cheaper from 180,000 to its end: self-hosting stays cheaper from 180,000.
    result = breakeven(economics(), "on_demand")
    assert result.found
    assert result.first_cheaper_requests_per_day == pytest.approx(60_000)
    assert result.requests_per_day == pytest.approx(180_000)
    assert result.tokens_per_month == pytest.approx(180_000 * DAYS * 1500)
    assert require_breakeven(result) == pytest.approx(180_000)


def test_no_breakeven_is_data_and_raises_only_on_request():
    result = breakeven(economics(api_online_usd_per_request=0.0001), "on_demand")
    assert not result.found and math.isnan(result.requests_per_day)
    assert "stays cheaper" in result.note
    with pytest.raises(NoBreakEvenError, match="on_demand"):
        require_breakeven(result)


def test_self_hosted_step_function_values():
    econ = economics(redundancy_replicas=1, fixed_usd_per_month=100)
    costs = self_hosted_usd_per_month(econ, "on_demand", [0, 1, 86_400, 86_401])
    # nothing runs at 0; then 1 + 1 spare replicas; the next request needs a third
    assert list(costs) == pytest.approx([0, 2 * 730 + 100, 2 * 730 + 100, 3 * 730 + 100])
    breakdown = cost_breakdown(econ, "on_demand", 1)
    assert breakdown == pytest.approx({"gpu_rental": 1460, "staff": 100})


def test_elastic_tier_follows_the_profile():
    econ = economics(hourly_profile=tuple([0.5] * 12 + [1.5] * 12))
    # 86,400 requests/day = 1/s: 12 h at 0.5 (1 replica) and 12 h at 1.5 (2 replicas) = 36 replica-hours
    assert self_hosted_usd_per_month(econ, "elastic", 86_400)[0] == pytest.approx(36 * DAYS)
    assert self_hosted_usd_per_month(econ, "on_demand", 86_400)[0] == pytest.approx(730)
    edges = step_edges(econ, "elastic", 200_000)
    assert edges[0] == 0 and edges[-1] == 200_000
    assert 57_600 in edges  # 1.5/s x 57,600 / 86,400 = 1 replica exactly


def test_api_usd_per_month_with_offline_share_and_decline():
    econ = economics(offline_frac=0.5, api_price_decline_frac_per_year=0.5)
    # (0.5 x 0.0004 + 0.5 x 0.0002) x 1,000 requests/day x 365/12 days, halved a year later
    assert api_usd_per_month(econ, 1000)[0] == pytest.approx(0.0003 * 1000 * DAYS)
    assert api_usd_per_month(econ, 1000, month=13)[0] == pytest.approx(0.00015 * 1000 * DAYS)


def test_growth_outcome():
    result = growth_outcome("t", np.array([10.0, 10, 10]), np.array([5.0, 10, 15]))
    assert result.breakeven_month == 2
    assert result.cumulative_saving_usd == pytest.approx(0)
    assert growth_outcome("t", np.array([10.0]), np.array([5.0])).breakeven_month is None


def test_fixed_fleets_never_shrink_with_falling_traffic():
    econ = economics()
    falling = np.array([200_000.0, 100_000, 50_000])
    assert list(monthly_self_hosted_usd(econ, "on_demand", falling)) == pytest.approx([3 * 730] * 3)
    rising_elastic = monthly_self_hosted_usd(econ, "elastic", falling)
    assert list(rising_elastic) == pytest.approx([3 * 730, 2 * 730, 730])


def test_hybrid_worked_example():
    # 1 request/s on average, half the day at 0.5/s and half at 1.5/s; a full fleet needs 2 replicas ($1,460).
    # All-API: 86,400 x 365/12 x 0.0004 = $1,051.2. One replica + API for the 0.5/s above it for 12 h:
    # 21,600 requests/day -> $730 + 21,600 x 365/12 x 0.0004 = $992.8, saving $58.4 against all-API.
    econ = economics(hourly_profile=tuple([0.5] * 12 + [1.5] * 12), design_rate_factor=1.5)
    hybrid = hybrid_plan(econ, "on_demand", 86_400)
    assert hybrid is not None
    assert hybrid.base_serving_replicas == 1
    assert hybrid.total_usd_per_month == pytest.approx(730 + 21_600 * DAYS * 0.0004)
    all_api = 86_400 * DAYS * 0.0004
    assert hybrid.saving_vs_best_pure_usd_per_month == pytest.approx(all_api - hybrid.total_usd_per_month)
    assert hybrid.api_share_of_requests_frac == pytest.approx(0.25)


def test_hybrid_absent_without_profile_or_when_not_cheaper():
    assert hybrid_plan(economics(), "on_demand", 86_400) is None
    cheap_api = economics(hourly_profile=tuple([0.5] * 12 + [1.5] * 12), design_rate_factor=1.5,
                          api_online_usd_per_request=1e-6)
    assert hybrid_plan(cheap_api, "on_demand", 86_400) is None


def test_unknown_tier_and_bad_volumes():
    with pytest.raises(InvalidInputError, match="available: on_demand, elastic"):
        self_hosted_usd_per_month(economics(), "spot", 1)
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(InvalidInputError, match="requests_per_day"):
            self_hosted_usd_per_month(economics(), "on_demand", bad)


volumes = st.floats(0, 5e6, allow_nan=False)
params = dict(capacity=st.floats(0.05, 50), peak=st.floats(1, 4), k=st.integers(0, 2),
              headroom=st.floats(0, 1), price=st.floats(1e-6, 1e-2), bump=st.floats(1.0001, 5))


@settings(max_examples=60, deadline=None)
@given(**params)
def test_higher_api_price_never_moves_breakeven_later(capacity, peak, k, headroom, price, bump):
    econ = economics(capacity_per_s=capacity, design_rate_factor=peak, redundancy_replicas=k, headroom_frac=headroom,
                     api_online_usd_per_request=price, fixed_usd_per_month=50.0)
    dearer = dataclasses.replace(econ, api_online_usd_per_request=price * bump)
    for tier in ("on_demand",):
        low, high = breakeven(econ, tier), breakeven(dearer, tier)
        if low.found:
            assert high.found and high.requests_per_day <= low.requests_per_day * (1 + 1e-9)
        if not math.isnan(low.first_cheaper_requests_per_day):
            assert high.first_cheaper_requests_per_day <= low.first_cheaper_requests_per_day * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(v1=volumes, v2=volumes, capacity=st.floats(0.05, 50), k=st.integers(0, 2), staff=st.floats(0, 1e5))
def test_cost_is_monotone_finite_and_non_negative(v1, v2, capacity, k, staff):
    econ = economics(capacity_per_s=capacity, redundancy_replicas=k, fixed_usd_per_month=staff,
                     hourly_profile=tuple([0.5] * 12 + [1.5] * 12))
    for tier in ("on_demand", "elastic"):
        low, high = self_hosted_usd_per_month(econ, tier, sorted((v1, v2)))
        assert 0 <= low <= high and math.isfinite(high)
        assert api_usd_per_month(econ, v1)[0] >= 0


@settings(max_examples=40, deadline=None)
@given(capacity=st.floats(0.05, 50), peak=st.floats(1, 4), price=st.floats(1e-6, 1e-2))
def test_breakeven_is_a_real_crossing(capacity, peak, price):
    """At the reported volume self-hosting is no dearer than the API, and just below the first one it is dearer."""
    econ = economics(capacity_per_s=capacity, design_rate_factor=peak, api_online_usd_per_request=price)
    result = breakeven(econ, "on_demand")
    if result.found:
        v = result.requests_per_day
        for probe in (v * (1 + 1e-9), v * 1.5, v * 3):
            if probe <= result.searched_up_to_requests_per_day:
                assert self_hosted_usd_per_month(econ, "on_demand", probe)[0] <= \
                    api_usd_per_month(econ, probe)[0] * (1 + 1e-9)
    first = result.first_cheaper_requests_per_day
    if not math.isnan(first) and first > 1:
        below = first * (1 - 1e-6)
        assert self_hosted_usd_per_month(econ, "on_demand", below)[0] > api_usd_per_month(econ, below)[0]
