"""Accuracy of the speed model against measured throughput and latency (data/measured/throughput.csv).

    python benchmarks/bench_accuracy.py            # validate the shipped data/efficiency.csv
    python benchmarks/bench_accuracy.py --refit    # refit the profiles on the `fit` rows, then validate
    python benchmarks/bench_accuracy.py --refit --write   # ... and rewrite data/efficiency.csv

Prints median and p90 absolute percentage error (MdAPE, p90) and the bias (median of
measured / predicted) by metric, engine, GPU family and dense/MoE, separately for the rows
the fit used and the rows held out of it, for all rows and for rows from current engines
(built from measured.RECENT_FROM on), then per source, and the same rows predicted by a
100 %-of-peak roofline (what LLM-Viewer, GenZ and llm-analysis assume) for comparison.
Last, per accuracy family: the source-held-out rows (whole sources the fit never saw), the MLPerf
Inference v6.0/v6.1 system results (data/measured/mlperf_v6.csv: independent, never fitted; per family and
per benchmark model x GPU) and leave-one-source-out (every row predicted by a refit without its source;
`--no-loso` skips it).
Every figure is computed from the data when the script runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.data.catalog import DATA_DIR, load_catalog  # noqa: E402
from planner.fit.calibration import (  # noqa: E402
    PARAMS,
    fit_catalog_profiles,
    loso_results,
    replace_profiles,
    write_efficiency_csv,
)
from planner.fit.measured import MEASURED_DIR, read_points  # noqa: E402
from planner.fit.validation import (  # noqa: E402
    RECENT_FROM,
    error_stats,
    family_stats,
    predict_rows,
    read_measured,
    summarize,
)

# Issue 11's targets: median absolute error per family, and |median bias| <= 10 % in every family.
TARGETS = {"max_throughput": 0.12, "batch1_decode": 0.12, "prefill": 0.25, "serving_throughput": 0.15,
           "ttft": 0.25, "tpot": 0.20, "moe": 0.20}
BIAS_LIMIT = 0.10
REFERENCE_URL = ("https://github.com/NVIDIA/TensorRT-LLM/blob/258c7540c03517def55d9a5aadfa9288af474e1b/"
                 "docs/source/performance/perf-overview.md")


def _table(title: str, groups: dict) -> None:
    print(f"\n{title}")
    print(f"  {'group':38s} {'n':>4s} {'MdAPE':>7s} {'p90':>7s} {'bias':>6s}")
    for name, st in groups.items():
        print(f"  {name:38s} {st.n:4d} {100 * st.median_ape_frac:6.1f}% {100 * st.p90_ape_frac:6.1f}% "
              f"{st.median_ratio:6.2f}")


def _source_label(url: str) -> str:
    """A short name for a source: the page for GitHub issues, pulls and GPUStack lab pages, else the host."""
    parts = url.split("/")
    if "performance-lab" in url:
        return "gpustack " + "/".join(parts[-2:])
    if len(parts) > 6 and parts[2] == "github.com" and parts[5] in ("issues", "pull", "discussions"):
        return f"{parts[4]}#{parts[6]}"
    if len(parts) > 5 and parts[2] == "github.com":
        return f"{parts[3]}/{parts[4]}"
    return parts[2]


def _roofline(catalog):
    """Every profile at 100 % of peak with no fixed costs: the analytical tools' assumption."""
    perfect = [dataclasses.replace(p, mbu_frac=1.0, moe_mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0,
                                   comm_bw_frac=1.0, comm_large_bw_frac=1.0, step_overhead_ms=0.0, comm_latency_us=0.0,
                                   moe_expert_overhead_us=0.0, layer_overhead_us=0.0, request_overhead_ms=0.0,
                                   mfu_fp8_scale=None, mfu_fp4_scale=None, mfu_int8_scale=None)
               for p in catalog.efficiency]
    # the dense peaks themselves, not the measured attainable share (data/gemm_attainable.csv)
    gpus = {k: dataclasses.replace(g, gemm_attainable=(), gemm_rate_factors=()) for k, g in catalog.gpus.items()}
    return dataclasses.replace(replace_profiles(catalog, perfect), gpus=gpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refit", action="store_true", help="refit the profiles on the fit rows first")
    parser.add_argument("--write", action="store_true", help="with --refit: rewrite data/efficiency.csv")
    parser.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out refits (a few minutes)")
    args = parser.parse_args()
    catalog = load_catalog()
    points = read_measured()
    if args.refit:
        profiles, fit = fit_catalog_profiles(catalog, points, source_url=REFERENCE_URL, accessed=dt.date.today())
        print(f"refit on {fit.rows_used} fit rows (cost {fit.cost:.3f}):")
        for p in profiles:
            print(f"  {p.profile_id:22s} mbu {p.mbu_frac:.3f} moe {p.moe_mbu_frac:.3f} "
                  f"mfu_d {p.mfu_decode_frac:.3f} "
                  f"mfu_p {p.mfu_prefill_frac:.3f} comm_bw {p.comm_bw_frac:.3f} overhead {p.step_overhead_ms:.2f} ms "
                  f"(overlap {p.overhead_overlap_frac:.2f}) layer {p.layer_overhead_us:.1f} us "
                  f"latency {p.comm_latency_us:.1f} us expert {p.moe_expert_overhead_us:.2f} us "
                  f"request {p.request_overhead_ms or 0.0:.1f} ms eager launch {p.eager_launch_us or 0.0:.1f} us "
                  f"range {p.range_low_factor:.2f}-{p.range_high_factor:.2f}")
        print("  MFU scale per GEMM format (fp8, fp4, int8; 16-bit float = 1): "
              + ", ".join(f"{e} " + "/".join(f"{v:.2f}" for v in s) for e, s in (fit.format_scales or {}).items()))
        print("  older-build (engine_date before " + RECENT_FROM + ") offset, link scale: "
              + ", ".join(f"{n} {v:+.2f}" for n, v in zip(PARAMS, fit.era_offset, strict=True)))
        catalog = replace_profiles(catalog, profiles)
        if args.write:
            write_efficiency_csv(profiles, DATA_DIR / "efficiency.csv")
            print(f"wrote {DATA_DIR / 'efficiency.csv'}")
    results, skipped = predict_rows(catalog, points)
    print(f"\n{len(points)} measured rows: {len(results)} predicted, {len(skipped)} not expressible")
    summary = summarize(results)
    current = summarize([r for r in results if r.point.era == "current"])
    for label, summ in (("", summary), (f"current-engine (built {RECENT_FROM} on) ", current)):
        for split in ("holdout", "fit"):
            for grouping, title in (("metric", "by metric"), ("engine", "by engine"),
                                    ("gpu_family", "by GPU family"), ("architecture", "dense vs MoE"),
                                    ("era", "by engine build")):
                if split in summ and not (label and grouping == "era"):
                    _table(f"{label}{split} rows, {title}", summ[split][grouping])
    by_source = defaultdict(list)
    for r in results:
        by_source[(r.point.split, _source_label(r.point.source_url), r.point.metric_group)].append(r)
    print("\nper source (split, host/page, metric): n, MdAPE, bias")
    for key, rows in sorted(by_source.items()):
        apes, ratios = [r.ape_frac for r in rows], [r.ratio for r in rows]
        print(f"  {key[0]:7s} {key[1][:34]:34s} {key[2]:36s} {len(rows):4d} {100 * np.median(apes):6.1f}% "
              f"{np.median(ratios):5.2f}")
    roof, _ = predict_rows(_roofline(catalog), points)
    _table("holdout rows, 100%-of-peak roofline (no efficiency, no fixed costs), by metric",
           summarize(roof)["holdout"]["metric"])
    for label, summ in (("all", summary), ("current", current)):
        if "holdout" not in summ:
            continue
        dense, moe = (summ["holdout"]["architecture"].get(a) for a in ("dense", "moe"))
        if dense and moe:
            print(f"  {label:7s} bias dense {dense.median_ratio:.2f} (MdAPE {100 * dense.median_ape_frac:.1f}%) "
                  f"vs MoE {moe.median_ratio:.2f} (MdAPE {100 * moe.median_ape_frac:.1f}%) "
                  f"(median measured/predicted; 1 = unbiased)")
    held = family_stats(r for r in results if r.point.split == "holdout")
    _families("source-held-out rows (whole sources never fitted), by family", held)
    ok = _targets("source-held-out", held)
    _mlperf(catalog)
    if not args.no_loso:
        loso, _ = loso_results(catalog, points)
        stats = family_stats(loso)
        _families("leave-one-source-out (refit without each source, score it), by family", stats)
        ok &= _targets("leave-one-source-out", stats)
        per_source = defaultdict(list)
        for r in loso:
            per_source[(_source_label(r.point.source_url), r.point.metric_group)].append(r)
        print("\nleave-one-source-out by source and metric, largest median misses first (n >= 3): "
              "n, MdAPE, bias (predicted/measured - 1)")
        ranked = sorted(((k, v) for k, v in per_source.items() if len(v) >= 3),
                        key=lambda kv: -abs(np.median([np.log(r.ratio) for r in kv[1]])))
        for (src, group), rows in ranked[:20]:
            st = error_stats(rows)
            print(f"  {src[:34]:34s} {group:36s} {st.n:4d} {100 * st.median_ape_frac:6.1f}% "
                  f"{100 * st.median_bias_frac:+6.1f}%")
        worst = sorted(loso, key=lambda r: -abs(np.log(r.ratio)))[:15]
        print("\nbiggest leave-one-source-out misses (predicted / measured):")
        for r in worst:
            print(f"  {r.point.row_id:34s} {r.point.engine:9s} {r.point.gpu:12s} {r.point.metric_group:34s} "
                  f"{r.predicted_value / r.point.measured_value:6.2f}x")
    return 0 if ok else 1


MLPERF_FILE = MEASURED_DIR / "mlperf_v6.csv"


def _mlperf(catalog) -> None:
    """The MLPerf v6.0/v6.1 system results, an independent check no fit reads: families, then the Offline max
    throughput by benchmark model and GPU."""
    points = read_points(MLPERF_FILE)
    results, skipped = predict_rows(catalog, points, config_dir=MEASURED_DIR / "model_configs")
    _families(f"MLPerf Inference v6.0/v6.1 system results ({MLPERF_FILE.name}: independent, never fitted; "
              f"{len(results)} of {len(points)} rows predicted), by family", family_stats(results))
    groups = defaultdict(list)
    for r in results:
        groups[(r.point.metric_group, r.point.model.split("/")[-1], r.point.gpu, r.point.engine)].append(r)
    print(f"\n  {'metric, model, GPU, engine':70s} {'n':>4s} {'MdAPE':>7s} {'bias':>7s}")
    for (group, model, gpu, engine), rows in sorted(groups.items()):
        if group.startswith("serving_output"):  # a fixed request rate: rate x output tokens when capacity allows
            continue
        st = error_stats(rows)
        print(f"  {group[:28]:28s} {model[:18]:18s} {gpu[:14]:14s} {engine:7s} {st.n:4d} "
              f"{100 * st.median_ape_frac:6.1f}% {100 * st.median_bias_frac:+6.1f}%")


def _targets(label: str, stats: dict) -> bool:
    print(f"\ntargets, {label} (median absolute error; |bias| <= {100 * BIAS_LIMIT:.0f}%):")
    ok = True
    for family, limit in TARGETS.items():
        st = stats.get(family)
        if st is None:
            print(f"  {family:24s} no rows")
            continue
        met = st.median_ape_frac <= limit and abs(st.median_bias_frac) <= BIAS_LIMIT
        ok &= met
        print(f"  {family:24s} {100 * st.median_ape_frac:5.1f}% (target <= {100 * limit:.0f}%) bias "
              f"{100 * st.median_bias_frac:+5.1f}% {'met' if met else 'MISSED'}")
    return ok


def _families(title: str, stats: dict) -> None:
    print(f"\n{title}")
    print(f"  {'family':24s} {'n':>4s} {'MdAPE':>7s} {'p90':>7s} {'bias':>7s}   (bias = median predicted/measured - 1)")
    for name, st in stats.items():
        print(f"  {name:24s} {st.n:4d} {100 * st.median_ape_frac:6.1f}% {100 * st.p90_ape_frac:6.1f}% "
              f"{100 * st.median_bias_frac:+6.1f}%")


if __name__ == "__main__":
    raise SystemExit(main())
