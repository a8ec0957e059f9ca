"""`plan(scenario, catalog) -> Plan`: wiring from a scenario to the decision (no formulas of its own).

Resolves the workload (explicit fields > observed request sizes > preset), picks the
replica size and the operating concurrency under the latency targets (`estimate` +
`sizing.choose_concurrency`), prices every rental tier and owned hardware (`costs`), the
same workload at an API's prices (`api_costs`), and then the volume questions
(`breakeven`): break-even per tier, the month it happens with growth, the cumulative saving
and a hybrid option. Every tier is also costed at both ends of the performance model's
calibrated range (GPUs, USD/month, USD/Mtok, break-even), and the plan warns when that
range is wide (`costs.WIDE_RANGE_RATIO`) or when a latency target holds only at the
central estimate. Chart data over volume is in `planner.econ.cost_curves`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from planner import units
from planner.data.catalog import Catalog
from planner.econ.api_costs import ApiCost, resolve_api
from planner.econ.breakeven import (
    BreakEven,
    GrowthOutcome,
    HybridOption,
    TierRates,
    VolumeEconomics,
    api_usd_per_month,
    breakeven,
    cost_breakdown,
    growth_outcome,
    hybrid_plan,
    monthly_self_hosted_usd,
    self_hosted_usd_per_month,
    with_capacity_factor,
)
from planner.econ.costs import (
    ALL_TIERS,
    ELASTIC_TIERS,
    OWNED,
    RENTAL_TIERS,
    WIDE_RANGE_RATIO,
    TierCost,
    TierPrice,
    is_wide_range,
    owned_gpu_month,
    staff_usd_per_month,
    tier_cost,
    tier_prices,
)
from planner.econ.finetune import SUGGESTION_GPU_COUNTS, FinetuneRequest, finetune, finetune_usd_per_month
from planner.econ.sizing import (
    Fleet,
    autoscaled_fleet,
    fixed_fleet,
    pessimistic_latency_warnings,
    prefill_time_share,
)
from planner.econ.workload import (
    RequestSizes,
    Workload,
    design_rate_factor,
    hourly_rate_factors,
    monthly_tokens,
    requests_per_day_at_month,
    resolve_workload,
)
from planner.errors import DoesNotFitError, InvalidInputError, brief
from planner.optimizer import (
    BATCH_LIMITS,
    GPUS_PER_REPLICA,
    Option,
    SearchResult,
    SearchSpace,
    Targets,
    Traffic,
    kv_dtypes_for,
    precisions_for,
    search,
)
from planner.perf import speculative
from planner.perf.estimate import Estimate, EstimateRequest, estimate, prepare, resolve_model
from planner.scenario import PRESETS, Scenario

CANDIDATE_GPUS_PER_REPLICA = GPUS_PER_REPLICA


@dataclass(frozen=True)
class MonthRow:
    """One month of the horizon: traffic, the API bill and the self-hosting bill per available tier."""

    month: int
    requests_per_day: float
    input_tokens: float
    output_tokens: float
    api_usd: float  # NaN without an API price
    self_hosted_usd: dict[str, float]


@dataclass(frozen=True)
class Plan:
    """Everything the decision needs, with its components kept (units in every name)."""

    scenario: Scenario
    workload: Workload
    request_sizes: RequestSizes | None
    ttft_target_s: float
    tpot_target_s: float
    estimate: Estimate  # one replica at the operating concurrency
    num_gpus_per_replica: int
    operating_concurrency: int
    concurrency_bound_by: str
    capacity_requests_per_s_per_replica: float
    capacity_requests_per_s_per_replica_low: float
    capacity_requests_per_s_per_replica_high: float
    prefill_time_share_frac: float  # splits self-hosted cost between input and output tokens
    input_tokens_per_month: float
    output_tokens_per_month: float
    headline_tier: str
    costs: dict[str, TierCost]
    api: ApiCost | None
    breakeven: dict[str, BreakEven]
    growth: dict[str, GrowthOutcome]
    hybrid: HybridOption | None
    monthly: tuple[MonthRow, ...]
    economics: VolumeEconomics
    sources: dict[str, str]  # where each resolved workload/SLO value came from
    warnings: tuple[str, ...]
    search: SearchResult | None = None  # the configuration search behind the choice
    latency_percentile: float = 0.95

    latency: dict[str, float] | None = None  # TTFT/TPOT p50..p99 of the chosen replica at the design load (s)
    alternatives: tuple[Option, ...] = ()  # the cheapest configuration for each other value of each searched axis
    finetune_usd_per_month: float = 0.0  # fine-tuning runs in the TCO (scenario finetune_* fields)

    @property
    def headline(self) -> TierCost:
        return self.costs[self.headline_tier]

    @property
    def best_breakeven_tier(self) -> str | None:
        """The tier (rented or owned) that breaks even with the API at the lowest volume (None: none does)."""
        found = [(b.requests_per_day, t) for t, b in self.breakeven.items() if b.found]
        return min(found)[1] if found else None


def _search_space(catalog: Catalog, s: Scenario) -> SearchSpace:
    """What the scenario leaves to the search: every field it sets stays fixed. Speculative decoding is
    resolved here (one InvalidInputError for a method the model does not ship, or a fixed engine that does not
    run it), so that the search sizes the fleet with the speculative step."""
    model = resolve_model(catalog, s.model)
    if s.gpu == "auto":
        gpus = tuple(catalog.gpus.values())
    else:
        gpus = (catalog.gpu(s.gpu),)
    engines = (catalog.engine(s.engine).engine_id,) if s.engine else None
    if s.profile:  # a named profile fixes its engine and the GPUs it describes; elsewhere it would be wrong
        prof = catalog.named_profile(s.profile)
        engines = engines or (prof.engine,)
        fits = tuple(g for g in gpus if catalog.profile_problem(prof, engines[0], g) is None)
        if not fits:
            raise InvalidInputError(f"scenario field 'profile': {catalog.profile_problem(prof, engines[0], gpus[0])}"
                                    + (" (no catalog GPU matches it)" if s.gpu == "auto" else ""))
        gpus = fits
    setting = speculative.resolve(model.arch, model.model_id, s.speculative,
                                  speculative.shipped_rows() if s.speculative != "off" else (),
                                  draft_tokens=s.speculative_draft_tokens,
                                  acceptance_frac=s.speculative_acceptance_frac)
    if setting is not None and engines is not None:  # a fixed engine must run the drafts; searched ones may not
        speculative.check_engine(engines[0])
    return SearchSpace(
        model=model, gpus=gpus, engines=engines,
        precisions=precisions_for(catalog, model, s.quality_policy, s.precision),
        kv_dtypes=kv_dtypes_for(catalog, s.quality_policy, s.kv_dtype),
        gpu_counts=(s.num_gpus_per_replica,) if s.num_gpus_per_replica else GPUS_PER_REPLICA,
        tp=s.tp, pp=s.pp, expert_parallel=s.expert_parallel,
        batch_limits=(s.max_num_seqs,) if s.max_num_seqs else BATCH_LIMITS, profile=s.profile,
        native_only=s.quality_policy != "any" and s.precision is None, speculative=setting)


def _traffic(s: Scenario, w: Workload, sizes: RequestSizes | None, headline: str, elastic_ok: bool) -> Traffic:
    avg = w.requests_per_day / units.S_PER_DAY
    elastic = elastic_ok and headline in ELASTIC_TIERS
    cv_in, cv_out = (lognormal_cv(sizes.input_tokens_p50, sizes.input_tokens_p90),
                     lognormal_cv(sizes.output_tokens_p50, sizes.output_tokens_p90)) if sizes else (0.0, 0.0)
    return Traffic(input_tokens=max(1.0, round(w.input_tokens_mean)),
                   output_tokens=max(1.0, round(w.output_tokens_mean)),
                   design_rate_per_s=avg * design_rate_factor(w.peak_to_average_ratio, w.offline_frac),
                   average_rate_per_s=avg,
                   hourly_factors=tuple(hourly_rate_factors(w.hourly_profile, w.offline_frac)) if elastic else None,
                   prefill_tokens=max(1.0, w.input_tokens_mean * (1.0 - w.prompt_cache_hit_frac)),
                   input_tokens_cv=cv_in, output_tokens_cv=cv_out, headroom_frac=s.headroom_frac,
                   redundancy_replicas=s.redundancy_replicas)


def lognormal_cv(p50: float, p90: float) -> float:
    """Coefficient of variation of a lognormal with this median and 90th percentile: sigma = ln(p90/p50) / z(0.9),
    cv = sqrt(exp(sigma^2) - 1) (z(0.9) = 1.2816)."""
    if not (p50 > 0 and p90 >= p50):
        return 0.0
    sigma = math.log(p90 / p50) / 1.2816
    return math.sqrt(math.expm1(sigma * sigma))


def _price_fn(catalog: Catalog, s: Scenario, headline: str, elastic_ok: bool):
    cache: dict[str, tuple[float, str | None]] = {}

    def price_of(gpu_id: str) -> tuple[float, str | None]:
        if gpu_id not in cache:
            rates, prices, _ = _tier_rates(catalog, s, gpu_id, elastic_ok)
            rate = rates.get(headline)
            cache[gpu_id] = ((rate.usd_per_gpu_hour, prices[headline].provider) if rate is not None
                             else (math.nan, None))
        return cache[gpu_id]

    return price_of


def _operating_point(catalog: Catalog, s: Scenario, w: Workload, sizes: RequestSizes | None, ttft_target_s: float,
                     tpot_target_s: float, headline: str, elastic_ok: bool, *, extras: bool = True
                     ) -> tuple[Estimate, SearchResult]:
    """The cheapest configuration meeting the targets at the percentile (`optimizer.search`), as an Estimate at its
    operating concurrency (the mean running batch of one engine instance at the design load). With speculative
    decoding the search sized the fleet with the speculative step and the estimate applies the same setting;
    where the search chose an engine that runs no drafts (`speculative.ENGINES`) both are plain, with a warning."""
    space = _search_space(catalog, s)
    traffic = _traffic(s, w, sizes, headline, elastic_ok)
    result = search(catalog, space, Targets(ttft_target_s, tpot_target_s, s.latency_percentile), traffic,
                    _price_fn(catalog, s, headline, elastic_ok), extras=extras)
    best = result.best
    drafts = space.speculative is not None and best.engine in speculative.ENGINES
    request = EstimateRequest(
        model=s.model, gpu=best.gpu_id, num_gpus=best.num_gpus_per_replica, precision=best.precision,
        kv_dtype=best.kv_dtype, input_tokens=int(traffic.input_tokens), output_tokens=int(traffic.output_tokens),
        engine=best.engine, tp=best.layout.tp, pp=best.layout.pp, dp=best.layout.dp,
        expert_parallel=best.layout.ep, attn_dp=best.layout.attn_dp, profile=s.profile, max_num_seqs=best.max_num_seqs,
        concurrency=best.operating_concurrency, speculative=s.speculative if drafts else "off",
        speculative_draft_tokens=s.speculative_draft_tokens if drafts else None,
        speculative_acceptance_frac=s.speculative_acceptance_frac if drafts else None)
    est = estimate(catalog, request)
    if space.speculative is not None and not drafts:
        est = replace(est, warnings=est.warnings + (
            f"speculative {s.speculative}: the cheapest configuration runs on {best.engine}, which runs no drafts "
            f"here ({', '.join(speculative.ENGINES)} do); sized and estimated without speculation",))
    return est, result


def _finetune_monthly(catalog: Catalog, s: Scenario, serving_gpu: str, tier: str, warnings: list[str]) -> float:
    """Fine-tuning runs in the TCO: one run's cost at `tier` x runs per year / 12 (planner.econ.finetune). With
    no GPU count given, the fewest GPUs (1, 2, 4, ...) on which the run fits."""
    if not s.finetune_runs_per_year:
        return 0.0
    if s.finetune_dataset_tokens is None:
        raise InvalidInputError("finetune_dataset_tokens must be set when finetune_runs_per_year > 0")
    gpu = s.finetune_gpu or serving_gpu
    counts = (s.finetune_num_gpus,) if s.finetune_num_gpus else SUGGESTION_GPU_COUNTS
    last: DoesNotFitError | None = None
    for n in counts:
        req = FinetuneRequest(model=s.model, gpu=gpu, method=s.finetune_method,
                              dataset_tokens=s.finetune_dataset_tokens, epochs=s.finetune_epochs, num_gpus=n,
                              seq_len_tokens=s.finetune_seq_len, lora_rank=s.finetune_lora_rank, provider=s.provider)
        est = finetune(catalog, req)
        if est.fits:
            monthly = finetune_usd_per_month(est, tier, s.finetune_runs_per_year)
            warnings.extend(f"fine-tuning: {w}" for w in est.warnings)
            return monthly
        last = DoesNotFitError(f"fine-tuning {s.model} ({s.finetune_method}) does not fit on {n} x {gpu}")
    assert last is not None
    raise last


def slo_estimate(catalog: Catalog, req: EstimateRequest, *, ttft_target_s: float | None, tpot_target_s: float | None,
                 percentile: float = 0.95) -> tuple[Estimate, dict[str, float | str]]:
    """The replica of `req` at the highest request rate that meets the targets at `percentile` (queueing), with
    the layout and batch limit that maximise that rate where the request leaves them open. A missing target is
    not constrained (3,600 s TTFT, 60 s TPOT)."""
    model = resolve_model(catalog, req.model)
    gpu = catalog.gpu(req.gpu)
    base = prepare(catalog, req)
    setting = None
    if req.speculative != "off":  # the rate at the targets with the speculative step, as the plan sizes it
        setting = speculative.resolve(model.arch, model.model_id, req.speculative, speculative.shipped_rows(),
                                      draft_tokens=req.speculative_draft_tokens,
                                      acceptance_frac=req.speculative_acceptance_frac)
        speculative.check_engine(base.engine_id)
    space = SearchSpace(model=model, gpus=(gpu,), engines=(base.engine_id,), precisions=(catalog.precision(
        base.precision_id),), kv_dtypes=(catalog.kv_dtype(base.kv_dtype_id),), gpu_counts=(req.num_gpus,),
        tp=req.tp, pp=req.pp, expert_parallel=req.expert_parallel if req.expert_parallel else None,
        batch_limits=(req.max_num_seqs,) if req.max_num_seqs else BATCH_LIMITS, profile=req.profile,
        speculative=setting)
    targets = Targets(ttft_target_s or 3600.0, tpot_target_s or 60.0, percentile)
    # a huge demand at one price: the cheapest fleet is the one whose replica serves the most requests per second
    traffic = Traffic(input_tokens=req.input_tokens, output_tokens=req.output_tokens, design_rate_per_s=1e6,
                      average_rate_per_s=1e6)
    found = search(catalog, space, targets, traffic, lambda gpu_id: (1.0, None))
    b = found.best
    est = estimate(catalog, EstimateRequest(**{**req.__dict__, "tp": b.layout.tp, "pp": b.layout.pp,
                                               "dp": b.layout.dp, "expert_parallel": b.layout.ep,
                                               "attn_dp": b.layout.attn_dp,
                                               "max_num_seqs": b.max_num_seqs,
                                               "concurrency": b.operating_concurrency}))
    slo = {"ttft_target_s": targets.ttft_target_s, "tpot_target_s": targets.tpot_target_s,
           "latency_percentile": percentile, "requests_per_s": b.capacity_requests_per_s_per_replica,
           "bound_by": b.bound_by, "operating_concurrency": b.operating_concurrency, "max_num_seqs": b.max_num_seqs,
           "layout": b.layout.label, **b.latency}
    return est, slo


def _tier_rates(catalog: Catalog, s: Scenario, gpu_id: str, elastic_ok: bool
                ) -> tuple[dict[str, TierRates], dict[str, TierPrice], float]:
    """Per-GPU-hour drivers of every available tier, and each tier's price with its provider and source."""
    prices = tier_prices(catalog, gpu_id, provider=s.provider,
                         reserved_1y_discount_frac=s.reserved_1y_discount_frac,
                         reserved_3y_discount_frac=s.reserved_3y_discount_frac,
                         override_tier=s.rental_tier if s.mode == "rented" else None,
                         override_usd_per_gpu_hour=s.gpu_price_usd_per_gpu_hour,
                         provider_policy=s.provider_policy)
    software = s.software_usd_per_gpu_year / units.HOURS_PER_YEAR
    rates: dict[str, TierRates] = {}
    for tier, price in prices.items():
        if price.available:
            drivers = {"gpu_rental": price.usd_per_gpu_hour}
            if tier == "spot":
                drivers["spot_interruption"] = price.usd_per_gpu_hour * s.spot_interruption_overhead_frac
            drivers["software"] = software
            rates[tier] = TierRates(tier, elastic_ok and tier in ELASTIC_TIERS, drivers)
    gpu = catalog.gpu(gpu_id)
    purchase = s.gpu_purchase_usd or gpu.purchase_usd
    watts = s.gpu_power_w or gpu.tdp_w
    capex = math.nan
    if purchase is None or watts is None:
        missing = " and ".join(n for n, v in (("purchase price", purchase), ("power", watts)) if v is None)
        prices[OWNED] = TierPrice(OWNED, False, math.nan, None, "unavailable",
                                  f"no {missing} listed for {gpu.gpu_id} in gpus.csv; set gpu_purchase_usd / "
                                  f"gpu_power_w")
        return rates, prices, capex
    month = owned_gpu_month(
        gpu_purchase_usd=purchase, gpu_power_w=watts, server_network_capex_frac=s.server_network_capex_frac,
        amortisation_years=s.amortisation_years, cost_of_capital_frac_per_year=s.cost_of_capital_frac_per_year,
        residual_value_frac=s.residual_value_frac, server_to_gpu_power_ratio=s.server_to_gpu_power_ratio,
        power_load_frac=s.power_load_frac, pue=s.pue, electricity_usd_per_kwh=s.electricity_usd_per_kwh,
        colocation_usd_per_kw_month=s.colocation_usd_per_kw_month,
        software_usd_per_gpu_year=s.software_usd_per_gpu_year)
    capex = month.capex_usd
    per_hour = {k: v / units.HOURS_PER_MONTH for k, v in (("capital", month.capital_usd), ("power", month.power_usd),
                                                           ("hosting", month.hosting_usd),
                                                           ("software", month.software_usd))}
    rates[OWNED] = TierRates(OWNED, False, per_hour)
    from_catalog = s.gpu_purchase_usd is None
    prices[OWNED] = TierPrice(
        OWNED, True, rates[OWNED].usd_per_gpu_hour, None, "owned",
        f"{gpu.gpu_id} at ${purchase:,.0f} and {watts:,.0f} W, capex ${capex:,.0f} per GPU with server and "
        f"network, {s.amortisation_years:g} years at {s.cost_of_capital_frac_per_year:.1%}",
        gpu.purchase_source_url if from_catalog else None, gpu.purchase_source_accessed if from_catalog else None)
    return rates, prices, capex


def plan(scenario: Scenario, catalog: Catalog, *, request_sizes: RequestSizes | None = None,
         extras: bool = True) -> Plan:
    """Size, cost and compare one scenario against `catalog` (loaded once by the caller: plan reads no
    catalog file). Raises DoesNotFitError / UnreachableTargetError when infeasible.

    `extras=False` (the sensitivity re-plans): the search skips the cost-latency frontier and the per-axis
    alternatives (`search.frontier` and `alternatives` empty); every cost, fleet and latency is the same."""
    s = scenario
    warnings: list[str] = []
    if s.request_sizes_csv and request_sizes is None:
        raise InvalidInputError(f"request_sizes_csv {brief(s.request_sizes_csv)}: plan() reads no file; load it "
                                "with planner.econ.workload.request_sizes_from_csv and pass request_sizes=")
    sizes = request_sizes
    preset = PRESETS[s.preset]
    w, sources = resolve_workload(
        preset, sizes, requests_per_day=s.requests_per_day, tokens_per_month=s.tokens_per_month,
        input_tokens_mean=s.input_tokens_mean, output_tokens_mean=s.output_tokens_mean,
        peak_to_average_ratio=s.peak_to_average_ratio, hourly_profile=s.hourly_profile,
        monthly_growth_frac=s.monthly_growth_frac, prompt_cache_hit_frac=s.prompt_cache_hit_frac,
        prompt_cache_write_frac=s.prompt_cache_write_frac, offline_frac=s.offline_frac, warnings=warnings)
    ttft_target = s.ttft_target_s if s.ttft_target_s is not None else preset.ttft_target_s
    tpot_target = s.tpot_target_s if s.tpot_target_s is not None else preset.tpot_target_s
    for name, value in (("ttft_target_s", s.ttft_target_s), ("tpot_target_s", s.tpot_target_s)):
        sources[name] = "scenario" if value is not None else preset.slo_source_url
    elastic_ok = s.autoscale and w.hourly_profile is not None
    headline = OWNED if s.mode == "owned" else s.rental_tier
    est, found = _operating_point(catalog, s, w, sizes, ttft_target, tpot_target, headline, elastic_ok,
                                  extras=extras)
    bound_by = found.best.bound_by
    warnings.extend(est.warnings)
    capacity = found.best.capacity_requests_per_s_per_replica
    if s.autoscale and w.hourly_profile is None:
        warnings.append("autoscale needs an hourly_profile: rented fleets are costed as fixed, peak-sized fleets")
    rates, prices, capex = _tier_rates(catalog, s, est.gpu_id, elastic_ok)
    finetune_monthly = _finetune_monthly(catalog, s, est.gpu_id, headline, warnings)
    api, api_rate = resolve_api(catalog, s.api_id, est.model_id, w, warnings)
    econ = VolumeEconomics(
        capacity_per_s=capacity, gpus_per_replica=est.num_gpus,
        design_rate_factor=design_rate_factor(w.peak_to_average_ratio, w.offline_frac),
        hourly_profile=w.hourly_profile,
        headroom_frac=s.headroom_frac, redundancy_replicas=s.redundancy_replicas, tiers=rates,
        fixed_usd_per_month=staff_usd_per_month(s.staff_fte, s.staff_usd_per_fte_year) + finetune_monthly,
        input_tokens_mean=w.input_tokens_mean, output_tokens_mean=w.output_tokens_mean, offline_frac=w.offline_frac,
        api_online_usd_per_request=api_rate.online_input_usd + api_rate.online_output_usd if api_rate else None,
        api_batch_usd_per_request=api_rate.batch_input_usd + api_rate.batch_output_usd if api_rate else None,
        api_price_decline_frac_per_year=s.api_price_decline_frac_per_year, finetune_usd_per_month=finetune_monthly)
    tokens_in, tokens_out = monthly_tokens(w.requests_per_day, w.input_tokens_mean, w.output_tokens_mean)
    share = prefill_time_share(w.input_tokens_mean, est.prefill_tokens_per_s, w.output_tokens_mean,
                               est.output_tokens_per_s)
    # the performance model's range: optimistic (high throughput) and pessimistic ends of replica capacity
    ends = (with_capacity_factor(econ, est.output_tokens_per_s_high / est.output_tokens_per_s),
            with_capacity_factor(econ, est.output_tokens_per_s_low / est.output_tokens_per_s))
    costs = {t: _tier_cost(t, econ, ends, rates, prices[t], w, (tokens_in, tokens_out), share, api is not None,
                           capex) for t in ALL_TIERS}
    _headline_warnings(costs[headline], prices, est, warnings)
    warnings.extend(pessimistic_latency_warnings(
        ttft_s=est.ttft_s, ttft_s_high=est.ttft_s_high, ttft_target_s=ttft_target, tpot_s=est.tpot_s,
        tpot_s_high=est.tpot_s_high, tpot_target_s=tpot_target))
    monthly, per_tier, api_by_month = _monthly_table(econ, w, s.horizon_months, api is not None)
    be = {t: breakeven(econ, t) for t in rates} if api else {}
    growth = {t: growth_outcome(t, per_tier[t], api_by_month) for t in rates} if api else {}
    hybrid = hybrid_plan(econ, headline, w.requests_per_day) if api and headline in rates else None
    if api and w.hourly_profile is None:
        warnings.append("hybrid (base fleet plus API overflow) needs an hourly_profile; not evaluated")
    if s.redundancy_replicas == 0:
        warnings.append("no N+k redundancy: losing one replica drops capacity below the peak")
    return Plan(
        scenario=s, workload=w, request_sizes=sizes, ttft_target_s=ttft_target, tpot_target_s=tpot_target,
        estimate=est, num_gpus_per_replica=est.num_gpus, operating_concurrency=est.concurrency,
        concurrency_bound_by=bound_by, capacity_requests_per_s_per_replica=capacity,
        capacity_requests_per_s_per_replica_low=ends[1].capacity_per_s,
        capacity_requests_per_s_per_replica_high=ends[0].capacity_per_s, prefill_time_share_frac=share,
        input_tokens_per_month=tokens_in, output_tokens_per_month=tokens_out, headline_tier=headline, costs=costs,
        api=api, breakeven=be, growth=growth, hybrid=hybrid, monthly=monthly, economics=econ, sources=sources,
        warnings=tuple(dict.fromkeys(warnings)), search=found, latency_percentile=s.latency_percentile,
        latency={"percentile": s.latency_percentile, **found.best.latency,
                 "utilisation_peak_frac": found.best.utilisation_frac}, alternatives=found.alternatives,
        finetune_usd_per_month=finetune_monthly)


def _headline_warnings(head: TierCost, prices: dict[str, TierPrice], est: Estimate, warnings: list[str]) -> None:
    """The headline tier is missing, dearer than on-demand, or its cost range is wide (WIDE_RANGE_RATIO)."""
    if not head.available:
        warnings.append(f"headline tier {head.tier} is unavailable: {head.note}")
        return
    price, on_demand = prices[head.tier], prices["on_demand"]
    if (head.tier in RENTAL_TIERS and head.tier != "on_demand" and price.basis != "user override"
            and on_demand.available and price.usd_per_gpu_hour > on_demand.usd_per_gpu_hour):
        warnings.append(f"headline tier {head.tier} ({price.provider}, {price.usd_per_gpu_hour:g} USD/GPU-hour) is "
                        f"dearer than the cheapest on-demand offer ({on_demand.provider}, "
                        f"{on_demand.usd_per_gpu_hour:g}); set provider to compare tiers within one cloud")
    if is_wide_range(head.monthly_usd_low, head.monthly_usd_high):
        warnings.append(f"wide estimate range: self-hosting costs {head.monthly_usd_low:,.0f} to "
                        f"{head.monthly_usd_high:,.0f} USD/month (more than {WIDE_RANGE_RATIO:g}x) depending on the "
                        f"achieved throughput (efficiency profile {est.efficiency_profile}); measure your own "
                        f"throughput to narrow it")


def _fleet(econ: VolumeEconomics, elastic: bool, w: Workload) -> Fleet:
    common = dict(gpus_per_replica=econ.gpus_per_replica, headroom_frac=econ.headroom_frac,
                  redundancy_replicas=econ.redundancy_replicas)
    if elastic:
        return autoscaled_fleet(w.requests_per_day, econ.capacity_per_s,
                                hourly_rate_factors=hourly_rate_factors(w.hourly_profile, w.offline_frac), **common)
    return fixed_fleet(w.requests_per_day, econ.capacity_per_s, design_rate_factor=econ.design_rate_factor, **common)


def _tier_cost(tier: str, econ: VolumeEconomics, ends: tuple[VolumeEconomics, VolumeEconomics],
               rates: dict[str, TierRates], price: TierPrice, w: Workload, tokens: tuple[float, float], share: float,
               with_api: bool, capex: float) -> TierCost:
    """One tier at the central estimate and at both ends of the capacity range (`ends`: optimistic, pessimistic)."""
    kw = dict(input_tokens_per_month=tokens[0], output_tokens_per_month=tokens[1], prefill_time_share_frac=share,
              capex_usd_per_gpu=capex if tier == OWNED else math.nan)
    if tier not in rates:
        return tier_cost(price, usd_per_gpu_hour=math.nan, fleets=None, monthly_usd=(math.nan,) * 3, drivers={},
                         **kw)
    variants = (econ, *ends)
    fleets = tuple(_fleet(e, rates[tier].elastic, w) for e in variants)
    monthly = tuple(_monthly_at(e, tier, w.requests_per_day) for e in variants)
    crossings = tuple(breakeven(e, tier) for e in ends) if with_api else ()
    be = tuple(b.requests_per_day for b in crossings) or (math.nan, math.nan)
    return tier_cost(price, usd_per_gpu_hour=rates[tier].usd_per_gpu_hour, fleets=fleets, monthly_usd=monthly,
                     drivers=cost_breakdown(econ, tier, w.requests_per_day), breakeven_requests_per_day=be, **kw)


def _monthly_table(econ: VolumeEconomics, w: Workload, horizon_months: int, with_api: bool
                   ) -> tuple[tuple[MonthRow, ...], dict[str, np.ndarray], np.ndarray]:
    months = range(1, horizon_months + 1)
    volumes = np.array([requests_per_day_at_month(w.requests_per_day, w.monthly_growth_frac, m) for m in months])
    per_tier = {t: monthly_self_hosted_usd(econ, t, volumes) for t in econ.tiers}
    api = np.array([float(api_usd_per_month(econ, v, m)[0]) if with_api else math.nan
                    for v, m in zip(volumes, months, strict=True)])
    rows = tuple(MonthRow(m, float(v), *monthly_tokens(float(v), w.input_tokens_mean, w.output_tokens_mean),
                          float(api[i]), {t: float(per_tier[t][i]) for t in econ.tiers})
                 for i, (m, v) in enumerate(zip(months, volumes, strict=True)))
    return rows, per_tier, api


def _monthly_at(econ: VolumeEconomics, tier: str, requests_per_day: float) -> float:
    return float(self_hosted_usd_per_month(econ, tier, requests_per_day)[0])


__all__ = ["Plan", "plan", "MonthRow", "CANDIDATE_GPUS_PER_REPLICA"]
