"""Precisions: bytes per weight, which GPU unit computes them, and engine support.

Quantization changes three things (DESIGN.md): the bytes each weight takes (with scales:
GGUF Q4_K_M averages 4.89 bits per weight on Llama-3.1-8B), whether the GPU multiplies in
that format natively (FP8 needs Hopper, Ada, Blackwell or MI300-class parts; FP4 needs
Blackwell or MI355X) or dequantizes to 16-bit first (weight-only kernels such as Marlin),
and quality (`Precision.quality_risk`). Facts live in data/precisions.csv and data/gpus.csv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
    # MLA latent projections (`Architecture.mla_latent_proj_params`) where the checkpoint keeps them unquantized
    # (None: as the dense weights), and how much slower than `compute_format` their GEMMs run (1: same rate)
    mla_proj_bytes_per_param: Any = None
    mla_proj_slowdown: Any = 1.0
    # attention score/value BMMs (attention FLOPs) relative to `compute_format`'s rate: no serving engine runs
    # attention in FP4, so under a W4A4 format they run at the FP8 rate (2: half the FP4 rate)
    attn_bmm_slowdown: Any = 1.0
    # the non-expert GEMMs (attention projections, router, LM head: `Architecture.always_read_params`) relative to
    # `compute_format`'s rate, where the checkpoint keeps them in BF16 beside quantized experts (gpt-oss: 1 elsewhere)
    dense_gemm_slowdown: Any = 1.0
    # bytes of one activation element as the matmuls read it (`activation_bytes_per_elem`): what the fused
    # norm / activation kernels write before each GEMM (performance.decode_terms' activation traffic)
    activation_bytes_per_elem: Any = 2.0
    # token rows a decode step's non-expert GEMM kernel computes at least (`gemm_min_rows`): a tensor-core GEMM tile
    # pads the batch's tokens to its row count, so at small batch it does that many rows' FLOPs (1: no padding)
    gemm_min_rows: Any = 1.0

    def mla_proj_extra_bytes_per_param(self) -> Any:
        """Bytes an MLA latent projection weight takes beyond a dense weight (0 where they are the same)."""
        if self.mla_proj_bytes_per_param is None:
            return 0.0
        return np.asarray(self.mla_proj_bytes_per_param, dtype=float) - np.asarray(self.dense_bytes_per_param,
                                                                                      dtype=float)

    def total_bytes(self, arch: Architecture) -> float:
        dense = arch.always_read_params - arch.lm_head_params
        return (arch.routed_expert_params * self.expert_bytes_per_param
                + dense * self.dense_bytes_per_param
                + arch.mla_latent_proj_params * self.mla_proj_extra_bytes_per_param()
                + (arch.embedding_params + arch.lm_head_params) * self.embed_bytes_per_param)


# Precisions whose 4-bit weights the serving engines multiply with 8-bit activations, not 4-bit ones: MXFP4
# MoE on Blackwell runs MXFP8 activations x MXFP4 weights (TensorRT-LLM's default TRTLLM MoE backend on
# B200/GB200/B300/GB300; BF16 activations on Hopper, which has no FP4 units: "MoE Backend Support Matrix",
# nvidia.github.io/TensorRT-LLM/deployment-guide/deployment-guide-for-gpt-oss-on-trtllm.html; vLLM's FlashInfer
# MXFP4 x MXFP8 MoE kernels for SM100, github.com/vllm-project/vllm/issues/35528). So their FLOPs run at the
# FP8 rate, half the FP4 rate an NVFP4 (W4A4) checkpoint reaches. On MI355X the same ceiling is assumed.
W4A8_PRECISIONS = ("mxfp4",)
# Precisions whose checkpoints keep MLA's latent attention projections (q_a, q_b, kv_a, kv_b) in BF16: NVIDIA's
# NVFP4 DeepSeek checkpoints quantize the MLP linears (routed and shared experts, dense MLP) and, from the v2
# checkpoints on, the attention output projection (wo); the rest of the attention stays BF16 (model cards of
# huggingface.co/nvidia/DeepSeek-R1-FP4 and nvidia/DeepSeek-R1-0528-FP4-v2: "Compared to nvidia/DeepSeek-R1-0528-FP4,
# this checkpoint additionally quantizes the wo module in attention layers"; the 0528-FP4 tensors list the layer-0
# dense MLP in packed FP4). Those GEMMs run at the BF16 rate.
MLA_BF16_PROJ_PRECISIONS = ("nvfp4",)
# llama.cpp's gpt-oss GGUFs (convert_hf_to_gguf of the MXFP4 checkpoint) keep the experts in MXFP4 and store the other
# tensors (attention, router, token embedding, output) as Q8_0, 8.5 bits a weight, not the checkpoint's BF16:
# llama-bench reports "gpt-oss 20B MXFP4 MoE | 11.27 GiB | 20.91 B" against "GPT-OSS 20B F16 | 12.83 GiB" for the
# F16 variant (ggml-org/llama.cpp discussions #15396 and benchmark tables), i.e. 12.10 GB = 19.11 B expert params x
# 4.25 bits (10.15 GB) + 1.80 B other params x 8.5 bits (1.91 GB) + norms and biases, where BF16 gives 13.74 GB
GGUF_MXFP4_OTHER_BITS = 8.5
# Token rows of the smallest tile the serving engines' tensor-core GEMMs compute, by the GEMM's format (see
# `gemm_min_rows`). Hopper's warpgroup MMA multiplies a 64-row A tile (PTX ISA, "Asynchronous Warpgroup Level Matrix
# Multiply-Accumulate": shapes .m64nNk16 for f16/bf16 and .m64nNk32 for e4m3/e5m2); SGLang's block-FP8 Triton GEMM
# takes BLOCK_SIZE_M 64 down to a batch of one token on the H20 (its tuned table
# python/sglang/srt/layers/quantization/configs/N=17408,K=5120,device_name=NVIDIA_H20,dtype=fp8_w8a8,
# block_shape=[128, 128].json@1f4eca79, entry "1"). Marlin, the weight-only INT4 kernel behind AWQ and GPTQ in vLLM
# and SGLang, pads the activations to 16-row mma.sync tiles (m16n8k16; E. Frantar et al., "MARLIN: Mixed-Precision
# Auto-Regressive Parallel Inference on Large Language Models", arXiv:2408.11743: its cost is flat from batch 1 to 16).
GEMM_TILE_ROWS = 64
WEIGHT_ONLY_TILE_ROWS = 16
FP8_ACTIVATION_BYTES = 1.0  # e4m3 / int8 activations; their per-tensor or per-token scales are a few bytes per token


def activation_bytes_per_elem(precision: Precision, compute_format: str) -> float:
    """Bytes one activation element takes as the GEMMs read it in `compute_format`.

    W4A4 formats quantize the activations in the weights' own block format before every GEMM (NVFP4: e2m1 values
    with one e4m3 scale per 16 = 4.5 bits; OCP MXFP4: one e8m0 scale per 32 = 4.25 bits), so they take the
    precision's bits per weight; 8-bit GEMMs (FP8, INT8, and the W4A8 MXFP4 x MXFP8 MoE kernels) read one byte;
    16-bit and weight-only (dequantizing) GEMMs read BF16/FP16 activations (2 bytes).
    """
    if compute_format == "fp4":
        return precision.weight_bits_per_param / units.BITS_PER_BYTE
    if compute_format in ("fp8", "int8"):
        return FP8_ACTIVATION_BYTES
    return UNQUANTIZED_BITS / units.BITS_PER_BYTE


def weight_format(precision: Precision, gpu: Gpu | None, *, model_native_precision: str = "bf16",
                  gguf: bool = False) -> WeightFormat:
    """How a model stored at `precision` is held and computed on `gpu`.

    A checkpoint that ships experts in MXFP4 beside BF16 attention (gpt-oss) keeps that
    split when served at its native precision; as a GGUF (`gguf`: an engine that loads GGUF files, llama.cpp) the
    non-expert tensors are Q8_0 (GGUF_MXFP4_OTHER_BITS). With `gpu=None` (a bare memory budget) the
    bytes are the same and the compute format is reported as not native.
    """
    q = precision.weight_bits_per_param / units.BITS_PER_BYTE
    u = UNQUANTIZED_BITS / units.BITS_PER_BYTE
    experts_only = precision.precision_id == model_native_precision == "mxfp4"
    native = gpu is not None and gpu.supports(precision.compute_format)
    compute = precision.compute_format if native else "bf16"
    if native and precision.precision_id in W4A8_PRECISIONS and gpu.supports("fp8"):
        compute = "fp8"  # 4-bit weights, 8-bit activations: the matmuls run on the fp8 tensor cores
    rate = (gpu.dense_tflops_or_none(compute) or gpu.bf16_dense_tflops) if gpu is not None else None
    bmm = 1.0
    if native and compute == "fp4" and gpu.supports("fp8"):
        # attention kernels (FlashMLA, FlashInfer, TensorRT-LLM's FMHA/MLA) run BF16 or FP8, never FP4
        bmm = rate / (gpu.dense_tflops_or_none("fp8") or rate)
    dense_slow = 1.0
    if experts_only and rate and compute != "bf16":
        # gpt-oss ships only its MoE experts in MXFP4; attention (qkv, out), router, embedding and unembedding are BF16
        # tensors, which TensorRT-LLM leaves unquantized (load_hf_quant_config: default exclude_modules
        # 'block.*.attn.qkv', 'block.*.attn.out', 'block.*.mlp.gate', 'embedding', 'unembedding') and vLLM runs through
        # UnquantizedLinearMethod (its Mxfp4Config quantizes the fused MoE only): BF16 x BF16 GEMMs at the BF16 rate
        dense_slow = rate / gpu.bf16_dense_tflops
    mla_b, mla_slow = None, 1.0
    if precision.precision_id in MLA_BF16_PROJ_PRECISIONS:
        mla_b = u
        mla_slow = rate / gpu.bf16_dense_tflops if rate else 1.0
    other = GGUF_MXFP4_OTHER_BITS / units.BITS_PER_BYTE if experts_only and gguf else u
    return WeightFormat(
        precision_id=precision.precision_id,
        expert_bytes_per_param=q,
        dense_bytes_per_param=other if experts_only else q,
        embed_bytes_per_param=q if precision.quantizes_embeddings else other,
        compute_format=compute,
        native=native,
        mla_proj_bytes_per_param=mla_b,
        mla_proj_slowdown=mla_slow,
        attn_bmm_slowdown=bmm,
        dense_gemm_slowdown=dense_slow,
        activation_bytes_per_elem=activation_bytes_per_elem(precision, compute),
        gemm_min_rows=gemm_min_rows(precision, compute, gguf=gguf),
    )


def gemm_min_rows(precision: Precision, compute_format: str, *, gguf: bool = False) -> float:
    """Token rows a decode step's weight GEMMs compute at least: the row count of the kernel's tensor-core tile.

    A GEMM of T tokens against a weight runs on tiles of a fixed number of token rows, so at T below the tile it does
    the tile's FLOPs. Whether that binds depends on the GPU: a tile of R rows in BF16 does R FLOPs per weight byte,
    which is below the ridge point of every datacenter GPU but the H20 (148 dense BF16 TFLOPS over 4.0 TB/s: 37
    FLOPs per byte), whose batch-1 decode is compute-bound at R = 64. GEMM_TILE_ROWS for 16-bit and 8-bit GEMMs,
    WEIGHT_ONLY_TILE_ROWS for the dequantizing INT4 kernels (Marlin), 1 (no padding) for GGUF engines, whose
    batch-1 matrix-vector kernels (llama.cpp's mmvq / mmv) run no tensor-core tiles.
    """
    if gguf or precision.kind == "gguf":
        return 1.0
    if precision.kind == "int" and compute_format in ("bf16", "fp16"):
        return float(WEIGHT_ONLY_TILE_ROWS)
    return float(GEMM_TILE_ROWS)


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
