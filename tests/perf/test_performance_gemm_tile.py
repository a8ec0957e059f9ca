"""Tensor-core tile padding of small-batch decode GEMMs: a decode step's non-expert GEMMs compute at least a tile's
token rows (`quantization.gemm_min_rows`), which binds only where the GPU's FLOPs per byte are below the tile's
(the H20: 148 dense BF16 TFLOPS over 4.0 TB/s), docs/performance.md "Batch-1 decode on the H20"."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import TINY_DENSE

from planner.model.architecture import architecture_from_config
from planner.model.quantization import GEMM_TILE_ROWS, WEIGHT_ONLY_TILE_ROWS, WeightFormat, weight_format
from planner.perf.performance import Efficiency, decode_terms

PERFECT = Efficiency(mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0, step_overhead_s=0.0,
                     comm_latency_s=0.0)
BF16 = WeightFormat("bf16", 2.0, 2.0, 2.0, "bf16", True, gemm_min_rows=64.0)
# TINY_DENSE: no experts, so every weight read per token is non-expert: 2 layers x (4 x 1024^2 attention + 3 x 1024
# x 4096 MLP) + the 1000 x 1024 untied LM head + 5 x 1024 norm weights (2 per layer and the final one, which
# `Architecture.always_read_params` counts with them) = 34,583,552 params, 2 FLOPs each per token row
DENSE_PARAMS = 2 * (4 * 1024 ** 2 + 3 * 1024 * 4096) + 1000 * 1024 + 5 * 1024


def _terms(fmt: WeightFormat, *, batch: float, tflops: float = 100.0, bandwidth: float = 1.0, **kw):
    arch = architecture_from_config(TINY_DENSE)
    return decode_terms(arch, fmt, batch=batch, context_tokens=100.0, kv_bytes_per_elem=2.0, tp=1, pp=1,
                        memory_bandwidth_tb_s=bandwidth, compute_tflops=tflops, interconnect_bandwidth_gb_s=100.0,
                        **kw)


def test_tile_rows_by_kernel(real_catalog):
    p, h20 = real_catalog.precision, real_catalog.gpu("H20")
    # Hopper warpgroup MMA (m64) for 16- and 8-bit GEMMs; Marlin's 16-row mma.sync tiles for weight-only INT4
    assert weight_format(p("bf16"), h20).gemm_min_rows == GEMM_TILE_ROWS == 64
    assert weight_format(p("fp8"), h20).gemm_min_rows == 64
    assert weight_format(p("int4-awq"), h20).gemm_min_rows == WEIGHT_ONLY_TILE_ROWS == 16
    assert weight_format(p("int4-gptq"), h20).gemm_min_rows == 16
    # llama.cpp's batch-1 matrix-vector kernels: no tile, whatever the precision
    assert weight_format(p("q4_k_m"), h20, gguf=True).gemm_min_rows == 1
    assert weight_format(p("bf16"), h20, gguf=True).gemm_min_rows == 1


def test_batch_one_pays_the_tile_rows():
    t = _terms(BF16, batch=1.0)
    # 63 padded rows x 2 x 34,583,552 FLOPs / 100 TFLOPS = 43.58 us beyond the one real row's 0.692 us
    assert float(t.compute_decode_s) == pytest.approx(2 * DENSE_PARAMS / 100e12, rel=1e-9)
    assert float(t.compute_pad_s) == pytest.approx(63 * 2 * DENSE_PARAMS / 100e12, rel=1e-9)
    # a full tile pads nothing
    assert float(_terms(BF16, batch=64.0).compute_pad_s) == 0.0
    assert float(_terms(BF16, batch=100.0).compute_pad_s) == 0.0
    # no tile (GGUF kernels): no padding
    assert float(_terms(dataclasses.replace(BF16, gemm_min_rows=1.0), batch=1.0).compute_pad_s) == 0.0


def test_a_prompt_chunk_fills_the_tile():
    # 1 decode token + a 1000-token prompt chunk in the chunk step: no padded rows there, 63 in the decode-only step
    t = _terms(BF16, batch=1.0, prefill_tokens=10.0, prefill_chunk_tokens=1000.0)
    assert float(t.compute_pad_chunk_s) == 0.0
    assert float(t.compute_pad_s) == pytest.approx(63 * 2 * DENSE_PARAMS / 100e12, rel=1e-9)
    # a 10-token chunk fills 11 of the 64 rows: 53 padded
    small = _terms(BF16, batch=1.0, prefill_tokens=10.0, prefill_chunk_tokens=10.0)
    assert float(small.compute_pad_chunk_s) == pytest.approx(53 * 2 * DENSE_PARAMS / 100e12, rel=1e-9)


def test_padding_binds_only_below_the_tiles_flops_per_byte():
    # BF16 weights: a 64-row tile does 64 FLOPs per weight byte. At 148 TFLOPS over 4.0 TB/s (37 FLOPs per byte,
    # the H20) batch 1 is compute-bound; at 989 over 3.35 (295, the H100) the same step is memory-bound and the
    # padding does not change its time
    h20 = _terms(BF16, batch=1.0, tflops=148.0, bandwidth=4.0)
    cycle, memory, compute, _, _ = h20.parts(PERFECT)
    assert float(compute) > float(memory)
    h100 = _terms(BF16, batch=1.0, tflops=989.0, bandwidth=3.35)
    unpadded = _terms(dataclasses.replace(BF16, gemm_min_rows=1.0), batch=1.0, tflops=989.0, bandwidth=3.35)
    assert float(h100.parts(PERFECT)[0]) == pytest.approx(float(unpadded.parts(PERFECT)[0]), rel=1e-12)
    # and more compute never slows the padded step
    assert float(_terms(BF16, batch=1.0, tflops=296.0, bandwidth=4.0).parts(PERFECT)[0]) <= float(cycle)
