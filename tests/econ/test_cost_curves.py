"""Chart data over volume (planner.econ.cost_curves): exact staircases and the API line."""

from __future__ import annotations

import numpy as np
import pytest

from planner.econ.cost_curves import CHART_SPAN_FACTOR, breakeven_chart, cost_curve
from planner.errors import InvalidInputError
from planner.plan import plan
from planner.scenario import Scenario

DAYS = 365 / 12


def tiny(**kw) -> Scenario:
    return Scenario(model="tiny", gpu="TEST-GPU", api_id="test-api", **kw)


def test_cost_curve_is_a_staircase(tiny_catalog):
    p = plan(tiny(requests_per_day=2e7), tiny_catalog)
    curve = cost_curve(p)
    v = np.array(curve.requests_per_day)
    assert np.all(np.diff(v) > 0) and v[0] == 0
    on_demand = np.array(curve.self_hosted_usd["on_demand"])
    assert np.all(np.diff(on_demand) >= 0)
    assert set(np.round(on_demand[1:] / 1460, 9)) <= set(range(1, 1000))  # whole replicas only
    assert np.array(curve.api_usd) == pytest.approx(v * DAYS * 0.001999)
    given_grid = cost_curve(p, [0, 1e6, 2e6])
    assert len(given_grid.api_usd) == 3
    with pytest.raises(InvalidInputError, match="grid"):
        cost_curve(p, [-1.0])


def test_breakeven_chart_steps_and_crossover_by_hand(tiny_catalog):
    p = plan(tiny(), tiny_catalog)
    chart = breakeven_chart(p)
    be = 1460 / (0.001999 * DAYS)  # one $1,460 replica against $0.001999 x 365/12 per request/day
    # the view spans 30x below the smallest and above the largest of the volume (100,000) and the break-evens
    lowest = min(b.requests_per_day for b in p.breakeven.values() if b.found)
    assert chart.low_requests_per_day == pytest.approx(lowest / CHART_SPAN_FACTOR)
    assert chart.high_requests_per_day == pytest.approx(100_000 * CHART_SPAN_FACTOR)
    on_demand = next(c for c in chart.tiers if c.name == "on_demand")
    assert on_demand.step and on_demand.usd_per_month[0] == pytest.approx(1460)
    assert all(b >= a for a, b in zip(on_demand.usd_per_month[:-1], on_demand.usd_per_month[1:], strict=True))
    tier, x, y = next(c for c in chart.crossovers if c[0] == "on_demand")
    assert x == pytest.approx(be) and y == pytest.approx(1460)


def test_breakeven_chart_on_the_real_catalog(real_catalog) -> None:
    result = plan(Scenario(model="meta-llama/Llama-3.1-8B", gpu="H100-SXM", api_id="gpt-5",
                           requests_per_day=300_000.0), real_catalog)
    chart = breakeven_chart(result)
    for curve in chart.tiers:
        assert list(curve.requests_per_day) == sorted(curve.requests_per_day)
    be = result.breakeven[result.headline_tier]
    assert be.found
    assert any(t == result.headline_tier and v == pytest.approx(be.requests_per_day) for t, v, _ in chart.crossovers)
