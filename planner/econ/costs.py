"""Costs of self-hosting: GPU-hour prices per rental tier, owned-hardware cost per GPU, and the
reservation-based USD per million tokens of a fleet.

Rented: each tier takes its own cheapest listed offer across providers (or only the provider
asked for); a reserved tier with no listed offer is the chosen on-demand offer less a sourced
discount (data/cost_defaults.csv); spot adds an interruption overhead. Owned: capex (GPU plus
its share of server and network) recovered as an annuity at the cost of capital with a
residual value [1], power = watts x load x PUE x $/kWh, colocation $/kW-month on the server's
maximum draw, software licences. Staff are a fixed monthly cost of either. The API side is in
`planner.econ.api_costs`.

[1] Capital recovery factor CRF = i (1 + i)^n / ((1 + i)^n - 1), as in NREL's levelized cost
    of energy documentation, https://www.nrel.gov/analysis/tech-lcoe-documentation.html
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from planner import units
from planner.data._csvschema import read_records
from planner.data.catalog import DATA_DIR, Catalog, GpuPrice
from planner.data.columns import Date, NonNegative, Url
from planner.econ.sizing import Fleet, gpu_hours_per_month
from planner.errors import (
    InvalidInputError,
    require_frac,
    require_non_negative,
    require_positive,
    require_positive_int,
)

RENTAL_TIERS = ("on_demand", "spot", "reserved_1y", "reserved_3y")
ELASTIC_TIERS = ("on_demand", "spot")  # billed by the hour, so they can follow the daily curve
RESERVED_TIERS = ("reserved_1y", "reserved_3y")
OWNED = "owned"
ALL_TIERS = RENTAL_TIERS + (OWNED,)
# Per-second "serverless" offers bill only while a worker runs; they are not comparable with always-on
# instances (data/gpu_prices.csv notes), so a tier is never priced from one unless its provider is asked for.
_SERVERLESS_MARK = "serverless"
_TIER_WORDS = {"on_demand": "on-demand"}
# A judgement threshold, not a measurement: when the pessimistic monthly cost is more than this multiple of
# the optimistic one, the performance model's calibrated error alone moves the answer by more than a whole
# doubling of the fleet, so the plan asks for a measured throughput before the number is used.
WIDE_RANGE_RATIO = 2.0

COST_DEFAULT_PARAMETERS = (
    "pue", "electricity_usd_per_kwh", "colocation_usd_per_kw_month", "server_to_gpu_power_ratio", "power_load_frac",
    "server_network_capex_frac", "amortisation_years", "cost_of_capital_frac_per_year", "residual_value_frac",
    "reserved_1y_discount_frac", "reserved_3y_discount_frac", "spot_interruption_overhead_frac",
    "software_usd_per_gpu_year", "staff_fte", "staff_usd_per_fte_year",
)


@dataclass(frozen=True)
class CostDefault:
    """One sourced default of data/cost_defaults.csv."""

    parameter: str
    value: NonNegative
    unit: str
    source_url: Url
    source_accessed: Date
    notes: str | None


def load_cost_defaults(path: str | Path = DATA_DIR / "cost_defaults.csv") -> dict[str, CostDefault]:
    """Read and check the owned-hardware and pricing defaults; every expected parameter must be there."""
    defaults = read_records(path, CostDefault, id_column="parameter")
    defaults.require("parameter", lambda v: v in COST_DEFAULT_PARAMETERS, "parameter")
    for row, default in defaults.numbered():
        name = default.parameter
        if name.endswith("_frac") and not name.startswith("cost_of") and default.value > 1:
            raise defaults.error(row, "value", default.value, "a fraction must be <= 1")
    table = defaults.by("parameter")
    missing = [p for p in COST_DEFAULT_PARAMETERS if p not in table]
    if missing:
        raise defaults.error(None, "parameter", missing[0], "missing parameter")
    return table


@dataclass(frozen=True)
class TierPrice:
    """What one tier costs per GPU-hour, whose price it is and where the number comes from, or why there is none."""

    tier: str
    available: bool
    usd_per_gpu_hour: float  # NaN when unavailable
    provider: str | None  # whose offer (the on-demand offer's provider for a discounted reserved price)
    basis: str  # "listed", "on-demand less reserved discount", "user override", "owned" or "unavailable"
    note: str
    source_url: str | None = None  # the price row's source (None for a user override or no price)
    source_accessed: dt.date | None = None


def cheapest_offer(offers: list[GpuPrice], pricing: str, *, skip_serverless: bool = True) -> GpuPrice | None:
    """The cheapest offer of one pricing tier (ties go to the provider first in alphabetical order).

    Serverless per-second offers are skipped unless `skip_serverless` is False.
    """
    candidates = [o for o in offers if o.pricing == pricing
                  and not (skip_serverless and _SERVERLESS_MARK in o.provider.lower())]
    return min(candidates, key=lambda o: (o.usd_per_gpu_hour, o.provider), default=None)


def _provider_named(offers: list[GpuPrice], gpu_id: str, provider: str) -> str:
    names = sorted({o.provider for o in offers})
    chosen = next((n for n in names if n.lower() == provider.strip().lower()), None)
    if chosen is None:
        listed = ", ".join(names) if names else "none"
        raise InvalidInputError(f"provider {provider!r} lists no price for {gpu_id}; providers with prices: {listed}")
    return chosen


# Provider classes each provider_policy admits (gpu_prices.csv provider_class). Marketplaces rent out machines
# that belong to third-party hosts: wrong for data that may not leave the company, so the default leaves them out.
PROVIDER_POLICIES = {"no-marketplace": ("hyperscaler", "neocloud", "unknown"), "hyperscaler": ("hyperscaler",),
                     "any": None}


def tier_prices(catalog: Catalog, gpu_id: str, *, provider: str | None, reserved_1y_discount_frac: float,
                reserved_3y_discount_frac: float, override_tier: str | None = None,
                override_usd_per_gpu_hour: float | None = None,
                provider_policy: str = "any") -> dict[str, TierPrice]:
    """Price per GPU-hour of each rental tier, each tier choosing its own offer.

    provider None: every tier takes the cheapest always-on offer of that tier across all
    providers (spot: the cheapest spot offer; reserved: the cheapest listed reserved offer).
    provider set: only that provider's offers count. A reserved tier with no listed offer is
    the tier's on-demand offer x (1 - discount); otherwise the tier is unavailable, with a
    note saying why. `override_usd_per_gpu_hour` replaces the price of `override_tier`.
    """
    require_frac(allow_zero=True, reserved_1y_discount_frac=reserved_1y_discount_frac,
                 reserved_3y_discount_frac=reserved_3y_discount_frac)
    offers = catalog.prices_for(gpu_id)
    if provider_policy not in PROVIDER_POLICIES:
        raise InvalidInputError(f"provider_policy must be one of {', '.join(PROVIDER_POLICIES)}, got "
                                f"{provider_policy!r}")
    admitted = PROVIDER_POLICIES[provider_policy]
    if admitted is not None and provider is None:
        offers = [o for o in offers if (o.provider_class or "unknown") in admitted]
    if provider is not None:
        chosen = _provider_named(offers, gpu_id, provider)
        pool, where, skip = [o for o in offers if o.provider == chosen], f"at {chosen} (as asked)", False
    else:
        pool, where, skip = offers, "across providers", True
    best = {t: cheapest_offer(pool, t, skip_serverless=skip) for t in RENTAL_TIERS}
    discounts = {"reserved_1y": reserved_1y_discount_frac, "reserved_3y": reserved_3y_discount_frac}
    on_demand = best["on_demand"]
    out: dict[str, TierPrice] = {}
    for tier in RENTAL_TIERS:
        word, offer = _TIER_WORDS.get(tier, tier), best[tier]
        if override_tier == tier and override_usd_per_gpu_hour is not None:
            require_positive(gpu_price_usd_per_gpu_hour=override_usd_per_gpu_hour)
            out[tier] = TierPrice(tier, True, override_usd_per_gpu_hour, None, "user override",
                                  f"gpu_price_usd_per_gpu_hour set to {override_usd_per_gpu_hour:g}")
        elif offer is not None:
            note = f"{offer.provider}: cheapest listed {word} offer {where}"
            if tier != "on_demand" and on_demand is not None and offer.usd_per_gpu_hour > on_demand.usd_per_gpu_hour:
                note += (f"; dearer than the cheapest on-demand offer ({on_demand.provider}, "
                         f"{on_demand.usd_per_gpu_hour:g} USD/GPU-hour)")
            out[tier] = TierPrice(tier, True, offer.usd_per_gpu_hour, offer.provider, "listed", note,
                                  offer.source_url, offer.source_accessed)
        elif tier in discounts and on_demand is not None:
            price = on_demand.usd_per_gpu_hour * (1.0 - discounts[tier])
            out[tier] = TierPrice(tier, True, price, on_demand.provider, "on-demand less reserved discount",
                                  f"no {word} offer listed {where}: {on_demand.provider} on-demand "
                                  f"{on_demand.usd_per_gpu_hour:g} less {discounts[tier]:.0%} (cost_defaults.csv)",
                                  on_demand.source_url, on_demand.source_accessed)
        elif provider is not None:
            out[tier] = TierPrice(tier, False, math.nan, chosen, "unavailable",
                                  f"{chosen} lists no {word} price for {gpu_id}")
        else:
            out[tier] = TierPrice(tier, False, math.nan, None, "unavailable",
                                  f"no {word} price listed for {gpu_id} in gpu_prices.csv; set "
                                  f"gpu_price_usd_per_gpu_hour")
    return out


def capital_recovery_factor(rate_frac_per_year: float, years: float) -> float:
    """Share of a capital sum repaid each year over `years` at `rate`: i (1+i)^n / ((1+i)^n - 1); 1/n at i = 0."""
    require_non_negative(rate_frac_per_year=rate_frac_per_year)
    require_positive(years=years)
    if rate_frac_per_year == 0:
        return 1.0 / years
    log_growth = years * math.log1p(rate_frac_per_year)  # expm1/log1p: exact where (1+i)^n - 1 rounds to 0
    return rate_frac_per_year * math.exp(log_growth) / math.expm1(log_growth)


@dataclass(frozen=True)
class OwnedGpuMonth:
    """Monthly cost of owning and running one GPU (with its share of server and network)."""

    capital_usd: float
    power_usd: float
    hosting_usd: float
    software_usd: float
    capex_usd: float  # one-off purchase per GPU incl. server and network share

    @property
    def total_usd(self) -> float:
        return self.capital_usd + self.power_usd + self.hosting_usd + self.software_usd


def owned_gpu_month(*, gpu_purchase_usd: float, gpu_power_w: float, server_network_capex_frac: float,
                    amortisation_years: float, cost_of_capital_frac_per_year: float, residual_value_frac: float,
                    server_to_gpu_power_ratio: float, power_load_frac: float, pue: float,
                    electricity_usd_per_kwh: float, colocation_usd_per_kw_month: float,
                    software_usd_per_gpu_year: float) -> OwnedGpuMonth:
    """Monthly cost of one owned GPU.

    capex    = purchase x (1 + server/network share)
    capital  = (capex - residual x capex / (1 + i)^n) x CRF(i, n) / 12       [annuity, see module note]
    power    = GPU W x server/GPU power ratio x load x PUE x $/kWh x 730 h / 1000
    hosting  = GPU W x server/GPU power ratio / 1000 x $/kW-month (colocation rents peak kW)
    software = $/GPU-year / 12
    """
    require_positive(gpu_purchase_usd=gpu_purchase_usd, gpu_power_w=gpu_power_w, amortisation_years=amortisation_years,
                     server_to_gpu_power_ratio=server_to_gpu_power_ratio, pue=pue)
    require_non_negative(server_network_capex_frac=server_network_capex_frac,
                         cost_of_capital_frac_per_year=cost_of_capital_frac_per_year,
                         electricity_usd_per_kwh=electricity_usd_per_kwh,
                         colocation_usd_per_kw_month=colocation_usd_per_kw_month,
                         software_usd_per_gpu_year=software_usd_per_gpu_year)
    require_frac(allow_zero=True, residual_value_frac=residual_value_frac, power_load_frac=power_load_frac)
    if pue < 1:
        raise InvalidInputError(f"pue must be >= 1 (facility power includes the IT load), got {pue!r}")
    capex = gpu_purchase_usd * (1.0 + server_network_capex_frac)
    residual_now = residual_value_frac * capex / (1.0 + cost_of_capital_frac_per_year) ** amortisation_years
    capital_per_year = (capex - residual_now) * capital_recovery_factor(cost_of_capital_frac_per_year,
                                                                        amortisation_years)
    server_kw = gpu_power_w * server_to_gpu_power_ratio / units.W_PER_KW
    power = (server_kw
             * power_load_frac  # average draw / maximum
             * pue  # facility overhead (cooling, distribution)
             * electricity_usd_per_kwh * units.HOURS_PER_MONTH)
    return OwnedGpuMonth(capital_usd=capital_per_year / units.MONTHS_PER_YEAR, power_usd=power,
                         hosting_usd=server_kw * colocation_usd_per_kw_month,
                         software_usd=software_usd_per_gpu_year / units.MONTHS_PER_YEAR, capex_usd=capex)


def staff_usd_per_month(staff_fte: float, staff_usd_per_fte_year: float) -> float:
    """Loaded staff cost per month: FTE x $/FTE-year / 12."""
    require_non_negative(staff_fte=staff_fte, staff_usd_per_fte_year=staff_usd_per_fte_year)
    return staff_fte * staff_usd_per_fte_year / units.MONTHS_PER_YEAR


@dataclass(frozen=True)
class MtokCost:
    """Reservation-based USD per million tokens: a monthly bill over the tokens served that month."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    blended_usd_per_mtok: float


def usd_per_mtok(monthly_usd: float, *, input_tokens_per_month: float, output_tokens_per_month: float,
                 prefill_time_share_frac: float) -> MtokCost:
    """Split a monthly bill between input and output tokens by the prefill share of replica time.

    input   = bill x share / input Mtok
    output  = bill x (1 - share) / output Mtok
    blended = bill / (input + output) Mtok
    The whole bill is counted, idle capacity included (DESIGN.md: reservation-based, not usage-based).
    NaN where a token count is zero.
    """
    require_non_negative(input_tokens_per_month=input_tokens_per_month,
                         output_tokens_per_month=output_tokens_per_month)
    require_frac(allow_zero=True, prefill_time_share_frac=prefill_time_share_frac)
    mtok_in = input_tokens_per_month / units.TOKENS_PER_MTOK
    mtok_out = output_tokens_per_month / units.TOKENS_PER_MTOK
    return MtokCost(
        input_usd_per_mtok=monthly_usd * prefill_time_share_frac / mtok_in if mtok_in else math.nan,
        output_usd_per_mtok=monthly_usd * (1 - prefill_time_share_frac) / mtok_out if mtok_out else math.nan,
        blended_usd_per_mtok=monthly_usd / (mtok_in + mtok_out) if mtok_in + mtok_out else math.nan)


def usd_per_mtok_full_load(usd_per_gpu_hour: float, num_gpus: int, output_tokens_per_s: float) -> float:
    """Cost of a million output tokens from one replica kept busy every hour.

    USD/Mtok = USD per GPU-hour x GPUs / (output tokens/s x 3,600 s/h / 10^6 tokens/Mtok)
    A lower bound on a real fleet, which idles off-peak and is sized for its peak (the plan
    sizes and prices that fleet; this ranks hardware before any traffic is known).
    """
    require_positive(usd_per_gpu_hour=usd_per_gpu_hour, output_tokens_per_s=output_tokens_per_s)
    require_positive_int(num_gpus=num_gpus)
    mtok_per_hour = output_tokens_per_s * units.S_PER_HOUR / units.TOKENS_PER_MTOK
    return usd_per_gpu_hour * num_gpus / mtok_per_hour


def is_wide_range(low: float, high: float, *, max_ratio: float = WIDE_RANGE_RATIO) -> bool:
    """True when high > max_ratio x low (both positive); see WIDE_RANGE_RATIO for the threshold's meaning."""
    require_positive(max_ratio=max_ratio)
    return low > 0 and high > max_ratio * low


@dataclass(frozen=True)
class TierCost:
    """Self-hosting on one tier at the scenario's volume (NaN / None fields when the tier is unavailable).

    `_low` fields are at the performance model's optimistic end (more requests/s per replica, so
    fewer GPUs and a lower bill), `_high` fields at its pessimistic end (the calibrated error of
    the efficiency profile). Break-even volumes are NaN without an API or without a crossing.
    """

    tier: str
    available: bool
    note: str
    provider: str | None
    price_basis: str
    price_source_url: str | None
    price_source_accessed: dt.date | None
    usd_per_gpu_hour: float  # all drivers, per GPU-hour
    fleet: Fleet | None
    gpu_hours_per_month: float
    total_gpus_low: int | None
    total_gpus_high: int | None
    monthly_usd: float
    monthly_usd_low: float
    monthly_usd_high: float
    input_usd_per_mtok: float  # reservation-based: the whole bill over the tokens served
    output_usd_per_mtok: float
    blended_usd_per_mtok: float
    input_usd_per_mtok_low: float
    input_usd_per_mtok_high: float
    output_usd_per_mtok_low: float
    output_usd_per_mtok_high: float
    blended_usd_per_mtok_low: float
    blended_usd_per_mtok_high: float
    breakeven_requests_per_day_low: float
    breakeven_requests_per_day_high: float
    drivers_usd_per_month: dict[str, float]
    driver_shares_frac: dict[str, float]
    capex_usd_per_gpu: float  # owned only


def tier_cost(price: TierPrice, *, usd_per_gpu_hour: float, fleets: tuple[Fleet, Fleet, Fleet] | None,
              monthly_usd: tuple[float, float, float], drivers: dict[str, float], input_tokens_per_month: float,
              output_tokens_per_month: float, prefill_time_share_frac: float,
              breakeven_requests_per_day: tuple[float, float] = (math.nan, math.nan),
              capex_usd_per_gpu: float = math.nan) -> TierCost:
    """Assemble one tier's costs. `fleets` and `monthly_usd` are (central, optimistic, pessimistic);
    `breakeven_requests_per_day` is (optimistic, pessimistic). fleets None: the tier is unavailable."""
    nan = math.nan
    source = dict(tier=price.tier, note=price.note, provider=price.provider, price_basis=price.basis,
                  price_source_url=price.source_url, price_source_accessed=price.source_accessed,
                  capex_usd_per_gpu=capex_usd_per_gpu)
    if fleets is None:
        return TierCost(**source, available=False, usd_per_gpu_hour=nan, fleet=None, gpu_hours_per_month=nan,
                        total_gpus_low=None, total_gpus_high=None, monthly_usd=nan, monthly_usd_low=nan,
                        monthly_usd_high=nan, input_usd_per_mtok=nan, output_usd_per_mtok=nan,
                        blended_usd_per_mtok=nan, input_usd_per_mtok_low=nan, input_usd_per_mtok_high=nan,
                        output_usd_per_mtok_low=nan, output_usd_per_mtok_high=nan, blended_usd_per_mtok_low=nan,
                        blended_usd_per_mtok_high=nan, breakeven_requests_per_day_low=nan,
                        breakeven_requests_per_day_high=nan, drivers_usd_per_month={}, driver_shares_frac={})
    central, low, high = (usd_per_mtok(m, input_tokens_per_month=input_tokens_per_month,
                                       output_tokens_per_month=output_tokens_per_month,
                                       prefill_time_share_frac=prefill_time_share_frac) for m in monthly_usd)
    monthly = monthly_usd[0]
    return TierCost(
        **source, available=True, usd_per_gpu_hour=usd_per_gpu_hour, fleet=fleets[0],
        gpu_hours_per_month=gpu_hours_per_month(fleets[0]), total_gpus_low=fleets[1].total_gpus,
        total_gpus_high=fleets[2].total_gpus, monthly_usd=monthly, monthly_usd_low=monthly_usd[1],
        monthly_usd_high=monthly_usd[2], input_usd_per_mtok=central.input_usd_per_mtok,
        output_usd_per_mtok=central.output_usd_per_mtok, blended_usd_per_mtok=central.blended_usd_per_mtok,
        input_usd_per_mtok_low=low.input_usd_per_mtok, input_usd_per_mtok_high=high.input_usd_per_mtok,
        output_usd_per_mtok_low=low.output_usd_per_mtok, output_usd_per_mtok_high=high.output_usd_per_mtok,
        blended_usd_per_mtok_low=low.blended_usd_per_mtok, blended_usd_per_mtok_high=high.blended_usd_per_mtok,
        breakeven_requests_per_day_low=breakeven_requests_per_day[0],
        breakeven_requests_per_day_high=breakeven_requests_per_day[1], drivers_usd_per_month=drivers,
        driver_shares_frac={k: (v / monthly if monthly > 0 else 0.0) for k, v in drivers.items()})
