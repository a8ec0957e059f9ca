"""`planner plan`: size, cost and compare a scenario; export the CSV report or JSON."""

from __future__ import annotations

import argparse
import sys

from planner.cli._output import catalog, catalog_with_profile, fmt_number, print_pairs, print_table, scenario_inputs
from planner.data.safe_io import check_output_path, write_bytes_atomic, write_text_atomic
from planner.econ.breakeven import BreakEven
from planner.econ.costs import ALL_TIERS
from planner.plan import Plan, plan
from planner.report import plan_monthly_to_csv, plan_to_csv, plan_to_json, plan_to_zip


def _money(value: float) -> str:
    if value != value:
        return "-"
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def _breakeven_text(b: BreakEven | None) -> str:
    if b is None:
        return "-"
    first = b.first_cheaper_requests_per_day
    if first != first:
        return "none"
    good = f"{b.requests_per_day:,.0f}" if b.found else "never"
    return good if b.found and abs(first - b.requests_per_day) < 1 else f"{first:,.0f} / {good}"


def _summary(p: Plan) -> None:
    e, w = p.estimate, p.workload
    print_pairs([
        ("model", f"{e.model_id} ({e.engine}, {e.precision}, KV {e.kv_dtype})"),
        ("replica", f"{p.num_gpus_per_replica} x {e.gpu_id} ({e.layout}: tp {e.tp}, pp {e.pp}, dp {e.dp}"
                    f"{', expert parallel' if e.expert_parallel else ''}), batch limit "
                    f"{p.search.best.max_num_seqs if p.search else '-'}"),
        ("workload", f"{w.requests_per_day:,.0f} requests/day, {w.input_tokens_mean:,.0f} in / "
                     f"{w.output_tokens_mean:,.0f} out tokens, peak/avg {w.peak_to_average_ratio:.2f}, "
                     f"offline {w.offline_frac:.0%}"),
        ("latency targets", f"TTFT {p.ttft_target_s:g} s, TPOT {p.tpot_target_s * 1e3:g} ms at "
                            f"p{round(p.latency_percentile * 100)}"),
        ("operating point", f"{p.operating_concurrency} sequences per replica (bound by {p.concurrency_bound_by}): "
                            f"TTFT {e.ttft_s:.3f} s, TPOT {e.tpot_s * 1e3:.1f} ms"),
        ("capacity per replica", f"{p.capacity_requests_per_s_per_replica:,.2f} requests/s  "
                                 f"[{p.capacity_requests_per_s_per_replica_low:,.2f} - "
                                 f"{p.capacity_requests_per_s_per_replica_high:,.2f}]"),
    ])
    if p.search:
        lat = p.search.best.latency
        print_pairs([("latency at design load", "TTFT " + ", ".join(
            f"p{q} {lat[f'ttft_p{q}_s']:.3f} s" for q in (50, 90, 95, 99)) + "; TPOT " + ", ".join(
            f"p{q} {lat[f'tpot_p{q}_s'] * 1e3:.1f} ms" for q in (50, 90, 95, 99))),
            ("search", f"{p.search.n_configurations:,} configurations, {p.search.n_fitting:,} fit, "
                       f"{p.search.n_meeting_targets:,} meet the targets")])
        print()
        for line in p.search.explanation:
            print(f"  {line}")
    rows = []
    for tier in ALL_TIERS:
        c = p.costs[tier]
        b, g = p.breakeven.get(tier), p.growth.get(tier)
        if not c.available:
            rows.append([tier + (" *" if tier == p.headline_tier else ""), "unavailable", "-", "-", "-", "-", "-",
                         "-", "-", "-", "-"])
            continue
        rows.append([
            tier + (" *" if tier == p.headline_tier else ""), c.provider or "-", c.usd_per_gpu_hour,
            c.fleet.total_replicas, f"{c.fleet.utilisation_avg_frac:.0%}",
            f"{_money(c.monthly_usd)} [{_money(c.monthly_usd_low)}-{_money(c.monthly_usd_high)}]",
            c.input_usd_per_mtok, c.output_usd_per_mtok,
            _breakeven_text(b),
            g.breakeven_month if g and g.breakeven_month else "-",
            _money(g.cumulative_saving_usd) if g else "-"])
    print()
    print_table(["tier", "provider", "$/GPU-h", "replicas", "util", "$/month [range]", "$/Mtok in", "$/Mtok out",
                 "break-even req/day (first / for good)", "month", "saving"], rows)
    print()
    best_tier = p.best_breakeven_tier
    if p.api and best_tier is not None:
        b = p.breakeven[best_tier]
        where = "" if best_tier == p.headline_tier else f" (the headline tier {p.headline_tier} does not)" \
            if not p.breakeven.get(p.headline_tier) or not p.breakeven[p.headline_tier].found else \
            f" (headline {p.headline_tier}: {p.breakeven[p.headline_tier].requests_per_day:,.0f})"
        print(f"break-even: self-hosting on {best_tier} pays from {b.requests_per_day:,.0f} requests/day{where}")
    elif p.api:
        print("break-even: the API stays cheaper on every tier up to the largest volume considered")
    if p.finetune_usd_per_month:
        print(f"fine-tuning: {_money(p.finetune_usd_per_month)}/month in every tier's total")
    if p.api:
        print(f"API: {p.api.api_id}  {_money(p.api.monthly_usd)}/month ({fmt_number(p.api.usd_per_request * 1e3)} $ "
              f"per 1,000 requests, {fmt_number(p.api.blended_usd_per_mtok)} $/Mtok blended)")
    if p.hybrid:
        h = p.hybrid
        print(f"hybrid: {h.base_serving_replicas} {h.tier} replicas + API for {h.api_share_of_requests_frac:.0%} of "
              f"requests = {_money(h.total_usd_per_month)}/month (saves {_money(h.saving_vs_best_pure_usd_per_month)})")
    for tier in ALL_TIERS:
        if not p.costs[tier].available:
            print(f"note: {tier}: {p.costs[tier].note}")
    for warning in p.warnings:
        print(f"warning: {warning}")


def _run(args: argparse.Namespace) -> int:
    # output paths are checked before the search runs: an empty name or a folder is refused at once
    base = check_output_path(args.csv, what="CSV report") if args.csv not in (None, "-") else None
    if args.csv_zip is not None:
        check_output_path(args.csv_zip, what="CSV report archive")
    scenario, sizes = scenario_inputs(args.scenario, args.set)
    result = plan(scenario, catalog_with_profile(scenario.profile), request_sizes=sizes)
    monthly_path = None
    if args.csv is not None:
        text, monthly = plan_to_csv(result, catalog=catalog()), plan_monthly_to_csv(result)
        if args.csv == "-":
            sys.stdout.write(text + "\n" + monthly)
            return 0
        monthly_path = base.with_name(base.stem + ".monthly.csv")
        write_text_atomic(base, text, what="CSV report")
        write_text_atomic(monthly_path, monthly, what="monthly CSV table")
    if args.csv_zip is not None:
        write_bytes_atomic(args.csv_zip, plan_to_zip(result, catalog=catalog()), what="CSV report archive")
    if args.json:
        sys.stdout.write(plan_to_json(result) + "\n")
    elif args.csv != "-":
        _summary(result)
        if args.csv:
            print(f"CSV report written to {args.csv} (monthly table: {monthly_path})")
        if args.csv_zip:
            print(f"CSV report archive written to {args.csv_zip}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="replicas, monthly cost per tier, API cost and break-even for a scenario")
    p.add_argument("--scenario", metavar="FILE", help="scenario file (.json or .toml); default: built-in defaults")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a scenario field (repeatable), e.g. --set requests_per_day=2e6 --set mode=owned")
    p.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    p.add_argument("--csv", metavar="OUT", help="write the CSV report (assumptions and results) to OUT and the "
                                                "monthly table beside it as OUT.monthly.csv ('-': both to stdout, "
                                                "separated by a blank line)")
    p.add_argument("--csv-zip", metavar="OUT.zip", help="write both CSV tables into one zip archive")
    p.set_defaults(func=_run)
