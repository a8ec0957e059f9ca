"""Memory per GPU of a fine-tuning run: weights, adapter, gradients, optimizer, master weights, activations.

Bytes per parameter follow the mixed-precision accounting of ZeRO [1] (bf16 weights and gradients, fp32
master weights and AdamW moments: 2 + 2 + 4 + 4 + 4 = 16 bytes per trained parameter) with FSDP / ZeRO-3
sharding: weights, gradients, master weights and optimizer states are divided over the GPUs, while each
GPU keeps the activations of its own micro-batch and all-gathers the full weights of the layer it runs.

QLoRA [2] stores the frozen base in NF4 with one fp8 absmax per 64-weight block and one fp32 constant per
256 blocks (double quantization): 4 + 8/64 + 32/(64 x 256) = 4.127 bits per weight. The embedding and the
LM head stay bf16 (bitsandbytes quantizes linear layers only; `lm_head` is skipped). LoRA [3] adapters sit
on every linear projection of attention and MLP (q, k, v, o, gate, up, down: PEFT's "all-linear" minus the
LM head, the QLoRA paper's choice); they are kept in fp32, as PEFT does by default (autocast_adapter_dtype).
The 8-bit optimizer is block-wise 8-bit AdamW [4]: 1 byte per moment plus one fp32 scale per 2048 values.

Activations per layer are those of Korthikanti et al. [5], eq. (1) without the 5as/h attention-score term,
which FlashAttention never stores: 34 x s x b x h bytes; with full activation checkpointing each layer keeps
its 2sbh-byte input and one layer is live at a time during recomputation: 2sbhL + 34sbh. The fp32 logits
the loss reads add 4 x s x b x vocab bytes (transformers upcasts logits to float for the cross entropy).

[1] S. Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", SC20,
    arXiv:1910.02054
[2] T. Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs", NeurIPS 2023, arXiv:2305.14314 (Sec. 3)
[3] E. Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022, arXiv:2106.09685
[4] T. Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR 2022, arXiv:2110.02861
[5] V. Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models", MLSys 2023, arXiv:2205.05198
"""

from __future__ import annotations

from dataclasses import dataclass

from planner import units
from planner.model.architecture import Architecture

METHODS = ("full", "lora", "qlora")
OPTIMIZERS = ("adamw", "adamw-8bit")

BF16_BYTES = 2
FP32_BYTES = 4
NF4_BITS_PER_WEIGHT = 4 + 8 / 64 + 32 / (64 * 256)  # QLoRA [2]: 4-bit codes + fp8 block absmax + fp32 per 256 blocks
ADAMW_MOMENTS = 2  # first and second moment
ADAM_8BIT_BYTES_PER_MOMENT = 1 + FP32_BYTES / 2048  # [4]: 8-bit codes, one fp32 scale per 2048-value block
KORTHIKANTI_BYTES_PER_SBH = 34  # [5] eq. (1), the sbh coefficient of one layer (attention scores excluded)
CHECKPOINT_BYTES_PER_SBH = 2  # [5] Sec. 4: a checkpointed layer keeps its bf16 input
LOGIT_BYTES = FP32_BYTES
GATED_MLP_MATRICES = 3  # gate, up, down
ATTENTION_MATRICES = 4  # q, k, v, o
FSDP_LAYERS_GATHERED = 2  # the layer running and the next one prefetched (FSDP forward/backward prefetch)


@dataclass(frozen=True)
class AdapterParams:
    """LoRA adapter parameters: all of them (memory) and those one token passes through (compute)."""

    total: float
    active: float


def linear_params(arch: Architecture) -> float:
    """Weights in the decoder's linear projections (attention, dense MLP, shared experts, routers), i.e.
    the always-read parameters less the LM head and the norms (2h per layer + the final h)."""
    norms = 2.0 * arch.hidden_size * arch.n_layers + arch.hidden_size
    return max(arch.always_read_params - arch.lm_head_params - norms, 0.0)


def lora_adapter_params(arch: Architecture, rank: int) -> AdapterParams:
    """Adapter parameters of rank-r LoRA on every attention and MLP projection.

    A projection of shape d_in x d_out gains r (d_in + d_out) parameters. Every projection of a GQA/MHA
    decoder has one side equal to hidden_size h, so a matrix of p weights gains r (h + p / h) and a set of
    n matrices holding P weights gains r (n h + P / h): exact for Llama-style layers, approximate for MLA's
    low-rank projections, linear attention and Mamba. Dense part: 4 attention matrices per attention layer
    and 3 MLP (or shared-expert) matrices per layer; each routed expert adds 3 matrices.
    """
    h = float(arch.hidden_size)
    dense_matrices = ATTENTION_MATRICES * arch.n_attention_layers + GATED_MLP_MATRICES * arch.n_layers
    dense = rank * (dense_matrices * h + linear_params(arch) / h)
    per_expert = [rank * (GATED_MLP_MATRICES * h + g.params_per_expert / h) for g in arch.moe_groups]
    routed = sum(g.n_layers * g.n_experts * p for g, p in zip(arch.moe_groups, per_expert, strict=True))
    active = sum(g.n_layers * g.top_k * p for g, p in zip(arch.moe_groups, per_expert, strict=True))
    return AdapterParams(total=dense + routed, active=dense + active)


def largest_layer_params(arch: Architecture) -> float:
    """Parameters of one decoder layer (the mean layer), the unit FSDP all-gathers."""
    return (arch.total_params - arch.embedding_params - arch.lm_head_params) / arch.n_layers


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU of one fine-tuning configuration, by component."""

    weights_gb: float
    adapter_gb: float
    gradients_gb: float
    optimizer_gb: float
    master_weights_gb: float
    activations_gb: float
    overhead_gb: float

    @property
    def total_gb(self) -> float:
        return (self.weights_gb + self.adapter_gb + self.gradients_gb + self.optimizer_gb + self.master_weights_gb
                + self.activations_gb + self.overhead_gb)

    def as_dict(self) -> dict[str, float]:
        return {"weights": self.weights_gb, "adapter": self.adapter_gb, "gradients": self.gradients_gb,
                "optimizer": self.optimizer_gb, "master_weights": self.master_weights_gb,
                "activations": self.activations_gb, "overhead": self.overhead_gb}


def base_weight_bytes(arch: Architecture, method: str) -> float:
    """Frozen or trained base weights: bf16, or NF4 on the linear layers for QLoRA (embedding/LM head bf16)."""
    if method != "qlora":
        return arch.total_params * BF16_BYTES
    kept_bf16 = arch.embedding_params + arch.lm_head_params
    return ((arch.total_params - kept_bf16) * NF4_BITS_PER_WEIGHT / units.BITS_PER_BYTE
            + kept_bf16 * BF16_BYTES)


def activation_bytes(arch: Architecture, *, seq_len_tokens: int, micro_batch: int,
                     gradient_checkpointing: bool) -> float:
    """Activations one GPU holds for its micro-batch ([5], see the module note), logits included."""
    sbh = float(seq_len_tokens) * micro_batch * arch.hidden_size
    if gradient_checkpointing:
        layers = (CHECKPOINT_BYTES_PER_SBH * sbh * arch.n_layers  # every layer's input
                  + KORTHIKANTI_BYTES_PER_SBH * sbh)  # the one layer being recomputed
    else:
        layers = KORTHIKANTI_BYTES_PER_SBH * sbh * arch.n_layers
    logits = LOGIT_BYTES * float(seq_len_tokens) * micro_batch * arch.vocab_size
    return layers + logits


def memory_breakdown(arch: Architecture, *, method: str, optimizer: str, lora_rank: int, num_gpus: int,
                     seq_len_tokens: int, micro_batch: int, gradient_checkpointing: bool,
                     runtime_overhead_gb: float) -> MemoryBreakdown:
    """Memory per GPU under FSDP / ZeRO-3 over `num_gpus` (see the module note for every term).

    full:  weights bf16, gradients bf16, fp32 master weights, optimizer moments, all over num_gpus.
    lora:  frozen bf16 base, fp32 adapter with fp32 gradients, master copy not needed (already fp32).
    qlora: as lora with an NF4 base.
    overhead: `runtime_overhead_gb` plus, when sharded, FSDP_LAYERS_GATHERED layers of gathered base weights.
    """
    moment_bytes = FP32_BYTES if optimizer == "adamw" else ADAM_8BIT_BYTES_PER_MOMENT
    shard = float(num_gpus)
    base = base_weight_bytes(arch, method)
    if method == "full":
        trained = arch.total_params
        adapter = 0.0
        grads = trained * BF16_BYTES
        master = trained * FP32_BYTES
    else:
        trained = lora_adapter_params(arch, lora_rank).total
        adapter = trained * FP32_BYTES
        grads = trained * FP32_BYTES
        master = 0.0
    optim = trained * ADAMW_MOMENTS * moment_bytes
    gathered = 0.0
    if num_gpus > 1:
        gathered = FSDP_LAYERS_GATHERED * largest_layer_params(arch) * base / arch.total_params
    acts = activation_bytes(arch, seq_len_tokens=seq_len_tokens, micro_batch=micro_batch,
                            gradient_checkpointing=gradient_checkpointing)
    return MemoryBreakdown(weights_gb=base / shard / units.GB, adapter_gb=adapter / shard / units.GB,
                           gradients_gb=grads / shard / units.GB, optimizer_gb=optim / shard / units.GB,
                           master_weights_gb=master / shard / units.GB, activations_gb=acts / units.GB,
                           overhead_gb=runtime_overhead_gb + gathered / units.GB)
