"""Context steps run without a CUDA graph: which engine builds do so (serving.prefill_graph_max_tokens), which steps
(eager_launches, chunk_step_tokens), and what the host launch time adds to a prefill (PrefillTerms.total_s)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.perf.serving import chunk_step_tokens, eager_launches, prefill_graph_max_tokens


def test_sglang_graphs_prefill_from_2026_02_on_cuda_without_dp_attention_or_pipeline():
    assert prefill_graph_max_tokens("sglang") == 8192  # the current release: --piecewise-cuda-graph-max-tokens
    assert prefill_graph_max_tokens("sglang", mla=True) == 2048
    assert prefill_graph_max_tokens("sglang", engine_date="2026-05") == 8192
    assert prefill_graph_max_tokens("sglang", engine_date="2026-01") == 0.0  # 0.5.7 and before: eager by default
    assert prefill_graph_max_tokens("sglang", amd=True) == 0.0  # ROCm
    assert prefill_graph_max_tokens("sglang", attn_dp=True) == 0.0
    assert prefill_graph_max_tokens("sglang", pp=2) == 0.0
    assert prefill_graph_max_tokens("sglang", engine_date="2025-12", stated=True) == math.inf  # the source says so


def test_trtllm_pytorch_backend_runs_context_steps_eagerly_unless_stated():
    assert prefill_graph_max_tokens("trtllm") == 0.0  # 1.x: enable_piecewise_cuda_graph off by default
    assert prefill_graph_max_tokens("trtllm", engine_date="2025-09") == 0.0
    assert prefill_graph_max_tokens("trtllm", engine_date="2025-02") == math.inf  # TensorRT engines (C++ runtime)
    assert prefill_graph_max_tokens("trtllm", engine_date="2025-07", stated=False) == 0.0  # 0.21 PyTorch backend
    assert prefill_graph_max_tokens("trtllm", stated=True) == math.inf


def test_vllm_and_llama_cpp_pay_no_host_launch_cost():
    assert prefill_graph_max_tokens("vllm") == math.inf
    assert prefill_graph_max_tokens("llama.cpp", amd=True) == math.inf


def test_eager_launches_where_the_step_exceeds_the_largest_graph():
    got = eager_launches(1379.0, np.array([1000.0, 2048.0, 2049.0, 8000.0]), 2048.0)
    assert got == pytest.approx([0.0, 0.0, 1379.0, 1379.0])
    assert float(eager_launches(320.0, 1.0, 0.0)) == 320.0  # eager everywhere
    assert float(eager_launches(320.0, 1e6, math.inf)) == 0.0  # graphed everywhere


def test_chunk_step_tokens_by_hand():
    # 8 clients, 922 in / 922 out: 8 decode tokens + max(8 x 922 / 922 = 8, one 922-token prompt) = 930
    assert float(chunk_step_tokens(8.0, 922.0, 922.0)) == pytest.approx(930.0)
    # 64 clients, 8,192 in / 1,024 out, budget 16,384: 64 + max(64 x 8,192 / 1,024 = 512, min(8,192, 16,384)) = 8,256
    assert float(chunk_step_tokens(64.0, 8192.0, 1024.0, 16384.0)) == pytest.approx(8256.0)
    # 4,096 clients, 1,000 in / 100 out: the cycle admits 4,096 x 10 = 40,960 prompt tokens, more than one prompt
    assert float(chunk_step_tokens(4096.0, 1000.0, 100.0)) == pytest.approx(4096.0 + 40960.0)
    # a prompt longer than the budget arrives in budget-sized chunks: 1 + max(1 x 32,000 / 100 = 320, 8,192)
    assert float(chunk_step_tokens(1.0, 32000.0, 100.0, 8192.0)) == pytest.approx(1.0 + 8192.0)


def test_an_eager_prefill_step_adds_its_host_launches_by_hand():
    """PrefillTerms.total_s: 10 ms of GEMM FLOPs at mfu_p 0.5 = 20 ms on the GPU (no other term), one step, no step
    overhead; 100 kernels launched eagerly at 20 us each add 2 ms: 22 ms. Graphed (eager_launches 0): 20 ms."""
    from planner.perf.performance import Efficiency, PrefillTerms

    eff = Efficiency(mbu_frac=0.8, mfu_decode_frac=0.5, mfu_prefill_frac=0.5, step_overhead_s=0.0,
                     comm_latency_s=0.0, eager_launch_s=20e-6)
    terms = dict(compute_s=0.010, attn_s=0.0, memory_s=0.0, transfer_s=0.0, collectives=0.0, expert_calls=0.0,
                 steps=1.0, layers=4.0, launches=100.0)
    assert float(PrefillTerms(**terms, eager_launches=100.0).total_s(eff)) == pytest.approx(0.022)
    assert float(PrefillTerms(**terms).total_s(eff)) == pytest.approx(0.020)
    # two steps (a budget-sized chunk each) launch their kernels twice: 20 ms + 2 x 2 ms
    assert float(PrefillTerms(**{**terms, "steps": 2.0}, eager_launches=100.0).total_s(eff)) == pytest.approx(0.024)
