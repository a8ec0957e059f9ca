"""`planner simulate`: the plan's chosen replica under its design load, simulated request by request.

Plans the scenario, then runs the discrete-event simulation (`planner.perf.simulation`) of one
engine instance of the chosen configuration at the load the fleet gives it (the design rate
over the serving instances), with the same step-time model, and prints the simulated TTFT/TPOT
percentiles beside the analytic ones the plan used.
"""

from __future__ import annotations

import argparse

import numpy as np

from planner import units
from planner.cli._output import catalog_with_profile, int_arg, print_json, print_pairs, print_table, scenario_inputs
from planner.errors import InvalidInputError, counted
from planner.optimizer import option_candidates
from planner.perf import evaluator
from planner.perf.estimate import resolve_model
from planner.perf.simulation import MAX_SPAN_S, scalar_step, simulate
from planner.plan import plan


def _run(args: argparse.Namespace) -> int:
    scenario, sizes = scenario_inputs(args.scenario, args.set)
    cat = catalog_with_profile(scenario.profile)
    p = plan(scenario, cat, request_sizes=sizes)
    b, e = p.search.best, p.estimate
    model = resolve_model(cat, scenario.model)
    cands = option_candidates(cat, model, b, profile=scenario.profile)
    step = evaluator.step_time_fn(model.arch, cands, input_tokens=e.input_tokens, output_tokens=e.output_tokens)
    serving = max(b.replicas - scenario.redundancy_replicas, 1)
    rate = p.workload.requests_per_day / units.S_PER_DAY * p.economics.design_rate_factor / (serving * b.layout.dp)
    if args.requests / rate > MAX_SPAN_S:
        raise InvalidInputError(f"requests_per_day = {p.workload.requests_per_day:.3g} gives {rate:.3g} requests/s "
                                f"per engine instance: {args.requests:,} requests would span about "
                                f"{args.requests / rate:.2g} s, beyond the {MAX_SPAN_S:.0e} s over which the "
                                f"simulation's clock resolves step times; simulate a higher requests_per_day")
    prompt = max(1, round(p.workload.input_tokens_mean * (1 - p.workload.prompt_cache_hit_frac)))  # as the plan
    sim = simulate(scalar_step(step), rate_per_s=rate, input_tokens=prompt, output_tokens=e.output_tokens,
                   max_batch=e.max_concurrency, token_budget=cat.engine(b.engine).max_num_batched_tokens or 1_000_000,
                   n_requests=args.requests, seed=args.seed)
    # every request's TTFT also pays the engine's per-request overhead outside the GPU steps, as in the plan
    overhead = (cands[0].profile.request_overhead_ms or 0.0) / units.MS_PER_S
    simulated = {k: v + overhead if k.startswith("ttft_p") else v for k, v in sim.summary().items()}
    histograms = {}
    for what in ("ttft", "tpot"):
        counts, edges = sim.histogram(what, bins=args.bins)
        histograms[what] = {"counts": counts.tolist(),
                            "edges_s": (edges + (overhead if what == "ttft" else 0.0)).tolist()}
    out = {"configuration": b.to_dict(), "rate_per_s_per_instance": rate, "analytic": dict(b.latency),
           "simulated": simulated, "histograms": histograms, "ttft_target_s": p.ttft_target_s,
           "tpot_target_s": p.tpot_target_s, "latency_percentile": p.latency_percentile,
           "request_overhead_s": overhead}
    if args.json:
        print_json(out)
        return 0
    replicas = counted(b.replicas, "replica")
    print_pairs([("configuration", f"{b.total_gpus} x {b.gpu_id}: {replicas} of {b.layout.label}, "
                                   f"{b.precision}/{b.kv_dtype} KV, {b.engine}, batch limit {b.max_num_seqs}"),
                 ("load per engine instance", f"{rate:,.3f} requests/s ({sim.n_requests:,} simulated requests, "
                                              f"{sim.simulated_s:,.0f} s)"),
                 ("targets", f"TTFT {p.ttft_target_s:g} s, TPOT {p.tpot_target_s * 1e3:g} ms at "
                             f"p{round(p.latency_percentile * 100)}"),
                 ("per-request overhead", f"{overhead * units.MS_PER_S:g} ms on every TTFT (API server, "
                                          f"tokenisation: {b.engine}'s fitted value, outside the GPU steps)")])
    rows = []
    for what, scale, unit in (("ttft", 1.0, "s"), ("tpot", 1e3, "ms")):
        for q in (50, 90, 95, 99):
            key = f"{what}_p{q}_s"
            rows.append([f"{what.upper()} p{q} ({unit})", f"{b.latency[key] * scale:.3f}",
                         f"{simulated[key] * scale:.3f}"])
    print()
    print_table(["", "analytic (plan)", "simulated"], rows)
    for what, scale, unit in (("ttft", 1.0, "s"), ("tpot", 1e3, "ms")):
        counts, edges = np.asarray(histograms[what]["counts"]), np.asarray(histograms[what]["edges_s"])
        top = max(int(counts.max()), 1)
        print(f"\n{what.upper()} histogram ({unit})")
        for k, count in enumerate(counts):
            print(f"  {edges[k] * scale:9.3f} - {edges[k + 1] * scale:9.3f}  {'#' * round(40 * count / top)} {count}")
    if sim.saturated:
        print("warning: the simulated queue kept growing: this load saturates the instance")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate the plan's replica under its design load, request by request")
    p.add_argument("--scenario", metavar="FILE", help="scenario file (.json or .toml); default: built-in defaults")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario field (repeatable)")
    p.add_argument("--requests", type=int_arg(100, 200_000), default=20_000,
                   help="simulated requests (default 20,000; the first 10%% are warm-up)")
    p.add_argument("--seed", type=int_arg(0, 2**31 - 1), default=0, help="random seed (default 0)")
    p.add_argument("--bins", type=int_arg(2, 200), default=12, help="histogram bins (default 12)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
