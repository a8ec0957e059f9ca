"""Architecture math from a model's `config.json`: parameters, KV cache, MoE expert coverage.

Parameter counts add up the weight matrices of every decoder layer (attention: GQA, MLA,
gated, linear attention or Mamba; dense MLP; routed and shared experts; router; norms),
the input embedding and the LM head (unless tied). Multi-token-prediction heads
(`num_nextn_predict_layers`) are not counted, as the published totals exclude them
(DeepSeek-V3 "671B" excludes its 14B MTP module [1]).

"Active" parameters are those used for one token: everything except the routed experts
not chosen (top-k of E). Developers differ on whether the input embedding counts as
active: DeepSeek, Qwen and Mistral include it, OpenAI's gpt-oss card excludes it [2];
both are reported. Compute and weight traffic use `active_compute_params`, which leaves
out the embedding table (a lookup of one row, not a matrix product).

[1] DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv:2412.19437, 2024.
[2] OpenAI, "gpt-oss-120b & gpt-oss-20b Model Card", arXiv:2508.10925, 2025 (Table 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner import units
from planner.errors import InvalidInputError, brief, require_positive
from planner.model._layers import LayerSpec, build_layers, flatten_config, get
from planner.model.config_values import check_config_values


@dataclass(frozen=True)
class MoeGroup:
    """MoE layers that share an expert layout."""

    n_layers: int
    n_experts: int
    top_k: int
    params_per_expert: float


@dataclass(frozen=True)
class WindowGroup:
    """Attention layers whose cache holds at most `window_tokens` tokens per sequence."""

    window_tokens: int
    kv_elems_per_token: float
    attn_flops_per_ctx_token: float


@dataclass(frozen=True)
class Architecture:
    """What the memory and performance models need to know about a decoder-only model."""

    model_type: str
    hidden_size: int
    n_layers: int
    n_attention_heads: int
    n_kv_heads: int  # KV heads a tensor-parallel rank can split; 1 for MLA (latent is replicated)
    attention: str  # gqa | mha | mla | hybrid-linear | hybrid-mamba | sliding | chunked
    vocab_size: int
    tied_embeddings: bool
    embedding_params: float
    lm_head_params: float
    always_read_params: float  # every decode step: attention, dense MLP, shared experts, router, norms, LM head
    moe_groups: tuple[MoeGroup, ...]
    kv_elems_per_token_full: float  # layers that keep every token
    window_groups: tuple[WindowGroup, ...]
    state_elems_per_seq: float  # recurrent state (linear attention, Mamba), fixed per sequence
    attn_flops_per_ctx_token_full: float
    prefill_attn_flops_per_ctx_token_full: float
    attn_ctx_cap_tokens: int  # sparse attention attends to at most this many tokens (0 = all)
    fixed_flops_per_token: float
    n_attention_layers: int
    n_mtp_layers: int
    approximations: tuple[str, ...]
    host_launches: float  # kernels all decoder layers launch in one forward step without a CUDA graph
    quant_launches: float  # more of them where the GEMMs read quantized activations (`_layers.layer_launches`)
    # MLA's latent projections (q_a, q_b, kv_a, kv_b of every MLA layer; o_proj excluded): the attention weights
    # NVIDIA's NVFP4 DeepSeek checkpoints keep in BF16 (`quantization.weight_format`); 0 for other attention kinds
    mla_latent_proj_params: float = 0.0

    @property
    def is_moe(self) -> bool:
        return bool(self.moe_groups)

    @property
    def routed_expert_params(self) -> float:
        return sum(g.n_layers * g.n_experts * g.params_per_expert for g in self.moe_groups)

    @property
    def active_routed_params(self) -> float:
        return sum(g.n_layers * g.top_k * g.params_per_expert for g in self.moe_groups)

    @property
    def total_params(self) -> float:
        return self.embedding_params + self.always_read_params + self.routed_expert_params

    @property
    def active_params(self) -> float:
        """Active parameters per token including the input embedding (the convention most cards use)."""
        return self.embedding_params + self.always_read_params + self.active_routed_params

    @property
    def active_compute_params(self) -> float:
        """Parameters in matrix products for one token: active minus the embedding lookup, plus the LM head's
        product with the embedding matrix where the two are tied (the lookup table is also the head's weight)."""
        return self.always_read_params + self.active_routed_params + self.tied_head_params

    @property
    def tied_head_params(self) -> float:
        """The LM head's weights that are the embedding matrix (tied embeddings), 0 where the head is its own
        matrix (counted in `always_read_params`)."""
        return self.embedding_params if self.tied_embeddings else 0.0

    @property
    def head_gemm_params(self) -> float:
        """The LM head's matrix product per token (vocab x hidden), tied or not."""
        return self.lm_head_params + self.tied_head_params

    @property
    def total_params_b(self) -> float:
        return self.total_params / units.BILLION

    @property
    def active_params_b(self) -> float:
        return self.active_params / units.BILLION

    @property
    def active_compute_params_b(self) -> float:
        return self.active_compute_params / units.BILLION

    @property
    def expert_fraction(self) -> float:
        """Share of all parameters that sit in routed experts."""
        return self.routed_expert_params / self.total_params


def _attention_label(layers: list[LayerSpec], cfg: dict[str, Any]) -> str:
    kinds = {layer.attention_kind for layer in layers}
    if "linear" in kinds:
        return "hybrid-linear"
    if "mamba" in kinds:
        return "hybrid-mamba"
    if cfg.get("kv_lora_rank"):
        return "mla"
    if "chunked" in kinds:
        return "chunked"
    if "sliding" in kinds or "compressed" in kinds:
        return "sliding"
    heads = int(get(cfg, "num_attention_heads"))
    return "mha" if int(get(cfg, "num_key_value_heads", heads)) == heads else "gqa"


def architecture_from_config(raw: dict[str, Any]) -> Architecture:
    """Build an `Architecture` from a parsed config.json (HF or Mistral params.json keys).

    Raises InvalidInputError naming the missing or malformed field.
    """
    cfg = flatten_config(raw)
    check_config_values(cfg)
    model_type = str(cfg.get("model_type") or "")
    layers = build_layers(cfg, model_type)
    hidden = int(get(cfg, "hidden_size"))
    vocab = int(get(cfg, "vocab_size", 0) or 0)
    if vocab < 1:
        raise InvalidInputError("config.json lacks 'vocab_size'")
    tied_default = model_type in {"gemma", "gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text"}
    tied = bool(cfg.get("tie_word_embeddings", tied_default))
    embedding = float(vocab * hidden)
    lm_head = 0.0 if tied else float(vocab * hidden)
    groups: dict[tuple[int, int, float], int] = {}
    for layer in layers:
        if layer.n_experts:
            key = (layer.n_experts, layer.top_k, layer.params_per_expert)
            groups[key] = groups.get(key, 0) + 1
    always = (sum(l.attention_params + l.dense_mlp_params + l.shared_expert_params + l.router_params + l.norm_params
                  for l in layers)
              + hidden  # final norm
              + lm_head)
    full = [l for l in layers if l.attention_kind in ("full", "compressed")]
    windows: dict[int, list[float]] = {}
    for layer in layers:
        if layer.attention_kind in ("sliding", "chunked") and layer.window_tokens:
            entry = windows.setdefault(layer.window_tokens, [0.0, 0.0])
            entry[0] += layer.kv_elems_per_token
            entry[1] += layer.attn_flops_per_ctx_token
        elif layer.attention_kind in ("sliding", "chunked"):  # no window size given: behaves as full
            full.append(layer)
    approximations = []
    if model_type in ("deepseek_v4",):
        approximations.append("DeepSeek-V4 compressed attention is approximated (one K=V vector per compressed block)")
    if cfg.get("enable_moe_block") or cfg.get("attention_k_eq_v"):
        approximations.append("Gemma 4 layer layout is approximated from config fields")
    heads = int(get(cfg, "num_attention_heads"))
    kv_heads = 1 if cfg.get("kv_lora_rank") else int(get(cfg, "num_key_value_heads", heads))
    return Architecture(
        model_type=model_type, hidden_size=hidden, n_layers=len(layers), n_attention_heads=heads,
        n_kv_heads=max(1, kv_heads), attention=_attention_label(layers, cfg), vocab_size=vocab,
        tied_embeddings=tied, embedding_params=embedding, lm_head_params=lm_head,
        always_read_params=always,
        moe_groups=tuple(MoeGroup(n, e, k, p) for (e, k, p), n in sorted(groups.items())),
        kv_elems_per_token_full=sum(l.kv_elems_per_token for l in full),
        window_groups=tuple(WindowGroup(w, kv, fl) for w, (kv, fl) in sorted(windows.items())),
        state_elems_per_seq=sum(l.state_elems for l in layers),
        attn_flops_per_ctx_token_full=sum(l.attn_flops_per_ctx_token for l in full),
        prefill_attn_flops_per_ctx_token_full=sum(l.prefill_attn_flops_per_ctx_token for l in full),
        attn_ctx_cap_tokens=max((l.attn_ctx_cap_tokens for l in layers), default=0),
        fixed_flops_per_token=sum(l.fixed_flops_per_token for l in layers),
        n_attention_layers=sum(1 for l in layers if l.attention_kind != "none"),
        n_mtp_layers=int(cfg.get("num_nextn_predict_layers") or cfg.get("mtp_num_hidden_layers") or 0),
        approximations=tuple(approximations),
        host_launches=float(sum(l.host_launches for l in layers)),
        quant_launches=float(sum(l.quant_launches for l in layers)),
        mla_latent_proj_params=_mla_latent_proj_params(cfg, hidden, heads) * sum(
            1 for l in layers if l.attention_kind != "none") if cfg.get("kv_lora_rank") else 0.0,
    )


def _mla_latent_proj_params(cfg: dict[str, Any], hidden: int, heads: int) -> float:
    """One MLA layer's q_a/q_b (or q), kv_a_with_mqa and kv_b projection weights ([1] Section 2.1.1)."""
    kv_lora, q_lora = int(cfg["kv_lora_rank"]), int(cfg.get("q_lora_rank") or 0)
    rope, nope = int(cfg.get("qk_rope_head_dim") or 0), int(cfg.get("qk_nope_head_dim") or 0)
    v_dim = int(cfg.get("v_head_dim") or nope)
    q = hidden * q_lora + q_lora * heads * (nope + rope) if q_lora else hidden * heads * (nope + rope)
    return float(q + hidden * (kv_lora + rope) + kv_lora * heads * (nope + v_dim))


def kv_cache_bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, kv_bytes_per_elem: float) -> float:
    """KV bytes one token adds under grouped-query (or multi-head) attention.

    kv_bytes = 2 (K and V) x layers x kv_heads x head_dim x bytes per element [3].

    [3] J. Ainslie et al., "GQA: Training Generalized Multi-Query Transformer Models", EMNLP 2023, arXiv:2305.13245.
    """
    require_positive(n_layers=n_layers, n_kv_heads=n_kv_heads, head_dim=head_dim, kv_bytes_per_elem=kv_bytes_per_elem)
    return (2                      # K and V
            * n_layers * n_kv_heads * head_dim
            * kv_bytes_per_elem)   # 2 for bf16, 1 for fp8


def mla_kv_cache_bytes_per_token(n_layers: int, kv_lora_rank: int, qk_rope_head_dim: int,
                                 kv_bytes_per_elem: float) -> float:
    """KV bytes one token adds under multi-head latent attention: the compressed latent plus the RoPE key.

    kv_bytes = layers x (kv_lora_rank + qk_rope_head_dim) x bytes per element [1] (Section 2.1.1).
    """
    require_positive(n_layers=n_layers, kv_lora_rank=kv_lora_rank, qk_rope_head_dim=qk_rope_head_dim,
                     kv_bytes_per_elem=kv_bytes_per_elem)
    return n_layers * (kv_lora_rank + qk_rope_head_dim) * kv_bytes_per_elem


def kv_bytes_per_token(arch: Architecture, kv_bytes_per_elem: float) -> float:
    """Headline KV bytes per token: every layer that caches tokens, windows not yet applied."""
    require_positive(kv_bytes_per_elem=kv_bytes_per_elem)
    elems = arch.kv_elems_per_token_full + sum(g.kv_elems_per_token for g in arch.window_groups)
    return elems * kv_bytes_per_elem


def kv_bytes_per_sequence(arch: Architecture, context_tokens: Any, kv_bytes_per_elem: Any,
                          *, state_bytes_per_elem: float = 2.0) -> Any:
    """KV cache (plus recurrent state) of one sequence holding `context_tokens` tokens.

    Full-attention layers keep every token; sliding-window and chunked layers keep at most
    their window (chunked attention keeps up to one chunk, as vLLM allocates it [4]);
    linear-attention and Mamba layers keep a fixed state. Accepts arrays for `context_tokens` and
    `kv_bytes_per_elem`.

    [4] vLLM, "Hybrid KV cache manager" design doc, docs.vllm.ai/en/latest/design/hybrid_kv_cache_manager.html
    """
    ctx = np.asarray(context_tokens, dtype=float)
    if np.any(~np.isfinite(ctx)) or np.any(ctx < 0):
        raise InvalidInputError(f"context_tokens must be finite and >= 0, got {context_tokens!r}")
    kvb = np.asarray(kv_bytes_per_elem, dtype=float)
    if kvb.ndim == 0:
        require_positive(kv_bytes_per_elem=float(kvb))
    elif not np.all(np.isfinite(kvb) & (kvb > 0)):
        raise InvalidInputError(f"kv_bytes_per_elem must be finite and > 0, got {brief(float(np.min(kvb)))}")
    require_positive(state_bytes_per_elem=state_bytes_per_elem)
    elems = arch.kv_elems_per_token_full * ctx
    for group in arch.window_groups:
        elems = elems + group.kv_elems_per_token * np.minimum(ctx, group.window_tokens)
    total = elems * kvb + arch.state_elems_per_seq * state_bytes_per_elem
    return float(total) if np.ndim(total) == 0 else total


def expected_experts_touched(n_experts: int, top_k: int, batch_tokens: Any) -> Any:
    """Expected number of distinct experts one MoE layer reads for `batch_tokens` tokens.

    With uniform, independent routing each token misses a given expert with probability
    (1 - k/E), so E x (1 - (1 - k/E)^B) experts are touched [5]. Real routers are
    imbalanced, which touches slightly fewer; this is the bandwidth-side upper bound.

    [5] DESIGN.md modelling notes; cf. W. Fedus et al., "Switch Transformers", JMLR 23, 2022.
    """
    require_positive(n_experts=n_experts, top_k=top_k)
    if top_k > n_experts:
        raise InvalidInputError(f"top_k must be <= n_experts ({n_experts}), got {top_k}")
    b = np.asarray(batch_tokens, dtype=float)
    touched = n_experts * (1.0 - (1.0 - top_k / n_experts) ** np.maximum(b, 0.0))
    return float(touched) if np.ndim(touched) == 0 else touched


def weight_params_read_per_step(arch: Architecture, batch_tokens: Any) -> Any:
    """Parameters streamed from memory for one forward step over `batch_tokens` tokens.

    Dense parts are read once per step whatever the batch; each MoE layer reads the
    experts its tokens were routed to (see `expected_experts_touched`).
    """
    params = np.full(np.shape(batch_tokens), arch.always_read_params, dtype=float)
    for g in arch.moe_groups:
        params = params + g.n_layers * g.params_per_expert * expected_experts_touched(g.n_experts, g.top_k,
                                                                                      batch_tokens)
    return float(params) if np.ndim(params) == 0 else params


def params_within(computed_b: float, published_b: float) -> float:
    """Relative difference |computed - published| / published."""
    require_positive(published_b=published_b)
    return abs(computed_b - published_b) / published_b if math.isfinite(computed_b) else math.inf
