"""Value checks for a flattened `config.json`, run before any architecture arithmetic.

Every size field the layer builder reads must be absent (or null), or a whole number within
a bound; lists that describe the layers must have one entry per layer. A value outside the
bound raises `InvalidInputError` naming the field, the bound and the value (cut to ~80
characters), so a typo or a hostile file never reaches `int()` (which raises on "abc", NaN and
inf), never allocates per-layer state for 1e9 layers, and never yields a silently wrong model
(0 KV heads, a context of -1, a `layer_types` list that does not match the layer count).

Bounds are an order of magnitude or more beyond the largest shipped model (data/model_configs,
checked by tests/model/test_config_values.py): 126 layers, hidden size 16,384, 128 heads,
512 routed experts, a 262,144-token vocabulary and a 10,485,760-token context.
"""

from __future__ import annotations

import math
from typing import Any

from planner.errors import InvalidInputError, bounded_int, brief

# Aliases as in _layers._ALIASES: any of them may carry the value.
_REQUIRED_POSITIVE = {
    "hidden_size": (("hidden_size", "dim", "d_model", "n_embd"), 1_000_000),
    "num_hidden_layers": (("num_hidden_layers", "n_layers", "num_layers", "n_layer"), 10_000),
    "num_attention_heads": (("num_attention_heads", "n_heads", "n_head"), 100_000),
    "vocab_size": (("vocab_size",), 100_000_000),
}
MAX_CONTEXT_TOKENS = 1_000_000_000  # 100x the longest shipped context (Llama 4 Scout, 10.5M tokens)
MAX_DIM = 10_000_000  # any other size or count: widths, ranks, experts, windows
_OPTIONAL_SIZES = (
    "num_key_value_heads", "n_kv_heads", "num_kv_heads",
    "intermediate_size", "hidden_dim", "ffn_dim", "n_inner",
    "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts",
    "num_experts_per_tok", "num_experts_per_token", "experts_per_token", "top_k_experts", "moe_top_k",
    "head_dim", "v_head_dim", "moe_intermediate_size", "intermediate_size_mlp", "dense_intermediate_size",
    "moe_shared_expert_intermediate_size", "shared_expert_intermediate_size", "n_shared_experts",
    "num_shared_experts", "first_k_dense_replace", "interleave_moe_layer_step", "decoder_sparse_step",
    "sliding_window", "attention_chunk_size", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
    "qk_nope_head_dim", "swa_num_attention_heads", "swa_num_key_value_heads", "swa_head_dim", "swa_v_head_dim",
    "global_head_dim", "num_global_key_value_heads", "o_lora_rank", "o_groups", "index_n_heads",
    "index_head_dim", "index_topk", "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
    "linear_value_head_dim", "linear_conv_kernel_dim", "mamba_num_heads", "mamba_head_dim", "n_groups",
    "ssm_state_size", "conv_kernel", "full_attention_interval", "no_rope_layer_interval", "max_window_layers",
    "num_nextn_predict_layers", "mtp_num_hidden_layers",
)
# Divisors and kernel widths: 0 would divide by zero or give a negative state size.
_AT_LEAST_ONE = {"no_rope_layer_interval", "linear_conv_kernel_dim", "conv_kernel", "head_dim"}
# Layer lists read only when they have exactly one entry per layer (any other length is an error),
# with the type of their entries.
_PER_LAYER_LISTS = {"layer_types": str, "layers_block_type": str, "hybrid_layer_pattern": int,
                    "no_rope_layers": int}
# Lists read for the first n_layers entries (DeepSeek-V4's compress_ratios also cover the MTP layer).
_AT_LEAST_PER_LAYER = {"compress_ratios": int, "moe_layer_freq": int}
_TEXT_FIELDS = ("model_type", "mlp_hidden_act", "hybrid_override_pattern")


def _first(cfg: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    for name in names:
        if cfg.get(name) is not None:
            return name, cfg[name]
    return names[0], None


def _field(name: str) -> str:
    return f"config.json field {name!r}"


def check_config_values(cfg: dict[str, Any]) -> int:
    """Check the size fields and layer lists of a flattened config; returns the layer count.

    A config without `num_hidden_layers` takes its layer count from `layers_block_type` (as
    `build_layers` does). Raises InvalidInputError on the first value out of bounds.
    """
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(f"{_field(key)} must be a finite number, got {brief(value)}")
    values: dict[str, int] = {}
    for canonical, (names, high) in _REQUIRED_POSITIVE.items():
        name, value = _first(cfg, names)
        if value is None:
            if canonical == "num_hidden_layers" and isinstance(cfg.get("layers_block_type"), list):
                value = len(cfg["layers_block_type"])
            else:
                raise InvalidInputError(f"config.json lacks {canonical!r}")
        values[canonical] = bounded_int(_field(name), value, 1, high)
    n_layers, heads = values["num_hidden_layers"], values["num_attention_heads"]
    for name in _OPTIONAL_SIZES:
        if cfg.get(name) is not None:
            values[name] = bounded_int(_field(name), cfg[name], 1 if name in _AT_LEAST_ONE else 0, MAX_DIM)
    kv_name, kv_heads = _first(cfg, ("num_key_value_heads", "n_kv_heads", "num_kv_heads"))
    if kv_heads is not None and not cfg.get("kv_lora_rank"):
        bounded_int(_field(kv_name), kv_heads, 1, heads)
    if cfg.get("max_position_embeddings") is not None:
        bounded_int(_field("max_position_embeddings"), cfg["max_position_embeddings"], 1, MAX_CONTEXT_TOKENS)
    for name in _TEXT_FIELDS:
        if cfg.get(name) is not None and not isinstance(cfg[name], str):
            raise InvalidInputError(f"{_field(name)} must be a string, got {brief(cfg[name])}")
    for name, kind in _PER_LAYER_LISTS.items():
        value = cfg.get(name)
        if value is not None and (not isinstance(value, list) or len(value) != n_layers):
            raise InvalidInputError(f"{_field(name)} must be a list with one entry per layer ({n_layers:,}), got "
                                    f"{_describe(value)}")
        _entries(name, value, kind)
    for name, kind in _AT_LEAST_PER_LAYER.items():
        value = cfg.get(name)
        if isinstance(value, list) and len(value) < n_layers:
            raise InvalidInputError(f"{_field(name)} must list at least one entry per layer ({n_layers:,}), got "
                                    f"{_describe(value)}")
        _entries(name, value if isinstance(value, list) else None, kind)
    freq = cfg.get("moe_layer_freq")
    if freq is not None and not isinstance(freq, list):
        bounded_int(_field("moe_layer_freq"), freq, 1, n_layers)
    ratios = cfg.get("compress_ratios")
    if isinstance(ratios, list):
        for index, ratio in enumerate(ratios[:n_layers]):
            if ratio:  # 0 / null = an uncompressed (sliding) layer
                bounded_int(f"{_field('compress_ratios')}[{index}]", ratio, 1, MAX_DIM)
    pattern = cfg.get("hybrid_override_pattern")
    if pattern is not None and (not isinstance(pattern, str) or len(pattern) != n_layers):
        raise InvalidInputError(f"{_field('hybrid_override_pattern')} must be a string with one character per "
                                f"layer ({n_layers:,}), got {_describe(pattern)}")
    mlp_only = cfg.get("mlp_only_layers")
    if mlp_only is not None:
        if not isinstance(mlp_only, list):
            raise InvalidInputError(f"{_field('mlp_only_layers')} must be a list of layer indices, got "
                                    f"{brief(mlp_only)}")
        for index in mlp_only:
            bounded_int(f"{_field('mlp_only_layers')} entry", index, 0, n_layers - 1)
    return n_layers


def _entries(name: str, value: list[Any] | None, kind: type) -> None:
    """Every entry of a layer list has the expected type (ints: bools and null count as 0/1 flags)."""
    for index, entry in enumerate(value or ()):
        ok = isinstance(entry, str) if kind is str else (
            entry is None or isinstance(entry, bool) or (isinstance(entry, int) and 0 <= entry <= MAX_DIM))
        if not ok:
            raise InvalidInputError(f"{_field(name)}[{index}] must be a {'string' if kind is str else 'whole number'}"
                                    f", got {brief(entry)}")


def _describe(value: Any) -> str:
    if isinstance(value, (list, str)):
        return f"{type(value).__name__} of {len(value):,}"
    return brief(value)
