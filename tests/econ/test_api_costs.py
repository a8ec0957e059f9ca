"""API side: per-request rates with cache and batch prices, price decline, and effective USD per Mtok."""

from __future__ import annotations

import dataclasses
import math

import pytest

from planner.econ.api_costs import api_cost, api_price_factor, api_rates, api_usd_per_request
from planner.errors import InvalidInputError

DAYS = 365 / 12


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


def test_api_cost_per_mtok_by_hand(tiny_catalog):
    # $1 in and $4 out per Mtok, 1,155 in and 211 out tokens (chat preset), no cache, no batch share:
    # per request 1,155 x 1 / 1e6 + 211 x 4 / 1e6 = 0.001999 USD;
    # blended (1,155 x 1 + 211 x 4) / (1,155 + 211) = 1,999 / 1,366 = 1.46340 USD/Mtok
    rates = api_rates(tiny_catalog.api_price("test-api"), input_tokens_mean=1155, output_tokens_mean=211)
    cost = api_cost(rates, requests_per_day=100_000.0, input_tokens_mean=1155, output_tokens_mean=211,
                    offline_frac=0.0, note="")
    assert cost.usd_per_request == pytest.approx(0.001999)
    assert cost.monthly_usd == pytest.approx(100_000 * DAYS * 0.001999)
    assert cost.input_usd_per_mtok == pytest.approx(1.0)
    assert cost.output_usd_per_mtok == pytest.approx(4.0)
    assert cost.blended_usd_per_mtok == pytest.approx(1.46340, rel=1e-5)
    # the per-token price does not depend on the volume
    tenfold = api_cost(rates, requests_per_day=1e6, input_tokens_mean=1155, output_tokens_mean=211,
                       offline_frac=0.0, note="")
    assert tenfold.blended_usd_per_mtok == pytest.approx(cost.blended_usd_per_mtok)


def test_api_cost_per_mtok_with_batch_share(tiny_catalog):
    # half the requests as batches at $0.5 / $2: input 0.5 x 1 + 0.5 x 0.5 = 0.75 USD/Mtok, output 3 USD/Mtok
    rates = api_rates(tiny_catalog.api_price("test-api"), input_tokens_mean=1000, output_tokens_mean=1000)
    cost = api_cost(rates, requests_per_day=1_000.0, input_tokens_mean=1000, output_tokens_mean=1000,
                    offline_frac=0.5, note="")
    assert cost.input_usd_per_mtok == pytest.approx(0.75)
    assert cost.output_usd_per_mtok == pytest.approx(3.0)
    assert cost.blended_usd_per_mtok == pytest.approx(1.875)  # (0.75 + 3) / 2 with equal token counts
    with pytest.raises(InvalidInputError, match="requests_per_day"):
        api_cost(rates, requests_per_day=0.0, input_tokens_mean=1000, output_tokens_mean=1000, offline_frac=0.0,
                 note="")
