"""`planner prices ...`: import LiteLLM and SkyPilot price tables into the user's price store, list, reset.

The store (`$PLANNER_PRICES_DIR`, default ~/.config/llm-planner/prices) holds gpu_prices.csv and
api_prices.csv in the catalog's schemas; `plan` and the app lay them over the shipped prices.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from collections import Counter

from planner.cli._output import catalog, print_json, print_table
from planner.data.importers.litellm import import_litellm_file
from planner.data.importers.skypilot import import_skypilot_dir
from planner.data.importers.store import (
    load_user_prices,
    prices_dir,
    reset_user_prices,
    save_api_prices,
    save_gpu_prices,
)


def _rows(records: list) -> list[dict]:
    return [{k: v.isoformat() if isinstance(v, dt.date) else v for k, v in dataclasses.asdict(r).items()}
            for r in records]


def _skipped_text(skipped: tuple[tuple[str, int], ...]) -> str:
    return "; ".join(f"{n:,} {why}" for why, n in skipped) or "nothing"


def _import_litellm(args: argparse.Namespace) -> int:
    result = import_litellm_file(args.path, accessed=dt.date.today(), catalog=catalog(),
                                 providers=args.provider or None)
    path = save_api_prices(result.records, args.dir, source=result.source)
    if args.json:
        print_json({"source": result.source, "sha256_12": result.sha256_12, "written": str(path),
                    "imported": len(result.records), "skipped": dict(result.skipped)})
        return 0
    matched = sum(1 for r in result.records if r.catalog_model_id)
    print(f"imported {len(result.records):,} API prices ({matched:,} matched to catalog models) from "
          f"{result.source} (sha256 {result.sha256_12})")
    print(f"written to {path}")
    print(f"skipped: {_skipped_text(result.skipped)}")
    return 0


def _import_skypilot(args: argparse.Namespace) -> int:
    results = import_skypilot_dir(args.dir_in, catalog=catalog(), accessed=dt.date.today(),
                                  provider=args.provider, source_url=args.source_url, keep_all=args.all_offers)
    records = [r for result in results for r in result.records]
    path = save_gpu_prices(records, catalog(), args.dir, source=", ".join(r.source for r in results))
    if args.json:
        print_json({"written": str(path), "imported": len(records),
                    "files": [{"source": r.source, "sha256_12": r.sha256_12, "imported": len(r.records),
                               "skipped": dict(r.skipped)} for r in results]})
        return 0
    for r in results:
        print(f"{r.source} (sha256 {r.sha256_12}): {len(r.records):,} price rows; skipped: {_skipped_text(r.skipped)}")
    print(f"written {len(records):,} GPU price rows to {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    gpu, api = load_user_prices(args.dir, catalog=catalog())
    if args.json:
        print_json({"directory": str(prices_dir(args.dir)), "gpu_prices": _rows(gpu),
                    "api_prices": _rows(api)})
        return 0
    print(f"user price store: {prices_dir(args.dir)}")
    if not gpu and not api:
        print("empty: import with `planner prices import-litellm PATH` or `planner prices import-skypilot DIR`")
        return 0
    if gpu:
        print(f"\nGPU prices ({len(gpu):,} rows)")
        print_table(["gpu_id", "provider", "pricing", "usd_per_gpu_hour", "region", "instance_type", "accessed"],
                    [[p.gpu_id, p.provider, p.pricing, p.usd_per_gpu_hour, p.region, p.instance_type,
                      p.source_accessed.isoformat()] for p in gpu])
    if api:
        by_provider = Counter(p.provider for p in api)
        print(f"\nAPI prices ({len(api):,} rows; `--json` lists them all)")
        print_table(["provider", "rows"], by_provider.most_common())
    return 0


def _reset(args: argparse.Namespace) -> int:
    removed = reset_user_prices(args.dir)
    if not removed:
        print(f"nothing to remove in {prices_dir(args.dir)}")
    for path in removed:
        print(f"removed {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prices", help="import LiteLLM / SkyPilot prices into your price store; list; reset")
    actions = p.add_subparsers(dest="prices_command", metavar="ACTION", parser_class=type(p))
    actions.required = True
    dir_help = "price store directory (default: $PLANNER_PRICES_DIR or ~/.config/llm-planner/prices)"

    a = actions.add_parser("import-litellm", help="API prices from LiteLLM's model_prices_and_context_window JSON")
    a.add_argument("path", help="the JSON file, or a directory holding it (e.g. site-packages/litellm)")
    a.add_argument("--provider", action="append", help="keep only this litellm_provider (repeatable)")
    a.add_argument("--dir", help=dir_help)
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(func=_import_litellm)

    s = actions.add_parser("import-skypilot", help="GPU-hour prices from SkyPilot catalog vms.csv files")
    s.add_argument("dir_in", metavar="DIR", help="a directory of <cloud>/vms.csv files (or one vms.csv)")
    s.add_argument("--provider", help="cloud name when it cannot be read from the path")
    s.add_argument("--source-url", help="URL to record as the source (default: the skypilot-catalog file)")
    s.add_argument("--all-offers", action="store_true",
                   help="keep every instance x region offer (default: cheapest and median per GPU, cloud, tier)")
    s.add_argument("--dir", help=dir_help)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_import_skypilot)

    lst = actions.add_parser("list", help="show the imported prices")
    lst.add_argument("--dir", help=dir_help)
    lst.add_argument("--json", action="store_true", help="every row as JSON")
    lst.set_defaults(func=_list)

    r = actions.add_parser("reset", help="delete the imported price tables")
    r.add_argument("--dir", help=dir_help)
    r.set_defaults(func=_reset)
