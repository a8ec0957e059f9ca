"""Exporters: formula-injection neutralisation, the CSV report's layout and the JSON document."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

from planner.plan import plan
from planner.report import (
    plan_monthly_to_csv,
    plan_to_csv,
    plan_to_dict,
    plan_to_json,
    plan_to_rows,
    plan_to_zip,
    round_figure,
    sanitize_csv_cell,
    write_csv,
)
from planner.scenario import SCENARIO_FIELDS, Scenario, scenario_from_dict


@pytest.mark.parametrize("cell, expected", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), ("", ""),
    (5, 5), (-5.5, -5.5), (0, 0), (math.nan, ""), (math.inf, ""), (None, ""), (True, "true"), (False, "false"),
    (dt.date(2026, 11, 29), "2026-11-29"), (np.float64(2.5), 2.5), (np.int64(-3), -3),
])
def test_sanitize_csv_cell(cell, expected):
    assert sanitize_csv_cell(cell) == expected


def test_write_csv_neutralises_headers_and_keeps_numbers(tmp_path):
    path = tmp_path / "out.csv"
    text = write_csv([["=HYPERLINK(\"x\")", "value"], ["-1", -1.5], ["@x", 3]], path)
    assert path.read_text() == text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0].startswith("'=")
    assert rows[1] == ["'-1", "-1.5"]  # the string is neutralised, the number stays a number
    assert rows[2] == ["'@x", "3"]
    buffer = io.StringIO()
    write_csv([["a"]], buffer)
    assert buffer.getvalue() == "a\n"


@pytest.fixture
def tiny_plan(tiny_catalog):
    return plan(Scenario(model="tiny", gpu="TEST-GPU", api_id="test-api", horizon_months=6, monthly_growth_frac=0.1),
                tiny_catalog)


def test_csv_report_starts_with_assumptions(tiny_plan):
    text = plan_to_csv(tiny_plan, version="9.9.9", generated_on=dt.date(2026, 11, 29))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "name", "value", "unit", "source"]
    assert rows[1] == ["meta", "planner_version", "9.9.9", "", ""]
    assert rows[2] == ["meta", "generated_on", "2026-11-29", "date", ""]
    assert [] not in rows  # one table per file: the monthly table is plan_monthly_to_csv
    assumptions = {r[1]: r for r in rows if r and r[0] == "assumption"}
    assert set(assumptions) == set(SCENARIO_FIELDS)
    assert assumptions["pue"][2:4] == ["1.58", "ratio"] and "uptimeinstitute" in assumptions["pue"][4]
    assert assumptions["pue"][4].startswith("default: ")
    assert assumptions["input_tokens_mean"][2] == "1155.0"  # resolved from the chat preset
    assert assumptions["input_tokens_mean"][4].startswith("default: preset chat")
    assert "AzurePublicDataset" in assumptions["input_tokens_mean"][4]
    # a value the scenario sets says so rather than quoting the default's source
    assert assumptions["monthly_growth_frac"][2:] == ["0.1", "fraction_per_month", "set by you"]
    results = {r[1]: r[2] for r in rows if r and r[0] == "result"}
    assert float(results["on_demand_monthly_usd"]) == pytest.approx(1460)


def test_monthly_table_is_its_own_file(tiny_plan):
    rows = list(csv.reader(io.StringIO(plan_monthly_to_csv(tiny_plan))))
    header = rows[0]
    assert header[:5] == ["month", "requests_per_day", "input_tokens", "output_tokens", "api_usd"]
    assert header[-1] == "cumulative_saving_usd_on_demand"
    table = rows[1:]
    assert [int(r[0]) for r in table] == list(range(1, 7))
    assert float(table[1][1]) == pytest.approx(110_000)  # 10% growth: 100,000 * 1.1
    saving = sum(float(r[4]) - float(r[header.index("on_demand_usd")]) for r in table)
    assert float(table[-1][-1]) == pytest.approx(saving)


def test_both_files_read_back_with_pandas(tiny_plan, tiny_catalog):
    report = pd.read_csv(io.StringIO(plan_to_csv(tiny_plan, catalog=tiny_catalog)), keep_default_na=False)
    assert list(report.columns) == ["section", "name", "value", "unit", "source"]
    assert set(report.loc[report.section == "assumption", "name"]) == set(SCENARIO_FIELDS)
    monthly = pd.read_csv(io.StringIO(plan_monthly_to_csv(tiny_plan)))
    assert len(monthly) == 6 and monthly["month"].tolist() == list(range(1, 7))
    assert monthly["on_demand_usd"].dtype.kind == "f"
    with zipfile.ZipFile(io.BytesIO(plan_to_zip(tiny_plan, catalog=tiny_catalog))) as archive:
        assert sorted(archive.namelist()) == ["cost_report.csv", "monthly.csv"]
        assert len(pd.read_csv(archive.open("monthly.csv"))) == 6


def test_provenance_distinguishes_you_default_and_planner(tiny_catalog):
    s = scenario_from_dict({"model": "tiny", "gpu": "TEST-GPU", "api_id": "test-api", "horizon_months": 6,
                            "pue": 1.58})  # pue given equal to its default: still "set by you"
    p = plan(s, tiny_catalog)
    rows = {r[1]: r for r in plan_to_rows(p, catalog=tiny_catalog) if r[0] == "assumption"}
    assert rows["pue"][4] == "set by you" and rows["horizon_months"][4] == "set by you"
    assert rows["amortisation_years"][4].startswith("default: ")
    assert rows["num_gpus_per_replica"][4] == "chosen by the planner"
    assert rows["num_gpus_per_replica"][2] == p.num_gpus_per_replica
    assert rows["precision"][4] == "chosen by the planner" and rows["precision"][2] == p.estimate.precision
    gpu = tiny_catalog.gpus["TEST-GPU"]
    assert rows["gpu_purchase_usd"][2] == gpu.purchase_usd
    assert rows["gpu_purchase_usd"][4].startswith("default: data/gpus.csv")
    assert all(r[2] is not None for name, r in rows.items()
               if name not in ("request_sizes_csv", "hourly_profile", "finetune_dataset_tokens", "finetune_gpu",
                               "finetune_num_gpus", "profile", "tp", "pp", "expert_parallel",
                               # draft length and acceptance exist only where speculation is on (default off)
                               "speculative_draft_tokens", "speculative_acceptance_frac")), \
        [name for name, r in rows.items() if r[2] is None]


@pytest.mark.parametrize("value, expected", [(-11822495.999999998, -11822496.0), (0.1 + 0.2, 0.3),
                                             (1460.0, 1460.0), (0.0, 0.0), (123456789012.3, 123456789000.0),
                                             (7, 7), ("x", "x")])
def test_figures_are_rounded_to_meaningful_digits(value, expected):
    assert round_figure(value) == expected  # 9 significant digits


def test_csv_report_neutralises_every_string(tiny_plan):
    hostile = dataclasses.replace(tiny_plan, warnings=("=cmd|' /C calc'!A0", "@SUM(1)"))
    rows = plan_to_rows(hostile)
    text = plan_to_csv(hostile)
    parsed = list(csv.reader(io.StringIO(text)))
    for row in parsed:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")) or cell == ""
            if cell.startswith("-"):
                float(cell)  # only numbers may start with a minus sign
    assert any("'=cmd" in cell for row in parsed for cell in row)
    assert len(parsed) == len(rows)


def test_json_report_is_strict_json(tiny_plan):
    data = json.loads(plan_to_json(tiny_plan))
    assert data["scenario"]["model"] == "tiny"
    assert data["costs"]["on_demand"]["monthly_usd"] == pytest.approx(1460)
    assert data["estimate"]["gpu_id"] == "TEST-GPU"
    assert len(data["monthly"]) == 6
    assert plan_to_dict(tiny_plan)["api"]["api_id"] == "test-api"
    # NaN fields (an unavailable quantity) become null, never the invalid token NaN
    assert "NaN" not in plan_to_json(tiny_plan)


def test_speculative_draft_and_acceptance_are_reported_from_the_data(real_catalog):
    s = Scenario(model="deepseek-ai/DeepSeek-V3", gpu="H200-SXM", num_gpus_per_replica=8, precision="fp8",
                 requests_per_day=20_000, speculative="mtp")
    p = plan(s, real_catalog)
    rows = {r[1]: r for r in plan_to_rows(p, catalog=real_catalog) if r[0] == "assumption"}
    assert rows["speculative_draft_tokens"][2] == p.estimate.speculative["draft_tokens"] == 1  # data's shortest
    assert rows["speculative_acceptance_frac"][2] == p.estimate.speculative["acceptance_frac"]
