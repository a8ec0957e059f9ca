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
from planner.data._csvschema import Table, read_records
from planner.data.records import (
    GEMM_REFERENCE_FORMAT,
    GEMM_REFERENCE_GPU,
    ApiPrice,
    EfficiencyProfile,
    Engine,
    GemmAttainable,
    Gpu,
    GpuPrice,
    KvDtype,
    License,
    Model,
    Precision,
)
from planner.data.safe_io import read_json
from planner.errors import InvalidInputError, PlannerError, UnknownNameError, bounded_int, brief
from planner.model.architecture import architecture_from_config

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
MAX_NAME_CHARS = 200  # longest catalog id or alias compared when suggesting close names (the longest is ~60)
DEFAULT_CONTEXT_TOKENS = 4096  # a user config.json without max_position_embeddings: the oldest common context


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
    user_efficiency: tuple[EfficiencyProfile, ...] = field(default=(), repr=False)  # named lookup only

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

    def named_profile(self, profile_id: str) -> EfficiencyProfile:
        """The efficiency profile called `profile_id` (the catalog's, then the user's calibrated ones handed in
        with `with_user_profiles`); UnknownNameError listing the closest names."""
        for prof in (*self.efficiency, *self.user_efficiency):
            if prof.profile_id.lower() == profile_id.lower():
                return prof
        raise _closest(profile_id, [p.profile_id.lower() for p in (*self.efficiency, *self.user_efficiency)],
                       "efficiency profile")

    @staticmethod
    def _gpu_keys(gpu: Gpu) -> list[str]:
        """What a profile's gpu_match may name for `gpu`, most specific first: gpu_id > generation > category >
        vendor > '*'. Fitted classes are per vendor first (calibration.hardware_class): the consumer/workstation
        profiles were fitted on NVIDIA cards, so other vendors' cards fall to their vendor's profile or '*'."""
        by_category = [gpu.category.lower()] if gpu.vendor.lower() == "nvidia" else []
        return [gpu.gpu_id.lower(), gpu.generation.lower(), *by_category, gpu.vendor.lower(), "*"]

    def profile_problem(self, prof: EfficiencyProfile, engine_id: str, gpu: Gpu) -> str | None:
        """Why a named profile does not describe `engine_id` on `gpu` (None: it does): a profile is fitted for
        one engine and the GPUs its gpu_match names, and applying it elsewhere would be silently wrong."""
        if prof.engine != engine_id:
            return f"efficiency profile {prof.profile_id} was calibrated for {prof.engine}, not {engine_id}"
        if prof.gpu_match.lower() not in self._gpu_keys(gpu):
            return (f"efficiency profile {prof.profile_id} was calibrated on {prof.gpu_match} GPUs and does not "
                    f"describe {gpu.gpu_id}")
        return None

    def efficiency_for(self, engine_id: str, gpu: Gpu, *, profile_id: str | None = None) -> EfficiencyProfile:
        """The most specific efficiency profile for an engine on a GPU (see `_gpu_keys`), or the named profile,
        which must describe that engine and GPU (InvalidInputError saying why not)."""
        if profile_id is not None:
            prof = self.named_profile(profile_id)
            problem = self.profile_problem(prof, engine_id, gpu)
            if problem:
                raise InvalidInputError(problem)
            return prof
        mine = [p for p in self.efficiency if p.engine == engine_id]
        for key in self._gpu_keys(gpu):
            for prof in mine:
                if prof.gpu_match.lower() == key:
                    return prof
        raise InvalidInputError(f"no efficiency profile for engine {engine_id} on {gpu.gpu_id}; "
                                f"add one to data/efficiency.csv or run `planner calibrate`")

    def with_efficiency(self, profiles: Iterable[EfficiencyProfile]) -> Catalog:
        """A copy with extra efficiency profiles, which take precedence in the default choice too (the
        calibration's refits); the user's own profiles go in with `with_user_profiles`."""
        return replace(self, efficiency=tuple(profiles) + self.efficiency)

    def with_user_profiles(self, profiles: Iterable[EfficiencyProfile]) -> Catalog:
        """A copy that also knows the user's calibrated profiles (`planner calibrate`), used only where a
        profile is named (--profile, the scenario's `profile`), never picked by default."""
        return replace(self, user_efficiency=tuple(profiles))

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
    table = read_records(data_dir / "models.csv", Model, id_column="model_id")
    names = table.names("model_id", "aliases")
    table.require("license_id", lambda v: v in licenses, "license_id (see licenses.csv)")
    models = {}
    for row, model in table.numbered():
        path = data_dir / "model_configs" / model.config_file
        if not path.is_file():
            raise table.error(row, "config_file", model.config_file, "no such file in data/model_configs")
        try:
            arch = architecture_from_config(load_config(path))
        except PlannerError as err:
            raise table.error(row, "config_file", model.config_file, str(err)) from None
        if (model.architecture == "moe") != arch.is_moe:
            raise table.error(row, "architecture", model.architecture, "disagrees with the config's expert layout")
        models[model.model_id] = replace(model, arch=arch)
    return models, names


def _check_gpus(table: Table[Gpu]) -> None:
    for row, gpu in table.numbered():
        # Vendors' "80 GB" HBM is 80 GiB; what nvidia-smi / rocm-smi report (usable_memory_gb, decimal GB)
        # may exceed the label in decimal GB but never the label read as GiB.
        if gpu.usable_memory_gb > gpu.memory_gb * units.GIB / units.GB:
            raise table.error(row, "usable_memory_gb", gpu.usable_memory_gb, "exceeds memory_gb (read as GiB)")


def _with_gemm_attainable(d: Path, gpus: dict[str, Gpu]) -> dict[str, Gpu]:
    """The GPUs with their attainable GEMM fractions (data/gemm_attainable.csv; a missing file: none)."""
    path = d / "gemm_attainable.csv"
    if not path.exists():
        return {k: replace(g, gemm_attainable=()) for k, g in gpus.items()}
    table = read_records(path, GemmAttainable)
    table.require("gpu_id", lambda v: v in gpus, "gpu_id (see gpus.csv)")
    by_gpu: dict[str, list[tuple[str, float]]] = {}  # (gpu_id, format) is the row key: read_records refused repeats
    for row, rec in table.numbered():
        if not gpus[rec.gpu_id].supports(rec.format):
            raise table.error(row, "format", rec.format, f"{rec.gpu_id} has no {rec.format} peak in gpus.csv")
        by_gpu.setdefault(rec.gpu_id, []).append((rec.format, rec.attainable_frac))
    ref = dict(by_gpu.get(GEMM_REFERENCE_GPU, ()))
    factors = {k: tuple((fmt, frac / ref[GEMM_REFERENCE_FORMAT[fmt]]) for fmt, frac in rows
                        if GEMM_REFERENCE_FORMAT[fmt] in ref) for k, rows in by_gpu.items()}
    return {k: replace(g, gemm_attainable=tuple(by_gpu.get(k, ())), gemm_rate_factors=factors.get(k, ()))
            for k, g in gpus.items()}


def load_catalog(data_dir: str | Path = DATA_DIR) -> Catalog:
    """Read and validate every catalog under `data_dir`.

    Each file is checked against its record's declaration (records.py) by `read_records`; the checks
    across tables (references, a model's config file, GPU memory) follow here.
    """
    d = Path(data_dir)
    licenses = read_records(d / "licenses.csv", License, id_column="license_id").by("license_id")
    models, model_names = _load_models(d, licenses)
    gpu_table = read_records(d / "gpus.csv", Gpu, id_column="gpu_id")
    gpu_names = gpu_table.names("gpu_id", "aliases")
    _check_gpus(gpu_table)
    gpus = _with_gemm_attainable(d, gpu_table.by("gpu_id"))
    prices = read_records(d / "gpu_prices.csv", GpuPrice)
    prices.require("gpu_id", lambda v: v in gpus, "gpu_id (see gpus.csv)")
    api = read_records(d / "api_prices.csv", ApiPrice, id_column="api_id")
    for table in (prices, api):
        table.require_not_after("price_as_of", "source_accessed")
    precisions = read_records(d / "precisions.csv", Precision, id_column="precision_id")
    kv_dtypes = read_records(d / "kv_dtypes.csv", KvDtype, id_column="kv_dtype_id")
    engines = read_records(d / "engines.csv", Engine, id_column="engine_id")
    kv_ids = {k.kv_dtype_id for k in kv_dtypes}
    engines.require("fp8_checkpoint_kv_dtype", lambda v: v in kv_ids, "kv dtype (see kv_dtypes.csv)")
    efficiency = read_records(d / "efficiency.csv", EfficiencyProfile, id_column="profile_id")
    engine_ids = {e.engine_id for e in engines}
    efficiency.require("engine", lambda v: v in engine_ids, "engine (see engines.csv)")
    return Catalog(
        models=models, licenses=licenses, gpus=gpus, gpu_prices=prices.records,
        api_prices=api.by("api_id"), precisions=precisions.by("precision_id"), kv_dtypes=kv_dtypes.by("kv_dtype_id"),
        engines=engines.by("engine_id"), efficiency=efficiency.records,
        names={
            "model": model_names, "gpu": gpu_names,
            "precision": precisions.names("precision_id", "aliases"),
            "kv_dtype": kv_dtypes.names("kv_dtype_id", "aliases"),
            "engine": engines.names("engine_id", "aliases"),
            "api": api.names("api_id"),
        },
    )
