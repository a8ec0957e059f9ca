"""Costs: tier prices per provider, owned hardware per GPU, staff, USD per Mtok and its range (hand-derived)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from planner.data.catalog import GpuPrice
from planner.econ.costs import (
    COST_DEFAULT_PARAMETERS,
    WIDE_RANGE_RATIO,
    TierPrice,
    capital_recovery_factor,
    cheapest_offer,
    is_wide_range,
    load_cost_defaults,
    owned_gpu_month,
    staff_usd_per_month,
    tier_cost,
    tier_prices,
    usd_per_mtok,
    usd_per_mtok_full_load,
)
from planner.econ.sizing import fixed_fleet
from planner.errors import CatalogError, InvalidInputError

BAD = [math.nan, math.inf, -1.0]


def test_capital_recovery_factor():
    # i (1+i)^n / ((1+i)^n - 1) = 0.1 x 1.21 / 0.21
    assert capital_recovery_factor(0.1, 2) == pytest.approx(0.121 / 0.21)
    assert capital_recovery_factor(0.0, 4) == pytest.approx(0.25)


def test_capital_recovery_factor_at_vanishing_rates():
    # a subnormal interest rate (1e-320) made (1 + i)^n - 1 round to 0 and the plan die on a ZeroDivisionError
    # (found by the 2026-12-08 scenario-field fuzz); the limit i -> 0 is 1 / n
    assert capital_recovery_factor(1e-320, 4) == pytest.approx(0.25)
    assert capital_recovery_factor(1e-12, 5) == pytest.approx(0.2, rel=1e-9)


OWNED = dict(gpu_purchase_usd=10_000, gpu_power_w=500, server_network_capex_frac=0.5, amortisation_years=5,
             cost_of_capital_frac_per_year=0.0, residual_value_frac=0.0, server_to_gpu_power_ratio=2.0,
             power_load_frac=0.5, pue=1.5, electricity_usd_per_kwh=0.1, colocation_usd_per_kw_month=200,
             software_usd_per_gpu_year=1200)


def test_owned_gpu_month_worked_example():
    month = owned_gpu_month(**OWNED)
    assert month.capex_usd == pytest.approx(15_000)  # 10,000 x 1.5
    assert month.capital_usd == pytest.approx(250)  # 15,000 / 5 years / 12
    # 500 W x 2 = 1 kW x 0.5 load x 1.5 PUE x $0.1/kWh x 730 h = $54.75
    assert month.power_usd == pytest.approx(54.75)
    assert month.hosting_usd == pytest.approx(200)  # 1 kW x $200/kW-month
    assert month.software_usd == pytest.approx(100)
    assert month.total_usd == pytest.approx(604.75)


def test_owned_residual_value_and_interest():
    # residual 20% with no interest: (15,000 - 3,000) / 5 / 12 = 200
    assert owned_gpu_month(**{**OWNED, "residual_value_frac": 0.2}).capital_usd == pytest.approx(200)
    # 10% over 2 years, no residual: 15,000 x 0.121 / 0.21 / 12
    two_years = owned_gpu_month(**{**OWNED, "amortisation_years": 2, "cost_of_capital_frac_per_year": 0.1})
    assert two_years.capital_usd == pytest.approx(15_000 * 0.121 / 0.21 / 12)


@pytest.mark.parametrize("field", ["gpu_purchase_usd", "gpu_power_w", "amortisation_years", "pue",
                                   "electricity_usd_per_kwh", "residual_value_frac", "power_load_frac",
                                   "server_network_capex_frac", "colocation_usd_per_kw_month"])
@pytest.mark.parametrize("value", BAD)
def test_owned_rejects_bad_numbers(field, value):
    with pytest.raises(InvalidInputError, match=field):
        owned_gpu_month(**{**OWNED, field: value})


@pytest.mark.parametrize("field, value", [("gpu_purchase_usd", 0), ("pue", 0.9), ("residual_value_frac", 1.1)])
def test_owned_rejects_out_of_range(field, value):
    with pytest.raises(InvalidInputError, match=field):
        owned_gpu_month(**{**OWNED, field: value})


def test_staff_usd_per_month():
    assert staff_usd_per_month(0.5, 120_000) == pytest.approx(5_000)
    with pytest.raises(InvalidInputError, match="staff_fte"):
        staff_usd_per_month(-1, 120_000)


def test_tier_prices_listed_and_discounted(tiny_catalog):
    prices = tier_prices(tiny_catalog, "TEST-GPU", provider=None, reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.6)
    assert prices["on_demand"].usd_per_gpu_hour == pytest.approx(2.0)
    assert prices["spot"].usd_per_gpu_hour == pytest.approx(1.0)
    assert prices["on_demand"].basis == "listed"
    assert prices["on_demand"].source_url == "https://example.org/price"
    # no reserved rows: $2 less 40% / 60%
    assert prices["reserved_1y"].usd_per_gpu_hour == pytest.approx(1.2)
    assert prices["reserved_3y"].usd_per_gpu_hour == pytest.approx(0.8)
    assert "less 40%" in prices["reserved_1y"].note
    assert all(p.provider == "testcloud" for p in prices.values())


def test_tier_prices_override_and_provider(tiny_catalog):
    prices = tier_prices(tiny_catalog, "TEST-GPU", provider="TestCloud", reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.6, override_tier="spot", override_usd_per_gpu_hour=0.7)
    assert prices["spot"].usd_per_gpu_hour == pytest.approx(0.7)
    assert prices["spot"].basis == "user override" and prices["spot"].source_url is None
    with pytest.raises(InvalidInputError, match="providers with prices: testcloud"):
        tier_prices(tiny_catalog, "TEST-GPU", provider="aws", reserved_1y_discount_frac=0.4,
                    reserved_3y_discount_frac=0.6)


def test_tier_prices_for_unpriced_gpu_say_so(tiny_catalog):
    prices = tier_prices(tiny_catalog, "TEST-SMALL", provider=None, reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.6)
    assert not any(p.available for p in prices.values())
    assert "no on-demand price listed for TEST-SMALL" in prices["on_demand"].note


def _offer(provider: str, pricing: str, usd: float) -> GpuPrice:
    return GpuPrice("TEST-GPU", provider, pricing, usd, None, None, None, f"https://example.org/{provider}",
                    dt.date(2026, 11, 29), None)


def test_cheapest_offer_skips_serverless_unless_asked():
    offers = [_offer("a", "on_demand", 3.0), _offer("b", "on_demand", 2.0), _offer("c", "spot", 0.5),
              _offer("d-serverless", "on_demand", 1.0)]
    assert cheapest_offer(offers, "on_demand").provider == "b"
    assert cheapest_offer(offers, "on_demand", skip_serverless=False).provider == "d-serverless"
    assert cheapest_offer(offers, "reserved_1y") is None
    # a tie goes to the provider first in alphabetical order
    assert cheapest_offer([_offer("z", "spot", 1.0), _offer("y", "spot", 1.0)], "spot").provider == "y"


# Three clouds: "market" is cheapest on demand but lists no spot (a marketplace), "hyper" has spot and a
# listed 1-year reservation, "neo" has the cheapest spot; a serverless offer is cheapest of all.
MULTI = [_offer("market", "on_demand", 2.0), _offer("hyper", "on_demand", 4.0), _offer("hyper", "spot", 1.5),
         _offer("hyper", "reserved_1y", 3.0), _offer("neo", "on_demand", 3.0), _offer("neo", "spot", 1.2),
         _offer("neo-serverless", "on_demand", 0.5), _offer("neo-serverless", "spot", 0.1)]


def test_each_tier_takes_its_own_cheapest_offer(tiny_catalog):
    catalog = tiny_catalog.with_gpu_prices(MULTI)
    prices = tier_prices(catalog, "TEST-GPU", provider=None, reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.5)
    # on-demand: market at $2 (the serverless $0.5 is not an always-on offer)
    assert (prices["on_demand"].provider, prices["on_demand"].usd_per_gpu_hour) == ("market", pytest.approx(2.0))
    # spot: neo at $1.2, although the on-demand winner lists no spot
    assert (prices["spot"].provider, prices["spot"].usd_per_gpu_hour) == ("neo", pytest.approx(1.2))
    assert prices["spot"].source_url == "https://example.org/neo" and prices["spot"].basis == "listed"
    # 1-year: the listed reservation at hyper ($3), which is dearer than market on demand, and says so
    assert (prices["reserved_1y"].provider, prices["reserved_1y"].usd_per_gpu_hour) == ("hyper", pytest.approx(3.0))
    assert "dearer than the cheapest on-demand offer (market, 2" in prices["reserved_1y"].note
    # 3-year: none listed anywhere, so market's $2 on demand less 50% = $1
    r3 = prices["reserved_3y"]
    assert (r3.provider, r3.usd_per_gpu_hour, r3.basis) == ("market", pytest.approx(1.0),
                                                             "on-demand less reserved discount")
    assert r3.source_url == "https://example.org/market"


def test_an_explicit_provider_means_only_that_provider(tiny_catalog):
    catalog = tiny_catalog.with_gpu_prices(MULTI)
    market = tier_prices(catalog, "TEST-GPU", provider="market", reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.5)
    assert market["on_demand"].usd_per_gpu_hour == pytest.approx(2.0)
    assert not market["spot"].available and market["spot"].note == "market lists no spot price for TEST-GPU"
    assert market["reserved_1y"].usd_per_gpu_hour == pytest.approx(1.2)  # $2 less 40%
    hyper = tier_prices(catalog, "TEST-GPU", provider="hyper", reserved_1y_discount_frac=0.4,
                        reserved_3y_discount_frac=0.5)
    assert hyper["reserved_1y"].basis == "listed" and hyper["reserved_3y"].usd_per_gpu_hour == pytest.approx(2.0)
    # a serverless provider is priced only when asked for by name
    serverless = tier_prices(catalog, "TEST-GPU", provider="neo-serverless", reserved_1y_discount_frac=0.4,
                             reserved_3y_discount_frac=0.5)
    assert serverless["spot"].usd_per_gpu_hour == pytest.approx(0.1)


def test_a_gpu_with_only_spot_offers_prices_spot(tiny_catalog):
    catalog = tiny_catalog.with_gpu_prices([_offer("neo", "spot", 1.2)])
    prices = tier_prices(catalog, "TEST-GPU", provider=None, reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.5)
    assert prices["spot"].available and not prices["on_demand"].available
    assert not prices["reserved_1y"].available  # no on-demand price to discount


def test_usd_per_mtok_splits_the_bill_by_prefill_share():
    # $1,000 a month, 300 M input and 100 M output tokens, prefill takes 20% of replica time:
    # input 1,000 x 0.2 / 300 = 0.6667; output 1,000 x 0.8 / 100 = 8; blended 1,000 / 400 = 2.5
    cost = usd_per_mtok(1_000.0, input_tokens_per_month=300e6, output_tokens_per_month=100e6,
                        prefill_time_share_frac=0.2)
    assert cost.input_usd_per_mtok == pytest.approx(0.66667, rel=1e-4)
    assert cost.output_usd_per_mtok == pytest.approx(8.0)
    assert cost.blended_usd_per_mtok == pytest.approx(2.5)
    assert math.isnan(usd_per_mtok(1.0, input_tokens_per_month=0, output_tokens_per_month=0,
                                   prefill_time_share_frac=0.5).blended_usd_per_mtok)
    with pytest.raises(InvalidInputError, match="prefill_time_share_frac"):
        usd_per_mtok(1.0, input_tokens_per_month=1, output_tokens_per_month=1, prefill_time_share_frac=1.5)


def test_full_load_cost_per_mtok():
    # 2 USD/GPU-h x 4 GPUs = 8 USD/h; 1,000 tokens/s x 3,600 s = 3.6 Mtok/h; 8 / 3.6 = 2.2222 USD/Mtok
    assert usd_per_mtok_full_load(2.0, 4, 1000.0) == pytest.approx(2.2222, rel=1e-4)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(InvalidInputError, match="output_tokens_per_s"):
            usd_per_mtok_full_load(2.0, 4, bad)
    with pytest.raises(InvalidInputError, match="num_gpus"):
        usd_per_mtok_full_load(2.0, 0, 1000.0)


def test_is_wide_range_at_the_factor_two_threshold():
    assert WIDE_RANGE_RATIO == pytest.approx(2.0)
    assert not is_wide_range(100.0, 200.0)  # exactly 2x is not wider than 2x
    assert is_wide_range(100.0, 200.1)
    assert is_wide_range(100.0, 150.0, max_ratio=1.4)
    assert not is_wide_range(0.0, 10.0)  # no positive low end: no ratio


def test_tier_cost_ranges_by_hand():
    # 1 request/s capacity per replica, 86,400 requests/day at a flat design rate of 1: 1 replica of 2 GPUs;
    # at 2 requests/s (optimistic) still 1 replica; at 0.5 requests/s (pessimistic) 2 replicas = 4 GPUs
    fleets = tuple(fixed_fleet(86_400.0, cap, gpus_per_replica=2, design_rate_factor=1.0) for cap in (1.0, 2.0, 0.5))
    price = TierPrice("on_demand", True, 2.0, "testcloud", "listed", "n", "https://example.org/p", dt.date(2026, 1, 1))
    # monthly: 2 GPUs x 730 h x $2 = 2,920; the pessimistic end runs 4 GPUs = 5,840
    c = tier_cost(price, usd_per_gpu_hour=2.0, fleets=fleets, monthly_usd=(2_920.0, 2_920.0, 5_840.0),
                  drivers={"gpu_rental": 2_920.0}, input_tokens_per_month=292e6, output_tokens_per_month=0.0,
                  prefill_time_share_frac=1.0, breakeven_requests_per_day=(5_000.0, math.nan))
    assert (c.fleet.total_gpus, c.total_gpus_low, c.total_gpus_high) == (2, 2, 4)
    # all tokens are input: 2,920 / 292 Mtok = 10 USD/Mtok, 20 at the pessimistic end
    assert c.input_usd_per_mtok == pytest.approx(10.0) and c.blended_usd_per_mtok == pytest.approx(10.0)
    assert c.blended_usd_per_mtok_low == pytest.approx(10.0) and c.blended_usd_per_mtok_high == pytest.approx(20.0)
    assert c.input_usd_per_mtok_high == pytest.approx(20.0) and math.isnan(c.output_usd_per_mtok_high)
    assert c.breakeven_requests_per_day_low == pytest.approx(5_000.0)
    assert math.isnan(c.breakeven_requests_per_day_high)
    assert (c.provider, c.price_basis, c.price_source_url) == ("testcloud", "listed", "https://example.org/p")
    assert c.driver_shares_frac == {"gpu_rental": pytest.approx(1.0)}
    missing = tier_cost(TierPrice("spot", False, math.nan, None, "unavailable", "none listed"),
                        usd_per_gpu_hour=math.nan, fleets=None, monthly_usd=(math.nan,) * 3, drivers={},
                        input_tokens_per_month=1.0, output_tokens_per_month=1.0, prefill_time_share_frac=0.5)
    assert not missing.available and missing.total_gpus_low is None and math.isnan(missing.blended_usd_per_mtok_low)


def test_real_cost_defaults_are_complete_and_sourced():
    table = load_cost_defaults()
    assert set(table) == set(COST_DEFAULT_PARAMETERS)
    assert table["pue"].value == pytest.approx(1.58)  # Uptime Institute 2023 average
    assert table["colocation_usd_per_kw_month"].value == pytest.approx(184.06)  # CBRE H2 2024
    assert all(row.source_url.startswith("https://") for row in table.values())


@pytest.mark.parametrize("edit, match", [
    (lambda rows: rows[:-1], "missing parameter"),
    (lambda rows: rows + ["nonsense,1,x,https://a,2026-11-29,"], "unknown parameter"),
    (lambda rows: [r.replace("power_load_frac,0.7353", "power_load_frac,1.7") for r in rows], "<= 1"),
    (lambda rows: [r.replace("pue,1.58", "pue,abc") for r in rows], "must be a number"),
])
def test_bad_cost_defaults_file(tmp_path, edit, match):
    from planner.data.catalog import DATA_DIR
    lines = (DATA_DIR / "cost_defaults.csv").read_text().splitlines()
    path = tmp_path / "cost_defaults.csv"
    path.write_text("\n".join([lines[0], *edit(lines[1:])]) + "\n")
    with pytest.raises(CatalogError, match=match):
        load_cost_defaults(path)
