"""Deployment files for a plan: engine launch commands, a SkyPilot task and Kubernetes objects.

Pure generators: they take a `ServeConfig` (what one replica runs) and a `Placement` (where
and how many) and return argv lists, dicts and YAML text; `deployment_from_plan` builds both
from a plan. Every flag is the engine's documented one: vLLM `vllm serve` [1], SGLang
`python3 -m sglang.launch_server` [2], llama.cpp `llama-server` [3], TensorRT-LLM
`trtllm-serve` [4]; the SkyPilot task and SkyServe `service:` section [5]; Kubernetes apps/v1
Deployment and v1 Service [6]. docs/deploy.md maps each plan field to each engine's flag.

[1] https://docs.vllm.ai/en/latest/configuration/engine_args.html
[2] https://docs.sglang.io/advanced_features/server_arguments.html
[3] https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md
[4] https://nvidia.github.io/TensorRT-LLM/1.0.0rc6/commands/trtllm-serve/trtllm-serve.html
[5] https://docs.skypilot.co/en/latest/reference/yaml-spec.html, https://docs.skypilot.co/en/v0.7.0/serving/service-yaml-spec.html
[6] https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from planner.catalog import Catalog
from planner.errors import InvalidInputError, require_frac, require_positive, require_positive_int
from planner.estimate import Estimate

ENGINES = ("vllm", "sglang", "llama.cpp", "trtllm")
DEFAULT_PORTS = {"vllm": 8000, "sglang": 30000, "llama.cpp": 8080, "trtllm": 8000}  # each engine's own default
HEALTH_PATH = "/health"  # served by all four engines' OpenAI-compatible servers
IMAGES = {  # pin the tag you validated; these are the projects' published images
    "vllm": "vllm/vllm-openai:latest", "sglang": "lmsysorg/sglang:latest",
    "llama.cpp": "ghcr.io/ggml-org/llama.cpp:server-cuda", "trtllm": "nvcr.io/nvidia/tensorrt-llm/release:1.2.1",
}
K8S_GPU_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "intel": "habana.ai/gaudi"}
# SkyPilot accelerator names (skypilot-catalog catalogs/v7/common/accelerators.csv); the first that
# resolves to a catalog GPU names it, so the generic name ("H100") wins over a board name ("H100-SXM").
SKYPILOT_ACCELERATORS = (
    "A10", "A100", "A100-80GB", "A100-80GB-SXM", "A10G", "A6000", "B200", "GH200", "H100", "H100-MEGA",
    "H100-NVL", "H100-SXM", "H200", "H200-SXM", "L4", "L40", "L40S", "MI300X", "RTX3090", "RTX4080", "RTX4090",
    "RTX5090", "RTX6000-Ada", "RTXA6000",
)
GGUF_TAGS = {"bf16": "BF16", "fp16": "F16", "q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K_M", "q4_k_m": "Q4_K_M",
             "q4_0": "Q4_0", "q3_k_m": "Q3_K_M", "q2_k": "Q2_K", "mxfp4": "MXFP4"}
# KV cache dtype (catalog id) -> each engine's --kv-cache-dtype / --cache-type-k value.
KV_VALUES = {
    "vllm": {"bf16": "auto", "fp16": "auto", "fp8": "fp8"},
    "sglang": {"bf16": "auto", "fp16": "auto", "fp8": "fp8_e4m3"},
    "llama.cpp": {"bf16": "bf16", "fp16": "f16", "q8_0": "q8_0", "q4_0": "q4_0"},
}
# Weight precision (catalog id) -> --quantization; pre-quantized checkpoints are named by the precision.
QUANTIZATION = {
    "vllm": {"fp8": "fp8", "int4-awq": "awq_marlin", "int4-gptq": "gptq_marlin", "nvfp4": "modelopt_fp4",
             "mxfp4": "mxfp4"},
    "sglang": {"fp8": "fp8", "int4-awq": "awq_marlin", "int4-gptq": "gptq_marlin", "nvfp4": "modelopt_fp4",
               "mxfp4": "mxfp4", "int8": "w8a8_int8"},
}
PREQUANTIZED = ("int4-awq", "int4-gptq", "nvfp4", "int8")  # need a checkpoint already in that format


@dataclass(frozen=True)
class ServeConfig:
    """What one replica runs: model, engine, formats, parallelism and the engine's limits."""

    model_repo: str  # Hugging Face repo id (or a local path); for llama.cpp the GGUF file is derived from it
    engine: str
    precision: str  # catalog precision id
    kv_dtype: str  # catalog KV cache dtype id
    tensor_parallel_size: int
    pipeline_parallel_size: int
    max_model_len_tokens: int
    gpu_memory_utilization_frac: float
    max_num_seqs: int
    expert_parallel: bool = False
    native_precision: str = "bf16"  # the checkpoint's own format: no --quantization when it is the precision
    gpu_vendor: str = "nvidia"
    port: int | None = None  # None: the engine's default port
    gguf_file: str | None = None  # llama.cpp only; None: "<repo name>-<TAG>.gguf" under /models

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not self.model_repo or not isinstance(self.model_repo, str):
            raise InvalidInputError(f"model_repo must be a non-empty string, got {self.model_repo!r}")
        require_positive_int(tensor_parallel_size=self.tensor_parallel_size,
                             pipeline_parallel_size=self.pipeline_parallel_size,
                             max_model_len_tokens=self.max_model_len_tokens, max_num_seqs=self.max_num_seqs)
        require_frac(gpu_memory_utilization_frac=self.gpu_memory_utilization_frac)
        if self.port is not None and not (isinstance(self.port, int) and 1 <= self.port <= 65535):
            raise InvalidInputError(f"port must be an integer in [1, 65535], got {self.port!r}")

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def serve_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.engine]


@dataclass(frozen=True)
class Placement:
    """Where replicas run: accelerator, GPUs per node, nodes per replica, replicas, spot or not."""

    accelerator: str  # SkyPilot accelerator name, e.g. "H100"
    gpus_per_node: int
    nodes_per_replica: int = 1
    replicas: int = 1  # a fixed fleet, or the peak of an autoscaled one
    use_spot: bool = False
    min_replicas: int | None = None  # autoscaled fleets: SkyServe replica_policy bounds and QPS target
    target_qps_per_replica: float | None = None

    def __post_init__(self) -> None:
        require_positive_int(gpus_per_node=self.gpus_per_node, nodes_per_replica=self.nodes_per_replica,
                             replicas=self.replicas)
        if (self.min_replicas is None) != (self.target_qps_per_replica is None):
            raise InvalidInputError("an autoscaled placement needs both min_replicas and target_qps_per_replica")
        if self.min_replicas is not None:
            require_positive_int(min_replicas=self.min_replicas)
            require_positive(target_qps_per_replica=self.target_qps_per_replica)
            if self.min_replicas > self.replicas:
                raise InvalidInputError(f"min_replicas ({self.min_replicas}) exceeds replicas ({self.replicas})")

    @property
    def autoscaled(self) -> bool:
        return self.min_replicas is not None


@dataclass(frozen=True)
class ServeCommand:
    """An engine launch command and what the operator must know about it."""

    argv: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    program_len: int = 1  # leading argv items that name the program ("vllm serve MODEL")

    def shell(self) -> str:
        """The command as a POSIX shell line continued over lines, one flag per line."""
        parts, line = [], [shlex.quote(a) for a in self.argv[:self.program_len]]
        for arg in self.argv[self.program_len:]:
            if arg.startswith("-") and line:
                parts.append(" ".join(line))
                line = []
            line.append(arg if arg.startswith("$") else shlex.quote(arg))
        parts.append(" ".join(line))
        return " \\\n  ".join(parts)


def quantization_value(engine: str, precision: str, native_precision: str, gpu_vendor: str = "nvidia") -> str | None:
    """The engine's --quantization for serving `precision` (None: the checkpoint's own format, or bf16/fp16).

    Marlin kernels (awq_marlin, gptq_marlin) are NVIDIA-only, so other vendors get plain awq/gptq.
    """
    if precision == native_precision or engine not in QUANTIZATION:
        return None
    value = QUANTIZATION[engine].get(precision)
    if value in ("awq_marlin", "gptq_marlin") and gpu_vendor != "nvidia":
        value = value.replace("_marlin", "")
    return value


def kv_cache_value(engine: str, kv_dtype: str) -> str:
    """The engine's KV cache dtype value; InvalidInputError when the engine does not store that dtype."""
    values = KV_VALUES.get(engine, {})
    if kv_dtype not in values:
        raise InvalidInputError(f"{engine} has no KV cache dtype {kv_dtype!r} (supported: {', '.join(values)})")
    return values[kv_dtype]


def gguf_file_name(model_repo: str, precision: str) -> str:
    """GGUF file hint, "<repo name>-<TAG>.gguf" as GGUF repositories on the Hub name their files."""
    if precision not in GGUF_TAGS:
        raise InvalidInputError(f"llama.cpp serves GGUF files; precision {precision!r} has no GGUF type "
                                f"(use one of {', '.join(GGUF_TAGS)})")
    return f"{model_repo.rstrip('/').rsplit('/', 1)[-1]}-{GGUF_TAGS[precision]}.gguf"


def _checkpoint_notes(cfg: ServeConfig) -> list[str]:
    if cfg.precision in PREQUANTIZED and cfg.precision != cfg.native_precision:
        return [f"{cfg.precision} needs a checkpoint already quantized to that format: replace {cfg.model_repo} "
                f"with such a checkpoint of the model"]
    return []


def _dtype(cfg: ServeConfig) -> list[str]:
    return ["--dtype", {"bf16": "bfloat16", "fp16": "float16"}[cfg.precision]] \
        if cfg.precision in ("bf16", "fp16") else []


def _vllm(cfg: ServeConfig) -> ServeCommand:
    argv = ["vllm", "serve", cfg.model_repo, "--host", "0.0.0.0", "--port", str(cfg.serve_port),
            "--tensor-parallel-size", str(cfg.tensor_parallel_size),
            "--pipeline-parallel-size", str(cfg.pipeline_parallel_size)]
    if cfg.expert_parallel:
        argv.append("--enable-expert-parallel")
    quant = quantization_value("vllm", cfg.precision, cfg.native_precision, cfg.gpu_vendor)
    argv += (["--quantization", quant] if quant else []) + _dtype(cfg)
    argv += ["--kv-cache-dtype", kv_cache_value("vllm", cfg.kv_dtype),
             "--max-model-len", str(cfg.max_model_len_tokens),
             "--gpu-memory-utilization", f"{cfg.gpu_memory_utilization_frac:g}",
             "--max-num-seqs", str(cfg.max_num_seqs)]
    return ServeCommand(tuple(argv), tuple(_checkpoint_notes(cfg)), program_len=3)


def _sglang(cfg: ServeConfig) -> ServeCommand:
    argv = ["python3", "-m", "sglang.launch_server", "--model-path", cfg.model_repo, "--host", "0.0.0.0",
            "--port", str(cfg.serve_port), "--tp-size", str(cfg.tensor_parallel_size),
            "--pp-size", str(cfg.pipeline_parallel_size)]
    if cfg.expert_parallel:  # SGLang's expert-parallel group spans the tensor-parallel ranks
        argv += ["--ep-size", str(cfg.tensor_parallel_size)]
    quant = quantization_value("sglang", cfg.precision, cfg.native_precision, cfg.gpu_vendor)
    argv += (["--quantization", quant] if quant else []) + _dtype(cfg)
    argv += ["--kv-cache-dtype", kv_cache_value("sglang", cfg.kv_dtype),
             "--context-length", str(cfg.max_model_len_tokens),
             "--mem-fraction-static", f"{cfg.gpu_memory_utilization_frac:g}",
             "--max-running-requests", str(cfg.max_num_seqs)]
    return ServeCommand(tuple(argv), tuple(_checkpoint_notes(cfg)), program_len=3)


def _llama_cpp(cfg: ServeConfig) -> ServeCommand:
    gguf = cfg.gguf_file or f"/models/{gguf_file_name(cfg.model_repo, cfg.precision)}"
    cache = kv_cache_value("llama.cpp", cfg.kv_dtype)
    argv = ["llama-server", "-m", gguf, "--host", "0.0.0.0", "--port", str(cfg.serve_port),
            "-c", str(cfg.max_model_len_tokens * cfg.max_num_seqs),  # total context: each of -np slots gets c/np
            "-np", str(cfg.max_num_seqs), "-ngl", "999",  # 999 >= any layer count: all layers on the GPU(s)
            "--cache-type-k", cache, "--cache-type-v", cache]
    if cache.startswith("q"):
        argv += ["-fa", "on"]
    notes = [f"{gguf} is the GGUF file to serve: convert {cfg.model_repo} with convert_hf_to_gguf.py and "
             f"llama-quantize, or download a {GGUF_TAGS[cfg.precision]} GGUF of it (llama-server -hf <repo>:<quant>)",
             "llama.cpp has no memory-fraction flag; the KV cache is sized by -c"]
    if cfg.gpus > 1:
        notes.append(f"llama-server splits layers over all {cfg.gpus} visible GPUs (--split-mode layer)")
    return ServeCommand(tuple(argv), tuple(notes))


def _trtllm(cfg: ServeConfig) -> ServeCommand:
    argv = ["trtllm-serve", cfg.model_repo, "--host", "0.0.0.0", "--port", str(cfg.serve_port),
            "--tp_size", str(cfg.tensor_parallel_size), "--pp_size", str(cfg.pipeline_parallel_size)]
    if cfg.expert_parallel:
        argv += ["--ep_size", str(cfg.tensor_parallel_size)]
    argv += ["--max_batch_size", str(cfg.max_num_seqs), "--max_seq_len", str(cfg.max_model_len_tokens),
             "--kv_cache_free_gpu_memory_fraction", f"{cfg.gpu_memory_utilization_frac:g}"]
    notes = _checkpoint_notes(cfg)
    if cfg.kv_dtype not in ("bf16", "fp16"):
        notes.append(f"set kv_cache_config.dtype: {cfg.kv_dtype} in an --extra_llm_api_options YAML file")
    if cfg.precision not in ("bf16", "fp16", cfg.native_precision):
        notes.append(f"TensorRT-LLM reads the quantization from the checkpoint: serve a {cfg.precision} "
                     f"(ModelOpt) checkpoint")
    return ServeCommand(tuple(argv), tuple(notes), program_len=2)


COMMANDS: dict[str, Callable[[ServeConfig], ServeCommand]] = {
    "vllm": _vllm, "sglang": _sglang, "llama.cpp": _llama_cpp, "trtllm": _trtllm}


def serve_command(cfg: ServeConfig) -> ServeCommand:
    """The launch command of one replica for its engine."""
    return COMMANDS[cfg.engine](cfg)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:50].rstrip("-") or "llm")


def _multi_node(cfg: ServeConfig, placement: Placement, command: ServeCommand) -> str:
    """The run script of a replica spanning nodes (SGLang's documented --nnodes/--node-rank/--dist-init-addr)."""
    if cfg.engine != "sglang":
        raise InvalidInputError(f"the replica spans {placement.nodes_per_replica} nodes; multi-node launch is "
                                f"generated for SGLang only (use --engine sglang, or a GPU with more memory)")
    head = 'HEAD_IP=$(echo "$SKYPILOT_NODE_IPS" | head -n1)\n'
    extra = ' \\\n  --nnodes "$SKYPILOT_NUM_NODES" --node-rank "$SKYPILOT_NODE_RANK" --dist-init-addr "$HEAD_IP:50000"'
    return head + command.shell() + extra + "\n"


def skypilot_task(cfg: ServeConfig, placement: Placement, *, name: str | None = None) -> dict[str, Any]:
    """A SkyPilot task with a SkyServe `service:` section: accelerators, spot, the serve command, replicas."""
    command = serve_command(cfg)
    gpus_per_node = cfg.gpus // placement.nodes_per_replica
    run = command.shell() + "\n" if placement.nodes_per_replica == 1 else _multi_node(cfg, placement, command)
    task: dict[str, Any] = {
        "name": name or _slug(f"{cfg.model_repo}-{cfg.engine}"),
        "resources": {"accelerators": f"{placement.accelerator}:{gpus_per_node}",
                      "use_spot": placement.use_spot, "ports": cfg.serve_port},
        "envs": {"HF_TOKEN": ""},  # pass with `sky serve up --env HF_TOKEN` for gated models
    }
    if placement.nodes_per_replica > 1:
        task["num_nodes"] = placement.nodes_per_replica
    task["setup"] = _SETUP[cfg.engine]
    task["run"] = run
    service: dict[str, Any] = {"readiness_probe": {"path": HEALTH_PATH, "initial_delay_seconds": 1200}}
    if placement.autoscaled:
        service["replica_policy"] = {"min_replicas": placement.min_replicas, "max_replicas": placement.replicas,
                                     "target_qps_per_replica": round(placement.target_qps_per_replica, 4)}
    else:
        service["replicas"] = placement.replicas
    task["service"] = service
    return task


_SETUP = {
    "vllm": "pip install vllm\n", "sglang": 'pip install "sglang[all]"\n',
    "trtllm": "pip install tensorrt_llm\n",
    "llama.cpp": "# build llama.cpp with CUDA (cmake -B build -DGGML_CUDA=ON) and put the GGUF file under /models\n",
}


def kubernetes_manifests(cfg: ServeConfig, placement: Placement, *, name: str | None = None,
                         image: str | None = None, hf_token_secret: str = "hf-token") -> list[dict[str, Any]]:
    """A Deployment (GPU limits, replicas, readiness probe on /health) and a ClusterIP Service."""
    if placement.nodes_per_replica > 1:
        raise InvalidInputError(f"the replica spans {placement.nodes_per_replica} nodes; a Deployment runs one pod "
                                f"per replica on one node (multi-node replicas need LeaderWorkerSet, not generated)")
    resource = K8S_GPU_RESOURCE.get(cfg.gpu_vendor)
    if resource is None:
        raise InvalidInputError(f"no Kubernetes device-plugin resource for {cfg.gpu_vendor} GPUs")
    app = name or _slug(f"{cfg.model_repo}-{cfg.engine}")
    labels = {"app.kubernetes.io/name": app}
    command = serve_command(cfg)
    container: dict[str, Any] = {
        "name": "server", "image": image or IMAGES[cfg.engine],
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token_secret, "key": "token",
                                                                     "optional": True}}}],
        "ports": [{"name": "http", "containerPort": cfg.serve_port}],
        "resources": {"limits": {resource: cfg.gpus}, "requests": {resource: cfg.gpus}},
        "readinessProbe": {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "initialDelaySeconds": 60,
                           "periodSeconds": 10, "failureThreshold": 3},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if cfg.engine == "llama.cpp":  # the image's entrypoint is llama-server
        container["args"] = list(command.argv[1:])
    else:
        container["command"] = list(command.argv)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
        "spec": {"replicas": placement.replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container],
                                       "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
               "spec": {"type": "ClusterIP", "selector": labels,
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [deployment, service]


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (run scripts) as literal blocks, and no &anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def to_yaml(documents: dict[str, Any] | list[dict[str, Any]], *, comments: tuple[str, ...] = ()) -> str:
    """YAML text (several documents separated by ---), with `comments` as leading # lines."""
    docs = documents if isinstance(documents, list) else [documents]
    head = "".join(f"# {line}\n" for line in comments)
    return head + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                                explicit_start=len(docs) > 1)


def skypilot_accelerator(catalog: Catalog, gpu_id: str) -> str:
    """SkyPilot's name for a catalog GPU; InvalidInputError when SkyPilot has none."""
    for name in SKYPILOT_ACCELERATORS:
        if catalog.names["gpu"].get(name.lower()) == gpu_id:
            return name
    raise InvalidInputError(f"SkyPilot has no accelerator name for {gpu_id}; pass --accelerator NAME")


def serve_config_from_estimate(est: Estimate, catalog: Catalog, *, engine: str | None = None,
                               expert_parallel: bool = False, max_model_len_tokens: int | None = None,
                               port: int | None = None, model_repo: str | None = None) -> ServeConfig:
    """The replica an estimate describes, for its engine or another one (`engine`).

    --max-num-seqs is the plan's operating concurrency (the batch that meets the latency
    targets); the memory fraction is the engine's catalog value the memory plan used.
    max model length: the model's context, capped at the KV capacity the plan found
    (max_concurrency x KV tokens held per sequence) so the engine can hold one full-length
    sequence; llama.cpp preallocates -c = length x slots, so its length is capacity / slots.
    """
    target = catalog.engine(engine).engine_id if engine else est.engine
    prec, kv = catalog.precision(est.precision), catalog.kv_dtype(est.kv_dtype)
    for what, item, engines in (("precision", prec.precision_id, prec.engines), ("KV cache dtype", kv.kv_dtype_id,
                                                                                 kv.engines)):
        if target not in engines:
            raise InvalidInputError(f"the plan's {what} {item} is not served by {target} (engines: "
                                    f"{', '.join(engines)}); re-plan with engine={target} or pick another target")
    model = catalog.model(est.model_id) if est.model_id in catalog.models else None
    gpu = catalog.gpu(est.gpu_id)
    eng = catalog.engine(target)
    concurrency = min(est.concurrency, eng.max_num_seqs)
    held = est.kv_context_tokens_per_sequence or est.input_tokens + est.output_tokens
    capacity = int(est.max_concurrency * held)
    context = model.context_length_tokens if model else est.input_tokens + est.output_tokens
    if max_model_len_tokens is None:
        per_sequence = capacity // concurrency if target == "llama.cpp" else capacity
        max_model_len_tokens = max(min(context, per_sequence), est.input_tokens + est.output_tokens)
    return ServeConfig(
        model_repo=model_repo or est.model_id, engine=target, precision=prec.precision_id, kv_dtype=kv.kv_dtype_id,
        tensor_parallel_size=est.tp, pipeline_parallel_size=est.pp, max_model_len_tokens=max_model_len_tokens,
        gpu_memory_utilization_frac=eng.memory_utilization_frac, max_num_seqs=concurrency,
        expert_parallel=expert_parallel,
        native_precision=model.native_precision if model else "bf16", gpu_vendor=gpu.vendor.lower(), port=port,
    )


def placement_for(est: Estimate, catalog: Catalog, *, replicas: int = 1, use_spot: bool = False,
                  accelerator: str | None = None) -> Placement:
    """Where the estimate's replica runs: tensor parallelism inside a node, pipeline stages across nodes."""
    gpu = catalog.gpu(est.gpu_id)
    nodes = est.pp if est.num_gpus > gpu.max_gpus_per_node else 1
    return Placement(accelerator=accelerator or skypilot_accelerator(catalog, gpu.gpu_id),
                     gpus_per_node=est.num_gpus // nodes, nodes_per_replica=nodes, replicas=replicas,
                     use_spot=use_spot)


@dataclass(frozen=True)
class Deployment:
    """A plan ready to hand off: what each replica runs, where, and what to check by hand."""

    config: ServeConfig
    placement: Placement
    notes: tuple[str, ...] = field(default=())


def deployment_from_plan(plan: Any, catalog: Catalog, *, engine: str | None = None,
                         max_model_len_tokens: int | None = None, port: int | None = None,
                         model_repo: str | None = None, accelerator: str | None = None) -> Deployment:
    """The replica and fleet of a `planner.plan.Plan`'s headline tier (spot when the tier is spot).

    A fixed fleet runs `total_replicas`; an autoscaled one becomes a replica policy from
    1 + N+k spares up to the peak-hour count, targeting the plan's per-replica capacity in
    requests per second.
    """
    est, tier = plan.estimate, plan.headline_tier
    cost = plan.costs.get(tier)
    fleet = cost.fleet if cost is not None else None
    if fleet is None:
        why = f" ({cost.note})" if cost is not None and cost.note else ""
        raise InvalidInputError(f"the plan's headline tier {tier} has no fleet{why}; set another rental_tier, "
                                f"provider or mode")
    cfg = serve_config_from_estimate(est, catalog, engine=engine, expert_parallel=plan.scenario.expert_parallel,
                                     max_model_len_tokens=max_model_len_tokens, port=port, model_repo=model_repo)
    base = placement_for(est, catalog, replicas=fleet.total_replicas, use_spot=tier == "spot",
                         accelerator=accelerator)
    notes = [f"{fleet.total_replicas} replica(s) of {est.num_gpus} x {est.gpu_id} ({tier}), "
             f"{cfg.max_num_seqs} concurrent sequences each, from the plan"]
    if fleet.autoscaled:
        base = Placement(base.accelerator, base.gpus_per_node, base.nodes_per_replica, fleet.total_replicas,
                         base.use_spot, min(fleet.redundancy_replicas + 1, fleet.total_replicas),
                         plan.capacity_requests_per_s_per_replica)
    if tier == "owned":
        notes.append("the plan is for owned hardware: the SkyPilot task would rent it; use the Kubernetes target")
    return Deployment(cfg, base, tuple(notes))


TARGET_FILES = {"skypilot": "skypilot-service.yaml", "kubernetes": "kubernetes.yaml"}


def render_target(deployment: Deployment, target: str, *, name: str | None = None, image: str | None = None) -> str:
    """The file for `target`: a shell script for the deployment's engine, YAML for skypilot and kubernetes."""
    cfg, placement = deployment.config, deployment.placement
    command = serve_command(cfg)
    notes = deployment.notes + command.notes
    if target == "skypilot":
        return to_yaml(skypilot_task(cfg, placement, name=name),
                       comments=("SkyPilot task with a SkyServe service: sky serve up THIS_FILE",) + notes)
    if target == "kubernetes":
        return to_yaml(kubernetes_manifests(cfg, placement, name=name, image=image),
                       comments=("Kubernetes Deployment + Service: kubectl apply -f THIS_FILE",
                                 "gated models: kubectl create secret generic hf-token --from-literal=token=...")
                       + notes)
    if target != cfg.engine:
        raise InvalidInputError(f"target {target!r} is neither the deployment's engine ({cfg.engine}) nor "
                                f"skypilot/kubernetes")
    return "#!/bin/sh\n" + "".join(f"# {line}\n" for line in notes) + "exec " + command.shell() + "\n"


def deployment_files(deployment: Deployment, *, name: str | None = None,
                     image: str | None = None) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """({target: (file name, text)}, {target: why not}) for the engine script, SkyPilot and Kubernetes.

    For download buttons: a target that cannot be generated (a multi-node replica on Kubernetes,
    an Apple GPU on SkyPilot) is reported with its reason instead of raising.
    """
    files: dict[str, tuple[str, str]] = {}
    unavailable: dict[str, str] = {}
    engine = deployment.config.engine
    for target, filename in ((engine, f"serve-{_slug(engine)}.sh"), *TARGET_FILES.items()):
        try:
            files[target] = (filename, render_target(deployment, target, name=name, image=image))
        except InvalidInputError as err:
            unavailable[target] = str(err)
    return files, unavailable
