"""Attainable GEMM rates per GPU and format, from NVIDIA's measured kernel timings in aiconfigurator.

aiconfigurator (PyPI `aiconfigurator`, github.com/ai-dynamo/aiconfigurator) ships the GEMM latencies NVIDIA
collected per system, engine and engine version:
    aiconfigurator_core/systems/data/<system>/gemm/<backend>/<version>/gemm_perf.parquet
with columns gemm_dtype, kernel_source, m, n, k, latency (milliseconds). This script turns them into TFLOPS
(2 m n k / latency), takes the median over large shapes (m >= 4096 tokens, n and k >= 4096: where a GEMM is
compute-bound and the planner's roofline charges it at the tensor peak), prints that and a few LLM-layer
shapes beside the dense peak in OUR data/gpus.csv, and (with --csv) writes data/gemm_attainable.csv: one row
per GPU and planner compute format, from the newest TensorRT-LLM collection (vLLM where TensorRT-LLM has none).

Only the measured kernel timings are used, never aiconfigurator's end-to-end estimates. Not run by tests or
CI (pandas/pyarrow and the aiconfigurator package are not dependencies of the planner):

    python3 scripts/gemm_attainable.py <site-packages>/aiconfigurator_core/systems [--csv data/gemm_attainable.csv]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIC_VERSION = "0.12.0"  # the PyPI release read; its files sit under aic-core/src/aiconfigurator_core/ on GitHub
AIC_TREE = f"https://github.com/ai-dynamo/aiconfigurator/blob/v{AIC_VERSION}/aic-core/src/aiconfigurator_core"
ACCESSED = "2026-12-07"

# aiconfigurator system -> our gpus.csv gpu_id (the device string each parquet records, checked below)
SYSTEM_GPU = {
    "h100_sxm": ("H100-SXM", "H100 80GB HBM3"), "h200_sxm": ("H200", "H200"),
    "b200_sxm": ("B200", "B200"), "b300_sxm": ("B300", "B300"), "gb200": ("GB200", "GB200"),
    "gb300": ("GB300", "GB300"), "a100_sxm": ("A100-80GB", "A100-SXM4-80GB"), "l40s": ("L40S", "L40S"),
    "rtx_pro_6000_server": ("RTX-PRO-6000-Server", "RTX PRO 6000 Blackwell Server Edition"),
    "b60": ("Arc-Pro-B60", "Arc(TM) Pro B60"),
}
# aiconfigurator gemm_dtype -> (planner compute format, label). Weight-only int8/int4 dequantize to bf16
# (the planner computes them at bf16); "sq" is SmoothQuant W8A8, the planner's int8.
DTYPE_FORMAT = {
    "bfloat16": ("bf16", "bf16"), "float16": ("bf16", "fp16"), "fp8": ("fp8", "fp8 per-tensor"),
    "fp8_block": ("fp8", "fp8 block-scaled"), "nvfp4": ("fp4", "nvfp4"), "sq": ("int8", "int8 W8A8 (SmoothQuant)"),
    "int8_wo": ("bf16", "int8 weight-only"), "int4_wo": ("bf16", "int4 weight-only"),
}
CSV_DTYPES = ("bfloat16", "fp8", "nvfp4", "sq")  # the one dtype per planner format that goes into the CSV
PEAK_COLUMN = {"bf16": "bf16_dense_tflops", "fp8": "fp8_dense_tflops", "fp4": "fp4_dense_tflops",
               "int8": "int8_dense_tops"}
BACKEND_ORDER = ("trtllm", "vllm", "sglang")  # CSV source preference
LARGE = 4096  # m, n, k at or above: compute-bound on every listed GPU (arithmetic intensity >= ~1,000 FLOP/B)
LLM_M = 8192  # tokens in the LLM-shape columns
# (label, n, k) of Llama layers that lie on aiconfigurator's n/k grid (Llama-3.1-8B: hidden 4096, 8 KV heads of
# 128, FFN 14336; Llama-3.1-70B / Llama-2-70B: hidden 8192, 8 KV heads, FFN 28672)
LLM_SHAPES = (("8B qkv", 6144, 4096), ("8B o", 4096, 4096), ("70B qkv", 10240, 8192), ("70B o", 8192, 8192),
              ("70B gate_up/tp8", 7168, 8192))


def version_key(text: str) -> tuple:
    """1.3.0rc20 < 1.3.0rc23 < 1.3.0; 0.5.6.post2 > 0.5.6."""
    parts = re.findall(r"\d+|[a-z]+", text.lower())
    return tuple((int(p), "") if p.isdigit() else (-1 if p == "rc" else 1, p) for p in parts)


def newest_table(backend_dir: Path) -> tuple[str, Path, str] | None:
    """(version, parquet, note) of the newest version whose gemm table exists (a reuse.yaml declares it reuses
    an older collection: then that one, named in the note)."""
    for vdir in sorted((p for p in backend_dir.iterdir() if p.is_dir()), key=lambda p: version_key(p.name),
                       reverse=True):
        table = vdir / "gemm_perf.parquet"
        if table.is_file():
            return vdir.name, table, ""
        reuse = vdir / "reuse.yaml"
        if reuse.is_file():
            found = re.search(r"from_version:\s*(\S+)", reuse.read_text())
            if found and (backend_dir / found.group(1) / "gemm_perf.parquet").is_file():
                return vdir.name, backend_dir / found.group(1) / "gemm_perf.parquet", f"reuses {found.group(1)}"
    return None


def our_peaks() -> dict[str, dict[str, float | None]]:
    with open(ROOT / "data" / "gpus.csv", newline="", encoding="utf-8") as f:
        return {r["gpu_id"]: {fmt: float(r[col]) if r[col] else None for fmt, col in PEAK_COLUMN.items()}
                for r in csv.DictReader(f)}


def summarise(parquet: Path):
    import pandas as pd

    d = pd.read_parquet(parquet, columns=["device", "gemm_dtype", "kernel_source", "m", "n", "k", "latency"])
    # one latency per shape (repeated collections: their median)
    d = d.groupby(["device", "gemm_dtype", "kernel_source", "m", "n", "k"], as_index=False).latency.median()
    d["tflops"] = 2.0 * d.m * d.n * d.k / (d.latency * 1e-3) / 1e12
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("systems", type=Path, help="aiconfigurator_core/systems (or its data/ folder)")
    ap.add_argument("--csv", type=Path, help="write the CSV rows here (e.g. data/gemm_attainable.csv)")
    args = ap.parse_args(argv)
    data = args.systems / "data" if (args.systems / "data").is_dir() else args.systems
    peaks = our_peaks()
    rows: dict[tuple[str, str], dict] = {}
    head = (f"{'system':20} {'backend':7} {'version':22} {'dtype':26} {'fmt':4} {'n':>4} {'median':>7} "
            f"{'p10':>6} {'p90':>6} {'peak':>7} {'frac':>5}  " + " ".join(f"{s[0]:>15}" for s in LLM_SHAPES))
    print(f"GEMM TFLOPS measured by NVIDIA (aiconfigurator {AIC_VERSION}); large = m,n,k >= {LARGE}; "
          f"LLM shapes at m = {LLM_M} as a fraction of our dense peak")
    print(head)
    for system, (gpu_id, device) in SYSTEM_GPU.items():
        gdir = data / system / "gemm"
        if not gdir.is_dir():
            continue
        for backend in BACKEND_ORDER:
            if not (gdir / backend).is_dir():
                continue
            found = newest_table(gdir / backend)
            if found is None:
                continue
            version, parquet, reuse = found
            d = summarise(parquet)
            if not d.device.str.contains(device, regex=False).all():
                print(f"  {system}: device {d.device.iloc[0]!r} is not {device!r}; skipped", file=sys.stderr)
                continue
            for (dtype, kernel), g in d.groupby(["gemm_dtype", "kernel_source"]):
                fmt, label = DTYPE_FORMAT.get(dtype, (None, dtype))
                big = g[(g.m >= LARGE) & (g.n >= LARGE) & (g.k >= LARGE)]
                if big.empty:
                    continue
                peak = peaks[gpu_id].get(fmt) if fmt else None
                med = float(big.tflops.median())
                frac = med / peak if peak else None
                llm = []
                for _, n, k in LLM_SHAPES:
                    at = g[(g.m == LLM_M) & (g.n == n) & (g.k == k)].tflops
                    llm.append(f"{float(at.iloc[0]) / peak:15.2f}" if peak and len(at) else f"{'-':>15}")
                ver = version + (f" ({reuse})" if reuse else "")
                print(f"{system:20} {backend:7} {ver:22} {label[:26]:26} {fmt or '-':4} {len(big):4d} {med:7.0f} "
                      f"{big.tflops.quantile(0.1):6.0f} {big.tflops.quantile(0.9):6.0f} "
                      f"{peak or float('nan'):7.1f} {frac if frac else float('nan'):5.2f}  " + " ".join(llm))
                key = (gpu_id, fmt)
                if dtype in CSV_DTYPES and frac is not None and key not in rows:
                    table = parquet.relative_to(data).as_posix()
                    rows[key] = dict(
                        gpu_id=gpu_id, format=fmt, attainable_frac=f"{frac:.3f}", n_shapes=len(big),
                        source_url=f"{AIC_TREE}/systems/data/{table}", source_accessed=ACCESSED,
                        notes=(f"aiconfigurator {AIC_VERSION} {backend} {ver} gemm_perf, gemm_dtype {dtype}, kernel "
                               f"{kernel}: median {med:.0f} TFLOPS over {len(big)} shapes with m, n, k >= {LARGE} "
                               f"(p10-p90 {big.tflops.quantile(0.1):.0f}-{big.tflops.quantile(0.9):.0f}) / our "
                               f"dense peak {peak:g} = {frac:.3f}"))
    if args.csv:
        fields = ["gpu_id", "format", "attainable_frac", "n_shapes", "source_url", "source_accessed", "notes"]
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            for row in rows.values():
                w.writerow(row)
        print(f"wrote {len(rows)} rows to {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
