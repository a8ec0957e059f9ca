"""Tail latency of one continuous-batching engine instance under Poisson arrivals (vectorised).

The engine (vLLM V1 / SGLang / TensorRT-LLM style) runs steps back to back. Each step carries
one decode token of every running sequence plus waiting prompt tokens up to its token budget
(chunked prefill, Sarathi-Serve [1]); requests are admitted FCFS while fewer than `max_batch`
run (the sequences whose KV cache fits, or the engine's batch limit). `step_s(batch, prefill)`
is the replica evaluator's step time (`evaluator.step_time_fn`).

Analytic model, for n configurations at once (arrays of shape (n,)):
- Running batch and step time: by Little's law the mean running batch is n = rate x O x tau
  with tau the mean step at n with rate x P x tau prompt tokens a step (O output tokens, P prompt
  tokens a request computes): a fixed point, solved by false position (`_steady`). Whole prompts
  cluster: a step takes the prompts that arrived during the one before, so a long step draws more
  into the next (a Markov chain on the prompts a step carries, `_cluster_excess_s`); where the step
  is not linear in its prompt tokens (a roofline: the first few hundred ride free under the
  decode's memory time, once a step) that lengthens the mean step beyond the even spread.
- Saturation: the rate at which the batch reaches max_batch (the full batch's mean step, clustering
  included), or the prompt tokens fill the token budget, whichever comes first.
- Prompt wait W (TTFT), beyond the residual of the running step: the prompt work queued ahead of it
  plus co-batching (`_prompt_wait_phases`). Prompts are served by the steps' spare token budget,
  c = budget - n tokens a step of length step_s(n, c): an M/G/1 queue whose service time is a
  prompt's share P x step_s(n, c) / c (P(wait) = rho, Pollaczek-Khinchine mean [2], Takacs second
  moment; exponential or balanced two-phase hyperexponential). The queued work is that wait less
  the part of the in-service prompt's residual service that lies in the running step (counted once,
  in R; a prompt longer than the spare budget leaves its later chunks queued ahead), met only by an
  arrival that lands in a step carrying a chunk (no prompt in service, no queue); the prompts
  arriving during its residual join its step and lengthen it by their tokens' marginal time (Poisson
  count, by the length of the step it lands in: none in an idle engine).
- Slot wait S (TTFT): when all max_batch slots are busy a request waits for one. P(wait) is the
  probability that the requests in the engine fill the slots: their mean is the running batch (below the
  full batch the steps are shorter than at it), and their number is peaked, since each request's own work
  lengthens the steps and so draws more arrivals while it runs (a branching process, cluster peakedness
  z = 1 / (1 - m)^2 [13]); Hayward's approximation [14]: Erlang C(c / z, running batch / z) (log space,
  stable for c in the thousands). Given a wait, the queue clears at the full batch's completion rate (every
  step carries the full batch plus the prompts admitted at the completion rate, so the service time is O
  steps of step_s(b, b P / O)): two exponential stages in series, the slow one at the tail's decay rate and
  the fast one the rest of the conditional mean of a simulated M/G/c table (data/queueing_mgc.csv,
  scripts/queueing_mgc_table.py: lognormal service over a grid of CV, servers and utilisation, by the
  Kiefer-Wolfowitz recursion [7]), in units of c mu - rate. The service CV looked up is the output CV times
  1 - phi, phi the share of the full batch's step that the prompts admitted at its completions add: that
  prefill work lengthens the steps as completions bunch, so completions in real time vary less than in
  steps (`_slot_wait`).
- TTFT = S + W + R + X: R the residual of the running step (the engine admits at step boundaries;
  length-biased over plain and chunk-carrying steps), X the prompt's own prefill steps (the step
  that finishes the prompt emits the first token). Its quantiles are those of the sum (`_Ttft`: a
  closed-form tail over a mixture of uniforms), not the sum of the parts' quantiles.
- TPOT at quantile q: the decode step time with the running batch at its quantile (the batch of
  an M/G/inf system is Poisson with mean n [4]; normal approximation, capped at max_batch), plus
  the prompt work its O decode steps carry, over O: busy periods of the prompt server (M/G/1, a
  prompt's service its chunks' extra step time E: mean E / (1 - a), second moment E[E^2] / (1 - a)^3,
  a = rate E [2]) started by the backlog queued behind the request when its prompt finishes (the
  arrivals during its wait and its own prefill) and by the arrivals during its O plain steps; mixed
  over the output length (a short request meets its backlog whole), its quantile from one lognormal
  of the same mean and variance (Fenton-Wilkinson [5]). No step lasts longer than one carrying the
  whole budget; with fixed lengths a full batch admits one P-token prompt per completion, so no
  decode sees more prompt work a step than the full batch's: its mean step caps TPOT.

`planner.perf.simulation` simulates exactly this process step by step; tests/perf/test_queueing.py
compares the two and docs/queueing.md tabulates the errors.

[1] A. Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve", OSDI 2024.
[2] L. Kleinrock, "Queueing Systems, Volume 1: Theory", Wiley 1975, ch. 5 (M/G/1, Pollaczek-Khinchine).
[3] A. O. Allen, "Probability, Statistics, and Queueing Theory", Academic Press 1990 (Allen-Cunneen GI/G/c).
[4] Kleinrock, ch. 2 (M/G/inf: the number in system is Poisson).
[5] L. F. Fenton, "The Sum of Log-Normal Probability Distributions in Scatter Transmission Systems", IRE Trans.
    Commun. Syst. 8(1), 1960.
[6] M. Dowell, P. Jarratt, "A modified regula falsi method for computing the root of an equation", BIT 11, 1971
    (the Illinois method).
[7] J. Kiefer, J. Wolfowitz, "On the theory of queues with many servers", Trans. AMS 78, 1955.
[13] A. G. Hawkes, D. Oakes, "A cluster process representation of a self-exciting process", J. Appl. Probab. 11(3),
     1974.
[14] A. A. Fredericks, "Congestion in blocking systems - a simple approximation technique", Bell System Technical
     Journal 59(6), 1980 (Hayward's approximation for peaked traffic).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from scipy.special import gammainc, gammaincc, gammaln, ndtr, ndtri

from planner.data._csvschema import read_records
from planner.data.catalog import DATA_DIR
from planner.data.columns import Count, Frac, NonNegative, Positive, Whole
from planner.errors import InvalidInputError, brief

StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PERCENTILES = (0.5, 0.9, 0.95, 0.99)
_ITER = 5  # false-position steps of the running batch's fixed point (`_steady`)


@dataclass(frozen=True)
class LatencyPercentiles:
    """Per-configuration latency quantiles (seconds) at a rate; arrays of shape (n,)."""

    ttft_p50_s: np.ndarray
    ttft_p90_s: np.ndarray
    ttft_p95_s: np.ndarray
    ttft_p99_s: np.ndarray
    tpot_p50_s: np.ndarray
    tpot_p90_s: np.ndarray
    tpot_p95_s: np.ndarray
    tpot_p99_s: np.ndarray
    running_batch_mean: np.ndarray
    utilisation_frac: np.ndarray  # offered rate / saturation rate
    stable: np.ndarray  # utilisation < 1

    def ttft_at(self, percentile: float) -> np.ndarray:
        return getattr(self, f"ttft_p{_pct(percentile)}_s")

    def tpot_at(self, percentile: float) -> np.ndarray:
        return getattr(self, f"tpot_p{_pct(percentile)}_s")


def _pct(percentile: float) -> int:
    if percentile not in PERCENTILES:
        raise InvalidInputError(f"percentile must be one of {', '.join(map(str, PERCENTILES))}, got {percentile!r}")
    return round(percentile * 100)


def _arr(name: str, value: Any, n: int | None = None, *, positive: bool = True) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number or an array of numbers, got {brief(value)}") from None
    bad = ~np.isfinite(a) | ((a <= 0) if positive else (a < 0))
    if np.any(bad):
        first = a.flat[int(np.argmax(bad.ravel()))]
        raise InvalidInputError(f"{name} must be finite and {'> 0' if positive else '>= 0'}, got {brief(float(first))}"
                                + (f" (at index {int(np.argmax(bad.ravel()))})" if a.ndim else ""))
    return a if n is None else np.broadcast_to(a, (n,)).astype(float)


def _n_of(*values: Any) -> int:
    return int(np.broadcast(*[np.asarray(v) for v in values]).size)


def _steady(step_s: StepFn, rate, inp, out, max_batch, budget, cv_in,
            ends: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean running batch, mean step seconds) at `rate`: n = rate O tau with tau the mean step at n and rate P tau
    prompt tokens a step; n capped at max_batch.

    The root of h(tau) = chunked_step_s(n(tau), rate P tau) - tau by Illinois false position [6] in the bracket
    [step_s(1, 0), 1.01 step_s(max_batch, budget)] (h >= 0 at the lower end, < 0 at the upper for a step time that
    grows with the batch and the prompt tokens). Plain iteration tau <- tau + h(tau) converges as (dh/dtau + 1)^k,
    slowly near saturation, where that slope nears 1 (16 passes left some budget-bound configurations 15-50 % short
    at 0.9 utilisation); false position is exact in one step once the bracket lies on one linear piece. Then the
    prompts' clustering (`_cluster_excess_s`) is added to the converged mean. `ends`: step_s(1, 0) and
    step_s(max_batch, budget), which do not depend on the rate, when the caller has them (`_saturation`)."""
    def h(tau: np.ndarray) -> np.ndarray:
        n = np.maximum(np.minimum(rate * out * tau, max_batch), 1.0)
        return chunked_step_s(step_s, n, rate * inp * tau, inp, budget) - tau

    if ends is None:
        ends = step_s(np.ones_like(rate), np.zeros_like(rate)), step_s(max_batch, budget)
    lo, hi = ends[0], 1.01 * ends[1]
    h_lo, h_hi = h(lo), h(hi)
    f_lo, f_hi = h_lo, h_hi  # h at the bracket's ends (h_lo, h_hi: Illinois's weights, halved when an end is kept)
    kept = np.zeros_like(rate)  # +1: the last step moved the lower end, -1: the upper
    for _ in range(_ITER):
        x = (lo * h_hi - hi * h_lo) / (h_hi - h_lo)
        x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, 0.5 * (lo + hi))
        hx = h(x)
        up = hx >= 0.0
        # Illinois: the end kept twice in a row has its value halved (no one-sided stall)
        h_lo, h_hi = np.where(up, hx, np.where(kept < 0, 0.5 * h_lo, h_lo)), np.where(
            up, np.where(kept > 0, 0.5 * h_hi, h_hi), hx)
        lo, hi = np.where(up, x, lo), np.where(up, hi, x)
        f_lo, f_hi = np.where(up, hx, f_lo), np.where(up, f_hi, hx)
        kept = np.where(up, 1.0, -1.0)
    tau = (lo * h_hi - hi * h_lo) / (h_hi - h_lo)
    tau = np.where(np.isfinite(tau) & (tau >= lo) & (tau <= hi), tau, lo)
    n = np.maximum(np.minimum(rate * out * tau, max_batch), 1.0)
    # the excess e shifts the root of h + e = 0 by e / -h'(tau), h' the secant slope of h over the final bracket (< 0;
    # a longer step means a larger batch and more prompt tokens a step, so the excess feeds back; capped at 10 e near
    # saturation). The secant of h's values at the ends, not of Illinois's weights h_lo, h_hi (halved each time an end
    # is kept): that one was up to 3x too flat where the bracket's end was kept, and a roofline's excess fed back 3.3x
    # instead of 1.6x (moe_1gpu at 0.9: mean step 22.96 ms, simulated 21.45; now 21.36)
    slope = (f_hi - f_lo) / np.maximum(hi - lo, 1e-300)
    tau = np.maximum(tau + _cluster_excess_s(step_s, n, rate, inp, budget, tau, cv_in) / np.clip(-slope, 0.1, 1.0),
                     0.5 * tau)
    return np.minimum(rate * out * tau, max_batch), tau


def full_batch_step_s(step_s: StepFn, b: np.ndarray, inp: np.ndarray, out: np.ndarray, budget: np.ndarray,
                      cv_in: np.ndarray | float = 0.0) -> np.ndarray:
    """Mean step time of a full batch: it retires b / O requests a step and admits as many prompts (b P / O prompt
    tokens a step, arriving whole: `chunked_step_s`), plus their clustering (`_cluster_excess_s`, at the completion
    rate b / (O tau): two damped passes, a longer step lowering the rate that lengthens it)."""
    lin = chunked_step_s(step_s, b, b * inp / out, inp, budget)
    cv_in = np.broadcast_to(np.asarray(cv_in, dtype=float), lin.shape)
    # tau = lin + excess(rate b / (O tau)): the right side falls as tau grows, so one root, bracketed by
    # [lin, lin + excess at rate b / (O lin)]; false position on it (a few steps)
    # (the excess is negative where step_s is concave in the prompt tokens, e.g. a prefill efficiency that grows with
    # the chunk: then the root lies below lin)
    e0 = _cluster_excess_s(step_s, b, b / (out * lin), inp, budget, lin, cv_in)
    lo, hi = np.minimum(lin, lin + e0), np.maximum(lin, lin + e0)
    g_lo, g_hi = np.abs(e0), -np.abs(e0)
    for _ in range(_SAT_ITER):
        x = np.where(g_lo - g_hi > 1e-15 * lo, (lo * g_hi - hi * g_lo) / np.minimum(g_hi - g_lo, -1e-300), lo)
        x = np.clip(x, lo, hi)
        gx = lin + _cluster_excess_s(step_s, b, b / (out * x), inp, budget, x, cv_in) - x
        up = gx >= 0.0
        lo, g_lo = np.where(up, x, lo), np.where(up, gx, g_lo)
        hi, g_hi = np.where(up, hi, x), np.where(up, g_hi, gx)
    tau = np.where(g_lo - g_hi > 1e-15 * lo, (lo * g_hi - hi * g_lo) / np.minimum(g_hi - g_lo, -1e-300), lo)
    return np.maximum(tau, 0.5 * lin)


def chunked_step_s(step_s: StepFn, batch: np.ndarray, prompt_tokens_per_step: np.ndarray, inp: np.ndarray,
                   budget: np.ndarray) -> np.ndarray:
    """Mean step time when prompts arrive whole: a step admits a waiting prompt in one chunk of
    min(P, budget - batch) tokens (vLLM/SGLang schedule as much of it as the budget allows), so a fraction
    f = prompt tokens per step / chunk of the steps carries a chunk and the rest decode only:
    (1 - f) step_s(batch, 0) + f step_s(batch, chunk) (f > 1: several prompts a step, linear in their tokens, up to
    the spare budget). Spreading the tokens evenly over every step instead would hide most prefill under the
    decode's memory time and overstate the rate."""
    spare = np.maximum(budget - batch, 1.0)
    chunk = np.maximum(np.minimum(inp, spare), 1.0)
    f = np.clip(prompt_tokens_per_step / chunk, 0.0, spare / chunk)
    return (1.0 - f) * step_s(batch, np.zeros_like(batch)) + f * step_s(batch, chunk)


_CYCLE_K = 6  # prompt counts 0 .. K - 1 of `_cluster_excess_s`'s chain (the last lumps the Poisson tail)
_CYCLE_ITER = 4  # power iterations of the chain from Poisson(rate tau)
_SAT_ITER = 1  # false-position steps of the full batch's mean step with clustering


def _cluster_excess_s(step_s: StepFn, batch: np.ndarray, rate: np.ndarray, inp: np.ndarray, budget: np.ndarray,
                      tau: np.ndarray, cv_in: np.ndarray) -> np.ndarray:
    """What prompt clustering adds to the mean step beyond `chunked_step_s` (zero for a step linear in the prompt
    tokens; > 0 where it is convex, e.g. a roofline whose first few hundred prompt tokens ride free under the
    decode's memory time and a step with two prompts gets that free ride once).

    Whole prompts arrive as a Poisson stream at `rate` and the engine takes those that arrived during the previous
    cycle: a cycle carrying k prompts is ceil(k P / spare) steps (full-budget steps and a rest; one plain step if
    k = 0) of total time T_k, and the count the next cycle carries is Poisson(rate T_k): long cycles draw more
    prompts into the next (a Markov chain on k, an embedded chain as in bulk-service queues [2]). Under its
    stationary law (power iteration from Poisson(rate tau)) the excess is E[T_k - L_k] / E[steps], L_k the same
    cycle's time were step_s linear in the prompt tokens through step_s(n, 0) and step_s(n, chunk), which is what
    `chunked_step_s` assumes; taking the difference under one law keeps the truncated chain's errors out of it."""
    spare = np.maximum(budget - batch, 1.0)
    chunk = np.maximum(np.minimum(inp, spare), 1.0)
    s0 = step_s(batch, np.zeros_like(batch))
    slope = (step_s(batch, chunk) - s0) / chunk
    full = step_s(batch, spare)
    m0 = rate * tau
    ks = np.broadcast_to(np.arange(_CYCLE_K, dtype=float), (batch.size, _CYCLE_K)).copy()
    # the last state stands for k >= K - 1, with P(k >= j) = P(j, m0) (regularised lower incomplete gamma) and
    # E[k | k >= K - 1] = m0 P(k >= K - 2) / P(k >= K - 1)
    tail = gammainc(_CYCLE_K - 1.0, m0)
    ks[:, -1] = np.maximum(_CYCLE_K - 1.0, m0 * gammainc(_CYCLE_K - 2.0, m0) / np.maximum(tail, 1e-300))
    time, steps, excess = _cycle_excess(step_s, batch, ks, inp, spare, s0, slope, full, cv_in)
    # the chain only where the step is not linear in the prompt tokens and cycles of two or more prompts are not rare
    # (P(k >= 2) = 1 - e^-m (1 + m) at the longest cycle's arrivals m above 1e-4); elsewhere the excess is zero
    m_max = rate * time.max(axis=1)
    out = np.zeros(batch.size)
    rows = np.flatnonzero((np.abs(excess).max(axis=1) > 1e-9 * time.max(axis=1))
                          & (-np.expm1(-m_max) - m_max * np.exp(-m_max) > 1e-4))
    if not rows.size:
        return out
    p = np.empty((rows.size, _CYCLE_K))
    p[:, 0] = np.exp(-m0[rows])
    for j in range(1, _CYCLE_K - 1):
        p[:, j] = p[:, j - 1] * m0[rows] / j
    p[:, -1] = tail[rows]
    m = rate[rows, None] * time[rows]  # (r, K): prompts arriving during a cycle that carried k
    trans = np.empty((rows.size, _CYCLE_K, _CYCLE_K))  # Poisson(m) over 0 .. K - 2, the rest lumped in K - 1
    trans[:, :, 0] = np.exp(-m)
    for j in range(1, _CYCLE_K - 1):
        trans[:, :, j] = trans[:, :, j - 1] * m / j
    trans[:, :, -1] = np.maximum(1.0 - trans[:, :, :-1].sum(axis=2), 0.0)
    pi = p
    for _ in range(_CYCLE_ITER):
        pi = np.einsum("ni,nij->nj", pi, trans)
    out[rows] = np.sum(pi * excess[rows], axis=1) / np.sum(pi * steps[rows], axis=1)
    return out


def _cycle_excess(step_s: StepFn, batch, ks, inp, spare, s0, slope, full, cv_in) -> tuple[np.ndarray, ...]:
    """(time, steps, time beyond the linear model) of cycles carrying ks prompts (n, K): full-budget steps and a
    rest (one plain step if none). With varying prompt lengths (CV cv_in) the k prompts' tokens, a sum of k
    lognormals, are taken as one lognormal of the same mean and variance (Fenton-Wilkinson [5]: log-sd s with
    s^2 = ln(1 + cv^2 / k)) on two points, k P e^(-+s) / cosh(s) with probability 1/2 each (two-point Gauss-Hermite
    in log space, the mean kept exact), so the step's convexity over the prompt-length spread counts too."""
    s_k = np.sqrt(np.log1p(cv_in[:, None] ** 2 / np.maximum(ks, 1.0)))
    varying = bool(np.any(cv_in > 0))
    out = [np.zeros(ks.shape) for _ in range(3)]
    for sign in ((-1.0, 1.0) if varying else (0.0,)):
        tok = ks * inp[:, None] * np.exp(sign * s_k) / np.cosh(s_k)
        n_full = np.floor(tok / spare[:, None])
        rest = tok - n_full * spare[:, None]
        part = (rest > 0.5) | (ks == 0)
        steps = n_full + part
        time = n_full * full[:, None]
        time[:, 0] += s0
        for j in range(1, ks.shape[1]):
            time[:, j] += np.where(part[:, j], step_s(batch, np.where(part[:, j], rest[:, j], 0.0)), 0.0)
        done = n_full * spare[:, None] + np.where(part, rest, 0.0)  # the tokens the steps carry (a rest < 0.5 dropped)
        w = 0.5 if varying else 1.0
        for acc, part_value in zip(out, (time, steps, time - steps * s0[:, None] - done * slope[:, None]), strict=True):
            acc += w * part_value
    return tuple(out)


def saturation_rate_per_s(step_s: StepFn, *, input_tokens: Any, output_tokens: Any, max_batch: Any,
                          token_budget: Any, input_tokens_cv: Any = 0.0) -> np.ndarray:
    """Highest sustainable request rate per instance: the full batch's completions, or the prompt tokens the
    spare budget admits, whichever is lower."""
    n = _n_of(input_tokens, output_tokens, max_batch, token_budget)
    inp, out = _arr("input_tokens", input_tokens, n), _arr("output_tokens", output_tokens, n)
    b, budget = _arr("max_batch", max_batch, n), _arr("token_budget", token_budget, n)
    if np.any(b < 1):
        raise InvalidInputError(f"max_batch must be >= 1, got {brief(float(np.min(b)))}")
    cv_in = _arr("input_tokens_cv", input_tokens_cv, n, positive=False)
    return _saturation(step_s, inp, out, b, budget, cv_in)[0]


def _saturation(step_s: StepFn, inp: np.ndarray, out: np.ndarray, b: np.ndarray, budget: np.ndarray,
                cv_in: np.ndarray) -> tuple[np.ndarray, ...]:
    """(saturation rate, the full batch's mean step, its plain decode step, and `_steady`'s bracket ends
    step_s(1, 0) and step_s(max_batch, budget)): what does not depend on the rate, computed once a search."""
    spare = np.maximum(budget - b, 1.0)
    # full batch: prompt tokens per step = b P / O (one request finishes per O / b steps)
    tau_full = full_batch_step_s(step_s, b, inp, out, budget, cv_in)
    by_batch = b / (out * tau_full)
    by_budget = spare / (inp * step_s(b, spare))
    return (np.minimum(by_batch, by_budget), tau_full, step_s(b, np.zeros_like(b)),
            step_s(np.ones_like(b), np.zeros_like(b)), step_s(b, budget))


MGC_CSV = DATA_DIR / "queueing_mgc.csv"


@dataclass(frozen=True)
class MgcRow:
    """One cell of data/queueing_mgc.csv, written by scripts/queueing_mgc_table.py: the simulated M/G/c waiting time
    with lognormal service of CV `service_cv` (mean 1) on `servers` servers at `utilisation_frac`, as corrections to
    M/M/c (the annotations are its columns, read by `_csvschema.read_records`)."""

    row_id: str
    service_cv: NonNegative
    servers: Count
    utilisation_frac: Frac
    wait_prob_ratio: Positive  # P(W > 0) / Erlang C
    wait_prob_ratio_se: NonNegative  # batch-means standard error
    wait_mean_factor: Positive  # E[W | W > 0] (c mu - lambda): 1 for M/M/c, (1 + cs^2) / 2 by Allen-Cunneen
    wait_mean_factor_se: NonNegative
    tail_prob_ratio: Positive  # the tail's exponential fit alpha e^(-gamma x): alpha / Erlang C
    tail_prob_ratio_se: NonNegative
    tail_factor: Positive  # (c mu - lambda) / gamma
    tail_factor_se: NonNegative
    wait_p50_factor: Positive  # quantiles of W | W > 0 in the same unit
    wait_p90_factor: Positive
    wait_p99_factor: Positive
    waits: Annotated[int, Whole(ge=0)]  # waiting arrivals counted
    arrivals: Count
    seed: Annotated[int, Whole(ge=0)]
    basis: str  # simulated, or M/M/c where too few arrivals waited
    generated_by: str


@dataclass(frozen=True)
class _MgcGrid:
    cs2: np.ndarray  # squared service CVs of the grid, ascending
    log2_servers: np.ndarray
    utilisation: np.ndarray
    log_ratio: np.ndarray  # (cs2, servers, utilisation): ln P(W > 0) / Erlang C
    factor: np.ndarray  # (cs2, servers, utilisation): (c mu - lambda) / gamma, gamma the tail's decay rate
    mean_factor: np.ndarray  # (cs2, servers, utilisation): E[W | W > 0] (c mu - lambda)

    @functools.cached_property
    def cells(self) -> np.ndarray:  # (cs2, servers, utilisation, 3): log_ratio, factor, mean_factor
        return np.stack([self.log_ratio, self.factor, self.mean_factor], axis=-1)


@functools.lru_cache(maxsize=2)
def mgc_grid(path: str = str(MGC_CSV)) -> _MgcGrid:
    """data/queueing_mgc.csv as a complete grid over (service CV, servers, utilisation), loaded once per process;
    CatalogError on a bad cell or a missing grid point."""
    table = read_records(path, MgcRow, name=Path(path).name, id_column="row_id")
    rows = table.records
    axes = [sorted({getattr(r, k) for r in rows}) for k in ("service_cv", "servers", "utilisation_frac")]
    index = {(r.service_cv, r.servers, r.utilisation_frac): r for r in rows}
    shape = tuple(len(a) for a in axes)
    if len(index) != int(np.prod(shape)) or any(n < 2 for n in shape):
        raise table.error(None, None, None, f"is not a complete grid of at least 2 x 2 x 2 cells over service_cv, "
                                            f"servers and utilisation_frac ({len(index)} cells, axes {shape})")
    cells = [[[index[(v, c, u)] for u in axes[2]] for c in axes[1]] for v in axes[0]]
    return _MgcGrid(np.array(axes[0], dtype=float) ** 2, np.log2(np.array(axes[1], dtype=float)),
                    np.array(axes[2], dtype=float),
                    np.log(np.array([[[r.wait_prob_ratio for r in b] for b in a] for a in cells])),
                    np.array([[[r.tail_factor for r in b] for b in a] for a in cells]),
                    np.array([[[r.wait_mean_factor for r in b] for b in a] for a in cells]))


def _mgc_correction(service_cv: np.ndarray, servers: np.ndarray, utilisation: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(W > 0) / Erlang C, (c mu - lambda) / gamma, E[W | W > 0] (c mu - lambda)) of the M/G/c wait with lognormal
    service of this CV, gamma the
    decay rate of the exponential fitted to its tail, interpolated in data/queueing_mgc.csv: linear in the squared
    CV (as Allen-Cunneen's factor is), in log2 of the servers and in the utilisation; clamped to the grid's edges
    outside it. P(W > 0) and the tail's decay rate, not the fit's level: the conditional wait of many
    deterministic servers is not exponential (its tail lies above the exponential from P(W > 0), level 1.2 x
    Erlang C against P(W > 0) 0.92 x at 64 servers and 0.9), and the mass is what the median reads."""
    g = mgc_grid()
    weights = []
    for axis, value in ((g.cs2, service_cv ** 2), (g.log2_servers, np.log2(np.maximum(servers, 1.0))),
                        (g.utilisation, utilisation)):
        j = np.clip(np.searchsorted(axis, value, side="right") - 1, 0, axis.size - 2)
        w = np.clip((value - axis[j]) / (axis[j + 1] - axis[j]), 0.0, 1.0)
        weights.append((j, w))
    (i, wi), (j, wj), (k, wk) = weights
    acc = np.zeros((wi.size, 3))  # ln ratio, tail factor, mean factor: one gather of the three per corner
    for di, fi in ((0, 1.0 - wi), (1, wi)):
        for dj, fj in ((0, 1.0 - wj), (1, wj)):
            for dk, fk in ((0, 1.0 - wk), (1, wk)):
                acc += (fi * fj * fk)[:, None] * g.cells[i + di, j + dj, k + dk]
    return np.exp(acc[:, 0]), acc[:, 1], acc[:, 2]


def _slot_wait(b: np.ndarray, a: np.ndarray, rate: np.ndarray, service: np.ndarray, cv_out: np.ndarray,
               plain_full: np.ndarray, tau_full: np.ndarray, nbar: np.ndarray, branching: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ln P(slot wait > 0), the slow and the fast rate of the wait given that it waits): c = max_batch slots, mean
    service `service` (O steps of the full batch's mean step), offered load a = rate x service.

    P(wait) is the probability that the requests in the engine fill the slots. Their number is not Poisson of mean a
    (Erlang C's premise): (1) below the full batch the steps are shorter than tau_full, so the mean is the running
    batch nbar (< a; Little's law on the mean step at the rate); (2) it is peaked: each request's own work lengthens
    the steps and so draws more arrivals into the engine while it runs (its prompt a step by its marginal time, its
    decode every step of its life by the step's slope in the batch), a branching process whose clusters have
    E[K^2] / E[K] = 1 / (1 - m)^2 for Poisson offspring of mean m (Galton-Watson; the cluster form of a self-exciting
    stream [13]); the decode's offspring arrive over the parent's life, so the parent and child overlap half of it
    on average and count half: m = `branching` (prompt part + decode part / 2, from `_latency`). The variance of the
    number in the engine is z nbar with that peakedness z. Hayward's approximation for peaked traffic [14]: P(wait)
    = Erlang C(c / z, nbar / z). The length spreads are left out of z: a prompt-length spread adds to the offspring's
    variance, an output-length spread shortens the overlap of a cluster's members (for batch arrivals into infinite
    servers Var N = rate E[K] E[S] + rate E[K(K - 1)] int P(S > t)^2 dt), and the simulated
    peakedness of the engine's occupancy is about the same with fixed lengths and with both CVs 1 (dense70b 2.70 and
    2.81, moe 4.48 and 4.02, roofline 2.32 and 2.70 at 0.9 utilisation).

    Given a wait the request waits for the queue ahead of it to clear at the full batch's completion rate; the wait is
    read from the tabulated M/G/c (`_mgc_correction`) at the service CV the full batch's completions show in real
    time, as two exponential stages in series: the slow one at the tail's decay rate (c mu - rate) / tail factor,
    the fast one the rest of the table's conditional mean (an M/D/c's conditional wait is less variable than an
    exponential: at 64 slots and 0.9 its quantiles 0.47 / 1.33 / 2.55 / (c mu - rate) at 0.5 / 0.9 / 0.99, the two
    stages 0.47 / 1.30 / 2.47, one exponential at the tail's rate 0.36 / 1.19 / 2.37; the engine's simulated slot waits
    0.49 / 1.31 / 2.36 on dense70b).

    The service CV: a full batch with a queue admits a waiting request at each completion, and the next step
    prefills its prompt: of the full batch's mean step tau_full, the share phi = 1 - plain / tau_full is prompt work
    that completions bring. So s steps carrying k completions last s plain + k (tau_full - plain) / r (r completions
    a step): when completions bunch, the steps lengthen, and their count in real time varies (1 - phi)^2 as much as
    their count in steps (a random time change; renewal-reward central limit theorem). The count in steps is an
    M/G/c's with service O steps of CV cv_out; in real time it is taken as that of an M/G/c whose service CV is
    cv_out (1 - phi) (Allen-Cunneen's factor (1 + cs^2) / 2 [3] being the variability of the departures)."""
    phi = np.clip(1.0 - plain_full / np.maximum(tau_full, 1e-300), 0.0, 1.0)
    _, factor, mean_factor = _mgc_correction(cv_out * (1.0 - phi), b, a / b)
    m = np.clip(branching, 0.0, 0.9)
    z = np.clip(1.0 / (1.0 - m) ** 2, 1.0, b)
    log_c = np.minimum(_log_erlang_c(b / z, np.minimum(nbar, a) / z), 0.0)
    gap = np.maximum(b / service - rate, 1e-12)
    # the fast stage: the table's conditional mean beyond the slow stage's (none where it does not exceed it)
    fast = np.where(mean_factor > 1.001 * factor, gap / np.maximum(mean_factor - factor, 1e-300), np.inf)
    return log_c, gap / factor, fast


def _log_erlang_c(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """log of Erlang C (probability of waiting) for c servers at offered load a = rate / mu < c."""
    # Erlang B by log-sum over k: B = (a^c / c!) / sum_k a^k / k!  (k = 0..c), done with a stable log-sum
    c = np.maximum(c, 1.0)
    # use the Poisson-CDF identity: sum_{k<=c} e^-a a^k/k! = Q(c+1, a) (regularised upper gamma)
    log_term = c * np.log(np.maximum(a, 1e-300)) - a - gammaln(c + 1.0)
    log_cdf = np.log(np.maximum(gammaincc(c + 1.0, a), 1e-300))
    log_b = log_term - log_cdf
    b = np.exp(np.minimum(log_b, 0.0))
    rho = np.minimum(a / c, 1 - 1e-12)
    erlang_c = b / (1.0 - rho * (1.0 - b))
    return np.log(np.clip(erlang_c, 1e-300, 1.0))


# Own prefill with varying prompt lengths: the prompt-length distribution cut into bins of probability (finer in
# the upper tail, where TTFT's p95/p99 sit), the own prefill taken as uniform between its values at a bin's edges
# (the first bin starts at the 0.0003 quantile, the last ends at the 0.9997 quantile)
_U_EDGES = np.array([0.0, 0.25, 0.5, 0.75, 0.9, 0.96, 0.99, 0.997, 1.0])
_U_LAST = 0.9997
# The chunk steps an arrival may land in (residual): two prompt lengths, at these quantiles with these
# probabilities, before length-biasing
_R_NODES = np.array([0.5, 0.95])
_R_WEIGHTS = np.array([0.75, 0.25])
# step_s(n, p) evaluated at these fractions of the chunk c and interpolated (varying prompt lengths); dense at
# small p, where a bandwidth-bound step's prompt tokens ride free up to a kink
_PREFILL_TABLE = np.array([0.0, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0])
_BLOCK = 65_536  # elements of the tail's temporaries per block of rows
_SLOT_NEGLIGIBLE = 1e-7  # P(slot wait > 0) below which `_Ttft.tail` leaves the slot wait's terms out
_GRID = 16  # TTFT values per configuration at which the tail is evaluated to read off its quantiles
_REFINE = 4  # refinement steps inside the grid interval that brackets a quantile


def _log_interp(t0: np.ndarray, t1: np.ndarray, f0: np.ndarray, f1: np.ndarray, p: float) -> np.ndarray:
    """Where a tail through (t0, f0) and (t1, f1), log-linear in t (exact for an exponential tail), equals p."""
    l0, l1 = np.log(np.maximum(f0, 1e-300)), np.log(np.maximum(f1, 1e-300))
    frac = np.clip(np.where(l0 > l1, (l0 - np.log(p)) / np.maximum(l0 - l1, 1e-300), 1.0), 0.0, 1.0)
    return t0 + (t1 - t0) * frac


@dataclass(frozen=True)
class _Ttft:
    """TTFT = slot wait + prompt wait + residual of the running step + own prefill, as one distribution.

    Quantiles come from the distribution of the sum, not the sum of the parts' quantiles (which overstates a
    tail and understates the median when some parts are mostly zero). Parts, independent:
    - slot wait S: P(S > x) = C exp(-gamma x) (Erlang C, exponential beyond);
    - prompt wait W: P(W > x) = rho exp(-x / theta);
    - residual R: the engine admits at step boundaries; an arrival lands in a step with probability
      proportional to its length (length-biased, renewal theory [2]): in a plain decode step of tau0 or in
      a step carrying a prompt chunk (its length varies with the prompt), and waits U(0, tau) of it; none
      when the engine is idle;
    - own prefill X: full chunks of step_s(n, c) plus the rest, at the prompt length's quantiles.
    R + X is held as a mixture of uniforms (offset a, width d, weight w): with fixed lengths X is one value
    and R's three parts are exact; with varying lengths X is piecewise uniform over probability bins, and each
    (residual part, bin) pair is the uniform with the mean and variance of their sum.
    P(T > t) = sum w (1/d) int_0^d H(t - a - u) du with H(x) = P(S + W > x) = sum_k c_k exp(-r_k x) (x >= 0),
    in closed form.
    """

    offset_s: np.ndarray  # (n, M)
    width_s: np.ndarray  # (n, M)
    weight: np.ndarray  # (n, M)
    coef: np.ndarray  # (n, 3, M): H_m(x) = sum_k coef_km exp(-rates_k x), x >= 0, for the mixture's part m
    rates: np.ndarray  # (n, 3)
    lo_s: np.ndarray  # (n,) T >= this (own prefill at the lowest quantile asked: set by `quantiles`)
    xq: Callable[[float], np.ndarray]  # own prefill at a prompt-length quantile
    s_frac: np.ndarray
    s_rate: np.ndarray  # the slot wait's slow stage: P(S > x) <= s_frac s_level exp(-s_rate x)
    s_level: np.ndarray
    s_mean_s: np.ndarray  # E[S]
    n_slot_rates: int  # the first columns of `rates` that are the slot wait's (1 or 2)
    order: np.ndarray | None  # the rows of offset_s, width_s, weight, coef and rates (None: as given; `grouped`)
    n_waiting: int  # the first n_waiting of them have a slot wait; the rest skip its rate columns in `tail`
    w_frac: np.ndarray
    w_slow_mean_s: np.ndarray  # the slower phase's mean: P(W > x) <= rho exp(-x / this)
    mean_s: np.ndarray  # E[TTFT] = E[R + X] + C / gamma + rho E[W | W > 0]
    mean_step_s: np.ndarray  # E[TPOT] over requests (set by `_latency`: the mean step plus what a request's start
    # after its own prompt adds, capped as the quantiles are)

    @staticmethod
    def build(step_s: StepFn, *, nbar, rate, tau, inp, cv_in, budget, plain_step_s, chunk_step_s, slot_wait_frac,
              slot_rate_per_s, prompt_wait_probs, prompt_wait_rates, full_step_s, cobatch,
              slot_fast_rate_per_s=None) -> _Ttft:
        n = nbar.size
        chunk = np.maximum(budget - nbar, 1.0)
        sigma = np.sqrt(np.log1p(cv_in ** 2))
        varying = bool(np.any(cv_in > 0))
        if varying:
            table = np.stack([step_s(nbar, chunk * frac) for frac in _PREFILL_TABLE], axis=1)  # (n, J)
            full_step = table[:, -1]

            def step_at(p: np.ndarray) -> np.ndarray:  # p (n, K), 0 <= p <= chunk: linear in the table
                frac = np.clip(p / chunk[:, None], 0.0, 1.0)
                j = np.clip(np.searchsorted(_PREFILL_TABLE, frac, side="right") - 1, 0, _PREFILL_TABLE.size - 2)
                w = (frac - _PREFILL_TABLE[j]) / (_PREFILL_TABLE[j + 1] - _PREFILL_TABLE[j])
                lo = np.take_along_axis(table, j, axis=1)
                return lo + w * (np.take_along_axis(table, j + 1, axis=1) - lo)
        else:
            full_step = full_step_s  # step_s(n, c): a full chunk (the prompt queue's service step)
            exact = step_s(nbar, np.minimum(inp, chunk))

            def step_at(p: np.ndarray) -> np.ndarray:  # fixed lengths: the prompt's one length, evaluated exactly
                return np.broadcast_to(exact[:, None], p.shape)

        def length_at(u: np.ndarray) -> np.ndarray:  # prompt length at quantiles u (K,): lognormal with mean inp
            z = ndtri(u)[None, :]
            return inp[:, None] * np.exp(sigma[:, None] * z - sigma[:, None] ** 2 / 2)

        def own(u: np.ndarray) -> np.ndarray:  # own prefill (n, K) at prompt-length quantiles u (K,)
            length = length_at(u)
            full = np.floor(length / chunk[:, None])
            rest = length - full * chunk[:, None]
            return full * full_step[:, None] + np.where(rest > 0.5, step_at(np.where(rest > 0.5, rest, 1.0)), 0.0)

        # residual: a fraction f of the steps carries a prompt chunk (prompts arrive whole, `chunked_step_s`); with
        # varying prompts the chunk steps vary too, and an arrival lands in a long one more often (length-biased)
        busy = -np.expm1(-nbar)
        f = np.clip(rate * inp * tau / np.maximum(np.minimum(inp, chunk), 1.0), 0.0, 1.0)
        in_chunk = f * chunk_step_s / np.maximum(f * chunk_step_s + (1.0 - f) * plain_step_s, 1e-300)
        if varying:
            steps = step_at(np.minimum(length_at(_R_NODES), chunk[:, None]))  # (n, R)
            biased = _R_WEIGHTS[None, :] * steps
            biased = biased / biased.sum(axis=1, keepdims=True)
        else:
            steps, biased = chunk_step_s[:, None], np.ones((n, 1))
        res_w = np.concatenate([(1.0 - busy)[:, None], (busy * (1.0 - in_chunk))[:, None],
                                (busy * in_chunk)[:, None] * biased], axis=1)  # (n, 2 + R)
        res_len = np.concatenate([np.zeros((n, 1)), plain_step_s[:, None], steps], axis=1)
        if varying:
            edges = own(np.concatenate([[1.0 - _U_LAST], _U_EDGES[1:-1], [_U_LAST]]))  # (n, K + 1)
            bins = np.diff(_U_EDGES)
            # each (residual part, prompt bin) pair: the sum of two uniforms, held as one uniform of the same mean
            # and variance (width sqrt(d_R^2 + d_X^2))
            d_x = np.diff(edges, axis=1)[:, None, :]  # (n, 1, K)
            d_r = res_len[:, :, None]  # (n, 2 + R, 1)
            width = np.sqrt(d_x ** 2 + d_r ** 2)
            offset = (edges[:, None, :-1] + (d_x + d_r - width) / 2.0).reshape(n, -1)
            width = width.reshape(n, -1)
            weight = (res_w[:, :, None] * bins[None, None, :]).reshape(n, -1)
        else:
            offset = np.broadcast_to(own(np.array([0.5])), (n, res_len.shape[1]))
            width, weight = res_len, res_w
        c, g = np.clip(slot_wait_frac, 0.0, 1.0), np.maximum(slot_rate_per_s, 1e-12)
        # the slot wait given a wait: two exponential stages in series, the slow one at rate g (the tail's decay) and
        # a fast one at h (none where h is infinite): P(S > x | S > 0) = a_g e^-gx + a_h e^-hx, a_g = h / (h - g),
        # a_h = -g / (h - g)
        h = (np.full_like(g, np.inf) if slot_fast_rate_per_s is None
             else np.maximum(np.asarray(slot_fast_rate_per_s, dtype=float), 1.01 * g))
        two = bool(np.any(np.isfinite(h)))
        h = np.where(np.isfinite(h), h, 1e6 * g)
        a_g, a_h = h / (h - g), np.where(h < 1e6 * g, -g / (h - g), 0.0)
        s_rates = [(g, a_g), (h, a_h)] if two else [(g, np.ones_like(g))]
        # the prompt wait W: a mixture of exponentials with one set of rates and phase probabilities by the part of R
        # (`_prompt_wait_phases`): an arrival in a decode-only step finds no prompt work queued, one in a step carrying
        # a chunk may; P(W > x) = sum_j p_j e^(-b_j x)
        probs_plain, probs_chunk = prompt_wait_probs
        n_parts = res_w.shape[1]
        pw = np.empty((n, n_parts, probs_plain.shape[1]))  # (n, parts, J): idle, plain decode step, chunk steps
        pw[:, :2], pw[:, 2:] = probs_plain[:, None, :], probs_chunk[:, None, :]
        # co-batching by the step the arrival lands in: the prompts arriving during its residual R ~ U(0, T) join its
        # step, P(C > 0 | T) = 1 - E[e^(-rate R)] = 1 - (1 - e^(-rate T)) / (rate T); none in an idle engine, which
        # starts the arrival's step at once. `_prompt_wait_phases` takes one probability for every part, 1 - e^(-m) at
        # the mean arrivals m = rate E[R] (`cobatch`: that probability's share of the first phase in a decode-only
        # and in a chunk step, and m): a long chunk step's arrival is co-batched more often than that, a short decode
        # step's far less (simulated, small_longprompt with CV-1 lengths at 0.7 utilisation: 1.4 % of the arrivals in
        # a decode-only step share their step with a later prompt, where the mean said 36 %)
        c_in_plain, c_in_chunk, c_mean_arrivals = cobatch
        lt = rate[:, None] * res_len
        p_part = np.where(lt > 1e-9, 1.0 + np.expm1(-lt) / np.maximum(lt, 1e-300), 0.5 * lt)
        p_part[:, 0] = 0.0
        scale = p_part / np.maximum(-np.expm1(-c_mean_arrivals), 1e-300)[:, None]
        scale[:, :2] = (scale[:, :2] - 1.0) * c_in_plain[:, None]
        scale[:, 2:] = (scale[:, 2:] - 1.0) * c_in_chunk[:, None]
        pw[:, :, 0] += scale
        betas = np.maximum(prompt_wait_rates, 1e-12)
        for sr, _ in s_rates:
            betas = np.where(np.abs(betas - sr[:, None]) < 1e-4 * np.maximum(betas, sr[:, None]), betas * (1.0 + 1e-4),
                             betas)
        # P(S + W > x) = (1 - C) sum_j p_j e^-b_j x + C sum_s a_s P(E_s + W > x), E_s exponential at rate s:
        # P(E_s + W > x) = (1 - sum_j p_j) e^-sx + sum_j p_j (b_j e^-sx - s e^-b_j x) / (b_j - s)
        #                = 1 + sum_j p_j s / (b_j - s) at e^-sx, - sum_j p_j s / (b_j - s) at e^-b_j x:
        # the coefficients are linear in the phase probabilities, for every part of R at once
        coef_s, coef_b = [], pw * (1.0 - c)[:, None, None]  # (n, parts, J)
        for sr, a_s in s_rates:
            v = (c * a_s)[:, None] * sr[:, None] / (betas - sr[:, None])  # (n, J)
            coef_s.append((c * a_s)[:, None] + np.einsum("npj,nj->np", pw, v))
            coef_b = coef_b - pw * v[:, None, :]
        coef = np.concatenate([np.stack(coef_s, axis=1), coef_b.transpose(0, 2, 1)], axis=1)  # (n, S + J, parts)
        w_mean = np.einsum("npj,nj->np", pw, 1.0 / betas)
        if varying:  # the mixture holds each part of R once per prompt bin
            bins_per_part = offset.shape[1] // n_parts
            coef, w_mean = np.repeat(coef, bins_per_part, axis=2), np.repeat(w_mean, bins_per_part, axis=1)
        rho = np.clip(probs_chunk.sum(axis=1), 0.0, 1.0)
        s_mean = c * (1.0 / g + np.where(a_h != 0.0, 1.0 / h, 0.0))
        mean_s = np.sum(weight * (offset + width / 2.0 + w_mean), axis=1) + s_mean
        rates = np.concatenate([np.stack([sr for sr, _ in s_rates], axis=1), betas], axis=1)
        return _Ttft(np.ascontiguousarray(offset), np.maximum(np.ascontiguousarray(width), 1e-12), weight,
                     np.ascontiguousarray(coef), rates, offset.min(axis=1), lambda q: own(np.array([q]))[:, 0], c, g,
                     a_g if two else np.ones_like(g), s_mean, len(s_rates), None, n, rho, 1.0 / betas.min(axis=1),
                     mean_s, tau)

    def grouped(self) -> _Ttft:
        """The same distribution with the mixture's rows reordered, those with a slot wait first (P(S > 0) > 1e-7):
        `tail` then leaves the slot wait's rate columns out for the rest. Worth its copies where the tail is read many
        times (`quantiles`), not for one reading."""
        waiting = self.s_frac > _SLOT_NEGLIGIBLE
        order = np.concatenate([np.flatnonzero(waiting), np.flatnonzero(~waiting)])
        return replace(self, offset_s=self.offset_s[order], width_s=self.width_s[order], weight=self.weight[order],
                       coef=self.coef[order], rates=self.rates[order], order=order, n_waiting=int(waiting.sum()))

    def tail(self, t: np.ndarray) -> np.ndarray:
        """P(TTFT > t), t of shape (n,) or (n, G) (then (n, G)). Rows in blocks: the (rows, G, M) temporaries
        stay small (large ones cost more in page faults than in arithmetic)."""
        t = np.asarray(t, dtype=float)
        grid = t if t.ndim == 2 else t[:, None]
        rows = max(1, _BLOCK // (grid.shape[1] * self.offset_s.shape[1]))
        out = np.empty(grid.shape)
        # where the mixture's arrays hold the rows with a slot wait first (`grouped`), the rest (P(S > 0) <= 1e-7) skip
        # the slot wait's rate columns
        order = np.arange(grid.shape[0]) if self.order is None else self.order
        if self.order is not None:
            grid = grid[order]
        n_w = self.n_waiting
        for first, last, k0 in ((0, n_w, 0), (n_w, grid.shape[0], self.n_slot_rates)):
            for s in range(first, last, rows):
                r = slice(s, min(s + rows, last))
                y = grid[r, :, None] - self.offset_s[r, None, :]  # (rows, G, M): what S + W must exceed
                d = self.width_s[r, None, :]
                yp = np.maximum(y, 0.0)
                m = np.minimum(yp, d)
                part = np.clip(d - y, 0.0, d) / d  # the share of the uniform lying beyond t: H = 1 there
                rates, coef = self.rates[r], self.coef[r]
                for k in range(k0, self.rates.shape[1]):
                    rk = rates[:, k, None, None]
                    # exponents floored at -300: exp() of far-negative arguments returns subnormals (slow), and a
                    # term below e^-300 is zero for a probability
                    part += (coef[:, k, None, :] * np.exp(np.maximum(-rk * (yp - m), -300.0))
                             * -np.expm1(np.maximum(-rk * m, -300.0)) / (rk * d))
                out[order[r]] = np.einsum("rgm,rm->rg", part, self.weight[r])
        out = np.clip(out, 0.0, 1.0)
        return out if t.ndim == 2 else out[:, 0]

    def quantiles(self, qs: tuple[float, ...]) -> dict[float, np.ndarray]:
        """TTFT quantiles: the tail on a geometric grid between a lower bound (T >= the smallest offset, and >= own
        prefill at q) and an upper bound (the sum of the parts' (1 - (1 - q) / 3)-quantiles plus the longest step:
        a union bound, P(T > that) <= 1 - q); then a few steps inside the grid interval that brackets q, the
        log-tail taken as linear in t between two points."""
        q_hi = max(qs)
        grouped = self.grouped()  # the tail is read 1 + 4 x len(qs) times
        q3 = 1.0 - (1.0 - q_hi) / 3.0
        s_q = np.maximum(0.0, np.log(np.maximum(self.s_frac * self.s_level, 1e-300) / (1.0 - q3)) / self.s_rate)
        w_q = np.maximum(0.0, np.log(np.maximum(self.w_frac, 1e-300) / (1.0 - q3)) * self.w_slow_mean_s)
        # just above the bound: at it exactly a zero-width part (the idle residual) would still count as beyond t
        lo = np.maximum(np.minimum(self.lo_s, self.xq(min(qs))), 1e-9) * (1.0 + 1e-9)
        hi = np.maximum(self.xq(q3) + s_q + w_q + np.max(self.width_s + self.offset_s, axis=1)
                        - np.min(self.offset_s, axis=1), lo * 1.001)
        grid = lo[:, None] * (hi / lo)[:, None] ** (np.arange(_GRID) / (_GRID - 1))[None, :]  # (n, G)
        tails = grouped.tail(grid)
        tails[:, -1] = np.minimum(tails[:, -1], 1.0 - q_hi)  # the union bound holds at hi
        out = {}
        rows = np.arange(grid.shape[0])
        for q in qs:
            p = 1.0 - q
            j = np.clip(np.argmax(tails <= p, axis=1), 1, _GRID - 1)  # first grid point at or below the tail p
            t0, t1, f0, f1 = grid[rows, j - 1], grid[rows, j], tails[rows, j - 1], tails[rows, j]
            for _ in range(_REFINE):  # refine inside the bracketing grid interval
                # halfway between the interpolated point and the midpoint: fast where the tail is near exponential,
                # and the bracket shrinks by at least a quarter where it is not (a tail ending at a hard bound)
                mid = 0.5 * (_log_interp(t0, t1, f0, f1, p) + 0.5 * (t0 + t1))
                fm = grouped.tail(mid)
                above = fm > p
                t0, f0 = np.where(above, mid, t0), np.where(above, fm, f0)
                t1, f1 = np.where(above, t1, mid), np.where(above, f1, fm)
            below = tails[:, 0] <= p  # already at or below p at the lower bound
            out[q] = np.where(below, lo, _log_interp(t0, t1, f0, f1, p))
        return out


def latency_percentiles(step_s: StepFn, *, rate_per_s: Any, input_tokens: Any, output_tokens: Any, max_batch: Any,
                        token_budget: Any, input_tokens_cv: Any = 0.0, output_tokens_cv: Any = 0.0
                        ) -> LatencyPercentiles:
    """TTFT and TPOT quantiles of each configuration at `rate_per_s` requests/s (see the module docstring)."""
    return _latency(step_s, rate_per_s=rate_per_s, input_tokens=input_tokens, output_tokens=output_tokens,
                    max_batch=max_batch, token_budget=token_budget, input_tokens_cv=input_tokens_cv,
                    output_tokens_cv=output_tokens_cv, quantiles=PERCENTILES)[0]


def mean_latency_s(step_s: StepFn, *, rate_per_s: Any, input_tokens: Any, output_tokens: Any, max_batch: Any,
                   token_budget: Any, input_tokens_cv: Any = 0.0, output_tokens_cv: Any = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean TTFT, mean TPOT, utilisation) of each configuration at `rate_per_s`: the mean of the TTFT distribution
    the percentiles come from (closed form), and the mean step at the running batch for TPOT. +inf where unstable.
    For comparing with benchmark tools, which report means."""
    lat, ttft = _latency(step_s, rate_per_s=rate_per_s, input_tokens=input_tokens, output_tokens=output_tokens,
                         max_batch=max_batch, token_budget=token_budget, input_tokens_cv=input_tokens_cv,
                         output_tokens_cv=output_tokens_cv, quantiles=(0.5,), ttft_quantiles=False)
    inf = np.where(lat.stable, 1.0, np.inf)
    return ttft.mean_s * inf, ttft.mean_step_s * inf, lat.utilisation_frac


def _hyperexp2(mean: np.ndarray, scv: np.ndarray | float) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """((p1, p2), (rate1, rate2)): the two-phase hyperexponential with balanced means that has this mean and squared
    CV (exponential, both phases alike, where scv <= 1)."""
    scv = np.maximum(scv, 1.0)
    p1 = 0.5 * (1.0 + np.sqrt((scv - 1.0) / (scv + 1.0)))
    m1 = np.maximum(mean, 1e-300)
    return (p1, 1.0 - p1), (2.0 * p1 / m1, 2.0 * np.maximum(1.0 - p1, 1e-12) / m1)


def _prompt_wait_phases(rate, inp, cv_in, nbar, tau, spare, chunk0, plain, chunk_step, full_step, rho, theta, scv,
                        varying: bool) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, tuple[np.ndarray, ...]]:
    """The prompt wait W as a mixture of exponentials: ((phase probabilities (n, J) in a decode-only step and in a
    step carrying a chunk), which sum to P(W > 0); phase rates (n, J); (the co-batching's share of the first phase's
    probability in each, and its mean count m)), the last for `_Ttft.build`, which takes the co-batching by the step
    the arrival lands in. W = Q + C, what a prompt waits for beyond the residual R of the running step (which `_Ttft`
    holds):
    - Q, the prompt work queued ahead of it: the M/G/1 wait on the spare budget (P(wait) = rho, given that it
      waits exponential or the balanced two-phase hyperexponential with the Takacs moments) less the in-service
      prompt's residual service that lies in the running step (`_in_step_residual_s`): the running step's residual
      is R already, and counting it in W too put P(W > 0) at rho, which made the median 12-24 % high with varying
      lengths; a prompt longer than the spare budget leaves its later chunks queued ahead of the arrival, which R
      does not hold (before 2026-12-08 the shift was the whole mean residual service E[X^2] / (2 E[X])). The phases
      are memoryless, so each keeps its rate and its probability shrinks by e^(-rate shift).
    - C, co-batching: the prompts that arrive during its residual R join the same step (FCFS within the budget)
      and lengthen it by their tokens' marginal time c1 (the step's slope beyond the chunk). Their count is
      Poisson(rate E[R]), E[R] = E[T^2] / (2 E[T]) over the steps an arrival finds running (plain decode steps and
      steps with a prompt chunk, whose length varies with the prompt's: variance (c1 P cv)^2); C is held as one
      exponential of its mean given C > 0, and where Q > 0 it adds its mean to Q's phases. With varying lengths C
      and Q's fast phase are held as one exponential of their mean: two phases in all, as many as before."""
    # Q: the M/G/1 wait beyond the in-service prompt's residual service in the running step
    x_mean = inp * full_step / spare
    shift = _in_step_residual_s(x_mean, cv_in, full_step)
    (p1, p2), (b1, b2) = _hyperexp2(theta, scv)
    q_probs = [rho * p1 * np.exp(-b1 * shift), rho * p2 * np.exp(-b2 * shift)]
    q_rates = [b1, b2]
    if not varying:  # fixed lengths: scv <= 1, both phases alike (one exponential)
        q_probs, q_rates = [q_probs[0] + q_probs[1]], [b1]
    q_frac = sum(q_probs)
    # C: the prompts arriving during the residual of the step the request lands in are co-batched with it
    busy = -np.expm1(-nbar)
    c1 = np.where(spare > chunk0 + 1.0, np.maximum(full_step - chunk_step, 0.0) / np.maximum(spare - chunk0, 1.0),
                  np.maximum(full_step - plain, 0.0) / spare)
    f = np.clip(rate * inp * tau / np.maximum(chunk0, 1.0), 0.0, 1.0)
    t1 = f * chunk_step + (1.0 - f) * plain
    t2 = f * (chunk_step ** 2 + (c1 * inp * cv_in) ** 2) + (1.0 - f) * plain ** 2
    m_c = rate * busy * t2 / np.maximum(2.0 * t1, 1e-300)
    c_frac = -np.expm1(-m_c)
    c_mean = c1 * inp * m_c
    # queued prompt work exists only while a prompt is being served: Q > 0 only for an arrival that lands in a step
    # carrying a chunk (probability busy x in_chunk, length-biased as in `_Ttft`), where it is q_frac / that
    in_chunk = busy * f * chunk_step / np.maximum(f * chunk_step + (1.0 - f) * plain, 1e-300)
    scale = 1.0 / np.maximum(np.maximum(in_chunk, q_frac), 1e-300)
    q_probs = [q * scale for q in q_probs]
    q_frac = q_frac * scale
    probs = [c_frac * (1.0 - q_frac)] + q_probs
    means = [c_mean / np.maximum(c_frac, 1e-300)] + [1.0 / b + c_mean for b in q_rates]
    plain_probs = [c_frac] + [np.zeros_like(c_frac) for _ in q_probs]
    if varying:  # C and Q's fast phase as one exponential of their mean (both a few steps long): two phases, not three
        pm = probs[0] + probs[1]
        mm = (probs[0] * means[0] + probs[1] * means[1]) / np.maximum(pm, 1e-300)
        probs, means, plain_probs = [pm, probs[2]], [mm, means[2]], [c_frac, plain_probs[2]]
    return ((np.stack(plain_probs, axis=1), np.stack(probs, axis=1)),
            1.0 / np.maximum(np.stack(means, axis=1), 1e-12), (c_frac, c_frac * (1.0 - q_frac), m_c))


_SHIFT_NODES = 16  # equal-probability bins of the prompt length in `_in_step_residual_s` (varying lengths)


def _in_step_residual_s(x_mean: np.ndarray, cv_in: np.ndarray, step: np.ndarray) -> np.ndarray:
    """The part of the in-service prompt's residual service that lies in the running step: E[s] - E[leftover], s the
    residual service (mean E[X^2] / (2 E[X]), renewal theory [2]) and leftover what the prompt still needs after the
    running step. A prompt of service x = k full-budget steps `step` and a part (k = floor(x / step)) starts at a
    step boundary and fills k full steps before its last: an arrival during its j-th full step (j <= k) finds
    x - j step of it left beyond that step, so E[leftover | x] = step (k x - step k (k + 1) / 2) / x, and over the
    length-biased service in progress E[leftover] = E[step (k x - step k (k + 1) / 2)] / E[X]. X lognormal with mean
    x_mean and CV cv_in (equal-probability bins at their midpoints), fixed where cv_in = 0. Zero for a prompt that
    fits one step (every big-budget engine): then the running step's residual is all of it."""
    shift = x_mean * (1.0 + cv_in ** 2) / 2.0
    z = ndtri((np.arange(_SHIFT_NODES) + 0.5) / _SHIFT_NODES)
    sigma = np.sqrt(np.log1p(cv_in ** 2))
    # only the rows whose longest bin needs more than one step have a leftover (few, where budgets exceed prompts)
    rows = np.flatnonzero(x_mean * np.exp(sigma * z[-1] - sigma ** 2 / 2) / _lognormal_bins_mean(sigma, z) >= step)
    if rows.size:
        xm, st, sg = x_mean[rows, None], step[rows, None], sigma[rows, None]
        x = xm * np.exp(sg * z[None, :] - sg ** 2 / 2) / _lognormal_bins_mean(sg, z)  # (r, K), the bins' mean exact
        k = np.floor(x / st)
        shift[rows] -= np.mean(st * (k * x - st * k * (k + 1.0) / 2.0), axis=1) / np.maximum(x_mean[rows], 1e-300)
    return shift


def _lognormal_bins_mean(sigma: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Mean of e^(sigma z_i - sigma^2 / 2) over the bins' normal quantiles z (1 for sigma = 0): the bins' lognormal
    values divided by it have mean 1."""
    s = np.asarray(sigma, dtype=float)
    return np.mean(np.exp(s[..., None] * z - s[..., None] ** 2 / 2), axis=-1).reshape(s.shape)


def _latency(step_s: StepFn, *, rate_per_s: Any, input_tokens: Any, output_tokens: Any, max_batch: Any,
             token_budget: Any, input_tokens_cv: Any, output_tokens_cv: Any, quantiles: tuple[float, ...],
             ttft_quantiles: bool = True, fixed_parts: tuple[np.ndarray, ...] | None = None
             ) -> tuple[LatencyPercentiles, _Ttft]:
    n = _n_of(rate_per_s, input_tokens, output_tokens, max_batch, token_budget)
    rate = _arr("rate_per_s", rate_per_s, n)
    inp, out = _arr("input_tokens", input_tokens, n), _arr("output_tokens", output_tokens, n)
    b, budget = _arr("max_batch", max_batch, n), _arr("token_budget", token_budget, n)
    if np.any(b < 1):
        raise InvalidInputError(f"max_batch must be >= 1, got {brief(float(np.min(b)))}")
    cv_in = _arr("input_tokens_cv", input_tokens_cv, n, positive=False)
    cv_out = _arr("output_tokens_cv", output_tokens_cv, n, positive=False)
    sat, tau_full, plain_full, *ends = (_saturation(step_s, inp, out, b, budget, cv_in) if fixed_parts is None
                                        else fixed_parts)
    util = rate / sat
    stable = util < 1.0
    r = np.minimum(rate, sat * (1 - 1e-6))
    nbar, tau = _steady(step_s, r, inp, out, b, budget, cv_in, ends=tuple(ends))
    # prompt queue (M/G/1 on the spare token budget)
    spare = np.maximum(budget - nbar, 1.0)
    full_step = step_s(np.maximum(nbar, 1.0), spare)
    x_mean = inp * full_step / spare
    x2 = x_mean ** 2 * (1.0 + cv_in ** 2)
    rho_p = np.minimum(r * x_mean, 1 - 1e-9)
    theta_p = x2 / (2.0 * x_mean * (1.0 - rho_p))
    # its second moment (Takacs): E[W^2] = 2 E[W]^2 + rate E[X^3] / (3 (1 - rho)), E[X^3] = E[X]^3 (1 + cv^2)^3
    # for lognormal prompts; the squared CV of the wait given that it waits
    x3 = x_mean ** 3 * (1.0 + cv_in ** 2) ** 3
    ew = rho_p * theta_p
    ew2 = 2.0 * ew ** 2 + r * x3 / (3.0 * (1.0 - rho_p))
    scv_p = (ew2 / np.maximum(rho_p, 1e-300)) / np.maximum(theta_p, 1e-300) ** 2 - 1.0
    # slot queue (M/G/c): requests wait for a slot only while all max_batch are taken; then every step carries
    # the full batch and the prompts admitted at the completion rate (b P / O tokens a step, as at saturation),
    # so the service time is O such steps (state-dependent service). P(wait) and the decay rate of the wait's
    # exponential tail from the tabulated M/G/c (`_slot_wait`)
    service = out * tau_full
    a = np.minimum(r * service, b * (1 - 1e-9))
    n0 = np.maximum(nbar, 1.0)
    chunk0 = np.maximum(np.minimum(inp, budget - nbar), 1.0)
    plain = step_s(n0, np.zeros_like(n0))
    chunk_step = step_s(n0, chunk0)
    # a prompt's chunks each lengthen a step by their extra time (chunk0 = min(P, budget - n), at least 1)
    extra = np.ceil(inp / np.maximum(budget - nbar, 1.0)) * np.maximum(chunk_step - plain, 0.0)
    # the slot wait's branching ratio (`_slot_wait`): the arrivals a request's own work brings into the engine. Its
    # prompt lengthens a step by its marginal time (extra where the step carries no other chunk, P c1 beyond one, c1
    # the step's slope beyond the chunk, as in `_prompt_wait_phases`), its decode lengthens each of its O steps by the
    # step's slope in the batch (the secant from the running batch to the full one); each second draws `rate` arrivals
    c1 = np.where(spare > chunk0 + 1.0, np.maximum(full_step - chunk_step, 0.0) / np.maximum(spare - chunk0, 1.0),
                  extra / np.maximum(inp, 1.0))
    f_chunk = np.clip(r * inp * tau / np.maximum(chunk0, 1.0), 0.0, 1.0)
    m_prompt = r * ((1.0 - f_chunk) * extra + f_chunk * inp * c1)
    m_decode = r * out * np.where(b - n0 >= 1.0, np.maximum(plain_full - plain, 0.0) / np.maximum(b - n0, 1.0), 0.0)
    log_c, slot_rate, slot_fast = _slot_wait(b, a, r, service, cv_out, plain_full, tau_full, nbar,
                                             m_prompt + 0.5 * m_decode)
    w_probs, w_rates, cobatch = _prompt_wait_phases(r, inp, cv_in, nbar, tau, spare, chunk0, plain, chunk_step,
                                                    full_step, rho_p, theta_p, scv_p, bool(np.any(cv_in > 0)))
    ttft = _Ttft.build(step_s, nbar=nbar, rate=r, tau=tau, inp=inp, cv_in=cv_in, budget=budget,
                       plain_step_s=plain, chunk_step_s=chunk_step, slot_wait_frac=np.exp(log_c),
                       slot_rate_per_s=slot_rate, slot_fast_rate_per_s=slot_fast, prompt_wait_probs=w_probs,
                       prompt_wait_rates=w_rates, full_step_s=full_step, cobatch=cobatch)
    # TPOT - plain step = Y = the prompt work the request's O decode steps carry, over O. That work is the busy
    # periods of the prompt server (M/G/1, a prompt's service its extra time E) started by its roots: the backlog B
    # queued behind it when its prompt finishes (the arrivals during its wait and its own prefill: mean
    # rate E[TTFT - slot wait], variance that plus rate^2 (Var[W] + Var[X])) and the arrivals during its O plain
    # steps (Poisson, rate O plain). A busy period from one root has mean E / (1 - a) and second moment
    # E[E^2] / (1 - a)^3, a = rate E (Kleinrock [2], ch. 5); no decode window holds more than its steps can carry,
    # so the second moment is at most E[BP] O (full step - plain) (E[min(BP, c)^2] <= c E[BP]). The output length
    # varies (lognormal, CV cv_out): Y = sum / O with O = u x mean, E[1/u] = 1 + cv^2, E[1/u^2] = (1 + cv^2)^3, and a
    # short request meets the backlog B whole but few lifetime arrivals. Y's quantiles: one lognormal of its mean
    # and variance (Fenton-Wilkinson [5]). No step lasts longer than one carrying the whole budget, which caps TPOT;
    # with fixed lengths a full batch admits one P-token prompt per completion, so no decode sees more prompt work
    # a step than the full batch's b P / O tokens: its mean step caps TPOT
    fixed = (cv_in == 0) & (cv_out == 0)
    tpot_cap = np.where(fixed, np.minimum(tau_full, full_step), full_step)
    roots_b = r * np.maximum(ttft.mean_s - ttft.s_mean_s, 0.0)
    roots_b_var = roots_b + r * r * (np.maximum(ew2 - ew * ew, 0.0) + (cv_in * extra) ** 2)
    a = np.minimum(r * extra, 0.95)
    bp = extra / (1.0 - a)
    bp2 = np.minimum(extra ** 2 * (1.0 + cv_in ** 2) / (1.0 - a) ** 3, bp * out * np.maximum(full_step - plain, 0.0))
    bp_var = np.maximum(bp2 - bp * bp, 0.0)
    m0 = r * out * plain
    e1 = 1.0 + cv_out ** 2
    e2 = e1 ** 3
    y_mean = bp / out * (m0 + roots_b * e1)
    y_m2 = (bp_var * (m0 * e1 + roots_b * e2)
            + bp * bp * (m0 * m0 + 2.0 * m0 * roots_b * e1 + roots_b ** 2 * e2 + m0 * e1 + roots_b_var * e2)) / out ** 2
    y_s2 = np.log1p(np.maximum(y_m2 / np.maximum(y_mean ** 2, 1e-300) - 1.0, 0.0))
    # E[TPOT] over requests (what benchmark tools report): plain + E[min(Y, cap - plain)], Y lognormal:
    # E[min(Y, c)] = E[Y] Phi((ln c - mu - s^2) / s) + c (1 - Phi((ln c - mu) / s)), mu = ln E[Y] - s^2 / 2. Above the
    # mean step tau: a request's decode window starts right behind its own prompt, with the prompts that queued
    # meanwhile (the time-average of the steps does not see that start)
    y_cap = np.maximum(tpot_cap - plain, 1e-300)
    y_sd = np.maximum(np.sqrt(y_s2), 1e-12)
    mu = np.log(np.maximum(y_mean, 1e-300)) - y_s2 / 2.0
    log_c = np.log(y_cap)
    y_capped = np.where(y_mean > 0, y_mean * ndtr((log_c - mu - y_s2) / y_sd) + y_cap * ndtr((mu - log_c) / y_sd), 0.0)
    ttft = replace(ttft, mean_step_s=plain + y_capped)
    out_fields: dict[str, np.ndarray] = {f"{w}_p{round(q * 100)}_s": np.full(n, np.nan) for w in ("ttft", "tpot")
                                         for q in PERCENTILES}
    ttft_qs = ttft.quantiles(quantiles) if ttft_quantiles else {}
    for q in quantiles:
        k = round(q * 100)
        ttft_q = ttft_qs[q] if ttft_quantiles else np.full(n, np.nan)
        z = ndtri(q)
        # the decode step at the running batch's q-quantile (M/G/inf: Poisson, normal approximation)
        n_q = np.clip(nbar + z * np.sqrt(np.maximum(nbar, 0.0)), 1.0, b)
        plain_q = step_s(n_q, np.zeros_like(n_q))
        tpot = plain_q + y_mean * np.exp(np.sqrt(y_s2) * z - y_s2 / 2.0)
        tpot = np.maximum(np.minimum(tpot, tpot_cap), plain_q)
        nan = np.where(stable, 1.0, np.inf)
        out_fields[f"ttft_p{k}_s"] = ttft_q * nan
        out_fields[f"tpot_p{k}_s"] = tpot * nan
    # quantiles must not decrease (the normal approximation can dip below the mean batch at q=0.5 by rounding)
    for what in ("ttft", "tpot"):
        prev = None
        for q in quantiles:
            key = f"{what}_p{round(q * 100)}_s"
            if prev is not None:
                out_fields[key] = np.maximum(out_fields[key], out_fields[prev])
            prev = key
    return LatencyPercentiles(**out_fields, running_batch_mean=nbar, utilisation_frac=util, stable=stable), ttft


def max_rate_meeting_slo(step_s: StepFn, *, ttft_target_s: Any, tpot_target_s: Any, percentile: float,
                         input_tokens: Any, output_tokens: Any, max_batch: Any, token_budget: Any,
                         input_tokens_cv: Any = 0.0, output_tokens_cv: Any = 0.0,
                         iterations: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """(highest rate per instance meeting both targets at `percentile`, what binds: "ttft", "tpot",
    "saturation" or "unreachable"). Rate 0 where even a trickle misses a target. Bisection over the rate:
    `iterations` geometric halvings of [1e-6, 1) x the saturation rate, so the rate returned meets the targets and
    lies within a factor 1e6^(1/2^iterations) of the crossing (13: 0.17 %, far inside the model's error; each
    halving is one queueing evaluation of every configuration, most of a plan's time).
    The targets are numbers, or arrays with one per configuration."""
    _pct(percentile)
    try:
        targets = np.asarray(ttft_target_s, dtype=float), np.asarray(tpot_target_s, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError("latency targets must be finite and > 0") from None
    if not all(np.all(np.isfinite(t) & (t > 0)) for t in targets):
        raise InvalidInputError("latency targets must be finite and > 0")
    n = _n_of(input_tokens, output_tokens, max_batch, token_budget, *targets)
    ttft_target = np.broadcast_to(targets[0], (n,)).astype(float)
    tpot_target = np.broadcast_to(targets[1], (n,)).astype(float)
    inp, out = _arr("input_tokens", input_tokens, n), _arr("output_tokens", output_tokens, n)
    b, budget = _arr("max_batch", max_batch, n), _arr("token_budget", token_budget, n)
    if np.any(b < 1):
        raise InvalidInputError(f"max_batch must be >= 1, got {brief(float(np.min(b)))}")
    kw = dict(input_tokens=inp, output_tokens=out, max_batch=b, token_budget=budget, input_tokens_cv=input_tokens_cv,
              output_tokens_cv=output_tokens_cv)
    cv_in = _arr("input_tokens_cv", input_tokens_cv, n, positive=False)
    fixed_parts = _saturation(step_s, inp, out, b, budget, cv_in)  # not rate-dependent: once, not per step
    sat = fixed_parts[0]

    def misses(rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # TTFT meets its target at the percentile iff P(TTFT > target) <= 1 - percentile: one tail evaluation
        lat, ttft = _latency(step_s, rate_per_s=rate, quantiles=(percentile,), ttft_quantiles=False,
                             fixed_parts=fixed_parts, **kw)
        ttft_miss = (ttft.tail(ttft_target) > 1.0 - percentile) | ~lat.stable
        return ttft_miss, lat.tpot_at(percentile) > tpot_target

    lo = sat * 1e-6
    t0, p0 = misses(lo)
    unreachable = t0 | p0
    hi = sat * (1 - 1e-4)
    th, ph = misses(hi)
    top_ok = ~(th | ph)
    lo_r, hi_r = lo.copy(), hi.copy()
    tb, pb = th, ph  # what the upper end misses: the binding target
    for _ in range(iterations):
        mid = np.sqrt(lo_r * hi_r)
        tm, pm = misses(mid)
        bad = tm | pm
        hi_r = np.where(bad, mid, hi_r)
        lo_r = np.where(bad, lo_r, mid)
        tb, pb = np.where(bad, tm, tb), np.where(bad, pm, pb)
    rate = np.where(unreachable, 0.0, np.where(top_ok, hi, lo_r))
    bound = np.where(unreachable, np.where(t0, "ttft", "tpot"),
                     np.where(top_ok, "saturation", np.where(tb & ~pb, "ttft", np.where(pb & ~tb, "tpot",
                                                                                        "ttft+tpot"))))
    return rate, bound.astype(object)


__all__ = ["LatencyPercentiles", "PERCENTILES", "StepFn", "latency_percentiles", "max_rate_meeting_slo",
           "mean_latency_s", "saturation_rate_per_s"]
