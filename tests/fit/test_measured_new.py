"""data/measured/throughput_new.csv: rows from new sources, kept apart from throughput.csv until they are merged.

The file must load with the project's reader (`read_measured`: columns, checks, provenance), have exactly the
header of throughput.csv (so it can be appended), give every row the split of its source (`source_split`), cite
no reserved source, and share no row id with throughput.csv.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest

from planner.fit.measured import MEASURED_DIR, MEASURED_FILE, read_measured, source_split

NEW_FILE = MEASURED_DIR / "throughput_new.csv"
# perf-overview copies whose text predates release 1.0 (a fork, and the versioned folders of NVIDIA/TensorRT-LLM's
# gh-pages branch): the doc names its release
PRE_1_0_COPIES = {
    "ab4143e1d3c82df550f0d5673090a8feee84c7bd": "v0.20 text ('The data collected for the v0.20 benchmarks'), "
                                                "dominicshanshan fork",
    "b8e38f9c65ed11994dd14df0f1630b93fac26e48/0.21.0/": "gh-pages 0.21.0 ('The data collected for the v0.21 ...')",
    "85a2a656c25e374a0d4cb9a7d0f15a3e82855937/0.19.0/": "gh-pages 0.19.0 ('Starting with v0.19, ... PyTorch backend')",
}


@pytest.fixture(scope="module")
def points():
    return read_measured(NEW_FILE)


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def test_the_file_loads_with_the_project_reader(points):
    assert len(points) >= 40
    assert _header(NEW_FILE) == _header(MEASURED_FILE)


def test_every_row_has_the_split_of_its_source(points):
    wrong = [(p.row_id, p.split, p.source_key) for p in points if p.split != source_split(p.source_key)]
    assert not wrong, wrong[:5]


def test_row_ids_are_new():
    with MEASURED_FILE.open(newline="", encoding="utf-8") as f:
        old = {r["row_id"] for r in csv.DictReader(f)}
    with NEW_FILE.open(newline="", encoding="utf-8") as f:
        new = [r["row_id"] for r in csv.DictReader(f)]
    assert len(new) == len(set(new))
    assert not old & set(new)


def _reserved_rule():
    path = Path(__file__).with_name("test_source_split.py")
    spec = importlib.util.spec_from_file_location("_source_split_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._reserved


def test_no_row_cites_a_reserved_source(points):
    reserved = _reserved_rule()
    hits = []
    for p in points:
        why = reserved(p.source_url or "")
        if why and "perf-overview" in why and any(c in (p.source_url or "") for c in PRE_1_0_COPIES):
            continue
        if why:
            hits.append((p.row_id, p.source_url, why))
    assert not hits, hits[:5]


def test_max_throughput_rows_from_at_least_three_sources(points):
    offline = [p for p in points if p.scenario == "offline" and p.metric == "output_tokens_per_s"]
    assert len({p.source_key for p in offline}) >= 3
    assert any(p.split == "holdout" for p in offline)


_LATENCY = re.compile(r"end-to-end latency ([\d.]+) s")


def test_static_batch_rows_are_batch_times_output_over_latency(points):
    # benchmark_latency.py reports one batch's end-to-end latency; the row's output tok/s is batch x output / latency,
    # e.g. 70B, batch 8, 128 in / 2048 out, 19.677 s: 8 x 2048 / 19.677 = 832.65 tok/s
    derived = [p for p in points if p.scenario == "static_batch" and _LATENCY.search(p.notes or "")]
    assert derived
    for p in derived:
        latency_s = float(_LATENCY.search(p.notes).group(1))
        assert p.measured_value == pytest.approx(p.concurrency * p.output_tokens / latency_s, abs=0.01), p.row_id


_SPEED = re.compile(r"'Speed' = \(prompt \+ generated tokens\) / time = ([\d.]+) tok/s")


def test_qwen_speed_rows_take_the_prompt_out_of_the_speed(points):
    # the Qwen3 speed table reports (prompt + 2048 generated) / time; the row keeps the generated tokens only,
    # e.g. Qwen3-8B BF16, 6144 in: time = (6144 + 2048) / 296.25 = 27.652 s, output = 2048 / 27.652 = 74.06 tok/s
    rows = [p for p in points if _SPEED.search(p.notes or "")]
    assert rows
    for p in rows:
        speed = float(_SPEED.search(p.notes).group(1))
        assert p.measured_value == pytest.approx(2048 * speed / (p.input_tokens + 2048), abs=0.01), p.row_id
