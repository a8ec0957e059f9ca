"""Roofline step-time model with measured efficiency factors: TTFT, TPOT and throughput.

One forward step over `b` decode tokens (plus `p` prefill tokens mixed in by chunked
prefill) on one pipeline stage of a `tp x pp` replica takes

    t_stage = max(bytes / (bandwidth x mbu), FLOPs / (peak x mfu)) + t_comm + t_overhead / pp

bytes  = weights read (dense part once; each MoE layer the experts its tokens touch,
         E x (1 - (1 - k/E)^tokens)) + KV cache read by the decode tokens,
FLOPs  = 2 x active compute params x tokens + attention over the cached context,
t_comm = tensor-parallel all-reduce, twice per layer: latency + 2 (tp-1)/tp x activation bytes / link,
         plus expert-parallel all-to-all when experts are spread over GPUs.

With pipeline parallelism `pp` micro-batches of b = B/pp sequences are in flight, so a
decode cycle (every sequence advances one token) takes pp x t_stage. This is the
memory/compute roofline [1] applied to transformer inference as in [2]; mbu and mfu are
achieved/peak fractions fitted on measured data (`calibration.py`). Because mbu, mfu <= 1
and the added terms are >= 0, no prediction exceeds the roofline.

Every function broadcasts over numpy arrays of batch and context.

[1] S. Williams, A. Waterman, D. Patterson, "Roofline", CACM 52(4), 2009.
[2] R. Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from planner import units
from planner.architecture import Architecture, expected_experts_touched, kv_bytes_per_sequence
from planner.errors import InvalidInputError, require_frac, require_non_negative, require_positive, \
    require_positive_int
from planner.memory import kv_shard_factor
from planner.quantization import WeightFormat

ACTIVATION_BYTES = 2  # bf16 activations on the wire for all-reduce and all-to-all


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak, and fixed costs, for one engine on one class of GPU."""

    mbu_frac: float  # achieved / peak memory bandwidth in decode
    mfu_decode_frac: float  # achieved / peak tensor FLOPs in compute-bound decode
    mfu_prefill_frac: float  # achieved / peak tensor FLOPs in prefill
    step_overhead_s: float  # per forward step: scheduling, kernel launches, sampling
    comm_latency_s: float  # per collective call (all-reduce / all-to-all)

    def __post_init__(self) -> None:
        require_frac(mbu_frac=self.mbu_frac, mfu_decode_frac=self.mfu_decode_frac,
                     mfu_prefill_frac=self.mfu_prefill_frac)
        require_non_negative(step_overhead_s=self.step_overhead_s, comm_latency_s=self.comm_latency_s)


@dataclass(frozen=True)
class Hardware:
    """Per-GPU peaks of the replica's GPUs."""

    memory_bandwidth_tb_s: float
    compute_tflops: float  # in the compute format the weights run at
    interconnect_bandwidth_gb_s: float  # one direction, GPU to GPU

    def __post_init__(self) -> None:
        require_positive(memory_bandwidth_tb_s=self.memory_bandwidth_tb_s, compute_tflops=self.compute_tflops,
                         interconnect_bandwidth_gb_s=self.interconnect_bandwidth_gb_s)


@dataclass(frozen=True)
class StepTime:
    """Components of one decode cycle (arrays broadcast over batch and context)."""

    total_s: Any
    memory_s: Any
    compute_s: Any
    comm_s: Any
    overhead_s: Any


def _weight_bytes_read(arch: Architecture, fmt: WeightFormat, tokens: Any) -> Any:
    """Weight bytes one step streams for `tokens` tokens (whole replica)."""
    dense = ((arch.always_read_params - arch.lm_head_params) * fmt.dense_bytes_per_param
             + arch.lm_head_params * fmt.embed_bytes_per_param)
    total = np.full(np.shape(tokens), dense, dtype=float)
    for g in arch.moe_groups:
        touched = expected_experts_touched(g.n_experts, g.top_k, np.maximum(tokens, 1e-9))
        total = total + g.n_layers * g.params_per_expert * fmt.expert_bytes_per_param * touched
    return total


def _attention_flops_per_token(arch: Architecture, context_tokens: Any, *, prefill: bool) -> Any:
    """Attention FLOPs for one query token attending to `context_tokens` cached tokens."""
    ctx = np.asarray(context_tokens, dtype=float)
    capped = np.minimum(ctx, arch.attn_ctx_cap_tokens) if arch.attn_ctx_cap_tokens else ctx
    per_ctx = arch.prefill_attn_flops_per_ctx_token_full if prefill else arch.attn_flops_per_ctx_token_full
    flops = per_ctx * capped + arch.fixed_flops_per_token
    for g in arch.window_groups:
        flops = flops + g.attn_flops_per_ctx_token * np.minimum(ctx, g.window_tokens)
    return flops


def _comm_s(arch: Architecture, tokens: Any, *, tp: int, pp: int, hw: Hardware, eff: Efficiency,
            expert_parallel: bool) -> Any:
    """Collective time per stage: 2 all-reduces per layer under TP; 2 all-to-alls per MoE layer under EP."""
    layers_per_stage = arch.n_layers / pp
    link_bytes_per_s = hw.interconnect_bandwidth_gb_s * units.GB
    t = np.zeros(np.shape(tokens))
    if tp > 1:
        ring = 2.0 * (tp - 1) / tp * tokens * arch.hidden_size * ACTIVATION_BYTES
        t = t + 2 * layers_per_stage * (eff.comm_latency_s + ring / link_bytes_per_s)
    if expert_parallel and tp > 1 and arch.moe_groups:
        moe_layers = sum(g.n_layers for g in arch.moe_groups) / pp
        top_k = max(g.top_k for g in arch.moe_groups)
        a2a = (tp - 1) / tp * tokens * top_k * arch.hidden_size * ACTIVATION_BYTES
        t = t + 2 * moe_layers * (eff.comm_latency_s + a2a / link_bytes_per_s)
    return t


def _check_parallel(tp: int, pp: int) -> None:
    require_positive_int(tp=tp, pp=pp)


def decode_step(arch: Architecture, fmt: WeightFormat, *, batch: Any, context_tokens: Any,
                kv_bytes_per_elem: float, tp: int, pp: int, hw: Hardware, eff: Efficiency,
                prefill_tokens: Any = 0.0, prefill_context_tokens: Any = 0.0,
                expert_parallel: bool = False) -> StepTime:
    """Time for every one of `batch` sequences to advance one token (one decode cycle).

    `prefill_tokens` are prompt tokens processed in the same steps (chunked prefill);
    they add FLOPs and touch experts but read no KV cache beyond their own prompt.
    """
    _check_parallel(tp, pp)
    b = np.asarray(batch, dtype=float)
    if np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise InvalidInputError(f"batch must be finite and > 0, got {batch!r}")
    p = np.asarray(prefill_tokens, dtype=float)
    micro = b / pp
    micro_prefill = p / pp
    tokens = micro + micro_prefill
    kv_seq = kv_bytes_per_sequence(arch, context_tokens, kv_bytes_per_elem)
    shard = kv_shard_factor(arch.n_kv_heads, tp)
    bytes_stage = (_weight_bytes_read(arch, fmt, tokens) / (tp * pp)
                   + micro * kv_seq / (pp * shard))
    flops_stage = (2.0 * arch.active_compute_params * tokens
                   + micro * _attention_flops_per_token(arch, context_tokens, prefill=False)
                   + micro_prefill * _attention_flops_per_token(arch, prefill_context_tokens, prefill=True)
                   ) / (tp * pp)
    memory_s = bytes_stage / (hw.memory_bandwidth_tb_s * units.TB * eff.mbu_frac)
    compute_s = flops_stage / (hw.compute_tflops * units.TERA * eff.mfu_decode_frac)
    comm_s = _comm_s(arch, tokens, tp=tp, pp=pp, hw=hw, eff=eff, expert_parallel=expert_parallel)
    stage = np.maximum(memory_s, compute_s) + comm_s + eff.step_overhead_s / pp
    return StepTime(total_s=pp * stage, memory_s=pp * memory_s, compute_s=pp * compute_s, comm_s=pp * comm_s,
                    overhead_s=np.full(np.shape(stage), eff.step_overhead_s))


def prefill_time_s(arch: Architecture, fmt: WeightFormat, *, prompt_tokens: Any, tp: int, pp: int, hw: Hardware,
                   eff: Efficiency, expert_parallel: bool = False) -> Any:
    """Latency to process one prompt of `prompt_tokens` tokens (all pipeline stages in turn).

    FLOPs = 2 x active params x N + attention, where token i attends to i earlier tokens
    (N^2/2 context-token pairs under causal masking). Compute-bound for long prompts;
    short prompts hit the weight-read floor.
    """
    _check_parallel(tp, pp)
    n = np.asarray(prompt_tokens, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise InvalidInputError(f"prompt_tokens must be finite and > 0, got {prompt_tokens!r}")
    mean_ctx = n / 2.0
    flops = (2.0 * arch.active_compute_params * n
             + n * _attention_flops_per_token(arch, mean_ctx, prefill=True)) / tp
    bytes_read = _weight_bytes_read(arch, fmt, n) / tp
    compute_s = flops / (hw.compute_tflops * units.TERA * eff.mfu_prefill_frac)
    memory_s = bytes_read / (hw.memory_bandwidth_tb_s * units.TB * eff.mbu_frac)
    comm_s = pp * _comm_s(arch, n, tp=tp, pp=pp, hw=hw, eff=eff, expert_parallel=expert_parallel)
    return np.maximum(compute_s, memory_s) + comm_s + eff.step_overhead_s


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


def operating_point(arch: Architecture, fmt: WeightFormat, *, concurrency: Any, input_tokens: float,
                    output_tokens: float, kv_bytes_per_elem: float, tp: int, pp: int, hw: Hardware,
                    eff: Efficiency, expert_parallel: bool = False) -> OperatingPoint:
    """TTFT, TPOT and throughput with `concurrency` sequences in flight.

    In steady state, each decode cycle retires concurrency / output_tokens requests and
    admits as many new ones, whose prompts (input_tokens each) are prefilled in the same
    steps: p = concurrency x input / output prompt tokens per cycle. Sequences sit at
    input + output/2 tokens of context on average. TTFT is the new prompt's own prefill
    latency plus one loaded cycle (the first token leaves with the next step).
    Offline throughput therefore includes prefill time.
    """
    require_positive(input_tokens=input_tokens, output_tokens=output_tokens)
    c = np.asarray(concurrency, dtype=float)
    prefill_per_cycle = c * input_tokens / output_tokens
    ctx = input_tokens + output_tokens / 2.0
    step = decode_step(arch, fmt, batch=c, context_tokens=ctx, kv_bytes_per_elem=kv_bytes_per_elem, tp=tp, pp=pp,
                       hw=hw, eff=eff, prefill_tokens=prefill_per_cycle, prefill_context_tokens=input_tokens / 2.0,
                       expert_parallel=expert_parallel)
    prefill_s = prefill_time_s(arch, fmt, prompt_tokens=input_tokens, tp=tp, pp=pp, hw=hw, eff=eff,
                               expert_parallel=expert_parallel)
    tpot = step.total_s
    return OperatingPoint(
        concurrency=c, ttft_s=prefill_s + tpot, tpot_s=tpot, output_tokens_per_s=c / tpot,
        output_tokens_per_s_per_user=1.0 / tpot, prefill_tokens_per_s=input_tokens / prefill_s, step=step,
    )
