"""Precisions: bytes per weight, which GPU unit computes them, and engine support.

Quantization changes three things (DESIGN.md): the bytes each weight takes (with scales:
GGUF Q4_K_M averages 4.89 bits per weight on Llama-3.1-8B), whether the GPU multiplies in
that format natively (FP8 needs Hopper, Ada, Blackwell or MI300-class parts; FP4 needs
Blackwell or MI355X) or dequantizes to 16-bit first (weight-only kernels such as Marlin),
and quality (`Precision.quality_risk`). Facts live in data/precisions.csv and data/gpus.csv.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner import units
from planner.data.catalog import Engine, Gpu, KvDtype, Precision
from planner.errors import InvalidInputError
from planner.model.architecture import Architecture

UNQUANTIZED_BITS = 16.0  # embeddings and LM head stay bf16 under post-training quantization


@dataclass(frozen=True)
class WeightFormat:
    """Bytes per parameter by weight group, and the arithmetic the GPU runs."""

    precision_id: str
    expert_bytes_per_param: float
    dense_bytes_per_param: float  # attention, dense MLP, shared experts
    embed_bytes_per_param: float  # input embedding and LM head
    compute_format: str  # what the tensor cores multiply in (bf16 when dequantized)
    native: bool  # False when the GPU lacks the format and weights are dequantized

    def total_bytes(self, arch: Architecture) -> float:
        dense = arch.always_read_params - arch.lm_head_params
        return (arch.routed_expert_params * self.expert_bytes_per_param
                + dense * self.dense_bytes_per_param
                + (arch.embedding_params + arch.lm_head_params) * self.embed_bytes_per_param)


# Precisions whose 4-bit weights the serving engines multiply with 8-bit activations, not 4-bit ones: MXFP4
# MoE on Blackwell runs MXFP8 activations x MXFP4 weights (TensorRT-LLM's default TRTLLM MoE backend on
# B200/GB200/B300/GB300; BF16 activations on Hopper, which has no FP4 units: "MoE Backend Support Matrix",
# nvidia.github.io/TensorRT-LLM/deployment-guide/deployment-guide-for-gpt-oss-on-trtllm.html; vLLM's FlashInfer
# MXFP4 x MXFP8 MoE kernels for SM100, github.com/vllm-project/vllm/issues/35528). So their FLOPs run at the
# FP8 rate, half the FP4 rate an NVFP4 (W4A4) checkpoint reaches. On MI355X the same ceiling is assumed.
W4A8_PRECISIONS = ("mxfp4",)


def weight_format(precision: Precision, gpu: Gpu | None, *, model_native_precision: str = "bf16") -> WeightFormat:
    """How a model stored at `precision` is held and computed on `gpu`.

    A checkpoint that ships experts in MXFP4 beside BF16 attention (gpt-oss) keeps that
    split when served at its native precision. With `gpu=None` (a bare memory budget) the
    bytes are the same and the compute format is reported as not native.
    """
    q = precision.weight_bits_per_param / units.BITS_PER_BYTE
    u = UNQUANTIZED_BITS / units.BITS_PER_BYTE
    experts_only = precision.precision_id == model_native_precision == "mxfp4"
    native = gpu is not None and gpu.supports(precision.compute_format)
    compute = precision.compute_format if native else "bf16"
    if native and precision.precision_id in W4A8_PRECISIONS and gpu.supports("fp8"):
        compute = "fp8"  # 4-bit weights, 8-bit activations: the matmuls run on the fp8 tensor cores
    return WeightFormat(
        precision_id=precision.precision_id,
        expert_bytes_per_param=q,
        dense_bytes_per_param=u if experts_only else q,
        embed_bytes_per_param=q if precision.quantizes_embeddings else u,
        compute_format=compute,
        native=native,
    )


def compute_tflops(gpu: Gpu, fmt: WeightFormat) -> float:
    """Dense tensor TFLOPS (TOPS for int8) the matmuls run at in this format on this GPU."""
    value = gpu.dense_tflops_or_none(fmt.compute_format)
    return gpu.bf16_dense_tflops if value is None else value


def check_compatible(precision: Precision, kv_dtype: KvDtype, gpu: Gpu, engine: Engine) -> None:
    """InvalidInputError when the engine cannot run this precision, KV dtype or GPU vendor."""
    vendor = gpu.vendor.lower()
    if vendor not in engine.vendors:
        able = "llama.cpp" if vendor == "apple" else "vllm or sglang"
        raise InvalidInputError(f"engine {engine.engine_id} does not run on {gpu.vendor} GPUs ({gpu.gpu_id}); "
                                f"use {able}")
    if engine.engine_id not in precision.engines:
        raise InvalidInputError(f"engine {engine.engine_id} does not load {precision.precision_id} weights; "
                                f"engines that do: {', '.join(precision.engines)}")
    if engine.engine_id not in kv_dtype.engines:
        raise InvalidInputError(f"engine {engine.engine_id} has no {kv_dtype.kv_dtype_id} KV cache; "
                                f"engines that do: {', '.join(kv_dtype.engines)}")
