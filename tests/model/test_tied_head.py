"""A tied LM head (tie_word_embeddings) multiplies every generated token's hidden state by the embedding matrix:
its bytes are read and its FLOPs computed each decode step, though the matrix is stored once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from planner.model.architecture import architecture_from_config
from planner.model.quantization import weight_format
from planner.perf.step_work import gemm_flops_per_token, weight_bytes_split

CONFIG = Path(__file__).resolve().parents[2] / "data" / "model_configs" / "Qwen--Qwen3-0.6B.json"


def test_tied_head_is_read_and_computed_every_step(real_catalog):
    cfg = json.loads(CONFIG.read_text())
    tied = architecture_from_config(cfg)
    untied = architecture_from_config({**cfg, "tie_word_embeddings": False})
    assert tied.tied_embeddings and not untied.tied_embeddings
    vocab_x_hidden = cfg["vocab_size"] * cfg["hidden_size"]  # 151,936 x 1,024 = 155.6 M
    assert tied.head_gemm_params == untied.head_gemm_params == vocab_x_hidden
    # stored once when tied, twice (table and head) when not
    assert np.isclose(untied.total_params - tied.total_params, vocab_x_hidden)
    fmt = weight_format(real_catalog.precision("bf16"), real_catalog.gpu("H100-SXM"))
    # the step streams the same bytes and does the same products either way: the head is one matrix per token
    assert np.isclose(weight_bytes_split(tied, fmt, 1.0)[0], weight_bytes_split(untied, fmt, 1.0)[0])
    assert np.isclose(gemm_flops_per_token(tied, fmt), gemm_flops_per_token(untied, fmt))
    # and the head is 2 x vocab x hidden FLOPs (bf16: 2 bytes) of it
    head_bytes = vocab_x_hidden * fmt.embed_bytes_per_param
    body = (tied.always_read_params - tied.lm_head_params) * fmt.dense_bytes_per_param
    assert np.isclose(weight_bytes_split(tied, fmt, 1.0)[0], body + head_bytes)
