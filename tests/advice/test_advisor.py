"""Model advisor: hand-derivable ranking on a small fixture, sourced reasons, filters, and the evidence loader."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from planner.advice.advisor import (
    LICENSE_POLICIES,
    Constraints,
    percentile_frac,
    recommend,
    smoothed_task_score,
)
from planner.advice.benchmarks_data import load_benchmarks
from planner.data.catalog import load_catalog
from planner.errors import CatalogError, InvalidInputError, UnknownNameError

TASKS_HEADER = ("benchmark,task_category,name,description,score_unit,score_min,score_max,higher_is_better,"
                "source_url,source_accessed,notes")
SCORES_HEADER = "model_id,benchmark,task_category,score,score_unit,setting,source_url,source_accessed,notes"
TASK_ROWS = [
    "B1,coding,Bench One,first coding test,percent,0,100,true,https://example.org/b1,2026-11-29,",
    "B2,coding,Bench Two,second coding test,percent,0,100,true,https://example.org/b2,2026-11-29,",
    "B3,coding,Bench Three,only one model scored,percent,0,100,true,https://example.org/b3,2026-11-29,",
    "R1,reasoning,Reason One,a reasoning test,percent,0,100,true,https://example.org/r1,2026-11-29,",
]
# B1: Dense 80 > Three 70 > MoE 60;  B2: Dense 50 > MoE 40;  B3: only Four;  R1: MoE 90 > Dense 10.
SCORE_ROWS = [
    "test/Tiny-Dense,B1,coding,80,percent,pass@1,https://example.org/card-dense,2026-11-29,",
    "test/Tiny-MoE,B1,coding,60,percent,pass@1,https://example.org/card-moe,2026-11-29,",
    "test/Tiny-Three,B1,coding,70,percent,pass@1,https://example.org/card-three,2026-11-29,",
    "test/Tiny-Dense,B2,coding,50,percent,,https://example.org/card-dense,2026-11-29,",
    "test/Tiny-MoE,B2,coding,40,percent,,https://example.org/card-moe,2026-11-29,",
    "test/Tiny-Four,B3,coding,99,percent,,https://example.org/card-four,2026-11-29,",
    "test/Tiny-MoE,R1,reasoning,90,percent,,https://example.org/card-moe,2026-11-29,",
    "test/Tiny-Dense,R1,reasoning,10,percent,,https://example.org/card-dense,2026-11-29,",
]
KNOWN_SOURCE_FILES = {"models.csv", "licenses.csv", "benchmark_scores.csv", "gpus.csv", "efficiency.csv",
                      "precisions.csv", "task_contexts.csv"}


def write_benchmarks(data: Path, scores: list[str] = SCORE_ROWS, tasks: list[str] = TASK_ROWS) -> Path:
    (data / "task_benchmarks.csv").write_text("\n".join([TASKS_HEADER, *tasks]) + "\n")
    (data / "benchmark_scores.csv").write_text("\n".join([SCORES_HEADER, *scores]) + "\n")
    return data


@pytest.fixture
def advisor_dir(tiny_data_dir: Path) -> Path:
    """The tiny catalog plus two models (one without a language list, one under a research-only license)."""
    with (tiny_data_dir / "licenses.csv").open("a") as f:
        f.write("research-test,Test Research License,,false,,true,,false,true,false,research only,"
                "https://example.org/research,2026-11-29\n")
    with (tiny_data_dir / "models.csv").open("a") as f:
        f.write("test/Tiny-Three,tiny-three,Tiny Three,Tiny,ThirdLab,CN,2025-03-01,tiny-dense.json,dense,apache-2.0,"
                "open-weight,4096,,119,bf16,,,,https://example.org/tiny-three,2026-11-29,\n")
        f.write("test/Tiny-Four,tiny-four,Tiny Four,Tiny,FourthLab,US,2025-04-01,tiny-dense.json,dense,research-test,"
                "open-source,8192,en,1,bf16,,,,https://example.org/tiny-four,2026-11-29,\n")
    return write_benchmarks(tiny_data_dir)


@pytest.fixture
def catalog(advisor_dir: Path):
    return load_catalog(advisor_dir)


@pytest.fixture
def bench(advisor_dir: Path, catalog):
    return load_benchmarks(advisor_dir, model_ids=catalog.model_ids)


def ids(entries) -> list[str]:
    return [e.model_id for e in entries]


# --- the scoring pieces, by hand -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, others, higher, expected", [
    (3, [1, 2, 3], True, 1.0),      # (2 worse + 0 ties) / 2
    (1, [1, 2, 3], True, 0.0),
    (2, [1, 2, 3], True, 0.5),      # (1 + 0) / 2
    (2, [2, 2, 1], True, 0.75),     # (1 worse + 1 tie / 2) / 2
    (1, [1, 2, 3], False, 1.0),     # lower is better: 2 worse
])
def test_percentile_by_hand(value, others, higher, expected):
    assert percentile_frac(value, others, higher_is_better=higher) == pytest.approx(expected)


def test_percentile_needs_two_scores():
    with pytest.raises(InvalidInputError, match="at least 2"):
        percentile_frac(5, [5], higher_is_better=True)


@pytest.mark.parametrize("percentiles, expected", [
    ([1.0], 0.75),                  # (1 + 0.5) / 2
    ([0.0], 0.25),                  # (0 + 0.5) / 2
    ([0.5, 1.0], 2.0 / 3.0),        # (1.5 + 0.5) / 3
    ([1.0, 1.0, 1.0], 0.875),       # (3 + 0.5) / 4: more evidence, closer to the observed mean
])
def test_smoothed_task_score_by_hand(percentiles, expected):
    assert smoothed_task_score(percentiles) == pytest.approx(expected)


def test_no_percentiles_is_unknown_not_zero():
    with pytest.raises(InvalidInputError, match="unknown"):
        smoothed_task_score([])


# --- ranking on the fixture ------------------------------------------------------------------------------------

def test_coding_ranking_by_hand(catalog, bench):
    rec = recommend(Constraints(task="coding"), catalog, bench)
    assert rec.benchmarks == ("B1", "B2")  # B3 has a single score, so it cannot rank
    assert ids(rec.ranked) == ["test/Tiny-Dense", "test/Tiny-Three", "test/Tiny-MoE"]
    scores = [m.task_score_frac for m in rec.ranked]
    # Dense: p = 1, 1 -> (2 + 0.5) / 3;  Three: p = 0.5 -> (0.5 + 0.5) / 2;  MoE: p = 0, 0 -> 0.5 / 3
    assert scores == pytest.approx([2.5 / 3, 0.5, 0.5 / 3])
    assert [m.rank for m in rec.ranked] == [1, 2, 3]
    assert [(m.benchmarks_scored, m.benchmarks_considered) for m in rec.ranked] == [(2, 2), (1, 2), (2, 2)]


def test_unknown_score_is_neither_zero_nor_best(catalog, bench):
    rec = recommend(Constraints(task="coding"), catalog, bench)
    four = next(m for m in rec.unranked if m.model_id == "test/Tiny-Four")
    assert four.rank is None and four.task_score_frac is None
    assert "test/Tiny-Four" not in ids(rec.ranked)  # not placed anywhere in the ranking, top or bottom
    assert rec.ranked[-1].task_score_frac > 0  # the worst evidenced model still has a real, non-zero score
    assert any(r.verdict == "caution" and "unknown" in r.message for r in four.reasons)
    b1 = next(e for e in four.evidence if e.benchmark == "B1")
    assert b1.score is None and b1.percentile_frac is None  # shown as unknown, not guessed


def test_the_only_scored_model_of_a_benchmark_does_not_rank_on_it(catalog, bench):
    rec = recommend(Constraints(task="coding"), catalog, bench)
    four = next(m for m in rec.unranked if m.model_id == "test/Tiny-Four")
    b3 = next(e for e in four.evidence if e.benchmark == "B3")
    assert b3.score == pytest.approx(99) and b3.percentile_frac is None and b3.n_models_scored == 1


def test_task_changes_the_order(catalog, bench):
    rec = recommend(Constraints(task="reasoning"), catalog, bench)
    assert ids(rec.ranked) == ["test/Tiny-MoE", "test/Tiny-Dense"]


def test_every_reason_cites_data(catalog, bench):
    rec = recommend(Constraints(task="coding", languages=("de",), gpu="TEST-GPU", context_tokens=4000,
                                min_output_tokens_per_s_per_user=1.0), catalog, bench)
    entries = list(rec.ranked) + list(rec.unranked) + list(rec.excluded)
    assert entries
    for entry in entries:
        assert entry.reasons
        for r in entry.reasons:
            assert r.source_file in KNOWN_SOURCE_FILES, r
            assert r.source_url.startswith(("http://", "https://")), r
            assert isinstance(r.source_accessed, dt.date), r
    dense = next(m for m in rec.ranked if m.model_id == "test/Tiny-Dense")
    evidence = [r for r in dense.reasons if r.verdict == "evidence"]
    assert {r.source_url for r in evidence} == {"https://example.org/card-dense"}
    assert any("B1 80 percent (pass@1): percentile 1.00 of 3" in r.message for r in evidence)


# --- filters ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy, kept", [
    ("any", {"test/Tiny-Dense", "test/Tiny-MoE", "test/Tiny-Three", "test/Tiny-Four"}),
    ("commercial", {"test/Tiny-Dense", "test/Tiny-MoE", "test/Tiny-Three"}),
    ("permissive", {"test/Tiny-Dense", "test/Tiny-Three"}),  # llama-test has an AUP and a MAU clause
    ("osi", {"test/Tiny-Dense", "test/Tiny-Three"}),
    ("no-mau-limit", {"test/Tiny-Dense", "test/Tiny-Three"}),
    ("research-ok", {"test/Tiny-Dense", "test/Tiny-MoE", "test/Tiny-Three", "test/Tiny-Four"}),
])
def test_license_policies(catalog, bench, policy, kept):
    rec = recommend(Constraints(license_policy=policy), catalog, bench)
    assert set(ids(rec.ranked)) | set(ids(rec.unranked)) == kept
    for e in rec.excluded:
        assert e.failing[0].constraint == "license" and e.failing[0].source_file == "licenses.csv"


def test_policy_registry_is_complete():
    assert set(LICENSE_POLICIES) == {"any", "commercial", "permissive", "osi", "no-mau-limit", "research-ok"}


def test_mau_clause_is_reported_with_its_threshold(catalog, bench):
    rec = recommend(Constraints(license_policy="commercial"), catalog, bench)
    moe = next(m for m in rec.ranked if m.model_id == "test/Tiny-MoE")
    mau = [r for r in moe.reasons if r.tag.startswith("MAU")]
    assert len(mau) == 1 and "700,000,000" in mau[0].message and mau[0].verdict == "caution"


def test_languages_listed_missing_and_unrecorded(catalog, bench):
    rec = recommend(Constraints(languages=("de",)), catalog, bench)
    moe = next(e for e in rec.excluded if e.model_id == "test/Tiny-MoE")
    assert "de is not among the supported languages (en)" in moe.failing[0].message
    three = next(m for m in rec.ranked if m.model_id == "test/Tiny-Three")
    caution = [r for r in three.reasons if r.constraint == "languages"]
    assert caution[0].verdict == "caution" and "119 languages" in caution[0].message
    dense = next(m for m in rec.ranked if m.model_id == "test/Tiny-Dense")
    assert any(r.constraint == "languages" and r.verdict == "pass" for r in dense.reasons)


def test_context_length(catalog, bench):
    rec = recommend(Constraints(context_tokens=6000), catalog, bench)
    three = next(e for e in rec.excluded if e.model_id == "test/Tiny-Three")
    assert "4,096 tokens < 6,000 required" in three.failing[0].message


def test_jurisdiction_and_openness_are_data(catalog, bench):
    rec = recommend(Constraints(developer_countries=("FR",)), catalog, bench)
    assert ids(rec.ranked) + ids(rec.unranked) == ["test/Tiny-MoE"]
    rec = recommend(Constraints(open_source_only=True), catalog, bench)
    assert ids(rec.ranked) + ids(rec.unranked) == ["test/Tiny-Four"]


def test_memory_budget_too_small_is_excluded_with_needed_gb(catalog, bench):
    rec = recommend(Constraints(memory_gb=0.001, context_tokens=4000), catalog, bench)
    assert not rec.ranked and not rec.unranked
    reason = rec.excluded[0].failing[0]
    assert reason.constraint == "hardware" and "budget 0.001 GB" in reason.message and "needs" in reason.message


def test_memory_budget_picks_the_least_aggressive_precision_that_fits(catalog, bench):
    rec = recommend(Constraints(memory_gb=10, context_tokens=4000), catalog, bench)
    dense = next(m for m in rec.ranked if m.model_id == "test/Tiny-Dense")
    assert dense.hardware is not None and dense.hardware.precision == "bf16" and dense.hardware.kv_dtype == "bf16"
    assert dense.hardware.most_aggressive_precision == "q2_k"


def test_gpu_fit_and_speed(catalog, bench):
    rec = recommend(Constraints(gpu="TEST-GPU", context_tokens=4000, min_output_tokens_per_s_per_user=1.0),
                    catalog, bench)
    dense = next(m for m in rec.ranked if m.model_id == "test/Tiny-Dense")
    fit = dense.hardware
    assert fit is not None and fit.gpu_id == "TEST-GPU" and fit.precision == "bf16"
    assert fit.output_tokens_per_s_per_user_low <= fit.output_tokens_per_s_per_user <= \
        fit.output_tokens_per_s_per_user_high
    too_fast = recommend(Constraints(gpu="TEST-GPU", context_tokens=4000, min_output_tokens_per_s_per_user=1e9),
                         catalog, bench)
    assert not too_fast.ranked and not too_fast.unranked
    speed = too_fast.excluded[0].failing[0]
    assert speed.constraint == "speed" and "below the 1e+09 required" in speed.message
    assert speed.source_file == "efficiency.csv"


def test_does_not_fit_on_real_hardware_names_needed_and_usable_gb(real_catalog):
    bench = load_benchmarks(model_ids=real_catalog.model_ids)
    rec = recommend(Constraints(gpu="L4", context_tokens=8000, developer_countries=("CN",), task="coding"),
                    real_catalog, bench)
    v4 = next(e for e in rec.excluded if e.model_id == "deepseek-ai/DeepSeek-V4-Pro")
    msg = v4.failing[0].message
    assert "does not fit 1 x L4" in msg and "GB per GPU" in msg and "GB usable" in msg


def test_recommendation_is_json_serialisable(catalog, bench, capsys):
    from planner.cli._output import print_json

    print_json(recommend(Constraints(task="coding", gpu="TEST-GPU"), catalog, bench).to_dict())
    data = json.loads(capsys.readouterr().out)
    assert data["ranked"][0]["model_id"] == "test/Tiny-Dense"


# --- bad inputs ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, match", [
    ({"task": "cooking"}, "task must be one of"),
    ({"license_policy": "free"}, "license policy must be one of"),
    ({"languages": ("deu",)}, "ISO 639-1"),
    ({"languages": ("DE",)}, "ISO 639-1"),
    ({"developer_countries": ("fr",)}, "ISO 3166-1"),
    ({"context_tokens": 0}, "context_tokens"),
    ({"context_tokens": -5}, "context_tokens"),
    ({"context_tokens": 100}, "must exceed output_tokens"),
    ({"num_gpus": 0}, "num_gpus"),
    ({"memory_gb": math.nan}, "memory_gb"),
    ({"memory_gb": math.inf}, "memory_gb"),
    ({"memory_gb": 0.0}, "memory_gb"),
    ({"memory_gb": -1.0}, "memory_gb"),
    ({"gpu": "TEST-GPU", "memory_gb": 10.0}, "not both"),
    ({"min_output_tokens_per_s_per_user": 10.0}, "needs a GPU"),
    ({"gpu": "TEST-GPU", "min_output_tokens_per_s_per_user": math.nan}, "min_output_tokens_per_s_per_user"),
    ({"gpu": "TEST-GPU", "min_output_tokens_per_s_per_user": -1.0}, "min_output_tokens_per_s_per_user"),
])
def test_bad_constraints(catalog, bench, fields, match):
    with pytest.raises(InvalidInputError, match=match):
        recommend(Constraints(**fields), catalog, bench)


def test_unknown_gpu_lists_closest(catalog, bench):
    with pytest.raises(UnknownNameError, match="closest"):
        recommend(Constraints(gpu="TEST-GPX"), catalog, bench)


# --- the evidence files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_row, column, problem", [
    ("test/Tiny-Dense,B9,coding,50,percent,,https://example.org/x,2026-11-29,", "benchmark", "unknown benchmark"),
    ("test/Tiny-Dense,R1,coding,50,percent,,https://example.org/x,2026-11-29,", "task_category", "disagrees"),
    ("test/Tiny-Three,R1,reasoning,50,elo,,https://example.org/x,2026-11-29,", "score_unit", "disagrees"),
    ("test/Tiny-Three,R1,reasoning,150,percent,,https://example.org/x,2026-11-29,", "score", "outside"),
    ("test/Tiny-Dense,B1,coding,50,percent,,https://example.org/x,2026-11-29,", "benchmark", "second score"),
    ("test/Nope,B1,coding,50,percent,,https://example.org/x,2026-11-29,", "model_id", "unknown model_id"),
    ("test/Tiny-Three,R1,reasoning,nan,percent,,https://example.org/x,2026-11-29,", "score", "finite"),
    ("test/Tiny-Three,R1,reasoning,50,percent,,,2026-11-29,", "source_url", "empty"),
    ("test/Tiny-Three,R1,reasoning,50,percent,,https://example.org/x,29/11/2026,", "source_accessed", "ISO date"),
])
def test_bad_score_rows_name_file_row_and_column(advisor_dir, catalog, bad_row, column, problem):
    write_benchmarks(advisor_dir, SCORE_ROWS + [bad_row])
    with pytest.raises(CatalogError, match=problem) as info:
        load_benchmarks(advisor_dir, model_ids=catalog.model_ids)
    assert info.value.file == "benchmark_scores.csv" and info.value.column == column
    assert info.value.row == len(SCORE_ROWS) + 2


@pytest.mark.parametrize("bad_task, column", [
    ("X1,cooking,X,x,percent,0,100,true,https://example.org/x,2026-11-29,", "task_category"),
    ("X1,coding,X,x,percent,100,100,true,https://example.org/x,2026-11-29,", "score_max"),
    ("B1,coding,X,x,percent,0,100,true,https://example.org/x,2026-11-29,", "benchmark"),
])
def test_bad_task_rows(advisor_dir, bad_task, column):
    write_benchmarks(advisor_dir, SCORE_ROWS, TASK_ROWS + [bad_task])
    with pytest.raises(CatalogError) as info:
        load_benchmarks(advisor_dir)
    assert info.value.file == "task_benchmarks.csv" and info.value.column == column


def test_shipped_evidence_is_valid_and_sourced(real_catalog):
    bench = load_benchmarks(model_ids=real_catalog.model_ids)
    assert len(bench.scores) >= 290
    covered = {s.model_id for s in bench.scores}
    assert len(covered) >= 35
    for s in bench.scores:
        assert s.source_url.startswith("https://") and s.source_accessed <= dt.date(2026, 11, 29)
    for b in bench.benchmarks.values():
        assert bench.scores_for_benchmark(b.benchmark), f"{b.benchmark} has no scores"


# --- weight formats the GPU computes natively, the task's typical context, latency hand-over, unranked models ----

def _option(precision_id: str, compute_format: str, native: bool, weights_gb: float, tokens_per_s: float,
            sequences: int):
    from types import SimpleNamespace
    e = SimpleNamespace(native_compute=native, weights_gb=weights_gb, output_tokens_per_s_per_user=tokens_per_s,
                        max_concurrency=sequences)
    return e, SimpleNamespace(precision_id=precision_id, compute_format=compute_format)


def test_prefer_native_passes_over_an_emulated_format_only_for_a_smaller_or_faster_native_one():
    from planner.advice._advisor_hardware import prefer_native
    nvfp4 = _option("nvfp4", "fp4", False, 18.8, 20.0, 3)
    awq = _option("int4-awq", "bf16", True, 17.7, 21.0, 7)
    (e, p), note = prefer_native([nvfp4, awq], "RTX-4090")
    assert p.precision_id == "int4-awq"
    assert "nvfp4 is not computed natively on RTX-4090 (no fp4 units" in note
    assert "17.7 vs 18.8 GB" in note and "7 vs 3 sequences" in note and "21.0 vs 20.0 tokens/s" in note
    # a native alternative that is neither smaller nor faster does not displace the first choice
    bigger_slower = _option("int8", "int8", True, 30.0, 10.0, 1)
    assert prefer_native([nvfp4, bigger_slower], "RTX-4090") == (nvfp4, "")
    # a natively computed first choice stands
    fp8 = _option("fp8", "fp8", True, 32.0, 15.0, 2)
    assert prefer_native([fp8, awq], "H100-SXM") == (fp8, "")


def test_rtx_4090_picks_int4_awq_over_emulated_nvfp4_with_more_sequences(real_catalog):
    from planner.perf.estimate import EstimateRequest, estimate
    bench = load_benchmarks(model_ids=real_catalog.model_ids)
    rec = recommend(Constraints(task="general", gpu="RTX-4090"), real_catalog, bench)
    qwen = next(m for m in rec.ranked + rec.unranked if m.model_id == "Qwen/Qwen3-32B")
    fit = qwen.hardware
    assert fit.precision == "int4-awq" and fit.native_compute
    ctx = bench.context_for("general")
    nvfp4 = estimate(real_catalog, EstimateRequest(model="Qwen/Qwen3-32B", gpu="RTX-4090", precision="nvfp4",
                                                   input_tokens=ctx.typical_input_tokens,
                                                   output_tokens=ctx.typical_output_tokens, concurrency=1))
    assert not nvfp4.native_compute
    assert fit.weights_gb < nvfp4.weights_gb and fit.max_concurrency > nvfp4.max_concurrency
    assert any("nvfp4 is not computed natively on RTX-4090" in r.message for r in qwen.reasons)


def test_speed_context_user_task_or_default():
    from planner.advice._advisor_hardware import DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS, speed_context
    from planner.advice.benchmarks_data import TaskContext
    task = TaskContext("coding", 20_182, 20_000, 182, "https://a16z.com/state-of-ai/", dt.date(2026, 12, 7), None)
    user = speed_context(4000, None, task)
    assert (user.input_tokens, user.output_tokens, user.user_given) == (4000 - DEFAULT_OUTPUT_TOKENS,
                                                                        DEFAULT_OUTPUT_TOKENS, True)
    typical = speed_context(None, None, task)
    assert (typical.input_tokens, typical.output_tokens, typical.context_tokens) == (20_000, 182, 20_182)
    assert speed_context(None, 500, task).context_tokens == 20_500  # the user's output, the task's prompt
    default = speed_context(None, None, None)
    assert (default.input_tokens, default.output_tokens) == (DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS)


def test_speed_is_checked_at_the_tasks_typical_context_and_says_so(real_catalog):
    bench = load_benchmarks(model_ids=real_catalog.model_ids)
    for task, tokens in (("coding", 20_182), ("knowledge", 9_216), ("general", 3_158)):
        assert bench.context_for(task).typical_context_tokens == tokens
        rec = recommend(Constraints(task=task, gpu="H100-SXM"), real_catalog, bench)
        m = next(m for m in rec.ranked + rec.unranked if m.model_id == "Qwen/Qwen3-8B")
        assert m.hardware.context_tokens == tokens
        note = next(r for r in m.reasons if r.source_file == "task_contexts.csv")
        assert f"checked at a {tokens:,}-token request" in note.message and f"task '{task}'" in note.message
    asked = recommend(Constraints(task="coding", gpu="H100-SXM", context_tokens=4000), real_catalog, bench)
    m = next(m for m in asked.ranked + asked.unranked if m.model_id == "Qwen/Qwen3-8B")
    assert m.hardware.context_tokens == 4000 and not any(r.source_file == "task_contexts.csv" for r in m.reasons)


def test_typical_context_is_cut_to_a_smaller_model_window(advisor_dir, catalog):
    (advisor_dir / "task_contexts.csv").write_text(
        "task_category,typical_context_tokens,typical_input_tokens,typical_output_tokens,source_url,"
        "source_accessed,notes\ncoding,20182,20000,182,https://a16z.com/state-of-ai/,2026-12-07,\n")
    bench = load_benchmarks(advisor_dir, model_ids=catalog.model_ids)
    rec = recommend(Constraints(task="coding", gpu="TEST-GPU"), catalog, bench)
    three = next(m for m in rec.ranked + rec.unranked if m.model_id == "test/Tiny-Three")  # 4,096-token window
    assert three.hardware.context_tokens == 4096  # 4,096 - 182 prompt + 182 output
    assert any("cut to the model's 4,096-token window" in r.message for r in three.reasons)


def test_task_context_rows_must_add_up(advisor_dir):
    (advisor_dir / "task_contexts.csv").write_text(
        "task_category,typical_context_tokens,typical_input_tokens,typical_output_tokens,source_url,"
        "source_accessed,notes\ncoding,20000,20000,182,https://a16z.com/state-of-ai/,2026-12-07,\n")
    with pytest.raises(CatalogError) as info:
        load_benchmarks(advisor_dir)
    assert info.value.file == "task_contexts.csv" and info.value.column == "typical_context_tokens"


def _gpu_fit(ttft_s: float, ttft_s_high: float, tpot_s: float, tpot_s_high: float):
    from planner.advice._advisor_hardware import HardwareFit
    return HardwareFit("gpu", "int4-awq", "bf16", "moderate", "int4-awq", 17.7, None, "vllm", "RTX-4090", 1, 7,
                       1 / tpot_s, 1 / tpot_s_high, 1 / tpot_s, 3158, ttft_s, ttft_s_high, tpot_s, tpot_s_high, True)


def test_latency_handover_keeps_reachable_targets_and_raises_unreachable_ones():
    from planner.advice.advisor import latency_handover
    fit = _gpu_fit(ttft_s=0.30, ttft_s_high=0.42, tpot_s=0.031, tpot_s_high=0.0441)
    kept = latency_handover(fit, 0.45, 0.05)
    assert (kept.ttft_target_s, kept.tpot_target_s, kept.changed) == (0.45, 0.05, False)
    assert "TTFT target 0.45 s is met" in kept.notes[0]
    raised = latency_handover(fit, 0.2, 0.04)
    # both below the pessimistic batch-1 ends: raised to them in whole ms, rounded up (0.42 s; 44.1 ms -> 45 ms)
    assert (raised.ttft_target_s, raised.tpot_target_s, raised.changed) == (0.42, 0.045, True)
    assert "TPOT target 0.04 s cannot be met on 1 x RTX-4090 at int4-awq" in raised.notes[1]
    unchanged = latency_handover(None, 0.2, 0.04)
    assert (unchanged.ttft_target_s, unchanged.tpot_target_s, unchanged.changed) == (0.2, 0.04, False)


def test_unranked_models_show_what_is_known(catalog, bench):
    rec = recommend(Constraints(task="reasoning"), catalog, bench)
    three = next(m for m in rec.unranked if m.model_id == "test/Tiny-Three")
    assert [(e.benchmark, e.score) for e in three.known_elsewhere] == [("B1", 70.0)]
    assert any("but known: B1 70 percent (coding)" in r.message for r in three.reasons)


def test_gpt_oss_20b_for_coding_is_shown_with_its_known_scores(real_catalog):
    bench = load_benchmarks(model_ids=real_catalog.model_ids)
    rec = recommend(Constraints(task="coding"), real_catalog, bench)
    oss = next(m for m in rec.unranked if m.model_id == "openai/gpt-oss-20b")
    known = {e.benchmark: e.score for e in oss.known_elsewhere}
    assert known["GPQA-Diamond"] == 71.5 and known["MMLU"] == 85.3
