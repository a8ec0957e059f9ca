"""Costs: GPU-hour prices per rental tier, owned-hardware cost per GPU, and API cost per request.

Rented: the catalog's listed price for the provider and tier; a reserved tier with no
listed price is on-demand less a sourced discount (data/cost_defaults.csv); spot adds an
interruption overhead. Owned: capex (GPU plus its share of server and network) recovered
as an annuity at the cost of capital with a residual value [1], power = watts x load x PUE
x $/kWh, colocation $/kW-month on the server's maximum draw, software licences. Staff are
a fixed monthly cost of either. API: input, cached input, cache write and output prices,
batch prices for the offline share, and an optional yearly price decline.

[1] Capital recovery factor CRF = i (1 + i)^n / ((1 + i)^n - 1), as in NREL's levelized cost
    of energy documentation, https://www.nrel.gov/analysis/tech-lcoe-documentation.html
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from planner import units
from planner._csvschema import Col, read_rows
from planner.catalog import DATA_DIR, ApiPrice, Catalog, GpuPrice
from planner.errors import CatalogError, InvalidInputError, require_frac, require_non_negative, require_positive
from planner.sizing import Fleet, gpu_hours_per_month
from planner.workload import Workload

RENTAL_TIERS = ("on_demand", "spot", "reserved_1y", "reserved_3y")
ELASTIC_TIERS = ("on_demand", "spot")  # billed by the hour, so they can follow the daily curve
OWNED = "owned"
ALL_TIERS = RENTAL_TIERS + (OWNED,)
# Per-second "serverless" offers bill only while a worker runs; they are not comparable with always-on
# instances (data/gpu_prices.csv notes), so the default provider is never chosen among them.
_SERVERLESS_MARK = "serverless"

COST_DEFAULT_SCHEMA = {"parameter": Col("str"), "value": Col("float0"), "unit": Col("str"), "source_url": Col("url"),
                       "source_accessed": Col("date"), "notes": Col("str", False)}
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
    value: float
    unit: str
    source_url: str
    source_accessed: dt.date
    notes: str | None


def load_cost_defaults(path: str | Path = DATA_DIR / "cost_defaults.csv") -> dict[str, CostDefault]:
    """Read and check the owned-hardware and pricing defaults; every expected parameter must be there."""
    rows = read_rows(path, COST_DEFAULT_SCHEMA, id_column="parameter")
    table = {r["parameter"]: CostDefault(**{k: v for k, v in r.items() if not k.startswith("_")}) for r in rows}
    for row in rows:
        if row["parameter"] not in COST_DEFAULT_PARAMETERS:
            raise CatalogError(Path(path).name, row["_row"], "parameter", row["parameter"], "unknown parameter")
        if row["parameter"].endswith("_frac") and not row["parameter"].startswith("cost_of") and row["value"] > 1:
            raise CatalogError(Path(path).name, row["_row"], "value", row["value"], "a fraction must be <= 1")
    missing = [p for p in COST_DEFAULT_PARAMETERS if p not in table]
    if missing:
        raise CatalogError(Path(path).name, None, "parameter", missing[0], "missing parameter")
    return table


@dataclass(frozen=True)
class TierPrice:
    """What one rental tier costs per GPU-hour, where the number comes from, or why there is none."""

    tier: str
    available: bool
    usd_per_gpu_hour: float  # NaN when unavailable
    provider: str | None
    basis: str  # "listed", "on-demand less reserved discount", "user override" or "unavailable"
    note: str


def default_provider(offers: list[GpuPrice]) -> str | None:
    """Provider of the cheapest always-on on-demand offer (None when the GPU has none)."""
    candidates = [o for o in offers if o.pricing == "on_demand" and _SERVERLESS_MARK not in o.provider.lower()]
    if not candidates:
        return None
    return min(candidates, key=lambda o: (o.usd_per_gpu_hour, o.provider)).provider


def tier_prices(catalog: Catalog, gpu_id: str, *, provider: str | None, reserved_1y_discount_frac: float,
                reserved_3y_discount_frac: float, override_tier: str | None = None,
                override_usd_per_gpu_hour: float | None = None) -> dict[str, TierPrice]:
    """Price per GPU-hour of each rental tier at one provider (default: cheapest on-demand offer).

    A tier uses the provider's cheapest listed offer; a reserved tier without one is
    on-demand x (1 - discount); otherwise the tier is unavailable, with a note saying so.
    """
    require_frac(allow_zero=True, reserved_1y_discount_frac=reserved_1y_discount_frac,
                 reserved_3y_discount_frac=reserved_3y_discount_frac)
    offers = catalog.prices_for(gpu_id)
    if provider is not None:
        names = sorted({o.provider for o in offers})
        chosen = next((n for n in names if n.lower() == provider.strip().lower()), None)
        if chosen is None:
            listed = ", ".join(names) if names else "none"
            raise InvalidInputError(f"provider {provider!r} lists no price for {gpu_id}; providers with prices: "
                                    f"{listed}")
        how = "as asked"
    else:
        chosen = default_provider(offers)
        how = "cheapest on-demand offer"
    mine = [o for o in offers if o.provider == chosen]
    discounts = {"reserved_1y": reserved_1y_discount_frac, "reserved_3y": reserved_3y_discount_frac}
    listed = {t: min((o.usd_per_gpu_hour for o in mine if o.pricing == t), default=None) for t in RENTAL_TIERS}
    out: dict[str, TierPrice] = {}
    for tier in RENTAL_TIERS:
        if override_tier == tier and override_usd_per_gpu_hour is not None:
            require_positive(gpu_price_usd_per_gpu_hour=override_usd_per_gpu_hour)
            out[tier] = TierPrice(tier, True, override_usd_per_gpu_hour, chosen, "user override",
                                  f"gpu_price_usd_per_gpu_hour set to {override_usd_per_gpu_hour:g}")
        elif chosen is None:
            out[tier] = TierPrice(tier, False, float("nan"), None, "unavailable",
                                  f"no on-demand price listed for {gpu_id} in gpu_prices.csv; set "
                                  f"gpu_price_usd_per_gpu_hour")
        elif listed[tier] is not None:
            out[tier] = TierPrice(tier, True, listed[tier], chosen, "listed",
                                  f"{chosen} ({how}), cheapest listed {tier} offer")
        elif tier in discounts and listed["on_demand"] is not None:
            price = listed["on_demand"] * (1.0 - discounts[tier])
            out[tier] = TierPrice(tier, True, price, chosen, "on-demand less reserved discount",
                                  f"{chosen} lists no {tier} price: on-demand {listed['on_demand']:g} less "
                                  f"{discounts[tier]:.0%} (cost_defaults.csv)")
        else:
            out[tier] = TierPrice(tier, False, float("nan"), chosen, "unavailable",
                                  f"{chosen} lists no {tier} price for {gpu_id}")
    return out


def capital_recovery_factor(rate_frac_per_year: float, years: float) -> float:
    """Share of a capital sum repaid each year over `years` at `rate`: i (1+i)^n / ((1+i)^n - 1); 1/n at i = 0."""
    require_non_negative(rate_frac_per_year=rate_frac_per_year)
    require_positive(years=years)
    if rate_frac_per_year == 0:
        return 1.0 / years
    growth = (1.0 + rate_frac_per_year) ** years
    return rate_frac_per_year * growth / (growth - 1.0)


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
class ApiRates:
    """API cost of one request of the workload's mean size, online and as an offline batch."""

    api_id: str
    provider: str
    online_input_usd: float
    online_output_usd: float
    batch_input_usd: float
    batch_output_usd: float
    batch_listed: bool
    cache_price_listed: bool


def api_rates(price: ApiPrice, *, input_tokens_mean: float, output_tokens_mean: float,
              prompt_cache_hit_frac: float = 0.0, prompt_cache_write_frac: float = 0.0) -> ApiRates:
    """Per-request API cost. Online input tokens split into cache hits (cached price), cache
    writes (write price) and the rest (input price); an API that lists no cached or write
    price charges its input price for them. Offline requests pay the batch prices (the
    online prices where no batch price is listed), without cache discounts.
    """
    require_positive(input_tokens_mean=input_tokens_mean, output_tokens_mean=output_tokens_mean)
    require_frac(allow_zero=True, prompt_cache_hit_frac=prompt_cache_hit_frac,
                 prompt_cache_write_frac=prompt_cache_write_frac)
    if prompt_cache_hit_frac + prompt_cache_write_frac > 1:
        raise InvalidInputError("prompt_cache_hit_frac + prompt_cache_write_frac must be <= 1")
    cached = price.cached_input_usd_per_mtok
    write = price.cache_write_usd_per_mtok
    per_input_token = (prompt_cache_hit_frac * (cached if cached is not None else price.input_usd_per_mtok)
                       + prompt_cache_write_frac * (write if write is not None else price.input_usd_per_mtok)
                       + (1 - prompt_cache_hit_frac - prompt_cache_write_frac) * price.input_usd_per_mtok
                       ) / units.TOKENS_PER_MTOK
    batch_listed = price.batch_input_usd_per_mtok is not None and price.batch_output_usd_per_mtok is not None
    batch_in = price.batch_input_usd_per_mtok if batch_listed else price.input_usd_per_mtok
    batch_out = price.batch_output_usd_per_mtok if batch_listed else price.output_usd_per_mtok
    return ApiRates(
        api_id=price.api_id, provider=price.provider,
        online_input_usd=input_tokens_mean * per_input_token,
        online_output_usd=output_tokens_mean * price.output_usd_per_mtok / units.TOKENS_PER_MTOK,
        batch_input_usd=input_tokens_mean * batch_in / units.TOKENS_PER_MTOK,
        batch_output_usd=output_tokens_mean * batch_out / units.TOKENS_PER_MTOK,
        batch_listed=batch_listed, cache_price_listed=cached is not None,
    )


def api_usd_per_request(rates: ApiRates, offline_frac: float) -> tuple[float, float]:
    """(input, output) API cost of an average request with share `offline_frac` sent as batches."""
    require_frac(allow_zero=True, offline_frac=offline_frac)
    inp = (1 - offline_frac) * rates.online_input_usd + offline_frac * rates.batch_input_usd
    out = (1 - offline_frac) * rates.online_output_usd + offline_frac * rates.batch_output_usd
    return inp, out


def api_price_factor(decline_frac_per_year: float, month: int) -> float:
    """Price multiplier in month `month` (1 = now) with a constant yearly decline: (1 - d)^((month - 1) / 12)."""
    require_frac(allow_zero=True, decline_frac_per_year=decline_frac_per_year)
    if decline_frac_per_year == 1:
        raise InvalidInputError("api_price_decline_frac_per_year must be < 1 (a price cannot fall to zero)")
    return (1.0 - decline_frac_per_year) ** ((month - 1) / units.MONTHS_PER_YEAR)


@dataclass(frozen=True)
class ApiCost:
    """The workload at an API's prices, this month."""

    api_id: str
    provider: str
    monthly_usd: float
    input_usd_per_month: float
    output_usd_per_month: float
    usd_per_request: float
    batch_listed: bool
    note: str


def resolve_api(catalog: Catalog, api_id: str | None, model_id: str, w: Workload, warnings: list[str]
                ) -> tuple[ApiCost | None, ApiRates | None]:
    """The API to compare with (the named one, else the cheapest serving the same model) and its cost."""
    def rates_of(price: ApiPrice) -> ApiRates:
        return api_rates(price, input_tokens_mean=w.input_tokens_mean, output_tokens_mean=w.output_tokens_mean,
                         prompt_cache_hit_frac=w.prompt_cache_hit_frac,
                         prompt_cache_write_frac=w.prompt_cache_write_frac)

    if api_id is not None:
        price, how = catalog.api_price(api_id), "as asked"
    else:
        same = [p for p in catalog.api_prices.values() if p.catalog_model_id == model_id]
        if not same:
            warnings.append(f"no API in api_prices.csv serves {model_id}; set api_id to compare (no break-even)")
            return None, None
        price = min(same, key=lambda p: (sum(api_usd_per_request(rates_of(p), w.offline_frac)), p.api_id))
        how = f"cheapest of {len(same)} APIs serving {model_id}"
    rates = rates_of(price)
    if w.offline_frac > 0 and not rates.batch_listed:
        warnings.append(f"{price.api_id} lists no batch price: the offline share is priced at online rates")
    if w.prompt_cache_hit_frac > 0 and not rates.cache_price_listed:
        warnings.append(f"{price.api_id} lists no cached-input price: cache hits are priced as input")
    inp, out = api_usd_per_request(rates, w.offline_frac)
    per_month = w.requests_per_day * units.DAYS_PER_MONTH
    return ApiCost(api_id=price.api_id, provider=price.provider, monthly_usd=per_month * (inp + out),
                   input_usd_per_month=per_month * inp, output_usd_per_month=per_month * out,
                   usd_per_request=inp + out, batch_listed=rates.batch_listed,
                   note=f"{price.provider} {price.model_name} ({how}); prices {price.source_url} "
                        f"({price.source_accessed})"), rates


@dataclass(frozen=True)
class TierCost:
    """Self-hosting on one tier at the scenario's volume (NaN fields when the tier is unavailable)."""

    tier: str
    available: bool
    note: str
    provider: str | None
    price_basis: str
    usd_per_gpu_hour: float  # all drivers, per GPU-hour
    fleet: Fleet | None
    gpu_hours_per_month: float
    monthly_usd: float
    monthly_usd_low: float  # at the performance model's optimistic capacity
    monthly_usd_high: float  # at its pessimistic capacity
    input_usd_per_mtok: float  # reservation-based: the whole bill over the tokens served
    output_usd_per_mtok: float
    blended_usd_per_mtok: float
    drivers_usd_per_month: dict[str, float]
    driver_shares_frac: dict[str, float]
    capex_usd_per_gpu: float  # owned only


def tier_cost(tier: str, usd_per_gpu_hour: float, note: str, fleet: Fleet | None, *, monthly: float, low: float,
              high: float, drivers: dict[str, float], tokens_in: float, tokens_out: float, prefill_share: float,
              provider: str | None, basis: str, capex_usd_per_gpu: float) -> TierCost:
    """Assemble one tier's costs; $/Mtok splits the bill by the prefill share of replica time."""
    nan = math.nan
    if fleet is None:
        return TierCost(tier, False, note, provider, basis, nan, None, nan, nan, nan, nan, nan, nan, nan, {}, {},
                        capex_usd_per_gpu)
    mtok_in, mtok_out = tokens_in / units.TOKENS_PER_MTOK, tokens_out / units.TOKENS_PER_MTOK
    shares = {k: (v / monthly if monthly > 0 else 0.0) for k, v in drivers.items()}
    return TierCost(
        tier=tier, available=True, note=note, provider=provider, price_basis=basis, usd_per_gpu_hour=usd_per_gpu_hour,
        fleet=fleet, gpu_hours_per_month=gpu_hours_per_month(fleet), monthly_usd=monthly, monthly_usd_low=low,
        monthly_usd_high=high,
        input_usd_per_mtok=monthly * prefill_share / mtok_in if mtok_in else nan,
        output_usd_per_mtok=monthly * (1 - prefill_share) / mtok_out if mtok_out else nan,
        blended_usd_per_mtok=monthly / (mtok_in + mtok_out) if mtok_in + mtok_out else nan,
        drivers_usd_per_month=drivers, driver_shares_frac=shares, capex_usd_per_gpu=capex_usd_per_gpu)
