"""Side by side with NVIDIA's aiconfigurator on the held-out measured rows (issue 11, item 4).

    python benchmarks/bench_vs_aiconfigurator.py                  # default: up to 250 rows, 60 s per call
    python benchmarks/bench_vs_aiconfigurator.py --max-rows 40 --timeout-s 30
    python benchmarks/bench_vs_aiconfigurator.py --json out.json   # per-row predictions as well

aiconfigurator (https://pypi.org/project/aiconfigurator/) is installed into its own virtual environment,
.bench_venv/aiconfigurator (git-ignored), on first use; it is never a dependency of the planner or of CI.
If the environment cannot be created or pip cannot install it, the script says so in one line and exits 0.

Rows: data/measured/throughput.csv rows in the held-out split of planner.fit.validation (whole sources the
fit never saw: `MeasuredPoint.split == "holdout"`), that the planner can express, on a GPU and engine
aiconfigurator has a performance database for (h100_sxm, h200_sxm, b200_sxm, b300_sxm, gb200, a100_sxm,
l40s, l4, ...; trtllm, vllm, sglang). Each row becomes one fixed aiconfigurator configuration
(`aiconfigurator.cli.api.cli_estimate`, the function behind `aiconfigurator cli estimate`):
  batch1        mode static, batch 1: decode tokens/s = 1000 / TPOT ms, prefill tokens/s = ISL x 1000 / TTFT
  static_batch  mode static, batch = concurrency: output tokens/s, TTFT, TPOT
  serving       mode agg (in-flight batching), batch = concurrency: output tokens/s, TTFT, TPOT
                (open-loop request-rate rows are left out: aiconfigurator takes a concurrency)
  offline       mode static at batches 64..1024, the fastest whose memory fits the GPU
Model: aiconfigurator's bundled config of the same id (Llama 3.1 names mapped to its Meta-Llama-3.1 ids,
Llama 3.3 70B to Meta-Llama-3.1-70B, the same architecture), else the planner's config.json in a temporary
folder. Weights: bf16/fp16 -> bfloat16, fp8 -> fp8 (fp8_block for DeepSeek-style MoE), nvfp4 -> nvfp4,
mxfp4 -> MoE w4a16_mxfp4; KV cache fp8 or bfloat16; TP as measured, MoE expert parallelism as measured
(else the experts split by TP). A row aiconfigurator rejects is counted with its reason, never scored.

Scores: per accuracy family (planner.fit.validation.families_of: max_throughput, batch1_decode, prefill,
serving_throughput, ttft, tpot, moe, fixed_batch_throughput) the median absolute percentage error and
median bias (predicted / measured - 1) of aiconfigurator, the planner and a 100 %-of-peak roofline (every
efficiency 1, no fixed costs), all three on exactly the rows aiconfigurator expressed; then the planner on
every held-out row it expresses. Every figure is computed when the script runs. Bounded: --max-rows caps the
rows, --timeout-s each aiconfigurator call (the worker is restarted after a timeout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import select
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.data.catalog import DATA_DIR, load_catalog  # noqa: E402
from planner.errors import PlannerError  # noqa: E402
from planner.fit.calibration import replace_profiles  # noqa: E402
from planner.fit.validation import FAMILIES, families_of, predict_rows, read_measured  # noqa: E402

VENV = ROOT / ".bench_venv" / "aiconfigurator"
PACKAGE = "aiconfigurator"
SYSTEMS = {"H100-SXM": "h100_sxm", "H100-PCIe": "h100_pcie", "H200": "h200_sxm", "B200": "b200_sxm",
           "B300": "b300_sxm", "GB200": "gb200", "GB300": "gb300", "A100-80GB": "a100_sxm",
           "A100-80GB-PCIe": "a100_pcie", "L40S": "l40s", "L4": "l4", "RTX-PRO-6000-Server": "rtx_pro_6000_server"}
BACKENDS = ("trtllm", "vllm", "sglang")
MODEL_ALIASES = {"meta-llama/Llama-3.1-8B": "meta-llama/Meta-Llama-3.1-8B",
                 "meta-llama/Llama-3.1-70B": "meta-llama/Meta-Llama-3.1-70B",
                 "meta-llama/Llama-3.1-405B": "meta-llama/Meta-Llama-3.1-405B",
                 "meta-llama/Llama-3.3-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B"}
OFFLINE_BATCHES = (64, 128, 256, 512, 1024)

# Runs inside the aiconfigurator environment: one JSON request per stdin line, one JSON answer per line.
WORKER = r'''
import json, logging, os, sys, tempfile, shutil, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # library prints go to stderr, answers to the saved stdout
from aiconfigurator.cli.api import cli_estimate
import aiconfigurator_core
bundled = os.path.join(os.path.dirname(aiconfigurator_core.__file__), "model_configs")
keys = ("ttft", "tpot", "tokens/s", "tokens/s/gpu", "memory", "bs", "concurrency", "version")
for line in sys.stdin:
    req = json.loads(line)
    model, local = req.pop("model"), req.pop("local_config")
    tmp = None
    if not os.path.exists(os.path.join(bundled, model.replace("/", "--") + "_config.json")) and local:
        tmp = tempfile.mkdtemp()
        shutil.copy(local, os.path.join(tmp, "config.json"))
        model = tmp
    try:
        r = cli_estimate(model, **req)
        raw = r.raw if isinstance(r.raw, dict) else {}
        ans = {"ok": True, **{k: (float(raw[k]) if isinstance(raw.get(k), (int, float)) or hasattr(raw.get(k), "item")
                                  else raw.get(k)) for k in keys if k in raw}}
        ans.setdefault("ttft", float(r.ttft)); ans.setdefault("tpot", float(r.tpot))
    except BaseException as e:  # report every failure as an answer, keep serving
        ans = {"ok": False, "error": (type(e).__name__ + ": " + str(e)).splitlines()[0][:200]}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    out.write(json.dumps(ans) + "\n"); out.flush()
'''


def ensure_venv(install_timeout_s: float, where: Path = VENV) -> Path | None:
    """The environment's python with aiconfigurator importable, creating it if needed; None (and a printed
    reason) when that is impossible."""
    python = where / "bin" / "python"
    check = [str(python), "-c", "import aiconfigurator.cli.api"]
    try:
        if python.exists() and subprocess.run(check, capture_output=True, timeout=120).returncode == 0:
            return python
        if not python.exists():
            venv.EnvBuilder(with_pip=True).create(where)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", PACKAGE], capture_output=True, text=True,
                              timeout=install_timeout_s)
        imported = done.returncode == 0 and subprocess.run(check, capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError) as err:
        print(f"aiconfigurator benchmark skipped: {PACKAGE} in {where} cannot be installed or imported: {err}")
        return None
    if not imported:
        tail = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        print(f"aiconfigurator benchmark skipped: pip could not install {PACKAGE} into {where}: {tail}")
        return None
    return python


class Worker:
    """The in-environment worker process; `ask` returns its answer or a timeout/failure answer."""

    def __init__(self, python: Path):
        self.python = python
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self.proc = subprocess.Popen([str(self.python), "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ask(self, req: dict, timeout_s: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except OSError as err:
            self.close()
            return {"ok": False, "error": f"worker stopped: {err}"}
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()  # timed out or died: a fresh worker for the next call
            return {"ok": False, "error": "timeout" if not ready else "worker exited"}
        return json.loads(line)


def _quant(precision: str, kv_dtype: str | None, model_id: str, is_moe: bool) -> dict | str:
    kv = "fp8" if kv_dtype == "fp8" else "bfloat16"
    deepseek_style = is_moe and any(k in model_id.lower() for k in ("deepseek", "kimi", "glm-5"))
    table = {"bf16": ("bfloat16", "bfloat16"), "fp16": ("bfloat16", "bfloat16"),
             "fp8": ("fp8_block", "fp8_block") if deepseek_style else ("fp8", "fp8"),
             "nvfp4": ("nvfp4", "nvfp4"), "mxfp4": (None, "w4a16_mxfp4")}
    if precision not in table:
        return f"weight format {precision} has no aiconfigurator quant mode here"
    gemm, moe = table[precision]
    out = {"kvcache_quant_mode": kv}
    if gemm:
        out["gemm_quant_mode"] = gemm
    if is_moe:
        out["moe_quant_mode"] = moe
    return out


def requests_for(point, catalog) -> tuple[list[dict], str] | str:
    """The aiconfigurator calls one measured row needs and how to read the value, or why it cannot."""
    system = SYSTEMS.get(point.gpu)
    if system is None:
        return f"no aiconfigurator system for {point.gpu}"
    if point.engine not in BACKENDS:
        return f"engine {point.engine} not in aiconfigurator"
    model = catalog.model(point.model)
    arch = model.arch
    quant = _quant(point.precision, point.kv_dtype, point.model, arch.is_moe)
    if isinstance(quant, str):
        return quant
    tp = point.tp or point.num_gpus
    local = DATA_DIR / "model_configs" / (model.model_id.replace("/", "--") + ".json")
    base = {"model": MODEL_ALIASES.get(point.model, point.model),
            "local_config": str(local) if local.exists() else None,
            "system_name": system, "backend_name": point.engine, "isl": int(point.input_tokens),
            "osl": max(int(point.output_tokens), 2), "tp_size": int(tp), **quant}
    if arch.is_moe:
        ep = point.ep or 1
        base.update(moe_ep_size=int(ep), moe_tp_size=max(int(tp) // int(ep), 1))
    metric, scenario = point.metric, point.scenario
    if scenario == "batch1":
        reader = {"batch1_decode_tokens_per_s": "decode", "prefill_tokens_per_s": "prefill",
                  "ttft_ms": "ttft", "tpot_ms": "tpot", "output_tokens_per_s": "decode"}.get(metric)
        return ([{**base, "mode": "static", "batch_size": 1}], reader) if reader else f"metric {metric}"
    reader = {"output_tokens_per_s": "tokens", "ttft_ms": "ttft", "tpot_ms": "tpot"}.get(metric)
    if reader is None:
        return f"metric {metric} in {scenario}"
    if scenario == "offline":
        return [{**base, "mode": "static", "batch_size": b} for b in OFFLINE_BATCHES], "offline"
    if not point.concurrency:
        return "open-loop request rate (aiconfigurator takes a concurrency)"
    mode = "static" if scenario == "static_batch" else "agg"
    return [{**base, "mode": mode, "batch_size": int(point.concurrency)}], reader


def read_value(answers: list[dict], reader: str, point, gpu_memory_gb: float) -> float | str:
    good = [a for a in answers if a.get("ok")]
    if not good:
        return answers[0].get("error", "failed") if answers else "no call"
    a = good[0]
    if reader == "offline":
        fitting = [x for x in good if (x.get("memory") or 0) <= gpu_memory_gb] or good[:1]
        return max(float(x["tokens/s"]) for x in fitting)
    if reader == "decode":
        return 1000.0 / a["tpot"]
    if reader == "prefill":
        return point.input_tokens * 1000.0 / a["ttft"]
    if reader == "tokens":
        return float(a["tokens/s"])
    return float(a[reader])


def _roofline(catalog):
    """Every profile at 100 % of peak with no fixed costs."""
    perfect = [dataclasses.replace(p, mbu_frac=1.0, moe_mbu_frac=1.0, mfu_decode_frac=1.0, mfu_prefill_frac=1.0,
                                   comm_bw_frac=1.0, step_overhead_ms=0.0, comm_latency_us=0.0,
                                   moe_expert_overhead_us=0.0, layer_overhead_us=0.0)
               for p in catalog.efficiency]
    return replace_profiles(catalog, perfect)


def _stats(pairs: list[tuple[float, float]]) -> str:
    """'MdAPE% (bias%)' of (predicted, measured) pairs."""
    if not pairs:
        return f"{'-':>15s}"
    pred, meas = np.array(pairs).T
    ape = np.abs(pred - meas) / meas
    bias = pred / meas - 1.0
    return f"{100 * np.median(ape):6.1f}% ({100 * np.median(bias):+5.0f}%)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=250, help="cap on held-out rows sent to aiconfigurator")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="limit per aiconfigurator call")
    parser.add_argument("--install-timeout-s", type=float, default=900.0, help="limit for pip install")
    parser.add_argument("--json", type=Path, help="write per-row predictions to this file")
    parser.add_argument("--venv", type=Path, default=VENV, help=f"the environment (default {VENV.relative_to(ROOT)})")
    args = parser.parse_args()
    if not (1 <= args.max_rows <= 100_000 and 1 <= args.timeout_s <= 3600 and math.isfinite(args.timeout_s)):
        print("error: --max-rows must be in [1, 100000] and --timeout-s in [1, 3600]", file=sys.stderr)
        return 2
    python = ensure_venv(args.install_timeout_s, args.venv)
    if python is None:
        return 0
    catalog = load_catalog()
    held = [p for p in read_measured() if p.split == "holdout"]
    planner_rows, unexpressed = predict_rows(catalog, held)
    roof_rows, _ = predict_rows(_roofline(catalog), held)
    roof_of = {r.point.row_id: r.predicted_value for r in roof_rows}
    print(f"{len(held)} held-out rows (planner.fit.validation split 'holdout'); the planner expresses "
          f"{len(planner_rows)} ({len(unexpressed)} not)")
    worker, skipped, scored, t0 = Worker(python), {}, [], time.monotonic()
    candidates = []
    for r in planner_rows:
        plan = requests_for(r.point, catalog)
        if isinstance(plan, str):
            skipped[plan.split(":")[0][:70]] = skipped.get(plan.split(":")[0][:70], 0) + 1
        else:
            candidates.append((r, plan))
    if len(candidates) > args.max_rows:
        skipped[f"beyond --max-rows {args.max_rows}"] = len(candidates) - args.max_rows
        candidates = candidates[:args.max_rows]
    try:
        for r, (reqs, reader) in candidates:
            answers = [worker.ask(q, args.timeout_s) for q in reqs]
            value = read_value(answers, reader, r.point, catalog.gpu(r.point.gpu).memory_gb)
            if isinstance(value, str) or not (math.isfinite(value) and value > 0):
                why = f"aiconfigurator: {value}"[:90]
                skipped[why] = skipped.get(why, 0) + 1
                continue
            scored.append((r, value))
    except KeyboardInterrupt:
        print("interrupted; scoring the rows done so far")
    finally:
        worker.close()
    elapsed = time.monotonic() - t0
    print(f"aiconfigurator expressed {len(scored)} of {len(candidates)} rows sent ({elapsed:.0f} s); rows left out:")
    for why, n in sorted(skipped.items(), key=lambda kv: -kv[1]):
        print(f"  {n:4d}  {why}")
    print("\nMedian absolute error (median bias, predicted/measured - 1) on the rows aiconfigurator expressed")
    print(f"  {'family':24s} {'n':>4s} {'aiconfigurator':>16s} {'planner':>16s} {'roofline 100%':>16s}"
          f" | {'planner, all held-out':>22s} {'n':>4s}")
    by_family: dict[str, list] = {f: [] for f in FAMILIES}
    for r, value in scored:
        for fam in families_of(r):
            by_family.setdefault(fam, []).append((r, value))
    all_family: dict[str, list] = {f: [] for f in FAMILIES}
    for r in planner_rows:
        for fam in families_of(r):
            all_family.setdefault(fam, []).append(r)
    for fam in by_family:
        rows = by_family[fam]
        if not rows and not all_family.get(fam):
            continue
        aic = [(v, r.point.measured_value) for r, v in rows]
        pln = [(r.predicted_value, r.point.measured_value) for r, _ in rows]
        roof = [(roof_of[r.point.row_id], r.point.measured_value) for r, _ in rows if r.point.row_id in roof_of]
        every = [(r.predicted_value, r.point.measured_value) for r in all_family.get(fam, [])]
        print(f"  {fam:24s} {len(rows):4d} {_stats(aic):>16s} {_stats(pln):>16s} {_stats(roof):>16s} | "
              f"{_stats(every):>22s} {len(every):4d}")
    if args.json:
        args.json.write_text(json.dumps([
            {"row_id": r.point.row_id, "family": list(families_of(r)), "measured": r.point.measured_value,
             "aiconfigurator": v, "planner": r.predicted_value, "roofline": roof_of.get(r.point.row_id)}
            for r, v in scored], indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PlannerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
