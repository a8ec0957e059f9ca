"""Vectorised sweep: every catalog model x GPU x precision x GPU count at one workload.

For each model the candidate configurations (GPU, precision, GPU count) become numpy
arrays, and memory fit, the max-throughput concurrency and the step time come from the
same functions `estimate()` uses (`memory.max_concurrency_array`, `performance.point_terms`
with array arguments), with the same defaults: the engine llama.cpp for GGUF precisions
and Apple GPUs and vLLM otherwise (or the one asked for), a bf16/fp16 KV cache, tensor
parallelism inside a node and pipeline stages across nodes, and the efficiency profile
the catalog picks for that engine and GPU. A configuration that does not fit, exceeds
the model's context or that the engine cannot run is reported with fits = False.

The hardware-fit page and the sizing code call this instead of looping over `estimate()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner import units
from planner.data.catalog import Catalog, Gpu
from planner.errors import InvalidInputError, require_positive_int
from planner.model.architecture import kv_bytes_per_sequence
from planner.model.quantization import WeightFormat, check_compatible, compute_tflops, weight_format
from planner.perf.estimate import (
    KV_FRACTION_OF_FREE_MEMORY,
    MAX_TOKENS,
    _default_engine,
    choose_parallelism,
    efficiency_of,
    int8_matmuls,
    kv_context_tokens,
)
from planner.perf.memory import max_concurrency_array
from planner.perf.performance import Efficiency
from planner.perf.serving import point_terms

DEFAULT_GPU_COUNTS = (1, 2, 4, 8)
COLUMNS = ("model_id", "gpu_id", "precision", "engine", "num_gpus", "tp", "pp", "fits", "max_concurrency",
           "output_tokens_per_s", "output_tokens_per_s_per_user", "tpot_s", "ttft_s", "weights_gb_per_gpu",
           "efficiency_profile")


@dataclass(frozen=True)
class SweepResult:
    """One entry per configuration (parallel arrays); speeds are NaN where `fits` is False."""

    input_tokens: int
    output_tokens: int
    columns: dict[str, np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(self.columns["model_id"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def rows(self, *, only_fitting: bool = False) -> list[dict[str, Any]]:
        """The configurations as dicts (plain Python values), optionally only those that fit."""
        keep = np.flatnonzero(self.columns["fits"]) if only_fitting else range(len(self))
        return [{c: self.columns[c][i].item() if hasattr(self.columns[c][i], "item") else self.columns[c][i]
                 for c in COLUMNS} for i in keep]


@dataclass(frozen=True)
class _Candidate:
    gpu: Gpu
    precision_id: str
    precision_kind: str
    engine_id: str
    fmt_for_native: dict[str, WeightFormat]


def _candidates(catalog: Catalog, gpus: list[Gpu], precisions: list[str], engine: str | None) -> list[_Candidate]:
    """(GPU, precision) pairs the chosen or default engine can run, with their weight formats."""
    out = []
    for gpu in gpus:
        for pid in precisions:
            prec = catalog.precisions[pid]
            eng = catalog.engine(engine or _default_engine(gpu, prec.kind))
            kv = catalog.kv_dtype("fp16" if eng.engine_id == "llama.cpp" else "bf16")
            try:
                check_compatible(prec, kv, gpu, eng)
            except InvalidInputError:
                continue
            out.append(_Candidate(gpu, pid, prec.kind, eng.engine_id, {}))
    return out


def _fmt(catalog: Catalog, cand: _Candidate, native: str) -> WeightFormat:
    if native not in cand.fmt_for_native:
        cand.fmt_for_native[native] = weight_format(catalog.precisions[cand.precision_id], cand.gpu,
                                                    model_native_precision=native)
    return cand.fmt_for_native[native]


def sweep(catalog: Catalog, *, input_tokens: int, output_tokens: int, models: Iterable[str] | None = None,
          gpus: Iterable[str] | None = None, precisions: Iterable[str] | None = None,
          gpu_counts: Iterable[int] = DEFAULT_GPU_COUNTS, engine: str | None = None) -> SweepResult:
    """Fit, max-throughput concurrency, throughput and per-user speed for every configuration.

    Names resolve through the catalog (aliases allowed); None means all. The operating
    point is the max-throughput one: the largest concurrency whose KV cache fits under the
    engine's reservation policy, capped by its batch limit (as `estimate()` without a
    concurrency).
    """
    require_positive_int(input_tokens=input_tokens, output_tokens=output_tokens)
    if input_tokens + output_tokens > MAX_TOKENS:
        raise InvalidInputError(f"input_tokens + output_tokens must be <= {MAX_TOKENS:,}")
    counts = sorted(set(gpu_counts))
    for n in counts:
        require_positive_int(gpu_count=n)
    model_list = [catalog.model(m) for m in models] if models is not None else list(catalog.models.values())
    gpu_list = [catalog.gpu(g) for g in gpus] if gpus is not None else list(catalog.gpus.values())
    prec_list = ([catalog.precision(p).precision_id for p in precisions] if precisions is not None
                 else list(catalog.precisions))
    if engine is not None:
        engine = catalog.engine(engine).engine_id
    cands = _candidates(catalog, gpu_list, prec_list, engine)
    table = _CandidateTable.build(catalog, cands)
    parts = [_sweep_model(catalog, m, table, counts, input_tokens, output_tokens) for m in model_list]
    parts = [p for p in parts if p]
    columns = {c: np.concatenate([p[c] for p in parts]) if parts else np.array([]) for c in COLUMNS}
    return SweepResult(input_tokens, output_tokens, columns)


@dataclass(frozen=True)
class _CandidateTable:
    """Per-candidate constants as arrays (one entry per GPU x precision the engine can run)."""

    cands: list[_Candidate]
    engines: np.ndarray
    usable_gb: np.ndarray
    util: np.ndarray
    overhead_gb: np.ndarray
    max_seqs: np.ndarray
    free_fraction: np.ndarray  # engine sizes KV as a fraction of free memory (TensorRT-LLM)
    bandwidth_tb_s: np.ndarray
    link_gb_s: np.ndarray
    per_node: np.ndarray
    eff: np.ndarray  # (N, len(EFFICIENCY_FIELDS)): Efficiency.to_array() per candidate
    profile_ids: np.ndarray
    budget_tokens: np.ndarray  # engine's per-step token budget (inf: none)

    @classmethod
    def build(cls, catalog: Catalog, cands: list[_Candidate]) -> _CandidateTable:
        profiles: dict[tuple[str, str], Any] = {}
        for c in cands:
            key = (c.engine_id, c.gpu.gpu_id)
            if key not in profiles:
                prof = catalog.efficiency_for(c.engine_id, c.gpu)
                profiles[key] = (prof.profile_id, efficiency_of(prof).to_array())
        eng = [catalog.engines[c.engine_id] for c in cands]
        f = lambda values: np.asarray(list(values), dtype=float)  # noqa: E731
        return cls(cands, np.array([c.engine_id for c in cands], dtype=object),
                   f(c.gpu.usable_memory_gb for c in cands),
                   f(e.memory_utilization_frac for e in eng), f(e.runtime_overhead_gb for e in eng),
                   f(e.max_num_seqs for e in eng),
                   np.array([KV_FRACTION_OF_FREE_MEMORY.get(c.engine_id, False) for c in cands], dtype=bool),
                   f(c.gpu.memory_bandwidth_tb_s for c in cands), f(c.gpu.interconnect_bandwidth_gb_s for c in cands),
                   np.array([c.gpu.max_gpus_per_node for c in cands], dtype=int),
                   np.array([profiles[(c.engine_id, c.gpu.gpu_id)][1] for c in cands], dtype=float),
                   np.array([profiles[(c.engine_id, c.gpu.gpu_id)][0] for c in cands], dtype=object),
                   f(e.max_num_batched_tokens or np.inf for e in eng))


def _parallelism(per_node: np.ndarray, counts: list[int], heads: int, gpu_stub: Gpu) -> tuple[np.ndarray, ...]:
    """(candidate index, count, tp, pp) for every candidate x count, via choose_parallelism per distinct node size."""
    idx, n_out, tp_out, pp_out = [], [], [], []
    for size in np.unique(per_node):
        members = np.flatnonzero(per_node == size)
        for n in counts:
            tp, pp = choose_parallelism(n, _with_node(gpu_stub, int(size)), heads)
            idx.append(members)
            n_out.append(np.full(len(members), n))
            tp_out.append(np.full(len(members), tp))
            pp_out.append(np.full(len(members), pp))
    order = np.concatenate(idx)
    return order, np.concatenate(n_out), np.concatenate(tp_out), np.concatenate(pp_out)


def _with_node(gpu: Gpu, size: int) -> Gpu:
    from dataclasses import replace

    return replace(gpu, max_gpus_per_node=size)


def _sweep_model(catalog: Catalog, model: Any, t: _CandidateTable, counts: list[int], inp: int,
                 out: int) -> dict[str, np.ndarray] | None:
    if not t.cands:
        return None
    arch = model.arch
    idx, n_gpus, tp_i, pp_i = _parallelism(t.per_node, counts, arch.n_attention_heads, t.cands[0].gpu)
    order = np.lexsort((n_gpus, idx))  # candidate-major, then GPU count
    idx, n_gpus, tp_i, pp_i = idx[order], n_gpus[order], tp_i[order], pp_i[order]
    tp, pp = tp_i.astype(float), pp_i.astype(float)
    fmts = [_fmt(catalog, c, model.native_precision) for c in t.cands]
    bytes_of = lambda attr: np.array([getattr(f, attr) for f in fmts], dtype=float)[idx]  # noqa: E731
    fmt = WeightFormat("sweep", bytes_of("expert_bytes_per_param"), bytes_of("dense_bytes_per_param"),
                       bytes_of("embed_bytes_per_param"), "mixed", True)
    engines = t.engines[idx]
    usable, util, overhead_gb = t.usable_gb[idx], t.util[idx], t.overhead_gb[idx]
    weights_gb = fmt.total_bytes(arch) / (tp * pp) / units.GB
    # TensorRT-LLM: KV = fraction of the memory left after weights (see estimate._fit)
    budget = np.where(t.free_fraction[idx], weights_gb + overhead_gb + util * (usable - weights_gb - overhead_gb),
                      usable * util)
    held_by_engine = {e: kv_context_tokens(e, inp, out) for e in set(engines)}
    held = np.array([held_by_engine[e] for e in engines], dtype=float)
    kv_seq = kv_bytes_per_sequence(arch, held, 2.0)  # bf16 / fp16 cache, as estimate() defaults
    shard = np.minimum(tp, float(arch.n_kv_heads))  # memory.kv_shard_factor
    conc = max_concurrency_array(weights_gb_per_gpu=weights_gb, kv_gb_per_sequence_per_gpu=kv_seq / (pp * shard) /
                                 units.GB, budget_gb_per_gpu=budget, runtime_overhead_gb=overhead_gb,
                                 max_num_seqs=t.max_seqs[idx])
    fits = (conc >= 1) & (inp + out <= model.context_length_tokens)
    tflops = np.array([_tflops(c, f) for c, f in zip(t.cands, fmts, strict=True)], dtype=float)[idx]
    values = t.eff[idx]
    terms = point_terms(arch, fmt, concurrency=np.maximum(conc, 1).astype(float), input_tokens=inp,
                        output_tokens=out, kv_bytes_per_elem=2.0, tp=tp, pp=pp,
                        memory_bandwidth_tb_s=t.bandwidth_tb_s[idx], compute_tflops=tflops,
                        interconnect_bandwidth_gb_s=t.link_gb_s[idx], prefill_budget_tokens=t.budget_tokens[idx])
    eff = Efficiency.from_array(values)
    tpot = terms.step.parts(eff)[0]
    prefill = terms.prefill.total_s(eff)
    nan = np.where(fits, 1.0, np.nan)
    return {
        "model_id": np.full(len(idx), model.model_id, dtype=object),
        "gpu_id": np.array([c.gpu.gpu_id for c in t.cands], dtype=object)[idx],
        "precision": np.array([c.precision_id for c in t.cands], dtype=object)[idx],
        "engine": engines, "num_gpus": n_gpus.astype(int), "tp": tp_i.astype(int), "pp": pp_i.astype(int),
        "fits": fits, "max_concurrency": np.where(fits, conc, 0).astype(int),
        "output_tokens_per_s": nan * np.maximum(conc, 1) / tpot, "output_tokens_per_s_per_user": nan / tpot,
        "tpot_s": nan * tpot, "ttft_s": nan * (prefill + tpot), "weights_gb_per_gpu": weights_gb,
        "efficiency_profile": t.profile_ids[idx],
    }


def _tflops(c: _Candidate, fmt: WeightFormat) -> float:
    """As estimate.hardware_of: the format's tensor rate, or int8 for llama.cpp's quantized matmuls."""
    if int8_matmuls(c.engine_id, c.precision_id, c.precision_kind) and c.gpu.int8_dense_tops:
        return c.gpu.int8_dense_tops
    return compute_tflops(c.gpu, fmt)
