"""Wiring for one hardware estimate: model x GPU x precision x engine -> memory fit and speed.

`estimate()` resolves names through the catalog, checks the combination, sizes memory,
picks the operating concurrency (the largest batch that fits, unless one is given) and
runs the performance model. No formulas live here; see memory.py and performance.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from planner import units
from planner.architecture import kv_bytes_per_sequence, kv_bytes_per_token
from planner.catalog import Catalog, EfficiencyProfile, Gpu, Model, model_from_config_file
from planner.errors import DoesNotFitError, InvalidInputError, require_positive, require_positive_int
from planner.memory import MemoryFit, memory_fit
from planner.performance import Efficiency, Hardware, operating_point
from planner.quantization import WeightFormat, check_compatible, compute_tflops, weight_format

MAX_TOKENS = 10_000_000  # guard against absurd inputs (the longest published context is 10M, Llama 4 Scout)
MAX_GPUS = 4096


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


def _efficiency(prof: EfficiencyProfile) -> Efficiency:
    return Efficiency(mbu_frac=prof.mbu_frac, mfu_decode_frac=prof.mfu_decode_frac,
                      mfu_prefill_frac=prof.mfu_prefill_frac,
                      step_overhead_s=prof.step_overhead_ms / units.MS_PER_S,
                      comm_latency_s=prof.comm_latency_us / units.MILLION)


@dataclass(frozen=True)
class _Setup:
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


def _setup(catalog: Catalog, req: EstimateRequest) -> _Setup:
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
    return _Setup(model, gpu, engine.engine_id, prec.precision_id, kv.kv_dtype_id, kv.bytes_per_elem,
                  weight_format(prec, gpu, model_native_precision=model.native_precision), tp, pp,
                  prec.quality_risk, engine.memory_utilization_frac, engine.runtime_overhead_gb, engine.max_num_seqs,
                  catalog.efficiency_for(engine.engine_id, gpu, profile_id=req.profile))


def _fit(s: _Setup, context_tokens: int, concurrency: int) -> MemoryFit:
    return memory_fit(weights_bytes_total=s.fmt.total_bytes(s.model.arch),
                      kv_bytes_per_sequence=kv_bytes_per_sequence(s.model.arch, context_tokens, s.kv_bytes_per_elem),
                      concurrency=concurrency, tp=s.tp, pp=s.pp, n_kv_heads=s.model.arch.n_kv_heads,
                      usable_memory_gb=s.gpu.usable_memory_gb, memory_utilization_frac=s.engine_util,
                      runtime_overhead_gb=s.engine_overhead_gb, max_num_seqs=s.engine_max_seqs)


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
            fit = _fit(s, req.input_tokens + req.output_tokens, 0)
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
    probe = _fit(s, context, 0)
    conc = req.concurrency if req.concurrency is not None else probe.max_concurrency
    fit = _fit(s, context, max(conc, 0))
    if probe.max_concurrency < 1 or not fit.fits:
        need = fit.weights_gb_per_gpu + fit.overhead_gb_per_gpu + max(conc, 1) * fit.kv_gb_per_sequence_per_gpu
        short = need - fit.budget_gb_per_gpu
        what = f"{max(conc, 1)} sequence(s) of {context:,} tokens"
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
    hw = Hardware(memory_bandwidth_tb_s=s.gpu.memory_bandwidth_tb_s, compute_tflops=compute_tflops(s.gpu, s.fmt),
                  interconnect_bandwidth_gb_s=s.gpu.interconnect_bandwidth_gb_s)
    op = operating_point(arch, s.fmt, concurrency=conc, input_tokens=req.input_tokens,
                         output_tokens=req.output_tokens, kv_bytes_per_elem=s.kv_bytes_per_elem, tp=s.tp, pp=s.pp,
                         hw=hw, eff=_efficiency(s.profile), expert_parallel=req.expert_parallel)
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
        efficiency_profile=s.profile.profile_id, warnings=tuple(warnings),
    )
