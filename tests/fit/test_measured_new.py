"""The rows added on 2026-12-08 from new sources (TensorRT-LLM perf overview v0.19/v0.20/v0.21 text, the Qwen3 speed
benchmark, simon-mo/vLLM-Benchmark, GPUStack's ShareGPT runs; docs/data_sources.md): every row has the split of its
source (`source_split`), cites no reserved source, and the sums behind its value hold.

The ROCm/vllm dev-docker README rows that were collected with them are not in throughput.csv: those runs set a
131,072-token step budget and one sequence slot per prompt, which no column states (docs/data_sources.md).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from planner.fit.measured import MEASURED_FILE, read_measured, source_split

NEW_SOURCES = (  # repository/blob/commit prefixes of the sources added
    "https://github.com/dominicshanshan/TensorRT-LLM/blob/ab4143e1d3c82df550f0d5673090a8feee84c7bd",
    "https://github.com/NVIDIA/TensorRT-LLM/blob/b8e38f9c65ed11994dd14df0f1630b93fac26e48",
    "https://github.com/NVIDIA/TensorRT-LLM/blob/85a2a656c25e374a0d4cb9a7d0f15a3e82855937",
    "https://github.com/gpustack/gpustack/blob/10e9444a07c73556f2ef0d10d2b2766bbf54c9c0",
    "https://github.com/simon-mo/vLLM-Benchmark/blob/d538cdc9366989e6b356514ff5d5d7ff6be6903e",
    "https://github.com/QwenLM/Qwen2.5/blob/ac7272455d45483d2f579a88295e81586d60ff6f",
)
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
    return [p for p in read_measured(MEASURED_FILE) if (p.source_url or "").startswith(NEW_SOURCES)]


def test_the_sources_are_in_the_measured_file(points):
    assert len(points) >= 40
    assert {src for src in NEW_SOURCES if any((p.source_url or "").startswith(src) for p in points)} == set(NEW_SOURCES)
    assert not any("github.com/ROCm/vllm" in (p.source_url or "") for p in points)


def test_every_row_has_the_split_of_its_source(points):
    wrong = [(p.row_id, p.split, p.source_key) for p in points if p.split != source_split(p.source_key)]
    assert not wrong, wrong[:5]


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


_SPEED = re.compile(r"'Speed' = \(prompt \+ generated tokens\) / time = ([\d.]+) tok/s")


def test_qwen_speed_rows_take_the_prompt_out_of_the_speed(points):
    # the Qwen3 speed table reports (prompt + 2048 generated) / time; the row keeps the generated tokens only,
    # e.g. Qwen3-8B BF16, 6144 in: time = (6144 + 2048) / 296.25 = 27.652 s, output = 2048 / 27.652 = 74.06 tok/s
    rows = [p for p in points if _SPEED.search(p.notes or "")]
    assert rows
    for p in rows:
        speed = float(_SPEED.search(p.notes).group(1))
        assert p.measured_value == pytest.approx(2048 * speed / (p.input_tokens + 2048), abs=0.01), p.row_id
