"""Predict measured throughput and latency rows, and summarise the error.

A measured row (data/measured/*.csv, or a user's CSV of the same schema) names a model,
GPU, precision, engine, parallelism, workload (input/output tokens, scenario, concurrency
or request rate) and one metric. `model_row` resolves it through the catalog and turns it
into roofline terms (`RowModel`); `RowModel.predict` applies an efficiency profile. A row
that names something the catalog cannot express (a GPU it lacks, an engine that cannot
run that precision) becomes an `Unexpressible` with the reason, never a silent drop.

Scenarios (how the measurement was run) map onto the performance model as follows:
  offline       engine-chosen batch: steady state at the KV capacity (capped by max batch, and by the
                run's `num_requests` where stated: all of them queued at once)
  static_batch  `concurrency` prompts started together: their prompts prefilled in the engine's
                per-step token budget, then output_tokens decode steps at that batch; TTFT is
                the mean wait in that burst (if the batch exceeds capacity: a train of waves of
                the capacity, each request waiting for the waves before it, `closed_loop`)
  serving       closed loop at `concurrency`: its first c requests start together (a wave); with fixed
                lengths the later waves return in the first one's prefill groups, with variable lengths
                the loop settles into the steady state (queueing beyond capacity, Little's law); the
                run's mean weighs the first wave by c / N requests (`closed_loop`); or an open-loop
                `request_rate_per_s` (concurrency from the fixed point c = rate x latency)
  batch1        a single stream: llama-bench pp/tg, or first-token latency
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from planner import units
from planner.data.catalog import Catalog
from planner.errors import InvalidInputError, PlannerError
from planner.fit.measured import (  # noqa: F401  (re-exported: callers import them from here)
    HOLDOUT_FRAC,
    LENGTHS,
    MEASURED_DIR,
    MEASURED_FILE,
    METRIC_GROUPS,
    METRICS,
    RECENT_FROM,
    SCENARIOS,
    SPLITS,
    MeasuredPoint,
    per_instance,
    read_measured,
    read_points,
    since,
    source_key,
    source_split,
)
from planner.perf.closed_loop import (
    admission_wait_s,
    closed_loop_mean_s,
    first_wave_frac,
    later_wave_tpot_s,
    later_wave_ttft_s,
    wave_train_waits,
)
from planner.perf.estimate import (
    EstimateRequest,
    ReplicaSetup,
    auto_layout,
    decode_terms_of,
    efficiency_of,
    hardware_of,
    max_running_sequences,
    prepare,
    terms_of,
)
from planner.perf.evaluator import Layout, gemm_format_of
from planner.perf.performance import Efficiency, PrefillTerms, StepTerms, prefill_steps
from planner.perf.serving import (
    PointTerms,
    arrival_concurrency,
    chunk_step_tokens,
    eager_launches,
    prefill_graph_max_tokens,
    queued_ttft_s,
    wave_tpot_s,
    wave_ttft_s,
)


@dataclass(frozen=True)
class Unexpressible:
    """A measured row the planner cannot model, and why."""

    point: MeasuredPoint
    reason: str


# What a row's value is, given the modelled quantities (codes of RowTerms.kind).
KIND_STEADY_TPUT, KIND_STEADY_TTFT, KIND_STEADY_TPOT = 0, 1, 2
KIND_STATIC_TPUT, KIND_STATIC_TTFT, KIND_STATIC_TPOT = 3, 4, 5
KIND_PREFILL, KIND_DECODE1, KIND_TTFT1 = 6, 7, 8
_STEADY_KIND = {"output_tokens_per_s": KIND_STEADY_TPUT, "ttft_ms": KIND_STEADY_TTFT, "tpot_ms": KIND_STEADY_TPOT}
_STATIC_KIND = {"output_tokens_per_s": KIND_STATIC_TPUT, "ttft_ms": KIND_STATIC_TTFT, "tpot_ms": KIND_STATIC_TPOT}
_BATCH1_KIND = {"prefill_tokens_per_s": KIND_PREFILL, "batch1_decode_tokens_per_s": KIND_DECODE1,
                "ttft_ms": KIND_TTFT1, "tpot_ms": KIND_STEADY_TPOT}


@dataclass(frozen=True)
class RowTerms:
    """Roofline terms of N measured rows (arrays of length N), and what each row measured.

    `predict` applies efficiencies (scalars, or arrays of length N: one profile per row) and
    returns the N predicted values. Validation, fitting and calibration all go through it.
    """

    kind: np.ndarray
    running: np.ndarray  # sequences in flight
    offered: np.ndarray  # closed-loop client concurrency (queueing beyond `running`), else = running
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    step: StepTerms  # steady state at `running` (batch-1 rows: concurrency 1)
    prefill: PrefillTerms  # one prompt
    static_step: StepTerms  # decode-only step of a static batch or wave (= step for other rows)
    static_prefill: PrefillTerms  # its prompts prefilled together, `steps` budget-sized steps (= prefill otherwise)
    served: np.ndarray | None = None  # 1 where requests went through an API server (serving rows): their TTFT adds
    # the efficiency's per-request overhead (None: none of them)
    first_frac: np.ndarray | None = None  # share of the run's requests in its first synchronised wave
    # (`closed_loop.first_wave_frac`; None: 1 for static kinds, 0 for steady ones)
    waits: np.ndarray | None = None  # whole waves a static batch beyond the KV capacity waits on average
    # (`closed_loop.wave_train_waits`; None: 0)
    admission: np.ndarray | None = None  # (rows, 3): the server's recv interval, batch-wait iterations and batch-wait
    # tokens (`closed_loop.admission_wait_s`, paid by the requests that arrive while a batch runs; None: none)

    def predict(self, eff: Efficiency) -> Any:
        """Predicted values of the rows under `eff` (scalar fields, or arrays with one value per row)."""
        first = _first_frac(self)
        tpot = self.step.total_s(eff)
        prefill = self.prefill.total_s(eff)
        steady_ttft = queued_ttft_s(ttft_s=prefill + tpot, tpot_s=tpot, output_tokens=self.output_tokens,
                                    offered_concurrency=self.offered, running_concurrency=self.running)
        s_tpot = self.static_step.total_s(eff)
        s_prefill = self.static_prefill.total_s(eff)
        s_total = s_prefill + self.output_tokens * s_tpot  # one wave, first prompt in to last token out
        burst = dict(burst_prefill_s=s_prefill, burst_steps=self.static_prefill.steps)
        wave_ttft = wave_ttft_s(**burst)
        held = _admission_wait(self, tpot=tpot, steady_ttft=steady_ttft)
        ttft = closed_loop_mean_s(first_wave_s=wave_ttft, later_s=steady_ttft + held, first_frac=first)
        s_ttft = closed_loop_mean_s(first_wave_s=wave_ttft, later_s=later_wave_ttft_s(**burst) + held,
                                    first_frac=first)
        if self.waits is not None:
            s_ttft = s_ttft + self.waits * s_total
        api_s = 0.0 if self.served is None else self.served * eff.request_overhead_s
        ttft, s_ttft = ttft + api_s, s_ttft + api_s
        wave_tpot = wave_tpot_s(decode_step_s=s_tpot, output_tokens=self.output_tokens, **burst)
        later_tpot = later_wave_tpot_s(decode_step_s=s_tpot, output_tokens=self.output_tokens, **burst)
        s_tpot_mean = closed_loop_mean_s(first_wave_s=wave_tpot, later_s=later_tpot, first_frac=first)
        tpot_mean = closed_loop_mean_s(first_wave_s=wave_tpot, later_s=tpot, first_frac=first)
        choices = [self.running / tpot, ttft * units.MS_PER_S, tpot_mean * units.MS_PER_S,
                   self.running * self.output_tokens / s_total, s_ttft * units.MS_PER_S,
                   s_tpot_mean * units.MS_PER_S, self.input_tokens / prefill, 1.0 / tpot,
                   (prefill + api_s) * units.MS_PER_S]
        return np.choose(self.kind, [np.broadcast_to(c, self.kind.shape) for c in choices])


_STATIC_KINDS = (KIND_STATIC_TPUT, KIND_STATIC_TTFT, KIND_STATIC_TPOT)


def _admission_wait(r: RowTerms, *, tpot: Any, steady_ttft: Any) -> Any:
    """Admission hold of the requests that arrive while a batch runs (0 where the terms carry no knobs): the running
    batch's step is the steady TPOT, requests arrive at running / (TTFT + (output - 1) x TPOT) per second."""
    if r.admission is None:
        return 0.0
    knobs = np.asarray(r.admission, dtype=float).reshape(-1, 3)
    rate = r.running / (steady_ttft + np.maximum(r.output_tokens - 1.0, 0.0) * tpot)
    return admission_wait_s(step_s=tpot, input_tokens=r.input_tokens, arrival_rate_per_s=rate,
                            recv_interval=knobs[:, 0], wait_iters=knobs[:, 1], wait_tokens=knobs[:, 2])


def _first_frac(r: RowTerms) -> np.ndarray:
    """Each row's first-wave share (the kind's default where the terms carry none: static 1, steady 0)."""
    if r.first_frac is not None:
        return np.asarray(r.first_frac, dtype=float)
    return np.isin(r.kind, _STATIC_KINDS).astype(float)


def _cat(items: list[Any], cls: type) -> Any:
    return cls(**{f: np.concatenate([np.atleast_1d(np.asarray(getattr(i, f), dtype=float)) for i in items])
                  for f in cls.__dataclass_fields__})


def stack_terms(rows: list[RowTerms]) -> RowTerms:
    """One RowTerms holding all rows (for a single vectorised prediction)."""
    if not rows:
        raise InvalidInputError("no rows to stack")
    return RowTerms(kind=np.concatenate([r.kind for r in rows]), running=np.concatenate([r.running for r in rows]),
                    offered=np.concatenate([r.offered for r in rows]),
                    input_tokens=np.concatenate([r.input_tokens for r in rows]),
                    output_tokens=np.concatenate([r.output_tokens for r in rows]),
                    step=_cat([r.step for r in rows], StepTerms), prefill=_cat([r.prefill for r in rows], PrefillTerms),
                    static_step=_cat([r.static_step for r in rows], StepTerms),
                    static_prefill=_cat([r.static_prefill for r in rows], PrefillTerms),
                    served=np.concatenate([_served(r) for r in rows]),
                    first_frac=np.concatenate([_first_frac(r) for r in rows]),
                    waits=np.concatenate([np.zeros(r.kind.shape) if r.waits is None else r.waits for r in rows]),
                    admission=np.concatenate([np.zeros(r.kind.shape + (3,)) if r.admission is None
                                              else np.asarray(r.admission, dtype=float).reshape(-1, 3)
                                              for r in rows]))


def _served(r: RowTerms) -> np.ndarray:
    return np.zeros(r.kind.shape) if r.served is None else np.asarray(r.served, dtype=float)


@dataclass(frozen=True)
class RowModel:
    """A measured row turned into roofline terms; `predict` applies an efficiency."""

    point: MeasuredPoint
    setup: ReplicaSetup
    terms: RowTerms  # length 1
    serve: Callable[[Efficiency], tuple[float, float, float]] | None = None  # open-loop rows: (tput, ttft, tpot)

    @property
    def running(self) -> float:
        return float(self.terms.running[0])

    def predict(self, eff: Efficiency) -> float:
        if self.serve is not None:
            tput, ttft, tpot = self.serve(eff)
            return {"output_tokens_per_s": tput, "ttft_ms": ttft * units.MS_PER_S,
                    "tpot_ms": tpot * units.MS_PER_S}[self.point.metric]
        return float(self.terms.predict(eff)[0])


def _row_terms(kind: int, running: float, offered: float, point: MeasuredPoint, terms: PointTerms,
               static_step: StepTerms | None = None, static_prefill: PrefillTerms | None = None, *,
               first_frac: float | None = None, waits: float = 0.0) -> RowTerms:
    one = lambda v: np.atleast_1d(np.asarray(v, dtype=float))  # noqa: E731
    kinds = np.array([kind])
    return RowTerms(kind=kinds, running=one(running), offered=one(offered),
                    input_tokens=one(point.input_tokens), output_tokens=one(point.output_tokens),
                    step=_cat([terms.step], StepTerms), prefill=_cat([terms.prefill], PrefillTerms),
                    static_step=_cat([static_step or terms.step], StepTerms),
                    static_prefill=_cat([static_prefill or terms.prefill], PrefillTerms),
                    served=one(1.0 if _served_row(point) else 0.0),
                    first_frac=one(float(np.isin(kinds, _STATIC_KINDS)[0]) if first_frac is None else first_frac),
                    waits=one(waits), admission=_admission_knobs(point))


def _admission_knobs(point: MeasuredPoint) -> np.ndarray:
    """(1, 3): the row's recv interval, batch-wait iterations and batch-wait tokens (0 where not set). Only a
    closed loop at concurrency > 1 has a batch running when its later requests arrive."""
    if point.scenario != "serving" or (point.concurrency or 0) <= 1:
        return np.zeros((1, 3))
    return np.array([[float(k or 0) for k in (point.recv_interval, point.batch_wait_iters, point.batch_wait_tokens)]])


def _served_row(point: MeasuredPoint) -> bool:
    """Whether the row's requests went through an API server, so its TTFT carries the per-request overhead:
    serving runs, and single-stream TTFTs of a streamed request (output > 1 token: sa-bench or LLMPerf at
    concurrency 1). A one-token TTFT is an offline benchmark's prefill latency (gptSessionBenchmark)."""
    return point.scenario == "serving" or (point.scenario == "batch1" and point.metric == "ttft_ms"
                                           and point.output_tokens > 1)


_RUN_REQUESTS = re.compile(r"\b(\d[\d,]*) (?:prompts|requests)\b")


def run_requests(point: MeasuredPoint) -> float:
    """Requests the benchmark run sent in all (N of a closed loop at concurrency c), nan where not stated.

    Read from the `num_requests` column where the row fills it, else from the notes ("640 prompts at max
    concurrency c", "320 requests at max concurrency 64": a user's CSV without the column)."""
    stated = point.num_requests
    if stated:
        return float(stated)
    found = _RUN_REQUESTS.search(point.notes or "")
    return float(found.group(1).replace(",", "")) if found else math.nan


def _request(point: MeasuredPoint, config_dir: Path) -> EstimateRequest:
    model = str(config_dir / point.model_config) if point.model_config else point.model
    if point.model_config and not (config_dir / point.model_config).is_file():
        raise InvalidInputError(f"model_config {point.model_config!r} not found in {config_dir}")
    return EstimateRequest(model=model, gpu=point.gpu, num_gpus=point.num_gpus, precision=point.precision,
                           kv_dtype=point.kv_dtype, input_tokens=point.input_tokens, output_tokens=point.output_tokens,
                           engine=point.engine, tp=point.tp, expert_parallel=(point.ep or 1) > 1,
                           attn_dp=bool(point.attn_dp))


def _batched_prefill(prefill: PrefillTerms, batch: float, prompt_tokens: float,
                     budget_tokens: float | None) -> PrefillTerms:
    """`batch` prompts prefilled together: FLOPs and transfers scale with the batch; weights are read, and
    per-step costs paid, once per budget-sized step (ceil(batch x prompt / budget) steps)."""
    return PrefillTerms(compute_s=prefill.compute_s * batch, attn_s=prefill.attn_s * batch, memory_s=prefill.memory_s,
                        transfer_s=prefill.transfer_s * batch, collectives=prefill.collectives,
                        expert_calls=prefill.expert_calls,
                        steps=prefill_steps(batch * prompt_tokens, budget_tokens), layers=prefill.layers,
                        act_s=prefill.act_s * batch, launches=prefill.launches,
                        eager_launches=prefill.eager_launches)


def graph_tokens(point: MeasuredPoint, setup: ReplicaSetup) -> float:
    """The largest context step the row's engine ran from a CUDA graph: as its source states (`prefill_cuda_graph`),
    else its build's default (`serving.prefill_graph_max_tokens`)."""
    return prefill_graph_max_tokens(setup.engine_id, engine_date=point.engine_date, stated=point.prefill_cuda_graph,
                                    amd=setup.gpu.vendor.lower() == "amd", attn_dp=setup.attn_dp, pp=setup.pp,
                                    mla=setup.model.arch.attention == "mla")


def _eager(prefill: PrefillTerms, prompt_tokens: float, graph_tokens: float) -> PrefillTerms:
    """`prefill` (of `prompt_tokens` tokens in all, in `prefill.steps` steps) with the kernels each step launches
    without a CUDA graph."""
    step_tokens = prompt_tokens / np.asarray(prefill.steps, dtype=float)
    return dataclasses.replace(prefill, eager_launches=eager_launches(prefill.launches, step_tokens, graph_tokens))


def _open_loop(setup: ReplicaSetup, point: MeasuredPoint, capacity: int,
               graph_tokens: float = math.inf) -> Callable[[Efficiency], tuple]:
    """Predictor of an open-loop (fixed arrival rate) row: concurrency from c = rate x latency(c)."""
    out, rate = point.output_tokens, float(point.request_rate_per_s)

    def at(c: float, eff: Efficiency) -> tuple[float, float]:
        t = _row_point_terms(setup, c, point, graph_tokens)
        tpot = float(t.step.total_s(eff))
        return float(t.prefill.total_s(eff)) + tpot, tpot

    def serve(eff: Efficiency) -> tuple[float, float, float]:
        def latency(c: float) -> float:
            ttft, tpot = at(c, eff)
            return ttft + (out - 1) * tpot
        c = arrival_concurrency(rate, latency, max_concurrency=float(capacity))
        ttft, tpot = at(c, eff)
        saturated = c >= capacity
        tput = c / tpot if saturated else rate * out
        return tput, ttft + float(np.asarray(eff.request_overhead_s, dtype=float)), tpot

    return serve


def _row_point_terms(setup: ReplicaSetup, concurrency: float, point: MeasuredPoint, graph_tokens: float) -> PointTerms:
    """`estimate.terms_of` at `concurrency` for the row's lengths, its one-prompt prefill eager as the row's engine
    build ran it (`graph_tokens`) rather than as the current release does."""
    terms = terms_of(setup, concurrency=concurrency, input_tokens=point.input_tokens, output_tokens=point.output_tokens)
    tokens = chunk_step_tokens(concurrency, point.input_tokens, point.output_tokens, setup.prefill_budget_tokens)
    step = dataclasses.replace(terms.step,
                               eager_launches_chunk=eager_launches(terms.step.launches, tokens, graph_tokens))
    return dataclasses.replace(terms, step=step, prefill=_eager(terms.prefill, point.input_tokens, graph_tokens))


def _layout_of(catalog: Catalog, point: MeasuredPoint, config_dir: Path,
               profile: str | None) -> tuple[MeasuredPoint, Layout | None]:
    """The row and the layout of one of its engine instances (None: the row's tp/ep/attn_dp as stated).

    A multi-GPU row that states no layout at all (no tp, dp, ep or attn_dp: MLPerf system results, whose
    submissions do not say how their GPUs are split) is predicted with the layout `estimate --num-gpus N` picks
    there (`auto_layout`: the highest max throughput among those the engine runs, e.g. eight TP1 instances where
    one GPU holds the model) rather than as one tensor-parallel group over every GPU of the system. Its data-parallel
    instances become the row's `dp` (`per_instance` then scales the row to one instance)."""
    if point.num_gpus == 1 or point.tp or point.dp or point.ep or point.attn_dp:
        return point, None
    req = _request(point, config_dir)
    found = auto_layout(catalog, EstimateRequest(**{**req.__dict__, "profile": profile}))
    if found is None:
        return point, None
    return dataclasses.replace(point, dp=found.dp if found.dp > 1 else None), dataclasses.replace(found, dp=1)


def model_row(catalog: Catalog, point: MeasuredPoint, *, config_dir: Path = MEASURED_DIR / "model_configs",
              profile: str | None = None) -> RowModel | Unexpressible:
    """Resolve one measured row into a RowModel, or say why it cannot be expressed (a row of `dp` data-parallel
    instances as one instance: `measured.per_instance`)."""
    if point.dp and (point.num_gpus % point.dp or (point.tp and (point.num_gpus // point.dp) % point.tp)):
        return Unexpressible(point, f"dp {point.dp} (x tp {point.tp}) does not divide num_gpus {point.num_gpus}")
    try:
        point, layout = _layout_of(catalog, point, config_dir, profile)
        point = per_instance(point)
        req = _request(point, config_dir)
        setup = prepare(catalog, EstimateRequest(**{**req.__dict__, "profile": profile}), layout)
    except PlannerError as err:
        return Unexpressible(point, str(err))
    total_ctx = point.input_tokens + point.output_tokens
    if total_ctx > setup.model.context_length_tokens:
        return Unexpressible(point, f"{total_ctx:,} tokens exceed the model's context of "
                                    f"{setup.model.context_length_tokens:,}")
    graph = graph_tokens(point, setup)
    if point.scenario == "batch1":
        if point.metric not in _BATCH1_KIND:
            return Unexpressible(point, f"metric {point.metric} is not a single-stream metric")
        terms = _row_point_terms(setup, 1.0, point, graph)
        return RowModel(point, setup, _row_terms(_BATCH1_KIND[point.metric], 1.0, 1.0, point, terms))
    capacity = max_running_sequences(setup, point.input_tokens, point.output_tokens)
    if capacity < 1:
        return Unexpressible(point, f"weights plus one sequence's KV do not fit on {point.num_gpus} x "
                                    f"{setup.gpu.gpu_id} at {setup.precision_id} by the planner's memory model")
    if point.scenario == "serving" and point.request_rate_per_s and not point.concurrency:
        terms = _row_point_terms(setup, float(capacity), point, graph)
        return RowModel(point, setup, _row_terms(_STEADY_KIND[point.metric], capacity, capacity, point, terms),
                        _open_loop(setup, point, capacity, graph))
    if point.scenario in ("serving", "static_batch") and not point.concurrency:
        return Unexpressible(point, f"{point.scenario} rows need a concurrency (or a request rate)")
    running = float(min(point.concurrency, capacity)) if point.concurrency else float(capacity)
    if point.scenario == "offline" and point.num_requests:
        # an offline run queues its `num_requests` at once (trtllm-bench throughput, vLLM benchmark_throughput):
        # the engine never holds more sequences than the run has, however many its KV cache would fit
        running = min(running, float(point.num_requests))
    terms = _row_point_terms(setup, running, point, graph)
    fixed = (point.lengths or "fixed") == "fixed"
    closed = point.scenario == "serving" and bool(point.concurrency)
    train = point.scenario == "static_batch" and (point.concurrency <= capacity
                                                  or point.metric != "output_tokens_per_s")
    if train or (closed and point.concurrency <= capacity):
        # a burst of `running` prompts: a static batch (its latencies a train of such waves beyond the capacity,
        # its throughput there the steady state: continuous batching admits the excess as slots free), or a
        # closed loop's first wave (every wave with fixed lengths: SGLang and early vLLM prefill all waiting
        # prompts before decoding, so a wave's requests finish together and return together)
        static_step = decode_terms_of(setup, batch=running,
                                      context_tokens=point.input_tokens + point.output_tokens / 2.0)
        burst = _eager(_batched_prefill(terms.prefill, running, point.input_tokens, setup.prefill_budget_tokens),
                       running * point.input_tokens, graph)
        if point.scenario == "static_batch":
            waits = float(wave_train_waits(batch=point.concurrency, capacity=running)) if point.concurrency else 0.0
            return RowModel(point, setup, _row_terms(_STATIC_KIND[point.metric], running, running, point, terms,
                                                     static_step, burst, first_frac=1.0, waits=waits))
        # staggered clients (`staggered`, e.g. AIPerf) with fixed lengths: the first wave's share c / N, the rest
        # the steady state of the wave's prefill groups (one group step of TTFT, the other groups' prompt
        # chunks in TPOT: `later_wave_*`)
        synced = fixed and not point.staggered
        first = 1.0 if synced else float(first_wave_frac(concurrency=point.concurrency,
                                                         num_requests=run_requests(point), fixed_lengths=False))
        kind = (_STATIC_KIND if fixed else _STEADY_KIND)[point.metric]
        return RowModel(point, setup, _row_terms(kind, running, _offered(point, running), point, terms,
                                                 static_step, burst, first_frac=first))
    return RowModel(point, setup, _row_terms(_STEADY_KIND[point.metric], running, _offered(point, running), point,
                                             terms))


def _offered(point: MeasuredPoint, running: float) -> float:
    """Requests that compete for the `running` slots, for the queueing term of TTFT: a closed-loop client keeps
    all its `concurrency` requests outstanding, so each waits (c - running) / running request latencies on
    average (a static batch beyond the capacity runs as a train of waves instead: `closed_loop.wave_train_waits`)."""
    if point.scenario == "serving" and point.concurrency:
        return float(point.concurrency)
    return running


def _hw_of(setup: ReplicaSetup) -> dict[str, float]:
    hw = hardware_of(setup)
    return dict(memory_bandwidth_tb_s=hw.memory_bandwidth_tb_s, compute_tflops=hw.compute_tflops,
                interconnect_bandwidth_gb_s=hw.interconnect_bandwidth_gb_s)


@dataclass(frozen=True)
class RowResult:
    """Predicted vs measured for one row."""

    point: MeasuredPoint
    predicted_value: float
    profile_id: str
    gpu_family: str
    architecture: str  # dense | moe

    @property
    def ratio(self) -> float:
        """measured / predicted (> 1: the model is pessimistic)."""
        return self.point.measured_value / self.predicted_value

    @property
    def ape_frac(self) -> float:
        return abs(self.predicted_value - self.point.measured_value) / self.point.measured_value


def gpu_family(setup: ReplicaSetup) -> str:
    return f"{setup.gpu.vendor} {setup.gpu.generation}"


def predict_rows(catalog: Catalog, points: Iterable[MeasuredPoint], *, config_dir: Path | None = None,
                 profile: str | None = None) -> tuple[list[RowResult], list[Unexpressible]]:
    """Predict every row the planner can express with the catalog's (or the named) efficiency profile."""
    results, skipped = [], []
    for point in points:
        model = model_row(catalog, point, config_dir=config_dir or MEASURED_DIR / "model_configs", profile=profile)
        if isinstance(model, Unexpressible):
            skipped.append(model)
            continue
        value = model.predict(efficiency_of(model.setup.profile, gemm_format_of(model.setup.candidate)))
        value *= point.measured_value / model.point.measured_value  # dp instances: back to the whole system
        if not (math.isfinite(value) and value > 0):
            skipped.append(Unexpressible(point, f"prediction is not a positive number ({value!r})"))
            continue
        results.append(RowResult(point, value, model.setup.profile.profile_id, gpu_family(model.setup),
                                 "moe" if model.setup.model.arch.is_moe else "dense"))
    return results, skipped


@dataclass(frozen=True)
class ErrorStats:
    """Error distribution of a group of rows (fractions, not percent)."""

    n: int
    median_ape_frac: float
    p90_ape_frac: float
    median_ratio: float  # measured / predicted; 1 = unbiased, > 1 = pessimistic
    p10_ratio: float
    p90_ratio: float
    median_bias_frac: float = 0.0  # median of predicted / measured - 1; < 0 = the model is too slow (for TTFT and
    # TPOT rows: too fast)


def error_stats(results: Iterable[RowResult]) -> ErrorStats:
    """Median and 90th-percentile absolute percentage error, and the spread of measured/predicted."""
    rows = list(results)
    if not rows:
        raise InvalidInputError("no rows to summarise")
    ape = np.array([r.ape_frac for r in rows])
    ratio = np.array([r.ratio for r in rows])
    return ErrorStats(n=len(rows), median_ape_frac=float(np.median(ape)), p90_ape_frac=float(np.percentile(ape, 90)),
                      median_ratio=float(np.median(ratio)), p10_ratio=float(np.percentile(ratio, 10)),
                      p90_ratio=float(np.percentile(ratio, 90)), median_bias_frac=float(np.median(1.0 / ratio) - 1.0))


# The families the accuracy targets are stated for (issue 11): a row belongs to its metric's family, and MoE
# rows also to "moe". Fixed-batch throughput (static bursts) is reported too, outside the targets.
FAMILY_OF_GROUP = {
    "max_throughput_output_tokens_per_s": "max_throughput",
    "batch1_decode_tokens_per_s": "batch1_decode",
    "prefill_tokens_per_s": "prefill",
    "serving_output_tokens_per_s": "serving_throughput",
    "fixed_batch_output_tokens_per_s": "fixed_batch_throughput",
    "ttft": "ttft",
    "tpot": "tpot",
}
FAMILIES = ("max_throughput", "batch1_decode", "prefill", "serving_throughput", "ttft", "tpot", "moe",
            "fixed_batch_throughput")


def families_of(result: RowResult) -> tuple[str, ...]:
    """The accuracy families of a row: its metric's, plus 'moe' for MoE models."""
    own = FAMILY_OF_GROUP.get(result.point.metric_group, result.point.metric_group)
    return (own, "moe") if result.architecture == "moe" else (own,)


def family_stats(results: Iterable[RowResult]) -> dict[str, ErrorStats]:
    """{family: stats} in FAMILIES order, for the families that have rows."""
    groups: dict[str, list[RowResult]] = {}
    for r in results:
        for fam in families_of(r):
            groups.setdefault(fam, []).append(r)
    return {f: error_stats(groups[f]) for f in FAMILIES if f in groups}


Model = TypeVar("Model")


def leave_one_out(keys: Sequence[str], fit: Callable[[np.ndarray], Model],
                  predict: Callable[[Model, np.ndarray], np.ndarray]) -> np.ndarray:
    """Leave-one-group-out predictions: for each distinct key, `fit` on the rows of every other key (a boolean
    mask over the rows), then `predict` that key's rows (mask) with it. Returns one prediction per row, so every
    row is predicted by a model that never saw its source."""
    keys_arr = np.asarray(list(keys), dtype=object)
    if keys_arr.size == 0:
        raise InvalidInputError("no rows to leave out")
    out = np.full(keys_arr.size, np.nan)
    for key in dict.fromkeys(keys_arr.tolist()):
        mine = keys_arr == key
        model = fit(~mine)
        out[mine] = np.asarray(predict(model, mine), dtype=float)
    return out


GROUPINGS: dict[str, Callable[[RowResult], str]] = {
    "metric": lambda r: r.point.metric_group,
    "engine": lambda r: r.point.engine,
    "gpu_family": lambda r: r.gpu_family,
    "architecture": lambda r: r.architecture,
    "era": lambda r: r.point.era,
    "profile": lambda r: r.profile_id,
}


def summarize(results: Iterable[RowResult]) -> dict[str, dict[str, dict[str, ErrorStats]]]:
    """{split: {grouping: {group: stats}}} for every split present and 'all'."""
    rows = list(results)
    out: dict[str, dict[str, dict[str, ErrorStats]]] = {}
    present = {r.point.split for r in rows}
    for split in (("all",) if len(present) > 1 else ()) + SPLITS:
        chosen = [r for r in rows if split == "all" or r.point.split == split]
        if not chosen:
            continue
        out[split] = {}
        for name, key in GROUPINGS.items():
            groups: dict[str, list[RowResult]] = {}
            for r in chosen:
                groups.setdefault(key(r), []).append(r)
            out[split][name] = {g: error_stats(v) for g, v in sorted(groups.items())}
    return out
