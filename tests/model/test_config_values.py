"""config.json values are checked before any arithmetic: bounded ints, finite floats, per-layer lists."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from planner.data.catalog import DATA_DIR, load_config, model_from_config_file
from planner.errors import InvalidInputError
from planner.model.architecture import architecture_from_config
from planner.model.config_values import MAX_CONTEXT_TOKENS, check_config_values

BASE = DATA_DIR / "model_configs" / "Qwen--Qwen3-0.6B.json"


def _cfg(**changes):
    cfg = json.loads(BASE.read_text(encoding="utf-8"))
    cfg.update(changes)
    return cfg


def test_every_shipped_config_passes_and_stays_far_inside_the_bounds():
    for path in sorted((DATA_DIR / "model_configs").glob("*.json")):
        cfg = load_config(path)
        n_layers = check_config_values({**cfg, **(cfg.get("text_config") or {})})
        assert 1 <= n_layers <= 1_000, path.name  # bound is 10,000: 10x margin over the 126-layer maximum


@pytest.mark.parametrize(("changes", "match"), [
    ({"num_attention_heads": 0}, r"'num_attention_heads' must be an integer in \[1, 100000\], got 0"),
    ({"num_key_value_heads": 0}, r"'num_key_value_heads' must be an integer in \[1, 16\], got 0"),
    ({"num_key_value_heads": 64}, r"'num_key_value_heads' must be an integer in \[1, 16\], got 64"),
    ({"num_hidden_layers": 1e9}, r"'num_hidden_layers' must be an integer in \[1, 10000\]"),
    ({"num_hidden_layers": 10**400}, r"'num_hidden_layers' .* an integer of about 401 digits"),
    ({"hidden_size": math.nan}, r"'hidden_size' must be a finite number, got nan"),
    ({"hidden_size": math.inf}, r"'hidden_size' must be a finite number, got inf"),
    ({"hidden_size": "4096"}, r"'hidden_size' must be an integer .* got '4096'"),
    ({"vocab_size": True}, r"'vocab_size' must be an integer"),
    ({"n_routed_experts": "abc", "num_experts_per_tok": 2}, r"'n_routed_experts' must be an integer .* got 'abc'"),
    ({"head_dim": -128}, r"'head_dim' must be an integer in \[1, 10000000\], got -128"),
    ({"intermediate_size": 3072.5}, r"'intermediate_size' must be an integer"),
    ({"max_position_embeddings": -1}, r"'max_position_embeddings' must be an integer in \[1, 1000000000\]"),
    ({"layer_types": ["full_attention"] * 3}, r"'layer_types' must be a list with one entry per layer \(28\), "
                                              r"got list of 3"),
    ({"layer_types": "full_attention"}, r"'layer_types' must be a list"),
    ({"hybrid_override_pattern": "M*"}, r"one character per layer \(28\), got str of 2"),
    ({"mlp_only_layers": [28]}, r"'mlp_only_layers' entry must be an integer in \[0, 27\]"),
    ({"compress_ratios": [4] * 5}, r"at least one entry per layer"),
])
def test_bad_values_rejected(changes, match):
    with pytest.raises(InvalidInputError, match=match):
        architecture_from_config(_cfg(**changes))


def test_integral_floats_accepted_as_json_writers_emit_them():
    # 1024.0 is the same hidden size as 1024: 28 layers of Qwen3-0.6B give the same parameter count
    assert architecture_from_config(_cfg(hidden_size=1024.0)).total_params == pytest.approx(
        architecture_from_config(_cfg()).total_params)


def test_context_from_max_position_embeddings(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_cfg(max_position_embeddings=MAX_CONTEXT_TOKENS + 1)), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="max_position_embeddings"):
        model_from_config_file(path)
    path.write_text(json.dumps(_cfg(max_position_embeddings=40_960)), encoding="utf-8")
    assert model_from_config_file(path).context_length_tokens == 40_960
    cfg = _cfg()
    del cfg["max_position_embeddings"]
    path.write_text(json.dumps(cfg), encoding="utf-8")
    model = model_from_config_file(path)
    assert model.context_length_tokens == 4096
    assert "context assumed 4,096 tokens" in model.notes


@pytest.mark.parametrize(("content", "match"), [
    (b'{"hidden_size": "\xff"}', r"line 1: is not UTF-8 text"),
    (b'{"hidden_size": 1,\n"hidden_size": 2}', r"line 2: has the key 'hidden_size' twice"),
    (b"[" * 100_000, r"nests deeper than 64 levels"),
    (b'{"hidden_size": 1e400}', r"beyond the range of a float"),
    (b"[1, 2]", r"must hold a JSON object, got a list"),
    (b'{"a": 1}\x00', r"NUL byte"),
])
def test_config_file_refusals_name_the_file(tmp_path: Path, content: bytes, match: str):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=match) as info:
        model_from_config_file(path)
    assert "config.json" in str(info.value)


def test_nonfinite_literals_in_unused_list_fields_are_read():
    # nvidia/Nemotron-H-56B-Base-8K's config.json carries "time_step_limit": [0.0, Infinity]
    cfg = load_config(DATA_DIR / "model_configs" / "nvidia--Nemotron-H-56B-Base-8K.json")
    assert cfg["time_step_limit"][1] == math.inf
