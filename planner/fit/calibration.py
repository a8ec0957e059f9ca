"""Fit efficiency profiles on measured rows, and store the user's own calibrated profiles.

Model. Every efficiency factor of a profile is an engine effect plus a hardware-class
effect on a link scale (logit for fractions in (0, 1], log for the fixed costs):

    theta(engine, class) = base + engine_offset[engine] + class_offset[class]

with TensorRT-LLM and NVIDIA datacenter GPUs as the reference (offsets 0). The factors
are those of `performance.Efficiency`, one per kind of bottleneck: bandwidth-bound
decode (mbu), routed-expert streaming (moe_mbu), compute-bound decode (mfu_decode),
prefill (mfu_prefill), the per-step CPU work (step overhead) and the share of the GPU step
that hides it (overhead overlap), GPU time per layer, per routed MoE slot, and collective latency.
`scipy.optimize.least_squares` minimises a robust (soft-L1) loss of
log(predicted / measured) over the fit rows, plus Gaussian priors that pull the base
towards generic values and every offset towards 0, so an engine or class with little
data stays close to the reference, and one without data inherits it [1]. Engine x class
combinations without fit rows are therefore predictions of the additive model, not
guesses per row.

Engine build era is a factor too: rows from engines built before `measured.RECENT_FROM`
(`MeasuredPoint.era == "older"`) add an era offset to every factor,

    theta(engine, class, older) = theta(engine, class) + era_offset,

shrunk towards 0 by its own prior (`FitSettings.era_offset_sd`). The written profiles are the
current era (offset 0): the planner sizes deployments on the engines people install today, whose
kernels (fused MoE, custom all-reduce, CUDA graphs over the whole step) differ from early-2025
builds, while the older rows still constrain everything the era offset does not absorb (dense
compute efficiency, prefill, consumer and Apple parts). Undated rows count as current. The older
rows may also enter the loss with a smaller weight (`FitSettings.older_weight`).

User calibration (`calibrate_profile`) refits the catalog profile of one engine on one
GPU to the user's points with the same loss, the catalog values as the prior.

[1] A. Gelman et al., "Bayesian Data Analysis", 3rd ed., ch. 5 (hierarchical models, partial pooling), 2013.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from planner import units
from planner.data.catalog import Catalog, EfficiencyProfile, Gpu
from planner.errors import InvalidInputError
from planner.fit.profile_store import (  # noqa: F401  (re-exported: callers import them from here)
    DEFAULT_PROFILE_DIR,
    PROFILE_DIR_ENV,
    _check_profile_id,
    load_user_profiles,
    points_from_vllm_bench,
    profile_dir,
    save_profile,
    write_efficiency_csv,
)
from planner.fit.validation import (
    MeasuredPoint,
    RowModel,
    RowResult,
    Unexpressible,
    gpu_family,
    leave_one_out,
    model_row,
    predict_rows,
    stack_terms,
)
from planner.perf.evaluator import GEMM_FORMATS, SCALE_FIELD, gemm_format_of, mfu_scale
from planner.perf.performance import Efficiency
from planner.perf.step_work import COMM_LARGE_MESSAGE_BW_FRAC

PARAMS = ("mbu_frac", "moe_mbu_frac", "mfu_decode_frac", "mfu_prefill_frac", "comm_bw_frac", "overhead_overlap_frac",
          "step_overhead_ms", "comm_latency_us", "moe_expert_overhead_us", "layer_overhead_us", "request_overhead_ms",
          "comm_half_us", "eager_launch_us")
N_FRACS = 6  # the first six are fractions (logit link); the rest are times (log link)
HW_CLASSES = ("nvidia-datacenter", "nvidia-consumer", "amd", "apple")
# gpu_match keys each class is written under (see Catalog.efficiency_for: gpu_id > generation >
# category > vendor > '*'); NVIDIA datacenter parts are every engine's fallback.
CLASS_GPU_MATCH = {"nvidia-datacenter": ("*",), "nvidia-consumer": ("consumer", "workstation"), "amd": ("amd",),
                   "apple": ("apple",)}
REFERENCE_ENGINE = "trtllm"
NO_EAGER_US = 1e-6  # eager_launch_us of a profile written without it: no host cost (the log link needs a value > 0)
# Prior of the host time per kernel a context step launches from Python without a CUDA graph (the kernel counts per
# layer: `step_work.host_launches`): the Python bytecode, binding, dispatcher and cudaLaunchKernel path of one eager
# op costs ~5-25 us of CPU (jiahuanglin.xyz, "From PyTorch op to kernel launch"); TensorRT-LLM measures a ~35 us
# CPU dispatch interval per kernel of its PyTorch LTX-2 pipeline (NVIDIA/TensorRT-LLM PR #12653)
EAGER_LAUNCH_PRIOR_US = 20.0
NO_LARGE_MESSAGE_US = 1e9  # comm_half_us of a profile written before the large-message regime: every message small


@dataclass(frozen=True)
class FitSettings:
    """Prior and loss settings of a fit (link-scale units: logit for fractions, log for times).

    The prior centre is a generic starting point only (what a roofline tool would assume);
    the fitted values replace it wherever the data constrain them.
    """

    prior: tuple[float, ...] = (0.7, 0.5, 0.5, 0.6, 0.7, 0.3, 1.0, 10.0, 1.0, 30.0, 10.0, 30.0,
                                EAGER_LAUNCH_PRIOR_US)  # PARAMS order,
    # natural units. comm_half_us 30: the line-rate time of the message at which engines hand an all-reduce from
    # their custom NVLink kernels to NCCL (vLLM's custom all-reduce takes messages up to 8 MiB: 19-33 us of ring
    # bytes at 450 GB/s on TP 2-8; docs/performance.md, "Collectives")
    prior_sd: float = 1.5  # base: weak
    offset_sd: float = 1.5  # engine and class offsets of the fractions: shrink towards the reference
    time_offset_sd: float = 3.0  # engine and class offsets of the fixed costs (log scale): software stacks differ
    # by an order of magnitude there (one CUDA graph per step vs a launch per kernel, Metal vs CUDA), far more
    # than in the achieved fractions of peak
    loss_scale: float = 0.5  # soft-L1 transition, in log(pred/measured)
    older_weight: float = 1.0  # loss weight of rows from engines built before RECENT_FROM (current ones: 1); with
    # the era offset absorbing what the builds changed, down-weighting them no longer helps (docs section 4)
    era_offset_sd: float = 1.0  # prior sd of the older-build offsets (link scale; 0: no era factor)
    interaction_sd: float = 0.5  # prior sd of the engine x class interactions (link scale; 0: purely additive): an
    # engine's kernels for a class (vLLM's on GeForce cards, llama.cpp's MMQ) need not move with its other classes
    format_sd: float = 3.0  # prior sd of each engine's MFU scale per GEMM format (fp8, fp4, int8 vs 16-bit float;
    # log scale, centred on 1; 0: no format factor): loose, the data set them (llama.cpp MMQ int8 at a third of its
    # 16-bit MFU); 0.7 and 1.5 scored worse held out and leave-one-source-out (docs/performance.md section 4)
    comm_half_prior_sd: float = 1.0  # prior sd of comm_half_us's base (log scale): the data move it
    comm_half_offset_sd: float = 0.01  # its engine and class offsets (log scale): ~0, one value for every engine
    # and class (era and interaction offsets keep their own priors); free offsets sent vLLM's and SGLang's to
    # 0.4-1.1 ms and scored worse held out (docs/performance.md, "Collectives")
    eager_prior_sd: float = 1.0  # prior sd of eager_launch_us's base (log scale)
    eager_offset_sd: float = 1.0  # its engine and class offsets (log scale): each PyTorch engine's per-op dispatch
    # path is its own (SGLang, TensorRT-LLM's PyTorch backend), and so is the host CPU of a class; tied (0.01) scored
    # worse held out (docs/performance.md, "Eager context steps by architecture")
    expert_class_offset_sd: float = 0.7  # hardware-class offsets of the per-expert cost (log scale): a property of
    # the engine's fused-MoE kernel; a looser prior let one slow MLA run on MI325X set it 7x higher for every AMD part


def hardware_class(gpu: Gpu) -> str:
    """The efficiency class of a GPU: NVIDIA datacenter (also the fallback), NVIDIA consumer/workstation,
    AMD, or Apple."""
    vendor, category = gpu.vendor.lower(), gpu.category.lower()
    if vendor == "apple":
        return "apple"
    if vendor == "amd":
        return "amd"
    if vendor == "nvidia" and category in ("consumer", "workstation"):
        return "nvidia-consumer"
    return "nvidia-datacenter"


def _to_link(values: Iterable[float]) -> np.ndarray:
    v = np.asarray(list(values), dtype=float)
    out = np.empty_like(v)
    fr = np.clip(v[:N_FRACS], 1e-9, 1 - 1e-6)  # overhead_overlap_frac may be 0 (a serial engine)
    out[:N_FRACS] = np.log(fr / (1 - fr))
    out[N_FRACS:] = np.log(np.maximum(v[N_FRACS:], 1e-6))
    return out


def _from_link(theta: np.ndarray) -> np.ndarray:
    """Natural units from link scale; works on (..., 6) arrays."""
    out = np.empty_like(theta)
    out[..., :N_FRACS] = 1.0 / (1.0 + np.exp(-theta[..., :N_FRACS]))
    out[..., N_FRACS:] = np.exp(theta[..., N_FRACS:])
    return out


def _robust(r: np.ndarray, scale: float) -> np.ndarray:
    """Residuals whose squares are the soft-L1 loss 2 s^2 (sqrt(1 + (r/s)^2) - 1): quadratic near 0, linear in the
    tails, so a few odd rows cannot drag the fit, while the priors (passed through untouched) stay Gaussian."""
    return np.sign(r) * scale * np.sqrt(2.0 * (np.sqrt(1.0 + (r / scale) ** 2) - 1.0))


def _predict_rows(stack: Any, natural: np.ndarray) -> np.ndarray:
    """Predicted values of stacked rows with per-row parameters `natural` (N x len(PARAMS), PARAMS order)."""
    return stack.predict(_efficiency(natural))


@dataclass(frozen=True)
class FitResult:
    """Fitted factors per (engine, class), and the rows they were fitted on."""

    factors: dict[tuple[str, str], tuple[float, ...]]  # natural units, PARAMS order (current engine builds)
    fit_counts: dict[tuple[str, str], int]
    engines: tuple[str, ...]
    cost: float
    rows_used: int
    era_offset: tuple[float, ...] = (0.0,) * len(PARAMS)  # link-scale offset of builds before RECENT_FROM, PARAMS order
    format_scales: dict[str, tuple[float, ...]] | None = None  # engine -> MFU scale per GEMM_FORMATS entry


def fit_additive(catalog: Catalog, points: Iterable[MeasuredPoint], *, settings: FitSettings = FitSettings(),
                 engines: Iterable[str] | None = None) -> FitResult:
    """Fit base + engine + class effects on the expressible closed-form rows of `points`."""
    engines = tuple(engines or catalog.engines)
    models = fit_models(catalog, points, engines=engines)
    if not models:
        raise InvalidInputError("no expressible rows to fit")
    return _solve(models, engines, settings)[0]


def fit_models(catalog: Catalog, points: Iterable[MeasuredPoint], *, engines: tuple[str, ...]) -> list[RowModel]:
    """The rows a fit can use: expressible, closed-form (open-loop rows need a fixed point per step), of `engines`."""
    models: list[RowModel] = []
    for point in points:
        m = model_row(catalog, point)
        if isinstance(m, RowModel) and m.serve is None and m.setup.engine_id in engines:
            models.append(m)
    return models


def _solve(models: list[RowModel], engines: tuple[str, ...], settings: FitSettings,
           x0: np.ndarray | None = None) -> tuple[FitResult, np.ndarray]:
    """The least-squares fit of `fit_additive` on prepared rows (from `x0`, else the prior); also returns the
    solution vector (link scale, laid out as `_unpack` reads it) to warm-start a refit."""
    residuals, start, sparsity, eng_idx, cls_idx, fmt_idx = _problem(models, engines, settings)
    sol = least_squares(residuals, start if x0 is None else x0, jac=_grouped_jacobian(residuals, sparsity),
                        method="trf", max_nfev=4000)
    table = _factor_table(sol.x, engines)
    factors, counts = {}, {}
    for ei, e in enumerate(engines):
        for ci, c in enumerate(HW_CLASSES):
            factors[(e, c)] = tuple(float(v) for v in table[ei, ci])
            counts[(e, c)] = int(np.sum((eng_idx == ei) & (cls_idx == ci)))
    era = tuple(float(v) for v in _unpack(sol.x, engines)[2])
    scales = _format_scales(sol.x, engines)
    fmt_scales = {e: tuple(float(v) for v in scales[ei]) for ei, e in enumerate(engines)}
    return FitResult(factors, counts, engines, float(sol.cost), len(models), era, fmt_scales), sol.x


def _problem(models: list[RowModel], engines: tuple[str, ...], settings: FitSettings) -> tuple[Any, ...]:
    """(residual function, prior start vector, Jacobian sparsity, engine, class and GEMM-format index per row) of a
    fit. The solution vector ends in one log MFU scale per engine and GEMM format (`_format_scales`)."""
    stack = stack_terms([m.terms for m in models])
    measured = np.array([m.point.measured_value for m in models])
    row_sd = np.sqrt(np.array([settings.older_weight if m.point.era == "older" else 1.0 for m in models]))
    eng_idx = np.array([engines.index(m.setup.engine_id) for m in models])
    cls_idx = np.array([HW_CLASSES.index(hardware_class(m.setup.gpu)) for m in models])
    older = np.array([m.point.era == "older" for m in models], dtype=float)[:, None]
    fmt_idx = np.array([_format_index(m) for m in models])
    k = len(PARAMS)
    prior = _to_link(settings.prior)

    def residuals(x: np.ndarray) -> np.ndarray:
        base, pair, era = _unpack(x, engines)
        theta = base + pair[eng_idx, cls_idx] + older * era
        pred = _predict_rows(stack, _scaled(_from_link(theta), _row_scales(x, engines, eng_idx, fmt_idx)))
        data = row_sd * _robust(np.log(pred / measured), settings.loss_scale)
        priors = np.concatenate([(base - prior) / base_sd, x[k:] / offset_sd])
        return np.concatenate([data, priors])

    n_free_e = sum(e != REFERENCE_ENGINE for e in engines)
    base_sd = np.full(k, settings.prior_sd)
    base_sd[PARAMS.index("comm_half_us")] = settings.comm_half_prior_sd
    per_param = np.where(np.arange(k) < N_FRACS, settings.offset_sd, settings.time_offset_sd)
    per_class = per_param.copy()
    per_class[PARAMS.index("moe_expert_overhead_us")] = settings.expert_class_offset_sd
    half = PARAMS.index("comm_half_us")
    per_param[half] = per_class[half] = settings.comm_half_offset_sd
    eager = PARAMS.index("eager_launch_us")
    base_sd[eager] = settings.eager_prior_sd
    per_param[eager] = per_class[eager] = settings.eager_offset_sd
    era_sd = np.full(k, max(settings.era_offset_sd, 1e-6))  # ~0: the era factor switched off
    inter_sd = np.tile(np.full(k, max(settings.interaction_sd, 1e-6)), n_free_e * (len(HW_CLASSES) - 1))
    fmt_sd = np.full(len(engines) * len(GEMM_FORMATS), max(settings.format_sd, 1e-6))  # ~0: no format factor
    offset_sd = np.concatenate([np.tile(per_param, n_free_e), np.tile(per_class, len(HW_CLASSES) - 1), era_sd,
                                inter_sd, fmt_sd])
    start = np.concatenate([prior, np.zeros(len(offset_sd))])
    sparsity = _jac_sparsity(eng_idx, cls_idx, older[:, 0] > 0, engines, len(start), fmt_idx)
    return residuals, start, sparsity, eng_idx, cls_idx, fmt_idx


def _format_index(m: RowModel) -> int:
    """Index of a row's GEMM format in GEMM_FORMATS (-1: 16-bit float, the reference)."""
    gemm = gemm_format_of(m.setup.candidate)
    return GEMM_FORMATS.index(gemm) if gemm in GEMM_FORMATS else -1


def _format_scales(x: np.ndarray, engines: tuple[str, ...]) -> np.ndarray:
    """MFU scale of every (engine, GEMM format) from the solution vector's last block: shape (engines, formats)."""
    n = len(engines) * len(GEMM_FORMATS)
    return np.exp(x[len(x) - n:]).reshape(len(engines), len(GEMM_FORMATS))


def _row_scales(x: np.ndarray, engines: tuple[str, ...], eng_idx: np.ndarray, fmt_idx: np.ndarray) -> np.ndarray:
    return np.where(fmt_idx >= 0, _format_scales(x, engines)[eng_idx, np.maximum(fmt_idx, 0)], 1.0)


MFU_COLUMNS = (PARAMS.index("mfu_decode_frac"), PARAMS.index("mfu_prefill_frac"))


def _scaled(natural: np.ndarray, scale: Any) -> np.ndarray:
    """Factors (..., PARAMS) with both MFU fractions times `scale` (per row), capped at 1, as
    `evaluator.efficiency_of` applies a profile's per-format scale."""
    out = np.array(natural, dtype=float, copy=True)
    for j in MFU_COLUMNS:
        out[..., j] = np.minimum(out[..., j] * scale, 1.0)
    return out


def _grouped_jacobian(fun: Any, sparsity: Any) -> Any:
    """A dense forward-difference Jacobian of `fun` that perturbs several parameters in one evaluation when no
    residual depends on two of them (Curtis, Powell and Reid [2]: greedy column colouring of `sparsity`), the
    same steps as scipy's '2-point' (h = sqrt(eps) max(1, |x|)) at a fraction of the evaluations. Dense, so
    least_squares keeps its exact trust-region solver (with a sparse Jacobian it falls back to LSMR, whose
    inexact steps stopped warm-started refits after two evaluations, far from the optimum).

    [2] A. R. Curtis, M. J. D. Powell, J. K. Reid, "On the estimation of sparse Jacobian matrices",
        IMA J. Appl. Math. 13(1), 1974, doi:10.1093/imamat/13.1.117
    """
    pattern = sparsity.tocsc().astype(bool)
    rows_of = [pattern.indices[pattern.indptr[j]:pattern.indptr[j + 1]] for j in range(pattern.shape[1])]
    groups: list[list[int]] = []
    used: list[np.ndarray] = []
    for j, rows in enumerate(rows_of):
        for g, mask in enumerate(used):
            if not mask[rows].any():
                groups[g].append(j)
                mask[rows] = True
                break
        else:
            mask = np.zeros(pattern.shape[0], dtype=bool)
            mask[rows] = True
            groups.append([j])
            used.append(mask)
    eps = np.sqrt(np.finfo(float).eps)

    def jac(x: np.ndarray) -> np.ndarray:
        f0 = fun(x)
        out = np.zeros((f0.size, x.size))
        for cols in groups:
            h = eps * np.maximum(1.0, np.abs(x[cols]))
            step = x.copy()
            step[cols] += h
            df = fun(step) - f0
            for j, hj in zip(cols, h, strict=True):
                out[rows_of[j], j] = df[rows_of[j]] / hj
        return out

    return jac


def _jac_sparsity(eng_idx: np.ndarray, cls_idx: np.ndarray, older: np.ndarray, engines: tuple[str, ...],
                  n_params: int, fmt_idx: np.ndarray | None = None) -> Any:
    """Which parameters each residual depends on (data rows: the base, their engine's and class's offsets, the era
    offset when older, their engine x class interaction; priors: one parameter each), so the finite-difference
    Jacobian perturbs unrelated blocks together (one step per colour of the column graph, not per parameter)."""
    from scipy.sparse import lil_matrix

    k = len(PARAMS)
    free_e = [e for e in engines if e != REFERENCE_ENGINE]
    n_c = len(HW_CLASSES)
    era0 = k + len(free_e) * k + (n_c - 1) * k
    inter0 = era0 + k
    n = len(eng_idx)
    m = lil_matrix((n + n_params, n_params), dtype=int)
    for i in range(n):
        cols = list(range(k))
        e, c = engines[eng_idx[i]], int(cls_idx[i])
        if e != REFERENCE_ENGINE:
            fe = free_e.index(e)
            cols += range(k + fe * k, k + (fe + 1) * k)
            if c > 0:
                pair = inter0 + (fe * (n_c - 1) + c - 1) * k
                cols += range(pair, pair + k)
        if c > 0:
            cols += range(k + len(free_e) * k + (c - 1) * k, k + len(free_e) * k + c * k)
        if older[i]:
            cols += range(era0, era0 + k)
        if fmt_idx is not None and fmt_idx[i] >= 0:
            cols.append(n_params - len(engines) * len(GEMM_FORMATS) + eng_idx[i] * len(GEMM_FORMATS) + fmt_idx[i])
        m[i, cols] = 1
    for j in range(n_params):
        m[n + j, j] = 1
    m[n:n + k, :k] = 1  # the base priors are one block (they share nothing else, so this costs nothing)
    return m


def _unpack(x: np.ndarray, engines: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base, offsets of every (engine, class) pair, older-build offset) from a solution vector laid out as base,
    engine offsets (reference engine left out), class offsets (reference class left out), the era offset, then one
    engine x class interaction per pair of a non-reference engine and class. Pair offsets have shape
    (engines, classes, PARAMS)."""
    k = len(PARAMS)
    free_e = [e for e in engines if e != REFERENCE_ENGINE]
    n_c = len(HW_CLASSES)
    base = x[:k]
    e_off = np.zeros((len(engines), k))
    for i, e in enumerate(free_e):
        e_off[engines.index(e)] = x[k + i * k:k + (i + 1) * k]
    c_off = np.zeros((n_c, k))
    start = k + len(free_e) * k
    for i in range(n_c - 1):
        c_off[1 + i] = x[start + i * k:start + (i + 1) * k]
    start += (n_c - 1) * k
    era = x[start:start + k]
    start += k
    pair = e_off[:, None, :] + c_off[None, :, :]
    inter = x[start:start + len(free_e) * (n_c - 1) * k].reshape(len(free_e), n_c - 1, k)
    for i, e in enumerate(free_e):
        pair[engines.index(e), 1:] += inter[i]
    return base, pair, era


def _factor_table(x: np.ndarray, engines: tuple[str, ...], *, older: bool = False) -> np.ndarray:
    """Natural-unit factors of every (engine, class) for current builds (or, `older`, for builds before
    RECENT_FROM): shape (engines, classes, PARAMS)."""
    base, pair, era = _unpack(x, engines)
    return _from_link(base + pair + (era if older else 0.0))


def loso_results(catalog: Catalog, points: list[MeasuredPoint], *, settings: FitSettings = FitSettings()
                 ) -> tuple[list[RowResult], list[Unexpressible]]:
    """Leave-one-source-out: every row predicted by the additive model refitted on all rows of all other sources
    (both splits), so each figure is what the model would say about a source it has never seen. A row from an
    older engine build is predicted with the era offset (the build is an input, as engine and GPU are).

    One fit on everything, then one warm-started refit per source (`validation.leave_one_out`); open-loop rows
    are predicted (not fitted) with the factors of the refit that left their source out.
    """
    engines = tuple(catalog.engines)
    rows: list[RowModel] = []
    skipped: list[Unexpressible] = []
    for point in points:
        m = model_row(catalog, point)
        if isinstance(m, Unexpressible):
            skipped.append(m)
        elif m.setup.engine_id not in engines:
            skipped.append(Unexpressible(point, f"engine {m.setup.engine_id} has no fitted profile"))
        else:
            rows.append(m)
    if not rows:
        raise InvalidInputError("no expressible rows to leave out")
    closed = np.array([m.serve is None for m in rows])
    _, x_all = _solve([m for m, c in zip(rows, closed, strict=True) if c], engines, settings)
    eng_idx = np.array([engines.index(m.setup.engine_id) for m in rows])
    cls_idx = np.array([HW_CLASSES.index(hardware_class(m.setup.gpu)) for m in rows])
    older = np.array([m.point.era == "older" for m in rows])
    fmt_idx = np.array([_format_index(m) for m in rows])

    def fit(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chosen = [m for m, t, c in zip(rows, train, closed, strict=True) if t and c]
        x = _solve(chosen, engines, settings, x0=x_all)[1] if chosen else x_all
        return np.stack([_factor_table(x, engines), _factor_table(x, engines, older=True)]), x

    def predict(model: tuple[np.ndarray, np.ndarray], mine: np.ndarray) -> np.ndarray:
        tables, x = model
        idx = np.flatnonzero(mine)
        natural = _scaled(tables[older[idx].astype(int), eng_idx[idx], cls_idx[idx]],
                          _row_scales(x, engines, eng_idx[idx], fmt_idx[idx]))
        out = np.empty(idx.size)
        shut = closed[idx]
        if shut.any():
            stack = stack_terms([rows[i].terms for i in idx[shut]])
            out[shut] = _predict_rows(stack, natural[shut])
        for j in np.flatnonzero(~shut):
            out[j] = rows[idx[j]].predict(_efficiency(natural[j]))
        return out

    predicted = leave_one_out([m.point.source_key for m in rows], fit, predict)
    results = []
    for m, value in zip(rows, predicted, strict=True):
        if not (math.isfinite(value) and value > 0):
            skipped.append(Unexpressible(m.point, f"prediction is not a positive number ({value!r})"))
            continue
        results.append(RowResult(m.point, float(value), f"loso-{m.setup.engine_id}-{hardware_class(m.setup.gpu)}",
                                 gpu_family(m.setup), "moe" if m.setup.model.arch.is_moe else "dense"))
    return results, skipped


def profile_row(profile_id: str, engine: str, gpu_match: str, factors: tuple[float, ...], *,
                range_factors: tuple[float, float], n_points: float, fit_mdape_frac: float | None,
                holdout_mdape_frac: float | None, source_url: str, notes: str,
                accessed: dt.date | None = None, format_scales: Iterable[float] | None = None) -> EfficiencyProfile:
    """An EfficiencyProfile from fitted factors (rounded to what the data supports); `format_scales`: the MFU scale
    per GEMM_FORMATS entry (None: 1 for each)."""
    (mbu, moe, mfu_d, mfu_p, comm_bw, overlap, overhead_ms, latency_us, expert_us, layer_us, request_ms,
     half_us, eager_us) = factors
    lo, hi = range_factors
    scales = {SCALE_FIELD[f]: round(float(v), 3) for f, v in zip(GEMM_FORMATS, format_scales or (), strict=False)}
    return EfficiencyProfile(
        profile_id=profile_id, engine=engine, gpu_match=gpu_match, mbu_frac=round(mbu, 3),
        mfu_decode_frac=round(mfu_d, 3), mfu_prefill_frac=round(mfu_p, 3), step_overhead_ms=round(overhead_ms, 3),
        comm_latency_us=round(latency_us, 2), range_low_factor=round(min(lo, 1.0), 3),
        range_high_factor=round(max(hi, 1.0), 3), n_points=n_points,
        fit_mdape_frac=None if fit_mdape_frac is None else round(fit_mdape_frac, 3), source_url=source_url,
        source_accessed=accessed or dt.date.today(), notes=notes, moe_mbu_frac=round(moe, 3),
        comm_bw_frac=round(comm_bw, 3), moe_expert_overhead_us=round(expert_us, 3),
        overhead_overlap_frac=max(round(overlap, 3), 0.001), layer_overhead_us=round(layer_us, 3),
        holdout_mdape_frac=None if holdout_mdape_frac is None else round(holdout_mdape_frac, 3),
        request_overhead_ms=round(request_ms, 2), comm_large_bw_frac=COMM_LARGE_MESSAGE_BW_FRAC,
        comm_half_us=round(half_us, 3), eager_launch_us=round(eager_us, 3), **scales)


MATCH_SUFFIX = {"*": "datacenter", "consumer": "consumer", "workstation": "workstation", "amd": "amd", "apple": "apple"}
MIN_RANGE_ROWS = 8  # a level (engine, profile) with fewer held-out rows than this keeps the pooled range factors
RANGE_POOL_SOURCES = 2.0  # a level's own range percentiles weigh n / (n + 2), n its held-out sources (range_factors):
# 2 sources half, 6 three quarters; 2 and 4 give the same leave-one-source-out coverage (docs/performance.md "Ranges")
DEFAULT_RANGE = (0.7, 1.3)  # no held-out rows at all (a catalog without data/measured): +-30 %


def _vendor_ok(catalog: Catalog, engine: str, hw_class: str) -> bool:
    vendor = {"amd": "amd", "apple": "apple"}.get(hw_class, "nvidia")
    return vendor in catalog.engines[engine].vendors


def fit_catalog_profiles(catalog: Catalog, points: list[MeasuredPoint], *, source_url: str,
                         settings: FitSettings = FitSettings(), accessed: dt.date | None = None
                         ) -> tuple[list[EfficiencyProfile], FitResult]:
    """Refit every engine x class profile on the `fit` rows; range factors (`range_factors`) and held-out error from
    the `holdout` rows."""
    fit_points = [p for p in points if p.split == "fit"]
    result = fit_additive(catalog, fit_points, settings=settings)
    keys = [(e, c, m) for (e, c) in result.factors for m in CLASS_GPU_MATCH[c] if _vendor_ok(catalog, e, c)]
    pid = {k: f"{k[0]}-{MATCH_SUFFIX[k[2]]}" for k in keys}
    provisional = [profile_row(pid[k], k[0], k[2], result.factors[k[:2]], range_factors=(1.0, 1.0), n_points=0,
                               fit_mdape_frac=None, holdout_mdape_frac=None, source_url=source_url, notes="",
                               accessed=accessed, format_scales=result.format_scales[k[0]]) for k in keys]
    rows, _ = predict_rows(replace_profiles(catalog, provisional), points)
    by_profile: dict[str, dict[str, list]] = {}
    for r in rows:
        by_profile.setdefault(r.profile_id, {"fit": [], "holdout": []})[r.point.split].append(r)
    speed = range_rows(rows)
    out = []
    for k, prof in zip(keys, provisional, strict=True):
        mine = by_profile.get(prof.profile_id, {"fit": [], "holdout": []})
        lo, hi = range_factors(speed, prof.profile_id, k[0])
        n_own = [r for r in speed if r.profile_id == prof.profile_id]
        fit_ape = [r.ape_frac for r in mine["fit"]]
        hold_ape = [r.ape_frac for r in mine["holdout"]]
        n_fit = result.fit_counts[k[:2]]
        notes = (f"additive fit (engine {k[0]} + class {k[1]}) on {result.rows_used} fit rows of data/measured, "
                 f"{n_fit} of them for this engine x class"
                 + ("" if n_fit else " (none: the factors are the model's prediction for it)")
                 + f"; {len(mine['holdout'])} held-out rows predicted with it; range = p10/p90 of measured/predicted "
                 f"speed on the held-out rows (TTFT excluded), sources weighted equally, pooled from all {len(speed)} "
                 f"rows to the engine's to this profile's {len(n_own)} rows "
                 f"({len({r.point.source_url for r in n_own})} sources) by source count, at least all rows' spread "
                 f"around the median")
        urls = [r.point.source_url for r in mine["fit"] if r.point.source_url]
        url = max(set(urls), key=urls.count) if urls else source_url
        out.append(profile_row(prof.profile_id, k[0], k[2], result.factors[k[:2]], range_factors=(lo, hi),
                               n_points=n_fit, fit_mdape_frac=float(np.median(fit_ape)) if fit_ape else None,
                               holdout_mdape_frac=float(np.median(hold_ape)) if hold_ape else None,
                               source_url=url, notes=notes, accessed=accessed,
                               format_scales=result.format_scales[k[0]]))
    return out, result


def range_rows(rows: Iterable[RowResult]) -> list[RowResult]:
    """The rows the range factors are fitted on: held-out speed rows (TTFT excluded: its spread is the queueing
    model's, not the efficiency's)."""
    return [r for r in rows if r.point.split == "holdout" and r.point.metric != "ttft_ms"]


def range_factors(speed: list[RowResult], profile_id: str, engine: str) -> tuple[float, float]:
    """(low, high) range factors of one profile: the 10th / 90th percentiles of measured / predicted speed on the
    held-out rows (`range_rows`), partially pooled by source count, never narrower than all rows' spread around
    the profile's median, clipped to low <= 1 <= high.

    A range says where a deployment the fit has never seen lands, and the held-out rows come in whole sources
    whose offsets differ more than rows within a source do. So (1) each source weighs the same
    (`_source_weighted_percentiles`): a source is one draw of that offset, whatever its row count; (2) on the log
    scale the 10th, 50th and 90th percentiles go from all rows to the engine's to the profile's, each level moving
    towards its own by n / (n + RANGE_POOL_SOURCES), n its distinct sources (partial pooling, as the factors
    themselves are fitted [1]; a level with fewer than MIN_RANGE_ROWS rows, or the same rows as the level above,
    keeps the pooled values); and (3) the low / high end lies at least as far below / above the profile's pooled
    median as all rows' p10 / p90 lie from theirs: a profile's few sources say where its centre is, but how far a
    new source falls from it is known only from many sources. Before, a profile's own percentiles from 8 rows of
    2 sources on set its range: SGLang on NVIDIA datacenter GPUs (3 held-out sources, all faster than predicted)
    had a low factor of 1.00, no pessimistic end at all, and ranges covered 69 % of the rows of a source left
    out of them (now 85 %; every source of data/measured predicted by a refit without it, 70 -> 79 %:
    `benchmarks/bench_ranges.py`, docs/performance.md "Ranges").

    [1] A. Gelman et al., "Bayesian Data Analysis", 3rd ed., ch. 5 (hierarchical models, partial pooling), 2013.
    """
    if not speed:
        return DEFAULT_RANGE
    levels = (speed, [r for r in speed if r.point.engine == engine], [r for r in speed if r.profile_id == profile_id])
    pooled = np.log(_source_weighted_percentiles(levels[0], (10.0, 50.0, 90.0)))
    est, parent = pooled, levels[0]
    for rows in levels[1:]:
        if len(rows) < MIN_RANGE_ROWS or len(rows) == len(parent):
            continue
        n = len({r.point.source_url for r in rows})
        w = n / (n + RANGE_POOL_SOURCES)
        est = w * np.log(_source_weighted_percentiles(rows, (10.0, 50.0, 90.0))) + (1.0 - w) * est
        parent = rows
    low = min(est[0], est[1] + pooled[0] - pooled[1])  # at least all rows' spread below the median
    high = max(est[2], est[1] + pooled[2] - pooled[1])  # ... and above it
    return min(float(np.exp(low)), 1.0), max(float(np.exp(high)), 1.0)


def _source_weighted_percentiles(rows: list, percents: tuple[float, ...]) -> tuple[float, ...]:
    """Percentiles of the speed ratios with every source weighing the same (each row 1 / its source's row count):
    a 27-row sweep from one page must not outvote three other sources (a range is for a source not yet seen)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.point.source_url] = counts.get(r.point.source_url, 0) + 1
    values = np.array([speed_ratio(r) for r in rows])
    weights = np.array([1.0 / counts[r.point.source_url] for r in rows])
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = (np.cumsum(weights) - 0.5 * weights) / weights.sum()
    return tuple(float(np.interp(p / 100.0, cumulative, values)) for p in percents)


def speed_ratio(row: Any) -> float:
    """Measured / predicted speed of a RowResult: tokens/s as is, TPOT inverted (a slower step = a lower speed)."""
    return 1.0 / row.ratio if row.point.metric == "tpot_ms" else row.ratio


def profile_factors(profile: EfficiencyProfile) -> tuple[float, ...]:
    """A profile's factors in PARAMS order (natural units)."""
    moe = profile.moe_mbu_frac if profile.moe_mbu_frac is not None else profile.mbu_frac
    comm_bw = profile.comm_bw_frac if profile.comm_bw_frac is not None else 1.0
    return (profile.mbu_frac, moe, profile.mfu_decode_frac, profile.mfu_prefill_frac, comm_bw,
            profile.overhead_overlap_frac or 0.0, profile.step_overhead_ms, profile.comm_latency_us,
            profile.moe_expert_overhead_us or 0.0, profile.layer_overhead_us or 0.0,
            profile.request_overhead_ms or 0.0, NO_LARGE_MESSAGE_US if profile.comm_half_us is None
            else profile.comm_half_us, profile.eager_launch_us or NO_EAGER_US)


USER_FIT = FitSettings(offset_sd=3.0, loss_scale=2.0)  # the user's own runs: trust the data more than the prior


def calibrate_profile(catalog: Catalog, points: list[MeasuredPoint], *, name: str,
                      settings: FitSettings = USER_FIT) -> tuple[EfficiencyProfile, list[tuple[MeasuredPoint,
                                                                                                  float, float]]]:
    """Refit the catalog profile of the points' engine and GPU to the user's points.

    All points must share one engine and GPU. The catalog profile is the prior (each factor
    may move about offset_sd on the link scale per unit of evidence); with a single point
    only the factors that point depends on move. Returns the new profile (gpu_match = the
    GPU id) and (point, predicted before, predicted after) per point.
    """
    _check_profile_id(name)
    models = []
    for p in points:
        m = model_row(catalog, p)
        if not isinstance(m, RowModel):
            raise InvalidInputError(f"point {p.row_id}: {m.reason}")
        models.append(m)
    if not models:
        raise InvalidInputError("no measured points to calibrate on")
    keys = {(m.setup.engine_id, m.setup.gpu.gpu_id) for m in models}
    if len(keys) != 1:
        raise InvalidInputError(f"calibrate one engine on one GPU at a time; got {sorted(keys)}")
    base = models[0].setup.profile
    prior = _to_link(profile_factors(base))
    closed = [m for m in models if m.serve is None]
    stack = stack_terms([m.terms for m in closed]) if closed else None
    measured = np.array([m.point.measured_value for m in closed])
    scale = {id(m): mfu_scale(base, gemm_format_of(m.setup.candidate)) for m in models}  # the catalog's, kept
    closed_scale = np.array([scale[id(m)] for m in closed])

    def residuals(x: np.ndarray) -> np.ndarray:
        natural = _from_link(prior + x)
        data = []
        if stack is not None:
            rows = _scaled(np.broadcast_to(natural, (len(closed), len(PARAMS))), closed_scale)
            data.append(np.log(_predict_rows(stack, rows) / measured))
        for m in models:
            if m.serve is not None:
                value = m.predict(_efficiency(_scaled(natural, scale[id(m)])))
                data.append(np.array([math.log(value / m.point.measured_value)]))
        return np.concatenate([_robust(np.concatenate(data), settings.loss_scale), x / settings.offset_sd])

    sol = least_squares(residuals, np.zeros(len(PARAMS)), method="trf", max_nfev=400)
    natural = tuple(float(v) for v in _from_link(prior + sol.x))
    before = [m.predict(_efficiency(_scaled(_from_link(prior), scale[id(m)]))) for m in models]
    after = [m.predict(_efficiency(_scaled(np.array(natural), scale[id(m)]))) for m in models]
    ape = [abs(a - m.point.measured_value) / m.point.measured_value for a, m in zip(after, models, strict=True)]
    gpu_id = models[0].setup.gpu.gpu_id
    low, high = user_range(base, [_speed_ratio(m.point, a) for m, a in zip(models, after, strict=True)])
    urls = sorted({m.point.source_url for m in models if (m.point.source_url or "").startswith(("http://", "https://"))})
    labels = sorted({m.point.row_id.rsplit(":", 1)[0] for m in models})
    profile = profile_row(name, models[0].setup.engine_id, gpu_id, natural,
                          range_factors=(low, high), n_points=len(models),
                          fit_mdape_frac=float(np.median(ape)), holdout_mdape_frac=None,
                          source_url=urls[0] if len(urls) == 1 else USER_MEASUREMENT_URL,
                          format_scales=[mfu_scale(base, f) for f in GEMM_FORMATS],
                          notes=f"user measurement ({', '.join(labels)[:200]}): calibration on {len(models)} point(s) "
                                f"for {models[0].setup.engine_id} on {gpu_id}; prior {base.profile_id}; range "
                                f"{low:.3f}-{high:.3f} from the points' residuals (spread x (1 + 0.25/sqrt(n)), "
                                f"within the prior's {base.range_low_factor:.3f}-{base.range_high_factor:.3f})")
    return profile, [(m.point, b, a) for m, b, a in zip(models, before, after, strict=True)]


# A user's own points have no published source: the profile cites the tool that measured them.
USER_MEASUREMENT_URL = "https://docs.vllm.ai/en/latest/cli/bench/serve.html"


def _speed_ratio(point: MeasuredPoint, predicted: float) -> float:
    """measured / predicted as a speed (a latency row inverted), the convention of the range factors."""
    ratio = point.measured_value / predicted
    return 1.0 / ratio if point.metric in ("ttft_ms", "tpot_ms") else ratio


def user_range(base: EfficiencyProfile, ratios: list[float]) -> tuple[float, float]:
    """Range factors of a user calibration: the spread of its points' measured/predicted speed after the fit,
    widened by (1 + 0.25/sqrt(n)) for the few points it has, containing 1, and never wider than the prior's
    range (`base`, fitted on many sources). One point gives about +-25 %, nine about +-8 %."""
    widen = 1.0 + 0.25 / math.sqrt(len(ratios))
    low = min(min(ratios), 1.0) / widen
    high = max(max(ratios), 1.0) * widen
    return max(low, base.range_low_factor), min(high, base.range_high_factor)


def _efficiency(natural: np.ndarray) -> Efficiency:
    """The performance model's Efficiency from factors in PARAMS order and natural units (ms, us), shape (..., 13); the
    large-message bandwidth is the sourced one (`step_work.COMM_LARGE_MESSAGE_BW_FRAC`), not fitted."""
    v = {name: np.asarray(natural, dtype=float)[..., i] for i, name in enumerate(PARAMS)}
    return Efficiency(mbu_frac=v["mbu_frac"], mfu_decode_frac=v["mfu_decode_frac"],
                      mfu_prefill_frac=v["mfu_prefill_frac"], step_overhead_s=v["step_overhead_ms"] / units.MS_PER_S,
                      comm_latency_s=v["comm_latency_us"] / units.MILLION, moe_mbu_frac=v["moe_mbu_frac"],
                      comm_bw_frac=v["comm_bw_frac"], expert_overhead_s=v["moe_expert_overhead_us"] / units.MILLION,
                      overhead_overlap_frac=v["overhead_overlap_frac"],
                      layer_overhead_s=v["layer_overhead_us"] / units.MILLION,
                      request_overhead_s=v["request_overhead_ms"] / units.MS_PER_S,
                      comm_large_bw_frac=COMM_LARGE_MESSAGE_BW_FRAC, comm_half_s=v["comm_half_us"] / units.MILLION,
                      eager_launch_s=v["eager_launch_us"] / units.MILLION)


def replace_profiles(catalog: Catalog, profiles: Iterable[EfficiencyProfile]) -> Catalog:
    """The catalog with its efficiency table replaced (used by the fit to validate new factors)."""
    return replace(catalog, efficiency=tuple(profiles))

