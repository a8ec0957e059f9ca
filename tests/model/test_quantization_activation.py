"""The bytes of one activation element as the GEMMs read it: W4A4 in the weights' block format, 8-bit GEMMs one
byte, 16-bit and dequantizing (weight-only) GEMMs two (`quantization.activation_bytes_per_elem`)."""

from __future__ import annotations

import pytest

from planner.model.quantization import weight_format


def test_activation_bytes_follow_the_gemm_input_format(real_catalog):
    p, g = real_catalog.precision, real_catalog.gpu
    b200, h100 = g("B200"), g("H100-SXM")
    # NVFP4: 4-bit e2m1 values + one 8-bit e4m3 scale per 16 = 4.5 bits = 0.5625 B
    assert weight_format(p("nvfp4"), b200).activation_bytes_per_elem == pytest.approx(4.5 / 8)
    # AMD's W4A4 MXFP4: one 8-bit e8m0 scale per 32 = 4.25 bits
    assert weight_format(p("mxfp4-w4a4"), b200).activation_bytes_per_elem == pytest.approx(4.25 / 8)
    # FP8 W8A8 on Hopper and Blackwell, and gpt-oss's W4A8 MXFP4 MoE on Blackwell: one byte
    assert weight_format(p("fp8"), h100).activation_bytes_per_elem == 1.0
    assert weight_format(p("mxfp4"), b200, model_native_precision="mxfp4").activation_bytes_per_elem == 1.0
    # Hopper has no FP4 units: NVFP4 and MXFP4 weights are dequantized, the GEMMs read BF16 activations
    assert weight_format(p("nvfp4"), h100).activation_bytes_per_elem == 2.0
    assert weight_format(p("mxfp4"), h100, model_native_precision="mxfp4").activation_bytes_per_elem == 2.0
    # weight-only INT4 and BF16: two bytes
    assert weight_format(p("int4-awq"), h100).activation_bytes_per_elem == 2.0
    assert weight_format(p("bf16"), b200).activation_bytes_per_elem == 2.0
