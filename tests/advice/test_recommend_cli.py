"""`planner recommend`: the issue's invocation on the shipped data, JSON contract, text table and one-line errors."""

from __future__ import annotations

import json

import pytest

from planner.cli import main

ISSUE_ARGV = ["recommend", "--task", "coding", "--license", "commercial", "--languages", "de,fr", "--gpu", "H100-SXM",
              "--num-gpus", "8", "--context", "32000", "--min-tokens-per-s", "30"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_issue_invocation_json(capsys):
    code, out, err = run(capsys, *ISSUE_ARGV, "--json")
    data = json.loads(out)
    assert code == 0 and err == ""
    assert set(data) == {"constraints", "task_categories", "benchmarks", "ranked", "unranked", "excluded"}
    assert data["ranked"], "some model must meet the issue's example constraints"
    ranks = [m["rank"] for m in data["ranked"]]
    assert ranks == list(range(1, len(ranks) + 1))
    scores = [m["task_score_frac"] for m in data["ranked"]]
    assert scores == sorted(scores, reverse=True)
    for m in data["ranked"]:
        assert m["hardware"]["gpu_id"] == "H100-SXM" and m["hardware"]["num_gpus"] == 8
        assert m["hardware"]["output_tokens_per_s_per_user"] >= 30
        assert all(r["source_url"].startswith("http") for r in m["reasons"])
    for m in data["unranked"]:
        assert m["rank"] is None and m["task_score_frac"] is None
    for e in data["excluded"]:
        assert any(r["verdict"] == "fail" for r in e["reasons"])
    excluded = {e["model_id"]: e for e in data["excluded"]}
    # research-only terms fail the commercial policy, citing licenses.csv
    mistral = excluded["mistralai/Mistral-Large-Instruct-2407"]
    assert mistral["reasons"][0]["constraint"] == "license" and mistral["reasons"][0]["source_file"] == "licenses.csv"


def test_issue_invocation_text(capsys):
    code, out, _ = run(capsys, *ISSUE_ARGV, "--limit", "3")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("task: coding (evidence from")
    header = next(line for line in lines if line.startswith("rank"))
    for column in ("model", "task_score", "evidence", "license", "country", "weights/KV", "tok/s/user", "cautions"):
        assert column in header
    assert "excluded (" in out and "unranked, task score unknown" in out


def test_details_print_sources(capsys):
    code, out, _ = run(capsys, "recommend", "--task", "reasoning", "--limit", "1", "--details")
    assert code == 0 and "evidence" in out and "benchmark_scores.csv: https://" in out and "read 2026-" in out


def test_memory_budget_mode(capsys):
    code, out, _ = run(capsys, "recommend", "--memory-gb", "48", "--context", "8000", "--json")
    data = json.loads(out)
    assert code == 0 and all(m["hardware"]["mode"] == "memory" for m in data["ranked"])
    assert all(m["hardware"]["needed_gb"] <= 48 for m in data["ranked"])


@pytest.mark.parametrize("argv, message", [
    (["recommend", "--memory-gb", "48", "--min-tokens-per-s", "10"], "needs a GPU"),
    (["recommend", "--gpu", "H100", "--memory-gb", "80"], "not both"),
    (["recommend", "--gpu", "H1000"], "unknown GPU 'H1000'; closest:"),
    (["recommend", "--languages", "german"], "ISO 639-1"),
    (["recommend", "--num-gpus", "8"], "--num-gpus needs --gpu"),
    (["recommend", "--gpu", "H100", "--num-gpus", "0"], "num_gpus"),
    (["recommend", "--context", "-1"], "context_tokens"),
    (["recommend", "--memory-gb", "nan"], "memory_gb"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_unknown_choice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["recommend", "--license", "free"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
