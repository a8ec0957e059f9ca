"""`planner estimate`: memory fit and speed of one replica."""

from __future__ import annotations

import argparse

from planner.cli._output import catalog_with_profile, float_arg, int_arg, print_json, print_pairs, text_arg
from planner.errors import DoesNotFitError
from planner.perf.estimate import MAX_GPUS, MAX_TOKENS, EstimateRequest, estimate
from planner.perf.speculative import MAX_DRAFT_TOKENS, METHODS
from planner.plan import slo_estimate


def _run(args: argparse.Namespace) -> int:
    req = EstimateRequest(
        model=args.model, gpu=args.gpu, num_gpus=args.num_gpus, precision=args.precision, kv_dtype=args.kv_dtype,
        input_tokens=args.input_tokens, output_tokens=args.output_tokens, concurrency=args.concurrency,
        engine=args.engine, tp=args.tp, pp=args.pp, dp=args.dp, expert_parallel=args.expert_parallel,
        profile=args.profile, max_num_seqs=args.max_num_seqs, speculative=args.speculative,
        speculative_draft_tokens=args.draft_tokens, speculative_acceptance_frac=args.acceptance_frac,
        attn_dp=args.attn_dp,
    )
    slo = None
    try:
        if args.ttft_target_s is not None or args.tpot_target_s is not None:
            result, slo = slo_estimate(catalog_with_profile(req.profile), req, ttft_target_s=args.ttft_target_s,
                                       tpot_target_s=args.tpot_target_s, percentile=args.latency_percentile)
        else:
            result = estimate(catalog_with_profile(req.profile), req)
    except DoesNotFitError as err:
        if args.json:
            print_json({"fits": False, "model": args.model, "gpu": args.gpu, "num_gpus": args.num_gpus,
                        "error": str(err), "shortfall_gb_per_gpu": err.shortfall_gb,
                        "suggestions": list(err.suggestions)})
        raise
    if args.json:
        out = result.to_dict()
        if slo is not None:
            out["slo"] = slo
        print_json(out)
        return 0
    r = result
    print_pairs([
        ("model", r.model_id), ("gpus", f"{r.num_gpus} x {r.gpu_id} ({r.layout}: tp {r.tp}, pp {r.pp}, dp {r.dp})"),
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
    if r.speculative is not None:
        sp = r.speculative
        print_pairs([
            ("speculative", f"{sp['method']}, {sp['draft_tokens']} draft token(s), acceptance "
                            f"{sp['acceptance_frac']:.3f} ({sp['acceptance_source']}): "
                            f"{sp['tokens_per_step']:.2f} tokens per verify step"),
            ("TPOT off / on (ms)", f"{sp['tpot_s_off'] * 1e3:.1f} / {sp['tpot_s_on'] * 1e3:.1f} "
                                   f"({sp['speedup_factor']:.2f}x, {'applied' if sp['applied'] else 'not applied'})"),
            ("output tok/s off / on", f"{sp['output_tokens_per_s_off']:,.0f} / {sp['output_tokens_per_s_on']:,.0f}"),
        ])
    if slo is not None:
        print_pairs([
            ("SLO", f"TTFT {slo['ttft_target_s']:g} s, TPOT {slo['tpot_target_s'] * 1e3:g} ms at "
                    f"p{round(slo['latency_percentile'] * 100)}"),
            ("rate meeting it", f"{slo['requests_per_s']:,.3f} requests/s per replica (bound by {slo['bound_by']}), "
                                f"mean running batch {slo['operating_concurrency']}"),
            ("latency there", f"TTFT p50 {slo['ttft_p50_s']:.3f} / p95 {slo['ttft_p95_s']:.3f} / p99 "
                              f"{slo['ttft_p99_s']:.3f} s; TPOT p50 {slo['tpot_p50_s'] * 1e3:.1f} / p95 "
                              f"{slo['tpot_p95_s'] * 1e3:.1f} / p99 {slo['tpot_p99_s'] * 1e3:.1f} ms")])
    for warning in r.warnings:
        print(f"warning: {warning}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="memory fit, TTFT, TPOT and throughput of one replica")
    p.add_argument("--model", required=True, type=text_arg(4096), help="catalog id, alias, or path to a config.json")
    p.add_argument("--gpu", required=True, type=text_arg(), help="GPU id or alias (see `planner gpus`)")
    p.add_argument("--num-gpus", type=int_arg(1, MAX_GPUS), default=1, help="GPUs in the replica (default 1)")
    p.add_argument("--precision", type=text_arg(), help="weight precision, e.g. bf16, fp8, int4-awq, nvfp4, q4_k_m "
                                                         "(default: the model's native precision)")
    p.add_argument("--kv-dtype", type=text_arg(), help="KV cache dtype: bf16, fp16, fp8, q8_0, q4_0 (default: the "
                   "engine's: bf16, fp16 on llama.cpp, fp8 for fp8 on TensorRT-LLM)")
    p.add_argument("--input-tokens", type=int_arg(1, MAX_TOKENS), default=1024,
                   help="prompt tokens per request (default 1024)")
    p.add_argument("--output-tokens", type=int_arg(1, MAX_TOKENS), default=256,
                   help="generated tokens per request (default 256)")
    p.add_argument("--concurrency", type=int_arg(1, 1_000_000),
                   help="sequences in flight per engine instance (default: the largest that fits)")
    p.add_argument("--engine", type=text_arg(), help="vllm, sglang, trtllm or llama.cpp (default: vllm; llama.cpp "
                                                      "for GGUF/Apple)")
    p.add_argument("--tp", type=int_arg(1, MAX_GPUS), help="tensor-parallel size")
    p.add_argument("--pp", type=int_arg(1, MAX_GPUS), help="pipeline stages (llama.cpp: GPUs its layers split over)")
    p.add_argument("--dp", type=int_arg(1, MAX_GPUS), help="data-parallel engine instances in the replica. Without "
                   "tp/pp/dp the layout with the highest throughput on --num-gpus is chosen")
    p.add_argument("--expert-parallel", action="store_true", help="spread MoE experts over GPUs (all-to-all)")
    p.add_argument("--attn-dp", action="store_true", help="MoE: attention data-parallel over the --tp GPUs (each its "
                   "own sequences and KV cache), experts expert-parallel; see docs/moe_layouts.md")
    p.add_argument("--max-num-seqs", type=int_arg(1, 65_536), help="the engine's concurrency limit")
    p.add_argument("--profile", type=text_arg(), help="a named efficiency profile (see `planner calibrate`)")
    p.add_argument("--ttft-target-s", type=float_arg(0, 3600, low_open=True),
                   help="with --tpot-target-s: the request rate this replica serves within the targets (queueing)")
    p.add_argument("--tpot-target-s", type=float_arg(0, 60, low_open=True), help="time per output token target")
    p.add_argument("--latency-percentile", type=float, choices=(0.5, 0.9, 0.95, 0.99), default=0.95,
                   help="the percentile the targets hold at (default 0.95)")
    p.add_argument("--speculative", choices=METHODS, default="off",
                   help="speculative decoding: the model's MTP layers or a published EAGLE-3 head (default off)")
    p.add_argument("--draft-tokens", type=int_arg(1, MAX_DRAFT_TOKENS),
                   help="with --speculative: draft tokens per step (default: the shortest in data/speculative.csv)")
    p.add_argument("--acceptance-frac", type=float_arg(0, 1, low_open=True),
                   help="with --speculative: per-position acceptance (default: data/speculative.csv for the model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
