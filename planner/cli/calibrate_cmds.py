"""`planner validate`, `planner calibrate` and `planner profiles`: check the speed model, fit it to your hardware."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from planner.cli._output import catalog, fmt_number, print_json, print_table
from planner.data.safe_io import read_bytes
from planner.errors import CatalogError, InvalidInputError
from planner.fit.calibration import (
    calibrate_profile,
    load_user_profiles,
    loso_results,
    points_from_vllm_bench,
    profile_dir,
    save_profile,
)
from planner.fit.profile_store import check_profile_name
from planner.fit.slo_validation import report_dict, report_text, validate_slo
from planner.fit.validation import (
    FAMILIES,
    GROUPINGS,
    HOLDOUT_FRAC,
    MEASURED_DIR,
    MEASURED_FILE,
    RECENT_FROM,
    ErrorStats,
    family_stats,
    predict_rows,
    read_points,
    since,
    summarize,
)

_GROUP_TITLES = {"metric": "by metric", "engine": "by engine", "gpu_family": "by GPU family",
                 "architecture": "by dense/MoE", "era": f"by engine build (current = {RECENT_FROM} on)",
                 "profile": "by efficiency profile"}


def _read_file(path: str) -> bytes:
    """A regular file of bounded size (FIFOs, devices and directories refused without blocking)."""
    return read_bytes(path, what="input file")


def _user_points(path: str) -> list:
    """A user's CSV of measured points; a malformed file is bad input (exit 2), not a broken catalog."""
    try:
        return read_points(_read_file(path), name=Path(path).name, user=True)
    except CatalogError as err:
        raise InvalidInputError(str(err)) from None


def _pct(frac: float) -> str:
    return f"{100 * frac:.1f}%"


def _stats_dict(st: ErrorStats) -> dict:
    return dataclasses.asdict(st)


def _family_table(title: str, stats: dict[str, ErrorStats]) -> None:
    sys.stdout.write(f"{title} (median absolute % error; bias = median predicted/measured - 1, < 0 = too slow "
                     "for speeds, too fast for TTFT/TPOT)\n")
    print_table(["family", "n", "median APE", "p90 APE", "bias"],
                [[f, st.n, _pct(st.median_ape_frac), _pct(st.p90_ape_frac), f"{100 * st.median_bias_frac:+.1f}%"]
                 for f, st in stats.items()])
    sys.stdout.write("\n")


def _run_validate(args: argparse.Namespace) -> int:
    if args.loso and (args.data or args.profile):
        raise InvalidInputError("--loso refits the project's profiles on data/measured; it takes no --data or "
                                "--profile")
    if args.data:
        path = Path(args.data)
        points = _user_points(args.data)
        config_dir = path.parent / "model_configs" if (path.parent / "model_configs").is_dir() else path.parent
    else:
        points = read_points(MEASURED_FILE)
        config_dir = MEASURED_DIR / "model_configs"
    if args.split != "all":
        points = [p for p in points if p.split == args.split]
    if args.since:
        points = since(points, args.since)
        if not points:
            raise InvalidInputError(f"no rows with an engine built in {args.since} or later")
    if args.slo:  # the queueing model against the measured serving runs (planner.fit.slo_validation)
        runs, unused = validate_slo(catalog(), points, config_dir=config_dir)
        if args.json:
            print_json(report_dict(runs, unused))
        else:
            sys.stdout.write(report_text(runs, unused, per_row=not args.summary_only))
        return 0
    results, skipped = predict_rows(catalog(), points, config_dir=config_dir, profile=args.profile)
    if not results:
        raise InvalidInputError(f"none of the {len(points)} rows can be expressed; first reason: "
                                f"{skipped[0].reason if skipped else 'no rows'}")
    summary = summarize(results)
    held_out = family_stats(r for r in results if r.point.split == "holdout")
    loso = None
    if args.loso:
        loso_rows, _ = loso_results(catalog(), points)
        loso = family_stats(loso_rows)
    if args.json:
        print_json({
            "rows": [{"row_id": r.point.row_id, "split": r.point.split, "engine": r.point.engine,
                      "gpu": r.point.gpu, "model": r.point.model, "metric": r.point.metric,
                      "metric_group": r.point.metric_group, "scenario": r.point.scenario,
                      "measured_value": r.point.measured_value, "predicted_value": r.predicted_value,
                      "ape_frac": r.ape_frac, "profile": r.profile_id, "gpu_family": r.gpu_family,
                      "architecture": r.architecture, "engine_date": r.point.engine_date,
                      "era": r.point.era} for r in results],
            "unexpressible": [{"row_id": u.point.row_id, "reason": u.reason} for u in skipped],
            "summary": {split: {g: {k: _stats_dict(v) for k, v in groups.items()} for g, groups in per.items()}
                        for split, per in summary.items()},
            "families": {"source_holdout": {f: _stats_dict(st) for f, st in held_out.items()},
                         **({"leave_one_source_out": {f: _stats_dict(st) for f, st in loso.items()}}
                            if loso is not None else {})},
            "counts": {"rows": len(points), "predicted": len(results), "unexpressible": len(skipped)},
        })
        return 0
    if not args.summary_only:
        print_table(["row", "split", "engine", "gpu", "metric", "measured", "predicted", "error"],
                    [[r.point.row_id, r.point.split, r.point.engine, r.point.gpu, r.point.metric_group,
                      r.point.measured_value, r.predicted_value,
                      f"{100 * (r.predicted_value / r.point.measured_value - 1):+.0f}%"] for r in results])
        sys.stdout.write("\n")
    for split, per in summary.items():
        for grouping in GROUPINGS:
            sys.stdout.write(f"{split} rows, {_GROUP_TITLES[grouping]} (median / p90 absolute % error; bias = "
                             f"median measured/predicted)\n")
            print_table([grouping, "n", "median APE", "p90 APE", "bias"],
                        [[k, st.n, _pct(st.median_ape_frac), _pct(st.p90_ape_frac), fmt_number(st.median_ratio)]
                         for k, st in per[grouping].items()])
            sys.stdout.write("\n")
    if held_out:
        n_src = len({r.point.source_key for r in results if r.point.split == "holdout"})
        _family_table(f"source-held-out rows ({n_src} whole sources, {HOLDOUT_FRAC:.0%} of the sources by a hash of "
                      "the source key, none used in fitting), by family", held_out)
    if loso is not None:
        _family_table("leave-one-source-out (every row predicted by a refit without its source), by family", loso)
    else:
        sys.stdout.write("leave-one-source-out errors: add --loso (one refit per source, a few minutes)\n\n")
    sys.stdout.write(f"{len(results)} of {len(points)} rows predicted; {len(skipped)} not expressible:\n")
    for u in skipped:
        sys.stdout.write(f"  {u.point.row_id}: {u.reason}\n")
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    check_profile_name(args.name, reserved=[p.profile_id for p in catalog().efficiency])
    if bool(args.vllm_bench) == bool(args.csv):
        raise InvalidInputError("give exactly one of --vllm-bench FILE.json or --csv FILE")
    if args.vllm_bench:
        if not args.gpu:
            raise InvalidInputError("--gpu is required with --vllm-bench (the JSON does not name the GPU)")
        points = points_from_vllm_bench(_read_file(args.vllm_bench), model=args.model, gpu=args.gpu,
                                        num_gpus=args.num_gpus, tp=args.tp, precision=args.precision,
                                        kv_dtype=args.kv_dtype, engine=args.engine or "vllm",
                                        label=Path(args.vllm_bench).name)
    else:
        points = _user_points(args.csv)
    profile, rows = calibrate_profile(catalog(), points, name=args.name)
    path = save_profile(profile)
    if args.json:
        print_json({"profile": dataclasses.asdict(profile), "saved_to": str(path),
                    "points": [{"row_id": p.row_id, "metric": p.metric, "measured_value": p.measured_value,
                                "predicted_before": b, "predicted_after": a} for p, b, a in rows]})
        return 0
    print_table(["point", "metric", "measured", "before", "after"],
                [[p.row_id, p.metric, p.measured_value, b, a] for p, b, a in rows])
    sys.stdout.write(f"\nsaved profile {profile.profile_id!r} ({profile.engine} on {profile.gpu_match}) to {path}\n"
                     f"use it with: python -m planner estimate ... --profile {profile.profile_id}\n")
    return 0


def _run_profiles(args: argparse.Namespace) -> int:
    user = load_user_profiles()
    rows = [(p, "user") for p in user] + [(p, "catalog") for p in catalog().efficiency]
    if args.json:
        print_json([{**dataclasses.asdict(p), "origin": origin} for p, origin in rows])
        return 0
    print_table(["profile", "engine", "gpus", "mbu", "moe mbu", "mfu dec", "mfu pre", "overhead ms", "range",
                 "fit pts", "origin"],
                [[p.profile_id, p.engine, p.gpu_match, p.mbu_frac, p.moe_mbu_frac, p.mfu_decode_frac,
                  p.mfu_prefill_frac, p.step_overhead_ms, f"{p.range_low_factor:.2f}-{p.range_high_factor:.2f}",
                  p.n_points, origin] for p, origin in rows])
    sys.stdout.write(f"\nuser profiles are read from {profile_dir()} (set PLANNER_PROFILE_DIR to change it)\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("validate", help="predict measured throughput/latency rows and report the error")
    v.add_argument("--data", help="a CSV of measured rows (default: the project's data/measured/throughput.csv)")
    v.add_argument("--split", choices=("all", "fit", "holdout"), default="all", help="rows to use (default all)")
    v.add_argument("--since", metavar="YYYY-MM", help="only rows whose engine was built in this month or later "
                   f"(current engines: --since {RECENT_FROM})")
    v.add_argument("--profile", help="predict every row with this efficiency profile")
    v.add_argument("--summary-only", action="store_true", help="skip the per-row table")
    v.add_argument("--loso", action="store_true", help="also refit without each source and score it "
                   f"(leave-one-source-out over {', '.join(FAMILIES)}; a few minutes)")
    v.add_argument("--slo", action="store_true", help="instead: the queueing model's latency and SLO-bound rate "
                   "against the measured serving runs (about 10 s)")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.set_defaults(func=_run_validate)

    c = sub.add_parser("calibrate", help="fit an efficiency profile to your own measurements and store it")
    c.add_argument("--vllm-bench", metavar="FILE.json", help="output of `vllm bench serve --save-result`")
    c.add_argument("--csv", metavar="FILE", help="measured points in the data/measured schema")
    c.add_argument("--name", required=True, help="profile name (letters, digits, - _ .)")
    c.add_argument("--model", help="catalog model (default: the JSON's model_id)")
    c.add_argument("--gpu", help="GPU id or alias (required with --vllm-bench)")
    c.add_argument("--num-gpus", type=int, default=1, help="GPUs of the replica (default 1)")
    c.add_argument("--tp", type=int, help="tensor-parallel size (default: all GPUs)")
    c.add_argument("--precision", help="weight precision (default bf16)")
    c.add_argument("--kv-dtype", help="KV cache dtype (default bf16)")
    c.add_argument("--engine", help="engine that produced the JSON (default vllm)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_run_calibrate)

    p = sub.add_parser("profiles", help="list efficiency profiles (catalog and your calibrated ones)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_profiles)
