"""Sizing: the operating concurrency under latency targets, replicas, fleets and utilisation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.econ.sizing import (
    autoscaled_fleet,
    capacity_requests_per_s,
    choose_concurrency,
    fixed_fleet,
    gpu_hours_per_month,
    pessimistic_latency_warnings,
    prefill_time_share,
    replicas_for_rate,
)
from planner.errors import InvalidInputError, UnreachableTargetError


def linear_latency(c: int) -> tuple[float, float]:
    """TTFT = 0.1 + 0.002 c s, TPOT = 0.01 + 0.001 c s (both grow with the batch)."""
    return 0.1 + 0.002 * c, 0.01 + 0.001 * c


def test_tpot_target_binds():
    # TPOT <= 0.0505 -> c <= 40; TTFT <= 0.2 -> c <= 50
    choice = choose_concurrency(linear_latency, max_concurrency=500, ttft_target_s=0.2, tpot_target_s=0.0505)
    assert choice.concurrency == 40
    assert choice.bound_by == "tpot_target_s"
    assert choice.tpot_s == pytest.approx(0.05)


def test_ttft_target_binds():
    # TTFT <= 0.151 -> c <= 25 (0.1 + 0.002 x 25 = 0.150) while TPOT allows 40
    choice = choose_concurrency(linear_latency, max_concurrency=500, ttft_target_s=0.151, tpot_target_s=0.05)
    assert (choice.concurrency, choice.bound_by) == (25, "ttft_target_s")


def test_both_targets_bind_at_once():
    # TTFT <= 0.1805 -> c <= 40 and TPOT <= 0.0505 -> c <= 40: at 41 both miss
    choice = choose_concurrency(linear_latency, max_concurrency=500, ttft_target_s=0.1805, tpot_target_s=0.0505)
    assert (choice.concurrency, choice.bound_by) == (40, "tpot_target_s+ttft_target_s")


def test_memory_binds_when_targets_are_loose():
    choice = choose_concurrency(linear_latency, max_concurrency=30, ttft_target_s=10, tpot_target_s=10)
    assert (choice.concurrency, choice.bound_by) == (30, "max_concurrency")


def test_unreachable_at_one_sequence():
    with pytest.raises(UnreachableTargetError, match="TPOT 11.0 ms"):
        choose_concurrency(linear_latency, max_concurrency=30, ttft_target_s=10, tpot_target_s=0.005)


def test_binary_search_is_logarithmic():
    calls = []

    def counted(c):
        calls.append(c)
        return linear_latency(c)
    choose_concurrency(counted, max_concurrency=1024, ttft_target_s=1, tpot_target_s=0.5)
    assert len(calls) <= 2 + math.ceil(math.log2(1024))


@pytest.mark.parametrize("kw", [dict(max_concurrency=0), dict(ttft_target_s=0), dict(tpot_target_s=math.nan),
                                dict(tpot_target_s=-1), dict(ttft_target_s=math.inf)])
def test_choose_concurrency_rejects(kw):
    args = dict(max_concurrency=10, ttft_target_s=1.0, tpot_target_s=0.1)
    args.update(kw)
    with pytest.raises(InvalidInputError):
        choose_concurrency(linear_latency, **args)


def test_capacity_requests_per_s():
    # 2,000 output tokens/s / 200 tokens per request = 10 requests/s
    assert capacity_requests_per_s(2000, 200) == pytest.approx(10)


@pytest.mark.parametrize("rate, headroom, k, expected", [
    (10, 0.0, 0, 3),   # ceil(10 / 4) = 3
    (8, 0.0, 0, 2),    # exactly two replicas' worth stays 2
    (10, 0.2, 0, 3),   # 12 / 4 = 3 exactly, not 4
    (10, 0.2, 1, 4),   # plus one spare
    (0, 0.5, 2, 0),    # no traffic, no fleet
    (0.001, 0.0, 0, 1),
])
def test_replicas_for_rate(rate, headroom, k, expected):
    assert replicas_for_rate(rate, 4, headroom_frac=headroom, redundancy_replicas=k) == expected


@pytest.mark.parametrize("kw", [dict(rate_per_s=-1), dict(rate_per_s=math.nan), dict(capacity_per_s=0),
                                dict(capacity_per_s=math.inf), dict(headroom_frac=-0.1),
                                dict(redundancy_replicas=-1), dict(redundancy_replicas=1.5),
                                dict(redundancy_replicas=True)])
def test_replicas_for_rate_rejects(kw):
    args = dict(rate_per_s=1.0, capacity_per_s=1.0, headroom_frac=0.0, redundancy_replicas=0)
    args.update(kw)
    with pytest.raises(InvalidInputError):
        replicas_for_rate(args.pop("rate_per_s"), args.pop("capacity_per_s"), **args)


def test_fixed_fleet_worked_example():
    # 864,000 requests/day = 10 requests/s; peak x2 = 20; 4 requests/s per replica -> 5 replicas of 2 GPUs
    fleet = fixed_fleet(864_000, 4.0, gpus_per_replica=2, design_rate_factor=2.0, redundancy_replicas=1)
    assert (fleet.serving_replicas, fleet.redundancy_replicas, fleet.total_replicas) == (5, 1, 6)
    assert fleet.total_gpus == 12
    assert fleet.replica_hours_per_day == pytest.approx(144)
    assert fleet.utilisation_avg_frac == pytest.approx(10 / 24)  # 10 served / (6 x 4) paid
    assert fleet.utilisation_peak_frac == pytest.approx(20 / 24)
    # 144 replica-hours x 2 GPUs x 365/12 days = 8,760 GPU-hours
    assert gpu_hours_per_month(fleet) == pytest.approx(8760)


def test_autoscaled_fleet_worked_example():
    # 10 requests/s on average; half the day at 0.5x (5/s -> 2 replicas), half at 1.5x (15/s -> 4 replicas)
    fleet = autoscaled_fleet(864_000, 4.0, gpus_per_replica=1, hourly_rate_factors=[0.5] * 12 + [1.5] * 12)
    assert fleet.replica_hours_per_day == pytest.approx(12 * 2 + 12 * 4)
    assert fleet.total_replicas == 4
    assert fleet.utilisation_avg_frac == pytest.approx(240 / 288)  # 240 requests/s-hours over 72 x 4 paid
    assert fleet.utilisation_peak_frac == pytest.approx(15 / 16)
    assert fleet.autoscaled


def test_empty_fleets():
    assert fixed_fleet(0, 4.0, gpus_per_replica=2, design_rate_factor=2.0, redundancy_replicas=3).total_gpus == 0
    assert autoscaled_fleet(0, 4.0, gpus_per_replica=2, hourly_rate_factors=[1] * 24).replica_hours_per_day == 0


@pytest.mark.parametrize("inp, out, expected", [
    (1000, 100, 1.0),  # prefill 1000 / 10,000 = 0.1 s; whole request 100 / 1,000 = 0.1 s
    (500, 100, 0.5),
    (5000, 100, 1.0),  # clipped
])
def test_prefill_time_share(inp, out, expected):
    assert prefill_time_share(inp, 10_000, out, 1_000) == pytest.approx(expected)


@given(st.floats(0, 1e9), st.floats(0, 1e9), st.floats(0.01, 100), st.floats(1, 5), st.floats(0, 2),
       st.integers(0, 3), st.integers(1, 8))
def test_more_traffic_never_needs_fewer_gpus(v1, v2, capacity, peak, headroom, k, gpus):
    low, high = sorted((v1, v2))
    fixed = [fixed_fleet(v, capacity, gpus_per_replica=gpus, design_rate_factor=peak, headroom_frac=headroom,
                         redundancy_replicas=k) for v in (low, high)]
    assert fixed[0].total_gpus <= fixed[1].total_gpus
    factors = [0.5] * 12 + [1.5] * 12
    scaled = [autoscaled_fleet(v, capacity, gpus_per_replica=gpus, hourly_rate_factors=factors,
                               headroom_frac=headroom, redundancy_replicas=k) for v in (low, high)]
    assert scaled[0].replica_hours_per_day <= scaled[1].replica_hours_per_day
    assert scaled[0].total_gpus <= scaled[1].total_gpus
    for fleet in fixed + scaled:
        assert 0 <= fleet.utilisation_avg_frac <= 1 + 1e-9


def test_pessimistic_latency_warnings_name_each_missed_target():
    # central 0.035 s meets 0.04 s; the slow end 0.05 s does not. TTFT 0.3 s (slow end 0.4 s) meets 0.45 s.
    out = pessimistic_latency_warnings(ttft_s=0.3, ttft_s_high=0.4, ttft_target_s=0.45, tpot_s=0.035,
                                       tpot_s_high=0.05, tpot_target_s=0.04)
    assert out == ["the TPOT target (0.04 s) is met by the central estimate (0.0350 s) but not by its pessimistic "
                   "end (0.0500 s)"]
    both = pessimistic_latency_warnings(ttft_s=0.3, ttft_s_high=0.5, ttft_target_s=0.45, tpot_s=0.035,
                                        tpot_s_high=0.05, tpot_target_s=0.04)
    assert len(both) == 2 and "TTFT target (0.45 s)" in both[1]
    assert pessimistic_latency_warnings(ttft_s=0.3, ttft_s_high=0.45, ttft_target_s=0.45, tpot_s=0.035,
                                        tpot_s_high=0.04, tpot_target_s=0.04) == []  # at the target is met
