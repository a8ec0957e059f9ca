"""Attention data parallelism launch flags: vLLM --data-parallel-size with --enable-expert-parallel (one rank per
GPU), SGLang --enable-dp-attention with --dp-size / --ep-size, TensorRT-LLM enable_attention_dp in the
--extra_llm_api_options YAML; shell-quoted; the batch limit per rank."""

from __future__ import annotations

import dataclasses
import shlex

import pytest
import yaml

from planner.errors import InvalidInputError
from planner.handoff.deploy import TRTLLM_EXTRA_OPTIONS, ServeConfig, serve_command
from planner.handoff.deploy_targets import serve_config_from_estimate
from planner.perf.estimate import EstimateRequest, estimate


def cfg(**changes) -> ServeConfig:
    base = ServeConfig(model_repo="deepseek-ai/DeepSeek-R1", engine="vllm", precision="fp8", kv_dtype="bf16",
                       tensor_parallel_size=8, pipeline_parallel_size=1, max_model_len_tokens=8192,
                       gpu_memory_utilization_frac=0.9, max_num_seqs=256, native_precision="fp8",
                       expert_parallel=True, attn_dp=True)
    return dataclasses.replace(base, **changes)


def after(argv, flag):
    return argv[argv.index(flag) + 1]


def test_vllm_runs_one_data_parallel_rank_per_gpu_with_expert_parallel_moe():
    argv = serve_command(cfg()).argv
    assert after(argv, "--tensor-parallel-size") == "1"
    assert after(argv, "--data-parallel-size") == "8" and "--enable-expert-parallel" in argv


def test_sglang_keeps_tp_and_adds_dp_attention():
    argv = serve_command(cfg(engine="sglang")).argv
    assert after(argv, "--tp-size") == "8" and after(argv, "--dp-size") == "8" and after(argv, "--ep-size") == "8"
    assert "--enable-dp-attention" in argv


def test_trtllm_sets_enable_attention_dp_in_its_options_file_beside_speculation():
    command = serve_command(cfg(engine="trtllm", speculative="mtp", speculative_draft_tokens=2))
    assert after(command.argv, "--ep_size") == "8"
    assert after(command.argv, "--extra_llm_api_options") == TRTLLM_EXTRA_OPTIONS
    (path, text), = command.files
    assert yaml.safe_load(text) == {"enable_attention_dp": True, "speculative_config": {
        "decoding_type": "MTP", "num_nextn_predict_layers": 2}}
    assert command.argv.count("--extra_llm_api_options") == 1


def test_shell_text_is_quoted_and_round_trips():
    command = serve_command(cfg(model_repo="./my models/r1"))
    assert shlex.split(command.shell().replace("\\\n", " ")) == list(command.argv)


def test_llama_cpp_refuses_attention_dp():
    with pytest.raises(InvalidInputError, match="attn_dp"):
        cfg(engine="llama.cpp", precision="q4_k_m", expert_parallel=False)


def test_from_an_attention_dp_estimate_the_batch_limit_is_per_rank(real_catalog):
    est = estimate(real_catalog, EstimateRequest(model="deepseek-ai/DeepSeek-R1", gpu="h200", num_gpus=8,
                                                 engine="trtllm", tp=8, attn_dp=True, concurrency=800))
    config = serve_config_from_estimate(est, real_catalog)
    assert config.attn_dp and config.expert_parallel
    assert config.max_num_seqs == 100  # 800 sequences over 8 attention ranks
    plain = serve_config_from_estimate(estimate(real_catalog, EstimateRequest(
        model="deepseek-ai/DeepSeek-R1", gpu="h200", num_gpus=8, engine="trtllm", tp=8, concurrency=100)),
        real_catalog)
    assert not plain.attn_dp and "--extra_llm_api_options" not in serve_command(plain).argv
