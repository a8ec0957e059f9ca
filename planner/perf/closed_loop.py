"""Mean TTFT and TPOT of closed-loop benchmark runs and static batches: the first wave, later waves, wave trains.

A closed-loop client (`vllm bench serve --max-concurrency c`, SGLang's bench_serving, InferenceX's
sa-bench, AIPerf, LLMPerf) keeps `c` requests open and sends the next as soon as one finishes, until
it has sent `N` requests. Its first `c` requests start together: a synchronised wave whose prompts
queue behind each other in the engine's per-step token budget (`serving.wave_ttft_s`). What follows
depends on the lengths:

- Fixed lengths: the wave's requests got their first token in `S` = ceil(c x I / budget) groups, one
  per prefill step, and, all decoding at the same step rate, they finish in the same groups. A group's
  replacements arrive together and fill one budget-sized step again, so every later wave is a train of
  `S` group steps: each request waits for its own group's step (burst / S), not for the whole burst
  (`later_wave_ttft_s`), and its output tokens share the cycle with the other S - 1 groups' prefill
  steps (`later_wave_tpot_s`). With S = 1 (the whole wave fits one step) every wave is the first one.
- Variable lengths: requests finish at scattered times after the first wave, and the loop settles into
  the steady state of continuous batching (`serving.queued_ttft_s`).

The run's mean mixes the two in proportion (`first_wave_frac`: c / N of the requests are in the first
wave; N unknown: 1 for fixed lengths, the synchronised-wave model throughout, 0 for variable lengths,
the steady state throughout): `closed_loop_mean_s`.

Engines can also hold a request that arrives while a batch runs before admitting it (`admission_wait_s`; the
first wave arrives at an idle engine and does not wait):

- SGLang `--scheduler-recv-interval k`: with a batch running, the scheduler reads its input queue only every k
  decode steps (a prefill step reads it at once) [1]; a request arriving at a random time waits k / 2 steps.
- TensorRT-LLM `batch_wait_timeout_iters` T with `batch_wait_max_tokens_ratio` x max_num_tokens = K [2]: context
  requests are held until K prompt tokens wait or T iterations pass. At an arrival rate lambda a batch collects
  for tau = min(T steps, (ceil(K / I) - 1) / lambda); its first request waits tau, the lambda x tau after it
  tau / 2 on average: mean tau (1 + lambda tau / 2) / (1 + lambda tau).

A static batch larger than the KV cache holds (`capacity` sequences) runs as a train of waves of
`capacity`: the j-th request (0-based) waits floor(j / capacity) whole waves (`wave_train_waits`).

Pure functions on numpy arrays (one value per row or configuration); no efficiency is fitted here.

[1] SGLang, python/sglang/srt/managers/scheduler_recv_skipper.py (SchedulerRecvSkipper: a decode step weighs 1,
    any other forward mode the default weight 1000, so a prefill step triggers the next read).
[2] TensorRT-LLM, tensorrt_llm/llmapi/llm_args.py (batch_wait_timeout_iters: "Iterations to wait before
    scheduling context even if token budget not reached"; batch_wait_max_tokens_ratio: "Threshold ratio of
    max_num_tokens for token accumulation before scheduling context").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.errors import InvalidInputError
from planner.perf.serving import tpot_through_prefill_steps


def first_wave_frac(*, concurrency: Any, num_requests: Any, fixed_lengths: Any) -> Any:
    """Share of a closed-loop run's requests that start in its first synchronised wave: c / N, at most 1.

    `num_requests` N may be nan (not stated): then 1 for fixed lengths (every wave synchronised, as with
    N = c) and 0 for variable lengths (a long run, the steady state).
    """
    c = np.asarray(concurrency, dtype=float)
    n = np.asarray(num_requests, dtype=float)
    if np.any(c <= 0) or np.any(n <= 0):
        raise InvalidInputError("concurrency and num_requests must be > 0")
    known = np.isfinite(n)
    frac = np.minimum(c / np.where(known, n, 1.0), 1.0)
    return np.where(known, frac, np.where(np.asarray(fixed_lengths, dtype=bool), 1.0, 0.0))


def later_wave_ttft_s(*, burst_prefill_s: Any, burst_steps: Any) -> Any:
    """TTFT of a request in a later wave of a fixed-length closed loop: its group's one prefill step.

    The first wave's burst took `burst_steps` budget-sized steps of burst_prefill_s / steps each; its
    requests come back in as many groups, and each group's prompts fill one such step.
    """
    steps = np.maximum(np.asarray(burst_steps, dtype=float), 1.0)
    return np.asarray(burst_prefill_s, dtype=float) / steps


def later_wave_tpot_s(*, decode_step_s: Any, burst_prefill_s: Any, burst_steps: Any, output_tokens: Any) -> Any:
    """Mean time per output token in a later wave of a fixed-length closed loop.

    Of a request's output - 1 decode steps, the other groups' prefill steps (steps - 1 of them, at most
    all) are as long as a prefill step (burst / steps); the rest are plain decode steps.
    """
    steps = np.maximum(np.asarray(burst_steps, dtype=float), 1.0)
    return tpot_through_prefill_steps(decode_step_s=decode_step_s, prefill_step_s=burst_prefill_s / steps,
                                      prefill_steps=steps - 1.0, output_tokens=output_tokens)


def closed_loop_mean_s(*, first_wave_s: Any, later_s: Any, first_frac: Any) -> Any:
    """Run mean of a latency: the first wave's share at its value, the rest at the later (or steady) value."""
    f = np.clip(np.asarray(first_frac, dtype=float), 0.0, 1.0)
    return f * first_wave_s + (1.0 - f) * later_s


def wave_train_waits(*, batch: Any, capacity: Any) -> Any:
    """Mean number of whole waves a request of a static batch waits when only `capacity` run at once.

    With batch = q x capacity + r, the requests of wave w (0-based) wait w waves:
    (capacity x q (q - 1) / 2 + r x q) / batch on average; 0 when the batch fits.
    """
    b = np.asarray(batch, dtype=float)
    k = np.maximum(np.asarray(capacity, dtype=float), 1.0)
    if np.any(b <= 0):
        raise InvalidInputError("batch must be > 0")
    q = np.floor(b / k)
    r = b - q * k
    return (k * q * (q - 1.0) / 2.0 + r * q) / b


def admission_wait_s(*, step_s: Any, input_tokens: Any, arrival_rate_per_s: Any, recv_interval: Any = 0.0,
                     wait_iters: Any = 0.0, wait_tokens: Any = 0.0) -> Any:
    """Mean time a request arriving while a batch runs is held before the engine admits it (module docstring).

    `step_s` is the running batch's step; `recv_interval` (SGLang, steps; <= 1: every step) waits
    recv_interval / 2 steps; `wait_iters` / `wait_tokens` (TensorRT-LLM; 0: off) hold context requests until
    wait_tokens prompt tokens wait or wait_iters steps pass, with requests arriving at `arrival_rate_per_s`.
    """
    step = np.asarray(step_s, dtype=float)
    k = np.asarray(recv_interval, dtype=float)
    recv = np.where(k > 1.0, k / 2.0 * step, 0.0)
    iters = np.asarray(wait_iters, dtype=float)
    tokens = np.asarray(wait_tokens, dtype=float)
    rate = np.maximum(np.asarray(arrival_rate_per_s, dtype=float), 1e-12)
    prompts = np.maximum(np.ceil(tokens / np.asarray(input_tokens, dtype=float)), 1.0)
    tau = np.where(iters > 0, iters * step, np.inf)
    tau = np.where(tokens > 0, np.minimum(tau, (prompts - 1.0) / rate), tau)
    tau = np.where(np.isfinite(tau), tau, 0.0)
    held = tau * (1.0 + rate * tau / 2.0) / (1.0 + rate * tau)
    return recv + held
