"""Sizing under latency targets: operating concurrency, replicas, GPUs and utilisation.

A replica is the GPU group that holds one copy of the model. Latency targets choose the
batch: the planner takes the largest concurrency whose TTFT and TPOT meet the targets and
whose KV cache fits (DESIGN.md, "Latency targets choose the batch"). One replica then
serves `capacity = output tokens/s / output tokens per request` requests per second, and
the fleet is a whole number of replicas: ceil(rate x (1 + headroom) / capacity) plus N+k
spares. Self-hosted capacity is therefore a step function of traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from planner import units
from planner.errors import (
    InvalidInputError,
    UnreachableTargetError,
    require_non_negative,
    require_positive,
    require_positive_int,
)

# Relative slack so that a rate of exactly k replicas' capacity (up to float rounding) needs k, not k + 1.
_CEIL_SLACK = 1e-12


def whole_replicas(load_in_replicas: float | np.ndarray) -> float | np.ndarray:
    """Round a load measured in replicas up to whole replicas (0 stays 0)."""
    return np.ceil(np.asarray(load_in_replicas, dtype=float) * (1.0 - _CEIL_SLACK))


@dataclass(frozen=True)
class ConcurrencyChoice:
    """The operating point the latency targets allow, and what stops it going higher."""

    concurrency: int
    bound_by: str  # "tpot_target_s", "ttft_target_s", both joined by "+", or "max_concurrency"
    ttft_s: float
    tpot_s: float


def choose_concurrency(evaluate: Callable[[int], tuple[float, float]], *, max_concurrency: int,
                       ttft_target_s: float, tpot_target_s: float) -> ConcurrencyChoice:
    """Largest concurrency in [1, max_concurrency] whose (TTFT, TPOT) = evaluate(c) meet both targets.

    Both latencies grow with the batch in the roofline step model (more bytes and FLOPs per
    step), so the feasible set is a prefix and a binary search finds its end in
    log2(max_concurrency) evaluations. UnreachableTargetError when even one sequence misses
    a target.
    """
    require_positive_int(max_concurrency=max_concurrency)
    require_positive(ttft_target_s=ttft_target_s, tpot_target_s=tpot_target_s)

    def misses(c: int) -> tuple[str, float, float]:
        ttft, tpot = evaluate(c)
        names = [n for n, bad in (("tpot_target_s", tpot > tpot_target_s), ("ttft_target_s", ttft > ttft_target_s))
                 if bad]
        return "+".join(names), ttft, tpot

    missed, ttft1, tpot1 = misses(1)
    if missed:
        raise UnreachableTargetError(
            f"latency targets unreachable even with one request in flight: TTFT {ttft1:.3f} s (target "
            f"{ttft_target_s:g} s), TPOT {tpot1 * units.MS_PER_S:.1f} ms (target {tpot_target_s * units.MS_PER_S:g} "
            f"ms); use faster or more GPUs per replica, a lighter precision, or looser targets")
    top_missed, ttft_top, tpot_top = misses(max_concurrency)
    if not top_missed:
        return ConcurrencyChoice(max_concurrency, "max_concurrency", ttft_top, tpot_top)
    good, good_lat, bad, bad_missed = 1, (ttft1, tpot1), max_concurrency, top_missed
    while bad - good > 1:
        mid = (good + bad) // 2
        missed, ttft, tpot = misses(mid)
        if missed:
            bad, bad_missed = mid, missed
        else:
            good, good_lat = mid, (ttft, tpot)
    return ConcurrencyChoice(good, bad_missed, good_lat[0], good_lat[1])


def capacity_requests_per_s(output_tokens_per_s: float, output_tokens_mean: float) -> float:
    """Requests per second one replica completes: replica output tokens/s / output tokens per request.

    The replica throughput of the performance model already pays for the prefill of each
    request (chunked prefill shares the steps), so no separate prefill term appears.
    """
    require_positive(output_tokens_per_s=output_tokens_per_s, output_tokens_mean=output_tokens_mean)
    return output_tokens_per_s / output_tokens_mean


def replicas_for_rate(rate_per_s: float, capacity_per_s: float, *, headroom_frac: float = 0.0,
                      redundancy_replicas: int = 0) -> int:
    """Replicas for a request rate: ceil(rate x (1 + headroom) / capacity) + k spares; 0 for no traffic."""
    require_non_negative(rate_per_s=rate_per_s, headroom_frac=headroom_frac)
    require_positive(capacity_per_s=capacity_per_s)
    _check_redundancy(redundancy_replicas)
    if rate_per_s == 0:
        return 0
    return int(whole_replicas(rate_per_s * (1.0 + headroom_frac) / capacity_per_s)) + redundancy_replicas


def _check_redundancy(redundancy_replicas: int) -> None:
    if isinstance(redundancy_replicas, bool) or not isinstance(redundancy_replicas, int) or redundancy_replicas < 0:
        raise InvalidInputError(f"redundancy_replicas must be an integer >= 0, got {redundancy_replicas!r}")


@dataclass(frozen=True)
class Fleet:
    """Replicas and GPUs for a request volume, and how busy they are."""

    serving_replicas: int  # cover the design rate including headroom (peak hour for a fixed fleet)
    redundancy_replicas: int  # N+k spares on top
    total_replicas: int  # peak-hour count for an autoscaled fleet
    gpus_per_replica: int
    total_gpus: int
    replica_hours_per_day: float  # total_replicas x 24 for a fixed fleet; sum over hours when autoscaled
    utilisation_avg_frac: float  # average served load / capacity paid for
    utilisation_peak_frac: float  # design-rate load / capacity of the whole fleet
    autoscaled: bool


def fixed_fleet(requests_per_day: float, capacity_per_s: float, *, gpus_per_replica: int,
                design_rate_factor: float, headroom_frac: float = 0.0, redundancy_replicas: int = 0) -> Fleet:
    """A fleet that runs all day, sized for the design rate (average x design_rate_factor).

    Owned hardware and reservations cannot follow the daily curve, so they pay for the
    peak-hour fleet 24 hours a day.
    """
    require_non_negative(requests_per_day=requests_per_day)
    require_positive_int(gpus_per_replica=gpus_per_replica)
    require_positive(design_rate_factor=design_rate_factor)
    avg = requests_per_day / units.S_PER_DAY
    design = avg * design_rate_factor
    total = replicas_for_rate(design, capacity_per_s, headroom_frac=headroom_frac,
                              redundancy_replicas=redundancy_replicas)
    serving = total - redundancy_replicas if total else 0
    paid = total * capacity_per_s
    return Fleet(serving_replicas=serving, redundancy_replicas=total - serving, total_replicas=total,
                 gpus_per_replica=gpus_per_replica, total_gpus=total * gpus_per_replica,
                 replica_hours_per_day=float(total * units.HOURS_PER_DAY),
                 utilisation_avg_frac=avg / paid if paid else 0.0,
                 utilisation_peak_frac=design / paid if paid else 0.0, autoscaled=False)


def autoscaled_fleet(requests_per_day: float, capacity_per_s: float, *, gpus_per_replica: int,
                     hourly_rate_factors: Sequence[float], headroom_frac: float = 0.0,
                     redundancy_replicas: int = 0) -> Fleet:
    """A rented fleet that follows the 24-hour curve: each hour runs the replicas that hour needs.

    replicas(h) = ceil(avg x factor(h) x (1 + headroom) / capacity) + k; the bill counts
    sum_h replicas(h) replica-hours a day. Scaling is assumed to track the hourly means
    (SageServe, arXiv:2502.14617, reports forecast-aware autoscaling saving up to 25% of GPU-hours).
    """
    require_non_negative(requests_per_day=requests_per_day, headroom_frac=headroom_frac)
    require_positive(capacity_per_s=capacity_per_s)
    require_positive_int(gpus_per_replica=gpus_per_replica)
    _check_redundancy(redundancy_replicas)
    factors = np.asarray(hourly_rate_factors, dtype=float)
    avg = requests_per_day / units.S_PER_DAY
    if avg == 0:
        return Fleet(0, 0, 0, gpus_per_replica, 0, 0.0, 0.0, 0.0, True)
    serving = whole_replicas(avg * factors * (1.0 + headroom_frac) / capacity_per_s)
    per_hour = serving + np.where(serving > 0, redundancy_replicas, 0)
    peak_hour = int(per_hour.max())
    replica_hours = float(per_hour.sum())
    served_per_day = avg * units.S_PER_DAY
    paid_per_day = replica_hours * units.S_PER_HOUR * capacity_per_s
    peak_index = int(np.argmax(factors))
    return Fleet(serving_replicas=int(serving.max()), redundancy_replicas=peak_hour - int(serving.max()),
                 total_replicas=peak_hour, gpus_per_replica=gpus_per_replica, total_gpus=peak_hour * gpus_per_replica,
                 replica_hours_per_day=replica_hours, utilisation_avg_frac=served_per_day / paid_per_day,
                 utilisation_peak_frac=avg * factors[peak_index] / (per_hour[peak_index] * capacity_per_s),
                 autoscaled=True)


def gpu_hours_per_month(fleet: Fleet) -> float:
    """GPU-hours billed in an average month: replica-hours/day x GPUs per replica x 365/12 days."""
    return fleet.replica_hours_per_day * fleet.gpus_per_replica * units.DAYS_PER_MONTH


def prefill_time_share(input_tokens_mean: float, prefill_tokens_per_s: float, output_tokens_mean: float,
                       output_tokens_per_s: float) -> float:
    """Share of a replica's time that prefill takes, used to split cost between input and output tokens.

    Per request the replica spends output / throughput seconds in steady state; its prefill
    alone takes about input / prefill speed (single-prompt, compute-bound). The share is the
    ratio, clipped to [0, 1]. An allocation rule, not a measurement.
    """
    require_positive(input_tokens_mean=input_tokens_mean, prefill_tokens_per_s=prefill_tokens_per_s,
                     output_tokens_mean=output_tokens_mean, output_tokens_per_s=output_tokens_per_s)
    share = (input_tokens_mean / prefill_tokens_per_s) / (output_tokens_mean / output_tokens_per_s)
    return float(min(1.0, max(0.0, share)))



def pessimistic_latency_warnings(*, ttft_s: float, ttft_s_high: float, ttft_target_s: float, tpot_s: float,
                                 tpot_s_high: float, tpot_target_s: float) -> list[str]:
    """Targets met at the central estimate but missed at the pessimistic end of its calibrated range.

    The operating concurrency is chosen on the central TTFT and TPOT; when the slow end of the
    performance model's range (`*_high`) exceeds a target, the plan meets that target only if
    the hardware reaches the central efficiency. One message per target so missed.
    """
    out = []
    if tpot_s_high > tpot_target_s:
        out.append(f"the TPOT target ({tpot_target_s:g} s) is met by the central estimate ({tpot_s:.4f} s) "
                   f"but not by its pessimistic end ({tpot_s_high:.4f} s)")
    if ttft_s_high > ttft_target_s:
        out.append(f"the TTFT target ({ttft_target_s:g} s) is met by the central estimate ({ttft_s:.3f} s) "
                   f"but not by its pessimistic end ({ttft_s_high:.3f} s)")
    return out
