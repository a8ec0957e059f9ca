"""config.json under hostile values: an Architecture, or one InvalidInputError naming the field; never a crash."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from _hostile import SETTINGS, VALUES
from hypothesis import given
from hypothesis import strategies as st

from planner.data.catalog import DATA_DIR, model_from_config_file
from planner.errors import InvalidInputError
from planner.model.architecture import architecture_from_config

BASES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((DATA_DIR / "model_configs").glob("*.json"))
         if p.name in {"Qwen--Qwen3-0.6B.json", "deepseek-ai--DeepSeek-V3.json", "openai--gpt-oss-20b.json",
                       "Qwen--Qwen3-Next-80B-A3B-Thinking.json"}]
FIELDS = sorted({k for base in BASES for k in base} | {"num_key_value_heads", "layer_types", "n_routed_experts",
                                                        "head_dim", "sliding_window", "max_position_embeddings"})


@SETTINGS
@given(st.sampled_from(range(len(BASES))), st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=4))
def test_mutated_config_gives_an_architecture_or_a_named_error(which, changes):
    cfg = {**BASES[which], **changes}
    try:
        arch = architecture_from_config(cfg)
    except InvalidInputError as err:
        assert "config" in str(err) and len(str(err)) < 600
        return
    # a config that passes is sized with finite, positive numbers
    assert math.isfinite(arch.total_params) and arch.total_params > 0
    assert arch.n_kv_heads >= 1 and arch.n_attention_heads >= 1


@SETTINGS
@given(st.sampled_from(range(len(BASES))), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3))
def test_config_file_as_a_user_gives_it(which, changes):
    text = json.dumps({**BASES[which], **changes}, allow_nan=True, default=str)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(text, encoding="utf-8")
        try:
            model = model_from_config_file(path)
        except InvalidInputError as err:
            assert len(str(err)) < 800
            return
        assert model.context_length_tokens >= 1
