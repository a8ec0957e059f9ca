"""Per-layer description of a decoder built from a Hugging Face `config.json`.

Private to `architecture.py`. Each `LayerSpec` holds the parameter count of one decoder
layer split by what a decode step reads (attention, dense MLP, shared and routed experts),
the KV cache elements it keeps per token (or per sequence, for recurrent state), and the
attention FLOPs per (query token x context token).

Formulas follow the reference implementations in Hugging Face `transformers`
(modeling_llama, modeling_deepseek_v3, modeling_qwen3_next, modeling_nemotron_h,
modeling_gpt_oss, modeling_llama4) and vLLM's KV-cache specs; see `architecture.py` for
the references of the aggregate quantities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.errors import InvalidInputError

# Field-name aliases seen across config.json families (HF, Mistral params.json).
_ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "dim", "d_model", "n_embd"),
    "num_hidden_layers": ("num_hidden_layers", "n_layers", "num_layers", "n_layer"),
    "num_attention_heads": ("num_attention_heads", "n_heads", "n_head"),
    "num_key_value_heads": ("num_key_value_heads", "n_kv_heads", "num_kv_heads"),
    "intermediate_size": ("intermediate_size", "hidden_dim", "ffn_dim", "n_inner"),
    "vocab_size": ("vocab_size",),
    "n_routed_experts": ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts"),
    "num_experts_per_tok": ("num_experts_per_tok", "num_experts_per_token", "experts_per_token", "top_k_experts",
                            "moe_top_k"),
}

# Families whose MLP has no gate projection (up/down only).
_NON_GATED_MLP = {"nemotron_h", "gpt_j", "gptj", "falcon", "gpt2", "starcoder2", "gpt_bigcode", "phi"}
# Families whose q/k/v projections carry a bias even when config says nothing.
_QKV_BIAS = {"qwen2", "qwen2_moe"}
# Families that tie input and output embeddings unless config says otherwise.
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text"}


@dataclass(frozen=True)
class LayerSpec:
    """One decoder layer: parameters, KV elements and attention FLOP coefficients."""

    attention_kind: str  # full | sliding | chunked | linear | mamba | none
    window_tokens: int  # 0 = unbounded (full attention)
    attention_params: float
    kv_elems_per_token: float  # cached K+V elements per token (latent for MLA)
    state_elems: float  # fixed recurrent state per sequence (linear attention, Mamba)
    attn_flops_per_ctx_token: float  # decode: FLOPs per query token per cached token
    prefill_attn_flops_per_ctx_token: float  # prefill: same, non-absorbed MLA form
    attn_ctx_cap_tokens: int  # 0 = attends to all cached tokens (sparse attention caps it)
    fixed_flops_per_token: float  # recurrent-state update FLOPs per token
    dense_mlp_params: float
    shared_expert_params: float
    router_params: float
    n_experts: int
    top_k: int
    params_per_expert: float
    norm_params: float
    host_launches: int = 0  # kernels one forward step of this layer launches (`layer_launches`)
    quant_launches: int = 0  # of which extra where the GEMMs read quantized activations (`layer_launches`)


def get(cfg: dict[str, Any], name: str, default: Any = None) -> Any:
    """First present alias of `name` in cfg, else default."""
    for key in _ALIASES.get(name, (name,)):
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def flatten_config(raw: dict[str, Any]) -> dict[str, Any]:
    """Merge a multimodal config's `text_config` over its top level (the language model is what we size)."""
    if not isinstance(raw, dict):
        raise InvalidInputError("config must be a JSON object")
    cfg = {k: v for k, v in raw.items() if k not in ("text_config", "vision_config", "audio_config")}
    text = raw.get("text_config")
    if isinstance(text, dict):
        cfg.update(text)
        if raw.get("tie_word_embeddings") is not None and text.get("tie_word_embeddings") is None:
            cfg["tie_word_embeddings"] = raw["tie_word_embeddings"]
    return cfg


def _int(cfg: dict[str, Any], name: str, default: Any = None) -> int:
    value = get(cfg, name, default)
    if value is None:
        raise InvalidInputError(f"config.json lacks {name!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
        raise InvalidInputError(f"config.json field {name!r} must be a non-negative integer, got {value!r}")
    return int(value)


def _layer_kinds(cfg: dict[str, Any], n_layers: int) -> list[str]:
    """Attention kind of every layer, from whichever field the family uses."""
    types = cfg.get("layer_types")
    if isinstance(types, list) and len(types) == n_layers:
        mapping = {"full_attention": "full", "sliding_attention": "sliding", "linear_attention": "linear",
                   "chunked_attention": "chunked", "attention": "full", "mamba": "mamba"}
        return [mapping.get(str(t), "full") for t in types]
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(pattern, str) and len(pattern) == n_layers:
        return [{"M": "mamba", "*": "full"}.get(ch, "none") for ch in pattern]
    blocks = cfg.get("layers_block_type")
    if isinstance(blocks, list) and len(blocks) == n_layers:
        return [{"mamba": "mamba", "attention": "full"}.get(str(b), "none") for b in blocks]
    swa = cfg.get("hybrid_layer_pattern")  # MiMo: 1 = sliding-window layer, 0 = full attention
    if isinstance(swa, list) and len(swa) == n_layers:
        return ["sliding" if flag else "full" for flag in swa]
    interval = cfg.get("full_attention_interval")
    if isinstance(interval, int) and interval > 1:
        return ["full" if (i + 1) % interval == 0 else "linear" for i in range(n_layers)]
    if cfg.get("attention_chunk_size"):
        flags = cfg.get("no_rope_layers")
        if not (isinstance(flags, list) and len(flags) == n_layers):
            interval = _int(cfg, "no_rope_layer_interval", 4)
            flags = [int((i + 1) % interval != 0) for i in range(n_layers)]
        return ["chunked" if f else "full" for f in flags]
    ratios = cfg.get("compress_ratios")
    if isinstance(ratios, list) and len(ratios) >= n_layers and cfg.get("sliding_window"):
        return ["sliding" if not r else "compressed" for r in ratios[:n_layers]]
    window = cfg.get("sliding_window")
    uses_window = cfg.get("use_sliding_window", True)
    if window and uses_window and not cfg.get("max_window_layers"):
        return ["sliding"] * n_layers
    return ["full"] * n_layers


def _mlp_kinds(cfg: dict[str, Any], n_layers: int, n_experts: int) -> list[str]:
    """'dense', 'moe' or 'none' for every layer."""
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(pattern, str) and len(pattern) == n_layers:
        return [{"-": "dense", "E": "moe"}.get(ch, "none") for ch in pattern]
    blocks = cfg.get("layers_block_type")
    if isinstance(blocks, list) and len(blocks) == n_layers:
        return [{"mlp": "dense", "moe": "moe"}.get(str(b), "none") for b in blocks]
    if n_experts <= 1:
        return ["dense"] * n_layers
    freq_list = cfg.get("moe_layer_freq")
    if isinstance(freq_list, list) and len(freq_list) >= n_layers:
        return ["moe" if flag else "dense" for flag in freq_list[:n_layers]]
    if n_experts <= 1:
        return ["dense"] * n_layers
    kinds = ["moe"] * n_layers
    first_dense = int(cfg.get("first_k_dense_replace") or 0)
    freq = int(cfg.get("moe_layer_freq") or 1)
    step = int(cfg.get("interleave_moe_layer_step") or 0)
    sparse_step = int(cfg.get("decoder_sparse_step") or 1)
    mlp_only = set(cfg.get("mlp_only_layers") or [])
    for i in range(n_layers):
        if i < first_dense or (i - first_dense) % freq != 0:
            kinds[i] = "dense"
        if step > 1 and (i + 1) % step != 0:
            kinds[i] = "dense"
        if sparse_step > 1 and (i + 1) % sparse_step != 0:
            kinds[i] = "dense"
        if i in mlp_only:
            kinds[i] = "dense"
    return kinds


def _mlp_params(hidden: int, ffn: int, gated: bool) -> float:
    return (3 if gated else 2) * hidden * ffn


def _attention(cfg: dict[str, Any], kind: str, hidden: int,
               model_type: str) -> tuple[float, float, float, float, int, float]:
    """(params, kv elems/token, decode attn FLOPs/ctx token, prefill attn FLOPs/ctx token, ctx cap, state elems)."""
    heads = _int(cfg, "num_attention_heads")
    if kind == "linear":
        nk, nv = _int(cfg, "linear_num_key_heads"), _int(cfg, "linear_num_value_heads")
        dk, dv = _int(cfg, "linear_key_head_dim"), _int(cfg, "linear_value_head_dim")
        kernel = _int(cfg, "linear_conv_kernel_dim", 4)
        key_dim, value_dim = nk * dk, nv * dv
        conv_dim = 2 * key_dim + value_dim
        params = (hidden * (2 * key_dim + 2 * value_dim)  # in_proj_qkvz
                  + hidden * 2 * nv                         # in_proj_ba (beta, alpha)
                  + conv_dim * kernel                       # depthwise causal conv
                  + 2 * nv + dv                             # dt_bias, A_log, gated norm
                  + value_dim * hidden)                     # out_proj
        state = nv * dk * dv + conv_dim * (kernel - 1)
        return params, 0.0, 0.0, 0.0, 0, state
    if kind == "mamba":
        n_heads, head_dim = _int(cfg, "mamba_num_heads"), _int(cfg, "mamba_head_dim")
        groups, d_state = _int(cfg, "n_groups", 1), _int(cfg, "ssm_state_size")
        kernel = _int(cfg, "conv_kernel", 4)
        d_inner = n_heads * head_dim
        conv_dim = d_inner + 2 * groups * d_state
        params = (hidden * (d_inner + conv_dim + n_heads)  # in_proj: z, xBC, dt
                  + conv_dim * (kernel + 1)                 # conv weight and bias
                  + 3 * n_heads + d_inner                   # dt_bias, A_log, D, norm
                  + d_inner * hidden)                       # out_proj
        state = n_heads * head_dim * d_state + conv_dim * (kernel - 1)
        return params, 0.0, 0.0, 0.0, 0, state
    if cfg.get("kv_lora_rank"):
        return _mla(cfg, heads, hidden)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    kv_heads = _int(cfg, "num_key_value_heads", heads)
    v_head_dim = int(cfg.get("v_head_dim") or head_dim)
    if kind == "sliding" and cfg.get("swa_num_key_value_heads"):  # MiMo: SWA layers have their own shape
        heads = int(cfg.get("swa_num_attention_heads") or heads)
        kv_heads = _int(cfg, "swa_num_key_value_heads")
        head_dim = int(cfg.get("swa_head_dim") or head_dim)
        v_head_dim = int(cfg.get("swa_v_head_dim") or v_head_dim)
    is_global = kind == "full"
    if is_global and cfg.get("global_head_dim"):
        head_dim = _int(cfg, "global_head_dim")
        kv_heads = int(cfg.get("num_global_key_value_heads") or kv_heads)
    k_eq_v = bool(cfg.get("attention_k_eq_v"))
    gate = 2 if (cfg.get("attn_output_gate") or model_type in ("qwen3_next",)) else 1
    kv_proj = hidden * kv_heads * (head_dim if k_eq_v else head_dim + v_head_dim)
    q_lora = cfg.get("q_lora_rank")
    if q_lora:  # low-rank query (DeepSeek-V4 style single shared KV head)
        q_proj = hidden * q_lora + q_lora + q_lora * heads * head_dim
    else:
        q_proj = gate * hidden * heads * head_dim
    o_lora, o_groups = cfg.get("o_lora_rank"), cfg.get("o_groups")
    if o_lora and o_groups:
        o_proj = heads * head_dim * o_lora + o_groups * o_lora * hidden
    else:
        o_proj = heads * v_head_dim * hidden
    bias = 0
    if cfg.get("attention_bias") or cfg.get("qkv_bias") or model_type in _QKV_BIAS:
        bias = heads * head_dim + 2 * kv_heads * head_dim + (hidden if cfg.get("attention_bias") else 0)
    qk_norm = 2 * head_dim if (cfg.get("use_qk_norm") or model_type.startswith(("qwen3", "gemma"))) else 0
    params = q_proj + kv_proj + o_proj + bias + qk_norm
    kv_elems = kv_heads * (head_dim if (k_eq_v or q_lora) else head_dim + v_head_dim)
    if kind == "compressed":  # DeepSeek-V4: one shared K=V vector per compressed block of tokens
        kv_elems = kv_heads * head_dim
    flops = 2 * heads * (head_dim + v_head_dim)  # QK^T and AV, multiply-add = 2 FLOPs each
    params += _indexer_params(cfg, hidden)
    return params, float(kv_elems), float(flops), float(flops), int(cfg.get("index_topk") or 0), 0.0


def _indexer_params(cfg: dict[str, Any], hidden: int) -> float:
    """DeepSeek Sparse Attention 'lightning indexer' weights (V3.2, GLM-5): wq_b, wk, k_norm, weights_proj."""
    n, dim = cfg.get("index_n_heads"), cfg.get("index_head_dim")
    if not (n and dim):
        return 0.0
    q_lora = int(cfg.get("q_lora_rank") or hidden)
    return float(q_lora * n * dim + hidden * dim + 2 * dim + hidden * n)


def _mla(cfg: dict[str, Any], heads: int, hidden: int) -> tuple[float, float, float, float, int, float]:
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank KV, cached latent + decoupled RoPE key."""
    kv_lora, q_lora = _int(cfg, "kv_lora_rank"), int(cfg.get("q_lora_rank") or 0)
    rope, nope = _int(cfg, "qk_rope_head_dim"), _int(cfg, "qk_nope_head_dim")
    v_dim = int(cfg.get("v_head_dim") or nope)
    q_head = nope + rope
    if q_lora:
        q_params = hidden * q_lora + q_lora + q_lora * heads * q_head
    else:
        q_params = hidden * heads * q_head
    params = (q_params
              + hidden * (kv_lora + rope)             # kv_a_proj_with_mqa
              + kv_lora                                # kv_a_layernorm
              + kv_lora * heads * (nope + v_dim)       # kv_b_proj
              + heads * v_dim * hidden)                # o_proj
    params += _indexer_params(cfg, hidden)
    kv_elems = kv_lora + rope
    decode_flops = 2 * heads * (kv_lora + rope) + 2 * heads * kv_lora  # weight-absorbed form
    prefill_flops = 2 * heads * q_head + 2 * heads * v_dim
    indexer = 2 * int(cfg.get("index_n_heads") or 0) * int(cfg.get("index_head_dim") or 0)
    return (float(params), float(kv_elems), float(decode_flops + indexer), float(prefill_flops + indexer),
            int(cfg.get("index_topk") or 0), 0.0)


_UNSUPPORTED = {
    "linear_attn_config": "Kimi linear attention (KDA)",
    "moe_latent_size": "latent-space MoE experts",
    "block_configs": "per-layer heterogeneous blocks (Nemotron NAS)",
}


# Kernels one decoder layer launches per forward step in a PyTorch engine's model code (SGLang `models/llama.py`,
# `deepseek_v2.py`, `qwen3_next.py`, `nemotron_h.py`; TensorRT-LLM `_torch/models/modeling_llama.py`,
# `modeling_deepseekv3.py`, `modules/attention.py`, `modules/fused_moe`): (other kernels, GEMMs). Tensor-parallel
# collectives are one launch each and counted with the step's collectives (`step_work.comm_terms`).
ATTENTION_LAUNCHES = {
    # fused residual add + RMSNorm, RoPE, KV-cache write, attention; QKV and output projections
    "gqa": (4, 2),
    # fused add + RMSNorm, q_a and kv_a layernorms, RoPE, k_nope/k_pe concat, KV-cache write, attention; fused
    # q_a + kv_a projection, q_b, kv_b (prefill expands the latent) and output projections
    "mla": (7, 4),
    # Gated DeltaNet: fused add + RMSNorm, causal conv1d, q/k L2 norm and gates, the six kernels of the chunked
    # delta rule (FLA chunk_gated_delta_rule: cumsum, KK^T, triangular solve, w/u, state, output), gated RMSNorm;
    # in_proj_qkvz, in_proj_ba and output projections
    "linear": (11, 3),
    # Mamba-2: fused add + RMSNorm, causal conv1d, the five kernels of the chunked SSD scan (mamba_chunk_scan_combined:
    # cumsum, chunk state, state passing, chunk BMM, chunk scan), gated RMSNorm; in and output projections
    "mamba": (8, 2),
}
QK_NORM_LAUNCHES = 2  # per-head RMSNorm of the queries and of the keys (Qwen3, Gemma 3)
INDEXER_LAUNCHES = (5, 2)  # DeepSeek sparse attention's indexer: k norm, RoPE, quantize, logits, top-k; wq_b, wk
DENSE_MLP_LAUNCHES = (2, 2)  # fused add + RMSNorm, SiLU-and-mul; gate_up and down projections
# fused add + RMSNorm, top-k softmax / grouped top-k, align-and-sort of the routed tokens, SiLU-and-mul, weighted
# combine; router, grouped up and grouped down GEMMs (SGLang fused_moe, TensorRT-LLM fused MoE op)
MOE_LAUNCHES = (5, 3)
SHARED_EXPERT_LAUNCHES = (2, 2)  # SiLU-and-mul, add to the routed output; gate_up and down projections
# A GEMM that reads quantized activations (FP8, FP4) needs them quantized first. The residual add + RMSNorm and the
# MoE SwiGLU kernels quantize their outputs themselves (step_work.activation_bytes_per_token, refs [7], [9]); the
# inputs of the output projection, of MLA's q_b / kv_b and of the dense / shared MLP's down projection get a
# quantize kernel of their own (SGLang per_token_group_quant_fp8 / scaled_fp8_quant, TensorRT-LLM fp4_quantize).
QUANT_LAUNCHES = {"gqa": 1, "mla": 3, "linear": 1, "mamba": 1, "dense_mlp": 1, "shared_expert": 1}


def layer_launches(attn_kind: str, *, mla: bool, qk_norm: bool, indexer: bool, dense_mlp: bool, moe: bool,
                   shared_expert: bool) -> tuple[int, int]:
    """(kernels, extra kernels where the GEMMs read quantized activations) one decoder layer launches per forward
    step when an engine runs it from Python without a CUDA graph, from the layer's structure (tables above)."""
    if attn_kind in ("none", "linear", "mamba"):
        group = attn_kind
    else:  # full, sliding, chunked or compressed softmax attention
        group = "mla" if mla else "gqa"
    parts = [ATTENTION_LAUNCHES[group]] if group != "none" else []
    quant = QUANT_LAUNCHES.get(group, 0)
    if qk_norm and group == "gqa":
        parts.append((QK_NORM_LAUNCHES, 0))
    if indexer and group != "none":
        parts.append(INDEXER_LAUNCHES)
    if dense_mlp:
        parts.append(DENSE_MLP_LAUNCHES)
        quant += QUANT_LAUNCHES["dense_mlp"]
    if moe:
        parts.append(MOE_LAUNCHES)
    if shared_expert:
        parts.append(SHARED_EXPERT_LAUNCHES)
        quant += QUANT_LAUNCHES["shared_expert"]
    return sum(k + g for k, g in parts), quant


def build_layers(cfg: dict[str, Any], model_type: str) -> list[LayerSpec]:
    """One LayerSpec per decoder layer of a flattened config.

    Raises InvalidInputError for architecture features the planner cannot size yet, rather
    than returning a silently wrong count.
    """
    for key, feature in _UNSUPPORTED.items():
        if cfg.get(key):
            raise InvalidInputError(f"config.json uses {feature} ({key!r}), which the planner cannot size yet")
    hidden = _int(cfg, "hidden_size")
    blocks = cfg.get("layers_block_type")
    n_layers = len(blocks) if isinstance(blocks, list) and not get(cfg, "num_hidden_layers") else _int(
        cfg, "num_hidden_layers")
    if hidden < 1 or n_layers < 1:
        raise InvalidInputError("config.json hidden_size and num_hidden_layers must be >= 1")
    _int(cfg, "num_attention_heads")
    n_experts = int(get(cfg, "n_routed_experts", 0) or 0)
    top_k = int(get(cfg, "num_experts_per_tok", 0) or 0)
    if n_experts > 1 and not 1 <= top_k <= n_experts:
        raise InvalidInputError(f"config.json: num_experts_per_tok must be in [1, {n_experts}], got {top_k}")
    gated = model_type not in _NON_GATED_MLP and cfg.get("mlp_hidden_act") != "relu2"
    ffn = int(get(cfg, "intermediate_size", 0) or 0)
    expert_ffn = int(cfg.get("moe_intermediate_size") or ffn)
    dense_ffn = int(cfg.get("intermediate_size_mlp") or cfg.get("dense_intermediate_size") or ffn)
    shared_ffn = int(cfg.get("moe_shared_expert_intermediate_size") or cfg.get("shared_expert_intermediate_size")
                     or int(cfg.get("n_shared_experts") or cfg.get("num_shared_experts") or 0) * expert_ffn)
    if model_type.startswith("llama4"):  # Llama 4: one shared expert as wide as a routed one
        shared_ffn = expert_ffn
    expert_bias = (2 * expert_ffn + hidden) if model_type == "gpt_oss" else 0
    attn_kinds = _layer_kinds(cfg, n_layers)
    mlp_kinds = _mlp_kinds(cfg, n_layers, n_experts)
    window = int(cfg.get("sliding_window") or 0)
    chunk = int(cfg.get("attention_chunk_size") or 0)
    both_mlps = bool(cfg.get("enable_moe_block"))  # Gemma 4: a dense MLP beside the experts in every layer
    ratios = cfg.get("compress_ratios") or [0] * n_layers
    layers = []
    for index, (attn_kind, mlp_kind) in enumerate(zip(attn_kinds, mlp_kinds, strict=True)):
        if attn_kind == "none":
            a_params, kv, dflops, pflops, cap, state = 0.0, 0.0, 0.0, 0.0, 0, 0.0
        else:
            a_params, kv, dflops, pflops, cap, state = _attention(cfg, attn_kind, hidden, model_type)
        if attn_kind == "compressed":  # DeepSeek-V4: one cache entry per `ratio` tokens
            kv, dflops, pflops = kv / ratios[index], dflops / ratios[index], pflops / ratios[index]
        win = {"sliding": window, "chunked": chunk}.get(attn_kind, 0)
        fixed = 4 * state if attn_kind in ("linear", "mamba") else 0.0
        is_moe = mlp_kind == "moe"
        dense = _mlp_params(hidden, dense_ffn, gated) if (mlp_kind == "dense" or (is_moe and both_mlps)) else 0.0
        launches, quant = layer_launches(
            attn_kind, mla=bool(cfg.get("kv_lora_rank")), indexer=bool(cfg.get("index_n_heads")),
            qk_norm=bool(cfg.get("use_qk_norm") or model_type.startswith(("qwen3", "gemma"))), dense_mlp=dense > 0,
            moe=is_moe, shared_expert=bool(is_moe and shared_ffn))
        layers.append(LayerSpec(
            attention_kind=attn_kind, window_tokens=win, attention_params=a_params,
            kv_elems_per_token=kv, state_elems=state,
            attn_flops_per_ctx_token=dflops, prefill_attn_flops_per_ctx_token=pflops,
            attn_ctx_cap_tokens=cap, fixed_flops_per_token=fixed,
            dense_mlp_params=dense,
            shared_expert_params=_mlp_params(hidden, shared_ffn, gated) if is_moe and shared_ffn else 0.0,
            router_params=float(hidden * n_experts + (n_experts if model_type == "gpt_oss" else 0)) if is_moe else 0.0,
            n_experts=n_experts if is_moe else 0, top_k=top_k if is_moe else 0,
            params_per_expert=(_mlp_params(hidden, expert_ffn, gated) + expert_bias) if is_moe else 0.0,
            norm_params=2.0 * hidden, host_launches=launches, quant_launches=quant,
        ))
    return layers
