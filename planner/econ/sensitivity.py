"""Sensitivity: how the headline monthly cost and break-even volume move with each main driver.

One-at-a-time (tornado) analysis [1]: each driver is moved down and up by the same fraction
of the value the plan used (clipped to the field's bounds, `scenario.clip_to_field`) and the
scenario is re-planned with everything else held; the bars are sorted by how far they move
the monthly cost. Model throughput moves over the performance model's calibrated range
instead, which the plan already carries (`TierCost.*_low` / `*_high`), so it needs no re-plan.
Only the drivers of the headline deployment are swung: the rental price for rented plans,
purchase price and electricity for owned ones.

Each swing re-runs the configuration search (`plan`), with the GPU (when the scenario says "auto"),
the serving engine and the weight precision held at the plan's own choice (`HELD_AXES`, only those the
scenario leaves to the search): GPUs per replica, layout, KV-cache dtype, batch limit, fleet size and
provider are re-optimised at every point. Holding those three cuts the searched configurations about
15-fold (9,112 to 592 for the default scenario), which is what makes the page's first load short: a
token-size or latency-target swing changes every configuration's capacity, so nothing of the plan's
own search can be reused. `hold=()` re-optimises every axis (the slow, complete answer). The re-plans
need only the headline cost and break-even, so they run with `plan(..., extras=False)`: the search skips
the cost-latency frontier and the per-axis alternatives, which change no cost (`plan`).

[1] T. G. Eschenbach, "Spiderplots versus Tornado Diagrams for Sensitivity Analysis",
    Interfaces 22(6):40-46, 1992, doi:10.1287/inte.22.6.40
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from planner.data.catalog import Catalog
from planner.errors import InvalidInputError, PlannerError, require_frac
from planner.plan import Plan, plan
from planner.scenario import Scenario, clip_to_field

# Drivers the tornado swings, with their labels; rented and owned plans swing their own price drivers.
TORNADO_DRIVERS = {
    "requests_per_day": "traffic volume", "input_tokens_mean": "tokens in per request",
    "output_tokens_mean": "tokens out per request", "peak_to_average_ratio": "peak factor",
    "tpot_target_s": "TPOT target", "ttft_target_s": "TTFT target",
}
RENTED_PRICE_DRIVERS = {"gpu_price_usd_per_gpu_hour": "GPU rental price"}
OWNED_PRICE_DRIVERS = {"gpu_purchase_usd": "GPU purchase price", "electricity_usd_per_kwh": "electricity price"}
THROUGHPUT_DRIVER = "model throughput (calibrated range)"
# Searched axes each swing holds at the plan's choice (scenario field -> label); see the module docstring.
HELD_AXES = {"gpu": "GPU", "engine": "serving engine", "precision": "weight precision"}


@dataclasses.dataclass(frozen=True)
class Swing:
    """One bar of the tornado: the driver at its low and high value, and the headline outcome there.

    NaN where the plan is infeasible at that value, where a value cannot be clipped into the
    field's bounds, or where no break-even is found.
    """

    driver: str  # scenario field, or "throughput"
    label: str
    low_value: float
    high_value: float
    monthly_usd_at_low: float
    monthly_usd_at_high: float
    breakeven_requests_per_day_at_low: float
    breakeven_requests_per_day_at_high: float
    note: str

    @property
    def monthly_usd_spread(self) -> float:
        """|cost at high - cost at low|, the tornado's sort key (0 when an end is missing)."""
        spread = abs(self.monthly_usd_at_high - self.monthly_usd_at_low)
        return spread if math.isfinite(spread) else 0.0


def base_value(p: Plan, catalog: Catalog, field: str) -> float | None:
    """The value a plan used for a swung field: the scenario's, else the preset's, the catalog's or the
    headline tier's listed rental price (None when there is none, e.g. an unpriced tier)."""
    value = getattr(p.scenario, field)
    if value is not None:
        return float(value)
    w, rates = p.workload, p.economics.tiers.get(p.headline_tier)
    resolved = {"gpu_purchase_usd": catalog.gpu(p.estimate.gpu_id).purchase_usd,
                "input_tokens_mean": w.input_tokens_mean, "output_tokens_mean": w.output_tokens_mean,
                "peak_to_average_ratio": w.peak_to_average_ratio, "tpot_target_s": p.tpot_target_s,
                "ttft_target_s": p.ttft_target_s,
                "gpu_price_usd_per_gpu_hour": rates.drivers_usd_per_gpu_hour.get("gpu_rental") if rates else None}
    return resolved.get(field)


def headline_outcome(p: Plan) -> tuple[float, float]:
    """(headline monthly USD, headline break-even requests/day); NaN where unavailable or not found."""
    head, be = p.headline, p.breakeven.get(p.headline_tier)
    return (head.monthly_usd if head.available else math.nan,
            be.requests_per_day if be is not None and be.found else math.nan)


def swing_ends(field: str, base: float, swing_frac: float) -> tuple[float | None, float | None]:
    """base x (1 - swing) and base x (1 + swing), each clipped to the field's bounds (None: no valid value)."""
    require_frac(swing_frac=swing_frac)
    return clip_to_field(field, base * (1 - swing_frac)), clip_to_field(field, base * (1 + swing_frac))


def throughput_swing(p: Plan) -> Swing:
    """The throughput bar: replica capacity at the pessimistic (low) and optimistic (high) ends of the
    calibrated range, read from the plan's own range fields."""
    head = p.headline
    return Swing("throughput", THROUGHPUT_DRIVER, p.capacity_requests_per_s_per_replica_low,
                 p.capacity_requests_per_s_per_replica_high, head.monthly_usd_high, head.monthly_usd_low,
                 head.breakeven_requests_per_day_high, head.breakeven_requests_per_day_low,
                 "low and high replica capacity (requests/s) from the efficiency profile's calibrated error")


def held_configuration(p: Plan, hold: Sequence[str] = tuple(HELD_AXES)) -> dict[str, Any]:
    """The scenario fields the swings pin to the plan's choice: each axis of `hold` that the scenario leaves
    to the search (engine or precision empty, gpu "auto"), with the value the plan chose."""
    chosen = {"gpu": p.estimate.gpu_id, "engine": p.estimate.engine, "precision": p.estimate.precision}
    unknown = set(hold) - set(chosen)
    if unknown:
        raise InvalidInputError(f"hold: {sorted(unknown)[0]!r} is not one of {', '.join(chosen)}")
    searched = {"gpu": p.scenario.gpu == "auto", "engine": p.scenario.engine is None,
                "precision": p.scenario.precision is None}
    return {axis: chosen[axis] for axis in hold if searched[axis]}


def sensitivity(p: Plan, catalog: Catalog, *, swing_frac: float,
                plan_fn: Callable[[Scenario], Plan] | None = None,
                hold: Sequence[str] = tuple(HELD_AXES)) -> tuple[Swing, ...]:
    """Tornado swings of the headline monthly cost and break-even volume, widest first.

    Each driver of TORNADO_DRIVERS (plus the headline deployment's price drivers) moves to
    base x (1 -/+ swing_frac) and the scenario is re-planned with `plan_fn` (default:
    `plan(s, catalog, extras=False)`: no frontier or alternatives; the app passes a cached one), the
    axes of `hold` pinned to the plan's choice (`held_configuration`; `hold=()` searches every axis
    again). A re-plan that raises a PlannerError (does not fit, target unreachable) gives NaN at that
    end and a note.
    """
    require_frac(swing_frac=swing_frac)
    run = plan_fn or (lambda s: plan(s, catalog, extras=False))
    pinned = held_configuration(p, hold)
    drivers = dict(TORNADO_DRIVERS)
    drivers.update(OWNED_PRICE_DRIVERS if p.scenario.mode == "owned" else RENTED_PRICE_DRIVERS)
    swings = []
    for field, label in drivers.items():
        base = base_value(p, catalog, field)
        if base is None or base <= 0:
            continue
        ends = swing_ends(field, base, swing_frac)
        results, notes = [], []
        for value in ends:
            outcome = (math.nan, math.nan)
            if value is not None:
                try:
                    outcome = headline_outcome(run(dataclasses.replace(p.scenario, **pinned, **{field: value})))
                except PlannerError as err:
                    notes.append(f"at {value:g}: {err}")
            results.append(outcome)
        low, high = (math.nan if v is None else v for v in ends)
        swings.append(Swing(field, label, low, high, results[0][0], results[1][0], results[0][1], results[1][1],
                            "; ".join(notes)))
    swings.append(throughput_swing(p))
    return tuple(sorted(swings, key=lambda s: s.monthly_usd_spread, reverse=True))


__all__ = ["Swing", "sensitivity", "base_value", "headline_outcome", "swing_ends", "throughput_swing",
           "held_configuration", "HELD_AXES", "TORNADO_DRIVERS", "RENTED_PRICE_DRIVERS", "OWNED_PRICE_DRIVERS",
           "THROUGHPUT_DRIVER"]
