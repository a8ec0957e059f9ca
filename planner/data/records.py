"""The typed, frozen records of the catalog tables in data/*.csv: one declaration per table.

Each record's annotations are its CSV columns (units in the names): the type and check, the
plausible band with its source, key columns, and columns that may be empty (`X | None`) or absent
from older files (see `columns.py`). The loader (`catalog.py`, through `_csvschema.read_records`)
validates each file against these declarations; below that boundary the records are plain frozen
dataclasses (attribute access, `dataclasses.replace`, hashing) that nothing validates again. Kept
apart from the loader so other modules can import the record types alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from planner.data.columns import (
    DERIVED,
    KEY,
    MAY_BE_ABSENT,
    Band,
    Count,
    Date,
    Flag,
    Frac,
    Names,
    NamesOrEmpty,
    NonNegative,
    Number,
    OneOf,
    PastDate,
    Positive,
    Url,
    Words,
)
from planner.model.architecture import Architecture

PRICING_TIERS = ("on_demand", "spot", "reserved_1y", "reserved_3y")
COMPUTE_FORMATS = ("bf16", "fp16", "fp8", "fp4", "int8")
ENGINE_LAYOUTS = ("tp", "pp", "dp", "ep", "adp", "layer")  # adp: attention data-parallel + EP (MoE)
# Plausible price bands: a value outside is a unit or typing error (per-token price read as per-Mtok, 1e300),
# not a price. Shipped data/gpu_prices.csv spans 0.148-14.1 $/GPU-h and data/api_prices.csv 0.025-600 $/Mtok
# (o1-pro output); the bands leave more than 10x either way.
GPU_HOUR_BAND = Band(0.01, 200.0, "shipped GPU prices span $0.15-14.1 per GPU-hour, data/gpu_prices.csv")
MTOK_BAND = Band(0.0, 10_000.0, "the dearest shipped API price is $600 per Mtok, data/api_prices.csv")
UsdPerGpuHour = Annotated[Positive, GPU_HOUR_BAND]
UsdPerMtok = Annotated[NonNegative, MTOK_BAND]


@dataclass(frozen=True)
class License:
    license_id: str
    name: str
    spdx_id: str | None
    commercial_use: Flag
    mau_limit: Count | None
    attribution_required: Flag
    naming_requirement: str | None
    acceptable_use_policy: Flag
    research_only: Flag
    osi_approved: Flag
    summary: str
    source_url: Url
    source_accessed: PastDate


@dataclass(frozen=True)
class Model:
    model_id: str
    aliases: NamesOrEmpty
    name: str
    family: str
    developer: str
    developer_country: str | None
    release_date: Date
    config_file: str
    architecture: Annotated[str, OneOf(("dense", "moe"))]
    license_id: str
    openness: str
    context_length_tokens: Count
    languages: NamesOrEmpty
    languages_count: Count | None
    native_precision: str
    published_total_params_b: Positive | None
    published_active_params_b: Positive | None
    strengths: NamesOrEmpty
    source_url: Url
    source_accessed: PastDate
    notes: str | None
    arch: Annotated[Architecture, DERIVED] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Gpu:
    gpu_id: str
    aliases: NamesOrEmpty
    name: str
    vendor: str
    generation: str
    category: str
    memory_gb: Positive
    usable_memory_gb: Positive
    memory_bandwidth_tb_s: Positive
    bf16_dense_tflops: Positive
    fp8_dense_tflops: Positive | None
    fp4_dense_tflops: Positive | None
    int8_dense_tops: Positive | None
    tdp_w: Positive | None
    interconnect: str
    interconnect_bandwidth_gb_s: Positive
    max_gpus_per_node: Count
    purchase_usd: Positive | None
    purchase_source_url: Url | None
    purchase_source_accessed: Date | None
    source_url: Url
    source_accessed: PastDate
    notes: str | None
    # (compute format, attainable fraction of the dense peak) from data/gemm_attainable.csv; set by the loader
    gemm_attainable: Annotated[tuple[tuple[str, float], ...], DERIVED] = field(default=(), repr=False,
                                                                              compare=False)
    # (compute format, attainable fraction / the reference GPU's for that format), set by the loader: what the
    # roofline multiplies the peak by (`rate_factor`)
    gemm_rate_factors: Annotated[tuple[tuple[str, float], ...], DERIVED] = field(default=(), repr=False,
                                                                                compare=False)

    def supports(self, compute_format: str) -> bool:
        """Whether the GPU's tensor units compute this format natively."""
        return self.dense_tflops_or_none(compute_format) is not None

    def dense_tflops_or_none(self, compute_format: str) -> float | None:
        return {"bf16": self.bf16_dense_tflops, "fp16": self.bf16_dense_tflops, "fp8": self.fp8_dense_tflops,
                "fp4": self.fp4_dense_tflops, "int8": self.int8_dense_tops}[compute_format]

    def attainable_frac(self, compute_format: str) -> float:
        """Share of the format's dense peak that large GEMMs reach on this GPU (data/gemm_attainable.csv; fp16
        reads bf16's row); 1 where the file has no row for the GPU and format."""
        key = "bf16" if compute_format == "fp16" else compute_format
        return next((frac for fmt, frac in self.gemm_attainable or () if fmt == key), 1.0)

    def rate_factor(self, compute_format: str) -> float:
        """What the format's dense peak is multiplied by for the roofline: this GPU's attainable fraction over the
        reference GPU's (`GEMM_REFERENCE_GPU`, whose rows the fitted efficiencies are calibrated on); 1 where either
        has no row. fp16 reads bf16's."""
        key = "bf16" if compute_format == "fp16" else compute_format
        return next((f for fmt, f in self.gemm_rate_factors or () if fmt == key), 1.0)


GEMM_ATTAINABLE_FORMATS = ("bf16", "fp8", "fp4", "int8")  # the compute formats with their own gpus.csv peak
# The GPU the fitted GEMM efficiencies (mfu_prefill_frac, mfu_decode_frac, the per-format scales) are calibrated on:
# most fit rows with compute-bound steps are H100/H200 at FP8 and BF16 (data/measured/throughput.csv). A GPU's
# measured attainable fraction enters relative to this one's, so the fit keeps its meaning on Hopper and the
# kernel measurements carry it to the other GPUs. FP4 has no Hopper peak: it is taken relative to the reference's
# FP8, the format the fit calibrates for it (no TensorRT-LLM fit row runs FP4).
GEMM_REFERENCE_GPU = "H100-SXM"
GEMM_REFERENCE_FORMAT = {"bf16": "bf16", "fp8": "fp8", "fp4": "fp8", "int8": "int8"}


@dataclass(frozen=True)
class GemmAttainable:
    """data/gemm_attainable.csv: the share of a format's dense peak (gpus.csv) that measured large GEMMs reach."""

    gpu_id: Annotated[str, KEY]
    format: Annotated[str, OneOf(GEMM_ATTAINABLE_FORMATS), KEY]
    # a kernel may beat a conservative spec-sheet peak a little (boost clocks), never by much
    attainable_frac: Annotated[float, Number(gt=0, le=1.05)]
    n_shapes: Count
    source_url: Url
    source_accessed: PastDate
    notes: str | None


PROVIDER_CLASSES = ("hyperscaler", "neocloud", "marketplace", "unknown")
PRICE_FLAGS = ("stale", "undated")

# Provider -> class for price rows that do not state one (user uploads, importers). A marketplace rents
# machines that third-party hosts own and list (vast.ai "a marketplace for GPU compute from hosts",
# https://vast.ai/faq ; RunPod Community Cloud "vetted third-party hosts", https://docs.runpod.io/pods/choose-a-pod);
# a neocloud is a GPU-first provider running its own data centres (Lambda, CoreWeave, Nebius, Crusoe,
# RunPod Secure Cloud "T3/T4 data centers", Together); hyperscalers are the general-purpose clouds.
# Accessed 2026-12-07. A provider not listed is "unknown".
PROVIDER_CLASS_BY_PROVIDER = {
    "aws": "hyperscaler", "gcp": "hyperscaler", "azure": "hyperscaler", "oci": "hyperscaler",
    "lambda": "neocloud", "coreweave": "neocloud", "nebius": "neocloud", "crusoe": "neocloud",
    "runpod": "neocloud", "runpod-secure": "neocloud", "runpod-serverless": "neocloud", "together": "neocloud",
    "fluidstack": "neocloud", "hyperstack": "neocloud", "paperspace": "neocloud", "modal": "neocloud",
    "vast": "marketplace", "runpod-community": "marketplace", "tensordock": "marketplace",
}


def provider_class_for(provider: str) -> str:
    """The class of a provider name (see PROVIDER_CLASS_BY_PROVIDER), "unknown" when not listed."""
    return PROVIDER_CLASS_BY_PROVIDER.get(provider.strip().lower(), "unknown")


@dataclass(frozen=True)
class GpuPrice:
    """One rental offer. `price_as_of` is the date the source gives for the price (defaults to
    `source_accessed` when a row omits it); `provider_class` defaults to `provider_class_for(provider)`;
    `price_flag` is "stale" (superseded by a known later price) or "undated" (the source gives no date)."""

    gpu_id: Annotated[str, KEY]
    provider: Annotated[str, KEY]
    pricing: Annotated[str, OneOf(PRICING_TIERS), KEY]
    usd_per_gpu_hour: UsdPerGpuHour
    region: Annotated[str | None, KEY]
    instance_type: Annotated[str | None, KEY]
    gpus_per_instance: Count | None
    source_url: Url
    source_accessed: PastDate
    notes: str | None
    price_as_of: Annotated[PastDate | None, MAY_BE_ABSENT] = None
    provider_class: Annotated[Annotated[str, OneOf(PROVIDER_CLASSES)] | None, MAY_BE_ABSENT] = None
    price_flag: Annotated[Annotated[str, OneOf(PRICE_FLAGS)] | None, MAY_BE_ABSENT] = None

    def __post_init__(self) -> None:
        if self.price_as_of is None:
            object.__setattr__(self, "price_as_of", self.source_accessed)
        if self.provider_class is None:
            object.__setattr__(self, "provider_class", provider_class_for(self.provider))

    @property
    def stale(self) -> bool:
        return self.price_flag == "stale"


@dataclass(frozen=True)
class ApiPrice:
    api_id: str
    provider: str
    model_name: str
    category: str
    catalog_model_id: str | None
    input_usd_per_mtok: UsdPerMtok
    output_usd_per_mtok: UsdPerMtok
    cached_input_usd_per_mtok: UsdPerMtok | None
    cache_write_usd_per_mtok: UsdPerMtok | None
    batch_input_usd_per_mtok: UsdPerMtok | None
    batch_output_usd_per_mtok: UsdPerMtok | None
    max_input_tokens: Count | None
    source_url: Url
    source_accessed: PastDate
    notes: str | None
    # the date the source gives for the price (None: source_accessed)
    price_as_of: Annotated[PastDate | None, MAY_BE_ABSENT] = None
    price_flag: Annotated[Annotated[str, OneOf(PRICE_FLAGS)] | None, MAY_BE_ABSENT] = None  # see GpuPrice

    def __post_init__(self) -> None:
        if self.price_as_of is None:
            object.__setattr__(self, "price_as_of", self.source_accessed)

    @property
    def stale(self) -> bool:
        return self.price_flag == "stale"


@dataclass(frozen=True)
class Precision:
    precision_id: str
    aliases: NamesOrEmpty
    kind: str  # float | int | gguf
    weight_bits_per_param: Positive
    compute_format: Annotated[str, OneOf(COMPUTE_FORMATS)]
    quantizes_embeddings: Flag
    quality_risk: str
    engines: Names
    source_url: Url
    source_accessed: PastDate
    notes: str | None


@dataclass(frozen=True)
class KvDtype:
    kv_dtype_id: str
    aliases: NamesOrEmpty
    bytes_per_elem: Positive
    requires_native_fp8: Flag
    engines: Names
    source_url: Url
    source_accessed: PastDate
    notes: str | None


@dataclass(frozen=True)
class EfficiencyProfile:
    """Fitted efficiency of an engine on GPUs matching `gpu_match` (a gpu_id, generation, category,
    vendor, or '*'), with the throughput range factors from its validation error."""

    profile_id: str
    engine: str
    gpu_match: str
    mbu_frac: Frac
    mfu_decode_frac: Frac
    mfu_prefill_frac: Frac
    step_overhead_ms: NonNegative
    comm_latency_us: NonNegative
    range_low_factor: Frac
    range_high_factor: Positive
    n_points: NonNegative
    fit_mdape_frac: NonNegative | None
    source_url: Url
    source_accessed: PastDate
    notes: str | None
    moe_mbu_frac: Frac | None = None  # achieved / peak bandwidth streaming routed experts (None: mbu_frac)
    comm_bw_frac: Frac | None = None  # achieved / peak interconnect bandwidth in collectives (None: 1)
    moe_expert_overhead_us: NonNegative | None = None  # per MoE layer and routed slot (top-k) per step (None: 0)
    holdout_mdape_frac: NonNegative | None = None  # median APE on the rows held out of the fit
    overhead_overlap_frac: Frac | None = None  # share of a step's GPU time hiding the step overhead (None: 0)
    layer_overhead_us: NonNegative | None = None  # GPU time per layer per step beyond the roofline (None: 0)
    # MFU multipliers for matmuls in fp8 / fp4 / int8 (16-bit float: 1), result capped at 1; None: 1
    mfu_fp8_scale: Annotated[Positive | None, MAY_BE_ABSENT] = None
    mfu_fp4_scale: Annotated[Positive | None, MAY_BE_ABSENT] = None
    mfu_int8_scale: Annotated[Positive | None, MAY_BE_ABSENT] = None
    request_overhead_ms: Annotated[NonNegative | None, MAY_BE_ABSENT] = None  # per served request before its first
    # token, outside the GPU steps (API server, tokenisation); None: 0
    comm_large_bw_frac: Annotated[Frac | None, MAY_BE_ABSENT] = None  # achieved / peak interconnect bandwidth of a
    # large collective (sourced: data/collectives.csv; None: 1)
    comm_half_us: Annotated[NonNegative | None, MAY_BE_ABSENT] = None  # per-call line-rate transfer time where a
    # byte's cost is halfway between comm_bw_frac's and comm_large_bw_frac's (None: every message at comm_bw_frac)
    eager_launch_us: Annotated[NonNegative | None, MAY_BE_ABSENT] = None  # host time per kernel a context step
    # launches without a CUDA graph (PrefillTerms.eager_launches; None: 0)


@dataclass(frozen=True)
class Engine:
    engine_id: str
    aliases: NamesOrEmpty
    name: str
    vendors: Names
    precision_kinds: Names
    memory_utilization_frac: Frac
    runtime_overhead_gb: NonNegative
    max_num_seqs: Count
    source_url: Url
    source_accessed: PastDate
    notes: str | None
    policy_source_url: Url  # where the engine's policy columns (KV reservation, layouts, ...) are documented
    max_num_batched_tokens: Count | None = None  # tokens one forward step processes (prefill chunks + decodes)
    # paged: KV grows as tokens arrive; full_sequence: prompt + full output reserved
    kv_reservation: Annotated[str, OneOf(("paged", "full_sequence"))] = "paged"
    # total: the KV budget is a fraction of the GPU; free: of the memory after weights
    kv_memory_basis: Annotated[str, OneOf(("total", "free"))] = "total"
    int8_matmul_precisions: NamesOrEmpty = ()  # precision kinds or ids whose matmuls run on int8 units
    # tp, pp, dp, ep, adp (attention data-parallel with expert parallelism); "layer" = sequential layer split
    layouts: Annotated[tuple[str, ...], Words(allowed=ENGINE_LAYOUTS)] = ("tp", "pp", "dp", "ep")
    fp8_checkpoint_kv_dtype: str | None = None  # default KV dtype for an fp8 checkpoint (None: bf16/fp16)
