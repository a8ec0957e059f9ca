"""Speculative decoding launch flags: vLLM --speculative-config, SGLang --speculative-*, TensorRT-LLM's
speculative_config YAML; shell-quoted, off by default, refused where the engine or the config cannot run it."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess

import pytest
import yaml

from planner.errors import InvalidInputError
from planner.handoff.deploy import TRTLLM_EXTRA_OPTIONS, Placement, ServeConfig, serve_command
from planner.handoff.deploy_targets import (
    Deployment,
    kubernetes_manifests,
    render_target,
    serve_config_from_estimate,
    skypilot_task,
)
from planner.perf.estimate import EstimateRequest, estimate

HEAD = "RedHatAI/Llama-4-Maverick-17B-128E-Instruct-speculators.eagle3"


def cfg(**changes) -> ServeConfig:
    base = ServeConfig(model_repo="deepseek-ai/DeepSeek-V3", engine="vllm", precision="fp8", kv_dtype="bf16",
                       tensor_parallel_size=8, pipeline_parallel_size=1, max_model_len_tokens=8192,
                       gpu_memory_utilization_frac=0.9, max_num_seqs=16, native_precision="fp8")
    return dataclasses.replace(base, **changes)


def after(argv, flag):
    return argv[argv.index(flag) + 1]


def test_off_emits_nothing_new():
    plain = serve_command(cfg())
    assert serve_command(cfg(speculative="off")) == plain
    assert not any(a.startswith("--speculative") for a in plain.argv) and plain.files == ()


def test_vllm_mtp_and_eagle3_config_json():
    mtp = serve_command(cfg(speculative="mtp", speculative_draft_tokens=2)).argv
    assert json.loads(after(mtp, "--speculative-config")) == {"method": "mtp", "num_speculative_tokens": 2}
    eagle = serve_command(cfg(model_repo="meta-llama/Llama-4-Maverick-17B-128E-Instruct", speculative="eagle3",
                              speculative_draft_tokens=3, speculative_draft_model=HEAD)).argv
    assert json.loads(after(eagle, "--speculative-config")) == {"method": "eagle3", "model": HEAD,
                                                                "num_speculative_tokens": 3}


def test_shell_line_quotes_the_json_and_round_trips():
    command = serve_command(cfg(speculative="mtp", speculative_draft_tokens=1))
    line = command.shell().replace("\\\n", " ")
    assert shlex.split(line) == list(command.argv)
    assert "'{\"method\": \"mtp\", \"num_speculative_tokens\": 1}'" in command.shell()


@pytest.mark.parametrize(("method", "algorithm"), [("mtp", "EAGLE"), ("eagle3", "EAGLE3")])
def test_sglang_chain_of_k_drafts(method, algorithm):
    head = HEAD if method == "eagle3" else None
    argv = serve_command(cfg(engine="sglang", speculative=method, speculative_draft_tokens=3,
                             speculative_draft_model=head)).argv
    assert after(argv, "--speculative-algorithm") == algorithm
    # a chain: k steps of one candidate each, k + 1 tokens verified (the drafts and the last accepted token)
    assert after(argv, "--speculative-num-steps") == "3"
    assert after(argv, "--speculative-eagle-topk") == "1"
    assert after(argv, "--speculative-num-draft-tokens") == "4"
    assert ("--speculative-draft-model-path" in argv) == (method == "eagle3")


@pytest.mark.parametrize(("method", "expected"), [
    ("mtp", {"decoding_type": "MTP", "num_nextn_predict_layers": 2}),
    ("eagle3", {"decoding_type": "Eagle3", "max_draft_len": 2, "speculative_model_dir": HEAD}),
])
def test_trtllm_options_file(method, expected):
    head = HEAD if method == "eagle3" else None
    command = serve_command(cfg(engine="trtllm", speculative=method, speculative_draft_tokens=2,
                                speculative_draft_model=head))
    assert after(command.argv, "--extra_llm_api_options") == TRTLLM_EXTRA_OPTIONS
    ((path, text),) = command.files
    assert path == TRTLLM_EXTRA_OPTIONS and yaml.safe_load(text) == {"speculative_config": expected}


def test_trtllm_script_writes_the_file_then_runs(tmp_path):
    config = cfg(engine="trtllm", speculative="mtp", speculative_draft_tokens=1)
    placement = Placement(accelerator="H200", gpus_per_node=8)
    script = render_target(Deployment(config, placement), "trtllm")
    assert script.index("cat > /tmp/extra-llm-api-options.yaml") < script.index("exec trtllm-serve")
    path = tmp_path / "serve.sh"
    path.write_text(script)
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0  # valid shell syntax
    run = skypilot_task(config, placement)["run"]
    assert run.startswith("cat > ") and "exec" not in run.splitlines()[0]
    container = kubernetes_manifests(config, placement)[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["/bin/sh", "-c"] and "num_nextn_predict_layers: 1" in container["command"][2]


@pytest.mark.parametrize(("changes", "match"), [
    (dict(speculative="medusa"), "speculative must be one of"),
    (dict(speculative="mtp"), "speculative_draft_tokens"),
    (dict(speculative="mtp", speculative_draft_tokens=0), "speculative_draft_tokens"),
    (dict(speculative="mtp", speculative_draft_tokens=17), "speculative_draft_tokens"),
    (dict(speculative="mtp", speculative_draft_tokens=True), "speculative_draft_tokens"),
    (dict(speculative="eagle3", speculative_draft_tokens=2), "needs speculative_draft_model"),
    (dict(speculative="eagle3", speculative_draft_tokens=2, speculative_draft_model="x y"), "model repo"),
    (dict(speculative="mtp", speculative_draft_tokens=2, speculative_draft_model=HEAD), "own MTP layers"),
    (dict(speculative_draft_tokens=2), "need speculative mtp or eagle3"),
    (dict(engine="llama.cpp", precision="q4_k_m", kv_dtype="fp16", speculative="mtp", speculative_draft_tokens=1),
     "generated for vllm, sglang, trtllm"),
])
def test_bad_speculative_configs_are_refused(changes, match):
    with pytest.raises(InvalidInputError, match=match):
        cfg(**changes)


def test_estimate_that_applies_speculation_launches_it(real_catalog):
    est = estimate(real_catalog, EstimateRequest(model="deepseek-ai/DeepSeek-V3", gpu="H200-SXM", num_gpus=8,
                                                 precision="fp8", concurrency=1, speculative="mtp"))
    assert est.speculative["applied"]
    argv = serve_command(serve_config_from_estimate(est, real_catalog)).argv
    assert json.loads(after(argv, "--speculative-config")) == {"method": "mtp", "num_speculative_tokens": 1}


def test_estimate_where_speculation_loses_launches_without_it(real_catalog):
    est = estimate(real_catalog, EstimateRequest(model="meta-llama/Llama-3.1-8B", gpu="H100-SXM", precision="fp8",
                                                 input_tokens=128, output_tokens=128, concurrency=1024,
                                                 speculative="eagle3", speculative_draft_tokens=7))
    assert not est.speculative["applied"]
    config = serve_config_from_estimate(est, real_catalog)
    assert config.speculative == "off" and "--speculative-config" not in serve_command(config).argv


def test_scenario_speculative_reaches_the_plan_and_the_launch_command(real_catalog):
    from planner.handoff.deploy_targets import deployment_from_plan
    from planner.plan import plan
    from planner.scenario import Scenario

    base = dict(model="deepseek-ai/DeepSeek-V3", gpu="H200-SXM", num_gpus_per_replica=8, precision="fp8",
                requests_per_day=20_000)
    assert Scenario(**base).speculative == "off"
    assert plan(Scenario(**base), real_catalog).estimate.speculative is None
    result = plan(Scenario(**base, speculative="mtp", speculative_draft_tokens=2), real_catalog)
    assert result.estimate.speculative["draft_tokens"] == 2
    config = deployment_from_plan(result, real_catalog, engine="vllm").config
    if result.estimate.speculative["applied"]:
        assert json.loads(after(serve_command(config).argv, "--speculative-config")) == {
            "method": "mtp", "num_speculative_tokens": 2}
    else:
        assert config.speculative == "off"


def test_cli_deploy_one_replica_with_speculation(capsys, monkeypatch, tmp_path):
    from planner.cli import main

    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    code = main(["deploy", "--target", "vllm", "--model", "deepseek-ai/DeepSeek-V3", "--gpu", "H200-SXM",
                 "--num-gpus", "8", "--precision", "fp8", "--concurrency", "1", "--speculative", "mtp", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    argv = json.loads(out)["argv"]
    assert json.loads(after(argv, "--speculative-config")) == {"method": "mtp", "num_speculative_tokens": 1}
    code = main(["deploy", "--target", "vllm", "--model", "Qwen/Qwen3-8B", "--gpu", "H100-SXM", "--speculative", "mtp"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not ship mtp" in err
