"""Tabulate the waiting time of the M/G/c queue with lognormal service: writes data/queueing_mgc.csv.

A generic queueing table (like an Erlang C table), not fitted to any engine or step function: Poisson arrivals at
rate rho c (mean service 1), c servers, FCFS, service times lognormal with coefficient of variation `service_cv`
(deterministic at 0). Each cell is one simulated run of `ARRIVALS` arrivals (the first `WARMUP_FRAC` dropped), by
the Kiefer-Wolfowitz recursion [1] in its FCFS form: the servers' next free times in a heap, an arrival waits
W = max(0, earliest free time - arrival time) and takes that server until arrival + W + service. Per cell:

- wait_prob_ratio = P(W > 0) / Erlang C(c, rho c): 1 for exponential service; the M/G/c delay probability differs
  from Erlang C where the service is not exponential (Whitt [2]; for many servers in the Halfin-Whitt regime it
  depends on the whole service distribution, Jelenkovic-Mandelbaum-Momcilovic [3]);
- wait_mean_factor = E[W | W > 0] x c (1 - rho) (mean service 1): 1 for M/M/c, (1 + cs^2) / 2 in the
  Allen-Cunneen approximation [4];
- tail_prob_ratio and tail_factor: the exponential alpha e^(-gamma x) fitted to the tail P(W > x) where it lies
  between 0.5 and 0.02 of P(W > 0) (least squares of the log tail at the conditional quantiles of levels 0.5, 0.2,
  0.1, 0.05, 0.02), as alpha / Erlang C and (c mu - lambda) / gamma: what a TTFT percentile at high load reads.
  The conditional wait of many deterministic servers is not exponential: its tail decays at about 2 (c mu -
  lambda) (factor 0.5, the decay rate of the cyclic single-server queues that FCFS M/D/c is, Crommelin's M/D/c),
  while its mean is up to 0.86 / (c mu - lambda) at lighter loads;
- wait_p50/p90/p99_factor: the conditional wait's quantiles in the same unit (an exponential has ln 2, ln 10,
  ln 100 times its mean);
- standard errors of the ratios and factors by batch means (20 contiguous batches);
- waits, the number of waiting arrivals counted. Cells with fewer than `MIN_WAITS` (light load on many servers,
  where P(W > 0) is below ~1e-3) hold the M/M/c values instead (ratio 1, factor 1), marked in `basis`: there the
  waits are far shorter than a service, and during one the departures of many busy servers, each a renewal
  process, are nearly Poisson (Palm-Khintchine [5]) whatever the service distribution, which is M/M/c's wait;
  the simulated cells next to them approach it (deterministic service, 16 servers: factor 0.55 at utilisation 0.9,
  0.78 at 0.5; CV 2: 2.23 and 1.29).

Run: python3 scripts/queueing_mgc_table.py [--out data/queueing_mgc.csv] (about ten minutes on one core: 420 cells
of 2 million arrivals).
tests/perf/test_queueing_mgc_table.py re-runs cells with the same seed and checks the file.

[1] J. Kiefer, J. Wolfowitz, "On the theory of queues with many servers", Trans. AMS 78, 1955.
[2] W. Whitt, "Approximations for the GI/G/m queue", Production and Operations Management 2(2), 1993.
[3] P. Jelenkovic, A. Mandelbaum, P. Momcilovic, "Heavy traffic limits for queues with many deterministic servers",
    Queueing Systems 47, 2004.
[4] A. O. Allen, "Probability, Statistics, and Queueing Theory", 2nd ed., Academic Press 1990.
[5] A. Y. Khinchine, "Mathematical Methods in the Theory of Queueing", Griffin 1960 (the superposition of many
    independent renewal processes tends to a Poisson process).
"""

from __future__ import annotations

import argparse
import csv
import heapq
import math
import sys
from pathlib import Path

import numpy as np
from scipy.special import gammaincc, gammaln

SERVICE_CVS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
SERVERS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
UTILISATIONS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
ARRIVALS = 2_000_000
WARMUP_FRAC = 0.1
SEED = 1
BATCHES = 20
MIN_WAITS = 2000
COLUMNS = ("row_id", "service_cv", "servers", "utilisation_frac", "wait_prob_ratio", "wait_prob_ratio_se",
           "wait_mean_factor", "wait_mean_factor_se", "tail_prob_ratio", "tail_prob_ratio_se", "tail_factor",
           "tail_factor_se", "wait_p50_factor", "wait_p90_factor", "wait_p99_factor", "waits", "arrivals", "seed",
           "basis", "generated_by")
TAIL_LEVELS = (0.5, 0.2, 0.1, 0.05, 0.02)  # conditional tail levels of the exponential fit
GENERATED_BY = "scripts/queueing_mgc_table.py"


def erlang_c(servers: int, utilisation: float) -> float:
    """Erlang C: the M/M/c probability of waiting at offered load a = utilisation x servers (log space)."""
    a = utilisation * servers
    log_b = servers * math.log(a) - a - gammaln(servers + 1.0) - math.log(gammaincc(servers + 1.0, a))
    b = math.exp(min(log_b, 0.0))
    return b / (1.0 - utilisation * (1.0 - b))


def waits(service_cv: float, servers: int, utilisation: float, arrivals: int, seed: int) -> np.ndarray:
    """Waiting times of `arrivals` FCFS arrivals (mean service 1), warm-up included."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / (utilisation * servers), arrivals))
    if service_cv > 0:
        sigma = math.sqrt(math.log1p(service_cv ** 2))
        service = rng.lognormal(-sigma * sigma / 2.0, sigma, arrivals)
    else:
        service = np.ones(arrivals)
    free = [0.0] * servers  # a heap of the servers' next free times
    out = np.empty(arrivals)
    replace = heapq.heapreplace
    for i, (t, s) in enumerate(zip(times.tolist(), service.tolist(), strict=True)):
        first = free[0]
        w = first - t if first > t else 0.0
        out[i] = w
        replace(free, t + w + s)
    return out


def cell(service_cv: float, servers: int, utilisation: float, *, arrivals: int = ARRIVALS, seed: int = SEED
         ) -> dict[str, object]:
    """One row of the table (see the module docstring)."""
    w = waits(service_cv, servers, utilisation, arrivals, seed)[int(WARMUP_FRAC * arrivals):]
    c = erlang_c(servers, utilisation)
    unit = servers * (1.0 - utilisation)  # c mu - lambda with mean service 1
    waiting = w > 0
    n_wait = int(waiting.sum())
    row: dict[str, object] = dict(row_id=f"cv{service_cv:.2f}-c{servers}-u{utilisation:.2f}", service_cv=service_cv,
                                  servers=servers, utilisation_frac=utilisation, waits=n_wait, arrivals=arrivals,
                                  seed=seed, generated_by=GENERATED_BY)
    if n_wait < MIN_WAITS:  # M/M/c: P(W > 0) = Erlang C, W | W > 0 exponential of mean 1 / (c mu - lambda)
        row.update(wait_prob_ratio=1.0, wait_prob_ratio_se=0.0, wait_mean_factor=1.0, wait_mean_factor_se=0.0,
                   tail_prob_ratio=1.0, tail_prob_ratio_se=0.0, tail_factor=1.0, tail_factor_se=0.0,
                   wait_p50_factor=math.log(2.0), wait_p90_factor=math.log(10.0), wait_p99_factor=math.log(100.0),
                   basis="m/m/c (too few waits)")
        return row
    cond = w[waiting] * unit
    stats = [_stats(part, c, unit) for part in np.array_split(w, BATCHES)]
    stats = np.array([s for s in stats if s is not None])
    se = np.std(stats, axis=0, ddof=1) / math.sqrt(len(stats))
    prob, mean, tail_prob, tail_factor = _stats(w, c, unit)
    q50, q90, q99 = np.quantile(cond, [0.5, 0.9, 0.99])
    row.update(wait_prob_ratio=prob, wait_prob_ratio_se=se[0], wait_mean_factor=mean, wait_mean_factor_se=se[1],
               tail_prob_ratio=tail_prob, tail_prob_ratio_se=se[2], tail_factor=tail_factor, tail_factor_se=se[3],
               wait_p50_factor=q50, wait_p90_factor=q90, wait_p99_factor=q99, basis="simulated")
    return row


def _stats(w: np.ndarray, erlang: float, unit: float) -> tuple[float, float, float, float] | None:
    """(P(W > 0) / Erlang C, E[W | W > 0] unit, tail alpha / Erlang C, unit / tail gamma) of waits w (None if fewer
    than 50 of them wait); unit = c mu - lambda."""
    cond = w[w > 0] * unit
    if cond.size < 50:
        return None
    prob = cond.size / w.size
    levels = np.array(TAIL_LEVELS)
    x = np.quantile(cond, 1.0 - levels)  # P(W > x | W > 0) = level
    slope, intercept = np.polyfit(x, np.log(levels), 1)
    return prob / erlang, float(cond.mean()), prob * math.exp(intercept) / erlang, -1.0 / slope


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "queueing_mgc.csv"))
    args = parser.parse_args(argv)
    rows = []
    for cv in SERVICE_CVS:
        for servers in SERVERS:
            for utilisation in UTILISATIONS:
                rows.append(cell(cv, servers, utilisation))
                print(rows[-1]["row_id"], rows[-1]["wait_prob_ratio"], rows[-1]["wait_mean_factor"], flush=True)
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_fmt(row[c]) for c in COLUMNS])
    return 0


if __name__ == "__main__":
    sys.exit(main())
