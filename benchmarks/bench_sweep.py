"""Speed of the engine: the vectorised sweep vs one estimate() per configuration.

    python benchmarks/bench_sweep.py [--repeat N]

Prints the number of configurations (every catalog model x GPU x precision x 1-8 GPUs at
one workload), the best-of-N wall time of `sweep()`, and the time of estimate() on a
sample, extrapolated to the same count. Nothing is hard-coded: every figure is measured
on the machine that runs it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.data.catalog import load_catalog  # noqa: E402
from planner.errors import PlannerError  # noqa: E402
from planner.perf.estimate import EstimateRequest, estimate  # noqa: E402
from planner.perf.sweep import sweep  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the sweep (best is reported)")
    parser.add_argument("--input-tokens", type=int, default=1024)
    parser.add_argument("--output-tokens", type=int, default=256)
    parser.add_argument("--sample", type=int, default=300, help="estimate() calls to time for comparison")
    args = parser.parse_args()
    catalog = load_catalog()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = sweep(catalog, input_tokens=args.input_tokens, output_tokens=args.output_tokens,
                       gpu_counts=range(1, 9))
        times.append(time.perf_counter() - start)
    n, fits = len(result), int(result["fits"].sum())
    print(f"catalog: {len(catalog.models)} models x {len(catalog.gpus)} GPUs x {len(catalog.precisions)} precisions "
          f"x 1-8 GPUs at {args.input_tokens}/{args.output_tokens} tokens")
    print(f"sweep(): {n:,} runnable configurations ({fits:,} fit) in {min(times):.3f} s best of {args.repeat} "
          f"(median {sorted(times)[len(times) // 2]:.3f} s) = {1e6 * min(times) / n:.2f} us per configuration")
    rows = result.rows()
    random.seed(0)
    sample = random.sample(rows, min(args.sample, len(rows)))
    start = time.perf_counter()
    for row in sample:
        try:
            estimate(catalog, EstimateRequest(model=row["model_id"], gpu=row["gpu_id"], num_gpus=row["num_gpus"],
                                              precision=row["precision"], engine=row["engine"],
                                              input_tokens=args.input_tokens, output_tokens=args.output_tokens))
        except PlannerError:
            pass
    per_call = (time.perf_counter() - start) / len(sample)
    print(f"estimate(): {1e3 * per_call:.2f} ms per configuration -> {per_call * n:.1f} s for the same sweep "
          f"({per_call * n / min(times):.0f}x slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
