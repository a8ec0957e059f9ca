"""Coverage of the estimate's ranges: the share of measured values inside [value x low, value x high].

    python benchmarks/bench_ranges.py          # refit in memory; held-out and leave-one-source-out coverage (~2 min)
    python benchmarks/bench_ranges.py --loso   # also every source predicted by a refit without it (a few minutes more)

The range factors of a profile are meant as the 10th / 90th percentiles of measured / predicted speed, so about
80 % of measurements from a deployment the fit has not seen should fall inside. Printed, for the range rule of
commit 485cae3 ("before": the profile's own held-out rows when it has 8 of them from 2 sources or more, else the
engine's, else all; sources weighted by sqrt(rows)) and for `calibration.range_factors` ("now"):

- held-out: each profile's range scored on its own held-out speed rows (the rows the ranges are fitted on, so
  this is in-sample for the range, out-of-sample for the efficiency factors);
- leave-one-source-out (the honest figure): for each held-out source, the ranges refitted from the other held-out
  sources' rows and scored on that source's rows; per row, per source (each source's share, averaged), per engine;
- with --loso: every source of data/measured (fit sources too) predicted by `calibration.loso_results` (a refit
  of the efficiency factors without that source), scored against ranges fitted on the held-out rows of the other
  sources.

Speed rows only (tokens/s and TPOT, TPOT inverted); TTFT rows are shown apart (the ranges are not fitted on them).
Every figure is computed from the data when the script runs; not a timed test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.data.catalog import load_catalog  # noqa: E402
from planner.fit.calibration import (  # noqa: E402
    DEFAULT_RANGE,
    fit_catalog_profiles,
    loso_results,
    range_factors,
    range_rows,
    replace_profiles,
    speed_ratio,
)
from planner.fit.validation import predict_rows, read_measured  # noqa: E402

Rule = Callable[[list, str, str], tuple[float, float]]


def before_rule(speed: list, profile_id: str, engine: str) -> tuple[float, float]:
    """The range rule of commit 485cae3 (`_pooled_rows` + sqrt(rows) source weights), kept here for comparison."""
    chosen = list(speed)
    for rows in ([r for r in speed if r.profile_id == profile_id], [r for r in speed if r.point.engine == engine]):
        if len(rows) >= 8 and len({r.point.source_url for r in rows}) >= 2:
            chosen = rows
            break
    if not chosen:
        return DEFAULT_RANGE
    counts: dict[str, int] = defaultdict(int)
    for r in chosen:
        counts[r.point.source_url] += 1
    values = np.array([speed_ratio(r) for r in chosen])
    weights = np.array([counts[r.point.source_url] ** -0.5 for r in chosen])
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    cumulative = (np.cumsum(weights) - 0.5 * weights) / weights.sum()
    lo, hi = (float(np.interp(p, cumulative, values)) for p in (0.1, 0.9))
    return min(lo, 1.0), max(hi, 1.0)


RULES: dict[str, Rule] = {"before": before_rule, "now": range_factors}


class Tally:
    """Inside / below / above counts, by row and by source."""

    def __init__(self) -> None:
        self.hits: dict[str, list[int]] = defaultdict(list)  # source -> [inside, below, above]
        self.widths: list[float] = []

    def add(self, source: str, ratio: float, low: float, high: float) -> None:
        counts = self.hits.setdefault(source, [0, 0, 0])
        counts[0 if low <= ratio <= high else 1 if ratio < low else 2] += 1
        self.widths.append(high / low)

    def line(self) -> str:
        total = np.sum(list(self.hits.values()), axis=0) if self.hits else np.zeros(3)
        n = int(total.sum())
        if not n:
            return "   0 rows"
        per_source = np.mean([c[0] / sum(c) for c in self.hits.values()])
        return (f"{n:4d} rows {len(self.hits):3d} sources  inside {100 * total[0] / n:5.1f}%  "
                f"(below {int(total[1]):3d}, above {int(total[2]):3d})  "
                f"per source {100 * per_source:5.1f}%  median high/low {np.median(self.widths):4.2f}")


def held_out(speed: list, rule: Rule, engines: dict[str, str]) -> dict[str, Tally]:
    ranges = {pid: rule(speed, pid, eng) for pid, eng in engines.items()}
    out: dict[str, Tally] = defaultdict(Tally)
    for r in speed:
        lo, hi = ranges[r.profile_id]
        for key in ("all", f"engine {r.point.engine}", f"profile {r.profile_id}"):
            out[key].add(r.point.source_url, speed_ratio(r), lo, hi)
    return out


def leave_one_source_out(speed: list, scored: list, rule: Rule, engines: dict[str, str],
                         profile_of: Callable[[object], str]) -> dict[str, Tally]:
    """Each source of `scored` against ranges fitted on the `speed` rows of every other source."""
    by_source: dict[str, list] = defaultdict(list)
    for r in scored:
        by_source[r.point.source_url].append(r)
    out: dict[str, Tally] = defaultdict(Tally)
    for source, mine in by_source.items():
        rest = [r for r in speed if r.point.source_url != source]
        ranges: dict[str, tuple[float, float]] = {}
        for r in mine:
            pid = profile_of(r)
            if pid not in ranges:
                ranges[pid] = rule(rest, pid, engines[pid])
            lo, hi = ranges[pid]
            for key in ("all", f"engine {r.point.engine}"):
                out[key].add(source, speed_ratio(r), lo, hi)
    return out


def _print(title: str, tallies: dict[str, dict[str, Tally]], keys: list[str]) -> None:
    print(f"\n{title}")
    for key in keys:
        for name, tally in tallies.items():
            if key in tally:
                print(f"  {key:30s} {name:6s} {tally[key].line()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loso", action="store_true", help="also score every source with a refit without it")
    args = parser.parse_args()
    catalog, points = load_catalog(), read_measured()
    profiles, _ = fit_catalog_profiles(catalog, points, source_url="https://example.invalid/bench_ranges",
                                       accessed=dt.date.today())
    rows, _ = predict_rows(replace_profiles(catalog, profiles), points)
    speed = range_rows(rows)
    engines = {p.profile_id: p.engine for p in profiles}
    print(f"{len(speed)} held-out speed rows from {len({r.point.source_url for r in speed})} sources; "
          f"{len(rows)} rows predicted in all")
    print("\nrange factors (low-high), before -> now")
    for p in profiles:
        (b_lo, b_hi), (n_lo, n_hi) = (rule(speed, p.profile_id, p.engine) for rule in RULES.values())
        own = [r for r in speed if r.profile_id == p.profile_id]
        print(f"  {p.profile_id:22s} {b_lo:.2f}-{b_hi:.2f} -> {n_lo:.2f}-{n_hi:.2f}   own held-out rows {len(own):3d} "
              f"from {len({r.point.source_url for r in own})} sources")
    keys = ["all"] + sorted({f"engine {e}" for e in engines.values()})
    profile_keys = [f"profile {p}" for p in engines if any(r.profile_id == p for r in speed)]
    ho = {name: held_out(speed, rule, engines) for name, rule in RULES.items()}
    _print("held-out coverage (each profile's range on its own held-out rows)", ho, keys + profile_keys)
    own_profile = lambda r: r.profile_id  # noqa: E731
    lo = {name: leave_one_source_out(speed, speed, rule, engines, own_profile) for name, rule in RULES.items()}
    _print("leave-one-source-out coverage (ranges refitted without the scored source)", lo, keys)
    ttft = [r for r in rows if r.point.split == "holdout" and r.point.metric == "ttft_ms"]
    tt = {name: leave_one_source_out(speed, ttft, rule, engines, own_profile) for name, rule in RULES.items()}
    _print("TTFT held-out rows, leave-one-source-out (not what the ranges are fitted on)", tt, ["all"])
    if args.loso:
        results, _ = loso_results(catalog, points)
        profile_by_row = {r.point.row_id: r.profile_id for r in rows}
        scored = [r for r in results if r.point.metric != "ttft_ms" and r.point.row_id in profile_by_row]
        by_row = lambda r: profile_by_row[r.point.row_id]  # noqa: E731
        every = {name: leave_one_source_out(speed, scored, rule, engines, by_row) for name, rule in RULES.items()}
        _print("every source, predicted by a refit without it (calibration.loso_results), ranges without it", every,
               keys)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
