"""Model advisor: filter the catalog by task, license policy, languages, context, jurisdiction and
hardware, and rank what is left by published benchmark evidence.

Every reason a model is in or out is a `Reason` that names the data file and the source it
comes from (models.csv, licenses.csv, benchmark_scores.csv, or the hardware estimate built
from gpus.csv and efficiency.csv). Nothing is ranked on opinion: the task score is computed
from published scores only, and a model with no published score for the task is *unranked*
(shown as unknown), never scored as zero or as best.

Task score (docs/advisor.md): for each benchmark that evidences the task and has at least two
scored catalog models, a model's score becomes its mid-rank percentile among those models
(1 = best, 0 = worst, ties share the middle). A model's task score is the mean of its
percentiles with one neutral pseudo-observation of 0.5 added (additive smoothing [1]), so
evidence from one benchmark counts for less than the same standing across many. Missing
scores are left out of the mean, never imputed.

[1] P.-S. Laplace's rule of succession, as additive smoothing in C. D. Manning, P. Raghavan,
    H. Schuetze, "Introduction to Information Retrieval", Cambridge UP, 2008, section 13.2.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from planner.advice import _advisor_hardware as hw
from planner.advice.benchmarks_data import TASK_CATEGORIES, Benchmarks, TaskBenchmark
from planner.data.catalog import Catalog, License, Model
from planner.errors import InvalidInputError, require_positive, require_positive_int

NEUTRAL_PERCENTILE_FRAC = 0.5  # the median standing: the pseudo-observation of the additive smoothing [1]
MIN_SCORED_MODELS = 2  # a percentile needs at least one other scored model to compare with
UNVERIFIED_LICENSE_ID = "unverified"  # licenses.csv row for terms not yet read from a primary source

# Which benchmark categories evidence each task; "general" and "any" use every category.
TASK_EVIDENCE: dict[str, tuple[str, ...]] = {c: (c,) for c in TASK_CATEGORIES}
TASK_EVIDENCE.update({"general": TASK_CATEGORIES, "any": TASK_CATEGORIES})


def _any(lic: License) -> bool:
    return True


def _permissive(lic: License) -> bool:
    no_use_clauses = not lic.acceptable_use_policy and lic.mau_limit is None and not lic.research_only
    return lic.osi_approved or (lic.commercial_use and no_use_clauses)


LICENSE_POLICIES: dict[str, tuple[Callable[[License], bool], str]] = {
    "any": (_any, "any license"),
    "commercial": (lambda lic: lic.commercial_use, "commercial use allowed"),
    "permissive": (_permissive, "OSI-approved, or commercial use with no use policy, user cap or research-only term"),
    "osi": (lambda lic: lic.osi_approved, "OSI-approved license"),
    "no-mau-limit": (lambda lic: lic.commercial_use and lic.mau_limit is None,
                     "commercial use with no monthly-active-user threshold"),
    "research-ok": (lambda lic: lic.license_id != UNVERIFIED_LICENSE_ID, "terms verified and research use allowed"),
}


@dataclass(frozen=True)
class Constraints:
    """What the buyer needs. Empty/None fields do not constrain."""

    task: str = "any"  # a task category, "general" or "any"
    license_policy: str = "any"
    languages: tuple[str, ...] = ()  # ISO 639-1 codes the model must support
    context_tokens: int | None = None  # prompt + output one request must hold
    gpu: str | None = None
    num_gpus: int = 1
    memory_gb: float | None = None  # alternative to gpu: total accelerator memory available
    min_output_tokens_per_s_per_user: float | None = None  # needs gpu
    output_tokens: int | None = None  # generated tokens per request in the speed check (None: the task's typical
    # output from data/task_contexts.csv, or estimate()'s default when a context length is given)
    engine: str | None = None  # None: vLLM, or llama.cpp on Apple GPUs
    developer_countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-2 codes of acceptable developer jurisdictions
    open_source_only: bool = False  # require training code and data published (openness column)


Reason = hw.Reason


@dataclass(frozen=True)
class Evidence:
    """One benchmark that evidences the task: the published score, or None when unknown."""

    benchmark: str
    task_category: str
    score: float | None
    score_unit: str
    setting: str | None
    percentile_frac: float | None  # None when unknown or when fewer than two models are scored
    n_models_scored: int
    source_url: str | None
    source_accessed: dt.date | None


@dataclass(frozen=True)
class RankedModel:
    rank: int | None  # None: no published score for the task (unknown, not last)
    model_id: str
    name: str
    license_id: str
    developer_country: str | None
    task_score_frac: float | None
    benchmarks_scored: int
    benchmarks_considered: int
    evidence: tuple[Evidence, ...]
    reasons: tuple[Reason, ...]
    hardware: hw.HardwareFit | None
    known_elsewhere: tuple[Evidence, ...] = ()  # published scores on benchmarks of other tasks (what is known)


@dataclass(frozen=True)
class ExcludedModel:
    model_id: str
    name: str
    reasons: tuple[Reason, ...]  # the failing reasons first

    @property
    def failing(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.verdict == "fail")


@dataclass(frozen=True)
class Recommendation:
    constraints: Constraints
    task_categories: tuple[str, ...]
    benchmarks: tuple[str, ...]  # the benchmarks that evidence the task and can rank (two or more scores)
    ranked: tuple[RankedModel, ...]
    unranked: tuple[RankedModel, ...]
    excluded: tuple[ExcludedModel, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate_constraints(c: Constraints, catalog: Catalog) -> None:
    """InvalidInputError on the first bad field, echoing the value."""
    if c.task not in TASK_EVIDENCE:
        raise InvalidInputError(f"task must be one of {', '.join(TASK_EVIDENCE)}, got {c.task!r}")
    if c.license_policy not in LICENSE_POLICIES:
        raise InvalidInputError(f"license policy must be one of {', '.join(LICENSE_POLICIES)}, "
                                f"got {c.license_policy!r}")
    for code in c.languages:
        if not (isinstance(code, str) and len(code) == 2 and code.isalpha() and code.islower()):
            raise InvalidInputError(f"languages must be two-letter ISO 639-1 codes such as de or fr, got {code!r}")
    for code in c.developer_countries:
        if not (isinstance(code, str) and len(code) == 2 and code.isalpha() and code.isupper()):
            raise InvalidInputError(f"developer countries must be ISO 3166-1 alpha-2 codes such as FR, got {code!r}")
    require_positive_int(num_gpus=c.num_gpus)
    if c.output_tokens is not None:
        require_positive_int(output_tokens=c.output_tokens)
    if c.context_tokens is not None:
        require_positive_int(context_tokens=c.context_tokens)
        output = c.output_tokens if c.output_tokens is not None else hw.DEFAULT_OUTPUT_TOKENS
        if c.context_tokens <= output:
            raise InvalidInputError(f"context_tokens ({c.context_tokens}) must exceed output_tokens "
                                    f"({output}) so the request has a prompt")
    if c.gpu is not None and c.memory_gb is not None:
        raise InvalidInputError("give either a GPU (gpu, num_gpus) or a memory budget (memory_gb), not both")
    if c.memory_gb is not None:
        require_positive(memory_gb=c.memory_gb)
    if c.min_output_tokens_per_s_per_user is not None:
        require_positive(min_output_tokens_per_s_per_user=c.min_output_tokens_per_s_per_user)
        if c.gpu is None:
            raise InvalidInputError("a minimum speed per user needs a GPU type (speed depends on its bandwidth "
                                    "and compute); a memory budget alone cannot say how fast a model runs")
    if c.gpu is not None:
        catalog.gpu(c.gpu)
    if c.engine is not None:
        catalog.engine(c.engine)


@dataclass(frozen=True)
class LatencyHandover:
    """Latency targets to hand to the plan for the chosen hardware, and a note per target."""

    ttft_target_s: float | None
    tpot_target_s: float | None
    notes: tuple[str, ...]
    changed: bool


def _ceil_ms(seconds: float) -> float:
    return math.ceil(seconds * 1000 - 1e-9) / 1000  # whole milliseconds, rounded up so the value stays reachable


def latency_handover(fit: hw.HardwareFit | None, ttft_target_s: float | None,
                     tpot_target_s: float | None) -> LatencyHandover:
    """Targets the chosen setup can meet: each target is kept when the advisor's batch-1 estimate at the
    pessimistic end of its range meets it, else raised to that value (whole ms, rounded up) with a note
    saying which target the hardware cannot meet. Batch 1 is the best case for latency, so a target below
    it is unreachable at any load; without a GPU estimate the targets pass unchanged."""
    if fit is None or fit.mode != "gpu" or fit.ttft_s_high is None or fit.tpot_s_high is None:
        return LatencyHandover(ttft_target_s, tpot_target_s,
                               ("no GPU estimate: the latency targets are handed over unchanged",), False)
    where = f"{fit.num_gpus} x {fit.gpu_id} at {fit.precision}"
    ctx = f" for a {fit.context_tokens:,}-token request" if fit.context_tokens else ""
    out: list[float | None] = []
    notes: list[str] = []
    for label, target, best, worst in (("TTFT", ttft_target_s, fit.ttft_s, fit.ttft_s_high),
                                       ("TPOT", tpot_target_s, fit.tpot_s, fit.tpot_s_high)):
        if target is None:
            out.append(None)
            continue
        if target >= worst:
            out.append(target)
            notes.append(f"{label} target {target:g} s is met on {where} at batch 1 "
                         f"(estimate {best:.3g} s, up to {worst:.3g} s{ctx})")
        else:
            raised = _ceil_ms(worst)
            out.append(raised)
            notes.append(f"{label} target {target:g} s cannot be met on {where}: batch 1 alone takes about "
                         f"{best:.3g} s (up to {worst:.3g} s{ctx}); handing over {raised:g} s, or choose faster "
                         "hardware")
    return LatencyHandover(out[0], out[1], tuple(notes), (out[0], out[1]) != (ttft_target_s, tpot_target_s))


def _model_reason(model: Model, constraint: str, verdict: str, message: str, tag: str = "") -> Reason:
    return Reason(constraint, verdict, message, "models.csv", model.source_url, model.source_accessed, tag)


def _license_reasons(lic: License, policy: str) -> list[Reason]:
    check, wanted = LICENSE_POLICIES[policy]
    def r(verdict: str, message: str, tag: str = "") -> Reason:
        return Reason("license", verdict, message, "licenses.csv", lic.source_url, lic.source_accessed, tag)
    ok = check(lic)
    out = [r("pass" if ok else "fail", f"{lic.name}: license policy '{policy}' {'met' if ok else 'not met'}"
                                       + ("" if ok else f" (requires: {wanted})"))]
    if lic.license_id == UNVERIFIED_LICENSE_ID:
        out.append(r("caution", "license terms not verified from a primary source; check before use",
                     "license unverified"))
        return out
    out.append(r("info", f"commercial use {'allowed' if lic.commercial_use else 'not allowed'}; "
                         f"OSI-approved: {'yes' if lic.osi_approved else 'no'}"))
    if lic.mau_limit is not None:
        out.append(r("caution", f"licensees above {lic.mau_limit:,} monthly active users need a separate license",
                     f"MAU > {lic.mau_limit:,}"))
    if lic.research_only:
        out.append(r("caution", "research / non-commercial use only", "research only"))
    if lic.acceptable_use_policy:
        out.append(r("caution", "an acceptable-use policy restricts uses and must be passed on", "use policy"))
    if lic.naming_requirement:
        out.append(r("caution", f"naming/display duty: {lic.naming_requirement}", "naming duty"))
    elif lic.attribution_required:
        out.append(r("info", "attribution: keep the license and notices"))
    return out


def _model_reasons(model: Model, c: Constraints) -> list[Reason]:
    out = []
    country = model.developer_country or "unknown"
    if c.developer_countries:
        ok = model.developer_country in c.developer_countries
        out.append(_model_reason(model, "jurisdiction", "pass" if ok else "fail",
                                 f"developer {model.developer} is based in {country}; accepted: "
                                 f"{', '.join(c.developer_countries)}"))
    else:
        out.append(_model_reason(model, "jurisdiction", "info", f"developer {model.developer} is based in {country}"))
    is_open_source = model.openness == "open-source"
    out.append(_model_reason(model, "openness", "fail" if c.open_source_only and not is_open_source else "info",
                             f"openness: {model.openness}"))
    for code in c.languages:
        if not model.languages:
            count = f"; the developer states {model.languages_count} languages" if model.languages_count else ""
            out.append(_model_reason(model, "languages", "caution",
                                     f"{code}: not verifiable, models.csv lists no language codes{count}",
                                     f"{code} unverified"))
        elif code in model.languages:
            out.append(_model_reason(model, "languages", "pass", f"{code} is a supported language"))
        else:
            out.append(_model_reason(model, "languages", "fail",
                                     f"{code} is not among the supported languages ({', '.join(model.languages)})"))
    if c.context_tokens is not None:
        ok = model.context_length_tokens >= c.context_tokens
        out.append(_model_reason(model, "context", "pass" if ok else "fail",
                                 f"context window {model.context_length_tokens:,} tokens "
                                 f"{'>=' if ok else '<'} {c.context_tokens:,} required"))
    if model.strengths:
        out.append(_model_reason(model, "task", "info", f"developer-stated strengths: {', '.join(model.strengths)}"))
    return out


def percentile_frac(value: float, others: list[float], *, higher_is_better: bool) -> float:
    """Mid-rank percentile of `value` among `others` (which include it): (worse + ties/2) / (n - 1).

    1 = best, 0 = worst; tied scores share the middle of their ranks. Needs n >= 2.
    """
    n = len(others)
    if n < MIN_SCORED_MODELS:
        raise InvalidInputError(f"a percentile needs at least {MIN_SCORED_MODELS} scores, got {n}")
    worse = sum(1 for o in others if (o < value if higher_is_better else o > value))
    ties = sum(1 for o in others if o == value) - 1
    return (worse + ties / 2) / (n - 1)


def smoothed_task_score(percentiles: list[float]) -> float:
    """Mean of the percentiles with one neutral pseudo-observation: (sum + 0.5) / (k + 1) [1]."""
    if not percentiles:
        raise InvalidInputError("a task score needs at least one benchmark percentile; none means unknown")
    return (sum(percentiles) + NEUTRAL_PERCENTILE_FRAC) / (len(percentiles) + 1)


def _evidence(model_id: str, benches: list[TaskBenchmark], bench_data: Benchmarks,
              known: set[str]) -> list[Evidence]:
    out = []
    for b in benches:
        pool = [s for s in bench_data.scores_for_benchmark(b.benchmark) if s.model_id in known]
        mine = next((s for s in pool if s.model_id == model_id), None)
        p = None
        if mine is not None and len(pool) >= MIN_SCORED_MODELS:
            p = percentile_frac(mine.score, [s.score for s in pool], higher_is_better=b.higher_is_better)
        out.append(Evidence(b.benchmark, b.task_category, mine.score if mine else None, b.score_unit,
                            mine.setting if mine else None, p, len(pool),
                            mine.source_url if mine else None, mine.source_accessed if mine else None))
    return out


def _evidence_reasons(evidence: list[Evidence]) -> list[Reason]:
    out = []
    for e in evidence:
        if e.score is None or e.source_url is None or e.source_accessed is None:
            continue
        standing = (f"percentile {e.percentile_frac:.2f} of {e.n_models_scored} scored models"
                    if e.percentile_frac is not None else "the only scored model, so it cannot rank")
        setting = f" ({e.setting})" if e.setting else ""
        out.append(Reason("task", "evidence", f"{e.benchmark} {e.score:g} {e.score_unit}{setting}: {standing}",
                          "benchmark_scores.csv", e.source_url, e.source_accessed))
    return out


def _known_elsewhere(model_id: str, categories: tuple[str, ...], bench_data: Benchmarks,
                     known: set[str]) -> list[Evidence]:
    """The model's published scores on benchmarks that evidence other tasks, with their standing there."""
    others = [b for b in bench_data.benchmarks.values() if b.task_category not in categories]
    return [e for e in _evidence(model_id, others, bench_data, known) if e.score is not None]


def _known_reason(model: Model, known: list[Evidence], task: str) -> Reason:
    if known:
        text = "; ".join(f"{e.benchmark} {e.score:g} {e.score_unit} ({e.task_category})" for e in known)
        message = f"no published score for '{task}', but known: {text}"
    else:
        message = f"no published score for '{task}' or any other task in benchmark_scores.csv"
    if model.strengths:
        message += f"; developer-stated strengths: {', '.join(model.strengths)}"
    return _model_reason(model, "task", "info", message, "scores for other tasks" if known else "no scores")


def recommend(constraints: Constraints, catalog: Catalog, benchmarks: Benchmarks) -> Recommendation:
    """Ranked models that meet `constraints`, the unranked ones (no evidence) and the excluded ones, with reasons."""
    c = constraints
    validate_constraints(c, catalog)
    categories = TASK_EVIDENCE[c.task]
    benches = benchmarks.benchmarks_for(categories)
    known = set(catalog.models)
    rankable = [b.benchmark for b in benches
                if sum(1 for s in benchmarks.scores_for_benchmark(b.benchmark) if s.model_id in known)
                >= MIN_SCORED_MODELS]
    hardware = hw.HardwareCheck.from_constraints(catalog, c, benchmarks.context_for(c.task))
    kept: list[RankedModel] = []
    excluded: list[ExcludedModel] = []
    for model in catalog.models.values():
        reasons = _license_reasons(catalog.licenses[model.license_id], c.license_policy) + _model_reasons(model, c)
        fit = None
        if hardware is not None and not any(r.verdict == "fail" for r in reasons):
            fit, hw_reasons = hardware.check(model)
            reasons += hw_reasons
        if any(r.verdict == "fail" for r in reasons):
            order = {"fail": 0, "caution": 1}
            excluded.append(ExcludedModel(model.model_id, model.name,
                                          tuple(sorted(reasons, key=lambda r: order.get(r.verdict, 2)))))
            continue
        evidence = _evidence(model.model_id, benches, benchmarks, known)
        usable = [e.percentile_frac for e in evidence if e.percentile_frac is not None]
        score = smoothed_task_score(usable) if usable else None
        elsewhere: list[Evidence] = []
        if score is None:
            reasons.append(_model_reason(model, "task", "caution",
                                         f"no published score on the {len(rankable)} benchmarks that rank "
                                         f"'{c.task}': task evidence unknown"))
            elsewhere = _known_elsewhere(model.model_id, categories, benchmarks, known)
            reasons.append(_known_reason(model, elsewhere, c.task))
        kept.append(RankedModel(None, model.model_id, model.name, model.license_id, model.developer_country,
                                score, len(usable), len(rankable), tuple(evidence),
                                tuple(_evidence_reasons(evidence) + reasons), fit, tuple(elsewhere)))
    scored = sorted((m for m in kept if m.task_score_frac is not None),
                    key=lambda m: (-m.task_score_frac, -m.benchmarks_scored, m.model_id))
    ranked = tuple(dataclasses.replace(m, rank=i) for i, m in enumerate(scored, start=1))
    unranked = tuple(sorted((m for m in kept if m.task_score_frac is None), key=lambda m: m.model_id))
    return Recommendation(c, categories, tuple(rankable), ranked, unranked, tuple(excluded))
