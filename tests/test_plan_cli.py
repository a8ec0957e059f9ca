"""`planner plan`: table-driven CLI checks (exit codes, one-line errors, JSON and CSV outputs)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from planner.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.*"))


def run(capsys, *args):
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_plan(capsys, example):
    code, out, err = run(capsys, "--scenario", str(example))
    assert code == 0, err
    assert "tier" in out and "$/month" in out


def test_default_scenario_summary(capsys):
    code, out, _ = run(capsys, "--set", "requests_per_day=2e6")
    assert code == 0
    assert "2,000,000 requests/day" in out and "on_demand *" in out


def test_json_output(capsys):
    code, out, _ = run(capsys, "--json", "--set", "horizon_months=3")
    assert code == 0
    data = json.loads(out)
    assert len(data["monthly"]) == 3 and data["headline_tier"] == "on_demand"


def test_csv_to_file_and_stdout(capsys, tmp_path):
    path = tmp_path / "report.csv"
    code, out, _ = run(capsys, "--csv", str(path), "--set", "horizon_months=2")
    assert code == 0 and f"CSV report written to {path}" in out
    assert path.read_text().startswith("section,name,value,unit,source\n")
    code, out, _ = run(capsys, "--csv", "-", "--set", "horizon_months=2")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0][0] == "section" and rows[-1][0] == "2"


@pytest.mark.parametrize("flag, target, message", [
    ("--csv", ".", "is a directory; give a file name inside it"),
    ("--csv", "{tmp}", "is a directory; give a file name inside it"),
    ("--csv", "", "needs an output file path"),
    ("--csv-zip", "{tmp}", "is a directory; give a file name inside it"),
    ("--csv-zip", "", "needs an output file path")])
def test_csv_to_a_folder_or_no_name_is_refused_in_one_line(capsys, tmp_path, flag, target, message):
    code, out, err = run(capsys, flag, target.format(tmp=tmp_path))
    assert code == 2 and message in err and out == ""  # refused before the search runs
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written beside it


@pytest.mark.parametrize("args, code, message", [
    (["--set", "requests_per_dya=5"], 2, "unknown scenario field 'requests_per_dya'"),
    (["--set", "pue=0.2"], 2, "'pue' must be in [1, 5]"),
    (["--scenario", "missing.toml"], 2, "does not exist"),
    (["--set", "model=no-such-model"], 2, "unknown model"),
    (["--set", "ttft_target_s=0.000001"], 3, "latency targets unreachable"),
    (["--set", "model=deepseek-ai/DeepSeek-V3", "--set", "gpu=L4", "--set", "num_gpus_per_replica=1"], 3,
     "does not fit"),
    (["--set", "provider=nowhere"], 2, "provider 'nowhere' lists no price"),
])
def test_errors_are_one_line(capsys, args, code, message):
    got, out, err = run(capsys, *args)
    assert got == code
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_scenario_file(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"headroom_frac": -1}')
    code, _, err = run(capsys, "--scenario", str(path))
    assert code == 2 and "bad.json: scenario field 'headroom_frac' must be in [0, 10]" in err


def test_request_sizes_path_is_relative_to_the_scenario_file(capsys, tmp_path):
    (tmp_path / "sizes.csv").write_text("input_tokens,output_tokens\n400,40\n600,60\n")
    (tmp_path / "s.toml").write_text('request_sizes_csv = "sizes.csv"\nhorizon_months = 2\n')
    code, out, err = run(capsys, "--scenario", str(tmp_path / "s.toml"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["workload"]["input_tokens_mean"] == 500 and data["request_sizes"]["n_requests"] == 2
