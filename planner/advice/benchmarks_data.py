"""Load and validate the published benchmark evidence: data/benchmark_scores.csv and data/task_benchmarks.csv.

`task_benchmarks.csv` names each benchmark the advisor uses, the task it evidences, its scale
and whether higher is better, with a source describing the benchmark. `benchmark_scores.csv`
holds one published score per model x benchmark, each with the model card or technical
report it was copied from and the date it was read. A model x benchmark with no row is
*unknown*: nothing here fills it in.

The whole of both files is checked at load (see `_csvschema`): unknown task categories,
scores for benchmarks that `task_benchmarks.csv` does not define, a task category or unit
that disagrees with the benchmark's definition, scores outside the benchmark's scale,
duplicate model x benchmark rows and, when model ids are given, scores for models the
catalog does not know. The first problem raises `CatalogError(file, row, column, value)`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from planner.data._csvschema import Col, read_rows, require_refs
from planner.data.catalog import DATA_DIR
from planner.errors import CatalogError

SCORES_FILE = "benchmark_scores.csv"
TASKS_FILE = "task_benchmarks.csv"
CONTEXTS_FILE = "task_contexts.csv"  # optional: a data_dir without it has no typical contexts

TASK_CATEGORIES = ("coding", "reasoning", "knowledge", "multilingual", "long-context", "tool-use", "general")

_SOURCE = {"source_url": Col("url"), "source_accessed": Col("date")}

TASK_BENCHMARK_SCHEMA = {
    "benchmark": Col("str"), "task_category": Col("str"), "name": Col("str"), "description": Col("str"),
    "score_unit": Col("str"), "score_min": Col("float0"), "score_max": Col("float+"),
    "higher_is_better": Col("bool"), **_SOURCE, "notes": Col("str", False),
}
TASK_CONTEXT_SCHEMA = {
    "task_category": Col("str"), "typical_context_tokens": Col("int+"), "typical_input_tokens": Col("int+"),
    "typical_output_tokens": Col("int+"), **_SOURCE, "notes": Col("str", False),
}
BENCHMARK_SCORE_SCHEMA = {
    "model_id": Col("str"), "benchmark": Col("str"), "task_category": Col("str"), "score": Col("float0"),
    "score_unit": Col("str"), "setting": Col("str", False), **_SOURCE, "notes": Col("str", False),
}


@dataclass(frozen=True)
class TaskBenchmark:
    """One benchmark: the task it evidences, its scale, and where it is described."""

    benchmark: str
    task_category: str
    name: str
    description: str
    score_unit: str
    score_min: float
    score_max: float
    higher_is_better: bool
    source_url: str
    source_accessed: dt.date
    notes: str | None


@dataclass(frozen=True)
class TaskContext:
    """The context one request of a task typically holds (prompt + output), from a published trace or benchmark."""

    task_category: str
    typical_context_tokens: int
    typical_input_tokens: int
    typical_output_tokens: int
    source_url: str
    source_accessed: dt.date
    notes: str | None


@dataclass(frozen=True)
class BenchmarkScore:
    """One published score, with the document it was copied from."""

    model_id: str
    benchmark: str
    task_category: str
    score: float
    score_unit: str
    setting: str | None
    source_url: str
    source_accessed: dt.date
    notes: str | None


@dataclass(frozen=True)
class Benchmarks:
    """Both tables, indexed for the advisor."""

    benchmarks: dict[str, TaskBenchmark]
    scores: tuple[BenchmarkScore, ...]
    _by_benchmark: dict[str, tuple[BenchmarkScore, ...]] = field(repr=False, compare=False, default_factory=dict)
    _by_model: dict[str, tuple[BenchmarkScore, ...]] = field(repr=False, compare=False, default_factory=dict)
    contexts: dict[str, TaskContext] = field(default_factory=dict)  # task category -> typical context

    def context_for(self, task: str) -> TaskContext | None:
        """The typical context of a task ("any" reads as "general"); None when the table has no row for it."""
        return self.contexts.get("general" if task == "any" else task)

    def benchmarks_for(self, task_categories: Iterable[str]) -> list[TaskBenchmark]:
        """Benchmarks that evidence any of these task categories, in file order."""
        wanted = set(task_categories)
        return [b for b in self.benchmarks.values() if b.task_category in wanted]

    def scores_for_benchmark(self, benchmark: str) -> tuple[BenchmarkScore, ...]:
        return self._by_benchmark.get(benchmark, ())

    def scores_for_model(self, model_id: str) -> tuple[BenchmarkScore, ...]:
        return self._by_model.get(model_id, ())

    def score(self, model_id: str, benchmark: str) -> BenchmarkScore | None:
        """The published score, or None when it is unknown."""
        for row in self.scores_for_model(model_id):
            if row.benchmark == benchmark:
                return row
        return None


def _fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _check_tasks(rows: list[dict]) -> None:
    require_refs(TASKS_FILE, rows, "task_category", lambda v: v in TASK_CATEGORIES,
                 f"task category (allowed: {', '.join(TASK_CATEGORIES)})")
    for row in rows:
        if row["score_max"] <= row["score_min"]:
            raise CatalogError(TASKS_FILE, row["_row"], "score_max", row["score_max"], "must exceed score_min")


def _check_scores(rows: list[dict], tasks: dict[str, TaskBenchmark], model_ids: set[str] | None) -> None:
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        where = row["_row"]
        bench = tasks.get(row["benchmark"])
        if bench is None:
            raise CatalogError(SCORES_FILE, where, "benchmark", row["benchmark"],
                               f"unknown benchmark (define it in {TASKS_FILE})")
        if row["task_category"] != bench.task_category:
            raise CatalogError(SCORES_FILE, where, "task_category", row["task_category"],
                               f"disagrees with {TASKS_FILE} ({bench.benchmark} evidences {bench.task_category})")
        if row["score_unit"] != bench.score_unit:
            raise CatalogError(SCORES_FILE, where, "score_unit", row["score_unit"],
                               f"disagrees with {TASKS_FILE} ({bench.benchmark} is scored in {bench.score_unit})")
        if not bench.score_min <= row["score"] <= bench.score_max:
            raise CatalogError(SCORES_FILE, where, "score", row["score"],
                               f"outside {bench.benchmark}'s scale [{bench.score_min:g}, {bench.score_max:g}]")
        if model_ids is not None and row["model_id"] not in model_ids:
            raise CatalogError(SCORES_FILE, where, "model_id", row["model_id"], "unknown model_id (see models.csv)")
        key = (row["model_id"], row["benchmark"])
        if key in seen:
            raise CatalogError(SCORES_FILE, where, "benchmark", row["benchmark"],
                               f"second score for {row['model_id']} (first on row {seen[key]}); keep one per model")
        seen[key] = where


def _load_contexts(d: Path) -> dict[str, TaskContext]:
    path = d / CONTEXTS_FILE
    if not path.exists():
        return {}
    rows = read_rows(path, TASK_CONTEXT_SCHEMA, id_column="task_category")
    require_refs(CONTEXTS_FILE, rows, "task_category", lambda v: v in TASK_CATEGORIES,
                 f"task category (allowed: {', '.join(TASK_CATEGORIES)})")
    for row in rows:
        total = row["typical_input_tokens"] + row["typical_output_tokens"]
        if row["typical_context_tokens"] != total:
            raise CatalogError(CONTEXTS_FILE, row["_row"], "typical_context_tokens", row["typical_context_tokens"],
                               f"must equal typical_input_tokens + typical_output_tokens ({total})")
    return {r["task_category"]: TaskContext(**_fields(r)) for r in rows}


def load_benchmarks(data_dir: str | Path = DATA_DIR, *, model_ids: Iterable[str] | None = None) -> Benchmarks:
    """Read and validate the files under `data_dir` (task_contexts.csv optional); pass the catalog's model ids
    to check references."""
    d = Path(data_dir)
    task_rows = read_rows(d / TASKS_FILE, TASK_BENCHMARK_SCHEMA, id_column="benchmark")
    _check_tasks(task_rows)
    tasks = {r["benchmark"]: TaskBenchmark(**_fields(r)) for r in task_rows}
    score_rows = read_rows(d / SCORES_FILE, BENCHMARK_SCORE_SCHEMA)
    _check_scores(score_rows, tasks, set(model_ids) if model_ids is not None else None)
    scores = tuple(BenchmarkScore(**_fields(r)) for r in score_rows)
    by_bench: dict[str, list[BenchmarkScore]] = defaultdict(list)
    by_model: dict[str, list[BenchmarkScore]] = defaultdict(list)
    for s in scores:
        by_bench[s.benchmark].append(s)
        by_model[s.model_id].append(s)
    return Benchmarks(benchmarks=tasks, scores=scores,
                      _by_benchmark={k: tuple(v) for k, v in by_bench.items()},
                      _by_model={k: tuple(v) for k, v in by_model.items()}, contexts=_load_contexts(d))
