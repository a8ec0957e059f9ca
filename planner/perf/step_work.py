"""What one forward step moves and computes: weight bytes (dense and touched experts), expert GEMM
calls, attention FLOPs and tensor-/expert-parallel collectives. Pure functions of the architecture,
broadcasting over numpy arrays; `performance` turns them into roofline times.

[1] R. Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102.
[2] R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of Collective Communication Operations in MPICH",
    IJHPCA 19(1), 2005 (ring algorithms: p-1 steps per reduce-scatter or all-gather, each paying the latency).
[3] vLLM `fused_moe` (vllm/model_executor/layers/fused_moe), SGLang `fused_moe_triton`, TensorRT-LLM
    `CutlassFusedMoE`: one grouped GEMM per MoE layer over all routed (token, expert) pairs.
[4] SGLang PR #2904 "optimize custom allreduce kernel" (github.com/sgl-project/sglang/pull/2904, 2025-01), unit
    test on H100: custom all-reduce 3.7 / 4.8 / 5.9 us at TP 2 / 4 / 8 for small messages, vLLM's 9.5 / 9.1 /
    10.1 us; at the largest size 19.9 / 31.1 / 33.8 us, growing as 2 (tp-1)/tp. vLLM PR #2192 (custom all-reduce
    kernels, 2023-12): one-shot / two-shot kernels over NVLink peer memory replace NCCL's ring for decode-sized
    messages.
[5] Attention data parallelism with expert parallelism for MoE serving: SGLang `--enable-dp-attention`
    (docs.sglang.ai server arguments), vLLM `--data-parallel-size N --enable-expert-parallel`
    (docs.vllm.ai serving/data_parallel_deployment), TensorRT-LLM `enable_attention_dp` (LLM API options).
[6] Large-message NCCL bandwidth on NVLink: S. Jeaugey (NCCL), github.com/NVIDIA/nccl-tests/issues/212
    (2024-05-06): 450 GB/s line rate, ~20 % protocol overhead, ~370 GB/s bus bandwidth for non-all-reduce
    collectives and ring all-reduce on H100; github.com/NVIDIA/nccl/issues/1455 (2024-09-19): ring all-reduce
    365-370 GB/s on 2-8 H100 SXM. Both in data/collectives.csv with the other sourced measurements.
[11] B. Ma, J. Eitzinger, H. Koestler, G. Wellein, "Diagnosing Overhead in Dispatch Operations: Cross-architecture
    Observatory" (DODOCO), arXiv:2605.20982, 2026-05: routing Gini of the per-expert token counts of five MoE
    checkpoints on H100 (DeepSeek-V2-Lite MLA, DeepSeek-MoE-16B MHA, Qwen3-30B GQA, Nemotron-30B Mamba-2,
    Qwen3.5-35B GDN): 0.105 (MHA) and 0.150 (Mamba-2) on wikitext, above 0.24 on every real-text condition for
    MLA and GDN, 0.29-0.38 on mock (random-id) tokens; GQA in between.
[12] Expert parallelism inside a tensor-parallel group (no attention DP) all-reduces, never all-to-alls: vLLM
     vllm/model_executor/layers/fused_moe/config.py, FusedMoEParallelConfig.use_all2all_kernels = dp_size > 1 and
     use_ep (TP + EP has dp_size 1); SGLang python/sglang/srt/layers/moe/fused_moe_triton/layer.py,
     FusedMoE.forward_impl: the standard dispatcher (no --moe-a2a-backend) keeps the replicated tokens and
     `if self.reduce_results and (self.moe_tp_size > 1 or self.moe_ep_size > 1)` all-reduces the output;
     TensorRT-LLM tensorrt_llm/_torch/modules/fused_moe, select_alltoall_method_type: `if not
     mapping.enable_attention_dp: return AlltoallMethodType.NotEnabled`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from planner import units
from planner.errors import InvalidInputError
from planner.model.architecture import Architecture
from planner.model.quantization import WeightFormat

ACTIVATION_BYTES = 2  # bf16 activations on the wire for all-reduce and all-to-all
ALLREDUCES_PER_LAYER = 2  # Megatron-style TP: one after attention, one after the MLP [1]
ALLTOALLS_PER_MOE_LAYER = 2  # expert parallelism: dispatch and combine
COMM_LARGE_MESSAGE_BW_FRAC = 0.82  # achieved / line-rate bandwidth of a large NVLink collective (ring all-reduce,
# all-to-all, send/receive): 370 / 450 GB/s on H100 [6]; the median of the rows of data/collectives.csv marked
# used (tests/perf/test_step_work_collectives.py checks it). NVLink-SHARP all-reduce (480 GB/s bus bandwidth at 8
# GPUs) and B200's 830 of 900 are listed there too; one value serves every GPU class (docs/performance.md,
# "Collectives")
ROUTING_GINI = 0.24  # Gini coefficient of the routers' per-expert load: the middle of the 0.105-0.38 measured over
# five MoE architectures on real and mock tokens [11] (not fitted); 0 is uniform routing


@lru_cache(maxsize=256)
def routing_probs(n_experts: int, top_k: int, gini: float = ROUTING_GINI) -> np.ndarray:
    """Probability that one token is routed to each expert (n_experts values summing to top_k, each <= 1) when the
    experts' load has Gini coefficient `gini` (clamped to the most that top_k of n_experts admits).

    Trained routers do not spread tokens uniformly: the per-expert token counts of five MoE checkpoints have a Gini
    coefficient of 0.1-0.38 [11]. The load is taken as a power law over the experts' popularity rank, p_i = top_k w_i
    with w_i ~ i^-a (the form of aiconfigurator's measured MoE workloads, its `power_law` distribution), each p_i
    capped at 1 (a token picks an expert at most once) with the excess spread over the rest in proportion; the
    exponent a is solved (bisection) so that the Gini of p is `gini`. gini = 0 gives the uniform k / E.
    """
    if n_experts < 1 or top_k < 1 or top_k > n_experts or not 0.0 <= gini < 1.0:
        raise InvalidInputError(f"routing_probs needs 1 <= top_k <= n_experts and gini in [0, 1), got "
                                f"n_experts={n_experts}, top_k={top_k}, gini={gini}")
    rank = np.arange(1, n_experts + 1, dtype=float)

    def probs(a: float) -> np.ndarray:
        w = rank ** -a
        p = top_k * w / w.sum()
        for _ in range(n_experts):  # water-filling: cap at 1, hand the excess to the uncapped in proportion
            over = p > 1.0
            if not over.any():
                break
            excess = float((p[over] - 1.0).sum())
            p[over] = 1.0
            free = p < 1.0
            p[free] += excess * p[free] / p[free].sum()
        return np.minimum(p, 1.0)

    def gini_of(p: np.ndarray) -> float:
        x = np.sort(p)
        n = len(x)
        return float(2.0 * (np.arange(1, n + 1) * x).sum() / (n * x.sum()) - (n + 1.0) / n)

    lo, hi = 0.0, 8.0
    if gini <= 0.0:
        hi = 0.0
    elif gini_of(probs(hi)) > gini:
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if gini_of(probs(mid)) < gini else (lo, mid)
    out = probs(hi)
    out.setflags(write=False)  # cached: shared by every caller
    return out


TOUCHED_TOKEN_NODES = np.union1d(np.geomspace(1e-6, 1e7, 3000), np.arange(1.0, 257.0))  # tokens at which
# experts_touched is tabulated: 1 % apart, and every integer to 256


@lru_cache(maxsize=256)
def _touched_table(n_experts: int, top_k: int, gini: float) -> np.ndarray:
    p = routing_probs(n_experts, top_k, gini)
    table = (1.0 - (1.0 - p)[None, :] ** TOUCHED_TOKEN_NODES[:, None]).sum(axis=-1)
    table.setflags(write=False)
    return table


def experts_touched(n_experts: int, top_k: int, tokens: Any, gini: float = ROUTING_GINI) -> Any:
    """Expected distinct experts one MoE layer reads for `tokens` tokens routed independently with the load of
    `routing_probs`: sum_i 1 - (1 - p_i)^tokens. top_k at one token, n_experts for many; fewer than uniform routing
    (`architecture.expected_experts_touched`, the gini = 0 case) in between: DeepSeek-R1 (256 experts, top-8) at 32
    tokens 163.3 uniform, 152.9 at gini 0.24. Broadcasts over `tokens`.

    The sum is tabulated once per (experts, top-k, gini) at TOUCHED_TOKEN_NODES and interpolated linearly in
    log(tokens): exact at integer token counts up to 256, within 1e-4 relative elsewhere, so a search's step function
    (thousands of candidates, called in every queueing iteration) costs an interpolation, not n_experts powers a value.
    Below the first node (1e-6 tokens) it goes linearly to 0.
    """
    t = np.maximum(np.asarray(tokens, dtype=float), 0.0)
    table = _touched_table(n_experts, top_k, float(gini))
    first = TOUCHED_TOKEN_NODES[0]
    at = np.interp(np.log(np.maximum(t, first)), np.log(TOUCHED_TOKEN_NODES), table)
    return np.where(t < first, table[0] * t / first, at)


def weight_bytes_split(arch: Architecture, fmt: WeightFormat, tokens: Any) -> tuple[Any, Any]:
    """(dense, routed-expert) weight bytes one forward step streams for `tokens` tokens (whole replica).

    Dense parts once per step; each MoE layer the experts its tokens touch under the routers' measured load
    imbalance (`experts_touched`). Broadcasts over `tokens`.
    """
    dense = ((arch.always_read_params - arch.lm_head_params) * fmt.dense_bytes_per_param
             + arch.mla_latent_proj_params * fmt.mla_proj_extra_bytes_per_param()
             + arch.head_gemm_params * fmt.embed_bytes_per_param)  # a tied head reads the embedding matrix
    shape = np.broadcast_shapes(np.shape(tokens), np.shape(dense), np.shape(fmt.expert_bytes_per_param))
    experts = np.zeros(shape, dtype=float)
    for g in arch.moe_groups:
        touched = experts_touched(g.n_experts, g.top_k, np.maximum(tokens, 1e-9))
        experts = experts + g.n_layers * g.params_per_expert * fmt.expert_bytes_per_param * touched
    return np.broadcast_to(np.asarray(dense, dtype=float), shape).copy(), experts


def expert_calls(arch: Architecture, tokens: Any, *, tp: Any, pp: Any, expert_parallel: bool) -> Any:
    """Routed-expert GEMM slots one GPU of one pipeline stage pays a fixed cost for in a step of `tokens` tokens:
    top-k per MoE layer, whatever the batch.

    Current engines run each MoE layer's routed experts as one fused grouped GEMM (vLLM fused_moe,
    SGLang and TensorRT-LLM CUTLASS/DeepGEMM MoE kernels [3]): its fixed cost (routing, token
    sort/align, the launch, the tail of a partly filled wave of tiles) scales with the experts one
    token is routed to, and does not grow as a larger batch touches more experts; the extra experts
    cost their weight bytes, counted in `weight_bytes_split`. Measured on 2025-H2/2026 builds
    (InferenceX, GPUStack, TensorRT-LLM #5929: docs/performance.md section 4) the per-touched-expert
    form over-charged concurrency 8-128 by 1.5-3x, while early-2025 builds did pay per touched expert.
    At batch 1 the two forms are the same (a token touches top-k experts). `tokens` only sets the shape.
    Under tensor parallelism every GPU runs a slice of every routed expert; under expert parallelism the
    experts are spread over the tp GPUs and the busiest GPU holds more than the mean top-k / tp of a token's
    experts (`busiest_rank_slots`: 2.4 of DeepSeek-R1's 8 at EP8, not 1).
    """
    tp = np.asarray(tp, dtype=float)
    slots = np.zeros(np.broadcast_shapes(np.shape(tokens), np.shape(tp)), dtype=float)
    for g in arch.moe_groups:
        per_layer = busiest_rank_slots(g.top_k, tp) if expert_parallel else float(g.top_k)
        slots = slots + g.n_layers * per_layer
    return slots / np.asarray(pp, dtype=float)


# E[max of n standard normals] for n = 1..16 (Tippett 1925; Harter, Biometrika 48, 1961, table of expected normal
# order statistics): the busiest of n GPUs' share above the mean, in standard deviations
_NORMAL_MAX = np.array([0.0, 0.0, 0.5642, 0.8463, 1.0294, 1.1630, 1.2672, 1.3522, 1.4236, 1.4850, 1.5388, 1.5864,
                        1.6292, 1.6680, 1.7034, 1.7359, 1.7660])


def ep_expert_bytes_factor(arch: Architecture, tokens: Any, tp: Any, expert_parallel: bool) -> Any:
    """The busiest expert-parallel GPU's routed-expert weight bytes over the mean (1 without expert parallelism).

    Under expert parallelism each of the tp GPUs holds E / tp experts and reads only those the step's tokens touch;
    the step waits for the GPU that touches most. A GPU's touched count is a sum of E / tp draws, each touched with
    p = 1 - (1 - k / E)^tokens (uniform routing, as `expected_experts_touched`): mean mu = E / tp x p, standard
    deviation sigma = sqrt(E / tp x p (1 - p)), and the busiest of tp such GPUs touches about mu + z_tp sigma (z_tp
    the expected maximum of tp standard normals), at most E / tp. DeepSeek-R1 (256 experts, top-8) at EP8: one
    token, mu = 1, sigma = 0.98, z_8 = 1.42, 2.4 experts on the busiest GPU (2.4x the mean); 64 tokens, mu = 27.8,
    sigma = 1.9, 1.10x. Under tensor parallelism every GPU reads 1/tp of every touched expert: 1.
    """
    tp = np.asarray(tp, dtype=float)
    shape = np.broadcast_shapes(np.shape(tokens), np.shape(tp))
    if not expert_parallel or not arch.moe_groups:
        return np.ones(shape)
    t = np.maximum(np.asarray(tokens, dtype=float), 1e-9)
    z = _NORMAL_MAX[np.clip(tp, 1, len(_NORMAL_MAX) - 1).astype(int)]
    num = np.zeros(shape)
    den = np.zeros(shape)
    for g in arch.moe_groups:
        local = g.n_experts / tp
        p = 1.0 - (1.0 - min(g.top_k / g.n_experts, 1.0)) ** t
        mu = local * p
        busiest = np.minimum(local, mu + z * np.sqrt(local * p * (1.0 - p)))
        weight = g.n_layers * g.params_per_expert
        num = num + weight * busiest
        den = den + weight * mu
    return np.where(tp > 1, num / np.maximum(den, 1e-300), 1.0)


def busiest_rank_slots(top_k: int, tp: Any) -> Any:
    """Expected number of a token's `top_k` routed experts held by the busiest of `tp` expert-parallel GPUs.

    A token's experts are spread over the GPUs uniformly at random (each GPU holds 1/tp of them), and a layer's
    step lasts as long as its busiest GPU's grouped GEMM: E[max of a multinomial(top_k, tp equal cells)] rather
    than the mean top_k / tp. P(max <= m) = top_k! / tp^top_k x [x^top_k] (sum_{j <= m} x^j / j!)^tp. E.g.
    top-2 over 2 GPUs: both on one GPU with probability 1/2, so 1/2 x 2 + 1/2 x 1 = 1.5 (the mean is 1); top-k
    on one GPU: top_k. Broadcasts over `tp` (whole GPU counts).
    """
    tp = np.asarray(tp, dtype=float)
    out = np.empty(np.shape(tp), dtype=float)
    for value in np.unique(tp):
        out[tp == value] = _expected_max_cell(int(top_k), int(value))
    return out if out.shape else float(out)


@lru_cache(maxsize=256)
def _expected_max_cell(balls: int, cells: int) -> float:
    """E[max cell count] of `balls` balls thrown uniformly into `cells` cells (`busiest_rank_slots`)."""
    if cells <= 1 or balls <= 0:
        return float(max(balls, 0))
    fact = [math.factorial(j) for j in range(balls + 1)]
    below = 0.0  # sum over m of P(max > m) = E[max]
    for m in range(balls):
        poly = np.zeros(balls + 1)
        poly[0] = 1.0
        cell = np.array([1.0 / fact[j] if j <= m else 0.0 for j in range(balls + 1)])
        for _ in range(cells):
            poly = np.convolve(poly, cell)[:balls + 1]
        below += 1.0 - fact[balls] * poly[balls] / cells ** balls
    return below


def weight_bytes_read(arch: Architecture, fmt: WeightFormat, tokens: Any) -> Any:
    """Weight bytes one forward step streams for `tokens` tokens (whole replica): dense + touched experts."""
    dense, experts = weight_bytes_split(arch, fmt, tokens)
    return dense + experts


def gemm_flops_per_token(arch: Architecture, fmt: WeightFormat) -> Any:
    """GEMM FLOPs of one token through the replica in `fmt`'s rate units: 2 x active params, with the MLA latent
    projections a checkpoint keeps in BF16 counted `fmt.mla_proj_slowdown` times (they run at the BF16 rate), and
    the non-expert weights of an experts-only checkpoint (gpt-oss) `fmt.dense_gemm_slowdown` times."""
    slow = np.asarray(fmt.mla_proj_slowdown, dtype=float)
    dense_slow = np.asarray(fmt.dense_gemm_slowdown, dtype=float)
    return 2.0 * (arch.active_compute_params + arch.mla_latent_proj_params * (slow - 1.0)
                  + (arch.always_read_params + arch.tied_head_params) * (dense_slow - 1.0))


def dense_gemm_flops_per_token(arch: Architecture, fmt: WeightFormat) -> Any:
    """The non-expert part of `gemm_flops_per_token` (attention projections, dense MLP, shared experts, LM head)."""
    slow = np.asarray(fmt.mla_proj_slowdown, dtype=float)
    dense_slow = np.asarray(fmt.dense_gemm_slowdown, dtype=float)
    return 2.0 * ((arch.always_read_params + arch.tied_head_params) * dense_slow
                  + arch.mla_latent_proj_params * (slow - 1.0))


def attention_flops_per_token(arch: Architecture, context_tokens: Any, *, prefill: bool) -> Any:
    """Attention FLOPs for one query token attending to `context_tokens` cached tokens.

    Full-attention layers see the whole context (capped by sparse attention's top-k);
    sliding-window and chunked layers at most their window; recurrent layers a fixed cost.
    """
    ctx = np.asarray(context_tokens, dtype=float)
    capped = np.minimum(ctx, arch.attn_ctx_cap_tokens) if arch.attn_ctx_cap_tokens else ctx
    per_ctx = arch.prefill_attn_flops_per_ctx_token_full if prefill else arch.attn_flops_per_ctx_token_full
    flops = per_ctx * capped + arch.fixed_flops_per_token
    for g in arch.window_groups:
        flops = flops + g.attn_flops_per_ctx_token * np.minimum(ctx, g.window_tokens)
    return flops


def comm_terms(arch: Architecture, tokens: Any, *, tp: Any, pp: Any, link_gb_s: Any,
                expert_parallel: bool, attn_dp: bool = False) -> tuple[Any, Any]:
    """(transfer seconds at full link speed, collective calls) of one stage's collectives in a step.

    Each collective costs latency + bytes / achieved bandwidth (the alpha-beta model [2]; the achieved share of
    the link grows with the message size, `performance.collective_transfer_s`). The bytes a GPU puts on its
    link: a ring (or two-shot) all-reduce 2 (tp-1)/tp of the activations, an all-to-all (tp-1)/tp of each
    token's top-k expert inputs, a pipeline send the whole activations of the micro-batch to the next stage
    ((pp-1)/pp of a send per stage step: the last stage sends none). The latency is paid once per call
    (`comm_latency` per collective). Current engines run decode-sized all-reduces as one-shot / two-shot
    kernels over NVLink peer memory (vLLM, SGLang and TensorRT-LLM custom all-reduce [4]) whose fixed cost is
    nearly flat in the group size (3.7-5.9 us at TP 2-8 on H100), not NCCL's ring, whose 2 (tp-1) steps each
    pay a latency: charging per ring step made a TP8 step of DeepSeek-R1 on B200 pay 10 ms of latency, more
    than its measured 8.7 ms TPOT. A one-shot all-reduce reads all tp-1 peers' whole buffers, (tp-1) x the
    activations, 4x the ring bytes counted here at TP8: that, and the latency-bound protocols, is why a
    small message reaches a small share of the link (`Efficiency.comm_bw_frac`). All vanish at tp = pp = 1.

    `attn_dp` (attention data-parallel over the tp group, `evaluator.Layout.attn_dp`; experts expert-parallel):
    every GPU runs attention and the dense parts for its own 1/tp of the `tokens` with whole weights, so
    there is no all-reduce; each MoE layer dispatches each of the GPU's own tokens to its top-k experts'
    GPUs and combines them back: (tp-1)/tp of tokens/tp x top-k activations per GPU per all-to-all [5].

    `expert_parallel` without `attn_dp` (experts spread over a tensor-parallel group) runs no all-to-all: every
    GPU already holds every token's activations (attention is tensor parallel), runs the experts it holds on
    the tokens routed to them and the MoE layer's partial outputs are summed by the all-reduce a TP MoE layer
    pays anyway [12]. Its collectives are those of tensor parallelism.
    """
    tp = np.asarray(tp, dtype=float)
    pp = np.asarray(pp, dtype=float)
    layers_per_stage = arch.n_layers / pp
    link_bytes_per_s = np.asarray(link_gb_s, dtype=float) * units.GB
    multi = tp > 1
    reduce = multi & (not attn_dp)
    ring_bytes = 2.0 * (tp - 1) / tp * tokens * arch.hidden_size * ACTIVATION_BYTES
    transfer = np.where(reduce, ALLREDUCES_PER_LAYER * layers_per_stage * ring_bytes / link_bytes_per_s, 0.0)
    calls = np.where(reduce, ALLREDUCES_PER_LAYER * layers_per_stage, 0.0)
    if attn_dp and arch.moe_groups:  # plain TP + EP: no all-to-all (docstring, [12])
        moe_layers = sum(g.n_layers for g in arch.moe_groups) / pp
        top_k = max(g.top_k for g in arch.moe_groups)
        a2a_bytes = (tp - 1) / tp * tokens / tp * top_k * arch.hidden_size * ACTIVATION_BYTES  # its own 1/tp
        transfer = transfer + np.where(multi, ALLTOALLS_PER_MOE_LAYER * moe_layers * a2a_bytes / link_bytes_per_s,
                                       0.0)
        calls = calls + np.where(multi, ALLTOALLS_PER_MOE_LAYER * moe_layers, 0.0)
    # pipeline send: the stage's output activations to the next stage (under tensor parallelism each GPU sends its
    # copy to its peer; under attention DP its own 1/tp of the tokens)
    if np.any(pp > 1):
        sends = (pp - 1) / pp
        send_bytes = (tokens / tp if attn_dp else tokens) * arch.hidden_size * ACTIVATION_BYTES
        transfer = transfer + sends * send_bytes / link_bytes_per_s
        calls = calls + sends
    return transfer, calls


def kv_split(n_kv_heads: int, tp: Any, attn_dp: bool = False) -> Any:
    """Ways the tp group splits the KV cache: min(tp, kv_heads) under tensor parallelism (1 for MLA's single
    latent, replicated on every rank); tp under attention data parallelism (each GPU holds the whole KV of
    its own 1/tp of the sequences)."""
    tp = np.asarray(tp, dtype=float)
    return tp if attn_dp else np.minimum(tp, float(n_kv_heads))


def attn_dp_rank_load(seqs: Any, tp: Any, attn_dp: bool) -> Any:
    """The busiest rank's share of a batch of `seqs` sequences under attention data parallelism, relative to the
    mean share seqs / tp (1 without attention DP, or at any batch of at least tp sequences).

    Each rank runs whole sequences, and every MoE layer's all-to-all waits for the slowest rank, so a batch
    smaller than the group leaves ranks idle while one runs a whole sequence: max(seqs / tp, min(seqs, 1)) on
    the busiest rank (engines hand each new request to the least-loaded rank, so at most one per rank until all
    have one: SGLang's DP-attention round-robin / shortest-queue dispatch, TensorRT-LLM's attention-DP
    balancing of context requests across ranks).
    """
    tp = np.asarray(tp, dtype=float)
    n = np.maximum(np.asarray(seqs, dtype=float), 1e-12)
    if not attn_dp:
        return np.ones(np.broadcast_shapes(np.shape(tp), np.shape(n)))
    mean = n / tp
    return np.maximum(mean, np.minimum(n, 1.0)) / mean


def dense_split(tp: Any, attn_dp: bool = False) -> Any:
    """Ways the tp group splits the non-expert weights (attention, dense MLP, shared experts, router, norms,
    embeddings, LM head): tp under tensor parallelism, 1 under attention data parallelism (each GPU holds them
    whole and runs them for its own tokens)."""
    tp = np.asarray(tp, dtype=float)
    return np.ones_like(tp) if attn_dp else tp


NORMS_PER_LAYER = 2  # pre-attention and pre-MLP RMSNorm, each fused with the residual add before it [7]


def activation_bytes_per_token(arch: Architecture, fmt: WeightFormat, *, tp: Any, pp: Any, expert_parallel: bool,
                               attn_dp: bool = False, prompt_on_one_gpu: bool = False) -> Any:
    """Bytes one GPU of one pipeline stage reads and writes per token of the step in the memory-bound elementwise
    kernels that run between the GEMMs (`tokens` of the tp group; see docs/performance.md, "Activation traffic").

    A GEMM reads its input and writes its output inside its own kernel, overlapped with its math (counted in its
    roofline). What sits between two GEMMs is a separate kernel that streams the activations once, at memory
    speed, whatever the GEMM rate. Per token, with A = 2 bytes (BF16 activations and residual stream), q =
    `fmt.activation_bytes_per_elem` (what the next GEMM reads: 0.5625 NVFP4, 1 FP8, 2 BF16) and h the hidden size:

    - two fused residual-add + RMSNorm + quantize kernels per layer [7]: read the residual and the sublayer's
      output, write the new residual and the quantized normed input of the next GEMM: (3 A + q) h each;
    - the attention's QKV preprocessing (RoPE, KV-cache write) before the attention kernel [8]: read and write
      the queries, 2 A h per attention layer (the K/V heads and the cache write, small under GQA/MLA, left out);
    - the gated MLP's SwiGLU (+ quantize) kernel [9]: read gate and up (2 A I), write q I, with I the intermediate
      width per token: each routed group's top_k x params_per_expert / (3 h), plus the dense MLP and shared experts,
      taken as the non-expert params less the LM head, the MLA latent projections and 2 h^2 (the query and output
      projections) per attention layer, over 3 h (the K/V projections and the router count as MLP: a few % high);
    - each MoE layer's input quantization (read A h, write q h; the grouped GEMM gathers its top_k rows itself) and
      finalize (read the top_k partial outputs at A, write their weighted sum, A h) [10]: (2 A + q + top_k A) h.

    Under tensor parallelism every rank runs the norms for every token (the activations are replicated after each
    all-reduce) and, without expert parallelism, permutes and finalizes every token's top-k copies of the full
    width; the attention, MLP and expert intermediate widths are split tp ways. Under attention DP each GPU runs
    all of it for its own 1/tp of the tokens (`prompt_on_one_gpu`: a prefill, whose dense parts run whole on one
    GPU, its experts spread over the group). A stage holds 1/pp of the layers.

    [7] TensorRT-LLM `torch.ops.trtllm.fused_add_rms_norm_quant` (thop/fusedAddRMSNormQuant.cpp: residual add +
        RMSNorm + NVFP4 quantization in one kernel, returning the FP4 input of the next GEMM and the updated BF16
        residual), used by `RMSNorm(quantize_type="nvfp4")` in modeling_llama.py; FlashInfer
        `cute_dsl/add_rmsnorm_fp4quant.py` (the same for NVFP4 / MXFP4); vLLM `fused_add_rms_norm` (+ static FP8
        quant). TensorRT-LLM `modules/fused_add_rmsnorm.py` measures its fused add + RMSNorm at 0.228 ms for
        50,000 x 4,096 BF16 tokens: 4 x 0.82 GB at about 7 TB/s, i.e. memory-bound.
    [8] TensorRT-LLM attention op: `invokeQKVPreprocessing` (RoPE, KV-cache append) before the FMHA / XQA kernels.
    [9] TensorRT-LLM `modules/gated_mlp.py`: gate_up GEMM, `swiglu` (FlashInfer silu_and_mul), then the down
        projection's input quantization; `torch.ops.trtllm.moe_swiglu_nvfp4_quantize` fuses SwiGLU and the NVFP4
        quantization for the MoE path.
    [10] vLLM fused_moe (the Triton grouped GEMM reads each token's rows through `sorted_token_ids`, writes its
        top-k outputs to `intermediate_cache3`, summed by `moe_sum`), TensorRT-LLM's CuTe-DSL NVFP4 MoE
        (`cute_dsl_nvfp4_gather_grouped_gemm_*`: the gather fused into the GEMM) and CUTLASS MoE
        (`finalizeMoeRoutingKernel`). A materialized permute (CUTLASS `expandInputRowsKernel`) would add top_k q h
        more; it is left out, the conservative count.
    """
    a = float(ACTIVATION_BYTES)
    q = np.asarray(fmt.activation_bytes_per_elem, dtype=float)
    h = float(arch.hidden_size)
    norms = NORMS_PER_LAYER * (3.0 * a + q) * h * arch.n_layers
    attention = 2.0 * a * h * arch.n_attention_layers
    dense_params = (arch.always_read_params - arch.lm_head_params - arch.mla_latent_proj_params
                    - 2.0 * h * h * arch.n_attention_layers)
    dense_mlp = (2.0 * a + q) * max(dense_params, 0.0) / (3.0 * h)
    routed = np.zeros_like(q)
    moved = np.zeros_like(q)
    for g in arch.moe_groups:
        routed = routed + (2.0 * a + q) * g.n_layers * g.top_k * g.params_per_expert / (3.0 * h)
        moved = moved + g.n_layers * (2.0 * a + q + g.top_k * a) * h
    tp = np.asarray(tp, dtype=float)
    pp = np.asarray(pp, dtype=float)
    if attn_dp:
        dense_ways = 1.0 if prompt_on_one_gpu else tp
        per_gpu = (norms + attention + dense_mlp) / dense_ways + (routed + moved) / tp
    else:
        per_gpu = norms + (attention + dense_mlp + routed) / tp + moved / (tp if expert_parallel else 1.0)
    return per_gpu / pp


def host_launches(arch: Architecture, fmt: WeightFormat) -> Any:
    """Kernels all decoder layers launch in one forward step when the engine runs it from Python without a CUDA
    graph: the architecture's count (`_layers.layer_launches`: attention kind, MLA, qk-norm, MoE routing, shared
    experts) plus the quantize kernels of the GEMMs whose inputs no fused norm or SwiGLU kernel quantizes, where the
    format's GEMMs read quantized activations (`fmt.activation_bytes_per_elem` below 2 bytes: FP8, INT8, FP4)."""
    quantized = np.asarray(fmt.activation_bytes_per_elem, dtype=float) < ACTIVATION_BYTES
    return arch.host_launches + arch.quant_launches * quantized
