"""Start-up cost: `import planner` (and `planner.plan`) against `import numpy, pandas`, each in a fresh process.

    python benchmarks/bench_import.py [--repeat N]

Prints the median wall time of each over N fresh interpreters and their ratio; also whether scipy or pandas
were imported by the planner (they should not be: scipy loads only in calibration and queueing calls).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = {"planner": "import planner, planner.plan",
        "numpy+pandas": "import numpy, pandas"}
PROBE = "import sys, planner, planner.plan; print('scipy' in sys.modules, 'pandas' in sys.modules)"


def _time(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; "
                          "print(time.perf_counter() - t)"], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    medians = {name: statistics.median(_time(code) for _ in range(args.repeat)) for name, code in CODE.items()}
    for name, value in medians.items():
        print(f"import {name}: {value * 1e3:.0f} ms median of {args.repeat}")
    print(f"ratio planner / (numpy + pandas): {medians['planner'] / medians['numpy+pandas']:.2f}")
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    scipy, pandas = probe.stdout.split()
    print(f"scipy imported by planner: {scipy}; pandas imported by planner: {pandas}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
