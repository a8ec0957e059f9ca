"""`planner usage import FILE`: a workload (volume, token distributions, hourly profile, peak) from a usage export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tomli_w

from planner.cli._output import print_json, print_pairs
from planner.data.importers.usage import TIME_UNITS, import_usage_file, parse_mapping, scenario_fields_and_warnings
from planner.data.safe_io import check_output_path, write_text_atomic
from planner.errors import InvalidInputError, brief


def _snippet_text(path: Path, fields: dict) -> str:
    if path.suffix.lower() == ".json":
        return json.dumps(fields, indent=2) + "\n"
    if path.suffix.lower() == ".toml":
        return "# workload measured by `planner usage import`\n" + tomli_w.dumps(fields)
    raise InvalidInputError(f"scenario snippet {brief(str(path))} must end in .json or .toml")


def _import(args: argparse.Namespace) -> int:
    workload = import_usage_file(args.file, mapping=parse_mapping(args.map), time_unit=args.time_unit)
    fields, left_out = scenario_fields_and_warnings(workload)
    written = None
    if args.write:
        written = check_output_path(Path(args.write).expanduser(), what="scenario snippet")
        write_text_atomic(written, _snippet_text(written, fields), what="scenario snippet")
    if args.json:
        print_json({**workload.to_dict(), "scenario_fields": fields, "scenario_fields_left_out": left_out,
                    "scenario_snippet": str(written) if written else None})
        return 0
    w = workload
    profile = " ".join("-" if v is None else f"{v:.2f}" for v in w.hourly_profile)
    print_pairs([
        ("requests", w.requests), ("first / last (UTC)", f"{w.first_request_utc} / {w.last_request_utc}"),
        ("window", f"{w.window_s / 3600:,.2f} h" if w.window_s >= 3600 else f"{w.window_s:,.1f} s"),
        ("requests per day", f"{w.requests_per_day:,.0f}"),
        ("mean / peak-hour requests/s", f"{w.mean_requests_per_s:.3g} / {w.peak_requests_per_s:.3g}"),
        ("peak-to-average ratio", f"{w.peak_to_average_ratio:.2f}"),
        ("input tokens mean / p50 / p90 / p99 / max",
         f"{w.input_tokens_mean:,.0f} / {w.input_tokens_p50:,.0f} / {w.input_tokens_p90:,.0f} / "
         f"{w.input_tokens_p99:,.0f} / {w.input_tokens_max:,}"),
        ("output tokens mean / p50 / p90 / p99 / max",
         f"{w.output_tokens_mean:,.0f} / {w.output_tokens_p50:,.0f} / {w.output_tokens_p90:,.0f} / "
         f"{w.output_tokens_p99:,.0f} / {w.output_tokens_max:,}"),
        ("prompt cache hit (of input tokens)", "-" if w.prompt_cache_hit_frac is None
         else f"{w.prompt_cache_hit_frac:.1%}"),
        ("hourly profile (UTC 0-23, 1 = mean)", profile),
    ])
    for warning in (*w.warnings, *left_out):
        print(f"warning: {warning}")
    if written:
        print(f"scenario snippet written to {written} ({', '.join(fields)}); use it with `--scenario`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("usage", help="derive a workload from a usage export (CSV or JSONL of requests)")
    actions = p.add_subparsers(dest="usage_command", metavar="ACTION", parser_class=type(p))
    actions.required = True
    i = actions.add_parser("import", help="volume, token distributions, hourly profile and peak of a usage export")
    i.add_argument("file", help="CSV (header row) or JSONL (one JSON object per line), one request each")
    i.add_argument("--map", help="column names, e.g. timestamp=ts,input_tokens=prompt_tokens,"
                                 "output_tokens=completion_tokens[,cached_input_tokens=...]; JSONL keys may be "
                                 "dotted paths (usage.prompt_tokens)")
    i.add_argument("--time-unit", choices=TIME_UNITS, default="auto",
                   help="unit of numeric timestamps (auto: seconds, or milliseconds above 1e11)")
    i.add_argument("--write", metavar="SNIPPET", help="write the scenario's workload fields to a .toml or .json file")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.set_defaults(func=_import)
