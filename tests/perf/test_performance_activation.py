"""Activation traffic: the memory-bound elementwise kernels between the GEMMs (fused add + RMSNorm + quantize,
the query RoPE pass, SwiGLU + quantize, MoE input quantize and finalize) as their own roofline term, added to a
step's weights, KV and compute (`step_work.activation_bytes_per_token`, docs/performance.md "Activation traffic")."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import TINY_DENSE, TINY_MOE

from planner.model.architecture import architecture_from_config
from planner.model.quantization import WeightFormat
from planner.perf.performance import Efficiency, Hardware, decode_terms, prefill_terms
from planner.perf.serving import prefill_time_s
from planner.perf.step_work import activation_bytes_per_token

BF16 = WeightFormat("bf16", 2.0, 2.0, 2.0, "bf16", True)
W4A4 = WeightFormat("nvfp4", 0.5625, 0.5625, 2.0, "fp4", True, activation_bytes_per_elem=0.5625)
PERFECT = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                     comm_latency_s=0.0)
HW = Hardware(memory_bandwidth_tb_s=1.0, compute_tflops=100.0, interconnect_bandwidth_gb_s=100.0)
# TINY_DENSE (h = 1,024, 2 layers, MLP width 4,096): norms, RoPE pass and MLP width per token
NORM_ELEMS = 2 * 1024 * 2  # two norms per layer x h x 2 layers
ROPE_B = 2 * 2 * 1024 * 2  # read + write the queries in BF16, 2 attention layers: 8,192
MLP_WIDTH = (34_583_552 - 1_024_000 - 2 * 1024 ** 2 * 2) / (3 * 1024)  # 9,559 (K/V projections count as MLP)


def test_dense_bytes_by_activation_format():
    arch = architecture_from_config(TINY_DENSE)
    bf16 = activation_bytes_per_token(arch, BF16, tp=1, pp=1, expert_parallel=False)
    # BF16: norms (3 x 2 + 2) B per element, SwiGLU (2 x 2 + 2) B per MLP width element
    assert float(bf16) == pytest.approx(8 * NORM_ELEMS + ROPE_B + 6 * MLP_WIDTH)  # 98,314
    fp4 = activation_bytes_per_token(arch, W4A4, tp=1, pp=1, expert_parallel=False)
    # NVFP4: the normed and the SwiGLU outputs are written at 0.5625 B: 6.5625 x 4,096 + 8,192 + 4.5625 x 9,559
    assert float(fp4) == pytest.approx(6.5625 * NORM_ELEMS + ROPE_B + 4.5625 * MLP_WIDTH)  # 78,684.9
    assert fp4 < bf16


def test_tensor_parallel_replicates_the_norms_attention_dp_splits_everything():
    arch = architecture_from_config(TINY_DENSE)
    kw = dict(pp=1, expert_parallel=False)
    one = float(activation_bytes_per_token(arch, BF16, tp=1, **kw))
    two = float(activation_bytes_per_token(arch, BF16, tp=2, **kw))
    # every TP rank runs the norms of every token; RoPE and SwiGLU are split over the heads / the MLP width
    assert two == pytest.approx(8 * NORM_ELEMS + (ROPE_B + 6 * MLP_WIDTH) / 2)
    adp = float(activation_bytes_per_token(arch, BF16, tp=2, attn_dp=True, **kw))
    assert adp == pytest.approx(one / 2)  # each rank runs its own half of the tokens
    prompt = float(activation_bytes_per_token(arch, BF16, tp=2, attn_dp=True, prompt_on_one_gpu=True, **kw))
    assert prompt == pytest.approx(one)  # a dense model's prompt runs whole on one rank
    stage = float(activation_bytes_per_token(arch, BF16, tp=1, pp=2, expert_parallel=False))
    assert stage == pytest.approx(one / 2)  # a stage holds half the layers


def test_moe_routed_width_and_finalize_split_by_expert_parallelism():
    arch = architecture_from_config(TINY_MOE)  # 2 layers, 8 experts of 3 x 1,024 x 512, top-2
    norms_rope = 8 * NORM_ELEMS + ROPE_B
    dense = 6 * (6_288_384 - 1_024_000 - 2 * 1024 ** 2 * 2) / (3 * 1024)  # attention K/V + router + norms: 2,090
    routed = 6 * 2 * 2 * 512  # SwiGLU of top-2 experts of width 512, 2 layers: 12,288
    finalize = 2 * (2 * 2 + 2 + 2 * 2) * 1024  # per MoE layer: quantize the input, sum the top-2 outputs: 20,480
    tp_moe = activation_bytes_per_token(arch, BF16, tp=2, pp=1, expert_parallel=False)
    assert float(tp_moe) == pytest.approx(norms_rope - ROPE_B / 2 + (dense + routed) / 2 + finalize)
    ep_moe = activation_bytes_per_token(arch, BF16, tp=2, pp=1, expert_parallel=True)
    assert float(ep_moe) == pytest.approx(norms_rope - ROPE_B / 2 + (dense + routed) / 2 + finalize / 2)


def test_decode_and_prefill_terms_carry_it_at_the_bandwidth_efficiency():
    arch = architecture_from_config(TINY_DENSE)
    kw = dict(kv_bytes_per_elem=2, tp=1, pp=1, memory_bandwidth_tb_s=1.0, compute_tflops=100.0,
              interconnect_bandwidth_gb_s=100.0)
    per_token = 8 * NORM_ELEMS + ROPE_B + 6 * MLP_WIDTH
    step = decode_terms(arch, BF16, batch=64, context_tokens=0, prefill_tokens=512, prefill_chunk_tokens=512, **kw)
    assert float(step.memory_act_s) == pytest.approx(64 * per_token / 1e12)
    assert float(step.memory_act_chunk_s) == pytest.approx(512 * per_token / 1e12)
    pre = prefill_terms(arch, BF16, prompt_tokens=1000, tp=1, pp=1, memory_bandwidth_tb_s=1.0,
                        compute_tflops=100.0, interconnect_bandwidth_gb_s=100.0)
    assert float(pre.act_s) == pytest.approx(1000 * per_token / 1e12)
    # the term is additive (its own kernels) and runs at mbu: halving mbu adds its time once more (the prompt's
    # compute-bound GEMMs hide the weights at either mbu: 2 x 34.6M x 1,000 / 1e14 = 0.69 ms > 2 x 69 us)
    half = Efficiency(mbu_frac=0.5, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                      comm_latency_s=0.0)
    assert float(pre.total_s(half) - pre.total_s(PERFECT)) == pytest.approx(float(pre.act_s))
    t = prefill_time_s(arch, BF16, prompt_tokens=1000, tp=1, pp=1, hw=HW, eff=PERFECT)
    assert float(t) == pytest.approx(float(pre.total_s(PERFECT)))


def test_the_sweep_carries_each_candidates_activation_format(real_catalog):
    """evaluator.step_time_fn stacks candidates into one 'mixed' WeightFormat: each keeps its own activation
    bytes (NVFP4 on B200 0.5625, FP8 1), so its step equals decode_terms on the candidate's own format."""
    import numpy as np

    from planner.perf import evaluator

    model = real_catalog.model("llama-3.1-8b")
    gpu = real_catalog.gpu("B200")
    kw = dict(gpus=[gpu], kv_dtypes=[None], gpu_counts=[1], engines=[real_catalog.engine("trtllm")])
    cands = [evaluator.candidates(real_catalog, model.arch, model.native_precision,
                                  precisions=[real_catalog.precision(p)], **kw)[0] for p in ("nvfp4", "fp8")]
    assert [c.fmt.activation_bytes_per_elem for c in cands] == [0.5625, 1.0]
    batch, prompt = np.array([512.0, 512.0]), np.array([4096.0, 4096.0])
    got = evaluator.step_time_fn(model.arch, cands, input_tokens=1024, output_tokens=256)(batch, prompt)
    for i, c in enumerate(cands):
        eff = evaluator.efficiency_of(c.profile, evaluator.gemm_format_of(c))
        terms = decode_terms(model.arch, c.fmt, batch=512.0, context_tokens=1024 + 128,
                             kv_bytes_per_elem=c.kv.bytes_per_elem, tp=1, pp=1,
                             memory_bandwidth_tb_s=gpu.memory_bandwidth_tb_s, compute_tflops=evaluator.tflops_of(c),
                             interconnect_bandwidth_gb_s=gpu.interconnect_bandwidth_gb_s, prefill_tokens=4096.0,
                             prefill_context_tokens=512.0)
        # TensorRT-LLM's current release graphs no context step: the step's kernels all launch from the host
        terms = dataclasses.replace(terms, eager_launches_chunk=terms.launches)
        assert float(got[i]) == pytest.approx(float(terms.total_s(eff)), rel=1e-9)
