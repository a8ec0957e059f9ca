"""The plan's configuration search against brute force, and its speed.

    python benchmarks/bench_optimizer.py [--repeat N]

For five scenarios (70B chat and 70B RAG on H100, Qwen3-235B-A22B on H200, Qwen3-8B on L40S,
DeepSeek-V3 on H200, all at one GPU price so only the configuration differs) it prints:
- the default plan's monthly cost and configuration;
- brute force: the cheapest of the plans with `num_gpus_per_replica` in {1, 2, 4, 8} and
  `precision` in {bf16, fp8} forced (the measurement the optimizer issue reported: the old
  default cost 2.5-10x that), and the ratio default / brute force (<= 1 means the search is at
  least as cheap);
- the plan's time cold (best of N, the search's caches cleared) and after a one-step volume change (the
  app's slider: the queueing capacities are reused), and the configurations it evaluated.
Nothing is hard-coded; every figure is measured on the machine that runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner import optimizer  # noqa: E402
from planner.data.catalog import load_catalog  # noqa: E402
from planner.errors import PlannerError  # noqa: E402
from planner.plan import plan  # noqa: E402
from planner.scenario import Scenario  # noqa: E402

PRICE_USD_PER_GPU_HOUR = 2.5  # one price for every GPU: only the configuration differs
SCENARIOS = {
    "70B chat on H100": dict(model="llama-3.3-70b", gpu="H100-SXM", preset="chat", requests_per_day=500_000),
    "70B RAG on H100": dict(model="llama-3.3-70b", gpu="H100-SXM", preset="rag", requests_per_day=200_000),
    "Qwen3-235B-A22B on H200": dict(model="qwen3-235b-a22b", gpu="H200", preset="chat", requests_per_day=300_000),
    "Qwen3-8B on L40S": dict(model="qwen3-8b", gpu="L40S", preset="chat", requests_per_day=1_000_000),
    "DeepSeek-V3 on H200": dict(model="deepseek-v3", gpu="H200", preset="chat", requests_per_day=300_000),
}
GRID = [(n, p) for n in (1, 2, 4, 8) for p in ("bf16", "fp8")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    catalog = load_catalog()
    worst = 0.0
    for name, kw in SCENARIOS.items():
        s = Scenario(**kw, gpu_price_usd_per_gpu_hour=PRICE_USD_PER_GPU_HOUR)
        times, warm = [], []
        for _ in range(args.repeat):
            optimizer._CAPACITY_CACHE.clear()  # cold: the queueing capacities of every configuration computed
            start = time.perf_counter()
            p = plan(s, catalog)
            times.append(time.perf_counter() - start)
            moved = dataclasses.replace(s, requests_per_day=s.requests_per_day * 1.26)  # one slider step
            start = time.perf_counter()
            plan(moved, catalog)
            warm.append(time.perf_counter() - start)
        best_forced, label = float("inf"), "none feasible"
        for n, prec in GRID:
            try:
                forced = plan(dataclasses.replace(s, num_gpus_per_replica=n, precision=prec), catalog)
            except PlannerError:
                continue
            if forced.headline.monthly_usd < best_forced:
                best_forced, label = forced.headline.monthly_usd, f"{n} GPUs at {prec}"
        b = p.search.best
        ratio = p.headline.monthly_usd / best_forced
        worst = max(worst, ratio)
        print(f"{name}: default {p.headline.monthly_usd:,.0f} USD/month = {b.total_gpus} x {b.gpu_id} "
              f"({b.layout.label}, {b.precision}/{b.kv_dtype} KV, {b.engine}, batch limit {b.max_num_seqs}); "
              f"brute force {best_forced:,.0f} ({label}); default / brute force = {ratio:.3f}; "
              f"plan (search) {min(times):.3f} s cold best of {args.repeat}, {min(warm):.3f} s after a volume change, "
              f"over {p.search.n_configurations:,} configurations "
              f"({p.search.n_meeting_targets:,} meet the targets)")
    print(f"worst default / brute-force ratio: {worst:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
