"""Deployment generators: documented engine flags, parseable SkyPilot and Kubernetes YAML, plan wiring."""

from __future__ import annotations

import dataclasses
import math
import re
import shlex

import pytest
import yaml

from planner.cli import main
from planner.errors import InvalidInputError
from planner.handoff.deploy import Placement, ServeConfig, gguf_file_name, quantization_value, serve_command
from planner.handoff.deploy_targets import (
    kubernetes_manifests,
    placement_for,
    serve_config_from_estimate,
    skypilot_accelerator,
    skypilot_task,
    to_yaml,
)
from planner.perf.estimate import EstimateRequest, estimate

# Flags each engine documents (copied from the pages cited in docs/deploy.md and planner/deploy.py):
# vLLM engine args (vllm/engine/arg_utils.py), SGLang server_arguments.md, llama.cpp tools/server/README.md,
# trtllm-serve reference. Every flag a generator emits must be one of these.
DOCUMENTED = {
    "vllm": {"--host", "--port", "--tensor-parallel-size", "--pipeline-parallel-size", "--enable-expert-parallel",
             "--quantization", "--dtype", "--kv-cache-dtype", "--max-model-len", "--gpu-memory-utilization",
             "--max-num-seqs"},
    "sglang": {"-m", "--model-path", "--host", "--port", "--tp-size", "--pp-size", "--ep-size", "--quantization",
               "--dtype", "--kv-cache-dtype", "--context-length", "--mem-fraction-static", "--max-running-requests"},
    "llama.cpp": {"-m", "--host", "--port", "-c", "-np", "-ngl", "--cache-type-k", "--cache-type-v", "-fa"},
    "trtllm": {"--host", "--port", "--tp_size", "--pp_size", "--ep_size", "--max_batch_size", "--max_seq_len",
               "--kv_cache_free_gpu_memory_fraction"},
}
# Allowed values, from the same pages.
VLLM_QUANTIZATION = {"awq", "fp8", "gptq", "gptq_marlin", "awq_marlin", "modelopt_fp4", "mxfp4", "compressed-tensors"}
SGLANG_QUANTIZATION = {"awq", "fp8", "gptq", "marlin", "gptq_marlin", "awq_marlin", "modelopt_fp4", "w8a8_int8",
                       "w8a8_fp8", "mxfp4"}
SGLANG_KV = {"auto", "fp8_e5m2", "fp8_e4m3"}
LLAMA_CACHE_TYPES = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}


def cfg(**changes) -> ServeConfig:
    base = ServeConfig(model_repo="meta-llama/Llama-3.1-70B", engine="vllm", precision="fp8", kv_dtype="fp8",
                       tensor_parallel_size=4, pipeline_parallel_size=1, max_model_len_tokens=8192,
                       gpu_memory_utilization_frac=0.9, max_num_seqs=64)
    return dataclasses.replace(base, **changes)


def flag_values(argv) -> dict[str, str | None]:
    """{flag: value or None for a switch}."""
    out, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("-"):
            takes = i + 1 < len(argv) and not argv[i + 1].startswith("-")
            out[argv[i]] = argv[i + 1] if takes else None
            i += 2 if takes else 1
        else:
            i += 1
    return out


@pytest.mark.parametrize("config, expected", [
    (cfg(), {"--tensor-parallel-size": "4", "--pipeline-parallel-size": "1", "--quantization": "fp8",
             "--kv-cache-dtype": "fp8", "--max-model-len": "8192", "--gpu-memory-utilization": "0.9",
             "--max-num-seqs": "64"}),
    (cfg(precision="bf16", kv_dtype="bf16"), {"--dtype": "bfloat16", "--kv-cache-dtype": "auto"}),
    (cfg(precision="int4-awq"), {"--quantization": "awq_marlin"}),
    (cfg(precision="int4-gptq", gpu_vendor="amd"), {"--quantization": "gptq"}),
    (cfg(precision="nvfp4"), {"--quantization": "modelopt_fp4"}),
    (cfg(engine="sglang", pipeline_parallel_size=2, expert_parallel=True),
     {"--tp-size": "4", "--pp-size": "2", "--ep-size": "4", "--quantization": "fp8", "--kv-cache-dtype": "fp8_e4m3",
      "--context-length": "8192", "--mem-fraction-static": "0.9", "--max-running-requests": "64"}),
    (cfg(engine="sglang", precision="int8", kv_dtype="bf16"),
     {"--quantization": "w8a8_int8", "--kv-cache-dtype": "auto"}),
    # llama.cpp: -c is the total context, split over -np slots: 8192 x 64 = 524,288
    (cfg(engine="llama.cpp", precision="q4_k_m", kv_dtype="q8_0", tensor_parallel_size=1),
     {"-m": "/models/Llama-3.1-70B-Q4_K_M.gguf", "-c": "524288", "-np": "64", "-ngl": "999",
      "--cache-type-k": "q8_0", "--cache-type-v": "q8_0", "-fa": "on"}),
    (cfg(engine="llama.cpp", precision="q8_0", kv_dtype="fp16", max_num_seqs=4, max_model_len_tokens=4096),
     {"-c": "16384", "-np": "4", "--cache-type-k": "f16", "--cache-type-v": "f16"}),
    (cfg(engine="trtllm", expert_parallel=True, pipeline_parallel_size=2),
     {"--tp_size": "4", "--pp_size": "2", "--ep_size": "4", "--max_batch_size": "64", "--max_seq_len": "8192",
      "--kv_cache_free_gpu_memory_fraction": "0.9"}),
])
def test_engine_flags(config, expected):
    flags = flag_values(serve_command(config).argv)
    assert {k: flags.get(k, "MISSING") for k in expected} == expected
    assert set(flags) <= DOCUMENTED[config.engine], set(flags) - DOCUMENTED[config.engine]


@pytest.mark.parametrize("config, absent", [
    (cfg(precision="fp8", native_precision="fp8"), "--quantization"),  # an fp8 checkpoint is read as it is
    (cfg(precision="bf16", kv_dtype="bf16"), "--quantization"),
    (cfg(expert_parallel=False), "--enable-expert-parallel"),
    (cfg(engine="llama.cpp", precision="q4_k_m", kv_dtype="fp16"), "-fa"),  # f16 V cache needs no flash attention
])
def test_flags_left_out(config, absent):
    assert absent not in serve_command(config).argv


def test_expert_parallel_switch_and_values_are_documented():
    argv = serve_command(cfg(expert_parallel=True)).argv
    assert "--enable-expert-parallel" in argv
    for precision in ("fp8", "int4-awq", "int4-gptq", "nvfp4", "mxfp4", "int8"):
        for vendor in ("nvidia", "amd"):
            assert quantization_value("vllm", precision, "bf16", vendor) in VLLM_QUANTIZATION | {None}
            assert quantization_value("sglang", precision, "bf16", vendor) in SGLANG_QUANTIZATION | {None}
    assert flag_values(serve_command(cfg(engine="sglang")).argv)["--kv-cache-dtype"] in SGLANG_KV
    for kv in ("fp16", "bf16", "q8_0", "q4_0"):
        argv = serve_command(cfg(engine="llama.cpp", precision="q8_0", kv_dtype=kv)).argv
        assert flag_values(argv)["--cache-type-v"] in LLAMA_CACHE_TYPES


def test_prequantized_precisions_say_which_checkpoint_to_serve():
    notes = serve_command(cfg(precision="int4-awq")).notes
    assert any("already quantized" in n and "meta-llama/Llama-3.1-70B" in n for n in notes)
    assert serve_command(cfg(precision="fp8")).notes == ()  # vLLM quantizes bf16 weights to fp8 on load


def test_gguf_hint_names_the_quant_type():
    # GGUF repositories on the Hub name files <model>-<TYPE>.gguf
    assert gguf_file_name("Qwen/Qwen3-8B", "q5_k_m") == "Qwen3-8B-Q5_K_M.gguf"
    notes = serve_command(cfg(engine="llama.cpp", precision="q4_k_m", kv_dtype="fp16")).notes
    assert any("convert_hf_to_gguf.py" in n for n in notes)


def test_shell_line_is_the_argv():
    command = serve_command(cfg(engine="sglang"))
    text = command.shell()
    assert text.splitlines()[0] == "python3 -m sglang.launch_server \\"
    assert shlex.split(text.replace("\\\n", " ")) == list(command.argv)


@pytest.mark.parametrize("changes, match", [
    ({"engine": "tgi"}, "engine must be one of"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
    ({"max_num_seqs": -1}, "max_num_seqs"),
    ({"max_model_len_tokens": 2.5}, "max_model_len_tokens"),
    ({"gpu_memory_utilization_frac": 1.5}, "gpu_memory_utilization_frac"),
    ({"gpu_memory_utilization_frac": math.nan}, "gpu_memory_utilization_frac"),
    ({"gpu_memory_utilization_frac": 0}, "gpu_memory_utilization_frac"),
    ({"port": 70000}, "port"),
    ({"model_repo": ""}, "model_repo"),
])
def test_bad_serve_config(changes, match):
    with pytest.raises(InvalidInputError, match=match):
        cfg(**changes)


@pytest.mark.parametrize("config, match", [
    (cfg(kv_dtype="q8_0"), "vllm has no KV cache dtype 'q8_0'"),
    (cfg(engine="sglang", kv_dtype="int8"), "sglang has no KV cache dtype"),
    (cfg(engine="llama.cpp", precision="fp8", kv_dtype="fp16"), "has no GGUF type"),
    (cfg(engine="llama.cpp", precision="q4_k_m", kv_dtype="fp8"), "llama.cpp has no KV cache dtype 'fp8'"),
])
def test_unsupported_formats_are_rejected(config, match):
    with pytest.raises(InvalidInputError, match=match):
        serve_command(config)


# --- SkyPilot ---------------------------------------------------------------------------------------------------

def test_skypilot_task_parses_and_carries_the_plan():
    task = yaml.safe_load(to_yaml(skypilot_task(cfg(), Placement("H100", 4, replicas=3, use_spot=True)),
                                  comments=("a comment",)))
    assert task["resources"] == {"accelerators": "H100:4", "use_spot": True, "ports": 8000}
    assert task["service"]["replicas"] == 3
    assert task["service"]["readiness_probe"]["path"] == "/health"
    assert task["run"].startswith("vllm serve meta-llama/Llama-3.1-70B")
    assert "--tensor-parallel-size 4" in task["run"] and "num_nodes" not in task


def test_skypilot_autoscaled_fleet_becomes_a_replica_policy():
    placement = Placement("L4", 1, replicas=6, min_replicas=2, target_qps_per_replica=1.5)
    service = yaml.safe_load(to_yaml(skypilot_task(cfg(tensor_parallel_size=1), placement)))["service"]
    assert service["replica_policy"] == {"min_replicas": 2, "max_replicas": 6, "target_qps_per_replica": 1.5}
    assert "replicas" not in service


def test_skypilot_multi_node_replica_uses_sglang_launch_flags():
    config = cfg(engine="sglang", tensor_parallel_size=8, pipeline_parallel_size=2)
    task = yaml.safe_load(to_yaml(skypilot_task(config, Placement("H100", 8, nodes_per_replica=2))))
    assert task["num_nodes"] == 2 and task["resources"]["accelerators"] == "H100:8"
    assert '--nnodes "$SKYPILOT_NUM_NODES"' in task["run"] and "--dist-init-addr" in task["run"]
    with pytest.raises(InvalidInputError, match="SGLang only"):
        skypilot_task(cfg(tensor_parallel_size=8, pipeline_parallel_size=2), Placement("H100", 8, nodes_per_replica=2))


@pytest.mark.parametrize("kwargs, match", [
    ({"gpus_per_node": 0}, "gpus_per_node"),
    ({"replicas": 0}, "replicas"),
    ({"min_replicas": 2}, "both min_replicas and target_qps_per_replica"),
    ({"min_replicas": 9, "target_qps_per_replica": 1.0}, "exceeds replicas"),
    ({"min_replicas": 1, "target_qps_per_replica": math.inf}, "target_qps_per_replica"),
])
def test_bad_placement(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        Placement(**{"accelerator": "H100", "gpus_per_node": 8, "replicas": 4, **kwargs})


def test_skypilot_accelerator_names(real_catalog):
    # the generic SkyPilot name wins over a board name; aliases in gpus.csv map the rest
    assert [skypilot_accelerator(real_catalog, g) for g in ("H100-SXM", "A100-80GB", "RTX-A6000", "H200")] == \
        ["H100", "A100-80GB", "A6000", "H200"]
    with pytest.raises(InvalidInputError, match="no accelerator name"):
        skypilot_accelerator(real_catalog, "M4-Max")


# --- Kubernetes -------------------------------------------------------------------------------------------------

def test_kubernetes_objects():
    docs = list(yaml.safe_load_all(to_yaml(kubernetes_manifests(cfg(), Placement("H100", 4, replicas=3)))))
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [("apps/v1", "Deployment"), ("v1", "Service")]
    deployment, service = docs
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"] == service["spec"]["selector"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 4} == container["resources"]["requests"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": "/health", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert container["command"][:3] == ["vllm", "serve", "meta-llama/Llama-3.1-70B"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in pod["spec"]["volumes"]
    # object names must be DNS-1123 labels (lower-case alphanumerics and '-', at most 63 characters)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", deployment["metadata"]["name"])


def test_kubernetes_vendor_resource_and_llama_cpp_args():
    amd = kubernetes_manifests(cfg(gpu_vendor="amd", tensor_parallel_size=8), Placement("MI300X", 8))
    assert amd[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"amd.com/gpu": 8}
    llama = kubernetes_manifests(cfg(engine="llama.cpp", precision="q4_k_m", kv_dtype="fp16", tensor_parallel_size=1),
                                 Placement("L4", 1))
    container = llama[0]["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container and container["args"][:2] == ["-m", "/models/Llama-3.1-70B-Q4_K_M.gguf"]
    assert container["ports"][0]["containerPort"] == 8080


def test_kubernetes_rejects_what_a_deployment_cannot_run():
    with pytest.raises(InvalidInputError, match="LeaderWorkerSet"):
        kubernetes_manifests(cfg(tensor_parallel_size=8, pipeline_parallel_size=2),
                             Placement("H100", 8, nodes_per_replica=2))
    with pytest.raises(InvalidInputError, match="device-plugin"):
        kubernetes_manifests(cfg(gpu_vendor="apple"), Placement("H100", 4))


# --- wiring from an estimate and a plan -------------------------------------------------------------------------

def test_serve_config_from_estimate(real_catalog):
    est = estimate(real_catalog, EstimateRequest(model="llama-3.1-8b", gpu="H100", concurrency=16,
                                                 input_tokens=2000, output_tokens=500))
    config = serve_config_from_estimate(est, real_catalog)
    assert (config.tensor_parallel_size, config.pipeline_parallel_size) == (est.tp, est.pp) == (1, 1)
    assert config.max_num_seqs == 16  # the operating concurrency, not the memory maximum
    assert config.gpu_memory_utilization_frac == pytest.approx(real_catalog.engine("vllm").memory_utilization_frac)
    assert 2500 <= config.max_model_len_tokens <= real_catalog.model("llama-3.1-8b").context_length_tokens
    assert config.model_repo == "meta-llama/Llama-3.1-8B"
    placement = placement_for(est, real_catalog, replicas=2)
    assert (placement.accelerator, placement.gpus_per_node, placement.nodes_per_replica) == ("H100", 1, 1)


def test_serve_config_checks_the_target_engine(real_catalog):
    est = estimate(real_catalog, EstimateRequest(model="llama-3.1-8b", gpu="H100", precision="fp8", concurrency=4))
    with pytest.raises(InvalidInputError, match="precision fp8 is not served by llama.cpp"):
        serve_config_from_estimate(est, real_catalog, engine="llama.cpp")
    assert serve_config_from_estimate(est, real_catalog, engine="sglang").gpu_memory_utilization_frac == \
        pytest.approx(real_catalog.engine("sglang").memory_utilization_frac)


def test_deployment_from_plan(real_catalog):
    from planner.handoff.deploy_targets import deployment_from_plan
    from planner.plan import plan
    from planner.scenario import Scenario

    scenario = Scenario(model="llama-3.1-8b", gpu="L4", requests_per_day=200_000.0, rental_tier="on_demand")
    result = plan(scenario, real_catalog)
    deployment = deployment_from_plan(result, real_catalog)
    fleet = result.costs[result.headline_tier].fleet
    assert deployment.placement.replicas == fleet.total_replicas
    assert deployment.config.max_num_seqs == result.operating_concurrency
    assert deployment.config.gpus == result.num_gpus_per_replica
    assert deployment.placement.use_spot is False


# --- CLI --------------------------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("target, check", [
    ("vllm", lambda out: out.startswith("#!/bin/sh") and "exec vllm serve meta-llama/Llama-3.1-8B" in out),
    ("sglang", lambda out: "--mem-fraction-static" in out),
    ("skypilot", lambda out: yaml.safe_load(out)["resources"]["accelerators"] == "L4:1"),
    ("kubernetes", lambda out: [d["kind"] for d in yaml.safe_load_all(out)] == ["Deployment", "Service"]),
])
def test_cli_deploy_one_replica(capsys, monkeypatch, tmp_path, target, check):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    code, out, err = run(capsys, "deploy", "--target", target, "--model", "llama-3.1-8b", "--gpu", "L4",
                         "--concurrency", "8")
    assert code == 0 and err == "" and check(out)


def test_cli_deploy_scenario_to_file(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    scenario = tmp_path / "s.toml"
    scenario.write_text('model = "llama-3.1-8b"\ngpu = "L4"\nrequests_per_day = 200000.0\n')
    out_file = tmp_path / "task.yaml"
    code, out, _ = run(capsys, "deploy", "--scenario", str(scenario), "--target", "skypilot", "-o", str(out_file))
    task = yaml.safe_load(out_file.read_text())
    assert code == 0 and "wrote skypilot file" in out
    assert task["service"]["replicas"] >= 1
    assert "--max-num-seqs" in task["run"] or "--max_batch_size" in task["run"]  # the plan's engine (vLLM or TRT-LLM)


@pytest.mark.parametrize("argv, message", [
    (["deploy", "--target", "vllm"], "needs --scenario FILE, or --model and --gpu"),
    (["deploy", "--target", "vllm", "--model", "llama-3.1-8b", "--gpu", "H1000"], "unknown GPU 'H1000'"),
    (["deploy", "--target", "kubernetes", "--scenario", "missing.toml"], "does not exist"),
    (["deploy", "--target", "llama.cpp", "--model", "llama-3.1-8b", "--gpu", "L4", "--precision", "fp8"],
     "fp8"),
])
def test_cli_deploy_errors_are_one_line(capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_deployment_files_for_download_buttons():
    from planner.handoff.deploy_targets import Deployment, deployment_files

    files, unavailable = deployment_files(Deployment(cfg(), Placement("H100", 4, replicas=2), ("from a plan",)))
    assert sorted(files) == ["kubernetes", "skypilot", "vllm"] and unavailable == {}
    assert files["vllm"][0] == "serve-vllm.sh" and "# from a plan" in files["vllm"][1]
    assert yaml.safe_load(files["skypilot"][1])["service"]["replicas"] == 2
    multi = Deployment(cfg(engine="sglang", tensor_parallel_size=8, pipeline_parallel_size=2),
                       Placement("H100", 8, nodes_per_replica=2))
    files, unavailable = deployment_files(multi)
    assert sorted(files) == ["sglang", "skypilot"] and "LeaderWorkerSet" in unavailable["kubernetes"]
