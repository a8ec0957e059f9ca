"""Tornado swings (planner.econ.sensitivity) on the tiny catalog, where one $2/GPU-hour GPU serves every volume here."""

from __future__ import annotations

import dataclasses
import math

import pytest

from planner.econ.sensitivity import (
    THROUGHPUT_DRIVER,
    base_value,
    headline_outcome,
    held_configuration,
    sensitivity,
    swing_ends,
)
from planner.errors import InvalidInputError, UnreachableTargetError
from planner.plan import plan
from planner.scenario import Scenario

DAYS = 365 / 12
HOURS_PER_MONTH = 730
API_USD_PER_REQUEST = 0.001999  # chat preset: 1,155 in x $1 + 211 out x $4 per Mtok


def tiny(**kw) -> Scenario:
    return Scenario(model="tiny", gpu="TEST-GPU", api_id="test-api", **kw)


def test_swing_ends_clip_to_the_field_bounds():
    assert swing_ends("requests_per_day", 100_000.0, 0.25) == (pytest.approx(75_000.0), pytest.approx(125_000.0))
    # the peak factor is at least 1: 1.2 x 0.5 = 0.6 is clipped up to 1
    assert swing_ends("peak_to_average_ratio", 1.2, 0.5) == (pytest.approx(1.0), pytest.approx(1.8))
    # a latency target must be > 0: 0.04 x (1 - 1) = 0 has no valid value
    assert swing_ends("tpot_target_s", 0.04, 1.0) == (None, pytest.approx(0.08))


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan, math.inf])
def test_swing_frac_is_checked(tiny_catalog, bad):
    p = plan(tiny(), tiny_catalog)
    with pytest.raises(InvalidInputError, match="swing_frac"):
        sensitivity(p, tiny_catalog, swing_frac=bad)


def test_base_values_are_what_the_plan_used(tiny_catalog):
    p = plan(tiny(), tiny_catalog)
    assert base_value(p, tiny_catalog, "requests_per_day") == pytest.approx(100_000.0)
    assert base_value(p, tiny_catalog, "input_tokens_mean") == pytest.approx(1155.0)  # chat preset
    assert base_value(p, tiny_catalog, "gpu_price_usd_per_gpu_hour") == pytest.approx(2.0)  # listed on demand
    assert base_value(p, tiny_catalog, "gpu_purchase_usd") == pytest.approx(10_000.0)  # tiny gpus.csv


def test_rental_price_swing_by_hand(tiny_catalog):
    p = plan(tiny(), tiny_catalog)
    swings = sensitivity(p, tiny_catalog, swing_frac=0.25)
    price = next(s for s in swings if s.driver == "gpu_price_usd_per_gpu_hour")
    # $2 -/+ 25% = $1.5 / $2.5 per GPU-hour for one GPU x 730 h
    assert (price.low_value, price.high_value) == (pytest.approx(1.5), pytest.approx(2.5))
    assert price.monthly_usd_at_low == pytest.approx(1.5 * HOURS_PER_MONTH)
    assert price.monthly_usd_at_high == pytest.approx(2.5 * HOURS_PER_MONTH)
    # break-even: one replica's bill / (API USD per request x 365/12)
    assert price.breakeven_requests_per_day_at_low == pytest.approx(1.5 * HOURS_PER_MONTH
                                                                    / (API_USD_PER_REQUEST * DAYS))
    assert price.breakeven_requests_per_day_at_high == pytest.approx(2.5 * HOURS_PER_MONTH
                                                                     / (API_USD_PER_REQUEST * DAYS))
    # one replica at every volume here: the traffic bar moves neither cost nor break-even
    volume = next(s for s in swings if s.driver == "requests_per_day")
    assert volume.monthly_usd_at_low == pytest.approx(2 * HOURS_PER_MONTH) == volume.monthly_usd_at_high
    # widest first: the price bar ($730 apart) leads; bars that do not move the cost follow
    assert swings[0].driver == "gpu_price_usd_per_gpu_hour"
    assert [s.monthly_usd_spread for s in swings] == sorted((s.monthly_usd_spread for s in swings), reverse=True)


def test_owned_plans_swing_purchase_price_and_electricity(tiny_catalog):
    p = plan(tiny(mode="owned"), tiny_catalog)
    drivers = {s.driver for s in sensitivity(p, tiny_catalog, swing_frac=0.1)}
    assert {"gpu_purchase_usd", "electricity_usd_per_kwh", "throughput"} <= drivers
    assert "gpu_price_usd_per_gpu_hour" not in drivers


def test_an_infeasible_end_is_nan_with_a_note(tiny_catalog):
    def picky(s: Scenario):
        if s.requests_per_day < 100_000:
            raise UnreachableTargetError("latency targets unreachable at this volume")
        return plan(s, tiny_catalog)

    p = plan(tiny(), tiny_catalog)
    volume = next(s for s in sensitivity(p, tiny_catalog, swing_frac=0.5, plan_fn=picky)
                  if s.driver == "requests_per_day")
    assert math.isnan(volume.monthly_usd_at_low) and math.isnan(volume.breakeven_requests_per_day_at_low)
    assert volume.note == "at 50000: latency targets unreachable at this volume"
    assert volume.monthly_usd_at_high == pytest.approx(2 * HOURS_PER_MONTH)


def test_throughput_bar_reads_the_plans_range(tiny_catalog):
    profiles = tuple(dataclasses.replace(prof, range_low_factor=0.5, range_high_factor=1.5)
                     for prof in tiny_catalog.efficiency)
    catalog = dataclasses.replace(tiny_catalog, efficiency=profiles)
    # one configuration at both volumes (the search may otherwise pick another replica at the larger one)
    fixed = dict(peak_to_average_ratio=1.0, num_gpus_per_replica=1, precision="fp8")
    best = plan(tiny(**fixed), catalog).search.best  # pinned: the finer batch limits are searched per volume
    fixed.update(max_num_seqs=best.max_num_seqs, engine=best.engine, kv_dtype=best.kv_dtype, tp=best.layout.tp,
                 pp=best.layout.pp)
    capacity = plan(tiny(**fixed), catalog).capacity_requests_per_s_per_replica
    # 9.99 replicas of flat traffic: ceil(9.99 x capacity / the end's capacity) replicas at each end (see test_plan)
    p = plan(tiny(**fixed, requests_per_day=9.99 * capacity * 86_400), catalog)
    bar = next(s for s in sensitivity(p, catalog, swing_frac=0.1) if s.driver == "throughput")
    assert bar.label == THROUGHPUT_DRIVER
    low_cap, high_cap = p.capacity_requests_per_s_per_replica_low, p.capacity_requests_per_s_per_replica_high
    assert (bar.low_value, bar.high_value) == (pytest.approx(low_cap), pytest.approx(high_cap))
    assert low_cap < 0.6 * capacity and high_cap > 1.3 * capacity  # the 0.5x-1.5x efficiency range moves it
    assert bar.monthly_usd_at_low == pytest.approx(math.ceil(9.99 * capacity / low_cap) * 2 * HOURS_PER_MONTH)
    assert bar.monthly_usd_at_high == pytest.approx(math.ceil(9.99 * capacity / high_cap) * 2 * HOURS_PER_MONTH)
    assert bar.breakeven_requests_per_day_at_low == p.headline.breakeven_requests_per_day_high


def test_headline_outcome_without_api_has_no_breakeven(tiny_catalog):
    p = plan(Scenario(model="tiny", gpu="TEST-GPU"), tiny_catalog)
    monthly, be = headline_outcome(p)
    assert monthly == pytest.approx(2 * HOURS_PER_MONTH) and math.isnan(be)


def test_a_dearer_gpu_never_costs_less(tiny_catalog):
    p = plan(tiny(requests_per_day=5e7), tiny_catalog)
    for s in sensitivity(p, tiny_catalog, swing_frac=0.3):
        if s.driver in ("gpu_price_usd_per_gpu_hour", "requests_per_day", "output_tokens_mean"):
            assert s.monthly_usd_at_high >= s.monthly_usd_at_low


def test_swings_hold_the_plans_engine_and_precision_and_search_the_rest(tiny_catalog):
    p = plan(tiny(), tiny_catalog)
    seen: list[Scenario] = []

    def recording(s: Scenario):
        seen.append(s)
        return plan(s, tiny_catalog)

    held = held_configuration(p)
    # gpu is fixed by the scenario (TEST-GPU), engine and precision are left to the search: those two are pinned
    assert held == {"engine": p.estimate.engine, "precision": p.estimate.precision}
    sensitivity(p, tiny_catalog, swing_frac=0.25, plan_fn=recording)
    assert seen and all((s.engine, s.precision) == (p.estimate.engine, p.estimate.precision) for s in seen)
    assert all(s.num_gpus_per_replica is None and s.kv_dtype is None for s in seen)  # still searched
    seen.clear()
    sensitivity(p, tiny_catalog, swing_frac=0.25, plan_fn=recording, hold=())
    assert seen and all(s.engine is None and s.precision is None for s in seen)


def test_only_axes_the_scenario_leaves_open_are_held(tiny_catalog):
    fixed = plan(tiny(engine="vllm"), tiny_catalog)
    assert "engine" not in held_configuration(fixed)
    auto = plan(Scenario(model="tiny", gpu="auto", api_id="test-api"), tiny_catalog)
    assert held_configuration(auto)["gpu"] == auto.estimate.gpu_id
    with pytest.raises(InvalidInputError, match="hold"):
        held_configuration(fixed, ("layout",))


def test_lean_re_plans_give_the_same_bars_as_full_ones(real_catalog):
    # the default re-plan is plan(..., extras=False) (no frontier, no alternatives); the bars equal those of full
    # re-plans on the default scenario, bit for bit
    p = plan(Scenario(), real_catalog)
    lean = sensitivity(p, real_catalog, swing_frac=0.4)
    full = sensitivity(p, real_catalog, swing_frac=0.4, plan_fn=lambda s: plan(s, real_catalog))
    assert repr(lean) == repr(full) and len(lean) >= 7  # repr: a NaN end (no break-even) compares equal too
