"""Wiring for one hardware estimate: model x GPU x precision x engine -> memory fit and speed.

`estimate()` resolves names through the catalog, checks the combination, sizes memory,
picks the operating concurrency (the largest batch that fits, unless one is given) and
runs the performance model. No formulas live here; see memory.py and performance.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from planner import units
from planner.data.catalog import Catalog, EfficiencyProfile, Gpu, Model, model_from_config_file
from planner.errors import DoesNotFitError, InvalidInputError, require_positive_int
from planner.model.architecture import kv_bytes_per_sequence, kv_bytes_per_token
from planner.model.quantization import WeightFormat, check_compatible, compute_tflops, weight_format
from planner.perf.memory import MemoryFit, memory_fit
from planner.perf.performance import Efficiency, Hardware
from planner.perf.serving import PointTerms, point_from_terms, point_terms

MAX_TOKENS = 10_000_000  # guard against absurd inputs (the longest published context is 10M, Llama 4 Scout)
MAX_GPUS = 4096

# How much KV cache an engine holds per running sequence, which sets how many sequences
# a max-throughput run keeps in flight. Paged engines allocate blocks as tokens arrive, so
# a sequence holds its prompt plus half its output on average (vLLM: W. Kwon et al.,
# "PagedAttention", SOSP 2023; SGLang: token-level pool, L. Zheng et al., arXiv:2312.07104).
# TensorRT-LLM's default capacity scheduler (GUARANTEED_NO_EVICT) reserves prompt + full
# output at admission (docs: nvidia.github.io/TensorRT-LLM, "Scheduler" / KV cache
# management), and llama.cpp pre-allocates --ctx-size / --parallel tokens per slot.
KV_RESERVES_FULL_SEQUENCE = {"trtllm": True, "llama.cpp": True}
# TensorRT-LLM sizes the KV cache as a fraction of the memory left after weights and
# activations (KvCacheConfig.free_gpu_memory_fraction, see engines.csv notes); vLLM and
# SGLang take a fraction of the whole GPU and subtract the weights from it.
KV_FRACTION_OF_FREE_MEMORY = {"trtllm": True}
# llama.cpp's quantized matmuls (MMQ) quantize activations to 8 bits and run on the GPU's
# int8 units where it has them (llama.cpp PR #7676 "CUDA: use tensor cores for MMQ"). Its MXFP4
# type (gpt-oss GGUFs) is one more ggml block quant on the same MMQ path (ggml-cuda/mmq.cuh), not
# a job for Blackwell's FP4 tensor cores, so it gets the int8 rate too.
INT8_COMPUTE_KINDS = {"gguf"}
INT8_COMPUTE_PRECISIONS = {"llama.cpp": frozenset({"mxfp4"})}


def int8_matmuls(engine_id: str, precision_id: str, precision_kind: str) -> bool:
    """Whether the engine runs this precision's matmuls on int8 units (llama.cpp MMQ, see above)."""
    return precision_kind in INT8_COMPUTE_KINDS or precision_id in INT8_COMPUTE_PRECISIONS.get(engine_id, ())


@dataclass(frozen=True)
class EstimateRequest:
    """What the user asks: names are catalog ids or aliases (model may be a config.json path)."""

    model: str
    gpu: str
    num_gpus: int = 1
    precision: str | None = None  # None: the model's native precision where the engine loads it, else bf16
    kv_dtype: str | None = None  # None: bf16 (fp16 on llama.cpp)
    input_tokens: int = 1024
    output_tokens: int = 256
    concurrency: int | None = None  # None: the largest batch that fits (max-throughput point)
    engine: str | None = None  # None: vllm, or llama.cpp for GGUF precisions and Apple GPUs
    tp: int | None = None  # None: fill a node with tensor parallelism, pipeline across nodes
    expert_parallel: bool = False
    profile: str | None = None  # a named efficiency profile (e.g. from `planner calibrate`)


@dataclass(frozen=True)
class Estimate:
    """Result of `estimate()`; every field carries its unit."""

    fits: bool
    model_id: str
    gpu_id: str
    num_gpus: int
    tp: int
    pp: int
    engine: str
    precision: str
    kv_dtype: str
    compute_format: str
    native_compute: bool
    quality_risk: str
    total_params_b: float
    active_params_b: float
    weights_gb: float
    weights_gb_per_gpu: float
    kv_cache_bytes_per_token: float
    kv_cache_gb_per_sequence: float
    kv_cache_gb_per_gpu: float
    memory_budget_gb_per_gpu: float
    free_memory_gb_per_gpu: float
    max_concurrency: int
    concurrency: int
    input_tokens: int
    output_tokens: int
    ttft_s: float
    ttft_s_low: float
    ttft_s_high: float
    tpot_s: float
    tpot_s_low: float
    tpot_s_high: float
    prefill_tokens_per_s: float
    output_tokens_per_s: float
    output_tokens_per_s_low: float
    output_tokens_per_s_high: float
    output_tokens_per_s_per_user: float
    bottleneck: str
    efficiency_profile: str
    warnings: tuple[str, ...] = field(default=())
    kv_context_tokens_per_sequence: float = 0.0  # KV held per running sequence (engine reservation policy)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


def resolve_model(catalog: Catalog, name: str) -> Model:
    """A catalog model by id or alias, or a user's config.json when `name` is a path to a file."""
    if isinstance(name, str) and (name.endswith(".json") or "/" in name and Path(name).is_file()):
        if Path(name).is_file():
            return model_from_config_file(name)
        if name.endswith(".json"):
            raise InvalidInputError(f"config file {name!r} does not exist")
    return catalog.model(name)


def choose_parallelism(num_gpus: int, gpu: Gpu, n_heads: int, tp: int | None = None) -> tuple[int, int]:
    """(tp, pp): tensor parallelism inside a node, pipeline stages across nodes.

    vLLM requires the attention heads to divide evenly over tensor-parallel ranks, so tp
    is the largest divisor of both `num_gpus` and the head count that fits in one node.
    """
    require_positive_int(num_gpus=num_gpus)
    if num_gpus > MAX_GPUS:
        raise InvalidInputError(f"num_gpus must be <= {MAX_GPUS}, got {num_gpus}")
    if tp is not None:
        require_positive_int(tp=tp)
        if num_gpus % tp:
            raise InvalidInputError(f"tp ({tp}) must divide num_gpus ({num_gpus})")
        return tp, num_gpus // tp
    best = 1
    for cand in range(1, min(num_gpus, gpu.max_gpus_per_node) + 1):
        if num_gpus % cand == 0 and n_heads % cand == 0:
            best = cand
    return best, num_gpus // best


def _default_engine(gpu: Gpu, precision_kind: str | None) -> str:
    if gpu.vendor.lower() == "apple" or precision_kind == "gguf":
        return "llama.cpp"
    return "vllm"


def _default_precision(catalog: Catalog, model: Model, engine_id: str) -> str:
    native = model.native_precision
    if native in catalog.precisions and engine_id in catalog.precisions[native].engines:
        return native
    return "bf16" if engine_id != "llama.cpp" else "q8_0"


def efficiency_of(prof: EfficiencyProfile) -> Efficiency:
    """The performance model's `Efficiency` from a catalog or user profile row (unit conversions only)."""
    return Efficiency(mbu_frac=prof.mbu_frac, mfu_decode_frac=prof.mfu_decode_frac,
                      mfu_prefill_frac=prof.mfu_prefill_frac,
                      step_overhead_s=prof.step_overhead_ms / units.MS_PER_S,
                      comm_latency_s=prof.comm_latency_us / units.MILLION, moe_mbu_frac=prof.moe_mbu_frac,
                      comm_bw_frac=1.0 if prof.comm_bw_frac is None else prof.comm_bw_frac,
                      expert_overhead_s=(prof.moe_expert_overhead_us or 0.0) / units.MILLION,
                      overhead_overlap_frac=prof.overhead_overlap_frac or 0.0,
                      layer_overhead_s=(prof.layer_overhead_us or 0.0) / units.MILLION)


_efficiency = efficiency_of


@dataclass(frozen=True)
class ReplicaSetup:
    """A resolved request: model, GPU, engine, precision, parallelism and efficiency profile."""

    model: Model
    gpu: Gpu
    engine_id: str
    precision_id: str
    kv_dtype_id: str
    kv_bytes_per_elem: float
    fmt: WeightFormat
    tp: int
    pp: int
    quality_risk: str
    engine_util: float
    engine_overhead_gb: float
    engine_max_seqs: int
    profile: EfficiencyProfile
    precision_kind: str = "float"
    expert_parallel: bool = False
    prefill_budget_tokens: int | None = None  # engine's per-step token budget (chunked prefill)


_Setup = ReplicaSetup


def _find_profile(catalog: Catalog, engine_id: str, gpu: Gpu, name: str | None) -> EfficiencyProfile:
    """The catalog's profile; a named profile missing from the catalog is looked up among the user's
    calibrated profiles (`planner calibrate`, see calibration.profile_dir)."""
    if name is None or any(p.profile_id.lower() == name.lower() for p in catalog.efficiency):
        return catalog.efficiency_for(engine_id, gpu, profile_id=name)
    from planner.fit.calibration import load_user_profiles  # user profile files, read only when named

    return catalog.with_efficiency(load_user_profiles()).efficiency_for(engine_id, gpu, profile_id=name)


def prepare(catalog: Catalog, req: EstimateRequest) -> ReplicaSetup:
    """Resolve and check a request (names, compatibility, parallelism, profile); no performance yet."""
    require_positive_int(num_gpus=req.num_gpus, input_tokens=req.input_tokens, output_tokens=req.output_tokens)
    if req.input_tokens + req.output_tokens > MAX_TOKENS:
        raise InvalidInputError(f"input_tokens + output_tokens must be <= {MAX_TOKENS:,}, got "
                                f"{req.input_tokens + req.output_tokens:,}")
    if req.concurrency is not None:
        require_positive_int(concurrency=req.concurrency)
    model = resolve_model(catalog, req.model)
    gpu = catalog.gpu(req.gpu)
    prec = catalog.precision(req.precision) if req.precision else None
    engine = catalog.engine(req.engine or _default_engine(gpu, prec.kind if prec else None))
    prec = prec or catalog.precision(_default_precision(catalog, model, engine.engine_id))
    kv = catalog.kv_dtype(req.kv_dtype or ("fp16" if engine.engine_id == "llama.cpp" else "bf16"))
    check_compatible(prec, kv, gpu, engine)
    tp, pp = choose_parallelism(req.num_gpus, gpu, model.arch.n_attention_heads, req.tp)
    return ReplicaSetup(model, gpu, engine.engine_id, prec.precision_id, kv.kv_dtype_id, kv.bytes_per_elem,
                        weight_format(prec, gpu, model_native_precision=model.native_precision), tp, pp,
                        prec.quality_risk, engine.memory_utilization_frac, engine.runtime_overhead_gb,
                        engine.max_num_seqs, _find_profile(catalog, engine.engine_id, gpu, req.profile),
                        prec.kind, req.expert_parallel, engine.max_num_batched_tokens)


_setup = prepare


def hardware_of(s: ReplicaSetup) -> Hardware:
    """Per-GPU peaks the model runs at: the format's tensor rate, or int8 for llama.cpp's quantized matmuls."""
    tflops = compute_tflops(s.gpu, s.fmt)
    if int8_matmuls(s.engine_id, s.precision_id, s.precision_kind) and s.gpu.int8_dense_tops:
        tflops = s.gpu.int8_dense_tops
    return Hardware(memory_bandwidth_tb_s=s.gpu.memory_bandwidth_tb_s, compute_tflops=tflops,
                    interconnect_bandwidth_gb_s=s.gpu.interconnect_bandwidth_gb_s)


def kv_context_tokens(engine_id: str, input_tokens: float, output_tokens: float) -> float:
    """Tokens of KV cache one running sequence holds under the engine's reservation policy."""
    if KV_RESERVES_FULL_SEQUENCE.get(engine_id, False):
        return float(input_tokens + output_tokens)
    return float(input_tokens + output_tokens / 2.0)


def _fit(s: ReplicaSetup, context_tokens: float, concurrency: int) -> MemoryFit:
    weights = s.fmt.total_bytes(s.model.arch)
    usable, frac = s.gpu.usable_memory_gb, s.engine_util
    if KV_FRACTION_OF_FREE_MEMORY.get(s.engine_id, False):
        # memory_fit budgets usable x frac - weights - overhead; a fraction f of the *free* memory
        # is the same budget with frac 1 and usable reduced by (1 - f) x free.
        free = usable - weights / (s.tp * s.pp) / units.GB - s.engine_overhead_gb
        usable, frac = usable - (1.0 - frac) * max(free, 0.0), 1.0
    return memory_fit(weights_bytes_total=weights,
                      kv_bytes_per_sequence=kv_bytes_per_sequence(s.model.arch, context_tokens, s.kv_bytes_per_elem),
                      concurrency=concurrency, tp=s.tp, pp=s.pp, n_kv_heads=s.model.arch.n_kv_heads,
                      usable_memory_gb=usable, memory_utilization_frac=frac,
                      runtime_overhead_gb=s.engine_overhead_gb, max_num_seqs=s.engine_max_seqs)


def max_running_sequences(s: ReplicaSetup, input_tokens: float, output_tokens: float) -> int:
    """Sequences a max-throughput run keeps in flight: KV capacity under the engine's policy,
    capped by the engine's batch limit (0 when not even one fits)."""
    return _fit(s, kv_context_tokens(s.engine_id, input_tokens, output_tokens), 0).max_concurrency


def terms_of(s: ReplicaSetup, *, concurrency: float, input_tokens: float, output_tokens: float) -> PointTerms:
    """Roofline terms (100 % efficiency) of this replica at `concurrency` sequences."""
    hw = hardware_of(s)
    return point_terms(s.model.arch, s.fmt, concurrency=concurrency, input_tokens=input_tokens,
                       output_tokens=output_tokens, kv_bytes_per_elem=s.kv_bytes_per_elem, tp=s.tp, pp=s.pp,
                       memory_bandwidth_tb_s=hw.memory_bandwidth_tb_s, compute_tflops=hw.compute_tflops,
                       interconnect_bandwidth_gb_s=hw.interconnect_bandwidth_gb_s,
                       expert_parallel=s.expert_parallel, prefill_budget_tokens=s.prefill_budget_tokens)


def suggest_alternatives(catalog: Catalog, req: EstimateRequest, *, limit: int = 4) -> tuple[str, ...]:
    """Configurations close to `req` that do fit at least one sequence: more GPUs, then lighter precisions."""
    out: list[str] = []
    base = _setup(catalog, req)
    engine = catalog.engine(base.engine_id)
    candidates = [base.precision_id] + [p for p in ("fp8", "int4-awq", "nvfp4", "q8_0", "q4_k_m")
                                        if p != base.precision_id and engine.engine_id in catalog.precisions[p].engines]
    counts = [n for n in (1, 2, 4, 8, 16, 32, 64) if n >= req.num_gpus]
    for prec in candidates:
        for n in counts:
            trial = EstimateRequest(**{**asdict(req), "precision": prec, "num_gpus": n, "concurrency": None,
                                       "tp": None})
            try:
                s = _setup(catalog, trial)
            except InvalidInputError:
                continue
            fit = _fit(s, kv_context_tokens(s.engine_id, req.input_tokens, req.output_tokens), 0)
            if fit.max_concurrency >= 1:
                out.append(f"{prec} on {n} x {s.gpu.gpu_id} (up to {fit.max_concurrency} sequences)")
                break
        if len(out) >= limit:
            break
    return tuple(out)


def estimate(catalog: Catalog, req: EstimateRequest) -> Estimate:
    """Memory fit and performance of one replica; DoesNotFitError (with suggestions) if nothing fits."""
    s = _setup(catalog, req)
    arch = s.model.arch
    context = req.input_tokens + req.output_tokens
    if context > s.model.context_length_tokens:
        raise InvalidInputError(f"input_tokens + output_tokens = {context:,} exceeds {s.model.model_id}'s context "
                                f"length of {s.model.context_length_tokens:,} tokens")
    held = kv_context_tokens(s.engine_id, req.input_tokens, req.output_tokens)
    probe = _fit(s, held, 0)
    conc = req.concurrency if req.concurrency is not None else probe.max_concurrency
    fit = _fit(s, held, max(conc, 0))
    if probe.max_concurrency < 1 or not fit.fits:
        need = fit.weights_gb_per_gpu + fit.overhead_gb_per_gpu + max(conc, 1) * fit.kv_gb_per_sequence_per_gpu
        short = need - fit.budget_gb_per_gpu
        what = f"{max(conc, 1)} sequence(s) holding {held:,.0f} tokens of KV each"
        if probe.max_concurrency >= 1:
            raise DoesNotFitError(
                f"{s.model.model_id} at {s.precision_id} on {req.num_gpus} x {s.gpu.gpu_id}: {what} need "
                f"{need:.1f} GB per GPU, {fit.budget_gb_per_gpu:.1f} GB usable ({short:.1f} GB short); "
                f"at most {probe.max_concurrency} sequences fit", shortfall_gb=short)
        alternatives = suggest_alternatives(catalog, req)
        hint = "; would fit: " + "; ".join(alternatives) if alternatives else "; nothing up to 64 GPUs fits"
        raise DoesNotFitError(
            f"{s.model.model_id} at {s.precision_id} does not fit on {req.num_gpus} x {s.gpu.gpu_id}: "
            f"{what} need {need:.1f} GB per GPU, {fit.budget_gb_per_gpu:.1f} GB usable "
            f"({short:.1f} GB short){hint}", shortfall_gb=short, suggestions=alternatives)
    op = point_from_terms(terms_of(s, concurrency=conc, input_tokens=req.input_tokens,
                                   output_tokens=req.output_tokens), efficiency_of(s.profile))
    lo, hi = s.profile.range_low_factor, s.profile.range_high_factor
    step = op.step
    bottleneck = "memory bandwidth" if float(step.memory_s) >= float(step.compute_s) else "compute"
    warnings = list(arch.approximations)
    if not s.fmt.native:
        warnings.append(f"{s.gpu.gpu_id} has no native {catalog.precisions[s.precision_id].compute_format} "
                        f"units: weights are dequantized to bf16 for the matmuls")
    if s.quality_risk in ("moderate", "high"):
        warnings.append(f"{s.precision_id} carries a {s.quality_risk} quality risk; evaluate on your task")
    if s.profile.n_points == 0:
        warnings.append("efficiency profile is an uncalibrated prior; treat speeds as rough")
    tput, tpot, ttft = float(op.output_tokens_per_s), float(op.tpot_s), float(op.ttft_s)
    return Estimate(
        fits=True, model_id=s.model.model_id, gpu_id=s.gpu.gpu_id, num_gpus=req.num_gpus, tp=s.tp, pp=s.pp,
        engine=s.engine_id, precision=s.precision_id, kv_dtype=s.kv_dtype_id, compute_format=s.fmt.compute_format,
        native_compute=s.fmt.native, quality_risk=s.quality_risk,
        total_params_b=arch.total_params_b, active_params_b=arch.active_params_b,
        weights_gb=s.fmt.total_bytes(arch) / units.GB, weights_gb_per_gpu=fit.weights_gb_per_gpu,
        kv_cache_bytes_per_token=kv_bytes_per_token(arch, s.kv_bytes_per_elem),
        kv_cache_gb_per_sequence=kv_bytes_per_sequence(arch, context, s.kv_bytes_per_elem) / units.GB,
        kv_cache_gb_per_gpu=fit.kv_gb_per_gpu, memory_budget_gb_per_gpu=fit.budget_gb_per_gpu,
        free_memory_gb_per_gpu=fit.free_gb_per_gpu, max_concurrency=probe.max_concurrency, concurrency=conc,
        input_tokens=req.input_tokens, output_tokens=req.output_tokens,
        ttft_s=ttft, ttft_s_low=ttft / hi, ttft_s_high=ttft / lo,
        tpot_s=tpot, tpot_s_low=tpot / hi, tpot_s_high=tpot / lo,
        prefill_tokens_per_s=float(op.prefill_tokens_per_s),
        output_tokens_per_s=tput, output_tokens_per_s_low=tput * lo, output_tokens_per_s_high=tput * hi,
        output_tokens_per_s_per_user=float(op.output_tokens_per_s_per_user), bottleneck=bottleneck,
        efficiency_profile=s.profile.profile_id, warnings=tuple(warnings), kv_context_tokens_per_sequence=held,
    )
