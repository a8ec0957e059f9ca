"""Architecture math: parameter counts, KV bytes, MoE expert coverage."""

from __future__ import annotations

import math

import pytest
from conftest import TINY_DENSE, TINY_MOE

from planner.errors import InvalidInputError
from planner.model.architecture import (
    architecture_from_config,
    expected_experts_touched,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_cache_bytes_per_token,
    mla_kv_cache_bytes_per_token,
    weight_params_read_per_step,
)


def test_kv_bytes_llama31_70b():  # 2 * 80 layers * 8 kv heads * 128 dim * 2 B
    assert kv_cache_bytes_per_token(80, 8, 128, 2) == 327_680


def test_kv_bytes_deepseek_v3_mla():  # 61 layers * (512 + 64) * 2 B
    assert mla_kv_cache_bytes_per_token(61, 512, 64, 2) == 70_272


@pytest.mark.parametrize("args", [(0, 8, 128, 2), (80, -1, 128, 2), (80, 8, math.nan, 2), (80, 8, 128, math.inf)])
def test_kv_bytes_rejects_bad_sizes(args):
    with pytest.raises(InvalidInputError, match="must be finite and > 0"):
        kv_cache_bytes_per_token(*args)


def test_tiny_dense_counts_by_hand():
    arch = architecture_from_config(TINY_DENSE)
    assert arch.total_params == 35_607_552
    assert arch.always_read_params == 34_583_552
    assert arch.active_params == arch.total_params  # dense
    assert arch.active_compute_params == 34_583_552  # minus the 1,024,000 embedding rows
    # 2 (K, V) * 2 layers * 8 heads * 128 * 2 B = 8,192 B per token
    assert kv_bytes_per_token(arch, 2) == 8_192


def test_tiny_moe_counts_by_hand():
    arch = architecture_from_config(TINY_MOE)
    # attention per layer: q 1024*1024 + k,v 2 * 1024*256 + o 1024*1024 = 2,621,440
    # experts 8 * 1,572,864 = 12,582,912; router 8,192; norms 2,048  -> 15,214,592 per layer
    # 2 layers 30,429,184 + final norm 1,024 + head 1,024,000 + embedding 1,024,000 = 32,478,208
    assert arch.total_params == 32_478_208
    # active: 2 of 8 experts -> subtract 2 layers * 6 * 1,572,864 = 18,874,368
    assert arch.active_params == 32_478_208 - 18_874_368
    assert arch.is_moe and arch.moe_groups[0].top_k == 2


def test_tied_embeddings_drop_the_head():
    arch = architecture_from_config({**TINY_DENSE, "tie_word_embeddings": True})
    assert arch.total_params == 35_607_552 - 1_024_000


def test_sliding_window_caps_the_cache():
    cfg = {**TINY_DENSE, "model_type": "mistral", "sliding_window": 4096}
    arch = architecture_from_config(cfg)
    # every layer windowed: 8,192 B/token * min(ctx, 4096)
    assert kv_bytes_per_sequence(arch, 10_000, 2) == pytest.approx(8_192 * 4_096)
    assert kv_bytes_per_sequence(arch, 1_000, 2) == pytest.approx(8_192 * 1_000)


def test_layer_types_mix_full_and_sliding():
    cfg = {**TINY_DENSE, "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"]}
    arch = architecture_from_config(cfg)
    # per layer 2 * 8 * 128 * 2 B = 4,096 B/token: full layer keeps 10,000 tokens, the other 128
    assert kv_bytes_per_sequence(arch, 10_000, 2) == pytest.approx(4_096 * 10_000 + 4_096 * 128)


def test_linear_attention_state_is_fixed():
    cfg = {**TINY_DENSE, "model_type": "qwen3_next", "full_attention_interval": 2, "linear_num_key_heads": 2,
           "linear_num_value_heads": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 32,
           "linear_conv_kernel_dim": 4}
    arch = architecture_from_config(cfg)
    # state: 4 heads * 16 * 32 = 2,048 + conv (2*32 + 128) * 3 = 576 -> 2,624 elements, at 2 B
    assert arch.state_elems_per_seq == 2_624
    one_k = kv_bytes_per_sequence(arch, 1_000, 2)
    two_k = kv_bytes_per_sequence(arch, 2_000, 2)
    # only the full-attention layer grows: 4,096 B per token
    assert two_k - one_k == pytest.approx(4_096 * 1_000)


def test_expected_experts_touched_limits():
    assert expected_experts_touched(256, 8, 1) == pytest.approx(8)
    # 256 * (1 - (1 - 8/256)^64) = 256 * (1 - 0.13135) = 222.37
    assert expected_experts_touched(256, 8, 64) == pytest.approx(222.37, rel=1e-3)
    assert expected_experts_touched(256, 8, 10_000) == pytest.approx(256)


def test_moe_weight_traffic_grows_with_batch():
    arch = architecture_from_config(TINY_MOE)
    one, many = weight_params_read_per_step(arch, 1), weight_params_read_per_step(arch, 64)
    assert one == pytest.approx(arch.active_compute_params)
    assert many > one and many <= arch.total_params - arch.embedding_params + 1


@pytest.mark.parametrize("cfg, match", [
    ({**TINY_DENSE, "hidden_size": None}, "hidden_size"),
    ({k: v for k, v in TINY_DENSE.items() if k != "num_hidden_layers"}, "num_hidden_layers"),
    ({**TINY_DENSE, "num_hidden_layers": -3}, "num_hidden_layers"),
    ({**TINY_DENSE, "num_attention_heads": 2.5}, "num_attention_heads"),
    ({**TINY_DENSE, "vocab_size": 0}, "vocab_size"),
    ({**TINY_MOE, "num_experts_per_tok": 9}, "num_experts_per_tok"),
    ({**TINY_DENSE, "linear_attn_config": {"full_attn_layers": [1]}}, "cannot size"),
])
def test_malformed_config_names_the_field(cfg, match):
    with pytest.raises(InvalidInputError, match=match):
        architecture_from_config(cfg)


def test_config_must_be_an_object():
    with pytest.raises(InvalidInputError, match="JSON object"):
        architecture_from_config([1, 2])  # type: ignore[arg-type]
