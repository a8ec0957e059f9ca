"""AMD Quark W4A4 MXFP4 (`mxfp4-w4a4`, w_mxfp4_a_mxfp4: AMD's MLPerf v6.0 Llama-2-70B checkpoint): 4-bit weights AND
activations, so on MI355X the matmuls run at the FP4 rate, where `mxfp4` (MoE kernels with 8-bit activations) runs
at the FP8 rate; on MI300X (no FP4 units) vLLM dequantizes to 16 bits."""

from __future__ import annotations

from planner.model.quantization import compute_tflops, weight_format


def test_w4a4_mxfp4_runs_at_the_fp4_rate_on_mi355x(real_catalog):
    w4a4, w4a8 = real_catalog.precision("mxfp4-w4a4"), real_catalog.precision("mxfp4")
    mi355x = real_catalog.gpu("MI355X")
    fmt = weight_format(w4a4, mi355x)
    assert (fmt.compute_format, fmt.native) == ("fp4", True)
    assert compute_tflops(mi355x, fmt) == mi355x.fp4_dense_tflops
    assert compute_tflops(mi355x, weight_format(w4a8, mi355x)) == mi355x.fp8_dense_tflops
    # every linear layer is 4-bit (a dense checkpoint, not gpt-oss's experts-only split): 4 + 8/32 bits
    assert fmt.dense_bytes_per_param == fmt.expert_bytes_per_param == (4 + 8 / 32) / 8
    # attention BMMs never run at an FP4 rate: FP8 (half the FP4 rate on MI355X: 5000 / 10100 TFLOPS)
    assert fmt.attn_bmm_slowdown == mi355x.fp4_dense_tflops / mi355x.fp8_dense_tflops


def test_w4a4_mxfp4_is_dequantized_where_fp4_is_not_native(real_catalog):
    fmt = weight_format(real_catalog.precision("mxfp4-w4a4"), real_catalog.gpu("MI300X"))
    assert (fmt.compute_format, fmt.native) == ("bf16", False)


def test_w4a4_mxfp4_name_resolves_from_its_aliases(real_catalog):
    assert real_catalog.precision("w-mxfp4-a-mxfp4").precision_id == "mxfp4-w4a4"
