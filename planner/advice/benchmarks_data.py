"""Load and validate the published benchmark evidence: data/benchmark_scores.csv and data/task_benchmarks.csv.

`task_benchmarks.csv` names each benchmark the advisor uses, the task it evidences, its scale
and whether higher is better, with a source describing the benchmark. `benchmark_scores.csv`
holds one published score per model x benchmark, each with the model card or technical
report it was copied from and the date it was read. A model x benchmark with no row is
*unknown*: nothing here fills it in.

The whole of both files is checked at load against the records below (see `_csvschema.read_records`):
unknown task categories,
scores for benchmarks that `task_benchmarks.csv` does not define, a task category or unit
that disagrees with the benchmark's definition, scores outside the benchmark's scale,
duplicate model x benchmark rows and, when model ids are given, scores for models the
catalog does not know. The first problem raises `CatalogError(file, row, column, value)`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from planner.data._csvschema import Table, read_records
from planner.data.catalog import DATA_DIR
from planner.data.columns import Count, Date, Flag, NonNegative, OneOf, Positive, Url

SCORES_FILE = "benchmark_scores.csv"
TASKS_FILE = "task_benchmarks.csv"
CONTEXTS_FILE = "task_contexts.csv"  # optional: a data_dir without it has no typical contexts

TASK_CATEGORIES = ("coding", "reasoning", "knowledge", "multilingual", "long-context", "tool-use", "general")

TaskCategory = Annotated[str, OneOf(TASK_CATEGORIES)]


@dataclass(frozen=True)
class TaskBenchmark:
    """One benchmark: the task it evidences, its scale, and where it is described."""

    benchmark: str
    task_category: TaskCategory
    name: str
    description: str
    score_unit: str
    score_min: NonNegative
    score_max: Positive
    higher_is_better: Flag
    source_url: Url
    source_accessed: Date
    notes: str | None


@dataclass(frozen=True)
class TaskContext:
    """The context one request of a task typically holds (prompt + output), from a published trace or benchmark."""

    task_category: TaskCategory
    typical_context_tokens: Count
    typical_input_tokens: Count
    typical_output_tokens: Count
    source_url: Url
    source_accessed: Date
    notes: str | None


@dataclass(frozen=True)
class BenchmarkScore:
    """One published score, with the document it was copied from."""

    model_id: str
    benchmark: str
    task_category: str
    score: NonNegative
    score_unit: str
    setting: str | None
    source_url: Url
    source_accessed: Date
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


def _check_tasks(table: Table[TaskBenchmark]) -> None:
    for row, bench in table.numbered():
        if bench.score_max <= bench.score_min:
            raise table.error(row, "score_max", bench.score_max, "must exceed score_min")


def _check_scores(table: Table[BenchmarkScore], tasks: dict[str, TaskBenchmark], model_ids: set[str] | None) -> None:
    seen: dict[tuple[str, str], int] = {}
    for where, score in table.numbered():
        bench = tasks.get(score.benchmark)
        if bench is None:
            raise table.error(where, "benchmark", score.benchmark, f"unknown benchmark (define it in {TASKS_FILE})")
        if score.task_category != bench.task_category:
            raise table.error(where, "task_category", score.task_category,
                              f"disagrees with {TASKS_FILE} ({bench.benchmark} evidences {bench.task_category})")
        if score.score_unit != bench.score_unit:
            raise table.error(where, "score_unit", score.score_unit,
                              f"disagrees with {TASKS_FILE} ({bench.benchmark} is scored in {bench.score_unit})")
        if not bench.score_min <= score.score <= bench.score_max:
            raise table.error(where, "score", score.score,
                              f"outside {bench.benchmark}'s scale [{bench.score_min:g}, {bench.score_max:g}]")
        if model_ids is not None and score.model_id not in model_ids:
            raise table.error(where, "model_id", score.model_id, "unknown model_id (see models.csv)")
        key = (score.model_id, score.benchmark)
        if key in seen:
            raise table.error(where, "benchmark", score.benchmark,
                              f"second score for {score.model_id} (first on row {seen[key]}); keep one per model")
        seen[key] = where


def _load_contexts(d: Path) -> dict[str, TaskContext]:
    path = d / CONTEXTS_FILE
    if not path.exists():
        return {}
    table = read_records(path, TaskContext, id_column="task_category")
    for row, ctx in table.numbered():
        total = ctx.typical_input_tokens + ctx.typical_output_tokens
        if ctx.typical_context_tokens != total:
            raise table.error(row, "typical_context_tokens", ctx.typical_context_tokens,
                              f"must equal typical_input_tokens + typical_output_tokens ({total})")
    return table.by("task_category")


def load_benchmarks(data_dir: str | Path = DATA_DIR, *, model_ids: Iterable[str] | None = None) -> Benchmarks:
    """Read and validate the files under `data_dir` (task_contexts.csv optional); pass the catalog's model ids
    to check references."""
    d = Path(data_dir)
    task_table = read_records(d / TASKS_FILE, TaskBenchmark, id_column="benchmark")
    _check_tasks(task_table)
    tasks = task_table.by("benchmark")
    score_table = read_records(d / SCORES_FILE, BenchmarkScore)
    _check_scores(score_table, tasks, set(model_ids) if model_ids is not None else None)
    scores = score_table.records
    by_bench: dict[str, list[BenchmarkScore]] = defaultdict(list)
    by_model: dict[str, list[BenchmarkScore]] = defaultdict(list)
    for s in scores:
        by_bench[s.benchmark].append(s)
        by_model[s.model_id].append(s)
    return Benchmarks(benchmarks=tasks, scores=scores,
                      _by_benchmark={k: tuple(v) for k, v in by_bench.items()},
                      _by_model={k: tuple(v) for k, v in by_model.items()}, contexts=_load_contexts(d))
