"""llama.cpp's gpt-oss GGUFs: MXFP4 experts beside Q8_0 attention, router, embedding and output tensors
(quantization.GGUF_MXFP4_OTHER_BITS), where the Hugging Face checkpoint the other engines load keeps those in BF16."""

from __future__ import annotations

import dataclasses

import pytest

from planner import units
from planner.model.quantization import GGUF_MXFP4_OTHER_BITS, weight_format
from planner.perf import evaluator
from planner.perf.estimate import EstimateRequest, prepare

OSS20 = "openai/gpt-oss-20b"


def test_only_engines_that_load_gguf_files(real_catalog):
    assert evaluator.serves_gguf(real_catalog.engine("llama.cpp"))
    for engine_id in ("vllm", "sglang", "trtllm"):
        assert not evaluator.serves_gguf(real_catalog.engine(engine_id))


def test_gguf_mxfp4_keeps_experts_and_stores_the_rest_as_q8_0(real_catalog):
    mxfp4 = real_catalog.precisions["mxfp4"]
    hf = weight_format(mxfp4, None, model_native_precision="mxfp4")
    gguf = weight_format(mxfp4, None, model_native_precision="mxfp4", gguf=True)
    assert hf.expert_bytes_per_param == gguf.expert_bytes_per_param == pytest.approx(4.25 / 8)
    assert (hf.dense_bytes_per_param, hf.embed_bytes_per_param) == (2.0, 2.0)
    assert gguf.dense_bytes_per_param == gguf.embed_bytes_per_param == pytest.approx(8.5 / 8)
    # other precisions are quantized as the GGUF type says, with or without the flag
    q4 = real_catalog.precisions["q4_0"]
    assert weight_format(q4, None, gguf=True) == weight_format(q4, None)
    # an MXFP4 re-quantization of a BF16 model is not the gpt-oss split: the same bytes, only llama.cpp's batch-1
    # matrix-vector kernels pad no token rows (quantization.gemm_min_rows)
    assert weight_format(mxfp4, None, gguf=True) == dataclasses.replace(weight_format(mxfp4, None), gemm_min_rows=1.0)


def test_gpt_oss_20b_gguf_size_matches_llama_bench(real_catalog):
    # llama-bench: "gpt-oss 20B MXFP4 MoE | 11.27 GiB | 20.91 B" and "GPT-OSS 20B F16 | 12.83 GiB": 19.11 B expert
    # params x 4.25 bits = 10.15 GB plus 1.80 B other params x 8.5 bits = 1.91 GB (16 bits: 3.59 GB)
    arch = real_catalog.model(OSS20).arch
    mxfp4 = real_catalog.precisions["mxfp4"]
    gguf = weight_format(mxfp4, None, model_native_precision="mxfp4", gguf=True).total_bytes(arch) / units.GIB
    hf = weight_format(mxfp4, None, model_native_precision="mxfp4").total_bytes(arch) / units.GIB
    assert gguf == pytest.approx(11.27, rel=0.01)
    assert hf == pytest.approx(12.83, rel=0.01)
    assert GGUF_MXFP4_OTHER_BITS == 8.5


def test_estimate_and_search_candidates_agree_on_the_format(real_catalog):
    req = EstimateRequest(model=OSS20, gpu="rtx-4090", num_gpus=1, engine="llama.cpp", precision="mxfp4")
    s = prepare(real_catalog, req)
    assert s.fmt.dense_bytes_per_param == pytest.approx(8.5 / 8)
    model = real_catalog.model(OSS20)
    cands = evaluator.candidates(real_catalog, model.arch, model.native_precision, gpus=[s.gpu],
                                 engines=[real_catalog.engine("llama.cpp"), real_catalog.engine("vllm")],
                                 precisions=[real_catalog.precisions["mxfp4"]], kv_dtypes=[None], gpu_counts=[1])
    by_engine = {c.engine.engine_id: c.fmt.dense_bytes_per_param for c in cands}
    assert by_engine["llama.cpp"] == pytest.approx(8.5 / 8)
    assert by_engine.get("vllm", 2.0) == 2.0
