"""The SLO-bound throughput checked against measured serving runs, each against the model of how it was run.

A serving run (data/measured rows, scenario "serving") measured at a load — an open-loop request
rate, or a closed-loop client at `concurrency` — reports its TTFT and TPOT (one row each; benchmark
tools report means). For every run with both, this module asks:

(a) latency at the measured load: the predicted mean TTFT and mean TPOT, against the measured ones;
(b) SLO-bound rate: the largest load whose predicted TTFT and TPOT meet the run's measured ones, as a
    request rate, against the run's measured rate.

An open loop is a Poisson stream: the planner's queueing model (`planner.perf.queueing`, with the replica
evaluator's step time of the run's setup) at its rate, (b) the largest Poisson rate whose median TTFT and
TPOT meet the measured ones (`max_rate_meeting_slo` at percentile 0.5, the allowed percentile nearest a
mean). A closed loop is not (its first requests start in a synchronised wave, fixed-length loops stay in
waves): it is predicted as `validation` predicts its rows (`planner.perf.closed_loop`) at its concurrency,
and (b) is the largest concurrency meeting both, at the rate Little's law gives with the predicted
latencies. The measured rate is the open-loop `request_rate_per_s`, or for a closed loop Little's law on
the measured latencies: rate = concurrency / (TTFT + (output - 1) x TPOT). The engine instance gets the
slots its KV cache holds (the planner's memory model), as in the search. Pure: rows and catalog in, results out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from planner import units
from planner.data.catalog import Catalog
from planner.errors import InvalidInputError
from planner.fit.measured import MEASURED_DIR, MeasuredPoint, per_instance, source_key
from planner.fit.validation import Unexpressible, graph_tokens, model_row
from planner.perf import evaluator
from planner.perf.estimate import ReplicaSetup, efficiency_of, max_running_sequences
from planner.perf.evaluator import gemm_format_of
from planner.perf.queueing import max_rate_meeting_slo, mean_latency_s

SLO_PERCENTILE = 0.5  # the allowed percentile nearest the means the benchmark tools report
SUBSETS = ("all", "fit", "holdout")


@dataclass(frozen=True)
class SloRow:
    """One measured serving run (its TTFT row and TPOT row) against the queueing model."""

    ttft_row_id: str
    tpot_row_id: str
    split: str  # "fit": its source was used to fit the efficiency profiles (not independent); "holdout": not
    engine: str
    model: str
    gpu: str
    num_gpus: int
    concurrency: int | None
    measured_rate_per_s: float  # per replica: open-loop rate, or Little's law on the measured latencies
    rate_from: str  # "request_rate" | "little"
    lengths: str  # "fixed" (closed loops run in synchronised waves) | "variable"
    measured_ttft_s: float
    measured_tpot_s: float
    predicted_ttft_s: float  # mean, at the measured rate (inf: beyond the predicted saturation)
    predicted_tpot_s: float
    utilisation_frac: float  # measured rate / predicted saturation rate
    predicted_rate_per_s: float  # largest rate whose p50 TTFT and TPOT meet the measured ones (0: unreachable)
    bound_by: str
    model_kind: str = "poisson"  # "poisson": the queueing model at the run's rate; "closed loop": the closed-loop
    # model at its concurrency (`validation`'s rows, a client of c requests), like with like

    @property
    def ttft_error_frac(self) -> float:
        return self.predicted_ttft_s / self.measured_ttft_s - 1.0

    @property
    def tpot_error_frac(self) -> float:
        return self.predicted_tpot_s / self.measured_tpot_s - 1.0

    @property
    def rate_error_frac(self) -> float:
        return self.predicted_rate_per_s / self.measured_rate_per_s - 1.0


@dataclass(frozen=True)
class SloStats:
    """Errors of a group of runs: median |predicted / measured - 1| and the median signed error (bias)."""

    n: int
    ttft_median_abs_error_frac: float
    ttft_bias_frac: float
    tpot_median_abs_error_frac: float
    tpot_bias_frac: float
    rate_median_abs_error_frac: float
    rate_bias_frac: float  # < 0: the model says the replica sustains less than it did
    beyond_saturation: int  # runs whose measured rate the model puts at or beyond saturation (latency inf)


def _pair_key(p: MeasuredPoint) -> tuple:
    # one run: the same source (rows without one, as in a user's CSV, pair by their setup alone) and setup
    return (source_key(p.source_url or "", p.source_group), p.model, p.model_config, p.gpu, p.num_gpus, p.tp, p.ep,
            p.precision, p.kv_dtype, p.engine, p.engine_version, p.concurrency, p.request_rate_per_s, p.input_tokens,
            p.output_tokens, p.lengths)


def serving_pairs(points: Iterable[MeasuredPoint]) -> tuple[list[tuple[MeasuredPoint, MeasuredPoint]],
                                                            list[MeasuredPoint]]:
    """(ttft row, tpot row) of each serving run measured at a request rate or concurrency, and the latency rows
    left without a partner (a run that reports only one of the two)."""
    groups: dict[tuple, dict[str, MeasuredPoint]] = {}
    for p in points:
        if p.scenario != "serving" or p.metric not in ("ttft_ms", "tpot_ms"):
            continue
        if not (p.concurrency or p.request_rate_per_s):
            continue
        groups.setdefault(_pair_key(p), {}).setdefault(p.metric, p)
    pairs, lone = [], []
    for g in groups.values():
        if len(g) == 2:
            pairs.append((g["ttft_ms"], g["tpot_ms"]))
        else:
            lone.extend(g.values())
    return pairs, lone


def validate_slo(catalog: Catalog, points: Iterable[MeasuredPoint], *,
                 config_dir: Path = MEASURED_DIR / "model_configs") -> tuple[list[SloRow], list[Unexpressible]]:
    """Every serving run with a measured TTFT and TPOT, predicted by the queueing model (see the module docstring);
    the runs the planner cannot express (and latency rows without a partner) with the reason."""
    pairs, lone = serving_pairs(points)
    skipped = [Unexpressible(p, "its run reports only one of TTFT and TPOT") for p in lone]
    # runs of one model at one request shape share a vectorised step function (one evaluator call per group)
    groups: dict[tuple, list[tuple[ReplicaSetup, MeasuredPoint, MeasuredPoint]]] = {}
    for ttft_pt, tpot_pt in pairs:
        model = model_row(catalog, ttft_pt, config_dir=config_dir)
        if isinstance(model, Unexpressible):
            skipped.append(model)
            continue
        capacity = max_running_sequences(model.setup, ttft_pt.input_tokens, ttft_pt.output_tokens)
        if math.floor(capacity / model.setup.candidate.layout.dp) < 1:
            skipped.append(Unexpressible(ttft_pt, "fewer than one sequence per engine instance fits"))
            continue
        key = (id(model.setup.model.arch), ttft_pt.input_tokens, ttft_pt.output_tokens)
        # a run of dp data-parallel replicas as one replica sees it (rates per replica), as model_row models it
        groups.setdefault(key, []).append((model.setup, per_instance(ttft_pt), per_instance(tpot_pt)))
    rows = []
    for runs in groups.values():
        rows.extend(_predict(runs))
    closed = {t.row_id: (t, p) for t, p in pairs}
    rows = [_closed_loop(catalog, r, *closed[r.ttft_row_id], config_dir) if r.rate_from == "little" else r
            for r in rows]
    order = {p.row_id: i for i, (p, _) in enumerate(pairs)}
    return sorted(rows, key=lambda r: order[r.ttft_row_id]), skipped


def _closed_latency_s(catalog: Catalog, ttft_pt: MeasuredPoint, tpot_pt: MeasuredPoint, concurrency: int,
                      config_dir: Path) -> tuple[float, float]:
    """Mean TTFT and TPOT (s) of the run's closed loop at `concurrency` clients, as `validation` predicts its
    rows (first wave, later waves or steady state, queueing beyond the KV capacity; the per-request overhead on
    TTFT); the run's total request count N is kept."""
    out = []
    for pt in (ttft_pt, tpot_pt):
        model = model_row(catalog, dataclasses.replace(pt, concurrency=int(concurrency)), config_dir=config_dir)
        if isinstance(model, Unexpressible):
            return math.inf, math.inf
        out.append(model.predict(efficiency_of(model.setup.profile, gemm_format_of(model.setup.candidate)))
                   / units.MS_PER_S)
    return out[0], out[1]


CLOSED_LOOP_MAX_FACTOR = 16  # the SLO-bound concurrency of a closed loop is searched in [1, 16 x the run's]


def _closed_loop(catalog: Catalog, row: SloRow, ttft_pt: MeasuredPoint, tpot_pt: MeasuredPoint,
                 config_dir: Path) -> SloRow:
    """A closed-loop run against the closed-loop model (like with like, not a Poisson stream): (a) mean TTFT and
    TPOT at the run's concurrency; (b) the largest concurrency whose predicted TTFT and TPOT both meet the
    measured ones (bisection: both grow with concurrency), turned into a request rate by Little's law on the
    predicted latencies, rate = c / (TTFT + (O - 1) x TPOT), against the measured rate (0: even one client
    misses them)."""
    inst_t, inst_p = per_instance(ttft_pt), per_instance(tpot_pt)
    dp = (ttft_pt.dp or 1)
    out = float(ttft_pt.output_tokens)
    ttft, tpot = _closed_latency_s(catalog, inst_t, inst_p, inst_t.concurrency, config_dir)

    def meets(c: int) -> tuple[bool, str]:
        t, p = _closed_latency_s(catalog, inst_t, inst_p, c, config_dir)
        fails = [name for name, v, target in (("ttft", t, row.measured_ttft_s), ("tpot", p, row.measured_tpot_s))
                 if not v <= target]
        return not fails, "+".join(fails)

    ok, why = meets(1)
    if not ok:
        best, bound = 0, why
    else:
        lo, hi = 1, CLOSED_LOOP_MAX_FACTOR * max(int(inst_t.concurrency), 1)
        ok_hi, why_hi = meets(hi)
        if ok_hi:
            best, bound = hi, "search limit"
        else:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                ok_mid, why_mid = meets(mid)
                lo, hi, why_hi = (mid, hi, why_hi) if ok_mid else (lo, mid, why_mid)
            best, bound = lo, why_hi
    rate = 0.0
    if best:
        t, p = _closed_latency_s(catalog, inst_t, inst_p, best, config_dir)
        rate = best / (t + (out - 1.0) * p) * dp
    return dataclasses.replace(row, predicted_ttft_s=ttft, predicted_tpot_s=tpot, predicted_rate_per_s=rate,
                               bound_by=bound, model_kind="closed loop")


def _predict(runs: list[tuple[ReplicaSetup, MeasuredPoint, MeasuredPoint]]) -> list[SloRow]:
    """The runs of one model at one request shape, in one vectorised pass."""
    first = runs[0][1]
    inp, out = float(first.input_tokens), float(first.output_tokens)
    ttft_m = np.array([t.measured_value for _, t, _ in runs]) / units.MS_PER_S
    tpot_m = np.array([p.measured_value for _, _, p in runs]) / units.MS_PER_S
    dp = np.array([s.candidate.layout.dp for s, _, _ in runs], dtype=float)
    slots = np.floor(np.array([max_running_sequences(s, t.input_tokens, t.output_tokens) for s, t, _ in runs]) / dp)
    open_loop = np.array([bool(t.request_rate_per_s and not t.concurrency) for _, t, _ in runs])
    # closed loops: Little's law, `concurrency` requests each in flight for TTFT + (O - 1) TPOT
    rate = np.array([float(t.request_rate_per_s) if o else t.concurrency / (tt + (out - 1.0) * tp)
                     for (_, t, _), o, tt, tp in zip(runs, open_loop, ttft_m, tpot_m, strict=True)])
    setup = runs[0][0]
    # each run's context steps graphed (or not) as its engine build ran them, as the measured rows' terms
    step = evaluator.step_time_fn(setup.model.arch, [s.candidate for s, _, _ in runs], input_tokens=inp,
                                  output_tokens=out, graph_tokens=[graph_tokens(t, s) for s, t, _ in runs])
    budget = np.array([float(s.prefill_budget_tokens or 1e12) for s, _, _ in runs])
    kw = dict(input_tokens=inp, output_tokens=out, max_batch=slots, token_budget=budget)
    # every request's TTFT also pays the engine's per-request overhead outside the GPU steps (as the plan)
    overhead = np.array([(s.profile.request_overhead_ms or 0.0) / units.MS_PER_S for s, _, _ in runs])
    ttft_p, tpot_p, util = mean_latency_s(step, rate_per_s=rate / dp, **kw)
    ttft_p = ttft_p + overhead
    best, bound = max_rate_meeting_slo(step, ttft_target_s=np.maximum(ttft_m - overhead, 1e-9),
                                       tpot_target_s=tpot_m, percentile=SLO_PERCENTILE, **kw)
    return [SloRow(ttft_row_id=t.row_id, tpot_row_id=p.row_id, split=t.split, engine=t.engine, model=t.model,
                   gpu=t.gpu, num_gpus=t.num_gpus, concurrency=t.concurrency, measured_rate_per_s=float(rate[i]),
                   rate_from="request_rate" if open_loop[i] else "little", lengths=t.lengths or "fixed",
                   measured_ttft_s=float(ttft_m[i]), measured_tpot_s=float(tpot_m[i]),
                   predicted_ttft_s=float(ttft_p[i]), predicted_tpot_s=float(tpot_p[i]),
                   utilisation_frac=float(util[i]), predicted_rate_per_s=float(best[i] * dp[i]),
                   bound_by=str(bound[i]))
            for i, (_, t, p) in enumerate(runs)]


def slo_stats(rows: Iterable[SloRow]) -> SloStats:
    """Medians over the runs; latency errors over the runs the model finds stable at the measured rate."""
    rows = list(rows)
    if not rows:
        raise InvalidInputError("no serving runs to summarise")
    stable = [r for r in rows if math.isfinite(r.predicted_ttft_s) and math.isfinite(r.predicted_tpot_s)]

    def med(values: list[float]) -> float:
        return float(np.median(values)) if values else math.nan

    return SloStats(
        n=len(rows),
        ttft_median_abs_error_frac=med([abs(r.ttft_error_frac) for r in stable]),
        ttft_bias_frac=med([r.ttft_error_frac for r in stable]),
        tpot_median_abs_error_frac=med([abs(r.tpot_error_frac) for r in stable]),
        tpot_bias_frac=med([r.tpot_error_frac for r in stable]),
        rate_median_abs_error_frac=med([abs(r.rate_error_frac) for r in rows]),
        rate_bias_frac=med([r.rate_error_frac for r in rows]),
        beyond_saturation=len(rows) - len(stable))


def summarize_slo(rows: Iterable[SloRow]) -> dict[str, dict[str, SloStats]]:
    """{subset: {engine or "overall": stats}}; subsets "all", "fit" (sources used in fitting the efficiency
    profiles: not independent) and "holdout" (source-held-out)."""
    rows = list(rows)
    out: dict[str, dict[str, SloStats]] = {}
    for subset in SUBSETS:
        chosen = [r for r in rows if subset == "all" or r.split == subset]
        if not chosen:
            continue
        groups: dict[str, list[SloRow]] = {}
        for r in chosen:
            groups.setdefault(r.engine, []).append(r)
        out[subset] = {e: slo_stats(v) for e, v in sorted(groups.items())} | {"overall": slo_stats(chosen)}
    return out


def run_kind(row: SloRow) -> str:
    """How the run loaded the engine: an open-loop rate, or a closed loop with fixed or variable lengths."""
    if row.rate_from == "request_rate":
        return "open loop"
    return f"closed loop, {row.lengths} lengths"


def summarize_by_kind(rows: Iterable[SloRow]) -> dict[str, SloStats]:
    """{run kind: stats} over all runs (`run_kind`)."""
    groups: dict[str, list[SloRow]] = {}
    for r in rows:
        groups.setdefault(run_kind(r), []).append(r)
    return {k: slo_stats(v) for k, v in sorted(groups.items())}


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:+.0f}%"


def _abs_pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.0f}%"


def report_text(rows: list[SloRow], skipped: list[Unexpressible], *, per_row: bool = True) -> str:
    """The section `planner validate --slo` prints."""
    lines = ["SLO-bound throughput against measured serving runs (error = predicted / measured - 1): open loops "
             "against the queueing model, closed loops against the closed-loop model",
             "(a) mean TTFT and TPOT at the measured load; (b) the largest rate (open loop: Poisson, p50 TTFT and "
             "TPOT; closed loop: the largest concurrency, at Little's law's rate) whose TTFT and TPOT meet the "
             "measured ones, against the measured rate",
             "'fit' runs come from sources used in fitting the efficiency profiles (not independent); 'holdout' runs "
             "from source-held-out sources", ""]
    if per_row:
        lines.append(f"{'run (TTFT row)':44s} {'split':7s} {'engine':7s} {'rate/s':>8s} {'util':>5s} "
                     f"{'TTFT':>6s} {'TPOT':>6s} {'rate':>6s}  bound")
        for r in rows:
            lines.append(f"{r.ttft_row_id[:44]:44s} {r.split:7s} {r.engine:7s} {r.measured_rate_per_s:8.3g} "
                         f"{min(r.utilisation_frac, 9.99):5.2f} {_pct(r.ttft_error_frac):>6s} "
                         f"{_pct(r.tpot_error_frac):>6s} {_pct(r.rate_error_frac):>6s}  {r.bound_by}")
        lines.append("")
    for subset, per in summarize_slo(rows).items():
        lines.append(f"{subset} runs: median |error| (bias)")
        lines.append(f"  {'engine':9s} {'n':>4s} {'TTFT':>14s} {'TPOT':>14s} {'SLO rate':>14s} {'beyond sat.':>11s}")
        for engine, st in per.items():
            lines.append(f"  {engine:9s} {st.n:4d} {_abs_pct(st.ttft_median_abs_error_frac):>6s} "
                         f"({_pct(st.ttft_bias_frac):>5s}) {_abs_pct(st.tpot_median_abs_error_frac):>6s} "
                         f"({_pct(st.tpot_bias_frac):>5s}) {_abs_pct(st.rate_median_abs_error_frac):>6s} "
                         f"({_pct(st.rate_bias_frac):>5s}) {st.beyond_saturation:11d}")
        lines.append("")
    if rows:
        lines.append("all runs by how they loaded the engine: median |error| (bias)")
        for kind, st in summarize_by_kind(rows).items():
            lines.append(f"  {kind:29s} {st.n:4d} TTFT {_abs_pct(st.ttft_median_abs_error_frac)} "
                         f"({_pct(st.ttft_bias_frac)}), TPOT {_abs_pct(st.tpot_median_abs_error_frac)} "
                         f"({_pct(st.tpot_bias_frac)}), SLO rate {_abs_pct(st.rate_median_abs_error_frac)} "
                         f"({_pct(st.rate_bias_frac)}), {st.beyond_saturation} beyond saturation")
        lines.append("")
    lines.append(f"{len(rows)} runs predicted; {len(skipped)} rows not used")
    reasons: dict[str, int] = {}
    for u in skipped:
        reasons[u.reason] = reasons.get(u.reason, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:8]:
        lines.append(f"  {count} x {reason}")
    return "\n".join(lines) + "\n"


def report_dict(rows: list[SloRow], skipped: list[Unexpressible]) -> dict:
    """The same as JSON-ready data."""
    def clean(v):
        return v if not isinstance(v, float) or math.isfinite(v) else None

    return {"runs": [{k: clean(v) for k, v in asdict(r).items()} | {
                "ttft_error_frac": clean(r.ttft_error_frac), "tpot_error_frac": clean(r.tpot_error_frac),
                "rate_error_frac": clean(r.rate_error_frac)} for r in rows],
            "summary": {s: {e: {k: clean(v) for k, v in asdict(st).items()} for e, st in per.items()}
                        for s, per in summarize_slo(rows).items()},
            "by_run_kind": {kind: {k: clean(v) for k, v in asdict(st).items()}
                            for kind, st in (summarize_by_kind(rows).items() if rows else ())},
            "not_used": [{"row_id": u.point.row_id, "reason": u.reason} for u in skipped],
            "percentile": SLO_PERCENTILE}


__all__ = ["SLO_PERCENTILE", "SloRow", "SloStats", "report_dict", "report_text", "run_kind", "serving_pairs",
           "slo_stats", "summarize_by_kind", "summarize_slo", "validate_slo"]
