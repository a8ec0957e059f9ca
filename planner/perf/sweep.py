"""Vectorised sweep: every catalog model x GPU x precision x GPU count at one workload.

For each model the candidate configurations (GPU, precision, GPU count, and every layout the
engine runs on that many GPUs) go through the one replica evaluator (`evaluator.evaluate`)
with estimate()'s defaults: the engine llama.cpp for GGUF precisions and Apple GPUs and vLLM
otherwise (or the one asked for), the engine's default KV dtype, the efficiency profile the
catalog picks for that engine and GPU, and per GPU count the layout (tensor x pipeline x
data parallel; llama.cpp's layer split) with the highest max-throughput, as estimate() picks
it. A configuration that does not fit, exceeds the model's context or that the engine cannot
run is reported with fits = False.

The hardware-fit page and the sizing code call this instead of looping over `estimate()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.data.catalog import Catalog
from planner.errors import InvalidInputError, require_positive_int
from planner.perf import evaluator
from planner.perf.estimate import LAYOUT_TIE_FRAC, MAX_TOKENS, default_engine_id, layout_simplicity_of

DEFAULT_GPU_COUNTS = (1, 2, 4, 8)
COLUMNS = ("model_id", "gpu_id", "precision", "engine", "num_gpus", "tp", "pp", "dp", "layout", "fits",
           "max_concurrency", "output_tokens_per_s", "output_tokens_per_s_per_user", "tpot_s", "ttft_s",
           "weights_gb_per_gpu", "efficiency_profile", "kv_dtype")


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


def sweep(catalog: Catalog, *, input_tokens: int, output_tokens: int, models: Iterable[str] | None = None,
          gpus: Iterable[str] | None = None, precisions: Iterable[str] | None = None,
          gpu_counts: Iterable[int] = DEFAULT_GPU_COUNTS, engine: str | None = None) -> SweepResult:
    """Fit, max-throughput concurrency, throughput and per-user speed for every configuration.

    Names resolve through the catalog (aliases allowed); None means all. The operating
    point is the max-throughput one: the largest concurrency whose KV cache fits under the
    engine's reservation policy, capped by its batch limit (as `estimate()` without a
    concurrency). One row per model x GPU x precision x GPU count: the best layout's.
    """
    require_positive_int(input_tokens=input_tokens, output_tokens=output_tokens)
    if input_tokens + output_tokens > MAX_TOKENS:
        raise InvalidInputError(f"input_tokens + output_tokens must be <= {MAX_TOKENS:,}")
    counts = sorted(set(gpu_counts))
    for n in counts:
        require_positive_int(gpu_count=n)
    model_list = [catalog.model(m) for m in models] if models is not None else list(catalog.models.values())
    gpu_list = [catalog.gpu(g) for g in gpus] if gpus is not None else list(catalog.gpus.values())
    prec_list = ([catalog.precision(p) for p in precisions] if precisions is not None
                 else list(catalog.precisions.values()))
    fixed_engine = catalog.engine(engine) if engine is not None else None
    parts = [_sweep_model(catalog, m, gpu_list, prec_list, fixed_engine, counts, input_tokens, output_tokens)
             for m in model_list]
    parts = [p for p in parts if p]
    columns = {c: np.concatenate([p[c] for p in parts]) if parts else np.array([]) for c in COLUMNS}
    return SweepResult(input_tokens, output_tokens, columns)


def _sweep_model(catalog: Catalog, model: Any, gpus: list, precisions: list, engine: Any, counts: list[int],
                 inp: int, out: int) -> dict[str, np.ndarray] | None:
    arch = model.arch
    bases: list[evaluator.Candidate] = []
    for gpu in gpus:
        for prec in precisions:
            eng = engine or catalog.engine(default_engine_id(gpu, prec.kind))
            bases.extend(evaluator.candidates(catalog, arch, model.native_precision, gpus=[gpu], engines=[eng],
                                              precisions=[prec], kv_dtypes=[None], gpu_counts=[1],
                                              layouts=lambda e, g, n: [evaluator.Layout()]))
    if not bases:
        return None

    def layouts_of(base: evaluator.Candidate) -> list[evaluator.Layout]:
        return [lay for n in counts for lay in evaluator.layouts_for(base.engine, arch, base.gpu, n)
                if not lay.ep or lay.attn_dp]  # TP-sharded EP only when asked (as estimate); attention DP + EP is in

    cs = evaluator.CandidateSet.expand(bases, layouts_of)
    if not len(cs):
        return None
    ev = evaluator.evaluate(arch, cs, input_tokens=inp, output_tokens=out,
                            context_length_tokens=model.context_length_tokens)
    gpus_n = (cs.tp * cs.pp * cs.dp).astype(int)
    g = cs.base_index * (max(counts) + 1) + gpus_n  # one group per GPU x precision x count: its layouts compete
    tput = np.where(ev.fits, ev.output_tokens_per_s, -np.inf)
    # best layout per group, as estimate's auto_layout picks it (`pick_layout`): among the layouts within
    # LAYOUT_TIE_FRAC of the group's highest throughput the simplest (`layout_simplicity`), then the faster; the
    # first layout (evaluator order) when none fits
    best = np.full(int(g.max()) + 1, -np.inf)
    np.maximum.at(best, g, tput)
    near = np.isfinite(tput) & (tput >= (1.0 - LAYOUT_TIE_FRAC) * best[g])
    simple = layout_simplicity_of(cs)
    order = np.lexsort((np.arange(len(g)), -tput, simple[:, 2], simple[:, 1], simple[:, 0], ~near, g))
    first = np.ones(len(order), dtype=bool)
    first[1:] = g[order][1:] != g[order][:-1]
    pick = order[first]
    pick = pick[np.argsort(g[pick], kind="stable")]
    base_of = [bases[i] for i in cs.base_index[pick]]
    col = lambda values, dtype=object: np.array(list(values), dtype=dtype)  # noqa: E731
    labels = cs.take(pick).labels()
    return {
        "model_id": np.full(len(pick), model.model_id, dtype=object),
        "gpu_id": col(c.gpu.gpu_id for c in base_of), "precision": col(c.precision.precision_id for c in base_of),
        "engine": col(c.engine.engine_id for c in base_of), "num_gpus": gpus_n[pick],
        "tp": cs.tp[pick].astype(int), "pp": cs.pp[pick].astype(int), "dp": cs.dp[pick].astype(int),
        "layout": labels, "fits": ev.fits[pick],
        "max_concurrency": np.where(ev.fits[pick], ev.max_concurrency[pick], 0).astype(int),
        "output_tokens_per_s": ev.output_tokens_per_s[pick], "output_tokens_per_s_per_user": 1.0 / ev.tpot_s[pick],
        "tpot_s": ev.tpot_s[pick], "ttft_s": ev.ttft_s[pick], "weights_gb_per_gpu": ev.weights_gb_per_gpu[pick],
        "efficiency_profile": col(c.profile.profile_id for c in base_of),
        "kv_dtype": col(c.kv.kv_dtype_id for c in base_of),
    }
