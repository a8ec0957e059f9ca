"""What the Plan and Sensitivity pages need beyond an engine result's fields: the volume slider's steps and a
plan's one-column summary for the side-by-side table. Selection of `Plan` fields only, no arithmetic.

The engine computes everything else the pages draw: `Plan` (costs with their ranges, warnings),
`planner.econ.cost_curves.breakeven_chart` and `planner.econ.sensitivity.sensitivity`.
"""

from __future__ import annotations

from typing import Any

from planner.plan import Plan

# Volume steps of the app's requests/day slider: six per decade (1, 1.5, 2, 3, 5, 7 x 10^k), 10 to 10^10.
_STEP_MANTISSAS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
REQUESTS_PER_DAY_STEPS = tuple(m * 10.0 ** e for e in range(1, 10) for m in _STEP_MANTISSAS) + (1e10,)


def requests_per_day_options(current: float) -> list[float]:
    """The slider's steps, with the scenario's own value added so a loaded scenario is never rounded."""
    return sorted(set(REQUESTS_PER_DAY_STEPS) | {float(current)})


def plan_summary(p: Plan) -> dict[str, Any]:
    """The headline of a plan as one column of the side-by-side scenario table (None where there is no value)."""
    s, head, e = p.scenario, p.headline, p.estimate
    be = p.breakeven.get(p.headline_tier)
    ok = head.available
    return {
        "model": e.model_id, "gpu": f"{p.num_gpus_per_replica} x {e.gpu_id} per replica",
        "precision": e.precision, "workload": f"{s.preset}, {p.workload.requests_per_day:,.0f} requests/day",
        "deployment": "owned" if s.mode == "owned" else s.rental_tier,
        "provider": head.provider if ok else None,
        "gpus": head.fleet.total_gpus if head.fleet else None,
        "self_hosted_usd_per_month": head.monthly_usd if ok else None,
        "self_hosted_usd_per_month_low": head.monthly_usd_low if ok else None,
        "self_hosted_usd_per_month_high": head.monthly_usd_high if ok else None,
        "self_hosted_usd_per_mtok": head.blended_usd_per_mtok if ok else None,
        "self_hosted_usd_per_mtok_low": head.blended_usd_per_mtok_low if ok else None,
        "self_hosted_usd_per_mtok_high": head.blended_usd_per_mtok_high if ok else None,
        "api": p.api.api_id if p.api else None, "api_usd_per_month": p.api.monthly_usd if p.api else None,
        "api_usd_per_mtok": p.api.blended_usd_per_mtok if p.api else None,
        "breakeven_requests_per_day": be.requests_per_day if be is not None and be.found else None,
        "utilisation_avg_frac": head.fleet.utilisation_avg_frac if head.fleet else None,
    }
