"""Host launch counts of an eager context step by architecture (`_layers.layer_launches`, `step_work.host_launches`)
and the one rule that charges them in the estimate and in the queueing model's step function
(`evaluator._eager_chunk`, docs/performance.md "Eager context steps: launches by architecture")."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planner.model.quantization import WeightFormat
from planner.perf import evaluator
from planner.perf.performance import decode_terms
from planner.perf.step_work import host_launches

BF16 = WeightFormat("bf16", 2.0, 2.0, 2.0, "bf16", True)
FP8 = WeightFormat("fp8", 1.0, 1.0, 2.0, "fp8", True, activation_bytes_per_elem=1.0)


def test_dense_gqa_layer_launches_by_hand(real_catalog):
    # Llama-3.1-8B, 32 layers: attention (norm, RoPE, KV write, attention; QKV, O) 4 + 2, MLP (norm, SiLU-and-mul;
    # gate_up, down) 2 + 2 = 10 a layer; FP8 quantizes the O and down inputs itself: 2 more
    arch = real_catalog.model("llama-3.1-8b").arch
    assert arch.host_launches == pytest.approx(32 * 10)
    assert arch.quant_launches == pytest.approx(32 * 2)
    assert float(host_launches(arch, BF16)) == pytest.approx(320.0)
    assert float(host_launches(arch, FP8)) == pytest.approx(384.0)


def test_mla_moe_layer_launches_by_hand(real_catalog):
    # DeepSeek-V3: MLA (norm, q_a and kv_a norms, RoPE, concat, KV write, attention; qkv_a, q_b, kv_b, O) 7 + 4;
    # 3 dense layers add the MLP's 2 + 2, 58 MoE layers the routed experts' 5 + 3 and the shared expert's 2 + 2:
    # 3 x 15 + 58 x 23 = 1,379; quantize kernels: O, q_b, kv_b and the dense / shared down projection, 4 a layer
    arch = real_catalog.model("deepseek-v3").arch
    assert arch.host_launches == pytest.approx(3 * 15 + 58 * 23)
    assert arch.quant_launches == pytest.approx(61 * 4)
    # about 2.3x the launches of a dense layer per layer
    assert arch.host_launches / arch.n_layers > 2 * real_catalog.model("llama-3.1-8b").arch.host_launches / 32


def test_qk_norm_adds_two_launches_a_layer(real_catalog):
    arch = real_catalog.model("qwen3-8b").arch  # 36 layers, Llama's 10 + q_norm and k_norm
    assert arch.host_launches == pytest.approx(36 * 12)


def _candidate(catalog, engine: str, eager_launch_us: float):
    model = catalog.model("llama-3.1-8b")
    cand = evaluator.candidates(catalog, model.arch, model.native_precision, gpus=[catalog.gpu("H100-SXM")],
                                engines=[catalog.engine(engine)], precisions=[catalog.precision("bf16")],
                                kv_dtypes=[None], gpu_counts=[1])[0]
    # no step overhead: the cycle is the GPU time plus the host launches, nothing hides them
    profile = dataclasses.replace(cand.profile, eager_launch_us=eager_launch_us, step_overhead_ms=0.0)
    return model.arch, dataclasses.replace(cand, profile=profile)


def _no_eager_s(arch, cand, batch: float, prompt: float) -> float:
    eff = evaluator.efficiency_of(cand.profile, evaluator.gemm_format_of(cand))
    gpu = cand.gpu
    terms = decode_terms(arch, cand.fmt, batch=batch, context_tokens=1024 + 128,
                         kv_bytes_per_elem=cand.kv.bytes_per_elem, tp=1, pp=1,
                         memory_bandwidth_tb_s=gpu.memory_bandwidth_tb_s, compute_tflops=evaluator.tflops_of(cand),
                         interconnect_bandwidth_gb_s=gpu.interconnect_bandwidth_gb_s, prefill_tokens=prompt,
                         prefill_context_tokens=512.0)
    return float(terms.total_s(eff))


def test_step_function_charges_an_eager_chunk_step_by_hand(real_catalog):
    """TensorRT-LLM's current release graphs no context step: a step with 8 decodes and a 1,000-token chunk launches
    Llama-3.1-8B's 320 kernels (BF16, TP1: no collectives) at 10 us each, 3.2 ms more than the graphed step; a
    decode-only step pays nothing."""
    arch, cand = _candidate(real_catalog, "trtllm", 10.0)
    step = evaluator.step_time_fn(arch, [cand], input_tokens=1024, output_tokens=256)
    got = step(np.array([8.0]), np.array([1000.0]))
    assert float(got[0]) == pytest.approx(_no_eager_s(arch, cand, 8.0, 1000.0) + 320 * 10e-6, rel=1e-9)
    assert float(step(np.array([8.0]), np.array([0.0]))[0]) == pytest.approx(_no_eager_s(arch, cand, 8.0, 0.0))


def test_step_function_charges_sglang_only_beyond_its_largest_prefill_graph(real_catalog):
    """SGLang graphs context steps of up to 8,192 tokens (a dense model, CUDA, no DP attention): 8 + 8,000 tokens
    replay a graph, 8 + 9,000 launch the 320 kernels at 10 us each."""
    arch, cand = _candidate(real_catalog, "sglang", 10.0)
    step = evaluator.step_time_fn(arch, [cand], input_tokens=1024, output_tokens=256)
    assert float(step(np.array([8.0]), np.array([8000.0]))[0]) == pytest.approx(_no_eager_s(arch, cand, 8.0, 8000.0))
    assert float(step(np.array([8.0]), np.array([9000.0]))[0]) == pytest.approx(
        _no_eager_s(arch, cand, 8.0, 9000.0) + 320 * 10e-6)


def test_vllm_step_function_pays_no_launch_time(real_catalog):
    arch, cand = _candidate(real_catalog, "vllm", 10.0)
    step = evaluator.step_time_fn(arch, [cand], input_tokens=1024, output_tokens=256)
    assert float(step(np.array([8.0]), np.array([9000.0]))[0]) == pytest.approx(_no_eager_s(arch, cand, 8.0, 9000.0))


def test_the_estimate_and_the_step_function_charge_the_same_launch_time(real_catalog):
    """At the steady state of 16 sequences of 1,024 in / 256 out the chunk step carries 16 + max(64, 1,024) tokens
    (`serving.chunk_step_tokens`): the estimate's TPOT rises by f x 320 launches x 10 us over the same candidate with no
    launch time (f: the share of cycles with a chunk), and the step function's chunk step by all of it."""
    arch, slow = _candidate(real_catalog, "trtllm", 10.0)
    _, free = _candidate(real_catalog, "trtllm", 0.0)
    ev = [evaluator.evaluate(arch, [c], input_tokens=1024, output_tokens=256, concurrency=16) for c in (slow, free)]
    f = float(evaluator.point_terms_of(arch, [slow], concurrency=16, input_tokens=1024, output_tokens=256)
              .step.chunk_frac[0])
    assert 0 < f < 1
    assert float(ev[0].tpot_s[0] - ev[1].tpot_s[0]) == pytest.approx(f * 320 * 10e-6, rel=1e-6)
    steps = [evaluator.step_time_fn(arch, [c], input_tokens=1024, output_tokens=256) for c in (slow, free)]
    b, p = np.array([16.0]), np.array([1024.0])
    assert float(steps[0](b, p)[0] - steps[1](b, p)[0]) == pytest.approx(320 * 10e-6, rel=1e-6)


def test_step_function_takes_a_measured_rows_graph_limit(real_catalog):
    """A row whose source states graphed context steps (`graph_tokens` inf) pays nothing even on TensorRT-LLM; one
    stated eager (0) pays the 320 launches (as `validation.graph_tokens` gives for the SLO validation's runs)."""
    arch, cand = _candidate(real_catalog, "trtllm", 10.0)
    b, p = np.array([8.0]), np.array([1000.0])
    graphed = evaluator.step_time_fn(arch, [cand], input_tokens=1024, output_tokens=256, graph_tokens=[np.inf])
    eager = evaluator.step_time_fn(arch, [cand], input_tokens=1024, output_tokens=256, graph_tokens=[0.0])
    assert float(graphed(b, p)[0]) == pytest.approx(_no_eager_s(arch, cand, 8.0, 1000.0))
    assert float(eager(b, p)[0]) == pytest.approx(_no_eager_s(arch, cand, 8.0, 1000.0) + 320 * 10e-6)
