"""Hostile-input sweep over the CLI, run as a user would: `python -m planner ...` as separate processes.

Not a pytest module (the property suites beside it are); run it to count outcomes:

    python3 tests/bad_input/sweep.py [--jobs 2] [--only SURFACE] [--verbose]

Each case names a surface, the argv, what should happen ("reject": exit 2/3/4 with one line on
stderr; "accept": exit 0) and optional checks (an injection marker must not appear unquoted, the
price store must be unchanged after a rejection). Outcomes counted: traceback, hang (no exit
within the timeout), silent acceptance (exit 0 where a rejection was due), wrong rejection,
multi-line or over-long error, store changed on failure, and injection.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
TIMEOUT_S = 30
MAX_ERROR_CHARS = 400


@dataclass
class Case:
    surface: str
    name: str
    argv: list[str]
    expect: str = "reject"  # reject | accept | any
    setup: Callable[[Path], None] | None = None
    check: Callable[[int, str, str, Path], str | None] | None = None
    owner: str = "boundaries"  # boundaries (this suite's owner) | scenario | calibration
    outcome: list[str] = field(default_factory=list)


def _write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return setup


def _fifo(rel: str) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
    return setup


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(work: Path) -> None:
        for s in setups:
            s(work)
    return setup


def _config(**changes: object) -> str:
    base = json.loads((REPO / "data" / "model_configs" / "Qwen--Qwen3-0.6B.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return json.dumps(base)


def _no_marker(marker: str) -> Callable[[int, str, str, Path], str | None]:
    def check(rc: int, out: str, err: str, work: Path) -> str | None:
        if (work / "pwned").exists():
            return "injection: the command ran"
        if rc == 0 and marker in out and f"'{marker}" not in out and f"{marker}'" not in out:
            return f"injection: {marker!r} written unquoted"
        return None
    return check


def _newline_check(rc: int, out: str, err: str, work: Path) -> str | None:
    if rc == 0 and any(line.strip().startswith("touch pwned") for line in out.splitlines()):
        return "injection: newline broke out into a command line"
    return None


BIG = "1" + "0" * 400  # 10**400: overflows float conversion
LITELLM_OK = '{"together_ai/x": {"mode": "chat", "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7, ' \
             '"litellm_provider": "together_ai"}}'
VMS_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region\n"


def _usage_csv(rows: list[tuple[str, str, str]]) -> str:
    return "timestamp,input_tokens,output_tokens\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)


def _peaky_trace() -> str:
    """10 days, one request per hour except one hour with 236 x 24 x 10 / ... requests (peak 236x the mean)."""
    # 240 hours; base 1 request each except hour 100 with k requests; mean = (239 + k) / 240; ratio = k / mean.
    # ratio 236 -> k = 236 (239 + k) / 240 -> k (240 - 236) = 236 * 239 -> k = 14,101.
    rows = []
    start = 1_700_006_400  # 2023-11-15T00:00:00Z, a whole hour
    for hour in range(240):
        n = 14_101 if hour == 100 else 1
        rows.extend((str(start + hour * 3600 + i * 3600 / n), "100", "10") for i in range(n))
    return _usage_csv(rows)


def cases() -> list[Case]:
    est = ["estimate", "--gpu", "h100", "--model"]
    c: list[Case] = []
    # ---- config.json (planner/data/catalog.py model_from_config_file, planner/model/*)
    configs = {
        "not utf-8": b'{"hidden_size": "\xff"}',
        "n_routed_experts abc": _config(n_routed_experts="abc", num_experts_per_tok=2),
        "hidden_size NaN": _config().replace('"hidden_size": 1024', '"hidden_size": NaN'),
        "num_hidden_layers 1e9": _config(num_hidden_layers=1e9),
        "num_attention_heads 0": _config(num_attention_heads=0),
        "num_key_value_heads 0": _config(num_key_value_heads=0),
        "max_position_embeddings -1": _config(max_position_embeddings=-1),
        "layer_types wrong length": _config(layer_types=["full_attention"] * 3),
        "vocab_size 10**400": _config().replace('"vocab_size": 151936', f'"vocab_size": {BIG}'),
        "hidden_size 1e400": _config().replace('"hidden_size": 1024', '"hidden_size": 1e400'),
        "deep nesting": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "duplicate key": _config()[:-1] + ', "hidden_size": 2048}',
        "NUL byte": _config().replace('"model_type"', '"model\\u0000_type"').encode() + b"\x00",
        "not an object": "[1, 2]",
        "hidden_size string": _config(hidden_size="4096"),
        "head_dim negative": _config(head_dim=-128),
        "intermediate_size float": _config(intermediate_size=3072.5),
        "kv heads > heads": _config(num_key_value_heads=64),
    }
    for name, text in configs.items():
        c.append(Case("config.json", name, [*est, "cfg/config.json"], setup=_write("cfg/config.json", text)))
    c.append(Case("config.json", "valid", [*est, "cfg/config.json", "--json"], expect="accept",
                  setup=_write("cfg/config.json", _config())))
    c.append(Case("config.json", "FIFO", [*est, "cfg/config.json"], setup=_fifo("cfg/config.json")))
    c.append(Case("config.json", "directory", [*est, "cfg.json"], setup=lambda w: (w / "cfg.json").mkdir()))
    c.append(Case("config.json", "/proc file", [*est, "/proc/self/environ"]))

    # ---- LiteLLM import
    lite = ["prices", "import-litellm"]
    litellm = {
        "1e300 per token": LITELLM_OK.replace("1e-7", "1e300"),
        "10**400 cost": LITELLM_OK.replace("1e-7", BIG),
        "1e400 cost": LITELLM_OK.replace("1e-7", "1e400"),
        "NaN cost": LITELLM_OK.replace("1e-7", "NaN"),
        "cost string": LITELLM_OK.replace("1e-7", '"abc"'),
        "duplicate keys": LITELLM_OK[:-1] + ', "together_ai/x": {"mode": "chat"}}',
        "deep nesting": '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "not utf-8": b'{"x\xff": {}}',
        "NUL byte": LITELLM_OK.encode() + b"\x00",
        "huge key": '{"' + "k" * 2_000_000 + '": 5}',
        "negative max tokens": LITELLM_OK[:-2] + ', "max_input_tokens": -5}}',
        "max tokens 10**400": LITELLM_OK[:-2] + f', "max_input_tokens": {BIG}}}}}',
    }
    for name, text in litellm.items():
        c.append(Case("litellm", name, [*lite, "p.json"], setup=_write("p.json", text)))
    c.append(Case("litellm", "valid", [*lite, "p.json"], expect="accept", setup=_write("p.json", LITELLM_OK)))
    c.append(Case("litellm", "FIFO", [*lite, "p.json"], setup=_fifo("p.json")))
    c.append(Case("litellm", "FIFO in dir", [*lite, "d"],
                  setup=_fifo("d/model_prices_and_context_window.json")))
    c.append(Case("litellm", "/proc dir", [*lite, "/proc/self"]))
    c.append(Case("litellm", "/proc file", [*lite, "/proc/self/status"]))
    c.append(Case("litellm", "store dir is /proc", [*lite, "p.json", "--dir", "/proc/self/x"],
                  setup=_write("p.json", LITELLM_OK)))
    c.append(Case("litellm", "store dir is a file", [*lite, "p.json", "--dir", "p.json"],
                  setup=_write("p.json", LITELLM_OK)))

    # ---- SkyPilot import
    sky = ["prices", "import-skypilot"]
    vms = {
        "1e300 $/h": VMS_HEADER + "p5.48xlarge,H100,8,1e300,,us-east-1\n",
        "10**400 price": VMS_HEADER + f"p5.48xlarge,H100,8,{BIG},,us-east-1\n",
        "NaN price": VMS_HEADER + "p5.48xlarge,H100,8,nan,,us-east-1\n",
        "count 0": VMS_HEADER + "p5.48xlarge,H100,0,98,,us-east-1\n",
        "count 10**400": VMS_HEADER + f"p5.48xlarge,H100,{BIG},98,,us-east-1\n",
        "huge cell": VMS_HEADER + "p5.48xlarge,H100,8,98,,\"" + "r" * 200_000 + "\"\n",
        "NUL byte": VMS_HEADER + "p5.48xlarge,H100,8,98,,us-east\x00-1\n",
        "not utf-8": (VMS_HEADER + "p5.48xlarge,H100,8,98,,us-east-1\n").encode() + b"\xff\n",
        "conflicting duplicates": VMS_HEADER + "p5.48xlarge,H100,8,98,,us-east-1\np5.48xlarge,H100,8,12,,us-east-1\n",
        "price 1e-9": VMS_HEADER + "p5.48xlarge,H100,8,1e-9,,us-east-1\n",
    }
    for name, text in vms.items():
        c.append(Case("skypilot", name, [*sky, "s"], setup=_write("s/aws/vms.csv", text)))
    c.append(Case("skypilot", "valid", [*sky, "s"], expect="accept",
                  setup=_write("s/aws/vms.csv", VMS_HEADER + "p5.48xlarge,H100,8,98.32,40.1,us-east-1\n")))
    c.append(Case("skypilot", "FIFO in dir", [*sky, "s"],
                  setup=_both(_write("s/aws/vms.csv", VMS_HEADER + "p5.48xlarge,H100,8,98,,us-east-1\n"),
                              _fifo("s/gcp/vms.csv"))))
    c.append(Case("skypilot", "/proc dir", [*sky, "/proc/self"]))
    c.append(Case("skypilot", "store dir /proc", [*sky, "s", "--dir", "/proc/self/x"],
                  setup=_write("s/aws/vms.csv", VMS_HEADER + "p5.48xlarge,H100,8,98,,us-east-1\n")))
    c.append(Case("skypilot", "--source-url not a URL", [*sky, "s", "--source-url", "javascript:alert(1)"],
                  setup=_write("s/aws/vms.csv", VMS_HEADER + "p5.48xlarge,H100,8,98,,us-east-1\n")))

    # ---- usage import
    use = ["usage", "import"]
    usage = {
        "timestamp 10**400": _usage_csv([(BIG, "10", "10"), ("1700000000", "10", "10")]),
        "tokens 10**400": _usage_csv([("1700000000", BIG, "10"), ("1700003600", "10", "10")]),
        "tokens 1e400": _usage_csv([("1700000000", "1e400", "10"), ("1700003600", "10", "10")]),
        "tokens negative": _usage_csv([("1700000000", "-5", "10"), ("1700003600", "10", "10")]),
        "timestamp year 2099": _usage_csv([("2099-01-01T00:00:00", "10", "10"), ("2099-01-02T00:00:00", "1", "1")]),
        "huge cell": _usage_csv([("1700000000", "10", "1" * 200_000)]),
        "NUL byte": _usage_csv([("1700000000", "10\x00", "10"), ("1700003600", "10", "10")]),
        "not utf-8": b"timestamp,input_tokens,output_tokens\n1700000000,\xff,1\n",
        "tokens 1e12": _usage_csv([("1700000000", "1000000000000", "10"), ("1700003600", "10", "10")]),
    }
    for name, text in usage.items():
        c.append(Case("usage", name, [*use, "u.csv"], setup=_write("u.csv", text)))
    c.append(Case("usage", "jsonl deep", [*use, "u.jsonl"],
                  setup=_write("u.jsonl", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n")))
    c.append(Case("usage", "jsonl 10**400", [*use, "u.jsonl"],
                  setup=_write("u.jsonl", f'{{"timestamp": {BIG}, "input_tokens": 1, "output_tokens": 1}}\n'
                               '{"timestamp": 1700000000, "input_tokens": 1, "output_tokens": 1}\n')))
    c.append(Case("usage", "jsonl duplicate key", [*use, "u.jsonl"],
                  setup=_write("u.jsonl", '{"timestamp": 1700000000, "input_tokens": 1, "input_tokens": 900, '
                               '"output_tokens": 1}\n'
                               '{"timestamp": 1700003600, "input_tokens": 1, "output_tokens": 1}\n')))
    c.append(Case("usage", "FIFO", [*use, "u.csv"], setup=_fifo("u.csv")))
    c.append(Case("usage", "directory", [*use, "d"], setup=lambda w: (w / "d").mkdir()))
    c.append(Case("usage", "/proc file", [*use, "/proc/self/status"]))
    c.append(Case("usage", "--write a directory", [*use, str(FIXTURES / "usage" / "azure_conv_2023_head.csv"),
                                                  "--write", "."]))
    c.append(Case("usage", "--write missing parent", [*use, str(FIXTURES / "usage" / "azure_conv_2023_head.csv"),
                                                     "--write", "nope/x.toml"]))
    c.append(Case("usage", "--write /proc", [*use, str(FIXTURES / "usage" / "azure_conv_2023_head.csv"),
                                            "--write", "/proc/self/x.toml"]))
    c.append(Case("usage", "peak 236x the mean accepted", [*use, "u.csv"], expect="accept",
                  setup=_write("u.csv", _peaky_trace())))
    c.append(Case("usage", "valid fixture", [*use, str(FIXTURES / "usage" / "azure_conv_2023_head.csv")],
                  expect="accept"))

    # ---- deploy
    dep = ["deploy", "--model", "llama-3.1-8b", "--gpu", "h100"]
    deploy = {
        "k8s name 'Bad Name!'": ["--target", "kubernetes", "--name", "Bad Name!"],
        "k8s name 300 chars": ["--target", "kubernetes", "--name", "a" * 300],
        "skypilot name with newline": ["--target", "skypilot", "--name", "a\nb: c"],
        "image with spaces": ["--target", "kubernetes", "--image", "vllm/vllm openai:latest"],
        "image with newline": ["--target", "kubernetes", "--image", "vllm/vllm\n- evil"],
        "max-model-len beyond context": ["--target", "vllm", "--max-model-len", "10000000"],
        "max-model-len -1": ["--target", "vllm", "--max-model-len", "-1"],
        "max-model-len 10**400": ["--target", "vllm", "--max-model-len", BIG],
        "port 0": ["--target", "vllm", "--port", "0"],
        "port 70000": ["--target", "vllm", "--port", "70000"],
        "replicas 0": ["--target", "skypilot", "--replicas", "0"],
        "replicas 10**400": ["--target", "skypilot", "--replicas", BIG],
        "num-gpus 0": ["--target", "vllm", "--num-gpus", "0"],
        "concurrency 10**400": ["--target", "vllm", "--concurrency", BIG],
        "input-tokens -1": ["--target", "vllm", "--input-tokens", "-1"],
        "expert-parallel on dense": ["--target", "vllm", "--expert-parallel"],
        "-o a directory": ["--target", "vllm", "-o", "."],
        "-o missing parent": ["--target", "vllm", "-o", "nope/serve.sh"],
        "-o /proc": ["--target", "vllm", "-o", "/proc/self/serve.sh"],
        "accelerator with newline": ["--target", "skypilot", "--accelerator", "H100\nrun: touch pwned"],
    }
    for name, extra in deploy.items():
        c.append(Case("deploy", name, [*dep, *extra]))
    for target in ("vllm", "sglang", "llama.cpp", "trtllm", "skypilot", "kubernetes"):
        c.append(Case("deploy", f"{target} model-repo $(touch pwned)",
                      [*dep, "--target", target, "--model-repo", "$(touch pwned)"], expect="any",
                      check=_no_marker("$(touch pwned)")))
        c.append(Case("deploy", f"{target} model-repo newline",
                      [*dep, "--target", target, "--model-repo", "org/m\ntouch pwned"], expect="any",
                      check=_newline_check))
        c.append(Case("deploy", f"{target} valid", [*dep, "--target", target], expect="accept"))
    c.append(Case("deploy", "valid local path with space", [*dep, "--target", "vllm", "--model-repo",
                                                           "/models/my model"], expect="accept",
                  check=lambda rc, out, err, w: None if "'/models/my model'" in out else "path not quoted"))

    # ---- recommend
    rec = ["recommend"]
    recommend = {
        "--limit -1": ["--limit", "-1"], "--limit 0": ["--limit", "0"],
        "--context 10**400": ["--context", BIG], "--context -5": ["--context", "-5"],
        "--memory-gb nan": ["--memory-gb", "nan"], "--memory-gb inf": ["--memory-gb", "inf"],
        "--memory-gb 1e400": ["--memory-gb", "1e400"], "--memory-gb -1": ["--memory-gb", "-1"],
        "--min-tokens-per-s nan": ["--gpu", "h100", "--min-tokens-per-s", "nan"],
        "--num-gpus 0": ["--gpu", "h100", "--num-gpus", "0"],
        "--num-gpus 10**400": ["--gpu", "h100", "--num-gpus", BIG],
        "--output-tokens 0": ["--output-tokens", "0"],
        "--output-tokens 10**400": ["--gpu", "h100", "--output-tokens", BIG],
        "--languages huge": ["--languages", "x" * 100_000],
        "--developer-country huge": ["--developer-country", "Y" * 100_000],
        "--gpu unknown huge": ["--gpu", "g" * 100_000],
    }
    for name, extra in recommend.items():
        c.append(Case("recommend", name, [*rec, *extra]))
    c.append(Case("recommend", "valid", [*rec, "--limit", "3"], expect="accept"))

    # ---- simulate (planner/cli/simulate_cmd.py, planner/perf/simulation.py)
    sim = ["simulate", "--requests", "200"]
    simulate = {
        "--requests 0": ["simulate", "--requests", "0"], "--requests 10**400": ["simulate", "--requests", BIG],
        "--seed -1": [*sim, "--seed", "-1"], "--bins 0": [*sim, "--bins", "0"], "--bins 10**400": [*sim, "--bins", BIG],
        "requests_per_day 1e-9 (clock cannot resolve the span)": [*sim, "--set", "requests_per_day=1e-9"],
        "latency_percentile 0.42": [*sim, "--set", "latency_percentile=0.42"],
        "requests_per_day nan": [*sim, "--set", "requests_per_day=nan"],
    }
    for name, argv in simulate.items():
        c.append(Case("simulate", name, argv))
    c.append(Case("simulate", "valid", [*sim, "--json"], expect="accept"))

    # ---- estimate's SLO, speculative and batch-limit flags
    est8 = ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100"]
    slo = ["--ttft-target-s", "1", "--tpot-target-s", "0.05"]
    estimate_flags = {
        "--ttft-target-s nan": ["--ttft-target-s", "nan", "--tpot-target-s", "0.05"],
        "--tpot-target-s -1": ["--ttft-target-s", "1", "--tpot-target-s", "-1"],
        "--ttft-target-s 10**400": ["--ttft-target-s", BIG, "--tpot-target-s", "0.05"],
        "--latency-percentile 0.42": [*slo, "--latency-percentile", "0.42"],
        "--draft-tokens 0": ["--speculative", "eagle3", "--draft-tokens", "0"],
        "--acceptance-frac 2": ["--speculative", "eagle3", "--acceptance-frac", "2"],
        "--acceptance-frac nan": ["--speculative", "eagle3", "--acceptance-frac", "nan"],
        "--draft-tokens without --speculative": ["--draft-tokens", "3"],
        "--speculative unknown": ["--speculative", "medusa"],
        "--max-num-seqs 0": ["--max-num-seqs", "0"], "--max-num-seqs 10**400": ["--max-num-seqs", BIG],
        "--num-gpus 8 --tp 3": ["--num-gpus", "8", "--tp", "3"],
    }
    for name, extra in estimate_flags.items():
        c.append(Case("estimate flags", name, [*est8, *extra]))
    c.append(Case("estimate flags", "valid SLO", [*est8, *slo, "--json"], expect="accept"))
    c.append(Case("estimate flags", "valid 8 GPUs, layout searched", [*est8, "--num-gpus", "8", "--json"],
                  expect="accept"))

    # ---- validate --data: a measured-rows CSV (planner/fit/measured.py)
    measured = (REPO / "data" / "measured" / "throughput.csv").read_text(encoding="utf-8").splitlines()
    header, first = measured[0], measured[1]

    def _row(**changes: str) -> str:
        row = next(csv.DictReader(io.StringIO(header + "\n" + first + "\n")))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(row))
        writer.writeheader()
        writer.writerow({**row, **changes})
        return buf.getvalue()

    validate = {
        "measured_value 1e400": _row(measured_value="1e400"), "measured_value nan": _row(measured_value="nan"),
        "measured_value -5": _row(measured_value="-5"), "num_gpus 0": _row(num_gpus="0", tp=""),
        "num_gpus 10**400": _row(num_gpus=BIG), "input_tokens 1e400": _row(input_tokens="1e400"),
        "input_tokens 128.5": _row(input_tokens="128.5"), "metric unknown": _row(metric="bogus"),
        "tp 3 on 1 GPU": _row(tp="3"), "engine_date 2025-99": _row(engine_date="2025-99"),
        "recv_interval -1": _row(recv_interval="-1"), "header only": header + "\n",
        "not utf-8": (header + "\n").encode() + b"\xff,\n", "NUL byte": _row(notes="a\x00b"),
    }
    for name, text in validate.items():
        c.append(Case("validate --data", name, ["validate", "--data", "m.csv", "--summary-only"],
                      setup=_write("m.csv", text)))
    c.append(Case("validate --data", "FIFO", ["validate", "--data", "m.csv"], setup=_fifo("m.csv")))
    c.append(Case("validate --data", "/proc file", ["validate", "--data", "/proc/self/status"]))
    c.append(Case("validate", "--since 2025-13", ["validate", "--since", "2025-13", "--summary-only"]))

    # ---- price store (list with a corrupt store is exit 4: the store is at fault)
    c.append(Case("prices", "list with --dir /proc", ["prices", "list", "--dir", "/proc/self"]))
    c.append(Case("prices", "list store is FIFO", ["prices", "list", "--dir", "st"],
                  setup=_fifo("st/gpu_prices.csv")))

    # ---- surfaces owned by other agents (reported, not fixed here)
    plan = ["plan", "--scenario"]
    scen = {
        "deep nesting": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "duplicate keys": '{"model_id": "llama-3.1-8b", "model_id": "llama-3.1-70b"}',
        "1e400": '{"requests_per_day": 1e400}',
        "10**400": f'{{"requests_per_day": {BIG}}}',
    }
    for name, text in scen.items():
        c.append(Case("plan (scenario agent)", name, [*plan, "s.json"], setup=_write("s.json", text),
                      owner="scenario"))
    c.append(Case("plan (scenario agent)", "--csv a directory", ["plan", "--csv", "."], owner="scenario"))
    c.append(Case("plan (scenario agent)", "--csv missing parent", ["plan", "--csv", "nope/r.csv"], owner="scenario"))
    c.append(Case("plan (scenario agent)", "scenario FIFO", [*plan, "s.toml"], setup=_fifo("s.toml"),
                  owner="scenario"))
    c.append(Case("estimate (scenario agent)", "--concurrency 10**400",
                  ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100", "--concurrency", BIG], owner="scenario"))
    for flag, value in (("--num-gpus", BIG), ("--input-tokens", "-5"), ("--output-tokens", BIG), ("--tp", "0")):
        c.append(Case("estimate (scenario agent)", f"{flag} {value[:12]}",
                      ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100", flag, value], owner="scenario"))
    c.append(Case("plan (scenario agent)", "--set requests_per_day=1e400", ["plan", "--set", "requests_per_day=1e400"],
                  owner="scenario"))
    c.append(Case("plan (scenario agent)", "--set huge key", ["plan", "--set", "k" * 100_000 + "=1"],
                  owner="scenario"))

    # ---- calibration and fine-tuning (other agents' commands; reported)
    cal = ["calibrate", "--gpu", "h100", "--model", "llama-3.1-8b"]
    bench = {"num_prompts": 100, "request_throughput": 5.0, "output_throughput": 1000.0,
             "total_token_throughput": 3000.0, "mean_ttft_ms": 100.0, "mean_tpot_ms": 20.0, "max_concurrency": 16,
             "total_input_tokens": 100000, "total_output_tokens": 25600, "duration": 20.0, "completed": 100}
    benches = {
        "num_prompts abc": {**bench, "num_prompts": "abc"},
        "num_prompts -3": {**bench, "num_prompts": -3},
        "throughput 1e-300": {**bench, "output_throughput": 1e-300, "total_token_throughput": 1e-300},
        "throughput 10**400": json.loads(json.dumps(bench)) | {"output_throughput": 10**300},
        "deep nesting": None,
    }
    for name, data in benches.items():
        text = ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}") if data is None else json.dumps(data)
        c.append(Case("calibrate (calibration agent)", name, [*cal, "--vllm-bench", "b.json", "--name", "mine"],
                      setup=_write("b.json", text), owner="calibration"))
    c.append(Case("calibrate (calibration agent)", "--name 300 chars",
                  [*cal, "--vllm-bench", "b.json", "--name", "n" * 300], setup=_write("b.json", json.dumps(bench)),
                  owner="calibration"))
    c.append(Case("calibrate (calibration agent)", "--name vllm-datacenter (a catalog profile)",
                  [*cal, "--vllm-bench", "b.json", "--name", "vllm-datacenter"],
                  setup=_write("b.json", json.dumps(bench)), owner="calibration"))
    c.append(Case("calibrate (calibration agent)", "bench FIFO", [*cal, "--vllm-bench", "b.json", "--name", "m"],
                  setup=_fifo("b.json"), owner="calibration"))
    c.append(Case("calibrate (calibration agent)", "csv cell 200 KB", [*cal, "--csv", "m.csv", "--name", "m"],
                  setup=_write("m.csv", "a,b\n\"" + "x" * 200_000 + "\",1\n"), owner="calibration"))
    ft = ["finetune", "--model", "llama-3.1-8b", "--gpu", "h100", "--method", "lora"]
    for flag, value in (("--dataset-tokens", BIG), ("--dataset-tokens", "nan"), ("--epochs", "-1"),
                        ("--seq-len", BIG), ("--lora-rank", "0"), ("--micro-batch", BIG)):
        extra = [] if flag == "--dataset-tokens" else ["--dataset-tokens", "1000000"]
        c.append(Case("finetune (finetune agent)", f"{flag} {value[:12]}", [*ft, *extra, flag, value],
                      owner="finetune"))
    return c


def _store_digest(store: Path) -> str:
    h = hashlib.sha256()
    if store.is_dir():
        for p in sorted(store.rglob("*")):
            if p.is_file():
                h.update(p.name.encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def run_case(case: Case, timeout_s: float) -> Case:
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        work = Path(tmp)
        store = work / "store"
        store.mkdir()
        if case.setup:
            case.setup(work)
        before = _store_digest(store)
        env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNER_PRICES_DIR": str(store),
               "PLANNER_PROFILES_DIR": str(work / "profiles"), "HOME": str(work)}
        try:
            proc = subprocess.run([sys.executable, "-m", "planner", *case.argv], cwd=work, env=env,
                                  capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            case.outcome.append("hang")
            return case
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        rc = proc.returncode
        if "Traceback (most recent call last)" in err:
            last = err.strip().splitlines()[-1][:120]
            case.outcome.append(f"traceback: {last}")
        elif rc == 0 and case.expect == "reject":
            case.outcome.append("silent acceptance")
        elif rc != 0 and case.expect == "accept":
            case.outcome.append(f"wrong rejection (exit {rc}): {err.strip()[:160]}")
        elif rc not in (0, 2, 3, 4):
            case.outcome.append(f"exit {rc}")
        if rc in (2, 3, 4) and "Traceback" not in err:
            lines = [line for line in err.splitlines() if line.strip()]
            if len(lines) != 1:
                case.outcome.append(f"{len(lines)} stderr lines")
            elif len(lines[0]) > MAX_ERROR_CHARS:
                case.outcome.append(f"error line of {len(lines[0]):,} chars")
            if _store_digest(store) != before:
                case.outcome.append("store changed on failure")
        if case.check:
            problem = case.check(rc, out, err, work)
            if problem:
                case.outcome.append(problem)
        case.outcome.insert(0, f"rc={rc}")
        case.outcome.append(f"stderr: {err.strip().splitlines()[-1][:200] if err.strip() else ''}")
    return case


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", help="run only surfaces containing this text")
    ap.add_argument("--verbose", action="store_true", help="print every case, not only failures")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S)
    args = ap.parse_args(argv)
    todo = [c for c in cases() if not args.only or args.only in c.surface]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda case: run_case(case, args.timeout), todo))
    tally: Counter[str] = Counter()
    per_owner: Counter[tuple[str, str]] = Counter()
    for case in done:
        problems = [o for o in case.outcome if not o.startswith(("rc=", "stderr:"))]
        kinds = {p.split(":")[0].split(" (")[0] for p in problems}
        kinds = {"multi-line/long error" if k.endswith(("stderr lines", "chars")) else k for k in kinds}
        for k in kinds:
            tally[k] += 1
            per_owner[(case.owner, k)] += 1
        if problems or args.verbose:
            print(f"[{case.surface}] {case.name}: {'; '.join(case.outcome)}")
    print(f"\n{len(done)} cases in {time.monotonic() - started:.0f} s")
    for (owner, kind), n in sorted(per_owner.items()):
        print(f"  {owner:11} {kind}: {n}")
    print("totals: " + (", ".join(f"{k} {n}" for k, n in sorted(tally.items())) or "no problems"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
