"""The configuration search: the cheapest fleet that meets the latency targets at the scenario's percentile.

For one model it enumerates, as numpy arrays through the one replica evaluator
(`planner.perf.evaluator`): GPU (the scenario's, or every priced GPU when gpu = "auto"), engine
(every engine that runs the weights on that GPU, unless one is fixed), weight precision and KV
dtype under the quality policy, GPUs per replica, every layout the engine runs on them (TP x PP
x DP, expert parallelism, llama.cpp's layer split; from engines.csv), and the engine's batch
limit. For each configuration the queueing model (`planner.perf.queueing`) gives the highest
request rate one engine instance serves with TTFT and TPOT at the percentile within the
targets; the fleet is the number of replicas the design rate needs at that rate (plus headroom
and N+k), and its monthly cost at the scenario's tier is the objective. Ties go to fewer GPUs,
then to lower latency. Whatever the scenario fixes stays fixed.

The search is exhaustive over the enumerated space, so its choice is the minimum over that space
by construction: the coarse batch limits are evaluated for every configuration, the finer ones
(FINE_BATCH_LIMITS) by branch and bound, whose rate bound only skips what could neither beat nor
tie the cheapest fleet; `tests/test_optimizer.py` checks it against plans with the replica size,
precision or batch limit forced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from planner import units
from planner.data.catalog import Catalog, Gpu, KvDtype, Model, Precision
from planner.errors import DoesNotFitError, InvalidInputError, UnreachableTargetError, counted
from planner.perf import evaluator, speculative
from planner.perf.estimate import LAYOUT_TIE_FRAC, layout_simplicity_of
from planner.perf.evaluator import CandidateSet, Layout

QUALITY_POLICIES = {"lossless": ("none",), "low-risk": ("none", "low"), "any": ("none", "low", "moderate", "high")}
LATENCY_PERCENTILES = (0.5, 0.9, 0.95, 0.99)
GPUS_PER_REPLICA = (1, 2, 4, 8, 16, 32, 64)  # one GPU up to eight 8-GPU nodes
BATCH_LIMITS = (None, 128)  # the engine's default max_num_seqs (what fits, where less) and 128, for every configuration
# the finer batch limits a configuration is also tried at when its rate bound says it could beat or tie the cheapest
# fleet found (`_refine_batch_limits`), below what fits and the engine's default: 2^k and 1.5 x 2^k from 16 to 2,048,
# about sqrt(2) apart and multiples of 8 (vLLM and SGLang capture decode CUDA graphs at multiples of 8)
FINE_BATCH_LIMITS = tuple(sorted({2 ** k for k in range(4, 12)} | {3 * 2 ** k for k in range(3, 10)}))
_FINE = np.array([c for c in FINE_BATCH_LIMITS if c not in BATCH_LIMITS], dtype=float)
MAX_ALTERNATIVES_PER_AXIS = 6  # the cheapest other values of each axis that the plan reports
# what stops a configuration's rate going higher, in the plan's words
BOUND_NAMES = {"ttft": "ttft_target_s", "tpot": "tpot_target_s",
               "ttft+tpot": "tpot_target_s+ttft_target_s",
               "saturation": "max_concurrency"}


@dataclass(frozen=True)
class SearchSpace:
    """What the search may choose; a fixed scenario field narrows its axis to one value."""

    model: Model
    gpus: tuple[Gpu, ...]
    engines: tuple[str, ...] | None  # None: every engine that runs the weights on the GPU
    precisions: tuple[Precision, ...]
    kv_dtypes: tuple[KvDtype | None, ...]  # None: the engine's default for the precision
    gpu_counts: tuple[int, ...]
    tp: int | None = None
    pp: int | None = None
    expert_parallel: bool | None = None  # None: searched (MoE models)
    batch_limits: tuple[int | None, ...] = BATCH_LIMITS
    profile: str | None = None
    native_only: bool = False  # only formats the GPU computes natively (quality policies other than "any")
    # speculative decoding (`speculative.resolve`; None: off): every step of the search is the speculative one
    # where it helps, per batch, on the engines that run it (`speculative.ENGINES`), the plain one elsewhere
    speculative: speculative.SpeculativeSetting | None = None


@dataclass(frozen=True)
class Traffic:
    """The load and request shape the fleet must serve."""

    input_tokens: float
    output_tokens: float
    design_rate_per_s: float  # the rate a fixed fleet is sized for (peak hour, offline share smoothed)
    average_rate_per_s: float
    hourly_factors: tuple[float, ...] | None = None  # per-hour load / average when the fleet follows the day
    prefill_tokens: float | None = None  # prompt tokens a request makes the engine compute (after cache hits)
    input_tokens_cv: float = 0.0
    output_tokens_cv: float = 0.0
    headroom_frac: float = 0.0
    redundancy_replicas: int = 0

    @property
    def prompt_tokens(self) -> float:
        """Prompt tokens a request makes the engine compute (at least 1)."""
        return max(self.prefill_tokens if self.prefill_tokens is not None else self.input_tokens, 1.0)


@dataclass(frozen=True)
class Targets:
    ttft_target_s: float
    tpot_target_s: float
    percentile: float = 0.95

    def __post_init__(self) -> None:
        if self.percentile not in LATENCY_PERCENTILES:
            raise InvalidInputError(f"latency_percentile must be one of {', '.join(map(str, LATENCY_PERCENTILES))}, "
                                    f"got {self.percentile!r}")


@dataclass(frozen=True)
class Option:
    """One configuration, sized and costed."""

    gpu_id: str
    engine: str
    precision: str
    kv_dtype: str
    layout: Layout
    max_num_seqs: int
    capacity_requests_per_s_per_replica: float  # at the targets, with queueing
    replicas: int  # fixed fleet: serving + N+k; autoscaled: the peak hour's
    total_gpus: int
    replica_hours_per_day: float
    usd_per_gpu_hour: float
    provider: str | None
    monthly_usd: float
    ttft_s_at_percentile: float  # at the fleet's design load
    tpot_s_at_percentile: float
    bound_by: str
    utilisation_frac: float  # design load per instance / the instance's saturation rate
    quality_risk: str
    operating_concurrency: int = 1  # mean running batch of one instance at the design load (rounded up)
    latency: dict[str, float] = field(default_factory=dict)  # ttft/tpot p50..p99 at the design load, seconds

    @property
    def num_gpus_per_replica(self) -> int:
        return self.layout.gpus

    def to_dict(self) -> dict:
        return {"gpu": self.gpu_id, "engine": self.engine, "precision": self.precision, "kv_dtype": self.kv_dtype,
                "num_gpus_per_replica": self.num_gpus_per_replica, "layout": self.layout.to_dict(),
                "max_num_seqs": self.max_num_seqs, "replicas": self.replicas, "total_gpus": self.total_gpus,
                "capacity_requests_per_s_per_replica": self.capacity_requests_per_s_per_replica,
                "usd_per_gpu_hour": self.usd_per_gpu_hour, "provider": self.provider, "monthly_usd": self.monthly_usd,
                "ttft_s_at_percentile": self.ttft_s_at_percentile, "tpot_s_at_percentile": self.tpot_s_at_percentile,
                "bound_by": self.bound_by, "utilisation_frac": self.utilisation_frac,
                "quality_risk": self.quality_risk, "operating_concurrency": self.operating_concurrency,
                "latency": dict(self.latency)}


@dataclass(frozen=True)
class SearchResult:
    best: Option
    alternatives: tuple[Option, ...]  # the cheapest option for each other value of each searched axis
    explanation: tuple[str, ...]
    n_configurations: int
    n_fitting: int
    n_meeting_targets: int
    elapsed_s: float
    options: tuple[Option, ...] = field(default=(), repr=False)  # the cheapest few, best first
    frontier: tuple[FrontierPoint, ...] = ()  # cost vs latency: each point faster than every cheaper one


@dataclass(frozen=True)
class FrontierPoint:
    """A configuration on the cost-latency frontier (latencies at the percentile under the design load)."""

    monthly_usd: float
    total_gpus: int
    ttft_s: float
    tpot_s: float
    configuration: str


PriceFn = Callable[[str], tuple[float, str | None]]  # gpu_id -> (USD per GPU-hour at the tier, provider); NaN: none


def option_candidates(catalog: Catalog, model: Model, opt: Option, *, profile: str | None = None
                      ) -> list[evaluator.Candidate]:
    """The evaluator's candidate for a chosen option (to evaluate or simulate it alone)."""
    return evaluator.candidates(catalog, model.arch, model.native_precision, gpus=[catalog.gpu(opt.gpu_id)],
                                engines=[catalog.engine(opt.engine)], precisions=[catalog.precision(opt.precision)],
                                kv_dtypes=[catalog.kv_dtype(opt.kv_dtype)], gpu_counts=[opt.num_gpus_per_replica],
                                layouts=lambda e, g, n: [opt.layout], max_num_seqs=opt.max_num_seqs,
                                profile_id=profile)


def quality_ok(precision: Precision, policy: str) -> bool:
    return precision.quality_risk in QUALITY_POLICIES[policy]


def precisions_for(catalog: Catalog, model: Model, policy: str, fixed: str | None) -> tuple[Precision, ...]:
    """The weight precisions the policy allows (the model's native one always; a fixed one alone)."""
    if policy not in QUALITY_POLICIES:
        raise InvalidInputError(f"quality_policy must be one of {', '.join(QUALITY_POLICIES)}, got {policy!r}")
    if fixed is not None:
        return (catalog.precision(fixed),)
    native = model.native_precision
    return tuple(p for p in catalog.precisions.values() if quality_ok(p, policy) or p.precision_id == native)


def kv_dtypes_for(catalog: Catalog, policy: str, fixed: str | None) -> tuple[KvDtype | None, ...]:
    """KV dtypes to try: the engine default, plus the 8-bit caches beyond `lossless`."""
    if fixed is not None:
        return (catalog.kv_dtype(fixed),)
    if policy == "lossless":
        return (None,)
    extra = [k for k in catalog.kv_dtypes.values()
             if k.bytes_per_elem < 2 and (policy == "any" or k.bytes_per_elem >= 1)]
    return (None, *extra)


def _fleet(cap_per_s: np.ndarray, traffic: Traffic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(replicas, replica-hours per day, serving replicas at the design rate) for each capacity (0: infeasible)."""
    h, k = traffic.headroom_frac, traffic.redundancy_replicas
    with np.errstate(divide="ignore", invalid="ignore"):
        serving = np.ceil(traffic.design_rate_per_s * (1 + h) / cap_per_s * (1 - 1e-12))
        if traffic.hourly_factors is None:
            total = serving + k
            hours = total * units.HOURS_PER_DAY
        else:
            f = np.asarray(traffic.hourly_factors, dtype=float)
            per_hour = np.ceil(traffic.average_rate_per_s * f[None, :] * (1 + h) / cap_per_s[:, None] * (1 - 1e-12))
            per_hour = per_hour + np.where(per_hour > 0, k, 0)
            total = per_hour.max(axis=1)
            hours = per_hour.sum(axis=1)
    return total, hours, serving


def step_time_fn(arch, cs: CandidateSet, setting: speculative.SpeculativeSetting | None,
                 traffic: Traffic) -> evaluator.StepFn:
    """The step model every queueing call of the search runs on: `evaluator.step_time_fn` without speculation;
    with it, `speculative.step_time_fn` (per output token, the plain step where speculation loses at that batch)
    for the configurations whose engine runs drafts (`speculative.ENGINES`), the plain step for the others."""
    kw = dict(input_tokens=traffic.input_tokens, output_tokens=traffic.output_tokens)
    if setting is None:
        return evaluator.step_time_fn(arch, cs, **kw)
    drafts = np.array([cs.bases[b].engine.engine_id in speculative.ENGINES for b in cs.base_index], dtype=bool)
    if drafts.all():
        return speculative.step_time_fn(arch, cs, setting, **kw)
    plain_fn = evaluator.step_time_fn(arch, cs, **kw)
    if not drafts.any():
        return plain_fn
    idx, n = np.flatnonzero(drafts), len(drafts)
    spec_fn = speculative.step_time_fn(arch, cs.take(idx), setting, **kw)

    def step_s(decode_batch: np.ndarray, prefill_tokens: np.ndarray) -> np.ndarray:
        b = np.broadcast_to(np.asarray(decode_batch, dtype=float), (n,))
        p = np.broadcast_to(np.asarray(prefill_tokens, dtype=float), (n,))
        out = np.array(plain_fn(b, p), dtype=float)
        out[idx] = spec_fn(b[idx], p[idx])
        return out

    return step_s


@dataclass(frozen=True)
class _Capacities:
    """The volume-independent half of a search: every fitting configuration's rate at the targets."""

    sub: CandidateSet
    cap: np.ndarray  # requests/s per replica at the targets
    bound: np.ndarray
    max_batch: np.ndarray
    budget: np.ndarray
    n_total: int
    n_fit: int
    # batch-limit refinement (`_refine_batch_limits`): each row's group (same base and layout, any batch limit), per
    # group a row with the largest batch limit, the batch that fits, an upper bound on its replica's rate at any
    # batch limit, and which finer limits were tried; None where the scenario fixes max_num_seqs
    group: np.ndarray | None = None
    group_row: np.ndarray | None = None
    group_batch: np.ndarray | None = None
    group_rate_bound: np.ndarray | None = None
    group_tried: np.ndarray | None = None  # (groups, finer limits): evaluated, or not below what fits and the default


_CAPACITY_CACHE: dict[tuple, tuple[Catalog, _Capacities]] = {}
_CAPACITY_CACHE_SIZE = 64


def _capacity_key(catalog: Catalog, space: SearchSpace, targets: Targets, traffic: Traffic) -> tuple:
    return (id(catalog), space.model.model_id, tuple(g.gpu_id for g in space.gpus), space.engines,
            tuple(p.precision_id for p in space.precisions),
            tuple(k.kv_dtype_id if k is not None else None for k in space.kv_dtypes), space.gpu_counts, space.tp,
            space.pp, space.expert_parallel, space.batch_limits, space.profile, space.native_only, targets,
            traffic.input_tokens, traffic.output_tokens, traffic.prefill_tokens, traffic.input_tokens_cv,
            traffic.output_tokens_cv, id(space.model), space.speculative)


def _capacities(catalog: Catalog, space: SearchSpace, targets: Targets, traffic: Traffic) -> _Capacities:
    """Cached per catalog, search space, targets and request shape: a traffic-volume change (the app's slider)
    re-costs the fleets without re-running the queueing model."""
    key = _capacity_key(catalog, space, targets, traffic)
    hit = _CAPACITY_CACHE.get(key)
    if hit is not None and hit[0] is catalog:
        return hit[1]
    value = _compute_capacities(catalog, space, targets, traffic)
    if len(_CAPACITY_CACHE) >= _CAPACITY_CACHE_SIZE:
        _CAPACITY_CACHE.pop(next(iter(_CAPACITY_CACHE)))
    _CAPACITY_CACHE[key] = (catalog, value)
    return value


def _compute_capacities(catalog: Catalog, space: SearchSpace, targets: Targets, traffic: Traffic) -> _Capacities:
    model, arch = space.model, space.model.arch
    engines = [catalog.engine(e) for e in space.engines] if space.engines else list(catalog.engines.values())
    bases = evaluator.candidates(catalog, arch, model.native_precision, gpus=space.gpus, engines=engines,
                                 precisions=space.precisions, kv_dtypes=space.kv_dtypes, gpu_counts=[1],
                                 layouts=lambda e, g, n: [Layout()], profile_id=space.profile)

    def layouts_of(base: evaluator.Candidate) -> list[Layout]:
        out = []
        for n in space.gpu_counts:
            for lay in evaluator.layouts_for(base.engine, arch, base.gpu, n):
                if space.tp is not None and lay.tp != space.tp or space.pp is not None and lay.pp != space.pp:
                    continue
                if space.expert_parallel is not None and lay.ep != space.expert_parallel:
                    continue
                out.append(lay)
        return out

    if space.native_only:
        bases = [b for b in bases if b.fmt.native or b.precision.precision_id == model.native_precision
                 or b.precision.kind == "gguf"]
    cs = CandidateSet.expand(bases, layouts_of, space.batch_limits)
    n_total = len(cs)
    if n_total == 0:
        raise InvalidInputError(f"no engine runs {model.model_id} on {', '.join(g.gpu_id for g in space.gpus)} with "
                                f"the precisions, KV dtypes and layout asked for")
    ev = evaluator.evaluate(arch, cs, input_tokens=traffic.input_tokens, output_tokens=traffic.output_tokens,
                            context_length_tokens=model.context_length_tokens)
    # a batch limit above what fits is the same configuration as the engine default: keep one
    # (the comparison in parentheses: `|` binds tighter than `<=`, which kept the default only where it fitted)
    seqs_fit = ev.fits & ((cs.max_num_seqs <= np.maximum(ev.max_concurrency, 1)) | (
        cs.max_num_seqs == np.array([cs.bases[i].max_num_seqs for i in cs.base_index])))
    fit_idx = np.flatnonzero(seqs_fit)
    if fit_idx.size == 0:
        raise DoesNotFitError(f"{model.model_id} does not fit: none of the {n_total:,} configurations searched "
                              f"({_space_words(space)}) holds the weights and one sequence's KV cache; allow more "
                              f"GPUs per replica or lighter precisions")
    sub = cs.take(fit_idx)
    step = step_time_fn(arch, sub, space.speculative, traffic)
    budget = np.array([sub.bases[i].engine.max_num_batched_tokens or 1e12 for i in sub.base_index], dtype=float)
    max_batch = ev.max_concurrency[fit_idx].astype(float)
    cap, bound = _slo_capacity(step, sub, max_batch, budget, targets, traffic)
    found = _Capacities(sub, cap, bound, max_batch, budget, n_total, int(fit_idx.size))
    return _with_groups(found, step, traffic) if None in space.batch_limits else found


def _slo_capacity(step: evaluator.StepFn, cs: CandidateSet, max_batch: np.ndarray, budget: np.ndarray,
                  targets: Targets, traffic: Traffic) -> tuple[np.ndarray, np.ndarray]:
    """(requests/s per replica at the targets, what binds it, in the plan's words) of each configuration."""
    from planner.perf.queueing import max_rate_meeting_slo  # scipy.special: loaded when a search runs, not at import

    # the per-request overhead outside the GPU steps (API server, tokenisation) comes off the TTFT target
    ttft_room = np.maximum(targets.ttft_target_s - request_overhead_s(cs), 1e-9)
    rate, bound = max_rate_meeting_slo(step, ttft_target_s=ttft_room, tpot_target_s=targets.tpot_target_s,
                                       percentile=targets.percentile, input_tokens=traffic.prompt_tokens,
                                       output_tokens=traffic.output_tokens, max_batch=max_batch, token_budget=budget,
                                       input_tokens_cv=traffic.input_tokens_cv,
                                       output_tokens_cv=traffic.output_tokens_cv)
    bound = np.array([BOUND_NAMES.get(b, b) for b in np.asarray(bound)], dtype=object)
    return cs.dp * np.asarray(rate, dtype=float), bound


def _with_groups(found: _Capacities, step: evaluator.StepFn, traffic: Traffic) -> _Capacities:
    """`found` with its batch-limit groups and each group's rate bound: no batch limit lets an instance serve more
    than the lower of its full batch's completions at the largest batch that fits (b / (O x mean full-batch step)
    grows with b) and the prompt tokens a budget of one decode sequence admits (the spare budget shrinks as b grows):
    the saturation rate at any limit lies below both, and the SLO-bound rate below that."""
    sub = found.sub
    keys = np.stack([sub.base_index, sub.tp, sub.pp, sub.dp, sub.ep, sub.layer_split, sub.attn_dp], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.lexsort((found.max_batch, group))  # by group, each group's largest batch last
    row = order[np.flatnonzero(np.r_[np.diff(group[order]) != 0, True])] if group.size else np.zeros(0, int)
    n = len(sub)
    by_batch = _completion_rate(step, found.max_batch[row][group], traffic, found.budget)
    spare = np.maximum(found.budget - 1.0, 1.0)
    by_budget = spare / (float(traffic.prompt_tokens) * step(np.ones(n), spare))
    bound = (sub.dp * np.minimum(by_batch, by_budget))[row]
    defaults = np.array([b.max_num_seqs for b in sub.bases], dtype=float)[sub.base_index[row]]
    widest = found.max_batch[row]
    allowed = (_FINE[None, :] < widest[:, None]) & (_FINE[None, :] < defaults[:, None])
    return replace(found, group=group, group_row=row, group_batch=widest, group_rate_bound=bound,
                   group_tried=~allowed)


def _completion_rate(step: evaluator.StepFn, batch: np.ndarray, traffic: Traffic, budget: np.ndarray) -> np.ndarray:
    """Requests/s a full batch of `batch` sequences completes (b / (O x its mean step)): above any SLO-bound rate at
    that batch limit."""
    from planner.perf.queueing import full_batch_step_s

    n = len(batch)
    inp, out = np.full(n, float(traffic.prompt_tokens)), np.full(n, float(traffic.output_tokens))
    return batch / (out * full_batch_step_s(step, batch, inp, out, budget, traffic.input_tokens_cv))


def _row_prices(found: _Capacities, price_of: PriceFn) -> tuple[np.ndarray, dict, list[str]]:
    """(USD per GPU-hour of each row, price_of per GPU id, each base's GPU id)."""
    gpu_ids = [found.sub.bases[i].gpu.gpu_id for i in range(len(found.sub.bases))]
    prices = {g: price_of(g) for g in set(gpu_ids)}
    price = np.array([prices[gpu_ids[i]][0] for i in found.sub.base_index], dtype=float)
    if not np.isfinite(price).any():  # no GPU searched has a price at this tier: rank by GPU-hours
        price = np.ones_like(price)
    return price, prices, gpu_ids


def _monthly_usd(cap: np.ndarray, gpus_per_replica: np.ndarray, price: np.ndarray, traffic: Traffic) -> np.ndarray:
    _, hours, _ = _fleet(np.where(cap > 0, cap, np.nan), traffic)
    return hours * gpus_per_replica * units.DAYS_PER_MONTH * price


def _refine_batch_limits(arch, space: SearchSpace, targets: Targets, traffic: Traffic, found: _Capacities,
                         price_of: PriceFn) -> _Capacities:
    """Branch and bound over the finer batch limits (FINE_BATCH_LIMITS, below what fits and the engine's default):
    a (configuration group, limit) pair is evaluated only when its rate bound (the group's, `_with_groups`, and the
    limit's own full-batch completions) prices a fleet at or below the cheapest found, so nothing the bound rules out
    could have been cheaper or tied. At the traffic volume asked; the pairs evaluated are remembered, so a later
    volume (the app's slider) evaluates only those it newly admits, and every volume's choice is the one an
    exhaustive search over the finer limits would make."""
    if found.group is None:
        return found
    price, _, _ = _row_prices(found, price_of)
    gpus = found.sub.tp * found.sub.pp * found.sub.dp
    monthly = _monthly_usd(found.cap, gpus, price, traffic)
    if not np.isfinite(monthly).any():
        return found
    best = round(float(np.nanmin(monthly)), 2)
    r = found.group_row
    lower = np.round(_monthly_usd(found.group_rate_bound, gpus[r], price[r], traffic), 2)
    todo = np.flatnonzero((lower <= best) & ~found.group_tried.all(axis=1))
    if todo.size == 0:
        return found
    g_of, c_of = np.nonzero(~found.group_tried[todo])
    groups, limits, idx = todo[g_of], _FINE[c_of], r[todo[g_of]]
    new = replace(found.sub.take(idx), max_num_seqs=limits)
    # each limit's own bound (its full batch's completions) rules out the small limits of fast-decoding groups
    bound_at = np.minimum(_completion_rate(step_time_fn(arch, new, space.speculative, traffic), limits, traffic,
                                           found.budget[idx]) * new.dp, found.group_rate_bound[groups])
    worth = np.flatnonzero(np.round(_monthly_usd(bound_at, gpus[idx], price[idx], traffic), 2) <= best)
    if worth.size == 0:
        return found
    tried = found.group_tried.copy()
    tried[groups[worth], c_of[worth]] = True
    groups, limits, idx, new = groups[worth], limits[worth], idx[worth], new.take(worth)
    cap, bound = _slo_capacity(step_time_fn(arch, new, space.speculative, traffic), new, limits, found.budget[idx],
                               targets, traffic)
    return replace(
        found, sub=_concat(found.sub, new), cap=np.concatenate([found.cap, cap]),
        bound=np.concatenate([found.bound, bound]), max_batch=np.concatenate([found.max_batch, limits]),
        budget=np.concatenate([found.budget, found.budget[idx]]), n_total=found.n_total + len(idx),
        n_fit=found.n_fit + len(idx), group=np.concatenate([found.group, groups]), group_tried=tried)


def _concat(a: CandidateSet, b: CandidateSet) -> CandidateSet:
    """Two candidate sets over the same bases as one."""
    c = np.concatenate
    return CandidateSet(a.bases, c([a.base_index, b.base_index]), c([a.tp, b.tp]), c([a.pp, b.pp]), c([a.dp, b.dp]),
                        c([a.ep, b.ep]), c([a.layer_split, b.layer_split]), c([a.max_num_seqs, b.max_num_seqs]),
                        c([a.attn_dp, b.attn_dp]))


def search(catalog: Catalog, space: SearchSpace, targets: Targets, traffic: Traffic, price_of: PriceFn, *,
           n_options: int = 10, extras: bool = True) -> SearchResult:
    """The cheapest configuration meeting the targets (DoesNotFitError / UnreachableTargetError when none).

    `extras=False` leaves out what only the report shows: the cost-latency frontier and the per-axis
    alternatives (with their explanation lines); the choice, its fleet and its latency are the same.
    """
    start = time.perf_counter()
    model, arch = space.model, space.model.arch
    found = _capacities(catalog, space, targets, traffic)
    refined = _refine_batch_limits(arch, space, targets, traffic, found, price_of)
    if refined is not found:  # the finer batch limits tried are kept for the next volume (the app's slider)
        key = _capacity_key(catalog, space, targets, traffic)
        if key in _CAPACITY_CACHE:
            _CAPACITY_CACHE[key] = (catalog, refined)
        found = refined
    sub, cap, bound, max_batch, budget = found.sub, found.cap, found.bound, found.max_batch, found.budget
    n_total = found.n_total
    # no GPU searched has a price at this tier: rank by GPU-hours (the plan says the tier is unavailable)
    price, prices, gpu_ids = _row_prices(found, price_of)
    ok = (cap > 0) & np.isfinite(price)
    if not ok.any():
        tried = ", ".join(str(n) for n in space.gpu_counts)
        raise UnreachableTargetError(
            f"latency targets unreachable: no configuration of {model.model_id} meets TTFT "
            f"{targets.ttft_target_s:g} s and TPOT {targets.tpot_target_s * units.MS_PER_S:g} ms at "
            f"p{round(targets.percentile * 100)} even with one request in flight ({n_total:,} configurations "
            f"searched, {found.n_fit:,} fit; tried {tried} GPUs per replica); loosen the targets, allow a lighter "
            f"precision (quality_policy) or faster GPUs")
    replicas, hours, serving = _fleet(np.where(ok, cap, np.nan), traffic)
    gpus_per_replica = sub.tp * sub.pp * sub.dp
    monthly = hours * gpus_per_replica * units.DAYS_PER_MONTH * price
    total_gpus = replicas * gpus_per_replica
    idx = np.flatnonzero(ok)
    # cheapest (to the cent), then fewer GPUs, then more spare rate per replica (lower latency)
    order = idx[np.lexsort((-cap[idx] / gpus_per_replica[idx], total_gpus[idx], np.round(monthly[idx], 2)))]
    spec = space.speculative
    order, tie_latency = _latency_tie_break(arch, sub, order, monthly, total_gpus, serving, traffic, targets,
                                            max_batch, budget, spec)
    options = [_option(sub, int(i), ev_max=None, cap=cap, replicas=replicas, hours=hours, price=price,
                       monthly=monthly, prices=prices, gpu_ids=gpu_ids, bound=bound) for i in order[:n_options]]
    best = _with_latency(arch, sub, int(order[0]), options[0], traffic, targets, max_batch, budget, serving, spec,
                         known=tie_latency)
    alternatives, frontier = [], ()
    if extras:
        alternatives = _alternatives(sub, order, best, lambda i: _option(
            sub, int(i), ev_max=None, cap=cap, replicas=replicas, hours=hours, price=price, monthly=monthly,
            prices=prices, gpu_ids=gpu_ids, bound=bound))
        frontier = _frontier(arch, sub, order, monthly, total_gpus, serving, traffic, targets, max_batch, budget,
                             spec)
    return SearchResult(best=best, alternatives=tuple(alternatives), explanation=tuple(_explain(best, alternatives)),
                        n_configurations=n_total, n_fitting=found.n_fit, n_meeting_targets=int(idx.size),
                        elapsed_s=time.perf_counter() - start, options=(best, *options[1:]), frontier=frontier)


def _design_load_latency(arch, cs: CandidateSet, idx: np.ndarray, serving: np.ndarray, traffic: Traffic,
                         max_batch: np.ndarray, budget: np.ndarray,
                         setting: speculative.SpeculativeSetting | None = None):
    """Latency percentiles of configurations `idx` with the fleet's design load spread over their serving
    instances (replicas x dp)."""
    from planner.perf.queueing import latency_percentiles  # scipy.special: loaded when a search runs, not at import

    sub = cs.take(idx)
    step = step_time_fn(arch, sub, setting, traffic)
    rate = traffic.design_rate_per_s / (np.maximum(serving[idx], 1.0) * cs.dp[idx])
    lat = latency_percentiles(step, rate_per_s=np.maximum(rate, 1e-9), input_tokens=traffic.prompt_tokens,
                              output_tokens=traffic.output_tokens, max_batch=max_batch[idx], token_budget=budget[idx],
                              input_tokens_cv=traffic.input_tokens_cv, output_tokens_cv=traffic.output_tokens_cv)
    overhead = request_overhead_s(sub)  # every request's TTFT, outside the queue
    return replace(lat, **{f"ttft_p{round(q * 100)}_s": lat.ttft_at(q) + overhead for q in LATENCY_PERCENTILES})


def request_overhead_s(cs: CandidateSet) -> np.ndarray:
    """Per configuration: the engine's fitted per-request overhead before the first token, outside the GPU steps
    (EfficiencyProfile.request_overhead_ms; 0 where not fitted)."""
    return np.array([(cs.bases[i].profile.request_overhead_ms or 0.0) / units.MS_PER_S for i in cs.base_index])


def end_to_end_s(ttft_s, tpot_s, output_tokens: float):
    """A request's end-to-end latency: TTFT + (output - 1) x TPOT (the first token arrives at TTFT)."""
    return ttft_s + (output_tokens - 1) * tpot_s


def _end_to_end_s(lat, traffic: Traffic, percentile: float) -> np.ndarray:
    """End-to-end latency at the percentile (percentile TTFT plus percentile TPOT per later token)."""
    return end_to_end_s(np.asarray(lat.ttft_at(percentile)), np.asarray(lat.tpot_at(percentile)),
                        traffic.output_tokens)


FRONTIER_CANDIDATES = 2000  # the cheapest configurations whose latency the frontier evaluates


def _frontier(arch, cs: CandidateSet, order: np.ndarray, monthly: np.ndarray, total_gpus: np.ndarray,
              serving: np.ndarray, traffic: Traffic, targets: Targets, max_batch: np.ndarray,
              budget: np.ndarray, setting: speculative.SpeculativeSetting | None = None
              ) -> tuple[FrontierPoint, ...]:
    """The cost-vs-latency frontier among the cheapest configurations that meet the targets: walking up in cost,
    each point has a lower end-to-end latency (TTFT + (output - 1) x TPOT at the percentile) than all cheaper."""
    top = order[:FRONTIER_CANDIDATES]
    lat = _design_load_latency(arch, cs, top, serving, traffic, max_batch, budget, setting)
    ttft, tpot = np.asarray(lat.ttft_at(targets.percentile)), np.asarray(lat.tpot_at(targets.percentile))
    e2e = _end_to_end_s(lat, traffic, targets.percentile)
    labels = cs.take(top).labels()
    points, best = [], math.inf
    for j in np.lexsort((e2e, monthly[top])):  # by cost, the fastest of equal cost first
        if np.isfinite(e2e[j]) and e2e[j] < best * (1 - 1e-6):
            best = e2e[j]
            i = top[j]
            b = cs.bases[int(cs.base_index[i])]
            points.append(FrontierPoint(float(monthly[i]), int(total_gpus[i]), float(ttft[j]), float(tpot[j]),
                                        f"{int(cs.tp[i] * cs.pp[i] * cs.dp[i])} x {b.gpu.gpu_id} {labels[j]}, "
                                        f"{b.precision.precision_id}/{b.kv.kv_dtype_id}, {b.engine.engine_id}, "
                                        f"batch limit {int(cs.max_num_seqs[i])}"))
    return tuple(points)


def _latency_tie_break(arch, cs: CandidateSet, order: np.ndarray, monthly: np.ndarray, total_gpus: np.ndarray,
                       serving: np.ndarray, traffic: Traffic, targets: Targets, max_batch: np.ndarray,
                       budget: np.ndarray, setting: speculative.SpeculativeSetting | None = None):
    """Among the options as cheap as the cheapest (to the cent) on as few GPUs, the lowest end-to-end latency at the
    percentile under the design load comes first: TTFT + (output - 1) x TPOT.

    Returns the order and, when there was a tie, (the tied indices, their latency), so that the winner's latency
    is read from it instead of being computed again (the queueing model is elementwise: the same figures)."""
    first = order[0]
    same = (np.round(monthly[order], 2) == np.round(monthly[first], 2)) & (total_gpus[order] == total_gpus[first])
    tied = order[same]
    if tied.size < 2:
        return order, None
    tied = tied[:512]
    lat = _design_load_latency(arch, cs, tied, serving, traffic, max_batch, budget, setting)
    e2e = _end_to_end_s(lat, traffic, targets.percentile)
    # latencies within LAYOUT_TIE_FRAC of the fastest are a tie (below the model's resolution), won by the simplest
    # layout (estimate.layout_simplicity: fewer stages, no all-to-all, fewer TP ranks), as `estimate` picks layouts
    near = e2e <= np.nanmin(e2e) * (1.0 + LAYOUT_TIE_FRAC) if np.isfinite(e2e).any() else np.zeros(e2e.shape, bool)
    simple = layout_simplicity_of(cs)[tied]
    ranked = tied[np.lexsort((e2e, simple[:, 2], simple[:, 1], simple[:, 0], ~near))]
    rest = order[~np.isin(order, ranked)]
    return np.concatenate([ranked, rest]), (tied, lat)


def _option(cs: CandidateSet, i: int, *, ev_max, cap, replicas, hours, price, monthly, prices, gpu_ids,
            bound) -> Option:
    c = cs.candidate(i)
    return Option(gpu_id=c.gpu.gpu_id, engine=c.engine.engine_id, precision=c.precision.precision_id,
                  kv_dtype=c.kv.kv_dtype_id, layout=c.layout, max_num_seqs=c.max_num_seqs,
                  capacity_requests_per_s_per_replica=float(cap[i]), replicas=int(replicas[i]),
                  total_gpus=int(replicas[i] * c.layout.gpus), replica_hours_per_day=float(hours[i]),
                  usd_per_gpu_hour=float(price[i]), provider=prices[c.gpu.gpu_id][1], monthly_usd=float(monthly[i]),
                  ttft_s_at_percentile=math.nan, tpot_s_at_percentile=math.nan, bound_by=str(np.asarray(bound)[i]),
                  utilisation_frac=math.nan, quality_risk=c.precision.quality_risk)


def _with_latency(arch, cs: CandidateSet, i: int, opt: Option, traffic: Traffic, targets: Targets,
                  max_batch: np.ndarray, budget: np.ndarray, serving: np.ndarray,
                  setting: speculative.SpeculativeSetting | None = None, known=None) -> Option:
    """The option with its latency at the percentile under the fleet's design load (per engine instance).
    `known`: (indices, their latency) already computed (the tie-break's); used when it holds `i`."""
    at = np.flatnonzero(known[0] == i) if known is not None else ()
    if len(at):
        lat, j = known[1], int(at[0])
    else:
        lat, j = _design_load_latency(arch, cs, np.array([i]), serving, traffic, max_batch, budget, setting), 0
    latency = {f"{what}_p{round(q * 100)}_s": float(np.asarray(getattr(lat, f"{what}_at")(q))[j])
               for what in ("ttft", "tpot") for q in LATENCY_PERCENTILES}
    running = float(np.asarray(lat.running_batch_mean)[j])
    return replace(opt, ttft_s_at_percentile=float(np.asarray(lat.ttft_at(targets.percentile))[j]),
                   tpot_s_at_percentile=float(np.asarray(lat.tpot_at(targets.percentile))[j]),
                   utilisation_frac=float(np.asarray(lat.utilisation_frac)[j]),
                   operating_concurrency=int(min(max(math.ceil(running), 1), max_batch[i])), latency=latency)


_AXES = (("num_gpus_per_replica", "GPUs per replica"), ("precision", "precision"), ("layout_label", "layout"),
         ("gpu_id", "GPU"), ("engine", "engine"), ("kv_dtype", "KV cache"), ("max_num_seqs", "batch limit"))


def _axis_value(opt: Option, axis: str):
    return opt.layout.label if axis == "layout_label" else getattr(opt, axis)


def _alternatives(cs: CandidateSet, order: np.ndarray, best: Option, make: Callable[[int], Option]) -> list[Option]:
    """For each axis, the cheapest option with a different value on that axis (the order is cheapest first)."""
    out: list[Option] = []
    seen: set[tuple[str, object]] = set()
    tp, pp, dp = cs.tp[order], cs.pp[order], cs.dp[order]
    gpus = (tp * pp * dp).astype(int)
    base = cs.base_index[order]
    keys = {
        "num_gpus_per_replica": gpus,
        "precision": np.array([cs.bases[b].precision.precision_id for b in base], dtype=object),
        "gpu_id": np.array([cs.bases[b].gpu.gpu_id for b in base], dtype=object),
        "engine": np.array([cs.bases[b].engine.engine_id for b in base], dtype=object),
        "kv_dtype": np.array([cs.bases[b].kv.kv_dtype_id for b in base], dtype=object),
        "max_num_seqs": cs.max_num_seqs[order].astype(int),
        "layout_label": cs.take(order).labels(),
    }
    for axis, _ in _AXES:
        mine = _axis_value(best, axis)
        values = keys[axis]
        shown = 0
        for value in dict.fromkeys(values.tolist()):
            if value == mine or (axis, value) in seen or shown >= MAX_ALTERNATIVES_PER_AXIS:
                continue
            shown += 1
            seen.add((axis, value))
            j = int(np.flatnonzero(values == value)[0])
            out.append(make(int(order[j])))
    return out


def _explain(best: Option, alternatives: Sequence[Option]) -> list[str]:
    """One line for the choice, and per searched axis what the cheapest other value would cost."""
    shape = f"{counted(best.replicas, 'replica')} of {counted(best.num_gpus_per_replica, 'GPU')}"
    lines = [f"cheapest that meets the targets: {best.total_gpus} x {best.gpu_id} ({shape}, {best.layout.label}, "
             f"{best.precision} weights, {best.kv_dtype} KV, "
             f"{best.engine}, batch limit {best.max_num_seqs}) at {best.monthly_usd:,.0f} USD/month; the targets bind "
             f"through {best.bound_by}"]
    for axis, word in _AXES:
        mine = _axis_value(best, axis)
        cands = [a for a in alternatives if _axis_value(a, axis) != mine]
        if not cands:
            continue
        alt = min(cands, key=lambda a: a.monthly_usd)
        ratio = alt.monthly_usd / best.monthly_usd if best.monthly_usd > 0 else math.inf
        lines.append(f"{word}: the best with {_axis_value(alt, axis)} instead of {mine} costs {ratio:.2f}x "
                     f"({alt.total_gpus} x {alt.gpu_id}, {alt.monthly_usd:,.0f} USD/month)")
    return lines


def _space_words(space: SearchSpace) -> str:
    gpus = ", ".join(g.gpu_id for g in space.gpus[:4]) + (" ..." if len(space.gpus) > 4 else "")
    precs = ", ".join(p.precision_id for p in space.precisions)
    counts = ", ".join(str(n) for n in space.gpu_counts)
    return f"GPUs {gpus}; precisions {precs}; {counts} GPUs per replica"


__all__ = ["BATCH_LIMITS", "GPUS_PER_REPLICA", "LATENCY_PERCENTILES", "QUALITY_POLICIES", "FrontierPoint", "Option",
           "SearchResult", "SearchSpace", "Targets", "Traffic", "end_to_end_s", "kv_dtypes_for", "option_candidates",
           "precisions_for", "search", "step_time_fn"]
