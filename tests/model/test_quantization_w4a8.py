"""MXFP4 (gpt-oss) MoE matmuls run with 8-bit activations: the FP8 rate on GPUs with FP4 units (Blackwell,
MI355X), BF16 where the GPU has no FP4 units (Hopper); NVFP4 (W4A4) keeps the FP4 rate."""

from __future__ import annotations

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
