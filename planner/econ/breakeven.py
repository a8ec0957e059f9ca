"""Cost against volume: the self-hosting step function, break-even, growth and the hybrid plan.

Self-hosting cost is a step function of traffic: whole replicas, each paid in full,
S(v) = GPU-hours(v) x $/GPU-hour + fixed costs. The API is linear, A(v) = c x v. Break-even
is found exactly on the steps: on each interval of constant S, self-hosting is cheaper
from v = S / c to the interval's end, so the answer never depends on a sampling grid and
shows no false crossings. Two volumes are reported: the first at which self-hosting is
cheaper (possibly only at the top of one step) and the one from which it stays cheaper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from planner import units
from planner.econ.api_costs import api_price_factor
from planner.econ.sizing import whole_replicas
from planner.econ.workload import hourly_rate_factors
from planner.errors import InvalidInputError, NoBreakEvenError, require_non_negative, require_positive

# Search bound for break-even, in serving replicas of the fixed fleet: a search limit, not a physical number.
BREAKEVEN_MAX_REPLICAS = 1000


@dataclass(frozen=True)
class TierRates:
    """What a GPU-hour costs on one tier, split by driver, and whether the fleet may follow the daily curve."""

    tier: str
    elastic: bool
    drivers_usd_per_gpu_hour: dict[str, float]

    @property
    def usd_per_gpu_hour(self) -> float:
        return sum(self.drivers_usd_per_gpu_hour.values())


@dataclass(frozen=True)
class VolumeEconomics:
    """Everything needed to price any traffic volume without re-running the performance model."""

    capacity_per_s: float  # requests per second one replica completes at the operating point
    gpus_per_replica: int
    design_rate_factor: float  # fixed fleet: design rate / average rate
    hourly_profile: tuple[float, ...] | None  # normalised (mean 1); elastic tiers follow it when given
    headroom_frac: float
    redundancy_replicas: int
    tiers: dict[str, TierRates]  # available tiers only
    fixed_usd_per_month: float  # staff and fine-tuning runs: paid whenever a fleet runs
    input_tokens_mean: float
    output_tokens_mean: float
    offline_frac: float
    api_online_usd_per_request: float | None  # None when no API price is known
    api_batch_usd_per_request: float | None
    api_price_decline_frac_per_year: float
    finetune_usd_per_month: float = 0.0  # the part of fixed_usd_per_month that is fine-tuning (its own driver)

    def __post_init__(self) -> None:
        require_positive(capacity_per_s=self.capacity_per_s, design_rate_factor=self.design_rate_factor)
        require_non_negative(headroom_frac=self.headroom_frac, fixed_usd_per_month=self.fixed_usd_per_month)


def _slopes(econ: VolumeEconomics, elastic: bool) -> np.ndarray:
    """Serving replicas per (request/day), one per hour for an elastic fleet, else one for the day."""
    per_request_per_day = (1.0 + econ.headroom_frac) / (econ.capacity_per_s * units.S_PER_DAY)
    if elastic and econ.hourly_profile is not None:
        return hourly_rate_factors(econ.hourly_profile, econ.offline_frac) * per_request_per_day
    return np.array([econ.design_rate_factor * per_request_per_day])


def replica_hours_per_day(econ: VolumeEconomics, tier: str, requests_per_day: np.ndarray | float) -> np.ndarray:
    """Replica-hours a day at each volume: 24 x replicas for a fixed fleet, the sum over hours when elastic."""
    v = np.atleast_1d(np.asarray(requests_per_day, dtype=float))
    if np.any(~np.isfinite(v)) or np.any(v < 0):
        raise InvalidInputError(f"requests_per_day must be finite and >= 0, got {requests_per_day!r}")
    slopes = _slopes(econ, _tier(econ, tier).elastic)
    serving = whole_replicas(v[:, None] * slopes[None, :])
    per_slot = serving + np.where(serving > 0, econ.redundancy_replicas, 0)
    hours_per_slot = units.HOURS_PER_DAY / slopes.size
    return per_slot.sum(axis=1) * hours_per_slot


def _tier(econ: VolumeEconomics, tier: str) -> TierRates:
    if tier not in econ.tiers:
        raise InvalidInputError(f"tier {tier!r} has no price here; available: {', '.join(econ.tiers) or 'none'}")
    return econ.tiers[tier]


def self_hosted_usd_per_month(econ: VolumeEconomics, tier: str, requests_per_day: np.ndarray | float) -> np.ndarray:
    """Monthly self-hosting cost at each volume (the step function): GPU-hours x $/GPU-hour + fixed costs."""
    hours = replica_hours_per_day(econ, tier, requests_per_day) * econ.gpus_per_replica * units.DAYS_PER_MONTH
    runs = hours > 0
    return hours * _tier(econ, tier).usd_per_gpu_hour + np.where(runs, econ.fixed_usd_per_month, 0.0)


def cost_breakdown(econ: VolumeEconomics, tier: str, requests_per_day: float) -> dict[str, float]:
    """Monthly cost by driver at one volume (GPU-hour drivers of the tier, plus staff and fine-tuning)."""
    hours = float(replica_hours_per_day(econ, tier, requests_per_day)[0]) * econ.gpus_per_replica * \
        units.DAYS_PER_MONTH
    out = {name: hours * rate for name, rate in _tier(econ, tier).drivers_usd_per_gpu_hour.items()}
    runs = hours > 0
    out["staff"] = (econ.fixed_usd_per_month - econ.finetune_usd_per_month) if runs else 0.0
    if econ.finetune_usd_per_month:
        out["fine_tuning"] = econ.finetune_usd_per_month if runs else 0.0
    return out


def api_usd_per_request(econ: VolumeEconomics, month: int = 1) -> float:
    """API cost of an average request (online and batch shares) in a given month."""
    if econ.api_online_usd_per_request is None or econ.api_batch_usd_per_request is None:
        raise InvalidInputError("no API price to compare with: set api_id")
    blended = ((1 - econ.offline_frac) * econ.api_online_usd_per_request
               + econ.offline_frac * econ.api_batch_usd_per_request)
    return blended * api_price_factor(econ.api_price_decline_frac_per_year, month)


def api_usd_per_month(econ: VolumeEconomics, requests_per_day: np.ndarray | float, month: int = 1) -> np.ndarray:
    """Monthly API bill at each volume: requests/day x 365/12 days x cost per request."""
    v = np.atleast_1d(np.asarray(requests_per_day, dtype=float))
    return v * units.DAYS_PER_MONTH * api_usd_per_request(econ, month)


def tokens_per_month(econ: VolumeEconomics, requests_per_day: float) -> float:
    """Input + output tokens a month at a volume."""
    return requests_per_day * units.DAYS_PER_MONTH * (econ.input_tokens_mean + econ.output_tokens_mean)


def search_limit_requests_per_day(econ: VolumeEconomics) -> float:
    """Largest volume the break-even search covers: a fixed fleet of BREAKEVEN_MAX_REPLICAS serving replicas."""
    return BREAKEVEN_MAX_REPLICAS / float(_slopes(econ, False)[0])


def step_edges(econ: VolumeEconomics, tier: str, up_to_requests_per_day: float) -> np.ndarray:
    """Volumes at which the replica count changes, from 0 to `up_to` (both included)."""
    require_positive(up_to_requests_per_day=up_to_requests_per_day)
    edges = [np.array([0.0, up_to_requests_per_day])]
    for slope in _slopes(econ, _tier(econ, tier).elastic):
        if slope > 0:
            count = int(math.floor(up_to_requests_per_day * slope))
            edges.append(np.arange(1, count + 1, dtype=float) / slope)
    return np.unique(np.concatenate(edges))


def step_breakeven(edges: np.ndarray, interval_costs: np.ndarray, api_usd_per_volume: float) -> tuple[float, float]:
    """(first volume where self-hosting is cheaper, volume from which it stays cheaper); NaN where none.

    Interval i is (edges[i], edges[i+1]] with constant self-hosting cost interval_costs[i];
    the API costs api_usd_per_volume x v. Self-hosting is cheaper on [max(edge_i, S_i / c), edge_i+1].
    """
    e = np.asarray(edges, dtype=float)
    s = np.asarray(interval_costs, dtype=float)
    if e.ndim != 1 or s.shape != (e.size - 1,) or e.size < 2 or np.any(np.diff(e) <= 0):
        raise InvalidInputError("edges must be increasing and one longer than interval_costs")
    require_positive(api_usd_per_volume=api_usd_per_volume)
    threshold = s / api_usd_per_volume
    start = np.maximum(e[:-1], threshold)
    cheaper = start <= e[1:]
    whole = threshold <= e[:-1]
    first = float(start[cheaper].min()) if cheaper.any() else math.nan
    i = s.size - 1
    if not cheaper[i]:
        return first, math.nan
    while i > 0 and whole[i] and cheaper[i - 1]:
        i -= 1
    return first, float(start[i])


@dataclass(frozen=True)
class BreakEven:
    """Where self-hosting on one tier becomes cheaper than the API, at month-1 prices."""

    tier: str
    found: bool
    requests_per_day: float  # from here on self-hosting stays cheaper (NaN when not found)
    tokens_per_month: float
    first_cheaper_requests_per_day: float  # first volume where it is cheaper (NaN when never)
    searched_up_to_requests_per_day: float
    note: str


def breakeven(econ: VolumeEconomics, tier: str) -> BreakEven:
    """Break-even volume of one tier against the API, exact on the step function."""
    limit = search_limit_requests_per_day(econ)
    edges = step_edges(econ, tier, limit)
    mids = (edges[:-1] + edges[1:]) / 2.0
    costs = self_hosted_usd_per_month(econ, tier, mids)
    per_volume = units.DAYS_PER_MONTH * api_usd_per_request(econ, 1)
    if per_volume <= 0:
        return BreakEven(tier, False, math.nan, math.nan, math.nan, limit, "the API is free at these prices")
    first, stays = step_breakeven(edges, costs, per_volume)
    if math.isnan(stays):
        note = (f"the API stays cheaper up to {limit:,.0f} requests/day ({BREAKEVEN_MAX_REPLICAS} replicas)"
                if math.isnan(first) else
                f"cheaper only at the top of some steps from {first:,.0f} requests/day, not for good within the range")
        return BreakEven(tier, False, math.nan, math.nan, first, limit, note)
    return BreakEven(tier, True, stays, tokens_per_month(econ, stays), first, limit,
                     f"self-hosting is cheaper from {stays:,.0f} requests/day on")


def require_breakeven(result: BreakEven) -> float:
    """The break-even volume, or NoBreakEvenError for callers that need a crossing."""
    if not result.found:
        raise NoBreakEvenError(f"{result.tier}: {result.note}")
    return result.requests_per_day


def monthly_self_hosted_usd(econ: VolumeEconomics, tier: str, volumes: np.ndarray) -> np.ndarray:
    """Self-hosting cost per month along a growth path; fixed fleets (owned, reserved) never shrink."""
    v = np.asarray(volumes, dtype=float)
    rates = _tier(econ, tier)
    if rates.elastic:
        return self_hosted_usd_per_month(econ, tier, v)
    hours = replica_hours_per_day(econ, tier, v)
    kept = np.maximum.accumulate(hours)
    gpu_hours = kept * econ.gpus_per_replica * units.DAYS_PER_MONTH
    return gpu_hours * rates.usd_per_gpu_hour + np.where(gpu_hours > 0, econ.fixed_usd_per_month, 0.0)


@dataclass(frozen=True)
class GrowthOutcome:
    """Self-hosting on one tier against the API over the horizon, with growth and API price decline."""

    tier: str
    breakeven_month: int | None  # first month self-hosting is cheaper (None: not within the horizon)
    cumulative_saving_usd: float  # sum over the horizon of API - self-hosting (negative: the API is cheaper)


def growth_outcome(tier: str, self_hosted_usd: np.ndarray, api_usd: np.ndarray) -> GrowthOutcome:
    """First month with self-hosting <= API, and the cumulative saving over the months given."""
    s = np.asarray(self_hosted_usd, dtype=float)
    a = np.asarray(api_usd, dtype=float)
    cheaper = np.nonzero(s <= a)[0]
    month = int(cheaper[0]) + 1 if cheaper.size else None
    return GrowthOutcome(tier, month, float((a - s).sum()))


@dataclass(frozen=True)
class HybridOption:
    """Self-host a base fleet on one tier and send what it cannot take to the API."""

    tier: str
    base_serving_replicas: int
    total_replicas: int
    self_hosted_usd_per_month: float
    api_usd_per_month: float
    total_usd_per_month: float
    api_share_of_requests_frac: float
    saving_vs_best_pure_usd_per_month: float  # against the cheaper of all-API and all-self-hosted


def hybrid_plan(econ: VolumeEconomics, tier: str, requests_per_day: float) -> HybridOption | None:
    """Cheapest base fleet with overflow to the API, when it beats both pure options (else None).

    Needs the 24-hour profile. With K serving replicas (capacity C = K x capacity / (1 +
    headroom)), online traffic above C each hour goes to the API at online prices; offline
    work first fills the base fleet's spare hours, the rest goes to the batch API.
    """
    require_non_negative(requests_per_day=requests_per_day)
    if econ.hourly_profile is None or econ.api_online_usd_per_request is None or requests_per_day == 0:
        return None
    rates = _tier(econ, tier)
    avg = requests_per_day / units.S_PER_DAY
    online = (1 - econ.offline_frac) * avg * np.asarray(econ.hourly_profile, dtype=float)  # requests/s per hour
    offline_per_day = econ.offline_frac * requests_per_day
    full = int(whole_replicas(avg * econ.design_rate_factor * (1 + econ.headroom_frac) / econ.capacity_per_s))
    base = np.arange(0, full + 1)
    cap = base[:, None] * econ.capacity_per_s / (1 + econ.headroom_frac)
    overflow_online = np.clip(online[None, :] - cap, 0, None).sum(axis=1) * units.S_PER_HOUR
    spare = np.clip(cap - online[None, :], 0, None).sum(axis=1) * units.S_PER_HOUR
    overflow_offline = np.clip(offline_per_day - spare, 0, None)
    factor = api_price_factor(econ.api_price_decline_frac_per_year, 1)
    api = (overflow_online * econ.api_online_usd_per_request
           + overflow_offline * econ.api_batch_usd_per_request) * factor * units.DAYS_PER_MONTH
    total_replicas = np.where(base > 0, base + econ.redundancy_replicas, 0)
    gpu_hours = total_replicas * econ.gpus_per_replica * units.HOURS_PER_MONTH
    own = gpu_hours * rates.usd_per_gpu_hour + np.where(base > 0, econ.fixed_usd_per_month, 0.0)
    total = own + api
    best_pure = min(total[0], total[-1])
    inner = total[1:-1]
    if inner.size == 0 or inner.min() >= best_pure:
        return None
    k = int(np.argmin(inner)) + 1
    api_requests = overflow_online[k] + overflow_offline[k]
    return HybridOption(tier=tier, base_serving_replicas=k, total_replicas=int(total_replicas[k]),
                        self_hosted_usd_per_month=float(own[k]), api_usd_per_month=float(api[k]),
                        total_usd_per_month=float(total[k]),
                        api_share_of_requests_frac=float(api_requests / requests_per_day),
                        saving_vs_best_pure_usd_per_month=float(best_pure - total[k]))


def with_capacity_factor(econ: VolumeEconomics, factor: float) -> VolumeEconomics:
    """The same economics with replica capacity scaled (for the performance model's range)."""
    require_positive(factor=factor)
    return replace(econ, capacity_per_s=econ.capacity_per_s * factor)
