"""The typed, frozen records the catalog loader builds from data/*.csv (one dataclass per table).

Fields mirror the CSV columns (units in the names); `catalog.py` validates the files and builds
these. Kept apart from the loader so other modules can import the record types alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from planner.model.architecture import Architecture


@dataclass(frozen=True)
class License:
    license_id: str
    name: str
    spdx_id: str | None
    commercial_use: bool
    mau_limit: int | None
    attribution_required: bool
    naming_requirement: str | None
    acceptable_use_policy: bool
    research_only: bool
    osi_approved: bool
    summary: str
    source_url: str
    source_accessed: dt.date


@dataclass(frozen=True)
class Model:
    model_id: str
    aliases: tuple[str, ...]
    name: str
    family: str
    developer: str
    developer_country: str | None
    release_date: dt.date
    config_file: str
    architecture: str
    license_id: str
    openness: str
    context_length_tokens: int
    languages: tuple[str, ...]
    languages_count: int | None
    native_precision: str
    published_total_params_b: float | None
    published_active_params_b: float | None
    strengths: tuple[str, ...]
    source_url: str
    source_accessed: dt.date
    notes: str | None
    arch: Architecture = field(repr=False, compare=False)


@dataclass(frozen=True)
class Gpu:
    gpu_id: str
    aliases: tuple[str, ...]
    name: str
    vendor: str
    generation: str
    category: str
    memory_gb: float
    usable_memory_gb: float
    memory_bandwidth_tb_s: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float | None
    fp4_dense_tflops: float | None
    int8_dense_tops: float | None
    tdp_w: float | None
    interconnect: str
    interconnect_bandwidth_gb_s: float
    max_gpus_per_node: int
    purchase_usd: float | None
    purchase_source_url: str | None
    purchase_source_accessed: dt.date | None
    source_url: str
    source_accessed: dt.date
    notes: str | None

    def supports(self, compute_format: str) -> bool:
        """Whether the GPU's tensor units compute this format natively."""
        return self.dense_tflops_or_none(compute_format) is not None

    def dense_tflops_or_none(self, compute_format: str) -> float | None:
        return {"bf16": self.bf16_dense_tflops, "fp16": self.bf16_dense_tflops, "fp8": self.fp8_dense_tflops,
                "fp4": self.fp4_dense_tflops, "int8": self.int8_dense_tops}[compute_format]


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

    gpu_id: str
    provider: str
    pricing: str
    usd_per_gpu_hour: float
    region: str | None
    instance_type: str | None
    gpus_per_instance: int | None
    source_url: str
    source_accessed: dt.date
    notes: str | None
    price_as_of: dt.date | None = None
    provider_class: str | None = None
    price_flag: str | None = None

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
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None
    cache_write_usd_per_mtok: float | None
    batch_input_usd_per_mtok: float | None
    batch_output_usd_per_mtok: float | None
    max_input_tokens: int | None
    source_url: str
    source_accessed: dt.date
    notes: str | None
    price_as_of: dt.date | None = None  # the date the source gives for the price (None: source_accessed)
    price_flag: str | None = None  # "stale" | "undated" (see GpuPrice)

    def __post_init__(self) -> None:
        if self.price_as_of is None:
            object.__setattr__(self, "price_as_of", self.source_accessed)

    @property
    def stale(self) -> bool:
        return self.price_flag == "stale"


@dataclass(frozen=True)
class Precision:
    precision_id: str
    aliases: tuple[str, ...]
    kind: str  # float | int | gguf
    weight_bits_per_param: float
    compute_format: str
    quantizes_embeddings: bool
    quality_risk: str
    engines: tuple[str, ...]
    source_url: str
    source_accessed: dt.date
    notes: str | None


@dataclass(frozen=True)
class KvDtype:
    kv_dtype_id: str
    aliases: tuple[str, ...]
    bytes_per_elem: float
    requires_native_fp8: bool
    engines: tuple[str, ...]
    source_url: str
    source_accessed: dt.date
    notes: str | None


@dataclass(frozen=True)
class EfficiencyProfile:
    """Fitted efficiency of an engine on GPUs matching `gpu_match` (a gpu_id, generation, category,
    vendor, or '*'), with the throughput range factors from its validation error."""

    profile_id: str
    engine: str
    gpu_match: str
    mbu_frac: float
    mfu_decode_frac: float
    mfu_prefill_frac: float
    step_overhead_ms: float
    comm_latency_us: float
    range_low_factor: float
    range_high_factor: float
    n_points: float
    fit_mdape_frac: float | None
    source_url: str
    source_accessed: dt.date
    notes: str | None
    moe_mbu_frac: float | None = None  # achieved / peak bandwidth streaming routed experts (None: mbu_frac)
    comm_bw_frac: float | None = None  # achieved / peak interconnect bandwidth in collectives (None: 1)
    moe_expert_overhead_us: float | None = None  # per MoE layer and routed slot (top-k) per step (None: 0)
    holdout_mdape_frac: float | None = None  # median APE on the rows held out of the fit
    overhead_overlap_frac: float | None = None  # share of a step's GPU time hiding the step overhead (None: 0)
    layer_overhead_us: float | None = None  # GPU time per layer per step beyond the roofline (None: 0)


@dataclass(frozen=True)
class Engine:
    engine_id: str
    aliases: tuple[str, ...]
    name: str
    vendors: tuple[str, ...]
    precision_kinds: tuple[str, ...]
    memory_utilization_frac: float
    runtime_overhead_gb: float
    max_num_seqs: int
    source_url: str
    source_accessed: dt.date
    notes: str | None
    max_num_batched_tokens: int | None = None  # tokens one forward step processes (prefill chunks + decodes)
    kv_reservation: str = "paged"  # paged: KV grows as tokens arrive; full_sequence: prompt + full output reserved
    kv_memory_basis: str = "total"  # total: the KV budget is a fraction of the GPU; free: of the memory after weights
    int8_matmul_precisions: tuple[str, ...] = ()  # precision kinds or ids whose matmuls run on int8 units
    layouts: tuple[str, ...] = ("tp", "pp", "dp", "ep")  # tp, pp, dp, ep; "layer" = sequential layer split
    fp8_checkpoint_kv_dtype: str | None = None  # default KV dtype for an fp8 checkpoint (None: bf16/fp16)
    policy_source_url: str | None = None
