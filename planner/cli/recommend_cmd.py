"""`planner recommend`: rank catalog models for a task under license, language, context and hardware constraints."""

from __future__ import annotations

import argparse
import sys

from planner.advice.advisor import LICENSE_POLICIES, TASK_EVIDENCE, Constraints, Recommendation, recommend
from planner.advice.benchmarks_data import load_benchmarks
from planner.cli._output import catalog, fmt_number, print_json, print_table, text_arg
from planner.errors import InvalidInputError, bounded_float, bounded_int


def _codes(text: str | None, *, upper: bool) -> tuple[str, ...]:
    if not text:
        return ()
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    return tuple(p.upper() if upper else p.lower() for p in parts)


def constraints_from_args(args: argparse.Namespace) -> Constraints:
    if args.num_gpus is not None and args.gpu is None:
        raise InvalidInputError("--num-gpus needs --gpu")
    # upper bounds first (10**400 would pass a ">= 1" check and overflow later); the advisor checks the rest
    for name, value, high in (("context_tokens", args.context, MAX_CONTEXT_TOKENS),
                              ("num_gpus", args.num_gpus, MAX_GPUS),
                              ("output_tokens", args.output_tokens, MAX_CONTEXT_TOKENS)):
        if value is not None:
            bounded_int(name, value, 1, high)
    for name, value, high in (("memory_gb", args.memory_gb, MAX_MEMORY_GB),
                              ("min_output_tokens_per_s_per_user", args.min_tokens_per_s, MAX_TOKENS_PER_S)):
        if value is not None:
            bounded_float(name, value, 0, high, low_open=True)
    return Constraints(
        task=args.task, license_policy=args.license, languages=_codes(args.languages, upper=False),
        context_tokens=args.context, gpu=args.gpu, num_gpus=1 if args.num_gpus is None else args.num_gpus,
        memory_gb=args.memory_gb,
        min_output_tokens_per_s_per_user=args.min_tokens_per_s, output_tokens=args.output_tokens,
        engine=args.engine, developer_countries=_codes(args.developer_country, upper=True),
        open_source_only=args.open_source,
    )


def _hardware_cell(m) -> str:
    fit = m.hardware
    if fit is None:
        return "-"
    return f"{fit.precision}/{fit.kv_dtype}"


def _speed_cell(m) -> str:
    fit = m.hardware
    if fit is None or fit.output_tokens_per_s_per_user is None:
        return "-"
    return fmt_number(fit.output_tokens_per_s_per_user)


def _cautions(m) -> str:
    return ", ".join(r.tag or r.constraint for r in m.reasons if r.verdict == "caution" and r.constraint != "task")


def _print_text(rec: Recommendation, *, details: bool, limit: int | None) -> None:
    c = rec.constraints
    out = sys.stdout
    names = ", ".join(rec.benchmarks) or "none"
    out.write(f"task: {c.task} (evidence from {len(rec.benchmarks)} benchmarks: {names})\n")
    out.write(f"license policy: {c.license_policy} ({LICENSE_POLICIES[c.license_policy][1]})\n\n")
    shown = rec.ranked[:limit] if limit else rec.ranked
    print_table(["rank", "model", "task_score", "evidence", "license", "country", "weights/KV", "tok/s/user",
                 "cautions"],
                [[m.rank, m.model_id, f"{m.task_score_frac:.2f}", f"{m.benchmarks_scored}/{m.benchmarks_considered}",
                  m.license_id, m.developer_country or "?", _hardware_cell(m), _speed_cell(m), _cautions(m)]
                 for m in shown])
    if limit and len(rec.ranked) > limit:
        out.write(f"... {len(rec.ranked) - limit} more ranked (drop --limit to see them)\n")
    if rec.unranked:
        out.write(f"\nunranked, task score unknown (no published score on these benchmarks): "
                  f"{', '.join(m.model_id for m in rec.unranked)}\n")
    if rec.excluded:
        out.write(f"\nexcluded ({len(rec.excluded)}):\n")
        for e in rec.excluded:
            first = e.failing[0]
            out.write(f"  {e.model_id}: [{first.constraint}] {first.message} ({first.source_file})\n")
    if details:
        for m in shown:
            out.write(f"\n{m.rank}. {m.model_id}\n")
            for r in m.reasons:
                out.write(f"   {r.verdict:8} {r.constraint:12} {r.message}  [{r.source_file}: {r.source_url}, "
                          f"read {r.source_accessed.isoformat()}]\n")


def _run(args: argparse.Namespace) -> int:
    if args.limit is not None:
        bounded_int("--limit", args.limit, 1, MAX_LIMIT)
    cat = catalog()
    rec = recommend(constraints_from_args(args), cat, load_benchmarks(model_ids=cat.model_ids))
    if args.json:
        print_json(rec.to_dict())
    else:
        _print_text(rec, details=args.details, limit=args.limit)
    return 0


MAX_CONTEXT_TOKENS = 1_000_000_000  # 100x the longest context in the catalog (10M tokens)
MAX_GPUS = 4096
MAX_MEMORY_GB = 1_000_000.0  # a petabyte of accelerator memory: beyond any replica
MAX_TOKENS_PER_S = 1_000_000.0
MAX_LIMIT = 10_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="rank models for a task under license, language, context and hardware "
                                         "constraints, with sourced reasons")
    p.add_argument("--task", default="any", choices=list(TASK_EVIDENCE),
                   help="task whose published benchmarks rank the models (default: any = every benchmark)")
    p.add_argument("--license", default="any", choices=list(LICENSE_POLICIES), help="license policy (default any)")
    p.add_argument("--languages", type=text_arg(1000),
                   help="comma-separated ISO 639-1 codes the model must support, e.g. de,fr")
    p.add_argument("--context", type=int,
                   help="tokens one request must hold (prompt + output)")
    p.add_argument("--gpu", type=text_arg(200),
                   help="GPU id or alias; models that do not fit even at the most aggressive precision are excluded")
    p.add_argument("--num-gpus", type=int, help="GPUs in one replica (default 1; needs --gpu)")
    p.add_argument("--memory-gb", type=float,
                   help="total accelerator memory instead of --gpu (weights + KV only)")
    p.add_argument("--min-tokens-per-s", type=float,
                   help="minimum output tokens/s per user at batch 1 (needs --gpu)")
    p.add_argument("--output-tokens", type=int, default=Constraints.output_tokens,
                   help=f"generated tokens per request in the speed check (default {Constraints.output_tokens})")
    p.add_argument("--engine", type=text_arg(200),
                   help="serving engine for the hardware check (default vllm; llama.cpp on Apple)")
    p.add_argument("--developer-country", type=text_arg(1000),
                   help="comma-separated ISO 3166-1 codes of acceptable developer jurisdictions, e.g. FR,DE")
    p.add_argument("--open-source", action="store_true",
                   help="require training code and data to be published, not only the weights")
    p.add_argument("--limit", type=int,
                   help=f"show only the top N ranked models (1 to {MAX_LIMIT:,})")
    p.add_argument("--details", action="store_true", help="print every reason with its source")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
