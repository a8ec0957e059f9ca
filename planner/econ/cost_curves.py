"""Cost against volume for charts: self-hosted cost per tier (a step function) and the API line.

Both functions sample `breakeven.self_hosted_usd_per_month` and `breakeven.api_usd_per_month`
at month-1 prices; neither adds a formula. `cost_curve` is a linear grid that includes both
sides of every replica step of the headline tier; `breakeven_chart` is the log-scaled chart of
the app, one point per step so a step line draws the staircase exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.econ.breakeven import api_usd_per_month, self_hosted_usd_per_month, step_edges
from planner.errors import InvalidInputError
from planner.plan import Plan

CHART_SPAN_FACTOR = 30.0  # the log chart spans this factor below and above the volumes it must show
CHART_POINTS = 240  # log-spaced samples of the API line (and of a step curve with more edges than MAX_STEP_EDGES)
MAX_STEP_EDGES = 4000  # beyond this many replica steps in view, a curve is sampled on the log grid instead
CHART_FALLBACK_REQUESTS_PER_DAY = 10.0  # anchor when the plan gives no positive volume to centre on


@dataclass(frozen=True)
class CostCurve:
    """Monthly cost against volume, for the break-even chart (self-hosting is a step function)."""

    requests_per_day: tuple[float, ...]
    self_hosted_usd: dict[str, tuple[float, ...]]  # per available tier
    api_usd: tuple[float, ...]  # empty without an API price


def cost_curve(p: Plan, requests_per_day: np.ndarray | list[float] | None = None, *, points: int = 200,
               max_steps: int = 400) -> CostCurve:
    """Self-hosted monthly cost per tier and the API's over a grid of volumes (month-1 prices).

    Without a grid: 0 to 3x the larger of the scenario's volume and the furthest break-even,
    plus both sides of each replica step of the headline tier (up to `max_steps`), so a line
    through the points draws the staircase exactly.
    """
    econ = p.economics
    if requests_per_day is None:
        found = [b.requests_per_day for b in p.breakeven.values() if b.found]
        top = 3 * max([p.workload.requests_per_day, *found])
        grid = np.linspace(0.0, top, points)
        if p.headline_tier in econ.tiers:
            edges = step_edges(econ, p.headline_tier, top)[1:-1][:max_steps]
            grid = np.concatenate([grid, edges, np.nextafter(edges, np.inf)])
        grid = np.unique(grid)
    else:
        grid = np.asarray(requests_per_day, dtype=float)
        if grid.ndim != 1 or grid.size == 0 or np.any(~np.isfinite(grid)) or np.any(grid < 0):
            raise InvalidInputError("requests_per_day grid must be a non-empty list of finite volumes >= 0")
    return CostCurve(
        requests_per_day=tuple(float(v) for v in grid),
        self_hosted_usd={t: tuple(float(c) for c in self_hosted_usd_per_month(econ, t, grid)) for t in econ.tiers},
        api_usd=tuple(float(c) for c in api_usd_per_month(econ, grid)) if p.api else ())


@dataclass(frozen=True)
class Curve:
    """One line of the break-even chart: volumes (requests/day) and USD per month; `step` draws it as steps."""

    name: str
    requests_per_day: tuple[float, ...]
    usd_per_month: tuple[float, ...]
    step: bool


@dataclass(frozen=True)
class BreakevenChart:
    """Self-hosted cost per tier (step functions of volume) against the API line, at month-1 prices."""

    low_requests_per_day: float
    high_requests_per_day: float
    tiers: tuple[Curve, ...]
    api: Curve | None
    crossovers: tuple[tuple[str, float, float], ...]  # (tier, requests/day, USD/month there)
    current_requests_per_day: float


def breakeven_chart(p: Plan) -> BreakevenChart:
    """Curves for a log-log break-even chart of a Plan.

    The view spans CHART_SPAN_FACTOR below the smallest and above the largest of the
    scenario's volume and the break-even volumes. Each tier's curve has one point per replica
    step (`breakeven.step_edges`), priced at the step's midpoint, so drawn as steps it is exact.
    """
    econ, current = p.economics, p.workload.requests_per_day
    anchors = [current] + [b.requests_per_day for b in p.breakeven.values() if b.found]
    anchors = [a for a in anchors if a > 0] or [CHART_FALLBACK_REQUESTS_PER_DAY]
    low, high = min(anchors) / CHART_SPAN_FACTOR, max(anchors) * CHART_SPAN_FACTOR
    grid = np.geomspace(low, high, CHART_POINTS)
    curves = []
    for tier in econ.tiers:
        edges = step_edges(econ, tier, high)
        edges = edges[edges > low]
        if edges.size > MAX_STEP_EDGES:
            starts = mids = grid
        else:
            starts = np.concatenate(([low], edges[:-1]))
            mids = (starts + np.concatenate((starts[1:], [high]))) / 2.0
        costs = self_hosted_usd_per_month(econ, tier, mids)
        curves.append(Curve(tier, tuple(np.append(starts, high)), tuple(np.append(costs, costs[-1])), True))
    api = None
    crossovers: list[tuple[str, float, float]] = []
    if p.api is not None:
        api = Curve("API", tuple(grid), tuple(api_usd_per_month(econ, grid)), False)
        for tier, b in p.breakeven.items():
            if b.found:
                crossovers.append((tier, b.requests_per_day, float(api_usd_per_month(econ, b.requests_per_day)[0])))
    return BreakevenChart(low, high, tuple(curves), api, tuple(crossovers), current)


__all__ = ["CostCurve", "cost_curve", "Curve", "BreakevenChart", "breakeven_chart"]
