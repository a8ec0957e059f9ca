"""Load and validate the catalogs in `data/` into frozen, typed records.

Every file is checked as a whole at load (see `_csvschema`); a problem raises
`CatalogError(file, row, column, value)`. Names resolve case-insensitively through ids
and aliases; an unknown name raises `UnknownNameError` listing the closest matches.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from planner import units
from planner.data._csvschema import Col, check_unique_names, read_rows, require_not_after, require_refs
from planner.data.records import (
    PRICE_FLAGS,
    PROVIDER_CLASSES,
    ApiPrice,
    EfficiencyProfile,
    Engine,
    Gpu,
    GpuPrice,
    KvDtype,
    License,
    Model,
    Precision,
)
from planner.data.safe_io import read_json
from planner.errors import CatalogError, InvalidInputError, PlannerError, UnknownNameError, bounded_int, brief
from planner.model.architecture import architecture_from_config

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MAX_NAME_CHARS = 200  # longest catalog id or alias compared when suggesting close names (the longest is ~60)
DEFAULT_CONTEXT_TOKENS = 4096  # a user config.json without max_position_embeddings: the oldest common context

_SOURCE = {"source_url": Col("url"), "source_accessed": Col("past_date")}  # read on a day that has happened
# Plausible price bands: a value outside is a unit or typing error (per-token price read as per-Mtok, 1e300),
# not a price. Shipped data/gpu_prices.csv spans 0.148-14.1 $/GPU-h and data/api_prices.csv 0.025-600 $/Mtok
# (o1-pro output); the bands leave more than 10x either way.
GPU_HOUR_BAND = (0.01, 200.0, "shipped GPU prices span $0.15-14.1 per GPU-hour, data/gpu_prices.csv")
MTOK_BAND = (0.0, 10_000.0, "the dearest shipped API price is $600 per Mtok, data/api_prices.csv")
# Price columns added later: uploads without them still load (records default them, see records.GpuPrice).
_PRICE_DATE = {"price_as_of": Col("past_date", False, may_be_absent=True),
               "price_flag": Col("str", False, may_be_absent=True)}

MODEL_SCHEMA = {
    "model_id": Col("str"), "aliases": Col("list", False), "name": Col("str"), "family": Col("str"),
    "developer": Col("str"), "developer_country": Col("str", False), "release_date": Col("date"),
    "config_file": Col("str"), "architecture": Col("str"), "license_id": Col("str"), "openness": Col("str"),
    "context_length_tokens": Col("int+"), "languages": Col("list", False), "languages_count": Col("int+", False),
    "native_precision": Col("str"), "published_total_params_b": Col("float+", False),
    "published_active_params_b": Col("float+", False), "strengths": Col("list", False),
    **_SOURCE, "notes": Col("str", False),
}
LICENSE_SCHEMA = {
    "license_id": Col("str"), "name": Col("str"), "spdx_id": Col("str", False), "commercial_use": Col("bool"),
    "mau_limit": Col("int+", False), "attribution_required": Col("bool"), "naming_requirement": Col("str", False),
    "acceptable_use_policy": Col("bool"), "research_only": Col("bool"), "osi_approved": Col("bool"),
    "summary": Col("str"), **_SOURCE,
}
GPU_SCHEMA = {
    "gpu_id": Col("str"), "aliases": Col("list", False), "name": Col("str"), "vendor": Col("str"),
    "generation": Col("str"), "category": Col("str"), "memory_gb": Col("float+"), "usable_memory_gb": Col("float+"),
    "memory_bandwidth_tb_s": Col("float+"), "bf16_dense_tflops": Col("float+"),
    "fp8_dense_tflops": Col("float+", False), "fp4_dense_tflops": Col("float+", False),
    "int8_dense_tops": Col("float+", False), "tdp_w": Col("float+", False), "interconnect": Col("str"),
    "interconnect_bandwidth_gb_s": Col("float+"), "max_gpus_per_node": Col("int+"),
    "purchase_usd": Col("float+", False), "purchase_source_url": Col("url", False),
    "purchase_source_accessed": Col("date", False), **_SOURCE, "notes": Col("str", False),
}
GPU_PRICE_SCHEMA = {
    "gpu_id": Col("str", key=True), "provider": Col("str", key=True), "pricing": Col("str", key=True),
    "usd_per_gpu_hour": Col("float+", band=GPU_HOUR_BAND),
    "region": Col("str", False, key=True), "instance_type": Col("str", False, key=True),
    "gpus_per_instance": Col("int+", False),
    **_SOURCE, "notes": Col("str", False), **_PRICE_DATE, "provider_class": Col("str", False, may_be_absent=True),
}
API_PRICE_SCHEMA = {
    "api_id": Col("str"), "provider": Col("str"), "model_name": Col("str"), "category": Col("str"),
    "catalog_model_id": Col("str", False), "input_usd_per_mtok": Col("float0", band=MTOK_BAND),
    "output_usd_per_mtok": Col("float0", band=MTOK_BAND),
    "cached_input_usd_per_mtok": Col("float0", False, band=MTOK_BAND),
    "cache_write_usd_per_mtok": Col("float0", False, band=MTOK_BAND),
    "batch_input_usd_per_mtok": Col("float0", False, band=MTOK_BAND),
    "batch_output_usd_per_mtok": Col("float0", False, band=MTOK_BAND),
    "max_input_tokens": Col("int+", False), **_SOURCE, "notes": Col("str", False), **_PRICE_DATE,
}
PRECISION_SCHEMA = {
    "precision_id": Col("str"), "aliases": Col("list", False), "kind": Col("str"),
    "weight_bits_per_param": Col("float+"), "compute_format": Col("str"), "quantizes_embeddings": Col("bool"),
    "quality_risk": Col("str"), "engines": Col("list"), **_SOURCE, "notes": Col("str", False),
}
KV_DTYPE_SCHEMA = {
    "kv_dtype_id": Col("str"), "aliases": Col("list", False), "bytes_per_elem": Col("float+"),
    "requires_native_fp8": Col("bool"), "engines": Col("list"), **_SOURCE, "notes": Col("str", False),
}
ENGINE_SCHEMA = {
    "engine_id": Col("str"), "aliases": Col("list", False), "name": Col("str"), "vendors": Col("list"),
    "precision_kinds": Col("list"), "memory_utilization_frac": Col("frac"), "runtime_overhead_gb": Col("float0"),
    "max_num_seqs": Col("int+"), "max_num_batched_tokens": Col("int+", False),
    "kv_reservation": Col("str"), "kv_memory_basis": Col("str"), "int8_matmul_precisions": Col("list", False),
    "layouts": Col("list"), "fp8_checkpoint_kv_dtype": Col("str", False), "policy_source_url": Col("url"),
    **_SOURCE, "notes": Col("str", False),
}
ENGINE_CHOICES = {"kv_reservation": {"paged", "full_sequence"}, "kv_memory_basis": {"total", "free"}}
ENGINE_LAYOUTS = {"tp", "pp", "dp", "ep", "layer"}

EFFICIENCY_SCHEMA = {
    "profile_id": Col("str"), "engine": Col("str"), "gpu_match": Col("str"), "mbu_frac": Col("frac"),
    "moe_mbu_frac": Col("frac", False), "mfu_decode_frac": Col("frac"), "mfu_prefill_frac": Col("frac"),
    "comm_bw_frac": Col("frac", False), "step_overhead_ms": Col("float0"), "comm_latency_us": Col("float0"),
    "moe_expert_overhead_us": Col("float0", False), "overhead_overlap_frac": Col("frac", False),
    "layer_overhead_us": Col("float0", False),
    "range_low_factor": Col("frac"), "range_high_factor": Col("float+"), "n_points": Col("float0"),
    "fit_mdape_frac": Col("float0", False), "holdout_mdape_frac": Col("float0", False), **_SOURCE,
    "notes": Col("str", False),
}

PRICING_TIERS = ("on_demand", "spot", "reserved_1y", "reserved_3y")
COMPUTE_FORMATS = ("bf16", "fp16", "fp8", "fp4", "int8")


def _record(cls: type, row: dict[str, Any], **extra: Any) -> Any:
    fields = {k: v for k, v in row.items() if not k.startswith("_")}
    fields.update(extra)
    return cls(**fields)


def _closest(name: str, names: Iterable[str], what: str) -> UnknownNameError:
    pool = sorted(set(names))
    # difflib is quadratic in the name's length: compare only a name-sized prefix of a huge input
    close = difflib.get_close_matches(name.lower()[:MAX_NAME_CHARS], pool, n=5, cutoff=0.5)
    if not close:
        close = [n for n in pool if name.lower()[:3] in n][:5]
    hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(pool[:12])}..."
    return UnknownNameError(f"unknown {what} {brief(name)}{hint}")


def _lookup(table: dict[str, Any], names: dict[str, str], name: str, what: str) -> Any:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{what} name must be a non-empty string, got {brief(name)}")
    key = names.get(name.strip().lower())
    if key is None:
        raise _closest(name.strip(), names.keys(), what)
    return table[key]


@dataclass(frozen=True)
class Catalog:
    """Every validated data table, with name resolution."""

    models: dict[str, Model]
    licenses: dict[str, License]
    gpus: dict[str, Gpu]
    gpu_prices: tuple[GpuPrice, ...]
    api_prices: dict[str, ApiPrice]
    precisions: dict[str, Precision]
    kv_dtypes: dict[str, KvDtype]
    engines: dict[str, Engine]
    efficiency: tuple[EfficiencyProfile, ...]
    names: dict[str, dict[str, str]] = field(repr=False, compare=False)

    @property
    def model_ids(self) -> list[str]:
        return list(self.models)

    @property
    def gpu_ids(self) -> list[str]:
        return list(self.gpus)

    def model(self, name: str) -> Model:
        return _lookup(self.models, self.names["model"], name, "model")

    def gpu(self, name: str) -> Gpu:
        return _lookup(self.gpus, self.names["gpu"], name, "GPU")

    def precision(self, name: str) -> Precision:
        return _lookup(self.precisions, self.names["precision"], name, "precision")

    def kv_dtype(self, name: str) -> KvDtype:
        return _lookup(self.kv_dtypes, self.names["kv_dtype"], name, "KV cache dtype")

    def engine(self, name: str) -> Engine:
        return _lookup(self.engines, self.names["engine"], name, "engine")

    def api_price(self, name: str) -> ApiPrice:
        return _lookup(self.api_prices, self.names["api"], name, "API")

    def license(self, license_id: str) -> License:
        return _lookup(self.licenses, {k.lower(): k for k in self.licenses}, license_id, "license")

    def efficiency_for(self, engine_id: str, gpu: Gpu, *, profile_id: str | None = None) -> EfficiencyProfile:
        """The most specific efficiency profile for an engine on a GPU (gpu_id > generation > category >
        vendor > '*'), or the named profile."""
        if profile_id is not None:
            for prof in self.efficiency:
                if prof.profile_id.lower() == profile_id.lower():
                    return prof
            raise _closest(profile_id, [p.profile_id.lower() for p in self.efficiency], "efficiency profile")
        vendor = gpu.vendor.lower()
        # Fitted classes are per vendor first (calibration.hardware_class): the consumer/workstation
        # profiles were fitted on NVIDIA cards, so other vendors' cards fall to their vendor's profile or '*'.
        by_category = [gpu.category.lower()] if vendor == "nvidia" else []
        keys = [gpu.gpu_id.lower(), gpu.generation.lower(), *by_category, vendor, "*"]
        mine = [p for p in self.efficiency if p.engine == engine_id]
        for key in keys:
            for prof in mine:
                if prof.gpu_match.lower() == key:
                    return prof
        raise InvalidInputError(f"no efficiency profile for engine {engine_id} on {gpu.gpu_id}; "
                                f"add one to data/efficiency.csv or run `planner calibrate`")

    def with_efficiency(self, profiles: Iterable[EfficiencyProfile]) -> Catalog:
        """A copy with extra (user-calibrated) efficiency profiles, which take precedence."""
        return replace(self, efficiency=tuple(profiles) + self.efficiency)

    def prices_for(self, gpu_id: str, pricing: str | None = None) -> list[GpuPrice]:
        return [p for p in self.gpu_prices if p.gpu_id == gpu_id and (pricing is None or p.pricing == pricing)]

    def with_gpu_prices(self, prices: Iterable[GpuPrice]) -> Catalog:
        """A copy whose GPU price table is replaced (the app's edited or uploaded prices)."""
        return replace(self, gpu_prices=tuple(prices))

    def with_api_prices(self, prices: Iterable[ApiPrice]) -> Catalog:
        table = {p.api_id: p for p in prices}
        names = dict(self.names)
        names["api"] = {k.lower(): k for k in table}
        return replace(self, api_prices=table, names=names)


def load_config(path: str | Path) -> dict[str, Any]:
    """A config.json read through the bounded JSON reader (safe_io.read_json); InvalidInputError naming the file.

    Refused: unreadable or special files, over 16 MiB, not UTF-8, NUL bytes, duplicate keys, 1e400,
    nesting deeper than 64 levels, and a top level that is not an object. NaN/Infinity literals are
    read (real configs carry them in fields the planner does not use); size fields are then checked
    by `planner.model.config_values`.
    """
    data = read_json(path, what="config.json", allow_nonfinite=True)  # sizes are checked finite later
    if not isinstance(data, dict):
        raise InvalidInputError(f"config.json {brief(str(path))}: must hold a JSON object, "
                                f"got a {type(data).__name__}")
    return data


def model_from_config_file(path: str | Path) -> Model:
    """A catalog-less Model for a user's own config.json (license and metadata unknown)."""
    p = Path(path)
    cfg = load_config(p)
    try:
        arch = architecture_from_config(cfg)
    except PlannerError as err:
        raise InvalidInputError(f"{brief(str(p))}: {err}") from None
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    max_ctx = text.get("max_position_embeddings") or cfg.get("max_position_embeddings")
    notes = "user-supplied config.json"
    if max_ctx is None:
        context = DEFAULT_CONTEXT_TOKENS
        notes += f"; no max_position_embeddings, context assumed {DEFAULT_CONTEXT_TOKENS:,} tokens"
    else:
        context = bounded_int("config.json field 'max_position_embeddings'", max_ctx, 1, 1_000_000_000)
    return Model(
        model_id=str(p), aliases=(), name=p.stem, family="user config", developer="unknown", developer_country=None,
        release_date=dt.date.today(), config_file=str(p), architecture="moe" if arch.is_moe else "dense",
        license_id="unverified", openness="open-weight",
        context_length_tokens=context,
        languages=(), languages_count=None, native_precision="bf16", published_total_params_b=None,
        published_active_params_b=None, strengths=(), source_url="https://huggingface.co/",
        source_accessed=dt.date.today(), notes=notes, arch=arch,
    )


def _load_models(data_dir: Path, licenses: dict[str, License]) -> tuple[dict[str, Model], dict[str, str]]:
    rows = read_rows(data_dir / "models.csv", MODEL_SCHEMA, id_column="model_id")
    names = check_unique_names("models.csv", rows, "model_id", "aliases")
    require_refs("models.csv", rows, "license_id", lambda v: v in licenses, "license_id (see licenses.csv)")
    models = {}
    for row in rows:
        path = data_dir / "model_configs" / row["config_file"]
        if not path.is_file():
            raise CatalogError("models.csv", row["_row"], "config_file", row["config_file"],
                               "no such file in data/model_configs")
        try:
            arch = architecture_from_config(load_config(path))
        except PlannerError as err:
            raise CatalogError("models.csv", row["_row"], "config_file", row["config_file"], str(err)) from None
        if row["architecture"] not in ("dense", "moe"):
            raise CatalogError("models.csv", row["_row"], "architecture", row["architecture"],
                               "must be dense or moe")
        if (row["architecture"] == "moe") != arch.is_moe:
            raise CatalogError("models.csv", row["_row"], "architecture", row["architecture"],
                               "disagrees with the config's expert layout")
        models[row["model_id"]] = _record(Model, row, arch=arch)
    return models, names


def _check_choice(label: str, rows: list[dict[str, Any]], column: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    require_refs(label, rows, column, lambda v: v in allowed, f"value (allowed: {', '.join(allowed)})")


def load_catalog(data_dir: str | Path = DATA_DIR) -> Catalog:
    """Read and validate every catalog under `data_dir`."""
    d = Path(data_dir)
    lic_rows = read_rows(d / "licenses.csv", LICENSE_SCHEMA, id_column="license_id")
    licenses = {r["license_id"]: _record(License, r) for r in lic_rows}
    models, model_names = _load_models(d, licenses)
    gpu_rows = read_rows(d / "gpus.csv", GPU_SCHEMA, id_column="gpu_id")
    gpu_names = check_unique_names("gpus.csv", gpu_rows, "gpu_id", "aliases")
    for row in gpu_rows:
        # Vendors' "80 GB" HBM is 80 GiB; what nvidia-smi / rocm-smi report (usable_memory_gb, decimal GB)
        # may exceed the label in decimal GB but never the label read as GiB.
        if row["usable_memory_gb"] > row["memory_gb"] * units.GIB / units.GB:
            raise CatalogError("gpus.csv", row["_row"], "usable_memory_gb", row["usable_memory_gb"],
                               "exceeds memory_gb (read as GiB)")
    gpus = {r["gpu_id"]: _record(Gpu, r) for r in gpu_rows}
    price_rows = read_rows(d / "gpu_prices.csv", GPU_PRICE_SCHEMA)
    require_refs("gpu_prices.csv", price_rows, "gpu_id", lambda v: v in gpus, "gpu_id (see gpus.csv)")
    _check_choice("gpu_prices.csv", price_rows, "pricing", PRICING_TIERS)
    _check_choice("gpu_prices.csv", price_rows, "provider_class", PROVIDER_CLASSES)
    api_rows = read_rows(d / "api_prices.csv", API_PRICE_SCHEMA, id_column="api_id")
    for label, rows in (("gpu_prices.csv", price_rows), ("api_prices.csv", api_rows)):
        _check_choice(label, rows, "price_flag", PRICE_FLAGS)
        require_not_after(label, rows, "price_as_of", "source_accessed")
    prec_rows = read_rows(d / "precisions.csv", PRECISION_SCHEMA, id_column="precision_id")
    _check_choice("precisions.csv", prec_rows, "compute_format", COMPUTE_FORMATS)
    kv_rows = read_rows(d / "kv_dtypes.csv", KV_DTYPE_SCHEMA, id_column="kv_dtype_id")
    eng_rows = read_rows(d / "engines.csv", ENGINE_SCHEMA, id_column="engine_id")
    for column, allowed in ENGINE_CHOICES.items():
        _check_choice("engines.csv", eng_rows, column, allowed)
    require_refs("engines.csv", eng_rows, "layouts", lambda v: set(v) <= ENGINE_LAYOUTS,
                 f"layout (allowed: {', '.join(sorted(ENGINE_LAYOUTS))})")
    require_refs("engines.csv", eng_rows, "fp8_checkpoint_kv_dtype", lambda v: v in {r["kv_dtype_id"] for r in kv_rows},
                 "kv dtype (see kv_dtypes.csv)")
    eff_rows = read_rows(d / "efficiency.csv", EFFICIENCY_SCHEMA, id_column="profile_id")
    require_refs("efficiency.csv", eff_rows, "engine", lambda v: v in {r["engine_id"] for r in eng_rows},
                 "engine (see engines.csv)")
    return Catalog(
        models=models, licenses=licenses, gpus=gpus,
        gpu_prices=tuple(_record(GpuPrice, r) for r in price_rows),
        api_prices={r["api_id"]: _record(ApiPrice, r) for r in api_rows},
        precisions={r["precision_id"]: _record(Precision, r) for r in prec_rows},
        kv_dtypes={r["kv_dtype_id"]: _record(KvDtype, r) for r in kv_rows},
        engines={r["engine_id"]: _record(Engine, r) for r in eng_rows},
        efficiency=tuple(_record(EfficiencyProfile, r) for r in eff_rows),
        names={
            "model": model_names, "gpu": gpu_names,
            "precision": check_unique_names("precisions.csv", prec_rows, "precision_id", "aliases"),
            "kv_dtype": check_unique_names("kv_dtypes.csv", kv_rows, "kv_dtype_id", "aliases"),
            "engine": check_unique_names("engines.csv", eng_rows, "engine_id", "aliases"),
            "api": check_unique_names("api_prices.csv", api_rows, "api_id", None),
        },
    )
