"""plan(): wiring checks on the tiny catalog (hand-derivable prices) and feasibility errors on the real one."""

from __future__ import annotations

import dataclasses
import datetime
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.data.catalog import GpuPrice
from planner.econ.costs import ALL_TIERS
from planner.econ.workload import request_sizes, request_sizes_from_csv
from planner.errors import DoesNotFitError, InvalidInputError, UnreachableTargetError
from planner.perf import evaluator
from planner.perf.queueing import saturation_rate_per_s
from planner.plan import plan
from planner.scenario import Scenario

DAYS = 365 / 12
HOURS_PER_MONTH = 730


def tiny(**kw) -> Scenario:
    return Scenario(model="tiny", gpu="TEST-GPU", api_id="test-api", **kw)


def test_tiny_plan_prices_by_hand(tiny_catalog):
    p = plan(tiny(), tiny_catalog)
    assert p.headline_tier == "on_demand"
    c = p.costs["on_demand"]
    # one 1-GPU replica at the listed $2/GPU-hour for 730 hours
    assert c.fleet.total_gpus == 1
    assert c.monthly_usd == pytest.approx(2 * HOURS_PER_MONTH)
    # spot: $1/GPU-hour plus the 10% interruption overhead of cost_defaults.csv
    assert p.costs["spot"].monthly_usd == pytest.approx(1.1 * HOURS_PER_MONTH)
    # no reserved price listed: on-demand less the sourced discount
    assert p.costs["reserved_1y"].usd_per_gpu_hour == pytest.approx(2 * (1 - 0.3713))
    assert p.costs["reserved_1y"].price_basis == "on-demand less reserved discount"
    # API: chat preset 1,155 in at $1 + 211 out at $4 per Mtok = $0.001999 a request
    assert p.api.usd_per_request == pytest.approx(0.001999)
    assert p.api.monthly_usd == pytest.approx(100_000 * DAYS * 0.001999)
    # per token: (1,155 x $1 + 211 x $4) / 1,366 tokens = 1.4634 USD/Mtok
    assert p.api.blended_usd_per_mtok == pytest.approx(1999 / 1366)
    # self-hosted: $1,460 over 100,000 x 365/12 x 1,366 tokens = 4,155.04 Mtok -> 0.35138 USD/Mtok
    assert c.blended_usd_per_mtok == pytest.approx(1460 / (100_000 * DAYS * 1366 / 1e6))
    # the tiny model is so fast that one GPU serves this volume at both ends of the throughput range
    assert (c.total_gpus_low, c.total_gpus_high) == (1, 1)
    assert c.blended_usd_per_mtok_low == pytest.approx(c.blended_usd_per_mtok)
    assert c.blended_usd_per_mtok_high == pytest.approx(c.blended_usd_per_mtok)
    # break-even: one replica ($1,460) against $0.001999 x 365/12 per request/day, at both ends too
    assert c.breakeven_requests_per_day_low == pytest.approx(1460 / (0.001999 * DAYS))
    assert c.breakeven_requests_per_day_high == pytest.approx(1460 / (0.001999 * DAYS))
    assert (c.provider, c.price_basis, c.price_source_url) == ("testcloud", "listed", "https://example.org/price")


def test_tiny_plan_components_are_consistent(tiny_catalog):
    p = plan(tiny(requests_per_day=5e7, staff_fte=0.25), tiny_catalog)
    # capacity: the queueing model's rate at the targets, never above the instance's saturation rate x its
    # data-parallel instances (the same step function, prompts computed after prefix-cache hits)
    best = p.search.best
    assert p.capacity_requests_per_s_per_replica == best.capacity_requests_per_s_per_replica > 0
    model = tiny_catalog.model(p.estimate.model_id)
    cands = evaluator.candidates(tiny_catalog, model.arch, model.native_precision, gpus=[tiny_catalog.gpu(best.gpu_id)],
                                 engines=[tiny_catalog.engine(best.engine)],
                                 precisions=[tiny_catalog.precision(best.precision)],
                                 kv_dtypes=[tiny_catalog.kv_dtype(best.kv_dtype)],
                                 gpu_counts=[best.num_gpus_per_replica], layouts=lambda e, g, n: [best.layout],
                                 max_num_seqs=best.max_num_seqs)
    step = evaluator.step_time_fn(model.arch, cands, input_tokens=p.estimate.input_tokens, output_tokens=211)
    prompt = max(1.0, p.workload.input_tokens_mean * (1 - p.workload.prompt_cache_hit_frac))
    sat = saturation_rate_per_s(step, input_tokens=prompt, output_tokens=211, max_batch=p.estimate.max_concurrency,
                                token_budget=tiny_catalog.engine(best.engine).max_num_batched_tokens or 1e12)
    assert p.capacity_requests_per_s_per_replica <= best.layout.dp * float(sat[0]) * (1 + 1e-9)
    assert p.operating_concurrency == p.estimate.concurrency
    for tier in ALL_TIERS:
        c = p.costs[tier]
        assert c.available
        assert sum(c.driver_shares_frac.values()) == pytest.approx(1.0)
        assert sum(c.drivers_usd_per_month.values()) == pytest.approx(c.monthly_usd)
        # the $/Mtok split recombines to the whole bill
        recombined = (c.input_usd_per_mtok * p.input_tokens_per_month
                      + c.output_usd_per_mtok * p.output_tokens_per_month) / 1e6
        assert recombined == pytest.approx(c.monthly_usd)
        assert c.monthly_usd_low <= c.monthly_usd <= c.monthly_usd_high
    assert p.costs["on_demand"].drivers_usd_per_month["staff"] == pytest.approx(0.25 * 189_080 / 12)
    assert len(p.monthly) == 36 and p.monthly[0].month == 1


def test_owned_costs_by_hand(tiny_catalog):
    s = tiny(mode="owned", cost_of_capital_frac_per_year=0.0, server_network_capex_frac=0.0, amortisation_years=5,
             pue=1.0, power_load_frac=1.0, server_to_gpu_power_ratio=1.0, electricity_usd_per_kwh=0.1,
             colocation_usd_per_kw_month=100.0)
    c = plan(s, tiny_catalog).headline
    # $10,000 / 5 years / 12 = 166.67; 0.5 kW x 730 h x $0.1 = 36.5; 0.5 kW x $100 = 50
    assert c.drivers_usd_per_month["capital"] == pytest.approx(10_000 / 60)
    assert c.drivers_usd_per_month["power"] == pytest.approx(36.5)
    assert c.drivers_usd_per_month["hosting"] == pytest.approx(50)
    assert c.capex_usd_per_gpu == pytest.approx(10_000)


def test_breakeven_and_growth_in_the_plan(tiny_catalog):
    p = plan(tiny(requests_per_day=1000, monthly_growth_frac=0.5, horizon_months=12), tiny_catalog)
    b = p.breakeven["on_demand"]
    # one replica ($1,460) against $0.001999 x 365/12 per request/day
    assert b.requests_per_day == pytest.approx(1460 / (0.001999 * DAYS))
    g = p.growth["on_demand"]
    volumes = [1000 * 1.5 ** (m - 1) for m in range(1, 13)]
    expected = next(m for m, v in enumerate(volumes, 1) if v * DAYS * 0.001999 >= 1460)
    assert g.breakeven_month == expected
    saving = sum(v * DAYS * 0.001999 - 1460 for v in volumes)
    assert g.cumulative_saving_usd == pytest.approx(saving)


def test_price_decline_moves_the_api_bill(tiny_catalog):
    p = plan(tiny(api_price_decline_frac_per_year=0.5, horizon_months=13), tiny_catalog)
    assert p.monthly[12].api_usd == pytest.approx(p.monthly[0].api_usd / 2)


def test_hybrid_beats_both_pure_options(tiny_catalog):
    # 23 steady hours at 1 and one peak hour at 3 (mean 26/24). The volume is set so that the steady
    # load just fits one replica; the peak needs three. At $300/GPU-hour one replica plus API overflow
    # for the peak hour is cheaper than three replicas and than sending everything to the API.
    first = plan(tiny(), tiny_catalog)
    b = first.search.best
    # the configuration fixed, so that the replica's capacity does not change with the volume
    fixed = dict(num_gpus_per_replica=b.num_gpus_per_replica, precision=b.precision, kv_dtype=b.kv_dtype,
                 engine=b.engine, tp=b.layout.tp, pp=b.layout.pp, max_num_seqs=b.max_num_seqs)
    capacity = first.capacity_requests_per_s_per_replica
    average = 0.999 * capacity * 26 / 24
    p = plan(tiny(requests_per_day=average * 86_400, hourly_profile=tuple([1.0] * 23 + [3.0]),
                  gpu_price_usd_per_gpu_hour=300.0, **fixed), tiny_catalog)
    assert p.capacity_requests_per_s_per_replica == pytest.approx(capacity)
    h = p.hybrid
    assert h is not None and h.base_serving_replicas == 1
    assert h.total_usd_per_month < min(p.api.monthly_usd, p.headline.monthly_usd)
    # the overflow is the peak hour's load above one replica: (3 x 24/26 x average - capacity) x 3,600 s
    overflow = (3 * 24 / 26 * average - capacity) * 3600
    assert h.api_share_of_requests_frac == pytest.approx(overflow / (average * 86_400))
    assert h.self_hosted_usd_per_month == pytest.approx(300 * 730)


def test_autoscale_without_profile_warns(tiny_catalog):
    p = plan(tiny(autoscale=True), tiny_catalog)
    assert any("autoscale needs an hourly_profile" in w for w in p.warnings)
    assert not p.costs["on_demand"].fleet.autoscaled


def test_request_sizes_replace_preset_means(tiny_catalog, tmp_path):
    path = tmp_path / "sizes.csv"
    path.write_text("input_tokens,output_tokens\n400,40\n600,60\n")
    p = plan(tiny(request_sizes_csv=str(path)), tiny_catalog, request_sizes=request_sizes_from_csv(path))
    assert (p.workload.input_tokens_mean, p.workload.output_tokens_mean) == (500, 50)
    assert p.request_sizes.n_requests == 2
    with pytest.raises(InvalidInputError, match="plan\\(\\) reads no file"):  # the caller reads the file
        plan(tiny(request_sizes_csv=str(path)), tiny_catalog)
    q = plan(tiny(), tiny_catalog, request_sizes=request_sizes([400, 600], [40, 60]))
    assert q.workload.input_tokens_mean == 500


def test_no_api_for_the_model_is_data_not_a_crash(tiny_catalog):
    p = plan(Scenario(model="tiny", gpu="TEST-GPU"), tiny_catalog)
    assert p.api is None and p.breakeven == {} and p.growth == {}
    assert any("no API in api_prices.csv serves" in w for w in p.warnings)
    assert all(math.isnan(m.api_usd) for m in p.monthly)


def test_unpriced_gpu_reports_unavailable_tiers(tiny_catalog):
    catalog = tiny_catalog.with_gpu_prices([])
    gpus = dict(catalog.gpus)
    gpus["TEST-GPU"] = dataclasses.replace(gpus["TEST-GPU"], purchase_usd=None)
    p = plan(tiny(), dataclasses.replace(catalog, gpus=gpus))
    assert not p.costs["on_demand"].available
    assert "no on-demand price listed" in p.costs["on_demand"].note
    assert not p.costs["owned"].available and "purchase price" in p.costs["owned"].note
    assert any("headline tier on_demand is unavailable" in w for w in p.warnings)


def _with_range(catalog, low: float, high: float):
    """The catalog with every efficiency profile's calibrated range set to (low, high) x the central speed."""
    profiles = tuple(dataclasses.replace(prof, range_low_factor=low, range_high_factor=high)
                     for prof in catalog.efficiency)
    return dataclasses.replace(catalog, efficiency=profiles)


def test_ranges_resize_the_fleet_at_each_end(tiny_catalog):
    catalog = _with_range(tiny_catalog, 0.5, 1.5)
    # one configuration at both volumes (at 10x the search may take int8 PP2 for the same 10 GPUs and cost)
    fixed = dict(peak_to_average_ratio=1.0, num_gpus_per_replica=1, precision="fp8")
    best = plan(tiny(**fixed), catalog).search.best  # pinned: the finer batch limits are searched per volume
    fixed.update(max_num_seqs=best.max_num_seqs, engine=best.engine, kv_dtype=best.kv_dtype, tp=best.layout.tp,
                 pp=best.layout.pp)
    capacity = plan(tiny(**fixed), catalog).capacity_requests_per_s_per_replica
    # 9.99 replicas' worth of traffic at a flat rate: 10 replicas; each end sized from that end's capacity (the
    # SLO-bound rate at the slow / fast efficiency, not exactly 0.5x / 1.5x of the central one: the targets bind at
    # other batches there): ceil(9.99 x capacity / capacity_end). One GPU per replica at $2 x 730 h = $1,460 each.
    volume = 9.99 * capacity * 86_400
    p = plan(tiny(**fixed, requests_per_day=volume), catalog)
    c = p.costs["on_demand"]
    low_cap, high_cap = p.capacity_requests_per_s_per_replica_low, p.capacity_requests_per_s_per_replica_high
    assert low_cap < capacity < high_cap
    n_low, n_high = math.ceil(9.99 * capacity / high_cap), math.ceil(9.99 * capacity / low_cap)
    assert (c.fleet.total_gpus, c.total_gpus_low, c.total_gpus_high) == (10, n_low, n_high)
    assert n_low <= 7 and n_high >= 14  # a 3x range of efficiency moves the fleet at least 2x
    assert (c.monthly_usd, c.monthly_usd_low, c.monthly_usd_high) == (
        pytest.approx(10 * 1460), pytest.approx(n_low * 1460), pytest.approx(n_high * 1460))
    mtok = volume * DAYS * 1366 / 1e6
    assert c.blended_usd_per_mtok_low == pytest.approx(n_low * 1460 / mtok)
    assert c.blended_usd_per_mtok_high == pytest.approx(n_high * 1460 / mtok)
    # the input/output split keeps the central estimate's prefill share at both ends
    share = p.prefill_time_share_frac
    assert c.input_usd_per_mtok_high == pytest.approx(n_high * 1460 * share / (volume * DAYS * 1155 / 1e6))
    assert c.output_usd_per_mtok_low == pytest.approx(n_low * 1460 * (1 - share) / (volume * DAYS * 211 / 1e6))
    # n_high / n_low > 2: the plan flags the range
    assert any(w.startswith(f"wide estimate range: self-hosting costs {n_low * 1460:,} to {n_high * 1460:,} USD/month")
               for w in p.warnings)


def test_a_narrow_range_is_not_flagged(tiny_catalog):
    catalog = _with_range(tiny_catalog, 0.9, 1.1)
    fixed = dict(peak_to_average_ratio=1.0, num_gpus_per_replica=1, precision="fp8")  # one configuration
    best = plan(tiny(**fixed), catalog).search.best  # pinned: the finer batch limits are searched per volume
    fixed.update(max_num_seqs=best.max_num_seqs, engine=best.engine, kv_dtype=best.kv_dtype, tp=best.layout.tp,
                 pp=best.layout.pp)
    capacity = plan(tiny(**fixed), catalog).capacity_requests_per_s_per_replica
    p = plan(tiny(**fixed, requests_per_day=9.99 * capacity * 86_400), catalog)
    # about ceil(9.99 / 1.1) = 10 ... ceil(9.99 / 0.9) = 12, from each end's own capacity: well under 2x
    low_cap, high_cap = p.capacity_requests_per_s_per_replica_low, p.capacity_requests_per_s_per_replica_high
    n_low, n_high = math.ceil(9.99 * capacity / high_cap), math.ceil(9.99 * capacity / low_cap)
    assert (p.headline.total_gpus_low, p.headline.total_gpus_high) == (n_low, n_high)
    assert 8 <= n_low <= 10 <= n_high <= 13
    assert not any(w.startswith("wide estimate range") for w in p.warnings)


def test_latency_warnings_follow_the_pessimistic_end(tiny_catalog):
    for low in (0.5, 1.0):
        p = plan(tiny(), _with_range(tiny_catalog, low, 1.5))
        e = p.estimate
        missed = e.tpot_s_high > p.tpot_target_s or e.ttft_s_high > p.ttft_target_s
        assert missed == any("is met by the central estimate" in w for w in p.warnings)


def _price(provider: str, pricing: str, usd: float) -> GpuPrice:
    return GpuPrice("TEST-GPU", provider, pricing, usd, None, None, None, f"https://example.org/{provider}",
                    datetime.date(2026, 11, 29), None)


# "market" is cheapest on demand but has no spot; "neo" has the cheapest spot; "hyper" lists a 1-year reservation
CLOUDS = [_price("market", "on_demand", 2.0), _price("neo", "on_demand", 3.0), _price("neo", "spot", 1.2),
          _price("hyper", "on_demand", 4.0), _price("hyper", "reserved_1y", 3.0)]


def test_each_rental_tier_has_its_own_provider(tiny_catalog):
    p = plan(tiny(), tiny_catalog.with_gpu_prices(CLOUDS))
    providers = {t: (p.costs[t].provider, p.costs[t].price_basis) for t in ("on_demand", "spot", "reserved_1y",
                                                                             "reserved_3y")}
    assert providers == {"on_demand": ("market", "listed"), "spot": ("neo", "listed"),
                         "reserved_1y": ("hyper", "listed"),
                         "reserved_3y": ("market", "on-demand less reserved discount")}
    # spot: $1.2 + 10% interruption overhead, for one GPU x 730 h
    assert p.costs["spot"].monthly_usd == pytest.approx(1.32 * HOURS_PER_MONTH)
    assert p.costs["spot"].price_source_url == "https://example.org/neo"
    # reserved 3 y: market's $2 less the sourced 57.01% discount
    assert p.costs["reserved_3y"].usd_per_gpu_hour == pytest.approx(2 * (1 - 0.5701))
    # pinning a provider means only that provider: market has no spot
    market = plan(tiny(provider="market"), tiny_catalog.with_gpu_prices(CLOUDS))
    assert not market.costs["spot"].available and "market lists no spot price" in market.costs["spot"].note


def test_a_headline_tier_dearer_than_on_demand_is_flagged(tiny_catalog):
    p = plan(tiny(rental_tier="reserved_1y"), tiny_catalog.with_gpu_prices(CLOUDS))
    assert any("headline tier reserved_1y (hyper, 3 USD/GPU-hour) is dearer than the cheapest on-demand offer "
               "(market, 2)" in w for w in p.warnings)
    assert not any("dearer" in w for w in plan(tiny(), tiny_catalog.with_gpu_prices(CLOUDS)).warnings)


def test_unreachable_targets_raise(tiny_catalog):
    with pytest.raises(UnreachableTargetError, match="tried 1, 2, 4"):
        plan(tiny(ttft_target_s=1e-6), tiny_catalog)


def test_does_not_fit_raises(real_catalog):
    with pytest.raises(DoesNotFitError):
        plan(Scenario(model="deepseek-ai/DeepSeek-V3", gpu="L4", num_gpus_per_replica=1), real_catalog)


def test_real_default_scenario_plans(real_catalog):
    p = plan(Scenario(), real_catalog)
    assert p.num_gpus_per_replica >= 1 and p.headline.available
    assert p.concurrency_bound_by in ("tpot_target_s", "ttft_target_s", "tpot_target_s+ttft_target_s",
                                      "max_concurrency")
    assert p.estimate.tpot_s <= p.tpot_target_s and p.estimate.ttft_s <= p.ttft_target_s


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(volume=st.floats(1, 1e9), growth=st.floats(-0.3, 0.5), offline=st.floats(0, 1), staff=st.floats(0, 3))
def test_plan_costs_are_finite_and_non_negative(tiny_catalog, volume, growth, offline, staff):
    p = plan(tiny(requests_per_day=volume, monthly_growth_frac=growth, offline_frac=offline, staff_fte=staff,
                  horizon_months=6), tiny_catalog)
    for c in p.costs.values():
        assert math.isfinite(c.monthly_usd) and c.monthly_usd >= 0
        assert all(v >= 0 for v in c.drivers_usd_per_month.values())
    for m in p.monthly:
        assert m.api_usd >= 0 and all(math.isfinite(v) and v >= 0 for v in m.self_hosted_usd.values())


def test_fine_tuning_runs_enter_every_tier_and_the_breakdown(real_catalog):
    base = Scenario(model="llama-3.1-8b", gpu="H100-SXM", requests_per_day=50_000)
    tuned = dataclasses.replace(base, finetune_runs_per_year=6, finetune_dataset_tokens=1e8)
    p0, p1 = plan(base, real_catalog), plan(tuned, real_catalog)
    assert p1.finetune_usd_per_month > 0
    # same fleet (fine-tuning does not change the serving configuration), the runs added to every tier
    assert p1.search.best.to_dict() == p0.search.best.to_dict()
    for tier in ("on_demand", "reserved_3y"):
        assert p1.costs[tier].monthly_usd == pytest.approx(p0.costs[tier].monthly_usd + p1.finetune_usd_per_month)
    assert p1.costs["on_demand"].drivers_usd_per_month["fine_tuning"] == pytest.approx(p1.finetune_usd_per_month)
    with pytest.raises(InvalidInputError, match="finetune_dataset_tokens"):
        plan(dataclasses.replace(base, finetune_runs_per_year=1), real_catalog)


def test_extras_false_skips_the_frontier_and_alternatives_and_changes_no_figure(real_catalog):
    # the sensitivity re-plans: only the cost is needed, so the search leaves out the report's extras
    s = Scenario()
    full, lean = plan(s, real_catalog), plan(s, real_catalog, extras=False)
    assert full.search.frontier and full.alternatives  # the default scenario has both
    assert lean.search.frontier == () and lean.alternatives == () and lean.search.alternatives == ()
    assert len(lean.search.explanation) == 1  # the choice's line; no per-axis comparison without alternatives
    assert lean.search.best == full.search.best
    # repr: unavailable tiers carry NaN, which == never matches
    assert repr((lean.estimate, lean.costs, lean.breakeven, lean.monthly)) == repr(
        (full.estimate, full.costs, full.breakeven, full.monthly))
    assert lean.capacity_requests_per_s_per_replica == full.capacity_requests_per_s_per_replica
