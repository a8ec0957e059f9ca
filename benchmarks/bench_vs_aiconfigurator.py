"""Side by side with NVIDIA's aiconfigurator on the held-out measured rows (issue 11, item 4).

    python benchmarks/bench_vs_aiconfigurator.py                  # default: up to 250 rows, 60 s per call
    python benchmarks/bench_vs_aiconfigurator.py --max-rows 40 --timeout-s 30
    python benchmarks/bench_vs_aiconfigurator.py --json out.json   # per-row predictions as well
    python benchmarks/bench_vs_aiconfigurator.py --data data/measured/mlperf_v6.csv   # the MLPerf v6 systems

With --data the rows are that file's held-out rows (all of mlperf_v6.csv, which no fit reads). A multi-GPU row
that states no layout (MLPerf system results) is sent with the layout the planner's validation predicts it
with (`validation._layout_of`: eight TP1 instances where one GPU holds the model), so both models run the same
instances; rows under attention data parallelism (DeepSeek-R1) are left out, as are open-loop Server rows.

aiconfigurator (https://pypi.org/project/aiconfigurator/) is installed into its own virtual environment,
.bench_venv/aiconfigurator (git-ignored), on first use; it is never a dependency of the planner or of CI.
If the environment cannot be created or pip cannot install it, the script says so in one line and exits 0.

Rows: data/measured/throughput.csv rows in the held-out split of planner.fit.validation (whole sources the
fit never saw: `MeasuredPoint.split == "holdout"`), that the planner can express, on a GPU and engine
aiconfigurator has a performance database for (h100_sxm, h200_sxm, b200_sxm, b300_sxm, gb200, a100_sxm,
l40s, ...; trtllm, vllm, sglang; its default database version of each). Each row becomes one fixed
aiconfigurator configuration (`aiconfigurator.cli.api.cli_estimate`, the function behind
`aiconfigurator cli estimate`), for one of the row's `dp` identical instances (`measured.per_instance`):
  batch1        mode static, batch 1: decode tokens/s = 1000 / TPOT ms, prefill tokens/s = ISL x 1000 / TTFT
  static_batch  mode static, batch = concurrency: output tokens/s, TTFT, TPOT
  serving       mode agg (in-flight batching), batch = concurrency: output tokens/s, TTFT, TPOT
                (open-loop request-rate rows are left out: aiconfigurator takes a concurrency)
  offline       mode static at batches 64..1024, the fastest that fits
Whether a batch fits is aiconfigurator's agg-mode memory verdict for every row (weights, the batch's KV within
the engine's KV budget, one context chunk's activations; static mode's own verdict counts the activations of
the whole batch prefilled in one pass, which engines with chunked prefill never allocate). A concurrency above
what fits runs at the largest batch that fits, found by bisection, as the engine admits it and as the
planner's validation does (running = min(concurrency, capacity)); output tokens/s and TPOT are read there,
and TTFT rows are left out (the queue wait is not in aiconfigurator's model).
Model: aiconfigurator's bundled config of the same id (Llama 3.1 names mapped to its Meta-Llama-3.1 ids,
Llama 3.3 70B to Meta-Llama-3.1-70B, the same architecture); a bundled config.json it does not list as a
default model (Mixtral), or else the planner's config.json, is passed as a local folder. Weights:
bf16/fp16 -> bfloat16, fp8 -> fp8 (fp8_block for DeepSeek-style MoE), nvfp4 -> nvfp4, mxfp4 -> MoE
w4a16_mxfp4; KV cache fp8 or bfloat16 as the row states; TP and PP as measured, MoE expert parallelism as
measured (else the experts split by TP). A row aiconfigurator rejects is counted with its reason, never scored.

Scores: per accuracy family (planner.fit.validation.families_of: max_throughput, batch1_decode, prefill,
serving_throughput, ttft, tpot, moe, fixed_batch_throughput) the median absolute percentage error and
median bias (predicted / measured - 1) of aiconfigurator, the planner and a 100 %-of-peak roofline (every
efficiency 1, no fixed costs: bench_accuracy's), all three on exactly the rows aiconfigurator expressed;
then the planner on every held-out row it expresses; then the same by source, engine, GPU and metric. Every
figure is computed when the script runs; the header prints the time, the planner's commit and
aiconfigurator's version. Bounded: --max-rows caps the rows, --timeout-s each aiconfigurator call (the
worker is restarted after a timeout). The full default run takes about seven minutes on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
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

from benchmarks.bench_accuracy import _roofline as roofline_catalog  # noqa: E402  (one roofline for both benches)
from benchmarks.bench_accuracy import _source_label as source_label  # noqa: E402
from planner.data.catalog import DATA_DIR, load_catalog  # noqa: E402
from planner.errors import PlannerError  # noqa: E402
from planner.fit.measured import per_instance  # noqa: E402
from planner.fit.validation import (  # noqa: E402
    FAMILIES,
    MEASURED_DIR,
    _layout_of,
    _request,
    families_of,
    predict_rows,
    read_measured,  # noqa: E402
)
from planner.perf.estimate import prepare  # noqa: E402

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
WORKER = r"""
import json, logging, os, sys, tempfile, shutil, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # library prints go to stderr, answers to the saved stdout
from aiconfigurator.cli.api import cli_estimate
import aiconfigurator_core
from aiconfigurator_core.sdk.common import DefaultHFModels as known  # ids it resolves without a download
bundled = os.path.join(os.path.dirname(aiconfigurator_core.__file__), "model_configs")
keys = ("ttft", "tpot", "tokens/s", "tokens/s/gpu", "memory", "bs", "concurrency", "version")
for line in sys.stdin:
    req = json.loads(line)
    model, local = req.pop("model"), req.pop("local_config")
    tmp = None
    if model not in known:  # a bundled config.json it does not list, else the planner's: a local folder
        stem = os.path.join(bundled, model.replace("/", "--"))
        source = stem + "_config.json" if os.path.exists(stem + "_config.json") else local
        if source:
            tmp = tempfile.mkdtemp()
            shutil.copy(source, os.path.join(tmp, "config.json"))
            if os.path.exists(stem + "_hf_quant_config.json"):
                shutil.copy(stem + "_hf_quant_config.json", os.path.join(tmp, "hf_quant_config.json"))
            model = tmp
    try:
        r = cli_estimate(model, **req)
        raw = r.raw if isinstance(r.raw, dict) else {}
        ans = {"ok": True, **{k: (float(raw[k]) if isinstance(raw.get(k), (int, float)) or hasattr(raw.get(k), "item")
                                  else raw.get(k)) for k in keys if k in raw}}
        ans.setdefault("ttft", float(r.ttft)); ans.setdefault("tpot", float(r.tpot))
        s = getattr(r, "summary", None)
        ans["oom"] = bool(s.check_oom()) if s is not None else False
        ans["kv_oom"] = bool(s.check_kv_cache_oom()) if s is not None else False
    except BaseException as e:  # report every failure as an answer, keep serving
        ans = {"ok": False, "error": (type(e).__name__ + ": " + str(e)).splitlines()[0][:200]}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    out.write(json.dumps(ans) + "\n"); out.flush()
"""


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


@dataclasses.dataclass(frozen=True)
class CallPlan:
    """The aiconfigurator calls of one measured row: `base` (every argument but the batch) at `batches`, read
    as `reader`; `dp` data-parallel instances of the call make up the measured system."""

    base: dict
    batches: tuple[int, ...]
    reader: str
    dp: int


def with_planner_layout(point, catalog):
    """A multi-GPU row that states no layout (MLPerf system results) with the layout the planner's validation
    predicts it with (`validation._layout_of`: `estimate --num-gpus N`'s pick), so both models run the same
    instances; any other row as it is."""
    found, layout = _layout_of(catalog, point, MEASURED_DIR / "model_configs", None)
    if layout is None:
        return found
    return dataclasses.replace(found, tp=layout.tp, ep=layout.tp if layout.ep else None,
                               attn_dp=layout.attn_dp or None)


def requests_for(point, catalog) -> CallPlan | str:
    """The aiconfigurator calls one measured row needs and how to read the value, or why it cannot."""
    point = with_planner_layout(point, catalog)
    if point.engine not in BACKENDS:
        return f"engine {point.engine} not in aiconfigurator"
    system = SYSTEMS.get(point.gpu)
    if system is None:
        return f"no aiconfigurator system for {point.gpu}"
    if getattr(point, "attn_dp", None):
        return "attention data parallelism (not mapped to attention_dp_size here)"
    dp = point.dp or 1
    one = per_instance(point)  # one of the dp identical instances, as the planner's step model sees it
    if point.model_config:  # a model outside the catalog (MLPerf's Llama-2-70B): its config.json, as validation has it
        local = MEASURED_DIR / "model_configs" / point.model_config
        arch = prepare(catalog, _request(point, MEASURED_DIR / "model_configs")).model.arch
        name = point.model_config.removesuffix(".json").replace("--", "/")
    else:
        model = catalog.model(point.model)
        arch, name = model.arch, point.model
        local = DATA_DIR / "model_configs" / (model.model_id.replace("/", "--") + ".json")
    quant = _quant(point.precision, point.kv_dtype, point.model, arch.is_moe)
    if isinstance(quant, str):
        return quant
    tp = one.tp or one.num_gpus
    pp = max(one.num_gpus // tp, 1)
    base = {"model": MODEL_ALIASES.get(name, name),
            "local_config": str(local) if local.exists() else None,
            "system_name": system, "backend_name": point.engine, "isl": int(point.input_tokens),
            "osl": max(int(point.output_tokens), 2), "tp_size": int(tp), "pp_size": int(pp), **quant}
    if arch.is_moe:
        ep = point.ep or 1
        base.update(moe_ep_size=int(ep), moe_tp_size=max(int(tp) // int(ep), 1))
    metric, scenario = point.metric, point.scenario
    if scenario == "batch1":
        reader = {"batch1_decode_tokens_per_s": "decode", "prefill_tokens_per_s": "prefill",
                  "ttft_ms": "ttft", "tpot_ms": "tpot", "output_tokens_per_s": "decode"}.get(metric)
        return CallPlan({**base, "mode": "static"}, (1,), reader, dp) if reader else f"metric {metric}"
    reader = {"output_tokens_per_s": "tokens", "ttft_ms": "ttft", "tpot_ms": "tpot"}.get(metric)
    if reader is None:
        return f"metric {metric} in {scenario}"
    if scenario == "offline":
        return CallPlan({**base, "mode": "static"}, OFFLINE_BATCHES, "offline", dp)
    if not one.concurrency:
        return "open-loop request rate (aiconfigurator takes a concurrency)"
    mode = "static" if scenario == "static_batch" else "agg"
    return CallPlan({**base, "mode": mode}, (int(one.concurrency),), reader, dp)


def _fits(answer: dict) -> bool:
    """aiconfigurator's own memory verdict: weights, activations and the batch's KV within the GPU (`oom`) and
    the KV within the engine's KV budget (`kv_oom`, free_gpu_memory_fraction)."""
    return bool(answer.get("ok")) and not answer.get("oom") and not answer.get("kv_oom")


def _over_memory(answer: dict) -> bool:
    """aiconfigurator's answer says the batch does not fit (agg mode raises on it, static mode flags it)."""
    error = str(answer.get("error", ""))
    return (bool(answer.get("ok")) and not _fits(answer)) or error.startswith("RuntimeError: OOM")


class Caller:
    """The worker's answers, cached per call. Whether a batch fits is asked of agg mode (in-flight batching:
    the KV of the batch plus one context chunk's activations, as the engines run it) for every row: static
    mode counts the activations of the whole batch's prompts prefilled in one pass (78 GB per GPU for 16 x
    32k-token prompts of Qwen3-235B on 8 H100s), which no engine with chunked prefill allocates."""

    def __init__(self, worker: Worker, timeout_s: float):
        self.worker, self.timeout_s = worker, timeout_s
        self.answers: dict[str, dict] = {}
        self.capacities: dict[str, int | str] = {}
        self.calls = 0

    def ask(self, base: dict, batch: int) -> dict:
        key = json.dumps({**base, "batch_size": batch}, sort_keys=True)
        if key not in self.answers:
            self.calls += 1
            self.answers[key] = self.worker.ask({**base, "batch_size": batch}, self.timeout_s)
        return self.answers[key]

    def admits(self, base: dict, batch: int) -> bool | str:
        """Whether `batch` sequences fit by agg mode's memory verdict; an error string when agg mode fails
        otherwise (then the row's own mode's verdict is used)."""
        a = self.ask({**base, "mode": "agg"}, batch)
        if _fits(a):
            return True
        return False if _over_memory(a) else a.get("error", "failed")

    def capacity(self, base: dict, over: int) -> int | str:
        """The largest batch below `over` (which does not fit) that fits: 0 when batch 1 does not, an error
        string when a call fails. Memory grows with the batch, so a bisection; one answer per configuration."""
        key = json.dumps({**base, "mode": "agg"}, sort_keys=True)
        if key not in self.capacities:
            lo, hi = 0, over  # lo fits (0: nothing yet), hi does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                verdict = self.admits(base, mid)
                if isinstance(verdict, str):
                    self.capacities[key] = verdict
                    break
                lo, hi = (mid, hi) if verdict else (lo, mid)
            else:
                self.capacities[key] = lo
        return self.capacities[key]


def _admitted(caller: Caller, plan: CallPlan, batch: int) -> tuple[bool, dict] | str:
    """(whether `batch` fits, the row's-mode answer at it), or the error of the row's-mode call."""
    a = caller.ask(plan.base, batch)
    if not a.get("ok") and not _over_memory(a):
        return a.get("error", "failed")
    verdict = caller.admits(plan.base, batch) if plan.base["mode"] != "agg" else _fits(a)
    if isinstance(verdict, str):  # agg mode cannot run this configuration: the row's own mode's verdict
        verdict = _fits(a)
    return verdict and bool(a.get("ok")), a


def evaluate(caller: Caller, plan: CallPlan, point) -> tuple[float, int, bool] | str:
    """(aiconfigurator's value for the row, the batch it ran, whether that batch is below the measured
    concurrency because more does not fit), or why there is none.

    A concurrency above what fits runs at the largest batch that fits, as the engine would admit it and as the
    planner's validation does (`running = min(concurrency, capacity)`): output tokens/s and TPOT are read
    there; TTFT is not scored then, since it would include a queue wait aiconfigurator does not model."""
    if plan.reader == "offline":
        answers = [(b, _admitted(caller, plan, b)) for b in plan.batches]
        fitting = [(b, got[1]) for b, got in answers if not isinstance(got, str) and got[0]]
        if not fitting:
            errors = [got for _, got in answers if isinstance(got, str)]
            return errors[0] if errors else f"no batch of {plan.batches[0]}..{plan.batches[-1]} fits"
        b, a = max(fitting, key=lambda ba: float(ba[1]["tokens/s"]))
        return float(a["tokens/s"]) * plan.dp, b, False
    batch = plan.batches[0]
    got = _admitted(caller, plan, batch)
    if isinstance(got, str):
        return got
    fits, a = got
    capped = False
    if not fits:
        if batch == 1:
            return "the weights and one sequence do not fit (aiconfigurator's memory model)"
        if plan.reader == "ttft":
            return "concurrency above aiconfigurator's KV capacity (TTFT would include an unmodelled queue wait)"
        fit = caller.capacity(plan.base, batch)
        if isinstance(fit, str):
            return fit
        if fit < 1:
            return "the weights and one sequence do not fit (aiconfigurator's memory model)"
        batch, a, capped = fit, caller.ask(plan.base, fit), True
        if not a.get("ok"):
            return a.get("error", "failed")
    value = {"decode": lambda: 1000.0 / a["tpot"],
             "prefill": lambda: point.input_tokens * 1000.0 / a["ttft"],
             "tokens": lambda: float(a["tokens/s"]) * plan.dp}.get(plan.reader, lambda: float(a[plan.reader]))()
    return value, batch, capped


def _stats(pairs: list[tuple[float, float]]) -> str:
    """'MdAPE% (bias%)' of (predicted, measured) pairs."""
    if not pairs:
        return f"{'-':>15s}"
    pred, meas = np.array(pairs).T
    ape = np.abs(pred - meas) / meas
    bias = pred / meas - 1.0
    return f"{100 * np.median(ape):6.1f}% ({100 * np.median(bias):+5.0f}%)"


def _count(reasons: dict[str, int], why: str) -> None:
    reasons[why] = reasons.get(why, 0) + 1


def _provenance(python: Path) -> str:
    """The date, the planner's commit and aiconfigurator's version, for the printed header."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=30).stdout.strip() or "unknown"
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "planner", "data"], capture_output=True,
                               text=True, timeout=30).stdout.splitlines()
        if dirty:
            head += f" + {len(dirty)} uncommitted change(s) under planner/ and data/"
        ask = "import importlib.metadata as m; print(m.version('aiconfigurator'))"
        version = subprocess.run([str(python), "-c", ask], capture_output=True, text=True,
                                 timeout=60).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        head, version = "unknown", "unknown"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when}; planner commit {head}; aiconfigurator {version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=250, help="cap on held-out rows sent to aiconfigurator")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="limit per aiconfigurator call")
    parser.add_argument("--install-timeout-s", type=float, default=900.0, help="limit for pip install")
    parser.add_argument("--json", type=Path, help="write per-row predictions to this file")
    parser.add_argument("--data", type=Path, default=None,
                        help="a measured CSV (default data/measured/throughput.csv; its held-out rows are used), e.g. "
                             "data/measured/mlperf_v6.csv")
    parser.add_argument("--venv", type=Path, default=VENV, help=f"the environment (default {VENV.relative_to(ROOT)})")
    args = parser.parse_args()
    if not (1 <= args.max_rows <= 100_000 and 1 <= args.timeout_s <= 3600 and math.isfinite(args.timeout_s)):
        print("error: --max-rows must be in [1, 100000] and --timeout-s in [1, 3600]", file=sys.stderr)
        return 2
    python = ensure_venv(args.install_timeout_s, args.venv)
    if python is None:
        return 0
    print(_provenance(python))
    catalog = load_catalog()
    held = [p for p in (read_measured(args.data) if args.data else read_measured()) if p.split == "holdout"]
    planner_rows, unexpressed = predict_rows(catalog, held)
    roof_rows, _ = predict_rows(roofline_catalog(catalog), held)
    roof_of = {r.point.row_id: r.predicted_value for r in roof_rows}
    print(f"{len(held)} held-out rows (planner.fit.validation split 'holdout'); the planner expresses "
          f"{len(planner_rows)} ({len(unexpressed)} not)")
    skipped: dict[str, int] = {}
    for u in unexpressed:
        _count(skipped, f"planner: {u.reason}"[:90])
    candidates = []
    for r in planner_rows:
        plan = requests_for(r.point, catalog)
        if isinstance(plan, str):
            _count(skipped, plan)
        else:
            candidates.append((r, plan))
    if len(candidates) > args.max_rows:
        skipped[f"beyond --max-rows {args.max_rows}"] = len(candidates) - args.max_rows
        candidates = candidates[:args.max_rows]
    worker, scored, t0 = Worker(python), [], time.monotonic()
    caller = Caller(worker, args.timeout_s)
    try:
        for r, plan in candidates:
            got = evaluate(caller, plan, r.point)
            if isinstance(got, str) or not (math.isfinite(got[0]) and got[0] > 0):
                _count(skipped, f"aiconfigurator: {got if isinstance(got, str) else 'no positive value'}"[:110])
                continue
            scored.append((r, *got))
    except KeyboardInterrupt:
        print("interrupted; scoring the rows done so far")
    finally:
        worker.close()
    elapsed = time.monotonic() - t0
    versions = sorted({f"{json.loads(k)['backend_name']} {a['version']}" for k, a in caller.answers.items()
                       if a.get("ok") and a.get("version")})
    capped = sum(1 for *_, c in scored if c)
    print(f"aiconfigurator expressed {len(scored)} of {len(candidates)} rows sent ({caller.calls} calls, "
          f"{elapsed:.0f} s; its databases: {', '.join(versions) or '-'}); {capped} of them at the largest batch "
          f"that fits, below the measured concurrency. Rows left out:")
    for why, n in sorted(skipped.items(), key=lambda kv: -kv[1]):
        print(f"  {n:4d}  {why}")
    print("\nMedian absolute error (median bias, predicted/measured - 1) on the rows aiconfigurator expressed")
    print(f"  {'family':24s} {'n':>4s} {'aiconfigurator':>16s} {'planner':>16s} {'roofline 100%':>16s}"
          f" | {'planner, all held-out':>22s} {'n':>4s}")
    by_family: dict[str, list] = {f: [] for f in FAMILIES}
    for r, value, *_ in scored:
        for fam in families_of(r):
            by_family.setdefault(fam, []).append((r, value))
    all_family: dict[str, list] = {f: [] for f in FAMILIES}
    for r in planner_rows:
        for fam in families_of(r):
            all_family.setdefault(fam, []).append(r)

    def triple(rows: list) -> tuple[str, str, str]:
        aic = [(v, r.point.measured_value) for r, v in rows]
        pln = [(r.predicted_value, r.point.measured_value) for r, _ in rows]
        roof = [(roof_of[r.point.row_id], r.point.measured_value) for r, _ in rows if r.point.row_id in roof_of]
        return _stats(aic), _stats(pln), _stats(roof)

    for fam in by_family:
        rows = by_family[fam]
        if not rows and not all_family.get(fam):
            continue
        every = [(r.predicted_value, r.point.measured_value) for r in all_family.get(fam, [])]
        aic, pln, roof = triple(rows)
        print(f"  {fam:24s} {len(rows):4d} {aic:>16s} {pln:>16s} {roof:>16s} | {_stats(every):>22s} {len(every):4d}")
    print("\nThe same by source, engine, GPU and metric (rows aiconfigurator expressed)")
    print(f"  {'source / engine / GPU / metric':58s} {'n':>4s} {'aiconfigurator':>16s} {'planner':>16s}"
          f" {'roofline 100%':>16s}")
    groups: dict[str, list] = {}
    for r, value, *_ in scored:
        key = f"{source_label(r.point.source_url)} {r.point.engine} {r.point.gpu} {r.point.metric}"
        groups.setdefault(key, []).append((r, value))
    for key in sorted(groups):
        aic, pln, roof = triple(groups[key])
        print(f"  {key[:58]:58s} {len(groups[key]):4d} {aic:>16s} {pln:>16s} {roof:>16s}")
    if args.json:
        args.json.write_text(json.dumps([
            {"row_id": r.point.row_id, "family": list(families_of(r)), "metric": r.point.metric,
             "source": source_label(r.point.source_url), "engine": r.point.engine, "gpu": r.point.gpu,
             "measured": r.point.measured_value, "aiconfigurator": v, "aiconfigurator_batch": b,
             "aiconfigurator_batch_capped": c, "planner": r.predicted_value, "roofline": roof_of.get(r.point.row_id)}
            for r, v, b, c in scored], indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PlannerError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
