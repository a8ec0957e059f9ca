"""Hardware checks for the advisor: does a model fit the GPUs (or memory budget), and is it fast enough?

Wiring only: memory and speed come from `estimate()` (memory.py, performance.py, the fitted
efficiency profile) and from `kv_bytes_per_sequence` and `WeightFormat.total_bytes`; no new
formula lives here.

GPU mode: a model is excluded when it does not fit one sequence of the requested context even at
the most aggressive weight precision and most compact KV cache the engine loads (the needed vs
usable GB come from `estimate()`'s DoesNotFitError). Otherwise the least aggressive precision
(capped at the model's native one) that fits, and meets the per-user speed if one is asked, is
chosen. Speed is checked at batch 1, the best case for a single user: a model too slow there is
too slow at any concurrency.

Memory-budget mode: weights plus the KV cache of one sequence against `memory_gb`, without any
engine allowance (no GPU is named, so no speed and no runtime overhead can be estimated).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from planner import units
from planner.data.catalog import Catalog, Engine, Gpu, KvDtype, Model, Precision
from planner.errors import DoesNotFitError, InvalidInputError, UnknownNameError
from planner.model.architecture import kv_bytes_per_sequence
from planner.model.quantization import weight_format
from planner.perf.estimate import Estimate, EstimateRequest, _default_engine, estimate

_REQUEST_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EstimateRequest)}
DEFAULT_INPUT_TOKENS: int = _REQUEST_DEFAULTS["input_tokens"]  # estimate()'s default request shape
DEFAULT_OUTPUT_TOKENS: int = _REQUEST_DEFAULTS["output_tokens"]
RISKY_QUALITY = ("moderate", "high")  # precisions.csv quality_risk values worth a caution


@dataclass(frozen=True)
class Reason:
    """Why a model is in or out: a verdict on one constraint and the data source behind it."""

    constraint: str  # task | license | languages | context | jurisdiction | openness | hardware | speed
    verdict: str  # pass | fail | caution | info | evidence
    message: str
    source_file: str
    source_url: str
    source_accessed: dt.date
    tag: str = ""  # a few words for tables, e.g. "MAU > 700,000,000" or "de unverified"


@dataclass(frozen=True)
class HardwareFit:
    """The configuration the advisor picked for a model on the user's hardware."""

    mode: str  # gpu | memory
    precision: str
    kv_dtype: str
    quality_risk: str
    most_aggressive_precision: str
    weights_gb: float
    needed_gb: float | None  # memory mode: weights + one sequence of KV
    engine: str | None
    gpu_id: str | None
    num_gpus: int | None
    max_concurrency: int | None
    output_tokens_per_s_per_user: float | None  # batch 1
    output_tokens_per_s_per_user_low: float | None
    output_tokens_per_s_per_user_high: float | None


class _BytesOnly:
    """Stand-in GPU for `weight_format` when only bytes are needed: bytes per weight do not depend on
    the GPU, which `weight_format` consults only to name the compute format."""

    @staticmethod
    def supports(compute_format: str) -> bool:
        return False


def _per_user_range(e: Estimate) -> tuple[float, float]:
    """Per-user decode speed bounds from the TPOT range (tokens/s per user = 1 / TPOT)."""
    return 1.0 / e.tpot_s_high, 1.0 / e.tpot_s_low


@dataclass(frozen=True)
class HardwareCheck:
    catalog: Catalog
    gpu: Gpu | None
    num_gpus: int
    memory_gb: float | None
    engine: Engine | None
    input_tokens: int
    output_tokens: int
    min_tokens_per_s: float | None
    precisions: tuple[Precision, ...]  # most aggressive first
    kv_dtypes: tuple[KvDtype, ...]  # most compact first

    @classmethod
    def from_constraints(cls, catalog: Catalog, c: Any) -> HardwareCheck | None:
        if c.gpu is None and c.memory_gb is None:
            return None
        gpu = catalog.gpu(c.gpu) if c.gpu is not None else None
        engine = catalog.engine(c.engine) if c.engine else (
            catalog.engine(_default_engine(gpu, None)) if gpu is not None else None)
        precs = [p for p in catalog.precisions.values() if engine is None or engine.engine_id in p.engines]
        kvs = [k for k in catalog.kv_dtypes.values() if engine is None or engine.engine_id in k.engines]
        context = c.context_tokens or DEFAULT_INPUT_TOKENS + c.output_tokens
        return cls(catalog, gpu, c.num_gpus, c.memory_gb, engine, context - c.output_tokens, c.output_tokens,
                   c.min_output_tokens_per_s_per_user,
                   tuple(sorted(precs, key=lambda p: (p.weight_bits_per_param, p.precision_id))),
                   tuple(sorted(kvs, key=lambda k: (k.bytes_per_elem, k.kv_dtype_id))))

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def _quality_first(self, model: Model) -> list[Precision]:
        """Precisions from the least aggressive down, never above the model's native precision."""
        try:
            native: Precision | None = self.catalog.precision(model.native_precision)  # ids and aliases
        except UnknownNameError:
            native = None
        loadable = {p.precision_id for p in self.precisions}
        if native is not None and native.precision_id in loadable:
            cap = native.weight_bits_per_param
        else:  # the engine cannot load the native format: start from the widest it can
            cap = max(p.weight_bits_per_param for p in self.precisions)
        return sorted((p for p in self.precisions if p.weight_bits_per_param <= cap),
                      key=lambda p: (-p.weight_bits_per_param,
                                     native is None or p.precision_id != native.precision_id))

    def check(self, model: Model) -> tuple[HardwareFit | None, list[Reason]]:
        if self.gpu is None:
            return self._check_memory(model)
        return self._check_gpu(model)

    # --- GPU mode ------------------------------------------------------------------------------------------
    def _run(self, model: Model, prec: Precision, kv: KvDtype | None) -> Estimate:
        assert self.gpu is not None and self.engine is not None
        return estimate(self.catalog, EstimateRequest(
            model=model.model_id, gpu=self.gpu.gpu_id, num_gpus=self.num_gpus, precision=prec.precision_id,
            kv_dtype=kv.kv_dtype_id if kv else None, input_tokens=self.input_tokens,
            output_tokens=self.output_tokens, concurrency=1, engine=self.engine.engine_id))

    def _reason(self, constraint: str, verdict: str, message: str) -> Reason:
        assert self.gpu is not None
        return Reason(constraint, verdict, message, "gpus.csv", self.gpu.source_url, self.gpu.source_accessed)

    def _check_gpu(self, model: Model) -> tuple[HardwareFit | None, list[Reason]]:
        assert self.gpu is not None and self.engine is not None
        where = f"{self.num_gpus} x {self.gpu.gpu_id} ({self.engine.engine_id})"
        aggressive = self.precisions[0]
        try:
            self._run(model, aggressive, self.kv_dtypes[0])
        except (DoesNotFitError, InvalidInputError) as err:
            return None, [self._reason("hardware", "fail", f"does not fit {where} even at {aggressive.precision_id} "
                                                           f"weights and {self.kv_dtypes[0].kv_dtype_id} KV: {err}")]
        fastest: tuple[Estimate, Precision] | None = None
        for prec in self._quality_first(model):
            for kv in (None, self.kv_dtypes[0]):
                try:
                    e = self._run(model, prec, kv)
                except (DoesNotFitError, InvalidInputError):
                    continue
                if fastest is None or e.output_tokens_per_s_per_user > fastest[0].output_tokens_per_s_per_user:
                    fastest = (e, prec)
                if self.min_tokens_per_s is None or e.output_tokens_per_s_per_user >= self.min_tokens_per_s:
                    return self._fit(e, prec, aggressive), self._pass_reasons(e, prec, where)
        if fastest is None:
            return None, [self._reason("hardware", "fail", f"no precision up to {model.native_precision} fits "
                                                           f"{where} at {self.context_tokens:,} tokens")]
        e, prec = fastest
        low, high = _per_user_range(e)
        prof = self.catalog.efficiency_for(e.engine, self.gpu, profile_id=e.efficiency_profile)
        return None, [Reason("speed", "fail",
                             f"fastest fitting setup ({e.precision} weights, {e.kv_dtype} KV on {where}) decodes "
                             f"about {e.output_tokens_per_s_per_user:.1f} tokens/s per user at batch 1 "
                             f"(range {low:.1f}-{high:.1f}) with a {self.context_tokens:,}-token context, below the "
                             f"{self.min_tokens_per_s:g} required (profile {prof.profile_id})",
                             "efficiency.csv", prof.source_url, prof.source_accessed)]

    def _fit(self, e: Estimate, prec: Precision, aggressive: Precision) -> HardwareFit:
        low, high = _per_user_range(e)
        return HardwareFit("gpu", e.precision, e.kv_dtype, prec.quality_risk, aggressive.precision_id, e.weights_gb,
                           None, e.engine, e.gpu_id, e.num_gpus, e.max_concurrency, e.output_tokens_per_s_per_user,
                           low, high)

    def _pass_reasons(self, e: Estimate, prec: Precision, where: str) -> list[Reason]:
        assert self.gpu is not None
        out = [self._reason("hardware", "pass",
                            f"fits {where} at {e.precision} weights, {e.kv_dtype} KV: {e.weights_gb:.0f} GB of "
                            f"weights ({e.weights_gb_per_gpu:.1f} per GPU), up to {e.max_concurrency} sequences of "
                            f"{self.context_tokens:,} tokens")]
        if prec.quality_risk in RISKY_QUALITY:
            out.append(Reason("hardware", "caution", f"{prec.precision_id} carries a {prec.quality_risk} quality "
                              "risk; evaluate on your task", "precisions.csv", prec.source_url, prec.source_accessed,
                              f"{prec.precision_id}: {prec.quality_risk} quality risk"))
        prof = self.catalog.efficiency_for(e.engine, self.gpu, profile_id=e.efficiency_profile)
        low, high = _per_user_range(e)
        need = f" >= {self.min_tokens_per_s:g} required" if self.min_tokens_per_s is not None else ""
        out.append(Reason("speed", "pass" if self.min_tokens_per_s is not None else "info",
                          f"about {e.output_tokens_per_s_per_user:.1f} tokens/s per user at batch 1 "
                          f"(range {low:.1f}-{high:.1f}){need} (profile {prof.profile_id})",
                          "efficiency.csv", prof.source_url, prof.source_accessed))
        return out

    # --- memory-budget mode --------------------------------------------------------------------------------
    def _needed_gb(self, model: Model, prec: Precision, kv: KvDtype) -> tuple[float, float]:
        weights = weight_format(prec, _BytesOnly(),  # type: ignore[arg-type]
                                model_native_precision=model.native_precision)
        weights_gb = weights.total_bytes(model.arch) / units.GB
        kv_gb = kv_bytes_per_sequence(model.arch, self.context_tokens, kv.bytes_per_elem) / units.GB
        return weights_gb, weights_gb + kv_gb

    def _check_memory(self, model: Model) -> tuple[HardwareFit | None, list[Reason]]:
        assert self.memory_gb is not None
        def reason(verdict: str, message: str, prec: Precision, tag: str = "") -> Reason:
            return Reason("hardware", verdict, message + " (engine runtime overhead not counted)",
                          "precisions.csv", prec.source_url, prec.source_accessed, tag)
        aggressive, compact = self.precisions[0], self.kv_dtypes[0]
        weights_gb, need_gb = self._needed_gb(model, aggressive, compact)
        if need_gb > self.memory_gb:
            return None, [reason("fail", f"needs {need_gb:.1f} GB even at {aggressive.precision_id} weights "
                                         f"({weights_gb:.1f} GB) and {compact.kv_dtype_id} KV for one "
                                         f"{self.context_tokens:,}-token sequence; budget {self.memory_gb:g} GB",
                                 aggressive)]
        widest = next(k for k in self.kv_dtypes if k.bytes_per_elem == self.kv_dtypes[-1].bytes_per_elem)
        for prec in self._quality_first(model):
            for kv in (widest, compact):
                weights_gb, need_gb = self._needed_gb(model, prec, kv)
                if need_gb <= self.memory_gb:
                    out = [reason("pass", f"{prec.precision_id} weights ({weights_gb:.1f} GB) plus {kv.kv_dtype_id} "
                                          f"KV for one {self.context_tokens:,}-token sequence need {need_gb:.1f} GB "
                                          f"of the {self.memory_gb:g} GB budget", prec)]
                    if prec.quality_risk in RISKY_QUALITY:
                        out.append(reason("caution", f"{prec.precision_id} carries a {prec.quality_risk} quality "
                                                     "risk; evaluate on your task", prec,
                                          f"{prec.precision_id}: {prec.quality_risk} quality risk"))
                    return HardwareFit("memory", prec.precision_id, kv.kv_dtype_id, prec.quality_risk,
                                       aggressive.precision_id, weights_gb, need_gb, None, None, None, None,
                                       None, None, None), out
        raise AssertionError("the most aggressive setup fits, so the loop returns")  # pragma: no cover
