"""Regenerate (or check) the generated blocks of README.md.

Blocks look like
    <!-- BEGIN cli: estimate --model llama-3.1-8b --gpu L4 -->
    ...real output of `python -m planner estimate ...`...
    <!-- END -->
    <!-- BEGIN table: models -->  ...a Markdown table built from data/*.csv...  <!-- END -->

`python scripts/readme.py` rewrites them; `python scripts/readme.py --check` exits 1 if any is stale
(tests/test_readme.py runs the check, so CI fails when the README drifts from the CLI or the data).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.cli import main as cli_main  # noqa: E402
from planner.data.catalog import load_catalog  # noqa: E402

BLOCK = re.compile(r"(<!-- BEGIN (cli|table): (.*?) -->\n)(.*?)(<!-- END -->)", re.S)


def _cli(args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(shlex.split(args))
    text = out.getvalue() + err.getvalue()
    status = f"(exit status {code})\n" if code else ""
    return f"```console\n$ python -m planner {args}\n{text.rstrip()}\n```\n" + status


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if value < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "/")


def _table(name: str) -> str:
    cat = load_catalog()
    if name == "models":
        head = ["model", "params total / active (B)", "context", "native", "license", "developer"]
        rows = [[m.model_id, f"{m.arch.total_params_b:,.1f} / {m.arch.active_params_b:,.1f}",
                 f"{m.context_length_tokens:,}", m.native_precision, cat.licenses[m.license_id].name, m.developer]
                for m in cat.models.values()]
    elif name == "gpus":
        head = ["GPU", "memory (GB)", "bandwidth (TB/s)", "BF16 / FP8 / FP4 dense TFLOPS", "TDP (W)"]
        rows = [[g.gpu_id, _fmt(g.memory_gb), _fmt(g.memory_bandwidth_tb_s),
                 " / ".join(_fmt(v) for v in (g.bf16_dense_tflops, g.fp8_dense_tflops, g.fp4_dense_tflops)),
                 _fmt(g.tdp_w)] for g in cat.gpus.values()]
    elif name == "precisions":
        head = ["precision", "bits/weight", "computes as", "quality risk", "engines"]
        rows = [[p.precision_id, _fmt(p.weight_bits_per_param), p.compute_format, p.quality_risk,
                 ", ".join(p.engines)] for p in cat.precisions.values()]
    else:
        raise SystemExit(f"unknown table {name!r}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    def replace(match: re.Match) -> str:
        kind, arg = match.group(2), match.group(3).strip()
        body = _cli(arg) if kind == "cli" else _table(arg)
        return match.group(1) + body + match.group(5)

    return BLOCK.sub(replace, text)


def main() -> int:
    path = ROOT / "README.md"
    current = path.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in sys.argv:
        if fresh != current:
            sys.stderr.write("README.md is stale: run `python scripts/readme.py`\n")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
