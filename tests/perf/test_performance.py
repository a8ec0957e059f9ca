"""Roofline step times: hand-derived goldens, roofline bounds and monotonicity."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_DENSE, TINY_MOE

from planner.errors import InvalidInputError
from planner.model.architecture import architecture_from_config
from planner.model.quantization import WeightFormat
from planner.perf.performance import Efficiency, Hardware
from planner.perf.serving import decode_step, operating_point, prefill_time_s
from planner.perf.step_work import expert_calls, routing_probs

BF16 = WeightFormat("bf16", 2.0, 2.0, 2.0, "bf16", True)
PERFECT = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                     comm_latency_s=0.0)
HW = Hardware(memory_bandwidth_tb_s=1.0, compute_tflops=100.0, interconnect_bandwidth_gb_s=100.0)
# TINY_DENSE's activation traffic per token in BF16 (step_work.activation_bytes_per_token; h = 1,024, 2 layers,
# A = q = 2):
# norms 2 x (3 x 2 + 2) x 1,024 x 2 layers = 32,768; query RoPE pass 2 x 2 x 1,024 x 2 = 8,192; MLP width
# (34,583,552 params - 1,024,000 LM head - 2 x 1,024^2 x 2 layers) / (3 x 1,024) = 9,559, SwiGLU (2 x 2 + 2) x 9,559
# = 57,354: 98,314 B per token, 0.098314 us at 1 TB/s
TINY_DENSE_ACT_B = 32_768 + 8_192 + 57_354


def test_batch1_decode_is_weight_streaming_time():
    arch = architecture_from_config(TINY_DENSE)
    step = decode_step(arch, BF16, batch=1, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)
    # 34,583,552 params * 2 B = 69,167,104 B at 1e12 B/s = 69.167 us, + one token's 98,314 B of activations
    assert float(step.total_s) == pytest.approx(69.265418e-6)
    # FLOPs 2 * 34,583,552 = 69.2 MFLOP at 1e14 -> 0.69 us: memory-bound
    assert float(step.compute_s) == pytest.approx(0.69167104e-6)


def test_kv_read_adds_to_decode():
    arch = architecture_from_config(TINY_DENSE)
    step = decode_step(arch, BF16, batch=1, context_tokens=1000, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW,
                       eff=PERFECT)
    # + 8,192 B/token * 1,000 tokens = 8,192,000 B -> 77,359,104 B, + 98,314 B of activations
    assert float(step.memory_s) == pytest.approx(77.457418e-6)


def test_large_batch_becomes_compute_bound_and_never_beats_roofline():
    arch = architecture_from_config(TINY_DENSE)
    batches = np.array([1, 8, 64, 512, 4096])
    step = decode_step(arch, BF16, batch=batches, context_tokens=10, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW,
                       eff=PERFECT)
    tok_s = batches / step.total_s
    flops_bound = HW.compute_tflops * 1e12 / (2 * arch.active_compute_params)
    assert np.all(tok_s <= flops_bound * (1 + 1e-9))
    assert step.compute_s[-1] > step.memory_s[-1]
    assert np.all(np.diff(tok_s) >= -1e-9 * tok_s[:-1])  # throughput never falls as batch grows


def test_efficiency_slows_down_proportionally():
    arch = architecture_from_config(TINY_DENSE)
    half = Efficiency(mbu_frac=0.5, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                      comm_latency_s=0.0)
    full = decode_step(arch, BF16, batch=1, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)
    slow = decode_step(arch, BF16, batch=1, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=half)
    assert float(slow.total_s) == pytest.approx(2 * float(full.total_s))


def test_more_bandwidth_is_faster():
    arch = architecture_from_config(TINY_MOE)
    fast = Hardware(memory_bandwidth_tb_s=2.0, compute_tflops=100.0, interconnect_bandwidth_gb_s=100.0)
    a = decode_step(arch, BF16, batch=4, context_tokens=500, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)
    b = decode_step(arch, BF16, batch=4, context_tokens=500, kv_bytes_per_elem=2, tp=1, pp=1, hw=fast, eff=PERFECT)
    assert float(b.total_s) < float(a.total_s)


def test_moe_step_reads_more_experts_at_larger_batch():
    arch = architecture_from_config(TINY_MOE)
    s1 = decode_step(arch, BF16, batch=1, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)
    s16 = decode_step(arch, BF16, batch=16, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)
    # batch 1 reads 2 experts per layer, batch 16 sum_i 1 - (1 - p_i)^16 over the 8 experts' routing probabilities
    # at the routers' load Gini (step_work.experts_touched: 7.83; uniform routing 8 (1 - 0.75^16) = 7.92, see
    # tests/perf/test_performance_routing.py); and 15 more tokens' activations:
    # norms 32,768 + RoPE 8,192 + dense width (6,288,384 - 1,024,000 - 4,194,304) / 3,072 x 6 = 2,090 + routed
    # 2 layers x top-2 x 512 x 6 = 12,288 + quantize/finalize 2 layers x (2 x 2 + 2 + 2 x 2) x 1,024 = 20,480
    act_per_token = 32_768 + 8_192 + 2_090 + 12_288 + 20_480
    touched = float(sum(1 - (1 - p) ** 16 for p in routing_probs(8, 2)))
    assert 7.5 < touched < 8 * (1 - 0.75 ** 16)
    extra_bytes = 2 * 1_572_864 * 2 * (touched - 2) + 15 * act_per_token
    assert float(s16.memory_s) - float(s1.memory_s) == pytest.approx(extra_bytes / 1e12, rel=1e-9)


def test_expert_fixed_cost_counts_routed_slots_not_touched_experts():
    """A fused MoE layer pays its fixed cost per routed slot (top-k), at any batch: 2 layers x top-2 = 4 slots;
    expert parallelism over tp = 2 GPUs: the busiest GPU holds both of a token's 2 experts with probability 1/2
    (1/2 x 2 + 1/2 x 1 = 1.5 slots per layer, 3 in all, not the mean 2); pipeline stages split the layers."""
    arch = architecture_from_config(TINY_MOE)
    calls = expert_calls(arch, np.array([1.0, 16.0, 4096.0]), tp=1, pp=1, expert_parallel=False)
    assert calls == pytest.approx([4.0, 4.0, 4.0])
    assert float(expert_calls(arch, 64.0, tp=2, pp=1, expert_parallel=True)) == pytest.approx(3.0)
    assert float(expert_calls(arch, 64.0, tp=2, pp=2, expert_parallel=False)) == pytest.approx(2.0)
    dense = architecture_from_config(TINY_DENSE)
    assert float(expert_calls(dense, 64.0, tp=1, pp=1, expert_parallel=False)) == pytest.approx(0.0)


def test_moe_fixed_cost_does_not_grow_with_batch():
    """With only the per-slot cost switched on, batch 1 and batch 16 pay the same 4 slots x 10 us = 40 us on top
    of the roofline (the extra experts a larger batch touches cost their bytes, not another fixed cost)."""
    arch = architecture_from_config(TINY_MOE)
    slot = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                      comm_latency_s=0.0, expert_overhead_s=10e-6)
    for batch in (1, 16):
        base = decode_step(arch, BF16, batch=batch, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW,
                           eff=PERFECT)
        paid = decode_step(arch, BF16, batch=batch, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW,
                           eff=slot)
        assert float(paid.total_s) - float(base.total_s) == pytest.approx(40e-6, rel=1e-9)


def test_prefill_is_compute_bound_for_long_prompts():
    arch = architecture_from_config(TINY_DENSE)
    t = float(prefill_time_s(arch, BF16, prompt_tokens=4096, tp=1, pp=1, hw=HW, eff=PERFECT))
    # 2 * 34,583,552 * 4,096 = 2.833e11 FLOPs + attention 4,096 * 2,048 * (2 layers * 2 * 8 * 256) = 6.87e10
    expected = (2 * 34_583_552 * 4096 + 4096 * 2048 * 2 * (2 * 8 * (128 + 128))) / 1e14 \
        + 4096 * TINY_DENSE_ACT_B / 1e12  # the prompt's activation traffic, 0.40 ms at 1 TB/s
    assert t == pytest.approx(expected, rel=1e-9)


def test_tensor_parallel_adds_allreduce_but_splits_bytes():
    arch = architecture_from_config(TINY_DENSE)
    one = decode_step(arch, BF16, batch=1, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)
    two = decode_step(arch, BF16, batch=1, context_tokens=0, kv_bytes_per_elem=2, tp=2, pp=1, hw=HW, eff=PERFECT)
    # weights split: 69,167,104 / 2; activations: the norms replicated on both ranks (32,768), RoPE and SwiGLU
    # split ((8,192 + 57,354) / 2 = 32,773)
    assert float(one.memory_s) == pytest.approx((69_167_104 + TINY_DENSE_ACT_B) / 1e12)
    assert float(two.memory_s) == pytest.approx((69_167_104 / 2 + 32_768 + 32_773) / 1e12)
    assert float(two.comm_s) > 0


def test_operating_point_throughput_is_batch_over_tpot():
    arch = architecture_from_config(TINY_DENSE)
    op = operating_point(arch, BF16, concurrency=32, input_tokens=512, output_tokens=128, kv_bytes_per_elem=2,
                         tp=1, pp=1, hw=HW, eff=PERFECT)
    assert float(op.output_tokens_per_s) == pytest.approx(32 / float(op.tpot_s))
    assert float(op.ttft_s) > float(op.tpot_s)


@pytest.mark.parametrize("batch", [0, -1, np.nan, np.inf])
def test_bad_batch(batch):
    arch = architecture_from_config(TINY_DENSE)
    with pytest.raises(InvalidInputError, match="batch"):
        decode_step(arch, BF16, batch=batch, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW, eff=PERFECT)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mbu_frac=0.0), "mbu_frac"), (dict(mbu_frac=1.2), "mbu_frac"), (dict(mfu_decode_frac=np.nan), "mfu"),
    (dict(step_overhead_s=-1.0), "step_overhead_s"),
])
def test_efficiency_validates(kwargs, match):
    base = dict(mbu_frac=0.7, mfu_decode_frac=0.5, mfu_prefill_frac=0.6, step_overhead_s=0.001, comm_latency_s=1e-5)
    with pytest.raises(InvalidInputError, match=match):
        Efficiency(**{**base, **kwargs})


# --- per-step token budget, collective latency hops, synchronised waves ---------------------------

def test_prefill_steps_is_ceil_of_tokens_over_budget():
    from planner.perf.performance import prefill_steps
    # 20,000 / 8,192 = 2.44 -> 3 steps; 100 tokens -> 1; no budget -> 1
    assert prefill_steps(20_000, 8192) == pytest.approx(3.0)
    assert prefill_steps(100, 8192) == pytest.approx(1.0)
    assert prefill_steps(20_000, None) == pytest.approx(1.0)


def test_budget_splits_a_long_prefill_into_steps_that_each_pay_the_overhead():
    from planner.perf.performance import prefill_terms
    arch = architecture_from_config(TINY_DENSE)
    kw = dict(prompt_tokens=4096, tp=1, pp=1, memory_bandwidth_tb_s=1.0, compute_tflops=100.0,
              interconnect_bandwidth_gb_s=100.0)
    one, four = prefill_terms(arch, BF16, **kw), prefill_terms(arch, BF16, prefill_budget_tokens=1024, **kw)
    assert float(four.steps) == pytest.approx(4.0)  # 4096 / 1024
    eff = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=1e-3,
                     comm_latency_s=0.0)
    # same FLOPs, three more steps of 1 ms overhead
    assert float(four.total_s(eff) - one.total_s(eff)) == pytest.approx(3e-3, rel=1e-6)


def test_collective_latency_is_paid_once_per_call_whatever_the_group():
    from planner.perf.performance import prefill_terms
    arch = architecture_from_config(TINY_DENSE)
    kw = dict(prompt_tokens=16, pp=1, memory_bandwidth_tb_s=1.0, compute_tflops=100.0,
              interconnect_bandwidth_gb_s=100.0)
    # 2 all-reduces per layer x 2 layers = 4 calls at tp=2 and at tp=8 (custom all-reduce: flat latency); none at tp=1
    assert float(prefill_terms(arch, BF16, tp=1, **kw).collectives) == pytest.approx(0.0)
    assert float(prefill_terms(arch, BF16, tp=2, **kw).collectives) == pytest.approx(4.0)
    assert float(prefill_terms(arch, BF16, tp=8, **kw).collectives) == pytest.approx(4.0)
    # the bytes still grow as 2 (tp-1)/tp: 1 at tp=2, 1.75 at tp=8
    two, eight = (float(prefill_terms(arch, BF16, tp=t, **kw).transfer_s) for t in (2, 8))
    assert eight / two == pytest.approx(1.75)


def test_wave_ttft_is_the_mean_wait_in_the_burst():
    from planner.perf.serving import wave_ttft_s
    # 3 steps of 1 s: prompts get their first token after 1, 2 or 3 s -> mean 2 s = 3 x (3 + 1) / 6
    assert float(wave_ttft_s(burst_prefill_s=3.0, burst_steps=3)) == pytest.approx(2.0)
    # everything in one step: the whole burst
    assert float(wave_ttft_s(burst_prefill_s=0.5, burst_steps=1)) == pytest.approx(0.5)


def test_wave_tpot_adds_the_prefill_steps_a_request_decodes_through():
    from planner.perf.serving import wave_tpot_s
    # steps of 0.1 s; on average (3 - 1) / 2 = 1 of the 10 later tokens waits a prefill step:
    # 0.01 + 1 x (0.1 - 0.01) / 10 = 0.019 s
    got = wave_tpot_s(decode_step_s=0.01, burst_prefill_s=0.3, burst_steps=3, output_tokens=11)
    assert float(got) == pytest.approx(0.019)
    assert float(wave_tpot_s(decode_step_s=0.01, burst_prefill_s=0.3, burst_steps=1,
                             output_tokens=11)) == pytest.approx(0.01)


def test_exposed_overhead_golden():
    from planner.perf.performance import exposed_overhead_s
    # serial engine: the whole 1 ms; a 2 ms GPU step with overlap 0.5 hides t = 1 ms: 1 ms x exp(-1) = 0.3679 ms
    assert float(exposed_overhead_s(1e-3, 2e-3, 0.0)) == pytest.approx(1e-3)
    assert float(exposed_overhead_s(1e-3, 2e-3, 0.5)) == pytest.approx(0.36787944e-3, rel=1e-6)
    assert float(exposed_overhead_s(0.0, 2e-3, 0.5)) == pytest.approx(0.0)


def test_step_overhead_is_exposed_at_batch1_and_hidden_at_large_batch():
    arch = architecture_from_config(TINY_DENSE)
    overlap = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=1e-4,
                         comm_latency_s=0.0, overhead_overlap_frac=1.0)
    batches = np.array([1.0, 4096.0])
    roof = decode_step(arch, BF16, batch=batches, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW,
                       eff=PERFECT).total_s
    got = decode_step(arch, BF16, batch=batches, context_tokens=0, kv_bytes_per_elem=2, tp=1, pp=1, hw=HW,
                      eff=overlap).total_s
    # batch 1: GPU 69.265 us hides t = 69.265 us of the 100 us overhead: + 100 x exp(-0.69265) us = 50.02 us
    assert float(got[0] - roof[0]) == pytest.approx(100e-6 * np.exp(-0.69265418), rel=1e-6)
    # batch 4096: 4096 x 69.2 MFLOP at 100 TFLOPS = 2.83 ms of GPU time hides all but exp(-28) of it
    assert float(got[1] - roof[1]) < 1e-9


def test_layer_overhead_adds_per_layer_gpu_time():
    arch = architecture_from_config(TINY_DENSE)
    layered = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                         comm_latency_s=0.0, layer_overhead_s=10e-6)
    kw = dict(batch=1, context_tokens=0, kv_bytes_per_elem=2, hw=HW)
    # 2 layers x 10 us on top of 69.265 us of weight and activation streaming; two pipeline stages each run one layer
    assert float(decode_step(arch, BF16, tp=1, pp=1, eff=layered, **kw).total_s) == pytest.approx(89.265418e-6)
    pp2 = decode_step(arch, BF16, tp=1, pp=2, eff=layered, **kw).total_s - decode_step(arch, BF16, tp=1, pp=2,
                                                                                      eff=PERFECT, **kw).total_s
    assert float(pp2) == pytest.approx(20e-6)
    # a prompt passes both layers once per step
    assert float(prefill_time_s(arch, BF16, prompt_tokens=1, tp=1, pp=1, hw=HW, eff=layered)
                 - prefill_time_s(arch, BF16, prompt_tokens=1, tp=1, pp=1, hw=HW, eff=PERFECT)) == pytest.approx(20e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(overhead_overlap_frac=1.5), "overhead_overlap_frac"), (dict(overhead_overlap_frac=np.nan),
                                                                  "overhead_overlap_frac"),
    (dict(overhead_overlap_frac=-0.1), "overhead_overlap_frac"), (dict(layer_overhead_s=-1e-6), "layer_overhead_s"),
    (dict(layer_overhead_s=np.inf), "layer_overhead_s"),
])
def test_new_efficiency_fields_validate(kwargs, match):
    base = dict(mbu_frac=0.5, mfu_decode_frac=0.5, mfu_prefill_frac=0.5, step_overhead_s=0.0, comm_latency_s=0.0)
    with pytest.raises(InvalidInputError, match=match):
        Efficiency(**base, **kwargs)


def test_per_format_mfu_scale_multiplies_both_mfus_and_is_capped_at_one(real_catalog):
    """A profile's mfu_<format>_scale multiplies both MFU fractions of matmuls in that format, capped at 1 (no
    prediction beats the roofline); 16-bit float and a format without a scale keep the profile's values."""
    import dataclasses

    from planner.perf.evaluator import efficiency_of
    prof = dataclasses.replace(real_catalog.efficiency[0], mfu_decode_frac=0.5, mfu_prefill_frac=0.4,
                               mfu_fp8_scale=1.5, mfu_fp4_scale=3.0, mfu_int8_scale=None)
    fp8, fp4, int8, bf16 = (efficiency_of(prof, g) for g in ("fp8", "fp4", "int8", "16bit"))
    assert (fp8.mfu_decode_frac, fp8.mfu_prefill_frac) == pytest.approx((0.75, 0.6))  # 0.5 x 1.5, 0.4 x 1.5
    assert (fp4.mfu_decode_frac, fp4.mfu_prefill_frac) == pytest.approx((1.0, 1.0))  # 1.5 and 1.2, capped
    assert (int8.mfu_decode_frac, bf16.mfu_prefill_frac) == pytest.approx((0.5, 0.4))
    assert fp8.mbu_frac == bf16.mbu_frac == prof.mbu_frac


@pytest.mark.parametrize("engine, precision, gpu, gemm", [
    ("llama.cpp", "q4_0", "RTX-4090", "int8"),  # MMQ: int8 units
    ("llama.cpp", "mxfp4", "RTX-4090", "fp4"),  # llama.cpp's MXFP4 kernel, on int8 units too
    ("llama.cpp", "fp16", "RTX-4090", "16bit"),  # cuBLAS
    ("llama.cpp", "q4_0", "M2-Ultra", "16bit"),  # no int8 units listed: dequantized to 16-bit
    ("vllm", "fp8", "H100-SXM", "fp8"),
    ("vllm", "fp8", "A100-80GB", "16bit"),  # no fp8 units: runs at bf16
    ("vllm", "nvfp4", "B200", "fp4"),
    ("vllm", "int4-awq", "H100-SXM", "16bit"),  # weight-only: dequantized
])
def test_gemm_format_names_the_units_the_matmuls_run_on(real_catalog, engine, precision, gpu, gemm):
    from planner.model.quantization import weight_format
    from planner.perf.evaluator import gemm_format
    g, prec = real_catalog.gpu(gpu), real_catalog.precisions[precision]
    assert gemm_format(real_catalog.engines[engine], prec, weight_format(prec, g), g) == gemm


def test_attention_dp_busiest_rank_share_of_a_small_batch():
    from planner.perf.step_work import attn_dp_rank_load

    # 1 sequence on 8 ranks: one rank runs it whole, 8x the mean share 1/8; 4 sequences: 1 per busy rank = 2x 0.5;
    # 16 sequences: 2 per rank, the mean; no attention DP: always 1
    assert np.allclose(attn_dp_rank_load(np.array([1.0, 4.0, 16.0]), 8, True), [8.0, 2.0, 1.0])
    assert np.allclose(attn_dp_rank_load(np.array([1.0, 4.0]), 8, False), [1.0, 1.0])


def test_attention_dp_batch1_reads_the_whole_sequence_kv_on_one_gpu():
    from planner.model.architecture import kv_bytes_per_sequence
    from planner.model.quantization import WeightFormat
    from planner.perf.performance import decode_terms

    arch = architecture_from_config(TINY_MOE)
    fmt = WeightFormat("bf16", 2.0, 2.0, 2.0, "bf16", True)
    hw = dict(memory_bandwidth_tb_s=2.0, compute_tflops=500.0, interconnect_bandwidth_gb_s=450.0)
    one = decode_terms(arch, fmt, batch=1.0, context_tokens=1000.0, kv_bytes_per_elem=2.0, tp=1, pp=1, **hw)
    adp = decode_terms(arch, fmt, batch=1.0, context_tokens=1000.0, kv_bytes_per_elem=2.0, tp=4, pp=1,
                       attn_dp=True, **hw)
    kv_s = kv_bytes_per_sequence(arch, 1000.0, 2.0) / 2.0e12  # one sequence's cache over 2 TB/s
    assert np.isclose(one.memory_kv_s, kv_s) and np.isclose(adp.memory_kv_s, kv_s)  # not a quarter of it
    assert np.isclose(adp.attn_decode_s, one.attn_decode_s)  # its attention FLOPs on that one GPU
