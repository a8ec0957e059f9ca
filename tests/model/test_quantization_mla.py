"""NVFP4 DeepSeek checkpoints keep MLA's latent attention projections in BF16 (bytes and the BF16 rate), and no
format runs attention's score/value BMMs at an FP4 rate (W4A4 formats: the FP8 rate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from planner.model.architecture import architecture_from_config
from planner.model.quantization import weight_format
from planner.perf.step_work import attention_flops_per_token, gemm_flops_per_token

R1 = Path(__file__).resolve().parents[2] / "data" / "model_configs" / "deepseek-ai--DeepSeek-R1.json"


def _r1():
    return architecture_from_config(json.loads(R1.read_text()))


def test_mla_latent_projection_params_by_hand():
    # per layer: q_a 7168 x 1536, q_b 1536 x 128 heads x (128 + 64), kv_a 7168 x (512 + 64), kv_b 512 x 128 x 256
    per_layer = 7168 * 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 * 128 * 256
    assert per_layer == 69_664_768
    assert _r1().mla_latent_proj_params == 61 * per_layer  # 4.25e9 of the 37.6e9 active params


def test_nvfp4_keeps_mla_projections_bf16_and_attention_off_the_fp4_rate(real_catalog):
    b200 = real_catalog.gpu("B200")
    arch = _r1()
    nv = weight_format(real_catalog.precision("nvfp4"), b200)
    assert nv.mla_proj_bytes_per_param == 2.0
    assert nv.mla_proj_slowdown == b200.fp4_dense_tflops / b200.bf16_dense_tflops  # 4 on B200
    assert nv.attn_bmm_slowdown == b200.fp4_dense_tflops / b200.fp8_dense_tflops  # 2: FP8 attention kernels
    # weights: the 4.25e9 projection params at 2 bytes instead of 4.5 bits
    plain = weight_format(real_catalog.precision("nvfp4"), b200)
    plain = type(plain)(plain.precision_id, plain.expert_bytes_per_param, plain.dense_bytes_per_param,
                        plain.embed_bytes_per_param, plain.compute_format, plain.native)
    extra = nv.total_bytes(arch) - plain.total_bytes(arch)
    assert np.isclose(extra, arch.mla_latent_proj_params * (2.0 - 4.5 / 8))
    # GEMM FLOPs in FP4-rate units: the projections count 4x (they run at a quarter of the rate)
    assert np.isclose(gemm_flops_per_token(arch, nv),
                      2 * (arch.active_compute_params + 3 * arch.mla_latent_proj_params))
    assert np.isclose(attention_flops_per_token(arch, 1000, prefill=False) * nv.attn_bmm_slowdown,
                      2 * attention_flops_per_token(arch, 1000, prefill=False))


def test_fp8_and_mxfp4_are_unchanged(real_catalog):
    b200 = real_catalog.gpu("B200")
    fp8 = weight_format(real_catalog.precision("fp8"), b200)
    assert (fp8.mla_proj_bytes_per_param, fp8.mla_proj_slowdown, fp8.attn_bmm_slowdown) == (None, 1.0, 1.0)
    mx = weight_format(real_catalog.precision("mxfp4"), b200, model_native_precision="mxfp4")
    assert (mx.compute_format, mx.attn_bmm_slowdown) == ("fp8", 1.0)  # W4A8: already at the FP8 rate
    # on Hopper (no FP4 units) NVFP4 is dequantized to BF16: the projections' bytes stay BF16, the rate is BF16 anyway
    h = weight_format(real_catalog.precision("nvfp4"), real_catalog.gpu("H100-SXM"))
    assert (h.mla_proj_bytes_per_param, h.mla_proj_slowdown, h.attn_bmm_slowdown) == (2.0, 1.0, 1.0)


def test_non_mla_models_have_no_latent_projections(real_catalog):
    assert real_catalog.model("meta-llama/Llama-3.1-8B").arch.mla_latent_proj_params == 0.0
