"""Wiring for one hardware estimate: model x GPU x precision x engine -> memory fit and speed.

`estimate()` resolves names through the catalog, checks the combination, sizes memory,
picks the operating concurrency (the largest batch that fits, unless one is given) and
runs the performance model. No formulas live here; see memory.py and performance.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from planner import units
from planner.data.catalog import Catalog, Gpu, Model, model_from_config_file
from planner.errors import DoesNotFitError, InvalidInputError, require_positive_int
from planner.model.architecture import kv_bytes_per_sequence, kv_bytes_per_token
from planner.model.quantization import check_compatible, weight_format
from planner.perf import evaluator, speculative
from planner.perf.evaluator import Candidate, Evaluation, Layout, default_layout, efficiency_of, layout_problem
from planner.perf.performance import Hardware, StepTerms, decode_terms
from planner.perf.serving import PointTerms

MAX_TOKENS = 10_000_000  # guard against absurd inputs (the longest published context is 10M, Llama 4 Scout)
MAX_GPUS = evaluator.MAX_GPUS


@dataclass(frozen=True)
class EstimateRequest:
    """What the user asks: names are catalog ids or aliases (model may be a config.json path)."""

    model: str
    gpu: str
    num_gpus: int = 1
    precision: str | None = None  # None: the model's native precision where the engine loads it, else bf16
    kv_dtype: str | None = None  # None: the engine's default (bf16; fp16 on llama.cpp; fp8 for fp8 on TensorRT-LLM)
    input_tokens: int = 1024
    output_tokens: int = 256
    concurrency: int | None = None  # None: the largest batch that fits (max-throughput point)
    engine: str | None = None  # None: vllm, or llama.cpp for GGUF precisions and Apple GPUs
    tp: int | None = None  # None: fill a node with tensor parallelism, pipeline across nodes
    expert_parallel: bool = False
    profile: str | None = None  # a named efficiency profile (e.g. from `planner calibrate`)
    pp: int | None = None  # pipeline stages (llama.cpp: GPUs its layers are split over)
    dp: int | None = None  # data-parallel engine instances inside the replica (None: 1)
    max_num_seqs: int | None = None  # the engine's concurrency limit (None: its default)
    speculative: str = "off"  # off | mtp | eagle3 (planner.perf.speculative)
    speculative_draft_tokens: int | None = None  # None: the shortest draft length data/speculative.csv measured
    speculative_acceptance_frac: float | None = None  # per-position acceptance; None: from data/speculative.csv
    attn_dp: bool = False  # MoE: attention data-parallel over the tp group, experts expert-parallel (Layout.attn_dp)


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
    dp: int = 1  # data-parallel instances; concurrency and max_concurrency are per instance
    expert_parallel: bool = False
    layer_split: bool = False  # llama.cpp: pp = GPUs the layers are split over, run one after another
    layout: str = "TP1"
    attn_dp: bool = False  # attention data-parallel over the tp group (each GPU its own sequences), experts EP
    roofline_tpot_s: float = 0.0  # the same configuration at 100 % efficiency (no range end beats it)
    speculative: dict | None = None  # speculative decoding asked for: both sides (`_speculative_summary`)

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


def _default_engine(gpu: Gpu, precision_kind: str | None) -> str:
    if gpu.vendor.lower() == "apple" or precision_kind == "gguf":
        return "llama.cpp"
    return "vllm"


def default_engine_id(gpu: Gpu, precision_kind: str | None) -> str:
    """The engine used unless one is named: llama.cpp for GGUF weights and Apple GPUs, vLLM otherwise."""
    return _default_engine(gpu, precision_kind)


def _default_precision(catalog: Catalog, model: Model, engine_id: str) -> str:
    native = model.native_precision
    if native in catalog.precisions and engine_id in catalog.precisions[native].engines:
        return native
    return "bf16" if engine_id != "llama.cpp" else "q8_0"


@dataclass(frozen=True)
class ReplicaSetup:
    """A resolved request: model, GPU, engine, precision, layout and efficiency profile (one `Candidate`)."""

    model: Model
    candidate: Candidate

    gpu = property(lambda self: self.candidate.gpu)
    engine_id = property(lambda self: self.candidate.engine.engine_id)
    precision_id = property(lambda self: self.candidate.precision.precision_id)
    precision_kind = property(lambda self: self.candidate.precision.kind)
    kv_dtype_id = property(lambda self: self.candidate.kv.kv_dtype_id)
    kv_bytes_per_elem = property(lambda self: self.candidate.kv.bytes_per_elem)
    fmt = property(lambda self: self.candidate.fmt)
    layout = property(lambda self: self.candidate.layout)
    tp = property(lambda self: self.candidate.layout.tp)
    pp = property(lambda self: self.candidate.layout.pp)
    expert_parallel = property(lambda self: self.candidate.layout.ep)
    attn_dp = property(lambda self: self.candidate.layout.attn_dp)
    quality_risk = property(lambda self: self.candidate.precision.quality_risk)
    profile = property(lambda self: self.candidate.profile)
    prefill_budget_tokens = property(lambda self: self.candidate.engine.max_num_batched_tokens)


def _check_request(req: EstimateRequest) -> None:
    require_positive_int(num_gpus=req.num_gpus, input_tokens=req.input_tokens, output_tokens=req.output_tokens)
    if req.num_gpus > MAX_GPUS:
        raise InvalidInputError(f"num_gpus must be <= {MAX_GPUS}, got {req.num_gpus}")
    if req.input_tokens + req.output_tokens > MAX_TOKENS:
        raise InvalidInputError(f"input_tokens + output_tokens must be <= {MAX_TOKENS:,}, got "
                                f"{req.input_tokens + req.output_tokens:,}")
    for name in ("concurrency", "tp", "pp", "dp", "max_num_seqs"):
        if getattr(req, name) is not None:
            require_positive_int(**{name: getattr(req, name)})


def prepare(catalog: Catalog, req: EstimateRequest, layout: Layout | None = None) -> ReplicaSetup:
    """Resolve and check a request (names, compatibility, layout, profile); no performance yet.

    Without `layout` the request's tp/pp/dp (missing ones: `evaluator.default_layout`) are used.
    """
    _check_request(req)
    model = resolve_model(catalog, req.model)
    gpu = catalog.gpu(req.gpu)
    prec = catalog.precision(req.precision) if req.precision else None
    named = catalog.named_profile(req.profile) if req.profile else None  # its engine unless one is asked for
    engine_id = req.engine or (named.engine if named else _default_engine(gpu, prec.kind if prec else None))
    engine = catalog.engine(engine_id)
    prec = prec or catalog.precision(_default_precision(catalog, model, engine.engine_id))
    kv = catalog.kv_dtype(req.kv_dtype or evaluator.default_kv_dtype_id(engine, prec, gpu))
    check_compatible(prec, kv, gpu, engine)
    arch = model.arch
    if (req.expert_parallel or req.attn_dp) and not arch.is_moe:
        what = "attn_dp" if req.attn_dp else "expert_parallel"
        raise InvalidInputError(f"{what} needs a mixture-of-experts model; {model.model_id} is dense")
    if layout is None:
        layout = default_layout(engine, arch, gpu, req.num_gpus, tp=req.tp, pp=req.pp, dp=req.dp,
                                ep=bool(req.expert_parallel), attn_dp=bool(req.attn_dp))
    if req.tp is not None and req.pp is None and "layer" in engine.layouts and req.tp > 1:
        raise InvalidInputError(f"{engine.engine_id} splits layers over GPUs (pp); it has no tensor parallelism "
                                f"(tp {req.tp})")
    if layout.gpus != req.num_gpus:
        raise InvalidInputError(f"layout {layout.label} uses {layout.gpus} GPUs, num_gpus is {req.num_gpus}")
    problem = layout_problem(engine, arch, gpu, layout)
    if problem and (req.tp is not None or req.pp is not None or (req.dp or 1) > 1 or layout.ep):
        raise InvalidInputError(f"{model.model_id} on {req.num_gpus} x {gpu.gpu_id} with {engine.engine_id}, "
                                f"layout {layout.label}: {problem}")
    fmt = weight_format(prec, gpu, model_native_precision=model.native_precision, gguf=evaluator.serves_gguf(engine))
    cand = Candidate(gpu, engine, prec, kv, fmt, layout,
                     catalog.efficiency_for(engine.engine_id, gpu, profile_id=req.profile),
                     req.max_num_seqs or engine.max_num_seqs)
    return ReplicaSetup(model, cand)


def hardware_of(s: ReplicaSetup) -> Hardware:
    """Per-GPU peaks the model runs at: the format's tensor rate, or int8 for llama.cpp's quantized matmuls."""
    return Hardware(memory_bandwidth_tb_s=s.gpu.memory_bandwidth_tb_s, compute_tflops=evaluator.tflops_of(s.candidate),
                    interconnect_bandwidth_gb_s=s.gpu.interconnect_bandwidth_gb_s)


def kv_context_tokens(s: ReplicaSetup, input_tokens: float, output_tokens: float) -> float:
    """Tokens of KV cache one running sequence holds under the engine's reservation policy."""
    return float(evaluator.held_tokens(s.candidate.engine.kv_reservation, input_tokens, output_tokens))


def max_running_sequences(s: ReplicaSetup, input_tokens: float, output_tokens: float) -> int:
    """Sequences a max-throughput run keeps in flight: KV capacity under the engine's policy,
    capped by the engine's batch limit (0 when not even one fits)."""
    return int(evaluator.max_concurrency_of(s.model.arch, [s.candidate], input_tokens=input_tokens,
                                            output_tokens=output_tokens)[0])


def terms_of(s: ReplicaSetup, *, concurrency: float, input_tokens: float, output_tokens: float) -> PointTerms:
    """Roofline terms (100 % efficiency) of this replica's instance at `concurrency` sequences (scalars out)."""
    t = evaluator.point_terms_of(s.model.arch, [s.candidate], concurrency=concurrency, input_tokens=input_tokens,
                                 output_tokens=output_tokens)
    first = lambda obj: type(obj)(**{k: float(np.asarray(v)[0]) for k, v in vars(obj).items()})  # noqa: E731
    return PointTerms(concurrency=float(concurrency), input_tokens=float(input_tokens), step=first(t.step),
                      prefill=first(t.prefill))


def decode_terms_of(s: ReplicaSetup, *, batch: float, context_tokens: float) -> StepTerms:
    """Roofline terms (100 % efficiency) of one decode-only step of this replica's instance at `batch` sequences
    of `context_tokens` context, with its whole layout (tensor/pipeline/expert parallel, attention DP): what
    `validation.model_row` needs for a static batch's decode steps, built the way the evaluator builds them."""
    hw = hardware_of(s)
    return decode_terms(s.model.arch, s.fmt, batch=batch, context_tokens=context_tokens,
                        kv_bytes_per_elem=s.kv_bytes_per_elem, tp=s.tp, pp=s.pp,
                        memory_bandwidth_tb_s=hw.memory_bandwidth_tb_s, compute_tflops=hw.compute_tflops,
                        interconnect_bandwidth_gb_s=hw.interconnect_bandwidth_gb_s,
                        expert_parallel=s.expert_parallel, attn_dp=s.attn_dp)


def suggest_alternatives(catalog: Catalog, req: EstimateRequest, *, limit: int = 4) -> tuple[str, ...]:
    """Configurations close to `req` that do fit at least one sequence: more GPUs, then lighter precisions."""
    out: list[str] = []
    base = prepare(catalog, req)
    candidates = [base.precision_id] + [p for p in ("fp8", "int4-awq", "nvfp4", "q8_0", "q4_k_m")
                                        if p != base.precision_id and base.engine_id in catalog.precisions[p].engines]
    counts = [n for n in (1, 2, 4, 8, 16, 32, 64) if n >= req.num_gpus]
    for prec in candidates:
        for n in counts:
            trial = EstimateRequest(**{**asdict(req), "precision": prec, "num_gpus": n, "concurrency": None,
                                       "tp": None, "pp": None, "dp": None})
            try:
                s = prepare(catalog, trial)
            except InvalidInputError:
                continue
            fit = max_running_sequences(s, req.input_tokens, req.output_tokens)
            if fit >= 1:
                out.append(f"{prec} on {n} x {s.gpu.gpu_id} (up to {fit} sequences)")
                break
        if len(out) >= limit:
            break
    return tuple(out)


def evaluate_setup(s: ReplicaSetup, *, input_tokens: int, output_tokens: int,
                   concurrency: int | None = None) -> Evaluation:
    """The evaluator on this one configuration (arrays of length 1)."""
    return evaluator.evaluate(s.model.arch, [s.candidate], input_tokens=input_tokens, output_tokens=output_tokens,
                              concurrency=concurrency, context_length_tokens=s.model.context_length_tokens)


LAYOUT_TIE_FRAC = 0.01  # max-throughputs this close count as a tie: far below what the model resolves (its
# source-held-out median errors are 12-35 %, docs/performance.md), so a 0.02 % lead is no reason to run a pipeline


def layout_simplicity(layout: Layout) -> tuple[int, int, int]:
    """Sort key, simplest first: fewer pipeline stages (no bubbles, no stage sends), then no expert parallelism or
    attention DP (no all-to-all), then fewer tensor-parallel ranks (fewer all-reduces; independent data-parallel
    instances instead)."""
    return layout.pp, int(layout.ep or layout.attn_dp), layout.tp


def layout_simplicity_of(cs: evaluator.CandidateSet) -> np.ndarray:
    """(n, 3): `layout_simplicity` of every configuration of a candidate set, column by column (no Python object
    per configuration): pipeline stages, expert parallelism or attention DP, tensor-parallel ranks."""
    return np.stack([cs.pp, (cs.ep | cs.attn_dp).astype(int), cs.tp], axis=1)


def auto_layout(catalog: Catalog, req: EstimateRequest) -> Layout | None:
    """The layout with the highest max-throughput on req.num_gpus GPUs when the request fixes none (None: keep
    the default). Layouts within LAYOUT_TIE_FRAC of the best are a tie, won by the simplest (`layout_simplicity`),
    then by the higher throughput."""
    if req.tp is not None or req.pp is not None or req.dp is not None or req.num_gpus == 1:
        return None  # (a request with attn_dp and no tp/pp/dp still searches the attention-DP layouts)
    base = prepare(catalog, req)
    arch = base.model.arch
    layouts = evaluator.layouts_for(base.candidate.engine, arch, base.gpu, req.num_gpus)
    if req.attn_dp:
        layouts = [lay for lay in layouts if lay.attn_dp] or layouts
    elif not req.expert_parallel:  # plain TP-sharded EP only when asked; attention DP + EP is its own layout
        layouts = [lay for lay in layouts if not lay.ep or lay.attn_dp] or layouts
    if len(layouts) <= 1:
        return None
    cands = [replace(base.candidate, layout=lay) for lay in layouts]
    ev = evaluator.evaluate(arch, cands, input_tokens=req.input_tokens, output_tokens=req.output_tokens,
                            concurrency=None if req.concurrency is None else req.concurrency,
                            context_length_tokens=base.model.context_length_tokens)
    tput = np.where(ev.fits, ev.output_tokens_per_s, -np.inf)
    if not np.isfinite(tput).any():
        return None
    return layouts[pick_layout(layouts, tput)]


def pick_layout(layouts: list[Layout], output_tokens_per_s: np.ndarray) -> int:
    """Index of the simplest layout (`layout_simplicity`) whose throughput is within LAYOUT_TIE_FRAC of the best
    (-inf: does not fit), the higher throughput first among equally simple ones."""
    tput = np.asarray(output_tokens_per_s, dtype=float)
    tied = np.flatnonzero(tput >= (1.0 - LAYOUT_TIE_FRAC) * tput.max())
    return int(min(tied, key=lambda i: (layout_simplicity(layouts[i]), -tput[i])))


def estimate(catalog: Catalog, req: EstimateRequest) -> Estimate:
    """Memory fit and performance of one replica; DoesNotFitError (with suggestions) if nothing fits.

    With several GPUs and no tp/pp/dp given, the layout is the one with the highest throughput among those the
    engine runs (e.g. four TP2 instances where each pair holds the model).
    """
    _check_request(req)
    s = prepare(catalog, req, auto_layout(catalog, req))
    arch = s.model.arch
    setting = speculative_setting(s, req)
    context = req.input_tokens + req.output_tokens
    if context > s.model.context_length_tokens:
        raise InvalidInputError(f"input_tokens + output_tokens = {context:,} exceeds {s.model.model_id}'s context "
                                f"length of {s.model.context_length_tokens:,} tokens")
    held = kv_context_tokens(s, req.input_tokens, req.output_tokens)
    probe = evaluate_setup(s, input_tokens=req.input_tokens, output_tokens=req.output_tokens)
    cap = int(probe.max_concurrency[0])
    conc = req.concurrency if req.concurrency is not None else cap
    ev = probe if req.concurrency is None else evaluate_setup(s, input_tokens=req.input_tokens,
                                                              output_tokens=req.output_tokens, concurrency=conc)
    g = lambda name: float(getattr(ev, name)[0])  # noqa: E731
    if cap < 1 or not bool(ev.fits[0]):
        need = g("weights_gb_per_gpu") + s.candidate.engine.runtime_overhead_gb + max(conc, 1) * g(
            "kv_gb_per_sequence_per_gpu")
        short = need - g("budget_gb_per_gpu")
        what = f"{max(conc, 1)} sequence(s) holding {held:,.0f} tokens of KV each"
        where = f"{req.num_gpus} x {s.gpu.gpu_id}" + (f" ({s.layout.label})" if s.layout.dp > 1 else "")
        if cap >= 1:
            raise DoesNotFitError(
                f"{s.model.model_id} at {s.precision_id} on {where}: {what} need "
                f"{need:.1f} GB per GPU, {g('budget_gb_per_gpu'):.1f} GB usable ({short:.1f} GB short); "
                f"at most {cap} sequences fit", shortfall_gb=short)
        alternatives = suggest_alternatives(catalog, req)
        hint = "; would fit: " + "; ".join(alternatives) if alternatives else "; nothing up to 64 GPUs fits"
        raise DoesNotFitError(
            f"{s.model.model_id} at {s.precision_id} does not fit on {where}: "
            f"{what} need {need:.1f} GB per GPU, {g('budget_gb_per_gpu'):.1f} GB usable "
            f"({short:.1f} GB short){hint}", shortfall_gb=short, suggestions=alternatives)
    bottleneck = "memory bandwidth" if g("memory_s") >= g("compute_s") else "compute"
    warnings = list(arch.approximations)
    if not s.fmt.native:
        warnings.append(f"{s.gpu.gpu_id} has no native {catalog.precisions[s.precision_id].compute_format} "
                        f"units: weights are dequantized to bf16 for the matmuls")
    if s.quality_risk in ("moderate", "high"):
        warnings.append(f"{s.precision_id} carries a {s.quality_risk} quality risk; evaluate on your task")
    if s.profile.n_points == 0:
        warnings.append("efficiency profile is an uncalibrated prior; treat speeds as rough")
    tpot = g("tpot_s")
    result = Estimate(
        fits=True, model_id=s.model.model_id, gpu_id=s.gpu.gpu_id, num_gpus=req.num_gpus, tp=s.tp, pp=s.pp,
        engine=s.engine_id, precision=s.precision_id, kv_dtype=s.kv_dtype_id, compute_format=s.fmt.compute_format,
        native_compute=s.fmt.native, quality_risk=s.quality_risk,
        total_params_b=arch.total_params_b, active_params_b=arch.active_params_b,
        weights_gb=s.fmt.total_bytes(arch) / units.GB, weights_gb_per_gpu=g("weights_gb_per_gpu"),
        kv_cache_bytes_per_token=kv_bytes_per_token(arch, s.kv_bytes_per_elem),
        kv_cache_gb_per_sequence=kv_bytes_per_sequence(arch, context, s.kv_bytes_per_elem) / units.GB,
        kv_cache_gb_per_gpu=g("kv_gb_per_gpu"), memory_budget_gb_per_gpu=g("budget_gb_per_gpu"),
        free_memory_gb_per_gpu=g("free_gb_per_gpu"), max_concurrency=cap, concurrency=conc,
        input_tokens=req.input_tokens, output_tokens=req.output_tokens,
        ttft_s=g("ttft_s"), ttft_s_low=g("ttft_s_low"), ttft_s_high=g("ttft_s_high"),
        tpot_s=tpot, tpot_s_low=g("tpot_s_low"), tpot_s_high=g("tpot_s_high"),
        prefill_tokens_per_s=g("prefill_tokens_per_s"),
        output_tokens_per_s=g("output_tokens_per_s"), output_tokens_per_s_low=g("output_tokens_per_s_low"),
        output_tokens_per_s_high=g("output_tokens_per_s_high"),
        output_tokens_per_s_per_user=1.0 / tpot, bottleneck=bottleneck,
        efficiency_profile=s.profile.profile_id, warnings=tuple(warnings), kv_context_tokens_per_sequence=held,
        dp=s.layout.dp, expert_parallel=s.layout.ep, layer_split=s.layout.layer_split, layout=s.layout.label,
        attn_dp=s.layout.attn_dp,
        roofline_tpot_s=float(ev.roofline_tpot_s[0]),
    )
    return result if setting is None else with_speculative(result, s, setting)


def speculative_setting(s: ReplicaSetup, req: EstimateRequest) -> speculative.SpeculativeSetting | None:
    """The request's speculative decoding, resolved against data/speculative.csv (None: off); InvalidInputError
    for a method the model does not ship, an engine that does not run it, or a bad draft length / acceptance."""
    rows = speculative.shipped_rows() if req.speculative != "off" else ()  # off: no file read
    setting = speculative.resolve(s.model.arch, s.model.model_id, req.speculative, rows,
                                  draft_tokens=req.speculative_draft_tokens,
                                  acceptance_frac=req.speculative_acceptance_frac)
    if setting is not None:
        speculative.check_engine(s.engine_id)
    return setting


def with_speculative(est: Estimate, s: ReplicaSetup, setting: speculative.SpeculativeSetting) -> Estimate:
    """The estimate with speculative decoding where it helps, and both sides in `speculative`.

    The speculative / plain TPOT ratio of the decode-only steps (`speculative.decode_with`) scales
    TPOT, throughput and their ranges (prefill interference is scaled alike); TTFT is unchanged.
    Where speculation does not help (large, compute-bound batches) the plain figures stay and
    `speculative.applied` is False. The draft's weights and KV are not counted in the memory fit.
    """
    dec = speculative.decode_with(s.model.arch, [s.candidate], setting, concurrency=[float(est.concurrency)],
                                  input_tokens=est.input_tokens, output_tokens=est.output_tokens)
    ratio = float(dec.tpot_s[0] / dec.plain_step_s[0])  # speculative / plain time per output token
    applied = ratio < 1.0
    summary = {
        "method": setting.method, "draft_tokens": setting.draft_tokens, "acceptance_frac": setting.acceptance_frac,
        "acceptance_source": setting.acceptance_source, "draft_model": setting.draft_model,
        "tokens_per_step": setting.tokens_per_step, "draft_pass_frac": speculative.draft_pass_frac(s.model.arch),
        "applied": applied, "speedup_factor": 1.0 / ratio,
        "tpot_s_off": est.tpot_s, "tpot_s_on": est.tpot_s * ratio,
        "output_tokens_per_s_off": est.output_tokens_per_s, "output_tokens_per_s_on": est.output_tokens_per_s / ratio,
    }
    note = (f"speculative {setting.method}: the draft's weights and KV cache are not counted in the memory fit"
            if applied else f"speculative {setting.method} loses at {est.concurrency} sequences "
            f"({1.0 / ratio:.2f}x): the plain figures are kept")
    if not applied:
        return replace(est, speculative=summary, warnings=est.warnings + (note,))
    return replace(est, speculative=summary, warnings=est.warnings + (note,),
                   tpot_s=est.tpot_s * ratio, tpot_s_low=est.tpot_s_low * ratio, tpot_s_high=est.tpot_s_high * ratio,
                   output_tokens_per_s=est.output_tokens_per_s / ratio,
                   output_tokens_per_s_low=est.output_tokens_per_s_low / ratio,
                   output_tokens_per_s_high=est.output_tokens_per_s_high / ratio,
                   output_tokens_per_s_per_user=est.output_tokens_per_s_per_user / ratio,
                   roofline_tpot_s=est.roofline_tpot_s * ratio)


__all__ = ["Estimate", "EstimateRequest", "ReplicaSetup", "auto_layout", "default_engine_id", "efficiency_of",
           "estimate", "evaluate_setup", "hardware_of", "kv_context_tokens", "max_running_sequences", "prepare",
           "resolve_model", "speculative_setting", "suggest_alternatives", "terms_of", "with_speculative"]
