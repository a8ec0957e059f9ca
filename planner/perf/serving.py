"""Serving models on top of the step-time roofline: steady state, queueing, arrivals and synchronised waves.

`point_terms` / `point_from_terms` / `operating_point` give the steady state of continuous
batching with chunked prefill (every cycle retires concurrency / output requests and admits
as many). `queued_ttft_s` adds the wait of a closed-loop client that offers more requests
than the KV cache can run (Little's law [1]); `arrival_concurrency` solves the open-loop
fixed point c = rate x latency(c). `wave_ttft_s` / `wave_tpot_s` describe the other regime
that benchmarks produce: a closed-loop client with fixed prompt and output lengths starts its
requests together, so they also finish together and the next ones arrive as a burst. The
burst's prompts queue behind each other in the engine's per-step token budget, which is
what makes TTFT grow with concurrency far beyond one prompt's prefill [2].

[1] J. D. C. Little, "A Proof for the Queuing Formula L = lambda W", Operations Research 9(3), 1961.
[2] A. Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve", OSDI 2024,
    arXiv:2403.02310 (chunked prefill: a per-iteration token budget shared by prefill chunks and decodes).
[3] CUDA graphs replay a captured sequence of kernels with one launch; without one, a PyTorch engine dispatches each
    op from Python (docs/performance.md, "Eager context steps").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.errors import require_positive
from planner.model.architecture import Architecture
from planner.model.quantization import WeightFormat
from planner.perf.performance import (
    Efficiency,
    Hardware,
    PrefillTerms,
    StepTerms,
    StepTime,
    _check_parallel,
    _hw_kwargs,
    _require_positive_array,
    decode_terms,
    prefill_terms,
)

# Which context (prefill) steps an engine runs without a CUDA graph, launching every kernel from the host [3]:
#   SGLang captures piecewise CUDA graphs for prefill/extend steps of up to --piecewise-cuda-graph-max-tokens (8,192;
#     2,048 for MLA models) by default since PR #16331 (sgl-project/sglang, opened 2026-01-03, merged 2026-01; 0.5.7
#     and earlier run them eagerly unless --enable-piecewise-cuda-graph), and turns it off under DP attention,
#     pipeline parallelism and on ROCm (docs advanced_features/piecewise_cuda_graph.md); a larger step runs eagerly.
#   TensorRT-LLM's PyTorch backend (the default from 1.0, 2025-09) graphs generation-only steps (cuda_graph_config);
#     a step with a context request runs eagerly unless torch_compile_config.enable_piecewise_cuda_graph is set (off
#     by default; InferenceX's dsr1 B200 script sets it from 64 clients). Builds before 1.0 ran TensorRT engines,
#     whose kernels a C++ runtime enqueues: no Python launch cost is modelled for them.
#   vLLM V1 and llama.cpp: not modelled (vLLM runs torch.compile'd code with piecewise graphs, llama.cpp launches
#     from C++).
SGLANG_PREFILL_GRAPH_FROM = "2026-02"  # first SGLang builds after PR #16331 (0.5.8 on)
SGLANG_PREFILL_GRAPH_MAX_TOKENS = 8192.0  # --piecewise-cuda-graph-max-tokens default
SGLANG_PREFILL_GRAPH_MAX_TOKENS_MLA = 2048.0
TRTLLM_PYTORCH_FROM = "2025-09"  # TensorRT-LLM 1.0: the PyTorch backend becomes the default


def prefill_graph_max_tokens(engine_id: str, *, engine_date: str | None = None, stated: bool | None = None,
                             amd: bool = False, attn_dp: bool = False, pp: int = 1, mla: bool = False) -> float:
    """The most tokens a context step may carry and still replay a CUDA graph (inf: no context step pays a host
    launch cost; 0: every one does), for `engine_id` built in `engine_date` (YYYY-MM; None: the current release).

    `stated`: what the source says of the prefill graph (a measured row's `prefill_cuda_graph`; None: the engine's
    default for its version, above)."""
    if stated is not None:
        return math.inf if stated else 0.0
    if engine_id == "sglang":
        if (engine_date is not None and engine_date < SGLANG_PREFILL_GRAPH_FROM) or amd or attn_dp or pp > 1:
            return 0.0
        return SGLANG_PREFILL_GRAPH_MAX_TOKENS_MLA if mla else SGLANG_PREFILL_GRAPH_MAX_TOKENS
    if engine_id == "trtllm":
        return math.inf if engine_date is not None and engine_date < TRTLLM_PYTORCH_FROM else 0.0
    return math.inf


def chunk_step_tokens(concurrency: Any, input_tokens: Any, output_tokens: Any, budget_tokens: Any = None) -> Any:
    """Tokens of a steady-state step that carries a prompt chunk (`point_terms`): the `concurrency` decode tokens plus
    the larger of the prompt tokens a cycle admits (concurrency x input / output) and one chunk (the prompt, at most
    the per-step budget)."""
    c = np.asarray(concurrency, dtype=float)
    budget = np.inf if budget_tokens is None else np.asarray(budget_tokens, dtype=float)
    return c + np.maximum(c * input_tokens / output_tokens, np.minimum(input_tokens, budget))


def eager_launches(launches: Any, step_tokens: Any, graph_max_tokens: Any) -> Any:
    """Kernels a context step of `step_tokens` tokens launches from the host: all its `launches`
    (`PrefillTerms.launches`, `StepTerms.launches`) where the step is larger than the engine's largest prefill graph
    (`prefill_graph_max_tokens`), else none (the graph replays them with one launch)."""
    return np.where(np.asarray(step_tokens, dtype=float) > np.asarray(graph_max_tokens, dtype=float),
                    np.asarray(launches, dtype=float), 0.0)


def decode_step(arch: Architecture, fmt: WeightFormat, *, batch: Any, context_tokens: Any,
                kv_bytes_per_elem: float, tp: int, pp: int, hw: Hardware, eff: Efficiency,
                prefill_tokens: Any = 0.0, prefill_context_tokens: Any = 0.0,
                expert_parallel: bool = False) -> StepTime:
    """Time for every one of `batch` sequences to advance one token (one decode cycle).

    `prefill_tokens` are prompt tokens processed in the same steps (chunked prefill);
    they add FLOPs and touch experts but read no KV cache beyond their own prompt.
    """
    _check_parallel(tp, pp)
    _require_positive_array("batch", batch)
    terms = decode_terms(arch, fmt, batch=batch, context_tokens=context_tokens, kv_bytes_per_elem=kv_bytes_per_elem,
                         tp=tp, pp=pp, prefill_tokens=prefill_tokens, prefill_context_tokens=prefill_context_tokens,
                         expert_parallel=expert_parallel, **_hw_kwargs(hw))
    cycle, memory, compute, comm, overhead = terms.parts(eff)
    return StepTime(total_s=cycle, memory_s=memory, compute_s=compute, comm_s=comm, overhead_s=overhead)


def prefill_time_s(arch: Architecture, fmt: WeightFormat, *, prompt_tokens: Any, tp: int, pp: int, hw: Hardware,
                   eff: Efficiency, expert_parallel: bool = False) -> Any:
    """Latency to process one prompt of `prompt_tokens` tokens (all pipeline stages in turn).

    FLOPs = 2 x active params x N + attention, where token i attends to i earlier tokens
    (N^2/2 context-token pairs under causal masking). Compute-bound for long prompts;
    short prompts hit the weight-read floor.
    """
    _check_parallel(tp, pp)
    _require_positive_array("prompt_tokens", prompt_tokens)
    terms = prefill_terms(arch, fmt, prompt_tokens=prompt_tokens, tp=tp, pp=pp, expert_parallel=expert_parallel,
                          **_hw_kwargs(hw))
    return terms.total_s(eff)


@dataclass(frozen=True)
class OperatingPoint:
    """Steady-state serving at `concurrency` sequences with continuous batching and chunked prefill."""

    concurrency: Any
    ttft_s: Any
    tpot_s: Any
    output_tokens_per_s: Any  # whole replica
    output_tokens_per_s_per_user: Any
    prefill_tokens_per_s: Any  # single-prompt prefill speed
    step: StepTime


@dataclass(frozen=True)
class PointTerms:
    """Everything `operating_point` needs, at 100 % efficiency: one cycle and one prompt's prefill."""

    concurrency: Any
    input_tokens: float
    step: StepTerms
    prefill: PrefillTerms


def point_terms(arch: Architecture, fmt: WeightFormat, *, concurrency: Any, input_tokens: float,
                output_tokens: float, kv_bytes_per_elem: float, tp: Any, pp: Any, memory_bandwidth_tb_s: Any,
                compute_tflops: Any, interconnect_bandwidth_gb_s: Any, expert_parallel: bool = False,
                prefill_budget_tokens: Any = None, attn_dp: bool = False) -> PointTerms:
    """Roofline terms of the steady state with `concurrency` sequences (see `operating_point`).

    With a per-step token budget a prompt longer than the budget arrives in budget-sized chunks.
    `attn_dp`: attention data-parallel over the tp group, experts expert-parallel (`decode_terms`); the
    concurrency is the group's.
    """
    c = np.asarray(concurrency, dtype=float)
    chunk = input_tokens if prefill_budget_tokens is None else np.minimum(input_tokens, prefill_budget_tokens)
    hw = dict(memory_bandwidth_tb_s=memory_bandwidth_tb_s, compute_tflops=compute_tflops,
              interconnect_bandwidth_gb_s=interconnect_bandwidth_gb_s)
    step = decode_terms(arch, fmt, batch=c, context_tokens=input_tokens + output_tokens / 2.0,
                        kv_bytes_per_elem=kv_bytes_per_elem, tp=tp, pp=pp,
                        prefill_tokens=c * input_tokens / output_tokens, prefill_context_tokens=input_tokens / 2.0,
                        prefill_chunk_tokens=chunk, expert_parallel=expert_parallel, attn_dp=attn_dp, **hw)
    prefill = prefill_terms(arch, fmt, prompt_tokens=input_tokens, tp=tp, pp=pp, expert_parallel=expert_parallel,
                            prefill_budget_tokens=prefill_budget_tokens, attn_dp=attn_dp, **hw)
    return PointTerms(concurrency=c, input_tokens=float(input_tokens), step=step, prefill=prefill)


def point_from_terms(terms: PointTerms, eff: Efficiency) -> OperatingPoint:
    """Apply an efficiency to precomputed terms (same result as `operating_point`)."""
    tpot, memory, compute, comm, overhead = terms.step.parts(eff)
    prefill_s = terms.prefill.total_s(eff)
    c = terms.concurrency
    step = StepTime(total_s=tpot, memory_s=memory, compute_s=compute, comm_s=comm, overhead_s=overhead)
    return OperatingPoint(concurrency=c, ttft_s=prefill_s + tpot, tpot_s=tpot, output_tokens_per_s=c / tpot,
                          output_tokens_per_s_per_user=1.0 / tpot,
                          prefill_tokens_per_s=terms.input_tokens / prefill_s, step=step)


def operating_point(arch: Architecture, fmt: WeightFormat, *, concurrency: Any, input_tokens: float,
                    output_tokens: float, kv_bytes_per_elem: float, tp: int, pp: int, hw: Hardware,
                    eff: Efficiency, expert_parallel: bool = False,
                    prefill_budget_tokens: Any = None) -> OperatingPoint:
    """TTFT, TPOT and throughput with `concurrency` sequences in flight.

    In steady state, each decode cycle retires concurrency / output_tokens requests and
    admits as many new ones, whose prompts (input_tokens each) are prefilled in the same
    steps: p = concurrency x input / output prompt tokens per cycle. Sequences sit at
    input + output/2 tokens of context on average. TTFT is the new prompt's own prefill
    latency plus one loaded cycle (the first token leaves with the next step).
    Offline throughput therefore includes prefill time.
    """
    require_positive(input_tokens=input_tokens, output_tokens=output_tokens)
    _check_parallel(tp, pp)
    _require_positive_array("concurrency", concurrency)
    terms = point_terms(arch, fmt, concurrency=concurrency, input_tokens=input_tokens, output_tokens=output_tokens,
                        kv_bytes_per_elem=kv_bytes_per_elem, tp=tp, pp=pp, expert_parallel=expert_parallel,
                        prefill_budget_tokens=prefill_budget_tokens, **_hw_kwargs(hw))
    return point_from_terms(terms, eff)


def queued_ttft_s(*, ttft_s: Any, tpot_s: Any, output_tokens: Any, offered_concurrency: Any,
                  running_concurrency: Any) -> Any:
    """TTFT when a closed-loop client keeps more requests open than the engine can run.

    Requests beyond the `running_concurrency` the KV cache holds wait in the queue. A
    running request occupies its slot for W = TTFT + (output - 1) x TPOT, so slots free
    at running / W per second (Little's law [3]) and the excess waits
    (offered - running) / (running / W) on average.
    """
    _require_positive_array("output_tokens", output_tokens)
    offered = np.asarray(offered_concurrency, dtype=float)
    running = np.maximum(np.asarray(running_concurrency, dtype=float), 1.0)
    service_s = ttft_s + (output_tokens - 1.0) * tpot_s
    return ttft_s + np.maximum(offered - running, 0.0) / running * service_s


def arrival_concurrency(rate_per_s: float, latency_s_of: Any, *, max_concurrency: float,
                        iterations: int = 60) -> float:
    """Concurrency an open-loop arrival rate sustains: the fixed point c = rate x latency(c) [3].

    `latency_s_of(c)` is one request's end-to-end latency at concurrency c (increasing in c).
    Returns `max_concurrency` when the rate exceeds what the replica can serve (saturation).
    Solved by bisection on [tiny, max_concurrency].
    """
    require_positive(rate_per_s=rate_per_s, max_concurrency=max_concurrency)
    lo, hi = 1e-6, float(max_concurrency)
    if rate_per_s * float(latency_s_of(hi)) >= hi:
        return hi
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if rate_per_s * float(latency_s_of(mid)) > mid:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)



def wave_ttft_s(*, burst_prefill_s: Any, burst_steps: Any) -> Any:
    """Mean TTFT of a synchronised wave: `burst_steps` equal steps prefill the wave's prompts in arrival order.

    The j-th of the wave's prompts gets its first token at the end of step ceil(j x I / budget);
    averaged over the wave that is (steps + 1) / 2 steps of burst_prefill_s / steps each (one
    step, the whole burst, when everything fits the budget at once).
    """
    steps = np.maximum(np.asarray(burst_steps, dtype=float), 1.0)
    return burst_prefill_s * (steps + 1.0) / (2.0 * steps)


def wave_tpot_s(*, decode_step_s: Any, burst_prefill_s: Any, burst_steps: Any, output_tokens: Any) -> Any:
    """Mean time per output token (after the first) in a synchronised wave.

    A request that got its first token mid-burst decodes its next tokens in the remaining burst
    steps, (steps - 1) / 2 of them on average, each as long as a prefill step; the rest run as
    plain decode steps of `decode_step_s`.
    """
    steps = np.maximum(np.asarray(burst_steps, dtype=float), 1.0)
    return tpot_through_prefill_steps(decode_step_s=decode_step_s, prefill_step_s=burst_prefill_s / steps,
                                      prefill_steps=(steps - 1.0) / 2.0, output_tokens=output_tokens)


def tpot_through_prefill_steps(*, decode_step_s: Any, prefill_step_s: Any, prefill_steps: Any,
                               output_tokens: Any) -> Any:
    """Mean time per output token (after the first) when `prefill_steps` of a request's output - 1 decode steps
    (at most all of them) are as long as a prefill step and the rest are plain decode steps."""
    out = np.maximum(np.asarray(output_tokens, dtype=float) - 1.0, 1.0)
    slow = np.minimum(prefill_steps, out)
    return decode_step_s + slow * np.maximum(prefill_step_s - decode_step_s, 0.0) / out
