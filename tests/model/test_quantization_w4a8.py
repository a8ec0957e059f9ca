"""MXFP4 (gpt-oss) MoE matmuls run with 8-bit activations: the FP8 rate on GPUs with FP4 units (Blackwell,
MI355X), BF16 where the GPU has no FP4 units (Hopper); NVFP4 (W4A4) keeps the FP4 rate."""

from __future__ import annotations

import numpy as np

from planner.model.quantization import compute_tflops, weight_format


def test_mxfp4_runs_at_the_fp8_rate_on_blackwell_and_bf16_on_hopper(real_catalog):
    mxfp4, nvfp4 = real_catalog.precision("mxfp4"), real_catalog.precision("nvfp4")
    b200, h100 = real_catalog.gpu("B200"), real_catalog.gpu("H100-SXM")
    fmt = weight_format(mxfp4, b200, model_native_precision="mxfp4")
    assert (fmt.compute_format, fmt.native) == ("fp8", True)
    assert compute_tflops(b200, fmt) == b200.fp8_dense_tflops == b200.fp4_dense_tflops / 2
    assert weight_format(nvfp4, b200).compute_format == "fp4"
    on_hopper = weight_format(mxfp4, h100, model_native_precision="mxfp4")
    assert (on_hopper.compute_format, on_hopper.native) == ("bf16", False)
    assert fmt.expert_bytes_per_param == on_hopper.expert_bytes_per_param == 4.25 / 8  # bytes are unchanged


def _gpt_oss_arch():
    import json
    from pathlib import Path

    from planner.model.architecture import architecture_from_config
    path = Path(__file__).resolve().parents[2] / "data" / "model_configs" / "openai--gpt-oss-120b.json"
    return architecture_from_config(json.loads(path.read_text()))


def test_gpt_oss_bf16_attention_and_head_run_at_the_bf16_rate(real_catalog):
    """gpt-oss keeps attention, router and unembedding in BF16 beside its MXFP4 experts: on B200 those GEMMs run at
    2,250 of the 4,500 dense TFLOPS the W4A8 experts get, so in FP8-rate units they count twice."""
    from planner.perf.step_work import dense_gemm_flops_per_token, gemm_flops_per_token

    b200, h100 = real_catalog.gpu("B200"), real_catalog.gpu("H100-SXM")
    mxfp4 = real_catalog.precision("mxfp4")
    fmt = weight_format(mxfp4, b200, model_native_precision="mxfp4")
    assert fmt.dense_gemm_slowdown == b200.fp8_dense_tflops / b200.bf16_dense_tflops == 4500 / 2250
    arch = _gpt_oss_arch()
    # 2 x (active params + the always-read params once more): the dense part counts 2x
    assert np.isclose(gemm_flops_per_token(arch, fmt), 2 * (arch.active_compute_params + arch.always_read_params))
    assert np.isclose(dense_gemm_flops_per_token(arch, fmt), 2 * 2 * arch.always_read_params)
    # on Hopper everything is BF16 already; a requantized (non-native) mxfp4 of another model is unchanged too
    assert weight_format(mxfp4, h100, model_native_precision="mxfp4").dense_gemm_slowdown == 1.0
    assert weight_format(mxfp4, b200, model_native_precision="bf16").dense_gemm_slowdown == 1.0
    assert weight_format(real_catalog.precision("nvfp4"), b200).dense_gemm_slowdown == 1.0
