"""`planner estimate`: memory fit and speed of one replica."""

from __future__ import annotations

import argparse

from planner.cli._output import catalog, print_json, print_pairs
from planner.errors import DoesNotFitError
from planner.perf.estimate import EstimateRequest, estimate


def _run(args: argparse.Namespace) -> int:
    req = EstimateRequest(
        model=args.model, gpu=args.gpu, num_gpus=args.num_gpus, precision=args.precision, kv_dtype=args.kv_dtype,
        input_tokens=args.input_tokens, output_tokens=args.output_tokens, concurrency=args.concurrency,
        engine=args.engine, tp=args.tp, expert_parallel=args.expert_parallel, profile=args.profile,
    )
    try:
        result = estimate(catalog(), req)
    except DoesNotFitError as err:
        if args.json:
            print_json({"fits": False, "model": args.model, "gpu": args.gpu, "num_gpus": args.num_gpus,
                        "error": str(err), "shortfall_gb_per_gpu": err.shortfall_gb,
                        "suggestions": list(err.suggestions)})
        raise
    if args.json:
        print_json(result.to_dict())
        return 0
    r = result
    print_pairs([
        ("model", r.model_id), ("gpus", f"{r.num_gpus} x {r.gpu_id} (tp {r.tp}, pp {r.pp})"),
        ("engine / precision / kv", f"{r.engine} / {r.precision} / {r.kv_dtype}"),
        ("params total / active (B)", f"{r.total_params_b:.1f} / {r.active_params_b:.1f}"),
        ("weights (GB, per GPU)", f"{r.weights_gb:.1f} ({r.weights_gb_per_gpu:.1f})"),
        ("KV cache (bytes/token)", f"{r.kv_cache_bytes_per_token:,.0f}"),
        ("max concurrency", r.max_concurrency), ("concurrency", r.concurrency),
        ("TTFT (s)", f"{r.ttft_s:.3f}  [{r.ttft_s_low:.3f} - {r.ttft_s_high:.3f}]"),
        ("TPOT (ms)", f"{r.tpot_s * 1e3:.1f}  [{r.tpot_s_low * 1e3:.1f} - {r.tpot_s_high * 1e3:.1f}]"),
        ("output tok/s (all GPUs)",
         f"{r.output_tokens_per_s:,.0f}  [{r.output_tokens_per_s_low:,.0f} - {r.output_tokens_per_s_high:,.0f}]"),
        ("output tok/s per user", f"{r.output_tokens_per_s_per_user:,.1f}"),
        ("prefill tok/s (one prompt)", f"{r.prefill_tokens_per_s:,.0f}"),
        ("bottleneck", r.bottleneck), ("efficiency profile", r.efficiency_profile),
    ])
    for warning in r.warnings:
        print(f"warning: {warning}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="memory fit, TTFT, TPOT and throughput of one replica")
    p.add_argument("--model", required=True, help="catalog id, alias, or path to a config.json")
    p.add_argument("--gpu", required=True, help="GPU id or alias (see `planner gpus`)")
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs in the replica (default 1)")
    p.add_argument("--precision", help="weight precision, e.g. bf16, fp8, int4-awq, nvfp4, q4_k_m "
                                       "(default: the model's native precision)")
    p.add_argument("--kv-dtype", help="KV cache dtype: bf16, fp16, fp8, q8_0, q4_0 (default bf16)")
    p.add_argument("--input-tokens", type=int, default=1024, help="prompt tokens per request (default 1024)")
    p.add_argument("--output-tokens", type=int, default=256, help="generated tokens per request (default 256)")
    p.add_argument("--concurrency", type=int, help="sequences in flight (default: the largest that fits)")
    p.add_argument("--engine", help="vllm, sglang, trtllm or llama.cpp (default: vllm; llama.cpp for GGUF/Apple)")
    p.add_argument("--tp", type=int, help="tensor-parallel size (default: fill a node)")
    p.add_argument("--expert-parallel", action="store_true", help="spread MoE experts over GPUs (all-to-all)")
    p.add_argument("--profile", help="a named efficiency profile (see `planner calibrate`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
