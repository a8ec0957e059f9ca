"""The same workload at an API's per-token prices: per request, per month and per million tokens.

Online input tokens split into cache hits (cached price), cache writes (write price) and the
rest (input price); offline requests pay the batch prices (the online prices where none is
listed); an optional yearly decline scales every price. Prices come from data/api_prices.csv
with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner import units
from planner.data.catalog import ApiPrice, Catalog
from planner.econ.workload import Workload, monthly_tokens
from planner.errors import InvalidInputError, require_frac, require_positive


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
    """The workload at an API's prices, this month.

    The USD per Mtok fields are effective prices for this workload (cache hits, cache writes and
    the batch share included): input = input bill / input Mtok, output = output bill / output
    Mtok, blended = whole bill / (input + output) Mtok, the figure to set beside the self-hosted
    `TierCost.blended_usd_per_mtok`. They do not depend on the volume.
    """

    api_id: str
    provider: str
    monthly_usd: float
    input_usd_per_month: float
    output_usd_per_month: float
    usd_per_request: float
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    blended_usd_per_mtok: float
    batch_listed: bool
    note: str


def api_cost(rates: ApiRates, *, requests_per_day: float, input_tokens_mean: float, output_tokens_mean: float,
             offline_frac: float, note: str) -> ApiCost:
    """Monthly API bill and effective USD per Mtok of a workload.

    month = requests/day x 365/12 days x (input, output) USD per request;
    USD/Mtok = bill / (tokens a month / 10^6), for input, output and both together.
    """
    require_positive(requests_per_day=requests_per_day)
    inp, out = api_usd_per_request(rates, offline_frac)
    per_month = requests_per_day * units.DAYS_PER_MONTH
    tokens_in, tokens_out = monthly_tokens(requests_per_day, input_tokens_mean, output_tokens_mean)
    mtok_in, mtok_out = tokens_in / units.TOKENS_PER_MTOK, tokens_out / units.TOKENS_PER_MTOK
    return ApiCost(api_id=rates.api_id, provider=rates.provider, monthly_usd=per_month * (inp + out),
                   input_usd_per_month=per_month * inp, output_usd_per_month=per_month * out,
                   usd_per_request=inp + out, input_usd_per_mtok=per_month * inp / mtok_in,
                   output_usd_per_mtok=per_month * out / mtok_out,
                   blended_usd_per_mtok=per_month * (inp + out) / (mtok_in + mtok_out),
                   batch_listed=rates.batch_listed, note=note)


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
    cost = api_cost(rates, requests_per_day=w.requests_per_day, input_tokens_mean=w.input_tokens_mean,
                    output_tokens_mean=w.output_tokens_mean, offline_frac=w.offline_frac,
                    note=f"{price.provider} {price.model_name} ({how}); prices {price.source_url} "
                         f"({price.source_accessed})")
    return cost, rates
