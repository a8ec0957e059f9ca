"""Roofline step-time model with measured efficiency factors: TTFT, TPOT and throughput.

One forward step over `b` decode tokens (plus `p` prompt tokens mixed in by chunked
prefill) on one pipeline stage of a `tp x pp` replica takes

    t_stage = max(bytes / (bandwidth x mbu),
                  FLOPs_decode / (peak x mfu_decode) + FLOPs_prefill / (peak x mfu_prefill))
              + t_comm + t_overhead / pp

bytes  = weights read (dense part once; each MoE layer the experts its tokens touch,
         E x (1 - (1 - k/E)^tokens)) + KV cache read by the decode tokens,
FLOPs  = 2 x active compute params x tokens + attention over the cached context,
t_comm = tensor-parallel all-reduce, twice per layer: latency + 2 (tp-1)/tp x activation bytes / link,
         plus expert-parallel all-to-all (dispatch and combine) per MoE layer.

With pipeline parallelism `pp` micro-batches of b = B/pp sequences are in flight, so a
decode cycle (every sequence advances one token) takes pp x t_stage. This is the
memory/compute roofline [1] applied to transformer inference as in [2]; mbu and mfu are
achieved/peak fractions fitted on measured data (`calibration.py`). Because mbu, mfu <= 1
and the added terms are >= 0, no prediction exceeds the roofline.

The model is split in two: `*_terms` functions return the roofline times at 100 %
efficiency (arrays, no efficiency applied), and `StepTerms.total_s(eff)` applies an
`Efficiency`. Fitting evaluates thousands of efficiency candidates on fixed terms; the
sweep evaluates one efficiency on thousands of configurations. Every function
broadcasts over numpy arrays of batch, context, parallelism and hardware.

[1] S. Williams, A. Waterman, D. Patterson, "Roofline", CACM 52(4), 2009.
[2] R. Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102.
[3] R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of Collective Communication Operations in MPICH",
    IJHPCA 19(1), 2005 (ring algorithms: p-1 steps per reduce-scatter or all-gather, each paying the latency).
[4] vLLM team, "vLLM V1: A Major Upgrade to vLLM's Core Architecture", blog.vllm.ai, 2025-01-27 (engine core
    busy loop, CPU overheads overlapped with the GPU); vLLM engine args `--async-scheduling` (schedule the next
    step while the current one runs), docs.vllm.ai/en/latest/configuration/engine_args.html.
[5] LMSYS, "SGLang v0.4: Zero-Overhead Batch Scheduler ...", lmsys.org/blog/2024-12-04-sglang-v0-4 (CPU
    scheduling of the next batch overlapped with the GPU computation of the current one).
[6] TensorRT-LLM docs, "Overlap Scheduler" (PyTorch backend), nvidia.github.io/TensorRT-LLM.
[7] NVIDIA, "Optimizing llama.cpp AI Inference with CUDA Graphs", developer.nvidia.com/blog, 2024 (llama.cpp
    PR #6766: one graph launch per token instead of one launch per kernel).
[8] E. T. Jaynes, "Information Theory and Statistical Mechanics", Phys. Rev. 106(4), 1957 (maximum entropy:
    the exponential law for a positive quantity of known mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from planner import units
from planner.errors import InvalidInputError, require_positive, require_positive_int
from planner.model.architecture import Architecture, kv_bytes_per_sequence
from planner.model.quantization import WeightFormat
from planner.perf.step_work import (
    activation_bytes_per_token,
    attention_flops_per_token,
    attn_dp_rank_load,
    comm_terms,
    dense_gemm_flops_per_token,
    dense_split,
    ep_expert_bytes_factor,
    expert_calls,
    gemm_flops_per_token,
    host_launches,
    kv_split,
    weight_bytes_split,
)

EFFICIENCY_FIELDS = ("mbu_frac", "expert_mbu_frac", "mfu_decode_frac", "mfu_prefill_frac", "comm_bw_frac",
                     "step_overhead_s", "comm_latency_s", "expert_overhead_s", "overhead_overlap_frac",
                     "layer_overhead_s", "request_overhead_s", "comm_large_bw_frac",
                     "comm_half_s", "eager_launch_s")  # the column order of Efficiency.to_array / from_array


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak, and fixed costs, for one engine on one class of GPU.

    Every field may be a float or a numpy array (one value per configuration or measured
    row): the step-time model broadcasts over them. `to_array` / `from_array` convert to and
    from an array whose last axis follows EFFICIENCY_FIELDS (the fitter's and the sweep's form).
    """

    mbu_frac: Any  # achieved / peak memory bandwidth in decode
    mfu_decode_frac: Any  # achieved / peak tensor FLOPs in compute-bound decode
    mfu_prefill_frac: Any  # achieved / peak tensor FLOPs in prefill
    step_overhead_s: Any  # per forward step: scheduling, kernel launches, sampling
    comm_latency_s: Any  # per collective call (all-reduce / all-to-all)
    moe_mbu_frac: Any = None  # achieved / peak bandwidth streaming routed experts (None: mbu_frac)
    comm_bw_frac: Any = 1.0  # achieved / peak interconnect bandwidth of a small (latency-regime) collective
    expert_overhead_s: Any = 0.0  # per MoE layer and routed slot (top-k) per step (fused grouped-GEMM fixed cost)
    overhead_overlap_frac: Any = 0.0  # share of a step's GPU time that hides the step overhead (0: serial)
    layer_overhead_s: Any = 0.0  # GPU time per layer per step beyond the roofline (small kernels' minimum time)
    request_overhead_s: Any = 0.0  # per served request, before its first token, outside the engine's GPU steps (the
    # API server: HTTP, chat template, tokenisation, hand-off to the engine core, the first token's detokenisation)
    comm_large_bw_frac: Any = 1.0  # achieved / peak interconnect bandwidth of a large collective (sourced, not fitted:
    # step_work.COMM_LARGE_MESSAGE_BW_FRAC)
    comm_half_s: Any = np.inf  # per-call transfer time at line rate where the bytes' cost is halfway between the
    # small- and the large-message rates (collective_transfer_s); inf: every message at comm_bw_frac
    eager_launch_s: Any = 0.0  # host (CPU) time per kernel a context step launches from Python without a CUDA graph
    # (PrefillTerms.eager_launches; 0: not modelled)

    def __post_init__(self) -> None:
        fracs = dict(mbu_frac=self.mbu_frac, mfu_decode_frac=self.mfu_decode_frac,
                     mfu_prefill_frac=self.mfu_prefill_frac, comm_bw_frac=self.comm_bw_frac,
                     moe_mbu_frac=self.expert_mbu_frac, comm_large_bw_frac=self.comm_large_bw_frac)
        for name, value in fracs.items():
            v = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(v) & (v > 0) & (v <= 1)):
                raise InvalidInputError(f"{name} must be finite and in (0, 1], got {value!r}")
        v = np.asarray(self.overhead_overlap_frac, dtype=float)
        if not np.all(np.isfinite(v) & (v >= 0) & (v <= 1)):  # 0 is allowed: a fully serial engine
            raise InvalidInputError(f"overhead_overlap_frac must be finite and in [0, 1], got "
                                    f"{self.overhead_overlap_frac!r}")
        for name in ("step_overhead_s", "comm_latency_s", "expert_overhead_s", "layer_overhead_s",
                     "request_overhead_s", "eager_launch_s"):
            v = np.asarray(getattr(self, name), dtype=float)
            if not np.all(np.isfinite(v) & (v >= 0)):
                raise InvalidInputError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}")
        v = np.asarray(self.comm_half_s, dtype=float)
        if not np.all(~np.isnan(v) & (v >= 0)):  # inf is allowed: no large-message regime
            raise InvalidInputError(f"comm_half_s must be >= 0 (inf allowed), got {self.comm_half_s!r}")

    @property
    def expert_mbu_frac(self) -> Any:
        return self.mbu_frac if self.moe_mbu_frac is None else self.moe_mbu_frac

    def to_array(self) -> np.ndarray:
        """The factors stacked on a last axis in EFFICIENCY_FIELDS order."""
        return np.stack(np.broadcast_arrays(*(np.asarray(getattr(self, f), dtype=float) for f in EFFICIENCY_FIELDS)),
                        axis=-1)

    @classmethod
    def from_array(cls, values: np.ndarray) -> Efficiency:
        """An Efficiency whose fields are the slices values[..., i] in EFFICIENCY_FIELDS order."""
        v = np.asarray(values, dtype=float)
        if v.shape[-1:] != (len(EFFICIENCY_FIELDS),):
            raise InvalidInputError(f"efficiency array must end in an axis of {len(EFFICIENCY_FIELDS)}, got "
                                    f"shape {v.shape}")
        named = {f: v[..., i] for i, f in enumerate(EFFICIENCY_FIELDS)}
        named["moe_mbu_frac"] = named.pop("expert_mbu_frac")
        return cls(**named)


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


@dataclass(frozen=True)
class StepTerms:
    """Roofline times of one decode cycle at 100 % efficiency, per pipeline stage (arrays).

    A layer runs its matrix products (weights) and its attention (KV cache) as separate
    kernels one after the other, so each is its own roofline and their times add:

        step  = max(dense weight bytes / mbu + expert weight bytes / expert mbu,
                    GEMM FLOPs of decode tokens (and of a tile's padded rows) / mfu_d + of prompt tokens / mfu_p)
              + max(KV bytes / mbu, attention FLOPs of decode / mfu_d + of prompts / mfu_p)
              + collective_transfer_s(transfer) + collectives x latency
              + expert calls x expert overhead + layers x layer overhead
        gpu   = pp x [(1 - f) x decode-only step + f x step carrying a prompt chunk]
              + pp x f x eager chunk launches x eager_launch_s   (a chunk step run without a CUDA graph)
        cycle = gpu + step overhead x exp(-overlap x gpu / step overhead)   (see exposed_overhead_s)

    The step overhead is the engine's CPU work per forward step (scheduling, input
    preparation, sampling, output processing, launching the step's kernels or CUDA graph).
    An engine that prepares step n+1 while the GPU runs step n hides it behind the GPU time:
    vLLM V1's engine core and async scheduling [4], SGLang's overlap scheduler [5],
    TensorRT-LLM's overlap scheduler [6]; `overlap` is the share of the GPU time available
    for that (0: serial, cycle = gpu + overhead; 1: about max(gpu, overhead)). So the
    overhead is exposed at batch 1, where the GPU step of a small model lasts a few
    milliseconds, and hidden at large batch. CUDA graphs [7] shrink the overhead itself.
    A GEMM of few tokens computes a whole tensor-core tile of `WeightFormat.gemm_min_rows` token rows
    (`quantization.gemm_min_rows`): the padded rows' FLOPs of the non-expert weights are added to the decode
    tokens' (`compute_pad_s`); they bind only where the GPU's FLOPs per weight byte are below the tile's (the H20).
    The layer overhead is GPU time: each layer runs a dozen small kernels (norms, rotary
    embedding, attention, activations, residual adds) that last a few microseconds even when
    launched from a graph, so a small model's batch-1 step costs more than its bytes; it
    scales with depth, which a per-step constant cannot.

    With chunked prefill a new prompt is processed in one step (when it fits the token
    budget), so a fraction f of the cycles carries a prompt chunk and the rest decode only;
    the `*_chunk_*` fields are that step's extra terms. Routed experts get their own
    bandwidth efficiency (their bytes grow with the experts the batch touches) and a fixed
    cost per MoE layer and routed slot (top-k): each layer's experts run as one fused grouped
    GEMM whose routing, sort and launch cost does not grow with the batch
    (`step_work.expert_calls`).
    """

    memory_s: Any  # dense weights
    memory_expert_s: Any  # routed-expert weights a decode-only step reads
    memory_kv_s: Any  # KV cache read by the decode tokens
    compute_decode_s: Any  # GEMM FLOPs of the decode tokens
    attn_decode_s: Any  # attention FLOPs of the decode tokens
    transfer_s: Any  # decode-only step
    collectives: Any
    pp: Any
    expert_calls: Any  # routed slots (MoE layers x top-k) one GPU of one stage pays for in a decode-only step
    chunk_frac: Any  # f: share of cycles whose step also carries a prompt chunk
    compute_prefill_s: Any  # GEMM FLOPs of that chunk
    attn_prefill_s: Any  # its attention FLOPs
    memory_expert_chunk_s: Any  # expert bytes of the step with the chunk
    transfer_chunk_s: Any
    expert_calls_chunk: Any
    layers: Any = 0.0  # layers one pipeline stage runs per step
    memory_act_s: Any = 0.0  # activation traffic of the decode tokens' elementwise kernels (norms, SwiGLU, MoE
    # permute/finalize: step_work.activation_bytes_per_token)
    memory_act_chunk_s: Any = 0.0  # the same for the prompt chunk's tokens
    launches: Any = 0.0  # kernels one stage's step launches (its layers' `step_work.host_launches` + collectives)
    eager_launches_chunk: Any = 0.0  # of them, those a step carrying a prompt chunk launches from the host without a
    # CUDA graph (the prefill graph's size limit, `serving.prefill_graph_max_tokens`; 0: graphed)
    compute_pad_s: Any = 0.0  # non-expert GEMM FLOPs of the rows a tensor-core tile adds to a decode-only step's tokens
    # (WeightFormat.gemm_min_rows), at the decode rate
    compute_pad_chunk_s: Any = 0.0  # the same for the step carrying a prompt chunk (its tokens fill more of the tile)

    def parts(self, eff: Efficiency) -> tuple[Any, Any, Any, Any, Any]:
        """(cycle, memory, compute, comm, overhead) seconds with `eff` applied (array fields allowed); overhead is
        the exposed step overhead plus the per-expert and per-layer costs."""
        mbu, expert_mbu, mfu_decode, mfu_prefill = (eff.mbu_frac, eff.expert_mbu_frac, eff.mfu_decode_frac,
                                                    eff.mfu_prefill_frac)
        comm_latency_s = eff.comm_latency_s
        f = self.chunk_frac
        attn_mem = self.memory_kv_s / mbu
        act = self.memory_act_s / mbu
        act_c = act + self.memory_act_chunk_s / mbu
        gemm_mem = self.memory_s / mbu + self.memory_expert_s / expert_mbu
        gemm_mem_c = self.memory_s / mbu + self.memory_expert_chunk_s / expert_mbu
        gemm_flop = (self.compute_decode_s + self.compute_pad_s) / mfu_decode
        gemm_flop_c = ((self.compute_decode_s + self.compute_pad_chunk_s) / mfu_decode
                       + self.compute_prefill_s / mfu_prefill)
        attn_flop = self.attn_decode_s / mfu_decode
        attn_flop_c = attn_flop + self.attn_prefill_s / mfu_prefill
        plain = np.maximum(gemm_mem, gemm_flop) + np.maximum(attn_mem, attn_flop) + act
        chunk = np.maximum(gemm_mem_c, gemm_flop_c) + np.maximum(attn_mem, attn_flop_c) + act_c
        comm = self.pp * ((1 - f) * collective_transfer_s(self.transfer_s, self.collectives, eff)
                          + f * collective_transfer_s(self.transfer_chunk_s, self.collectives, eff)) \
            + self.pp * self.collectives * comm_latency_s
        experts = self.pp * (((1 - f) * self.expert_calls + f * self.expert_calls_chunk) * eff.expert_overhead_s
                             + self.layers * eff.layer_overhead_s)
        eager = self.pp * f * self.eager_launches_chunk * eff.eager_launch_s  # host launches of an eager chunk step
        gpu = self.pp * ((1 - f) * plain + f * chunk) + comm + experts + eager
        exposed = exposed_overhead_s(eff.step_overhead_s, gpu, eff.overhead_overlap_frac)
        cycle = gpu + exposed
        fixed = exposed + experts + eager
        memory = self.pp * (attn_mem + (1 - f) * (gemm_mem + act) + f * (gemm_mem_c + act_c))
        compute = self.pp * ((1 - f) * (gemm_flop + attn_flop) + f * (gemm_flop_c + attn_flop_c))
        return cycle, memory, compute, comm, fixed + 0 * comm

    def total_s(self, eff: Efficiency) -> Any:
        return self.parts(eff)[0]


@dataclass(frozen=True)
class PrefillTerms:
    """Roofline times of a prefill at 100 % efficiency (all stages in turn), run as `steps` forward
    steps because the engine processes at most its token budget per step (chunked prefill):

        gpu = max(GEMM FLOPs / mfu_p, steps x weight bytes / mbu) + attention FLOPs / mfu_p
              + collective_transfer_s(transfer) + steps x (collectives x latency + expert calls x expert overhead
                                               + layers x layer overhead)
        total = gpu + steps x exposed_overhead_s(step overhead, gpu / steps, overlap)
                    + steps x eager launches x eager_launch_s

    A step run without a CUDA graph (`eager_launches` > 0: `serving.prefill_graph_max_tokens`) launches every kernel
    from the host. Its host time is added to the GPU time, not hidden behind it: a layer's many small kernels
    (norms, RoPE, activations, quantisation, routing) each run shorter than their launch, so the GPU waits on the
    host between them whatever its big GEMMs take (the overlapped form, max(host, GPU), was measured and not kept:
    docs/performance.md, "Eager context steps").
    """

    compute_s: Any  # GEMM FLOPs
    attn_s: Any  # attention FLOPs (causal: N^2/2 pairs)
    memory_s: Any  # weights read once (per step)
    transfer_s: Any
    collectives: Any  # per step
    expert_calls: Any  # routed slots (MoE layers x top-k) one GPU pays for per step
    steps: Any = 1.0  # forward steps: ceil(prompt tokens / the engine's per-step token budget)
    layers: Any = 0.0  # layers of all stages (a prompt passes every stage)
    act_s: Any = 0.0  # activation traffic of the prompt's elementwise kernels (step_work.activation_bytes_per_token)
    launches: Any = 0.0  # kernels each step launches, all stages (`step_work.host_launches` + the collectives)
    eager_launches: Any = 0.0  # of them, those each step launches from the host without a CUDA graph (0: graphed)

    def total_s(self, eff: Efficiency) -> Any:
        per_step = (self.collectives * eff.comm_latency_s + self.expert_calls * eff.expert_overhead_s
                    + self.layers * eff.layer_overhead_s)
        gpu = (np.maximum(self.compute_s / eff.mfu_prefill_frac, self.steps * self.memory_s / eff.mbu_frac)
               + self.attn_s / eff.mfu_prefill_frac + self.act_s / eff.mbu_frac
               + collective_transfer_s(self.transfer_s, self.steps * self.collectives, eff) + self.steps * per_step)
        host = self.eager_launches * eff.eager_launch_s  # host launches of a step run without a CUDA graph
        return gpu + self.steps * (exposed_overhead_s(eff.step_overhead_s, gpu / self.steps, eff.overhead_overlap_frac)
                                   + host)


def collective_transfer_s(transfer_s: Any, calls: Any, eff: Efficiency) -> Any:
    """Seconds `calls` collectives spend moving bytes that take `transfer_s` at line rate, their achieved share of
    the link growing with the message size (see docs/performance.md, "Collectives").

    With x = transfer_s / calls the line-rate time of one call and h = `eff.comm_half_s`, a byte costs

        1 / eta(x) = 1 / eta_large + (1 / eta_small - 1 / eta_large) x h / (x + h)

    of its line-rate time: 1 / eta_small (`comm_bw_frac`, fitted) for a message well below h, where the custom
    all-reduce's one-shot kernel reads every peer's whole buffer and NCCL runs its low-latency protocols, and
    1 / eta_large (`comm_large_bw_frac`, the sourced large-message bus bandwidth [3] over the link) well above
    it, with a fixed extra cost (1 / eta_small - 1 / eta_large) h per call in between (the pipeline fill of a
    ring or a two-shot kernel). h = inf: every byte at eta_small (the alpha-beta model with one bandwidth).
    """
    x = transfer_s / np.maximum(calls, 1e-12)
    # h / (x + h) written so that h = inf gives 1 and h = 0 gives 0 (x > 0) without a warning; x = 0 means no bytes
    small = 1.0 / (1.0 + x / (eff.comm_half_s + 1e-300))
    inv_large = 1.0 / eff.comm_large_bw_frac
    return transfer_s * (inv_large + (1.0 / eff.comm_bw_frac - inv_large) * small)


def exposed_overhead_s(overhead_s: Any, gpu_s: Any, overlap_frac: Any) -> Any:
    """Mean part of a step's CPU overhead that the GPU time does not hide.

    An engine that schedules step n+1 while step n runs on the GPU (vLLM V1 async scheduling [4],
    SGLang's overlap scheduler [5], TensorRT-LLM's overlap scheduler [6]) pays only the part of its
    CPU work C that outlasts the hiding window t = overlap x gpu time: max(0, C - t). C varies from
    step to step around its mean `overhead_s`; taking it exponentially distributed (the maximum-
    entropy law of a positive time with a known mean [8]) gives E[max(0, C - t)] = overhead x
    exp(-t / overhead): the whole overhead at t = 0 (a serial engine, `overlap_frac` 0), 37 % of it
    when t equals it, 5 % at three times it. Unlike the hard max this is smooth, so a fit can
    still tell the overhead from the overlap when every step hides most of it.
    """
    o = np.asarray(overhead_s, dtype=float)
    hidden = np.asarray(overlap_frac, dtype=float) * np.asarray(gpu_s, dtype=float)
    return np.where(o > 0, o * np.exp(-hidden / np.where(o > 0, o, 1.0)), 0.0)


def decode_terms(arch: Architecture, fmt: WeightFormat, *, batch: Any, context_tokens: Any,
                 kv_bytes_per_elem: float, tp: Any, pp: Any, memory_bandwidth_tb_s: Any, compute_tflops: Any,
                 interconnect_bandwidth_gb_s: Any, prefill_tokens: Any = 0.0, prefill_context_tokens: Any = 0.0,
                 prefill_chunk_tokens: Any = None, expert_parallel: bool = False,
                 query_tokens_per_seq: Any = 1.0, attn_dp: bool = False,
                 activation_bytes_per_token_: Any = None) -> StepTerms:
    """Roofline terms of one decode cycle of `batch` sequences (arrays; no input checks: see decode_step).

    `prefill_tokens` prompt tokens are processed per cycle. With `prefill_chunk_tokens` (a
    prompt's length) they arrive as whole prompts in a fraction prefill/chunk of the cycles;
    without it they are spread over every cycle's step. `query_tokens_per_seq`: tokens each
    sequence runs through the step (a speculative verify step: 1 + draft tokens, see
    `speculative.py`); weights touched, GEMM and attention FLOPs and activations scale with the
    tokens, the KV cache is read once per sequence. 1 (the default) is plain decoding.
    `attn_dp`: attention data-parallel over the tp group with the experts expert-parallel
    (`evaluator.Layout.attn_dp`): `batch` is the group's, each GPU runs 1/tp of it with whole attention and
    dense weights (read in full by every GPU) and its own sequences' KV cache; GEMM and attention FLOPs per
    GPU are the same 1/tp of the group's as under tensor parallelism.
    `activation_bytes_per_token_`: `step_work.activation_bytes_per_token` for these arguments, when the caller
    (a step function called many times with other batches) has it already; it does not depend on the batch.
    """
    b = np.asarray(batch, dtype=float)
    pp_f = np.asarray(pp, dtype=float)
    tp_f = np.asarray(tp, dtype=float)
    micro = b / pp_f
    tokens = micro * np.asarray(query_tokens_per_seq, dtype=float)  # decode query tokens per micro-batch
    p = np.asarray(prefill_tokens, dtype=float)
    if prefill_chunk_tokens is None:
        frac = np.where(p > 0, 1.0, 0.0)
        chunk = p
    else:
        size = np.maximum(np.asarray(prefill_chunk_tokens, dtype=float), 1e-9)
        frac = np.minimum(p / size, 1.0)
        chunk = np.maximum(p, size) * (p > 0)
    micro_chunk = chunk / pp_f
    kv_seq = kv_bytes_per_sequence(arch, context_tokens, kv_bytes_per_elem)
    dense_bytes, expert_bytes = weight_bytes_split(arch, fmt, tokens)
    _, expert_bytes_chunk = weight_bytes_split(arch, fmt, tokens + micro_chunk)
    bandwidth = np.asarray(memory_bandwidth_tb_s, dtype=float) * units.TB
    per_gpu = tp_f * pp_f  # a stage holds 1/pp of the layers, split tp ways
    flops_per_s = np.asarray(compute_tflops, dtype=float) * units.TERA * per_gpu
    load = attn_dp_rank_load(micro, tp_f, attn_dp)  # the busiest attention-DP rank's share over the mean
    kv_bytes = load * micro * kv_seq / (pp_f * kv_split(arch.n_kv_heads, tp_f, attn_dp))
    dense_gpus = dense_split(tp_f, attn_dp) * pp_f  # GPUs the dense weights are split over
    experts_ep = expert_parallel or attn_dp
    link = dict(tp=tp_f, pp=pp_f, link_gb_s=interconnect_bandwidth_gb_s, expert_parallel=experts_ep, attn_dp=attn_dp)
    per_token, calls = comm_terms(arch, 1.0, **link)  # a collective's bytes are linear in the tokens it carries
    transfer = tokens * load * per_token
    transfer_chunk = (tokens * load + micro_chunk) * per_token
    gemm = gemm_flops_per_token(arch, fmt)
    dense_gemm = dense_gemm_flops_per_token(arch, fmt)
    decode_gemm = (load - 1.0) * dense_gemm + gemm  # the busiest rank runs its own tokens' dense parts
    rows = np.asarray(fmt.gemm_min_rows, dtype=float)  # a tensor-core tile's token rows (quantization.gemm_min_rows)
    pad = np.maximum(rows - tokens * load, 0.0) * dense_gemm / flops_per_s
    pad_chunk = np.maximum(rows - tokens * load - micro_chunk, 0.0) * dense_gemm / flops_per_s
    bmm = np.asarray(fmt.attn_bmm_slowdown, dtype=float)  # attention BMMs never at an FP4 rate
    ep = dict(tp=tp_f, pp=pp_f, expert_parallel=experts_ep)
    expert_bytes = expert_bytes * ep_expert_bytes_factor(arch, tokens, tp_f, experts_ep)  # the busiest EP GPU's
    expert_bytes_chunk = expert_bytes_chunk * ep_expert_bytes_factor(arch, tokens + micro_chunk, tp_f, experts_ep)
    if activation_bytes_per_token_ is None:
        activation_bytes_per_token_ = activation_bytes_per_token(arch, fmt, tp=tp_f, pp=pp_f,
                                                                 expert_parallel=experts_ep, attn_dp=attn_dp)
    act = activation_bytes_per_token_ / bandwidth
    return StepTerms(memory_s=dense_bytes / dense_gpus / bandwidth, memory_expert_s=expert_bytes / per_gpu / bandwidth,
                     memory_kv_s=kv_bytes / bandwidth, compute_decode_s=tokens * decode_gemm / flops_per_s,
                     attn_decode_s=load * bmm * tokens * attention_flops_per_token(arch, context_tokens,
                                                                                   prefill=False) / flops_per_s,
                     transfer_s=transfer, collectives=calls, pp=pp_f,
                     expert_calls=expert_calls(arch, tokens, **ep), chunk_frac=frac,
                     compute_prefill_s=micro_chunk * gemm / flops_per_s,
                     attn_prefill_s=bmm * micro_chunk * attention_flops_per_token(arch, prefill_context_tokens,
                                                                                  prefill=True) / flops_per_s,
                     memory_expert_chunk_s=expert_bytes_chunk / per_gpu / bandwidth, transfer_chunk_s=transfer_chunk,
                     expert_calls_chunk=expert_calls(arch, tokens + micro_chunk, **ep), layers=arch.n_layers / pp_f,
                     launches=host_launches(arch, fmt) / pp_f + calls, memory_act_s=tokens * load * act,
                     memory_act_chunk_s=micro_chunk * act, compute_pad_s=pad, compute_pad_chunk_s=pad_chunk)


def prefill_steps(prompt_tokens: Any, budget_tokens: Any = None) -> Any:
    """Forward steps a prefill of `prompt_tokens` takes when the engine processes at most `budget_tokens`
    tokens per step (vLLM max_num_batched_tokens, SGLang chunked_prefill_size, TensorRT-LLM max_num_tokens,
    llama.cpp n_batch): ceil(tokens / budget), at least 1; one step when there is no budget."""
    tokens = np.asarray(prompt_tokens, dtype=float)
    if budget_tokens is None:
        return np.ones_like(tokens)
    return np.maximum(np.ceil(tokens / np.asarray(budget_tokens, dtype=float)), 1.0)


def prefill_terms(arch: Architecture, fmt: WeightFormat, *, prompt_tokens: Any, tp: Any, pp: Any,
                  memory_bandwidth_tb_s: Any, compute_tflops: Any, interconnect_bandwidth_gb_s: Any,
                  expert_parallel: bool = False, prefill_budget_tokens: Any = None,
                  attn_dp: bool = False) -> PrefillTerms:
    """Roofline terms of one prompt's prefill: FLOPs = 2 x active params x N + causal attention (N^2/2 pairs),
    in ceil(N / budget) steps (each re-reads the weights and pays the per-step costs).

    Under attention data parallelism (`attn_dp`) the prompt runs on one GPU of the group: its attention and
    dense parts there with whole weights, only its routed experts spread over the group (expert parallel).
    """
    n = np.asarray(prompt_tokens, dtype=float)
    tp_f = np.asarray(tp, dtype=float)
    pp_f = np.asarray(pp, dtype=float)
    gpu_flops = np.asarray(compute_tflops, dtype=float) * units.TERA
    dense_gpus = dense_split(tp_f, attn_dp)
    experts_ep = expert_parallel or attn_dp
    steps = prefill_steps(n, prefill_budget_tokens)
    chunk = n / steps  # tokens per step
    dense_b, expert_b = weight_bytes_split(arch, fmt, chunk)
    expert_b = expert_b * ep_expert_bytes_factor(arch, chunk, tp_f, experts_ep)  # the busiest EP GPU's experts
    read = (dense_b / dense_gpus + expert_b / tp_f) if attn_dp else (dense_b + expert_b) / tp_f
    memory = read / (np.asarray(memory_bandwidth_tb_s, dtype=float) * units.TB)
    # comm_terms under attention DP takes the group's tokens and sends each GPU's 1/tp: the prompt's GPU sends all n
    transfer, calls = comm_terms(arch, n * tp_f if attn_dp else n, tp=tp_f, pp=pp_f,
                                  link_gb_s=interconnect_bandwidth_gb_s, expert_parallel=experts_ep, attn_dp=attn_dp)
    dense_flops = dense_gemm_flops_per_token(arch, fmt)
    if attn_dp:
        gemm_flops = (dense_flops * n / (gpu_flops * dense_gpus)
                      + 2.0 * arch.active_routed_params * n / (gpu_flops * tp_f))
    else:
        gemm_flops = gemm_flops_per_token(arch, fmt) * n / (gpu_flops * tp_f)
    bmm = np.asarray(fmt.attn_bmm_slowdown, dtype=float)  # attention BMMs never at an FP4 rate
    act = activation_bytes_per_token(arch, fmt, tp=tp_f, pp=1.0, expert_parallel=experts_ep, attn_dp=attn_dp,
                                     prompt_on_one_gpu=True)  # all stages in turn: every layer
    return PrefillTerms(compute_s=gemm_flops,
                        attn_s=bmm * n * attention_flops_per_token(arch, n / 2.0, prefill=True)
                        / (gpu_flops * dense_gpus),
                        memory_s=memory, transfer_s=pp_f * transfer, collectives=pp_f * calls,
                        expert_calls=pp_f * expert_calls(arch, np.minimum(n, chunk), tp=tp_f, pp=pp_f,
                                                         expert_parallel=experts_ep),
                        steps=steps, layers=np.full(np.shape(n), float(arch.n_layers)),
                        launches=host_launches(arch, fmt) + pp_f * calls + 0.0 * n,
                        act_s=n * act / (np.asarray(memory_bandwidth_tb_s, dtype=float) * units.TB))


def _check_parallel(tp: int, pp: int) -> None:
    require_positive_int(tp=tp, pp=pp)


def _require_positive_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr <= 0):
        raise InvalidInputError(f"{name} must be finite and > 0, got {value!r}")
    return arr


def _hw_kwargs(hw: Hardware) -> dict[str, float]:
    return dict(memory_bandwidth_tb_s=hw.memory_bandwidth_tb_s, compute_tflops=hw.compute_tflops,
                interconnect_bandwidth_gb_s=hw.interconnect_bandwidth_gb_s)


