"""What a fine-tune needs and costs: memory per GPU, FLOPs, GPU-hours, wall clock and cost per tier.

`finetune(catalog, FinetuneRequest)` validates the request, sizes memory (finetune_memory: ZeRO-3/FSDP
sharding, LoRA adapters, NF4 base, activations with or without checkpointing), counts FLOPs and divides
them by the MFU fitted on published measurements (finetune_mfu, data/finetune_mfu.csv), then prices the
GPU-hours per rental tier (`costs.tier_prices`) and owned (`costs.owned_gpu_month` / HOURS_PER_MONTH).

GPU-hours = tokens x FLOPs per token / (MFU x dense bf16 peak) / 3600 s; wall clock = GPU-hours / GPUs.
A configuration that does not fit is returned with `fits` False, the shortfall and what would fit;
`require_fit` turns it into a DoesNotFitError.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

from planner import units
from planner.data.catalog import Catalog, Gpu
from planner.econ.costs import OWNED, RENTAL_TIERS, load_cost_defaults, owned_gpu_month, tier_prices
from planner.econ.finetune_memory import METHODS, OPTIMIZERS, MemoryBreakdown, lora_adapter_params, memory_breakdown
from planner.econ.finetune_mfu import MfuRow, load_mfu, mfu_for, training_flops_per_token
from planner.errors import DoesNotFitError, InvalidInputError
from planner.model.architecture import Architecture

MAX_DATASET_TOKENS = 1e15  # 25x the largest published pretraining set (Llama 4 Scout, ~40T tokens)
MAX_EPOCHS = 1000.0
MAX_GPUS = 32768  # training clusters: Llama 3 405B ran on 16,384 H100s (arXiv:2407.21783)
MAX_MICRO_BATCH = 4096
MAX_SEQ_LEN_TOKENS = 10_000_000  # the longest published context (Llama 4 Scout, 10M)
# Planning allowance for the CUDA context, NCCL buffers and allocator fragmentation (empirical, like
# engines.csv's runtime_overhead_gb; not a vendor figure).
DEFAULT_RUNTIME_OVERHEAD_GB = 1.0
SUGGESTION_GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64)
COST_TIERS = RENTAL_TIERS + (OWNED,)


@dataclass(frozen=True)
class FinetuneRequest:
    """One fine-tuning run: names are catalog ids or aliases."""

    model: str
    gpu: str
    method: str = "lora"  # full | lora | qlora
    dataset_tokens: float = 100e6
    epochs: float = 1.0
    num_gpus: int = 1
    seq_len_tokens: int = 2048
    micro_batch: int = 1
    lora_rank: int = 16
    optimizer: str = "adamw"  # adamw | adamw-8bit
    gradient_checkpointing: bool = True
    provider: str | None = None
    runtime_overhead_gb: float = DEFAULT_RUNTIME_OVERHEAD_GB


@dataclass(frozen=True)
class FinetuneCost:
    """The cost of the whole run on one tier (NaN when the tier has no price)."""

    tier: str
    available: bool
    usd_per_gpu_hour: float
    total_usd: float
    provider: str | None
    basis: str
    note: str
    source_url: str | None


@dataclass(frozen=True)
class FinetuneEstimate:
    """Result of `finetune()`; every field carries its unit."""

    fits: bool
    model_id: str
    gpu_id: str
    num_gpus: int
    method: str
    optimizer: str
    gradient_checkpointing: bool
    seq_len_tokens: int
    micro_batch: int
    lora_rank: int | None
    total_params_b: float
    active_params_b: float
    trainable_params_b: float
    memory_gb_per_gpu: float
    usable_memory_gb_per_gpu: float
    shortfall_gb_per_gpu: float
    weights_gb_per_gpu: float
    adapter_gb_per_gpu: float
    gradients_gb_per_gpu: float
    optimizer_gb_per_gpu: float
    master_weights_gb_per_gpu: float
    activations_gb_per_gpu: float
    overhead_gb_per_gpu: float
    tokens_total: float
    flops_per_token: float
    flops_total: float
    mfu_frac: float
    mfu_gpu_class: str
    gpu_hours: float
    gpu_hours_low: float
    gpu_hours_high: float
    wall_clock_hours: float
    costs: dict[str, FinetuneCost]
    fit_message: str
    suggestions: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    @property
    def memory_breakdown_gb_per_gpu(self) -> dict[str, float]:
        return {"weights": self.weights_gb_per_gpu, "adapter": self.adapter_gb_per_gpu,
                "gradients": self.gradients_gb_per_gpu, "optimizer": self.optimizer_gb_per_gpu,
                "master_weights": self.master_weights_gb_per_gpu, "activations": self.activations_gb_per_gpu,
                "overhead": self.overhead_gb_per_gpu}

    @property
    def cost_usd(self) -> dict[str, float]:
        return {t: c.total_usd for t, c in self.costs.items()}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["memory_breakdown_gb_per_gpu"] = self.memory_breakdown_gb_per_gpu
        out["cost_usd"] = self.cost_usd
        out["suggestions"], out["warnings"] = list(self.suggestions), list(self.warnings)
        return out


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"


def _number(name: str, value: object, low: float, high: float, *, integer: bool = False,
            low_open: bool = False) -> None:
    """InvalidInputError unless value is a (whole) finite number in [low, high] ((low, high] if low_open)."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise InvalidInputError(f"{name} must be {kind}, got {_shown(value)}")
    if isinstance(value, int) and abs(value) > high:  # before float(): 10**400 overflows a float
        raise InvalidInputError(f"{name} must be <= {high:g}, got {_shown(value)}")
    v = float(value)
    bad = not math.isfinite(v) or v > high or (v <= low if low_open else v < low)
    if bad:
        interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise InvalidInputError(f"{name} must be finite and in {interval}, got {_shown(value)}")


def validate_request(req: FinetuneRequest, arch: Architecture, context_length_tokens: int) -> None:
    """Check every field of a request; one InvalidInputError naming the field and value."""
    if req.method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {_shown(req.method)}")
    if req.optimizer not in OPTIMIZERS:
        raise InvalidInputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {_shown(req.optimizer)}")
    _number("dataset_tokens", req.dataset_tokens, 1, MAX_DATASET_TOKENS)
    _number("epochs", req.epochs, 0, MAX_EPOCHS, low_open=True)
    _number("num_gpus", req.num_gpus, 1, MAX_GPUS, integer=True)
    _number("micro_batch", req.micro_batch, 1, MAX_MICRO_BATCH, integer=True)
    _number("seq_len_tokens", req.seq_len_tokens, 1, MAX_SEQ_LEN_TOKENS, integer=True)
    _number("runtime_overhead_gb", req.runtime_overhead_gb, 0, 1000)
    if req.seq_len_tokens > context_length_tokens:
        raise InvalidInputError(f"seq_len_tokens must be <= the model's context length "
                                f"{context_length_tokens:,}, got {req.seq_len_tokens:,}")
    if req.method != "full":
        _number("lora_rank", req.lora_rank, 1, MAX_MICRO_BATCH * 64, integer=True)
        if req.lora_rank > arch.hidden_size:
            raise InvalidInputError(f"lora_rank must be <= the model's hidden size {arch.hidden_size}, "
                                    f"got {req.lora_rank}")
    if not isinstance(req.gradient_checkpointing, bool):
        raise InvalidInputError(f"gradient_checkpointing must be true or false, "
                                f"got {_shown(req.gradient_checkpointing)}")


@lru_cache(maxsize=1)
def _shipped_mfu() -> dict[tuple[str, str], MfuRow]:
    return load_mfu()


@lru_cache(maxsize=1)
def _cost_defaults() -> dict[str, float]:
    return {k: v.value for k, v in load_cost_defaults().items()}


def _memory(arch: Architecture, req: FinetuneRequest) -> MemoryBreakdown:
    return memory_breakdown(arch, method=req.method, optimizer=req.optimizer, lora_rank=req.lora_rank,
                            num_gpus=req.num_gpus, seq_len_tokens=req.seq_len_tokens, micro_batch=req.micro_batch,
                            gradient_checkpointing=req.gradient_checkpointing,
                            runtime_overhead_gb=req.runtime_overhead_gb)


def suggest_fitting(arch: Architecture, gpu: Gpu, req: FinetuneRequest, *, limit: int = 4) -> tuple[str, ...]:
    """Nearby configurations whose memory fits: checkpointing, 8-bit AdamW, micro-batch 1, then more GPUs
    per method (the request's, then lora and qlora)."""
    usable = gpu.usable_memory_gb
    out: list[str] = []
    tweaks = [("gradient checkpointing", {"gradient_checkpointing": True}),
              ("8-bit AdamW", {"optimizer": "adamw-8bit"}), ("micro-batch 1", {"micro_batch": 1})]
    for label, change in tweaks:
        trial = replace(req, **change)
        if trial != req and _memory(arch, trial).total_gb <= usable:
            out.append(f"{label} ({_memory(arch, trial).total_gb:.1f} GB per GPU)")
    methods = [req.method] + [m for m in ("lora", "qlora") if m != req.method]
    for method in methods:
        for n in (c for c in SUGGESTION_GPU_COUNTS if c >= req.num_gpus):
            trial = replace(req, method=method, num_gpus=n, gradient_checkpointing=True)
            need = _memory(arch, trial).total_gb
            if need <= usable:
                if trial != req:
                    out.append(f"{method} on {n} x {gpu.gpu_id} with checkpointing ({need:.1f} GB per GPU)")
                break
    return tuple(out[:limit])


def _costs(catalog: Catalog, gpu: Gpu, req: FinetuneRequest, gpu_hours: float) -> dict[str, FinetuneCost]:
    d = _cost_defaults()
    prices = tier_prices(catalog, gpu.gpu_id, provider=req.provider,
                         reserved_1y_discount_frac=d["reserved_1y_discount_frac"],
                         reserved_3y_discount_frac=d["reserved_3y_discount_frac"])
    out: dict[str, FinetuneCost] = {}
    for tier, p in prices.items():
        rate = p.usd_per_gpu_hour
        if tier == "spot" and p.available:
            rate *= 1.0 + d["spot_interruption_overhead_frac"]  # work redone after interruptions
        out[tier] = FinetuneCost(tier, p.available, rate, rate * gpu_hours if p.available else math.nan,
                                 p.provider, p.basis, p.note, p.source_url)
    if gpu.purchase_usd is None or gpu.tdp_w is None:
        out[OWNED] = FinetuneCost(OWNED, False, math.nan, math.nan, None, "unavailable",
                                  f"no purchase price or power listed for {gpu.gpu_id} in gpus.csv", None)
        return out
    month = owned_gpu_month(
        gpu_purchase_usd=gpu.purchase_usd, gpu_power_w=gpu.tdp_w,
        server_network_capex_frac=d["server_network_capex_frac"], amortisation_years=d["amortisation_years"],
        cost_of_capital_frac_per_year=d["cost_of_capital_frac_per_year"],
        residual_value_frac=d["residual_value_frac"], server_to_gpu_power_ratio=d["server_to_gpu_power_ratio"],
        power_load_frac=d["power_load_frac"], pue=d["pue"], electricity_usd_per_kwh=d["electricity_usd_per_kwh"],
        colocation_usd_per_kw_month=d["colocation_usd_per_kw_month"],
        software_usd_per_gpu_year=d["software_usd_per_gpu_year"])
    rate = month.total_usd / units.HOURS_PER_MONTH
    out[OWNED] = FinetuneCost(OWNED, True, rate, rate * gpu_hours, None, "owned",
                              f"{gpu.gpu_id} owned: ${month.total_usd:,.0f} per GPU-month / "
                              f"{units.HOURS_PER_MONTH:g} h (cost_defaults.csv)", gpu.purchase_source_url)
    return out


def finetune(catalog: Catalog, req: FinetuneRequest, *, mfu_table: dict[tuple[str, str], MfuRow] | None = None
             ) -> FinetuneEstimate:
    """Memory, compute, time and cost of one fine-tuning run (see the module note).

    `mfu_table` defaults to data/finetune_mfu.csv; pass another fit (finetune_mfu.fit_mfu) to compare.
    """
    model = catalog.model(req.model)
    gpu = catalog.gpu(req.gpu)
    arch = model.arch
    validate_request(req, arch, model.context_length_tokens)
    mem = _memory(arch, req)
    need, usable = mem.total_gb, gpu.usable_memory_gb
    fits = need <= usable
    adapter = lora_adapter_params(arch, req.lora_rank).total if req.method != "full" else 0.0
    trainable = arch.total_params if req.method == "full" else adapter
    what = f"{req.method} of {model.model_id} on {req.num_gpus} x {gpu.gpu_id}"
    if fits:
        suggestions: tuple[str, ...] = ()
        message = f"{what} fits: {need:.1f} GB of {usable:.1f} GB usable per GPU"
    else:
        suggestions = suggest_fitting(arch, gpu, req)
        hint = "; would fit: " + "; ".join(suggestions) if suggestions else "; nothing up to 64 GPUs fits"
        message = (f"{what} does not fit: needs {need:.1f} GB per GPU, {usable:.1f} GB usable "
                   f"({need - usable:.1f} GB short){hint}")
    flops_per_token = training_flops_per_token(arch, method=req.method, seq_len_tokens=req.seq_len_tokens,
                                               lora_rank=req.lora_rank, micro_batch=req.micro_batch,
                                               gradient_checkpointing=req.gradient_checkpointing)
    tokens = float(req.dataset_tokens) * float(req.epochs)
    mfu = mfu_for(mfu_table if mfu_table is not None else _shipped_mfu(), req.method, gpu)
    gpu_hours = tokens * flops_per_token / (mfu.mfu_frac * gpu.bf16_dense_tflops * units.TERA) / units.S_PER_HOUR
    spread = math.exp(mfu.fit_rmse_log)
    warnings = list(arch.approximations)
    if mfu.n_points == 0:
        warnings.append(f"no published {req.method} measurement on {mfu.gpu_class} hardware; MFU "
                        f"{mfu.mfu_frac:.2f} comes from the fit's fallback for that class")
    if arch.attention in ("mla", "hybrid-linear", "hybrid-mamba"):
        warnings.append(f"LoRA adapter size is approximate for {arch.attention} attention")
    return FinetuneEstimate(
        fits=fits, model_id=model.model_id, gpu_id=gpu.gpu_id, num_gpus=req.num_gpus, method=req.method,
        optimizer=req.optimizer, gradient_checkpointing=req.gradient_checkpointing,
        seq_len_tokens=req.seq_len_tokens, micro_batch=req.micro_batch,
        lora_rank=req.lora_rank if req.method != "full" else None, total_params_b=arch.total_params_b,
        active_params_b=arch.active_params_b, trainable_params_b=trainable / units.BILLION,
        memory_gb_per_gpu=need, usable_memory_gb_per_gpu=usable, shortfall_gb_per_gpu=max(need - usable, 0.0),
        weights_gb_per_gpu=mem.weights_gb, adapter_gb_per_gpu=mem.adapter_gb, gradients_gb_per_gpu=mem.gradients_gb,
        optimizer_gb_per_gpu=mem.optimizer_gb, master_weights_gb_per_gpu=mem.master_weights_gb,
        activations_gb_per_gpu=mem.activations_gb, overhead_gb_per_gpu=mem.overhead_gb,
        tokens_total=tokens, flops_per_token=flops_per_token, flops_total=tokens * flops_per_token,
        mfu_frac=mfu.mfu_frac, mfu_gpu_class=mfu.gpu_class, gpu_hours=gpu_hours,
        gpu_hours_low=gpu_hours / spread, gpu_hours_high=gpu_hours * spread,
        wall_clock_hours=gpu_hours / req.num_gpus, costs=_costs(catalog, gpu, req, gpu_hours),
        fit_message=message, suggestions=suggestions, warnings=tuple(warnings))


def require_fit(estimate: FinetuneEstimate) -> FinetuneEstimate:
    """The estimate itself, or DoesNotFitError (with shortfall and suggestions) when it does not fit."""
    if not estimate.fits:
        raise DoesNotFitError(estimate.fit_message, shortfall_gb=estimate.shortfall_gb_per_gpu,
                              suggestions=estimate.suggestions)
    return estimate


def finetune_usd_per_month(estimate: FinetuneEstimate, tier: str, runs_per_year: float) -> float:
    """Monthly cost of periodic fine-tunes for the TCO: cost of one run on `tier` x runs per year / 12.

    tier: on_demand, spot, reserved_1y, reserved_3y or owned. DoesNotFitError when the run does not fit;
    InvalidInputError for an unknown tier, a tier without a price, or runs_per_year outside [0, 10000].
    """
    require_fit(estimate)
    if tier not in COST_TIERS:
        raise InvalidInputError(f"tier must be one of {', '.join(COST_TIERS)}, got {_shown(tier)}")
    _number("runs_per_year", runs_per_year, 0, 10_000)
    cost = estimate.costs[tier]
    if not cost.available:
        raise InvalidInputError(f"no {tier} price for {estimate.gpu_id}: {cost.note}")
    return cost.total_usd * float(runs_per_year) / units.MONTHS_PER_YEAR
