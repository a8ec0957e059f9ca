"""`planner finetune`: memory, GPU-hours, wall clock and cost of one fine-tuning run;
`planner finetune-fit`: refit data/finetune_mfu.csv from data/finetune_references.csv."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys

from planner.cli._output import catalog, print_json, print_pairs, print_table
from planner.data.catalog import DATA_DIR
from planner.econ.finetune import FinetuneRequest, finetune, require_fit
from planner.econ.finetune_mfu import MFU_FILE, fit_mfu, implied_mfu, load_references, mfu_csv_text

SHIPPED_HOLD_OUT = ("meta-llama3.1-card",)


def _run(args: argparse.Namespace) -> int:
    req = FinetuneRequest(
        model=args.model, gpu=args.gpu, method=args.method, dataset_tokens=args.dataset_tokens, epochs=args.epochs,
        num_gpus=args.num_gpus, seq_len_tokens=args.seq_len, micro_batch=args.micro_batch, lora_rank=args.lora_rank,
        optimizer=args.optimizer, gradient_checkpointing=not args.no_gradient_checkpointing, provider=args.provider)
    est = finetune(catalog(), req)
    if args.json:
        print_json(est.to_dict())
        require_fit(est)
        return 0
    require_fit(est)
    e = est
    money = lambda v: "-" if not math.isfinite(v) else f"${v:,.2f}"  # noqa: E731
    print_pairs([
        ("model", e.model_id), ("gpus", f"{e.num_gpus} x {e.gpu_id}"),
        ("method / optimizer", f"{e.method} / {e.optimizer}" + (f" (rank {e.lora_rank})" if e.lora_rank else "")),
        ("params total / trainable (B)", f"{e.total_params_b:.2f} / {e.trainable_params_b:.4g}"),
        ("memory per GPU (GB)", f"{e.memory_gb_per_gpu:.1f} of {e.usable_memory_gb_per_gpu:.1f}"),
        *((f"  {k} (GB)", f"{v:.2f}") for k, v in e.memory_breakdown_gb_per_gpu.items()),
        ("tokens", f"{e.tokens_total:,.0f}"), ("FLOPs per token", f"{e.flops_per_token:.4g}"),
        ("MFU (fitted)", f"{e.mfu_frac:.3f} ({e.mfu_gpu_class})"),
        ("GPU-hours", f"{e.gpu_hours:,.1f}  [{e.gpu_hours_low:,.1f} - {e.gpu_hours_high:,.1f}]"),
        ("wall clock (h)", f"{e.wall_clock_hours:,.2f}"),
        *((f"cost {t}", money(c.total_usd)) for t, c in e.costs.items()),
    ])
    for warning in e.warnings:
        print(f"warning: {warning}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    cat = catalog()
    refs = load_references(cat)
    held = tuple(args.hold_out) if args.hold_out is not None else SHIPPED_HOLD_OUT
    rows = fit_mfu(cat, refs, held_out_sources=held, fitted_on=dt.date.today())
    print_table(["reference", "source", "method", "gpu", "implied_mfu", "in_fit"],
                [(r.reference_id, r.source_id, r.method, r.gpu_id, round(implied_mfu(cat, r), 3),
                  r.source_id not in held) for r in refs])
    if args.write:
        (DATA_DIR / MFU_FILE).write_text(mfu_csv_text(rows), encoding="utf-8")
        sys.stderr.write(f"wrote data/{MFU_FILE} ({len(rows)} rows)\n")
    else:
        sys.stdout.write(mfu_csv_text(rows))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="memory, GPU-hours, wall clock and cost of a fine-tuning run")
    p.add_argument("--model", required=True, help="catalog id or alias")
    p.add_argument("--gpu", required=True, help="GPU id or alias (see `planner gpus`)")
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs, FSDP/ZeRO-3 sharded (default 1)")
    p.add_argument("--method", required=True, help="full, lora or qlora")
    p.add_argument("--dataset-tokens", type=float, required=True, help="tokens in the training set")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default 1)")
    p.add_argument("--seq-len", type=int, default=2048, help="tokens per packed sequence (default 2048)")
    p.add_argument("--micro-batch", type=int, default=1, help="sequences per GPU per step (default 1)")
    p.add_argument("--lora-rank", type=int, default=16, help="LoRA rank for lora/qlora (default 16)")
    p.add_argument("--optimizer", default="adamw", help="adamw (fp32 moments) or adamw-8bit (default adamw)")
    p.add_argument("--no-gradient-checkpointing", action="store_true", help="keep every layer's activations")
    p.add_argument("--provider", help="price only this provider's offers")
    p.add_argument("--json", action="store_true", help="print one JSON object (also when it does not fit)")
    p.set_defaults(func=_run)
    f = sub.add_parser("finetune-fit", help="refit the fine-tuning MFU from data/finetune_references.csv")
    f.add_argument("--hold-out", action="append", metavar="SOURCE_ID",
                   help=f"leave a source out of the fit (default: {', '.join(SHIPPED_HOLD_OUT)})")
    f.add_argument("--write", action="store_true", help=f"write data/{MFU_FILE} instead of printing it")
    f.set_defaults(func=_fit)
