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
[7] https://docs.vllm.ai/en/latest/features/speculative_decoding/mtp/ and .../speculative_decoding/eagle/
[8] https://docs.sglang.io/advanced_features/speculative_decoding.html
[9] https://nvidia.github.io/TensorRT-LLM/features/speculative-decoding.html, MTPDecodingConfig and
    Eagle3DecodingConfig in https://nvidia.github.io/TensorRT-LLM/llm-api/reference.html
[10] Attention data parallelism with expert parallelism (MoE): vLLM --data-parallel-size N --enable-expert-parallel
    (https://docs.vllm.ai/en/latest/serving/data_parallel_deployment.html); SGLang --enable-dp-attention --dp-size N
    with --ep-size N [2]; TensorRT-LLM enable_attention_dp in the --extra_llm_api_options YAML
    (TorchLlmArgs in https://nvidia.github.io/TensorRT-LLM/llm-api/reference.html)
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from planner.errors import InvalidInputError, bounded_int, brief, require_frac, require_positive
from planner.handoff.names import check_accelerator, check_model_repo
from planner.perf.speculative import ENGINES as SPECULATIVE_ENGINES
from planner.perf.speculative import MAX_DRAFT_TOKENS, METHODS

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
MAX_GPUS = 4096  # parallel degrees and GPUs per node: far beyond any single deployment
MAX_SEQUENCE_TOKENS = 1_000_000_000  # 100x the longest context served (10M tokens)
MAX_NUM_SEQS = 1_000_000
MAX_REPLICAS = 100_000


def _whole(name: str, value: object, high: int) -> None:
    """InvalidInputError unless `value` is an int (not a bool, not an integral float) in [1, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be an integer in [1, {high:,}], got {brief(value)}")
    bounded_int(name, value, 1, high)


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
    speculative: str = "off"  # off | mtp (the checkpoint's MTP layers) | eagle3 (a separate draft head)
    speculative_draft_tokens: int | None = None  # draft tokens per step; required unless off
    speculative_draft_model: str | None = None  # the EAGLE-3 head's repo id or path; required for eagle3
    # MoE: attention data-parallel over the tensor_parallel_size GPUs, experts expert-parallel over them [10]
    attn_dp: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}, got {brief(self.engine)}")
        if not self.model_repo or not isinstance(self.model_repo, str):
            raise InvalidInputError(f"model_repo must be a non-empty string, got {brief(self.model_repo)}")
        check_model_repo(self.model_repo)
        for name, high in (("tensor_parallel_size", MAX_GPUS), ("pipeline_parallel_size", MAX_GPUS),
                           ("max_model_len_tokens", MAX_SEQUENCE_TOKENS), ("max_num_seqs", MAX_NUM_SEQS)):
            _whole(name, getattr(self, name), high)
        require_frac(gpu_memory_utilization_frac=self.gpu_memory_utilization_frac)
        if self.port is not None and (isinstance(self.port, bool) or not isinstance(self.port, int)
                                      or not 1 <= self.port <= 65535):
            raise InvalidInputError(f"port must be an integer in [1, 65535], got {brief(self.port)}")
        if self.gguf_file is not None and (not isinstance(self.gguf_file, str)
                                           or any(ord(ch) < 32 for ch in self.gguf_file)):
            raise InvalidInputError(f"gguf_file must be a path without control characters, got {brief(self.gguf_file)}")
        _check_speculative(self)
        if self.attn_dp and self.engine not in ("vllm", "sglang", "trtllm"):
            raise InvalidInputError(f"attn_dp (attention data parallelism) runs on vllm, sglang and trtllm, not "
                                    f"{self.engine}")

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def serve_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.engine]


def _check_speculative(cfg: ServeConfig) -> None:
    if cfg.speculative not in METHODS:
        raise InvalidInputError(f"speculative must be one of {', '.join(METHODS)}, got {brief(cfg.speculative)}")
    if cfg.speculative == "off":
        if cfg.speculative_draft_tokens is not None or cfg.speculative_draft_model is not None:
            raise InvalidInputError("speculative_draft_tokens and speculative_draft_model need speculative mtp or "
                                    "eagle3; it is off")
        return
    if cfg.engine not in SPECULATIVE_ENGINES:
        raise InvalidInputError(f"speculative {cfg.speculative} launch flags are generated for "
                                f"{', '.join(SPECULATIVE_ENGINES)}; the engine is {cfg.engine}")
    _whole("speculative_draft_tokens", cfg.speculative_draft_tokens, MAX_DRAFT_TOKENS)
    if cfg.speculative == "eagle3":
        if cfg.speculative_draft_model is None:
            raise InvalidInputError("speculative eagle3 needs speculative_draft_model (the EAGLE-3 head's repo id)")
        check_model_repo(cfg.speculative_draft_model)
    elif cfg.speculative_draft_model is not None:
        raise InvalidInputError("speculative mtp uses the checkpoint's own MTP layers: no speculative_draft_model")


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
        check_accelerator(self.accelerator)
        for name, high in (("gpus_per_node", MAX_GPUS), ("nodes_per_replica", MAX_GPUS), ("replicas", MAX_REPLICAS)):
            _whole(name, getattr(self, name), high)
        if (self.min_replicas is None) != (self.target_qps_per_replica is None):
            raise InvalidInputError("an autoscaled placement needs both min_replicas and target_qps_per_replica")
        if self.min_replicas is not None:
            _whole("min_replicas", self.min_replicas, MAX_REPLICAS)
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
    files: tuple[tuple[str, str], ...] = field(default=())  # (path, text) the command reads, written before it

    def preamble(self) -> str:
        """Shell lines writing `files` (quoted here-documents: nothing in the text is expanded); "" without files."""
        out = []
        for path, text in self.files:
            body = text if text.endswith("\n") else text + "\n"
            out.append(f"cat > {shlex.quote(path)} <<'PLANNER_EOF'\n{body}PLANNER_EOF\n")
        return "".join(out)

    def shell(self) -> str:
        """The command as a POSIX shell line continued over lines, one flag per line."""
        parts, line = [], [shlex.quote(a) for a in self.argv[:self.program_len]]
        for arg in self.argv[self.program_len:]:
            if arg.startswith("-") and line:
                parts.append(" ".join(line))
                line = []
            line.append(shlex.quote(arg))  # every value quoted: a repo or path is never shell syntax
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


@dataclass(frozen=True)
class _PythonServerFlags:
    """The launch flags of an OpenAI-compatible Python server (vLLM, SGLang): one concept, two spellings."""

    program: tuple[str, ...]  # the command up to the model argument
    model_flag: tuple[str, ...]  # () where the model is positional
    tp: str
    pp: str
    context: str
    memory_frac: str
    max_seqs: str
    expert_parallel: Callable[[ServeConfig], list[str]]


_PYTHON_SERVERS = {
    # [1]
    "vllm": _PythonServerFlags(("vllm", "serve"), (), "--tensor-parallel-size", "--pipeline-parallel-size",
                               "--max-model-len", "--gpu-memory-utilization", "--max-num-seqs",
                               lambda cfg: ["--enable-expert-parallel"]),
    # [2]; SGLang's expert-parallel group spans the tensor-parallel ranks
    "sglang": _PythonServerFlags(("python3", "-m", "sglang.launch_server"), ("--model-path",), "--tp-size",
                                 "--pp-size", "--context-length", "--mem-fraction-static", "--max-running-requests",
                                 lambda cfg: ["--ep-size", str(cfg.tensor_parallel_size)]),
}


TRTLLM_EXTRA_OPTIONS = "/tmp/extra-llm-api-options.yaml"  # where the generated TensorRT-LLM options file goes


def speculative_flags(cfg: ServeConfig) -> list[str]:
    """The engine's speculative decoding flags for a chain of k drafts ([] when off).

    vLLM: --speculative-config JSON with method "mtp" (the checkpoint's MTP layers) or "eagle3" plus the
    head's "model", and num_speculative_tokens k [7]. SGLang: --speculative-algorithm EAGLE (MTP models
    load their NextN layers through it) or EAGLE3 with --speculative-draft-model-path, a chain of k steps:
    --speculative-num-steps k --speculative-eagle-topk 1 --speculative-num-draft-tokens k + 1 [8].
    TensorRT-LLM reads a speculative_config from the --extra_llm_api_options YAML (`trtllm_speculative_yaml`).
    """
    k = cfg.speculative_draft_tokens
    if cfg.speculative == "off":
        return []
    if cfg.engine == "vllm":
        config = {"method": cfg.speculative, "num_speculative_tokens": k}
        if cfg.speculative == "eagle3":
            config = {"method": "eagle3", "model": cfg.speculative_draft_model, "num_speculative_tokens": k}
        return ["--speculative-config", json.dumps(config)]
    if cfg.engine == "sglang":
        algorithm = ["--speculative-algorithm", "EAGLE" if cfg.speculative == "mtp" else "EAGLE3"]
        draft = [] if cfg.speculative == "mtp" else ["--speculative-draft-model-path", cfg.speculative_draft_model]
        return algorithm + draft + ["--speculative-num-steps", str(k), "--speculative-eagle-topk", "1",
                                    "--speculative-num-draft-tokens", str(k + 1)]
    if cfg.engine == "trtllm":
        return ["--extra_llm_api_options", TRTLLM_EXTRA_OPTIONS]
    raise InvalidInputError(f"no speculative flags for {cfg.engine}")


def trtllm_options_yaml(cfg: ServeConfig) -> str:
    """The --extra_llm_api_options YAML of a TensorRT-LLM replica: enable_attention_dp [10] and the
    speculative_config (`trtllm_speculative_yaml`) where the configuration has them ("" when neither)."""
    adp = "enable_attention_dp: true\n" if cfg.attn_dp else ""
    return adp + (trtllm_speculative_yaml(cfg) if cfg.speculative != "off" else "")


def trtllm_speculative_yaml(cfg: ServeConfig) -> str:
    """TensorRT-LLM's speculative_config [9]: MTP with num_nextn_predict_layers k, or Eagle3 with
    max_draft_len k and the head's speculative_model_dir."""
    k = cfg.speculative_draft_tokens
    if cfg.speculative == "mtp":
        return f"speculative_config:\n  decoding_type: MTP\n  num_nextn_predict_layers: {k}\n"
    return (f"speculative_config:\n  decoding_type: Eagle3\n  max_draft_len: {k}\n"
            f"  speculative_model_dir: {json.dumps(cfg.speculative_draft_model)}\n")


def attn_dp_flags(cfg: ServeConfig) -> list[str]:
    """vLLM and SGLang flags for attention data parallelism over the tp group with expert-parallel MoE [10]
    (after the tp / pp flags; TensorRT-LLM's is a YAML key, `trtllm_options_yaml`). vLLM runs one engine rank
    per GPU (its tensor-parallel size is then 1); SGLang keeps --tp-size and adds --dp-size."""
    n = str(cfg.tensor_parallel_size)
    if cfg.engine == "vllm":
        return ["--data-parallel-size", n, "--enable-expert-parallel"]
    if cfg.engine == "sglang":
        return ["--dp-size", n, "--enable-dp-attention", "--ep-size", n]
    raise InvalidInputError(f"no attention data-parallel flags for {cfg.engine}")


def _python_server(engine: str, cfg: ServeConfig) -> ServeCommand:
    flags = _PYTHON_SERVERS[engine]
    tp = 1 if cfg.attn_dp and engine == "vllm" else cfg.tensor_parallel_size  # vLLM: one DP rank per GPU
    argv = [*flags.program, *flags.model_flag, cfg.model_repo, "--host", "0.0.0.0", "--port", str(cfg.serve_port),
            flags.tp, str(tp), flags.pp, str(cfg.pipeline_parallel_size)]
    if cfg.attn_dp:
        argv += attn_dp_flags(cfg)
    elif cfg.expert_parallel:
        argv += flags.expert_parallel(cfg)
    quant = quantization_value(engine, cfg.precision, cfg.native_precision, cfg.gpu_vendor)
    argv += (["--quantization", quant] if quant else []) + _dtype(cfg)
    argv += ["--kv-cache-dtype", kv_cache_value(engine, cfg.kv_dtype),
             flags.context, str(cfg.max_model_len_tokens),
             flags.memory_frac, f"{cfg.gpu_memory_utilization_frac:g}",
             flags.max_seqs, str(cfg.max_num_seqs)]
    argv += speculative_flags(cfg)
    program_len = len(flags.program) + (0 if flags.model_flag else 1)  # a positional model stays on the first line
    return ServeCommand(tuple(argv), tuple(_checkpoint_notes(cfg)), program_len=program_len)


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
    if cfg.expert_parallel or cfg.attn_dp:
        argv += ["--ep_size", str(cfg.tensor_parallel_size)]
    argv += ["--max_batch_size", str(cfg.max_num_seqs), "--max_seq_len", str(cfg.max_model_len_tokens),
             "--kv_cache_free_gpu_memory_fraction", f"{cfg.gpu_memory_utilization_frac:g}"]
    notes = _checkpoint_notes(cfg)
    if cfg.kv_dtype not in ("bf16", "fp16"):
        notes.append(f"set kv_cache_config.dtype: {cfg.kv_dtype} in an --extra_llm_api_options YAML file")
    if cfg.precision not in ("bf16", "fp16", cfg.native_precision):
        notes.append(f"TensorRT-LLM reads the quantization from the checkpoint: serve a {cfg.precision} "
                     f"(ModelOpt) checkpoint")
    files: tuple[tuple[str, str], ...] = ()
    if cfg.speculative != "off" or cfg.attn_dp:
        argv += ["--extra_llm_api_options", TRTLLM_EXTRA_OPTIONS]
        files = ((TRTLLM_EXTRA_OPTIONS, trtllm_options_yaml(cfg)),)
    return ServeCommand(tuple(argv), tuple(notes), program_len=2, files=files)


COMMANDS: dict[str, Callable[[ServeConfig], ServeCommand]] = {
    "vllm": functools.partial(_python_server, "vllm"),
    "sglang": functools.partial(_python_server, "sglang"), "llama.cpp": _llama_cpp, "trtllm": _trtllm}


def serve_command(cfg: ServeConfig) -> ServeCommand:
    """The launch command of one replica for its engine."""
    return COMMANDS[cfg.engine](cfg)
