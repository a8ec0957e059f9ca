"""Tail latency of one continuous-batching engine instance under Poisson arrivals (vectorised).

The engine (vLLM V1 / SGLang / TensorRT-LLM style) runs steps back to back. Each step carries
one decode token of every running sequence plus waiting prompt tokens up to its token budget
(chunked prefill, Sarathi-Serve [1]); requests are admitted FCFS while fewer than `max_batch`
run (the sequences whose KV cache fits, or the engine's batch limit). `step_s(batch, prefill)`
is the replica evaluator's step time (`evaluator.step_time_fn`).

Analytic model, for n configurations at once (arrays of shape (n,)):
- Running batch and step time: by Little's law the mean running batch is n = rate x O x tau
  with tau = step_s(n, rate x P x tau) (O output tokens, P prompt tokens a request computes):
  a fixed point, found by iteration.
- Saturation: the rate at which the batch reaches max_batch, or the prompt tokens fill the
  token budget, whichever comes first.
- Prompt queue (TTFT): prompts are served by the steps' spare token budget, c = budget - n
  tokens a step of length step_s(n, c): an M/G/1 queue whose service time is a prompt's share
  P x step_s(n, c) / c. Waiting time tail: P(W > t) = rho exp(-t / theta) with theta =
  E[X^2] / (2 E[X] (1 - rho)) (the exponential approximation whose mean is the Pollaczek-
  Khinchine mean [2]).
- Slot queue (TTFT): when all max_batch slots are busy a request waits for one: M/G/c with
  c = max_batch; then every step carries the full batch plus the prompts admitted at the completion
  rate, so the service time is O steps of step_s(b, b P / O) (state-dependent service). P(wait)
  from Erlang C (log space, stable for c in the thousands); the wait beyond it exponential with
  rate c mu - rate, its mean scaled by Allen-Cunneen's (1 + cs^2) / 2 [3] (cs = output-length CV).
- TTFT at quantile q = slot wait(q) + prompt wait(q) + the residual of the running step (the engine
  admits at step boundaries) + the prompt's own prefill steps (its length at quantile q when lengths
  vary); the step that finishes the prompt emits the first token. Adding the quantiles is conservative.
- TPOT at quantile q: the decode step time with the running batch at its quantile (the batch of
  an M/G/inf system is Poisson with mean n [4]; normal approximation, capped at max_batch), plus
  prefill interference: the prompts met during the request's decode each lengthen their steps by
  their chunks' extra time E, spread over the O tokens. Their count K_q is the Poisson quantile at
  rate x (O plain steps + K_q E) (the lifetime they lengthen; a few fixed-point passes; exact
  quantile below a mean of 30), dispersion raised by 1 / sqrt(1 - rho_prompt) for clustering.

`planner.perf.simulation` simulates exactly this process step by step; tests/perf/test_queueing.py
compares the two and docs/queueing.md tabulates the errors.

[1] A. Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve", OSDI 2024.
[2] L. Kleinrock, "Queueing Systems, Volume 1: Theory", Wiley 1975, ch. 5 (M/G/1, Pollaczek-Khinchine).
[3] A. O. Allen, "Probability, Statistics, and Queueing Theory", Academic Press 1990 (Allen-Cunneen GI/G/c).
[4] Kleinrock, ch. 2 (M/G/inf: the number in system is Poisson).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaincc, gammaln, ndtri

from planner.errors import InvalidInputError, brief

StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PERCENTILES = (0.5, 0.9, 0.95, 0.99)
_ITER = 16  # fixed-point iterations of the running batch (converges to < 0.1 % well before)


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


def _steady(step_s: StepFn, rate, inp, out, max_batch, budget) -> tuple[np.ndarray, np.ndarray]:
    """(mean running batch, mean step seconds) at `rate`: n = rate O tau, tau = step_s(n, rate P tau); n capped."""
    tau = step_s(np.ones_like(rate), np.zeros_like(rate))
    n = np.minimum(rate * out * tau, max_batch)
    for _ in range(_ITER):
        tau = chunked_step_s(step_s, np.maximum(n, 1.0), rate * inp * tau, inp, budget)
        n = np.minimum(rate * out * tau, max_batch)
    return n, tau


def full_batch_step_s(step_s: StepFn, b: np.ndarray, inp: np.ndarray, out: np.ndarray,
                      budget: np.ndarray) -> np.ndarray:
    """Mean step time of a full batch: it retires b / O requests a step and admits as many prompts (b P / O prompt
    tokens a step, arriving whole: `chunked_step_s`)."""
    return chunked_step_s(step_s, b, b * inp / out, inp, budget)


def chunked_step_s(step_s: StepFn, batch: np.ndarray, prompt_tokens_per_step: np.ndarray, inp: np.ndarray,
                   budget: np.ndarray) -> np.ndarray:
    """Mean step time when prompts arrive whole: a step admits a waiting prompt in one chunk of
    min(P, budget - batch) tokens (vLLM/SGLang schedule as much of it as the budget allows), so a fraction
    f = prompt tokens per step / chunk of the steps carries a chunk and the rest decode only:
    (1 - f) step_s(batch, 0) + f step_s(batch, chunk). Spreading the tokens evenly over every step instead
    would hide most prefill under the decode's memory time and overstate the rate."""
    chunk = np.maximum(np.minimum(inp, budget - batch), 1.0)
    f = np.clip(prompt_tokens_per_step / chunk, 0.0, 1.0)
    return (1.0 - f) * step_s(batch, np.zeros_like(batch)) + f * step_s(batch, chunk)


def saturation_rate_per_s(step_s: StepFn, *, input_tokens: Any, output_tokens: Any, max_batch: Any,
                          token_budget: Any) -> np.ndarray:
    """Highest sustainable request rate per instance: the full batch's completions, or the prompt tokens the
    spare budget admits, whichever is lower."""
    n = _n_of(input_tokens, output_tokens, max_batch, token_budget)
    inp, out = _arr("input_tokens", input_tokens, n), _arr("output_tokens", output_tokens, n)
    b, budget = _arr("max_batch", max_batch, n), _arr("token_budget", token_budget, n)
    if np.any(b < 1):
        raise InvalidInputError(f"max_batch must be >= 1, got {brief(float(np.min(b)))}")
    spare = np.maximum(budget - b, 1.0)
    # full batch: prompt tokens per step = b P / O (one request finishes per O / b steps)
    tau_full = full_batch_step_s(step_s, b, inp, out, budget)
    by_batch = b / (out * tau_full)
    by_budget = spare / (inp * step_s(b, spare))
    return np.minimum(by_batch, by_budget)


def _poisson_quantile(q: float, z: float, m: np.ndarray) -> np.ndarray:
    """Poisson(m) quantile, the smallest k with P(K <= k) >= q: exact by summing the probabilities for m < 30
    (vectorised over k = 0..79), the Cornish-Fisher expansion m + z sqrt(m) + (z^2 - 1) / 6 beyond (within one
    count there)."""
    m = np.maximum(m, 0.0)
    small = m < 30.0
    ms = np.where(small, m, 0.0)
    pmf = np.exp(-ms)
    cdf = pmf.copy()
    k = np.zeros_like(ms)
    for j in range(1, 80):
        k += cdf < q
        pmf = pmf * ms / j
        cdf = cdf + pmf
    cf = np.maximum(np.ceil(m + z * np.sqrt(m) + (z * z - 1.0) / 6.0 - 0.5), 0.0)
    return np.where(small, k, cf)


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


def latency_percentiles(step_s: StepFn, *, rate_per_s: Any, input_tokens: Any, output_tokens: Any, max_batch: Any,
                        token_budget: Any, input_tokens_cv: Any = 0.0, output_tokens_cv: Any = 0.0
                        ) -> LatencyPercentiles:
    """TTFT and TPOT quantiles of each configuration at `rate_per_s` requests/s (see the module docstring)."""
    return _latency(step_s, rate_per_s=rate_per_s, input_tokens=input_tokens, output_tokens=output_tokens,
                    max_batch=max_batch, token_budget=token_budget, input_tokens_cv=input_tokens_cv,
                    output_tokens_cv=output_tokens_cv, quantiles=PERCENTILES)


def _latency(step_s: StepFn, *, rate_per_s: Any, input_tokens: Any, output_tokens: Any, max_batch: Any,
             token_budget: Any, input_tokens_cv: Any, output_tokens_cv: Any,
             quantiles: tuple[float, ...]) -> LatencyPercentiles:
    n = _n_of(rate_per_s, input_tokens, output_tokens, max_batch, token_budget)
    rate = _arr("rate_per_s", rate_per_s, n)
    inp, out = _arr("input_tokens", input_tokens, n), _arr("output_tokens", output_tokens, n)
    b, budget = _arr("max_batch", max_batch, n), _arr("token_budget", token_budget, n)
    if np.any(b < 1):
        raise InvalidInputError(f"max_batch must be >= 1, got {brief(float(np.min(b)))}")
    cv_in = _arr("input_tokens_cv", input_tokens_cv, n, positive=False)
    cv_out = _arr("output_tokens_cv", output_tokens_cv, n, positive=False)
    sat = saturation_rate_per_s(step_s, input_tokens=inp, output_tokens=out, max_batch=b, token_budget=budget)
    util = rate / sat
    stable = util < 1.0
    r = np.minimum(rate, sat * (1 - 1e-6))
    nbar, tau = _steady(step_s, r, inp, out, b, budget)
    # prompt queue (M/G/1 on the spare token budget)
    spare = np.maximum(budget - nbar, 1.0)
    full_step = step_s(np.maximum(nbar, 1.0), spare)
    x_mean = inp * full_step / spare
    x2 = x_mean ** 2 * (1.0 + cv_in ** 2)
    rho_p = np.minimum(r * x_mean, 1 - 1e-9)
    theta_p = x2 / (2.0 * x_mean * (1.0 - rho_p))
    # slot queue (M/G/c): requests wait for a slot only while all max_batch are taken; then every step carries
    # the full batch and the prompts admitted at the completion rate (b P / O tokens a step, as at saturation),
    # so the service time is O such steps (state-dependent service). P(wait) from Erlang C; the wait beyond is
    # exponential with the Allen-Cunneen factor (1 + cs^2) / 2 on its mean [3] (cs = the output-length CV)
    tau_full = full_batch_step_s(step_s, b, inp, out, budget)
    service = out * tau_full
    a = np.minimum(r * service, b * (1 - 1e-9))
    log_c = _log_erlang_c(b, a)
    slot_rate = np.maximum(b / service - r, 1e-12) / ((1.0 + cv_out ** 2) / 2.0 + 1e-12)

    def wait(q: float) -> np.ndarray:
        w_p = np.maximum(0.0, np.log(rho_p / (1.0 - q)) * theta_p)
        w_s = np.maximum(0.0, (log_c - np.log(1.0 - q)) / slot_rate)
        return w_p + w_s

    def own_prefill(q: float) -> np.ndarray:
        z = ndtri(q)
        sigma = np.sqrt(np.log1p(cv_in ** 2))
        length = inp * np.exp(sigma * z - sigma ** 2 / 2.0)  # lognormal quantile with the mean inp
        chunk = np.maximum(budget - nbar, 1.0)
        steps = np.ceil(length / chunk)
        return steps * step_s(nbar, np.minimum(length, chunk))

    chunk0 = np.maximum(budget - nbar, 1.0)
    n0 = np.maximum(nbar, 1.0)
    plain = step_s(n0, np.zeros_like(n0))
    extra = np.ceil(inp / chunk0) * np.maximum(step_s(n0, np.minimum(inp, chunk0)) - plain, 0.0)
    out_fields: dict[str, np.ndarray] = {f"{w}_p{round(q * 100)}_s": np.full(n, np.nan) for w in ("ttft", "tpot")
                                         for q in PERCENTILES}
    for q in quantiles:
        k = round(q * 100)
        # the arrival first waits for the running step to end (the engine admits at step boundaries): with the
        # engine busy (P = 1 - exp(-nbar)) the residual is ~ uniform on (0, tau); the prompt's last chunk step
        # emits the first token
        busy = -np.expm1(-nbar)
        residual = tau * np.clip(1.0 - (1.0 - q) / np.maximum(busy, 1e-12), 0.0, 1.0)
        ttft = wait(q) + own_prefill(q) + residual
        z = ndtri(q)
        n_q = np.clip(nbar + z * np.sqrt(np.maximum(nbar, 0.0)), 1.0, b)
        # prefill interference: the prompts that arrive during a request's decode (Poisson, mean m = rate x
        # lifetime) each add their chunks' extra step time, spread over its O tokens (compound Poisson quantile)
        plain_q = step_s(n_q, np.zeros_like(n_q))
        # the request's decode lifetime grows with the prompts it meets (O plain steps + K extra chunks), and the
        # prompts it meets grow with its lifetime: K_q = Poisson quantile of rate x (O plain + K_q extra), a few
        # fixed-point passes from the mean lifetime. Prompts cluster in the prompt queue's busy periods:
        # dispersion grows as 1 / (1 - rho_p)
        m = r * out * tau
        for _ in range(4):
            k_q = np.maximum(_poisson_quantile(q, z, m), m + z * np.sqrt(m / (1.0 - rho_p)))
            m = np.maximum(r * (out * plain + k_q * extra), r * out * tau)
        k_q = np.maximum(_poisson_quantile(q, z, m), m + z * np.sqrt(m / (1.0 - rho_p)))
        tpot = plain_q + (k_q * extra + max(z, 0.0) * np.sqrt(k_q) * extra * cv_in) / out
        tpot = np.maximum(tpot, plain_q)
        nan = np.where(stable, 1.0, np.inf)
        out_fields[f"ttft_p{k}_s"] = ttft * nan
        out_fields[f"tpot_p{k}_s"] = tpot * nan
    # quantiles must not decrease (the normal approximation can dip below the mean batch at q=0.5 by rounding)
    for what in ("ttft", "tpot"):
        prev = None
        for q in quantiles:
            key = f"{what}_p{round(q * 100)}_s"
            if prev is not None:
                out_fields[key] = np.maximum(out_fields[key], out_fields[prev])
            prev = key
    return LatencyPercentiles(**out_fields, running_batch_mean=nbar, utilisation_frac=util, stable=stable)


def max_rate_meeting_slo(step_s: StepFn, *, ttft_target_s: float, tpot_target_s: float, percentile: float,
                         input_tokens: Any, output_tokens: Any, max_batch: Any, token_budget: Any,
                         input_tokens_cv: Any = 0.0, output_tokens_cv: Any = 0.0,
                         iterations: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """(highest rate per instance meeting both targets at `percentile`, what binds: "ttft", "tpot",
    "saturation" or "unreachable"). Rate 0 where even a trickle misses a target. Bisection over the rate."""
    _pct(percentile)
    if not (np.isfinite(ttft_target_s) and ttft_target_s > 0 and np.isfinite(tpot_target_s) and tpot_target_s > 0):
        raise InvalidInputError("latency targets must be finite and > 0")
    n = _n_of(input_tokens, output_tokens, max_batch, token_budget)
    kw = dict(input_tokens=np.broadcast_to(np.asarray(input_tokens, float), (n,)),
              output_tokens=np.broadcast_to(np.asarray(output_tokens, float), (n,)),
              max_batch=np.broadcast_to(np.asarray(max_batch, float), (n,)),
              token_budget=np.broadcast_to(np.asarray(token_budget, float), (n,)),
              input_tokens_cv=input_tokens_cv, output_tokens_cv=output_tokens_cv)
    sat = saturation_rate_per_s(step_s, input_tokens=kw["input_tokens"], output_tokens=kw["output_tokens"],
                                max_batch=kw["max_batch"], token_budget=kw["token_budget"])

    def misses(rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lat = _latency(step_s, rate_per_s=rate, quantiles=(percentile,), **kw)
        return lat.ttft_at(percentile) > ttft_target_s, lat.tpot_at(percentile) > tpot_target_s

    lo = sat * 1e-6
    t0, p0 = misses(lo)
    unreachable = t0 | p0
    hi = sat * (1 - 1e-4)
    th, ph = misses(hi)
    top_ok = ~(th | ph)
    lo_r, hi_r = lo.copy(), hi.copy()
    for _ in range(iterations):
        mid = np.sqrt(lo_r * hi_r)
        tm, pm = misses(mid)
        bad = tm | pm
        hi_r = np.where(bad, mid, hi_r)
        lo_r = np.where(bad, lo_r, mid)
    rate = np.where(unreachable, 0.0, np.where(top_ok, hi, lo_r))
    tb, pb = misses(np.maximum(hi_r, lo))
    bound = np.where(unreachable, np.where(t0, "ttft", "tpot"),
                     np.where(top_ok, "saturation", np.where(tb & ~pb, "ttft", np.where(pb & ~tb, "tpot",
                                                                                        "ttft+tpot"))))
    return rate, bound.astype(object)


__all__ = ["LatencyPercentiles", "PERCENTILES", "StepFn", "latency_percentiles", "max_rate_meeting_slo",
           "saturation_rate_per_s"]
