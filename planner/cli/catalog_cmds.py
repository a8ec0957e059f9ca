"""`planner models` and `planner gpus`: list the catalogs."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from planner.cli._output import catalog, print_json, print_table


def _models(args: argparse.Namespace) -> int:
    cat = catalog()
    rows = []
    for m in cat.models.values():
        lic = cat.licenses[m.license_id]
        rows.append({
            "model_id": m.model_id, "aliases": list(m.aliases), "name": m.name, "developer": m.developer,
            "release_date": m.release_date, "architecture": m.architecture, "attention": m.arch.attention,
            "total_params_b": round(m.arch.total_params_b, 3), "active_params_b": round(m.arch.active_params_b, 3),
            "published_total_params_b": m.published_total_params_b,
            "published_active_params_b": m.published_active_params_b,
            "context_length_tokens": m.context_length_tokens, "native_precision": m.native_precision,
            "license_id": m.license_id, "license": lic.name, "commercial_use": lic.commercial_use,
            "mau_limit": lic.mau_limit, "openness": m.openness, "languages_count": m.languages_count,
            "kv_cache_bytes_per_token_bf16": m.arch.kv_elems_per_token_full * 2
            + sum(g.kv_elems_per_token for g in m.arch.window_groups) * 2,
            "source_url": m.source_url, "source_accessed": m.source_accessed,
        })
    if args.json:
        print_json(rows)
        return 0
    print_table(["model_id", "alias", "arch", "total_B", "active_B", "context", "precision", "license"],
                [[r["model_id"], (r["aliases"] or ["-"])[0], r["architecture"], r["total_params_b"],
                  r["active_params_b"], r["context_length_tokens"], r["native_precision"], r["license_id"]]
                 for r in rows])
    return 0


def _gpus(args: argparse.Namespace) -> int:
    cat = catalog()
    rows = []
    for g in cat.gpus.values():
        row = {k: v for k, v in asdict(g).items()}
        row["native_formats"] = [f for f in ("bf16", "fp8", "fp4", "int8") if g.supports(f)]
        cheapest = min((p.usd_per_gpu_hour for p in cat.prices_for(g.gpu_id, "on_demand")), default=None)
        row["cheapest_on_demand_usd_per_gpu_hour"] = cheapest
        rows.append(row)
    if args.json:
        print_json(rows)
        return 0
    print_table(["gpu_id", "memory_GB", "bandwidth_TB/s", "bf16_TFLOPS", "native", "TDP_W", "buy_USD",
                 "from_USD/h"],
                [[r["gpu_id"], r["memory_gb"], r["memory_bandwidth_tb_s"], r["bf16_dense_tflops"],
                  ",".join(r["native_formats"]), r["tdp_w"], r["purchase_usd"],
                  r["cheapest_on_demand_usd_per_gpu_hour"]] for r in rows])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the open-weight models in the catalog")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_models)
    p = sub.add_parser("gpus", help="list the accelerators in the catalog")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_gpus)

