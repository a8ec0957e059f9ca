"""Costs: tier prices, owned hardware per GPU, staff, API per request, price decline (hand-derived)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from planner.catalog import GpuPrice
from planner.costs import (
    COST_DEFAULT_PARAMETERS,
    api_price_factor,
    api_rates,
    api_usd_per_request,
    capital_recovery_factor,
    default_provider,
    load_cost_defaults,
    owned_gpu_month,
    staff_usd_per_month,
    tier_prices,
)
from planner.errors import CatalogError, InvalidInputError

BAD = [math.nan, math.inf, -1.0]


def test_capital_recovery_factor():
    # i (1+i)^n / ((1+i)^n - 1) = 0.1 x 1.21 / 0.21
    assert capital_recovery_factor(0.1, 2) == pytest.approx(0.121 / 0.21)
    assert capital_recovery_factor(0.0, 4) == pytest.approx(0.25)


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
    # no reserved rows: $2 less 40% / 60%
    assert prices["reserved_1y"].usd_per_gpu_hour == pytest.approx(1.2)
    assert prices["reserved_3y"].usd_per_gpu_hour == pytest.approx(0.8)
    assert "less 40%" in prices["reserved_1y"].note
    assert all(p.provider == "testcloud" for p in prices.values())


def test_tier_prices_override_and_provider(tiny_catalog):
    prices = tier_prices(tiny_catalog, "TEST-GPU", provider="TestCloud", reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.6, override_tier="spot", override_usd_per_gpu_hour=0.7)
    assert prices["spot"].usd_per_gpu_hour == pytest.approx(0.7)
    assert prices["spot"].basis == "user override"
    with pytest.raises(InvalidInputError, match="providers with prices: testcloud"):
        tier_prices(tiny_catalog, "TEST-GPU", provider="aws", reserved_1y_discount_frac=0.4,
                    reserved_3y_discount_frac=0.6)


def test_tier_prices_for_unpriced_gpu_say_so(tiny_catalog):
    prices = tier_prices(tiny_catalog, "TEST-SMALL", provider=None, reserved_1y_discount_frac=0.4,
                         reserved_3y_discount_frac=0.6)
    assert not any(p.available for p in prices.values())
    assert "no on-demand price listed for TEST-SMALL" in prices["on_demand"].note


def _offer(provider: str, pricing: str, usd: float) -> GpuPrice:
    return GpuPrice("G", provider, pricing, usd, None, None, None, "https://example.org", dt.date(2026, 11, 29), None)


def test_default_provider_is_cheapest_always_on_offer():
    offers = [_offer("a", "on_demand", 3.0), _offer("b", "on_demand", 2.0), _offer("c", "spot", 0.5),
              _offer("d-serverless", "on_demand", 1.0)]
    assert default_provider(offers) == "b"
    assert default_provider([_offer("c", "spot", 0.5)]) is None


def test_api_rates_worked_example(tiny_catalog):
    price = tiny_catalog.api_price("test-api")  # $1 in, $4 out, $0.1 cached, $1.25 write, batch $0.5 / $2
    rates = api_rates(price, input_tokens_mean=1000, output_tokens_mean=500, prompt_cache_hit_frac=0.5,
                      prompt_cache_write_frac=0.2)
    # input: 1,000 x (0.5 x 0.1 + 0.2 x 1.25 + 0.3 x 1) / 1e6 = 0.0006
    assert rates.online_input_usd == pytest.approx(0.0006)
    assert rates.online_output_usd == pytest.approx(0.002)  # 500 x 4 / 1e6
    assert rates.batch_input_usd == pytest.approx(0.0005)
    assert rates.batch_output_usd == pytest.approx(0.001)
    inp, out = api_usd_per_request(rates, 0.5)
    assert inp == pytest.approx(0.00055)
    assert out == pytest.approx(0.0015)


def test_api_without_cache_or_batch_prices_charges_list_prices(tiny_catalog):
    import dataclasses
    price = dataclasses.replace(tiny_catalog.api_price("test-api"), cached_input_usd_per_mtok=None,
                                cache_write_usd_per_mtok=None, batch_input_usd_per_mtok=None)
    rates = api_rates(price, input_tokens_mean=1000, output_tokens_mean=500, prompt_cache_hit_frac=0.5)
    assert rates.online_input_usd == pytest.approx(0.001)
    assert not rates.batch_listed and not rates.cache_price_listed
    assert rates.batch_input_usd == pytest.approx(0.001)


@pytest.mark.parametrize("kw", [dict(prompt_cache_hit_frac=0.8, prompt_cache_write_frac=0.3),
                                dict(prompt_cache_hit_frac=math.nan), dict(input_tokens_mean=0),
                                dict(output_tokens_mean=math.inf)])
def test_api_rates_rejects(tiny_catalog, kw):
    args = dict(input_tokens_mean=1000, output_tokens_mean=500)
    args.update(kw)
    with pytest.raises(InvalidInputError):
        api_rates(tiny_catalog.api_price("test-api"), **args)


def test_api_price_factor():
    assert api_price_factor(0.5, 1) == pytest.approx(1.0)
    assert api_price_factor(0.5, 13) == pytest.approx(0.5)  # one year later
    assert api_price_factor(0.9, 7) == pytest.approx(0.1 ** 0.5)
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(InvalidInputError):
            api_price_factor(bad, 2)


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
    from planner.catalog import DATA_DIR
    lines = (DATA_DIR / "cost_defaults.csv").read_text().splitlines()
    path = tmp_path / "cost_defaults.csv"
    path.write_text("\n".join([lines[0], *edit(lines[1:])]) + "\n")
    with pytest.raises(CatalogError, match=match):
        load_cost_defaults(path)
