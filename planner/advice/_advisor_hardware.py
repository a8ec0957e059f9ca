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
    context_tokens: int | None = None  # prompt + output of the request the check used
    ttft_s: float | None = None  # batch 1, at `context_tokens`; _high = the pessimistic end of the range
    ttft_s_high: float | None = None
    tpot_s: float | None = None
    tpot_s_high: float | None = None
    native_compute: bool | None = None  # False: the GPU lacks the weight format's compute units (dequantized)


@dataclass(frozen=True)
class SpeedContext:
    """The request the hardware check sizes: the user's context, the task's typical one, or estimate()'s default."""

    input_tokens: int
    output_tokens: int
    user_given: bool
    label: str
    source_url: str | None = None  # task_contexts.csv row (None: the user's own number or estimate()'s default)
    source_accessed: dt.date | None = None

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def speed_context(context_tokens: int | None, output_tokens: int | None, task_context: Any = None) -> SpeedContext:
    """Which request to check speed and fit at.

    A context the user gives wins (output = `output_tokens`, or estimate()'s default). Otherwise the task's
    typical request from data/task_contexts.csv (its prompt, and its output unless `output_tokens` is given),
    else estimate()'s default request shape.
    """
    if context_tokens is not None:
        out = output_tokens if output_tokens is not None else DEFAULT_OUTPUT_TOKENS
        return SpeedContext(context_tokens - out, out, True, "the context length asked for")
    if task_context is not None:
        out = output_tokens if output_tokens is not None else task_context.typical_output_tokens
        return SpeedContext(task_context.typical_input_tokens, out, False,
                            f"typical request for the task '{task_context.task_category}'",
                            task_context.source_url, task_context.source_accessed)
    out = output_tokens if output_tokens is not None else DEFAULT_OUTPUT_TOKENS
    return SpeedContext(DEFAULT_INPUT_TOKENS, out, False,
                        "estimate()'s default request (no typical context is known for this task)")


def prefer_native(options: list[tuple[Estimate, Precision]], gpu_id: str,
                  model_native_precision: str = "") -> tuple[tuple[Estimate, Precision], str]:
    """The first option (quality-first order), unless the GPU cannot compute its weight format natively and
    another option that it can compute is smaller or faster by the same estimate: then the first such one.

    Returns the choice and a note saying what was passed over and why ("" when the first option stands).
    """
    first_e, first_p = options[0]
    if first_e.native_compute:
        return options[0], ""
    for e, p in options[1:]:
        smaller = e.weights_gb < first_e.weights_gb
        faster = e.output_tokens_per_s_per_user > first_e.output_tokens_per_s_per_user
        if e.native_compute and (smaller or faster):
            why = " and ".join(w for w, ok in (
                (f"smaller ({e.weights_gb:.1f} vs {first_e.weights_gb:.1f} GB of weights, {e.max_concurrency} vs "
                 f"{first_e.max_concurrency} sequences)", smaller),
                (f"faster ({e.output_tokens_per_s_per_user:.1f} vs {first_e.output_tokens_per_s_per_user:.1f} "
                 "tokens/s per user)", faster)) if ok)
            published = (f" (the published checkpoint is {first_p.precision_id}: {p.precision_id} needs a "
                         "re-quantized one)" if first_p.precision_id == model_native_precision else "")
            return (e, p), (f"{first_p.precision_id} is not computed natively on {gpu_id} (no "
                            f"{first_p.compute_format} units; weights would be dequantized), and {p.precision_id} is "
                            f"{why}, so {p.precision_id} is chosen{published}")
    return options[0], ""


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
    context_basis: SpeedContext | None = None  # where the request length comes from

    @classmethod
    def from_constraints(cls, catalog: Catalog, c: Any, task_context: Any = None) -> HardwareCheck | None:
        """`task_context`: the task's typical request (a benchmarks_data.TaskContext), used when the
        constraints give no context length."""
        if c.gpu is None and c.memory_gb is None:
            return None
        gpu = catalog.gpu(c.gpu) if c.gpu is not None else None
        engine = catalog.engine(c.engine) if c.engine else (
            catalog.engine(_default_engine(gpu, None)) if gpu is not None else None)
        precs = [p for p in catalog.precisions.values() if engine is None or engine.engine_id in p.engines]
        kvs = [k for k in catalog.kv_dtypes.values() if engine is None or engine.engine_id in k.engines]
        basis = speed_context(c.context_tokens, c.output_tokens, task_context)
        return cls(catalog, gpu, c.num_gpus, c.memory_gb, engine, basis.input_tokens, basis.output_tokens,
                   c.min_output_tokens_per_s_per_user,
                   tuple(sorted(precs, key=lambda p: (p.weight_bits_per_param, p.precision_id))),
                   tuple(sorted(kvs, key=lambda k: (k.bytes_per_elem, k.kv_dtype_id))), basis)

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def for_model(self, model: Model) -> HardwareCheck:
        """This check with a typical (not user-given) context cut to the model's window, output kept."""
        basis = self.context_basis
        if basis is None or basis.user_given or self.context_tokens <= model.context_length_tokens:
            return self
        if model.context_length_tokens <= self.output_tokens:
            return self
        return dataclasses.replace(self, input_tokens=model.context_length_tokens - self.output_tokens)

    def context_reason(self, model: Model) -> Reason | None:
        """An info Reason saying which request length the hardware and speed check used, and why."""
        basis = self.context_basis
        if basis is None or basis.source_url is None or basis.source_accessed is None:
            return None  # the user's own context (see the context reason) or estimate()'s default (in the messages)
        cut = (f", cut to the model's {model.context_length_tokens:,}-token window"
               if self.context_tokens < basis.context_tokens else "")
        return Reason("speed", "info", f"checked at a {self.context_tokens:,}-token request "
                      f"({self.input_tokens:,} prompt + {self.output_tokens:,} output): {basis.label}{cut}",
                      "task_contexts.csv", basis.source_url, basis.source_accessed, f"{self.context_tokens:,} tokens")

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
        sized = self.for_model(model)
        fit, reasons = sized._check_memory(model) if self.gpu is None else sized._check_gpu(model)
        note = sized.context_reason(model)
        return fit, ([note] if note is not None else []) + reasons

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
        meeting: list[tuple[Estimate, Precision]] = []  # per precision, the first KV setup that fits and is fast enough
        for prec in self._quality_first(model):
            for kv in (None, self.kv_dtypes[0]):
                try:
                    e = self._run(model, prec, kv)
                except (DoesNotFitError, InvalidInputError):
                    continue
                if fastest is None or e.output_tokens_per_s_per_user > fastest[0].output_tokens_per_s_per_user:
                    fastest = (e, prec)
                if self.min_tokens_per_s is None or e.output_tokens_per_s_per_user >= self.min_tokens_per_s:
                    meeting.append((e, prec))
                    break
        if meeting:
            (e, prec), note = prefer_native(meeting, self.gpu.gpu_id, model.native_precision)
            reasons = self._pass_reasons(e, prec, where)
            if note:
                reasons.insert(1, self._reason("hardware", "info", note))
            return self._fit(e, prec, aggressive), reasons
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
                           low, high, self.context_tokens, e.ttft_s, e.ttft_s_high, e.tpot_s, e.tpot_s_high,
                           e.native_compute)

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
        weights = weight_format(prec, None, model_native_precision=model.native_precision)
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
                                       None, None, None, self.context_tokens), out
        raise AssertionError("the most aggressive setup fits, so the loop returns")  # pragma: no cover
