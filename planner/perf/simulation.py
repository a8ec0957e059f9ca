"""Discrete-event simulation of one continuous-batching engine instance, step by step.

The process the analytic model in `planner.perf.queueing` approximates, simulated exactly:
Poisson arrivals; FCFS admission while fewer than `max_batch` sequences hold a slot; every step
carries one decode token of each running sequence whose prompt is done plus waiting prompt
tokens (of admitted sequences, in admission order) up to `token_budget` minus the decodes
(chunked prefill); a sequence's first token leaves at the end of the step that finishes its
prompt, the others one per step; the step lasts `step_s(decodes, prompt tokens)`.

The engine's clock is the step, so the loop advances step by step (not event by event with a
general-purpose library such as simpy: every state change happens at a step boundary, and a
plain loop over steps is both exact for this process and several times faster). It is bounded:
at most `n_requests` arrivals (default 20,000), the first `warmup_frac` of them discarded, and at
most `max_steps` steps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from planner.errors import InvalidInputError, require_positive, require_positive_int

MAX_REQUESTS = 200_000
MAX_SPAN_S = 1e10  # the clock is one float64: its spacing at 1e10 s is 1.9e-6 s, 0.1 % of a 2 ms step; over longer
# spans the step times round away (a near-zero rate printed TPOT 0 ms)


@dataclass(frozen=True)
class SimulationResult:
    """Per-request samples (after warm-up) and their summary."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    utilisation_frac: float  # share of simulated time with at least one sequence in flight
    running_batch_mean: float
    n_requests: int
    simulated_s: float
    saturated: bool  # the queue kept growing: requests left waiting at the end exceed a tenth of those served
    # admission - arrival of the same requests: the wait for a KV slot plus the rest of the step running at arrival
    # (the engine admits at step boundaries)
    slot_wait_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    mean_step_s: float = float("nan")  # busy time over steps run: the mean step (what the analytic model's tau is)

    def percentile(self, what: str, q: float) -> float:
        values = {"ttft": self.ttft_s, "tpot": self.tpot_s}[what]
        return float(np.quantile(values, q)) if values.size else float("nan")

    def summary(self) -> dict[str, float]:
        out = {f"{w}_p{round(q * 100)}_s": self.percentile(w, q) for w in ("ttft", "tpot")
               for q in (0.5, 0.9, 0.95, 0.99)}
        out.update(utilisation_frac=self.utilisation_frac, running_batch_mean=self.running_batch_mean,
                   n_requests=float(self.n_requests), simulated_s=self.simulated_s, saturated=float(self.saturated))
        return out

    def histogram(self, what: str, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """(counts, bin edges) of the TTFT or TPOT samples."""
        values = {"ttft": self.ttft_s, "tpot": self.tpot_s}[what]
        return np.histogram(values, bins=bins)


def _lengths(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    if cv <= 0:
        return np.full(n, max(1, round(mean)), dtype=int)
    sigma = np.sqrt(np.log1p(cv * cv))
    values = rng.lognormal(np.log(mean) - sigma * sigma / 2.0, sigma, n)
    return np.maximum(1, np.round(values)).astype(int)


def simulate(step_s: Callable[[float, float], float], *, rate_per_s: float, input_tokens: float,
             output_tokens: float, max_batch: int, token_budget: int, n_requests: int = 20_000, seed: int = 0,
             input_tokens_cv: float = 0.0, output_tokens_cv: float = 0.0, warmup_frac: float = 0.1,
             max_steps: int = 5_000_000) -> SimulationResult:
    """Simulate `n_requests` Poisson arrivals at `rate_per_s` (see the module docstring).

    `step_s(decodes, prompt_tokens)` takes and returns scalars here (wrap a vectorised step function).
    """
    require_positive(rate_per_s=rate_per_s, input_tokens=input_tokens, output_tokens=output_tokens)
    require_positive_int(max_batch=max_batch, token_budget=token_budget, n_requests=n_requests)
    if n_requests > MAX_REQUESTS:
        raise InvalidInputError(f"n_requests must be <= {MAX_REQUESTS:,}, got {n_requests:,}")
    if n_requests / rate_per_s > MAX_SPAN_S:
        raise InvalidInputError(f"rate_per_s = {rate_per_s:.3g}: {n_requests:,} arrivals would span about "
                                f"{n_requests / rate_per_s:.2g} s, beyond the {MAX_SPAN_S:.0e} s over which the "
                                f"simulation's clock resolves step times; simulate a higher rate")
    if token_budget <= max_batch:
        token_budget = max_batch + 1  # at least one prompt token per step beside a full batch of decodes
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, n_requests))
    prompt = _lengths(rng, input_tokens, input_tokens_cv, n_requests)
    outputs = _lengths(rng, output_tokens, output_tokens_cv, n_requests)
    first = np.full(n_requests, np.nan)
    done = np.full(n_requests, np.nan)
    admitted = np.full(n_requests, np.nan)
    waiting: deque[int] = deque()  # arrived, no slot yet
    prefilling: deque[int] = deque()  # slot held, prompt not finished (FCFS)
    left = {}  # prompt tokens still to process
    # a decoding sequence emits one token a step, so the step that emits its last token is known when its prompt
    # finishes: finish_at[step] lists those sequences (no per-step countdown over the whole batch)
    finish_at: dict[int, list[int]] = {}
    step_cache: dict[tuple[int, int], float] = {}
    n_dec = 0
    t, nxt, steps, busy, batch_sum = 0.0, 0, 0, 0.0, 0.0
    while steps < max_steps and (nxt < n_requests or waiting or prefilling or n_dec):
        while nxt < n_requests and arrivals[nxt] <= t:
            waiting.append(nxt)
            nxt += 1
        while waiting and len(prefilling) + n_dec < max_batch:
            i = waiting.popleft()
            prefilling.append(i)
            admitted[i] = t
            left[i] = int(prompt[i])
        if not prefilling and not n_dec:
            t = arrivals[nxt]  # idle until the next arrival
            continue
        room = token_budget - n_dec
        chunk, n_finished = 0, 0
        for i in prefilling:  # FCFS: only the last prompt taken can be left partial
            if room <= 0:
                break
            take = min(room, left[i])
            left[i] -= take
            room -= take
            chunk += take
            if left[i] == 0:
                n_finished += 1
        key = (n_dec, chunk)
        dt = step_cache.get(key)
        if dt is None:
            if len(step_cache) > 200_000:
                step_cache.clear()
            dt = step_cache[key] = float(step_s(float(n_dec), float(chunk)))
        t += dt
        steps += 1
        busy += dt
        batch_sum += dt * (n_dec + len(prefilling))
        for i in finish_at.pop(steps, ()):
            done[i] = t
            n_dec -= 1
        for _ in range(n_finished):
            i = prefilling.popleft()
            del left[i]
            first[i] = t
            if outputs[i] > 1:
                finish_at.setdefault(steps + int(outputs[i]) - 1, []).append(i)
                n_dec += 1
            else:
                done[i] = t
    start = int(warmup_frac * n_requests)
    keep = np.arange(n_requests) >= start
    served = keep & np.isfinite(done)
    ttft = (first - arrivals)[served]
    multi = served & (outputs > 1)
    tpot = ((done - first) / np.maximum(outputs - 1, 1))[multi]
    unfinished = int(np.sum(~np.isfinite(done)))
    return SimulationResult(ttft_s=ttft, tpot_s=tpot, utilisation_frac=busy / t if t > 0 else 0.0,
                            running_batch_mean=batch_sum / busy if busy > 0 else 0.0, n_requests=int(served.sum()),
                            simulated_s=t, saturated=unfinished > 0.1 * max(int(served.sum()), 1),
                            slot_wait_s=(admitted - arrivals)[served], mean_step_s=busy / steps if steps else 0.0)


def scalar_step(step_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], index: int = 0
                ) -> Callable[[float, float], float]:
    """A scalar step function from one configuration of a vectorised one (`evaluator.step_time_fn`)."""
    cache: dict[tuple[float, float], float] = {}

    def one(decodes: float, prompt_tokens: float) -> float:
        key = (decodes, prompt_tokens)
        if key not in cache:
            if len(cache) > 200_000:
                cache.clear()
            value = step_fn(np.array([max(decodes, 0.0)]), np.array([prompt_tokens]))
            cache[key] = float(np.asarray(value)[index])
        return cache[key]

    return one


__all__ = ["SimulationResult", "scalar_step", "simulate"]
