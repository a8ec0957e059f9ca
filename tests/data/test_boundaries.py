"""Import and price-table boundaries: special files, plausible bands with their source, future dates, conflicting
duplicates, the right culprit (input: exit 2, store: exit 4), the store unchanged, and bursty usage kept."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from planner.cli import main
from planner.data._csvschema import read_records
from planner.data.importers._provenance import MalformedInputError, source_from_bytes
from planner.data.importers.litellm import parse_litellm
from planner.data.importers.skypilot import find_vms_files, import_skypilot_dir, parse_vms_csv
from planner.data.importers.usage import import_usage_file, read_requests, scenario_fields_and_warnings
from planner.data.records import GpuPrice
from planner.errors import CatalogError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region\n"
LITE = {"t/x": {"mode": "chat", "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7,
                "litellm_provider": "t"}}


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _vms(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "aws" / "vms.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_fifo_in_an_import_directory_is_refused_not_read(real_catalog, tmp_path):
    _vms(tmp_path, "p5.48xlarge,H100,8,98.32,,us-east-1\n")
    os.mkfifo(tmp_path / "gcp_vms.csv")
    with pytest.raises(MalformedInputError, match=r"gcp_vms.csv: is a FIFO"):
        import_skypilot_dir(tmp_path, catalog=real_catalog, accessed=real_catalog.gpu_prices[0].source_accessed)


@pytest.mark.parametrize("path", ["/proc/self", "/sys", "/dev"])
def test_pseudo_file_systems_are_never_walked(path):
    with pytest.raises(MalformedInputError, match="system pseudo-files"):
        find_vms_files(path)


@pytest.mark.parametrize("body, match", [
    # 1e300 / 8 GPUs = 1.25e299 $/GPU-h, far above the 200 $/GPU-h top of the band
    ("p5.48xlarge,H100,8,1e300,,us-east-1\n", r"line 2, field 'Price': gives \$1.25e\+299 per GPU-hour"),
    # 1e-9 / 8 = 1.25e-10 $/GPU-h, below the 0.01 floor
    ("p5.48xlarge,H100,8,1e-9,,us-east-1\n", r"outside the plausible band \[0.01, 200\] \(shipped GPU prices"),
    ("p5.48xlarge,H100,8,98,,us-east-1\np5.48xlarge,H100,8,12,,us-east-1\n", r"line 3.*conflicts with line 2"),
    ("p5.48xlarge,H100,8,98,,us-east\x00-1\n", r"line 2: contains a NUL byte"),
])
def test_skypilot_rows_refused(real_catalog, tmp_path, body, match):
    with pytest.raises(MalformedInputError, match=match):
        parse_vms_csv(source_from_bytes((HEADER + body).encode(), "vms.csv"), provider="aws", catalog=real_catalog,
                      accessed=real_catalog.gpu_prices[0].source_accessed)


def test_exact_repeated_skypilot_rows_are_one_offer(real_catalog):
    text = HEADER + "p5.48xlarge,H100,8,98.32,,us-east-1\n" * 2
    result = parse_vms_csv(source_from_bytes(text.encode(), "vms.csv"), provider="aws", catalog=real_catalog,
                           accessed=real_catalog.gpu_prices[0].source_accessed)
    assert [r.usd_per_gpu_hour for r in result.records] == [pytest.approx(98.32 / 8)]  # 12.29 $/GPU-h


@pytest.mark.parametrize("entry, match", [
    ({"input_cost_per_token": 1e300}, r"is \$1e\+306 per Mtok, outside the plausible band \[0, 10000\]"),
    ({"input_cost_per_token": 10**300}, r"outside the plausible band"),
    ({"max_input_tokens": 10**12}, r"whole number of tokens in \[0, 1,000,000,000\]"),
])
def test_litellm_values_refused(entry, match):
    data = {"t/x": {**LITE["t/x"], **entry}}
    with pytest.raises(MalformedInputError, match=match):
        parse_litellm(source_from_bytes(json.dumps(data).encode(), "p.json"), accessed=dt.date(2026, 1, 1))


def test_litellm_keys_differing_in_case_are_refused_as_input_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "store"))
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**LITE, "T/X": LITE["t/x"]}), encoding="utf-8")
    code, out, err = run(capsys, "prices", "import-litellm", str(path))
    assert code == 2 and "p.json" in err and "only in case" in err and "store" not in err
    assert not (tmp_path / "store" / "api_prices.csv").exists()


def test_corrupt_store_is_the_stores_fault(capsys, tmp_path, monkeypatch):
    store = tmp_path / "store"
    store.mkdir()
    os.mkfifo(store / "gpu_prices.csv")
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(store))
    code, _, err = run(capsys, "prices", "list")
    assert code == 4 and "gpu_prices.csv" in err and "FIFO" in err and "prices reset" in err


@pytest.mark.parametrize("cells, match", [
    ("2099-01-01", r"source_accessed.*is in the future"),
    ("2025-01-01\x00", r"NUL byte"),
])
def test_uploaded_price_rows_refused(cells, match):
    text = ("gpu_id,provider,pricing,usd_per_gpu_hour,region,instance_type,gpus_per_instance,source_url,"
            f"source_accessed,notes\nH100-SXM,x,on_demand,2.5,,,,https://x.example,{cells},\n")
    with pytest.raises(CatalogError, match=match):
        read_records(text.encode(), GpuPrice, name="upload.csv")


def test_uploaded_price_band_and_conflict():
    head = ("gpu_id,provider,pricing,usd_per_gpu_hour,region,instance_type,gpus_per_instance,source_url,"
            "source_accessed,notes\n")
    row = "H100-SXM,x,on_demand,{},us,i,8,https://x.example,2025-01-01,\n"
    with pytest.raises(CatalogError, match=r"row 2, column 'usd_per_gpu_hour': is outside the plausible band"):
        read_records((head + row.format("1e300")).encode(), GpuPrice, name="upload.csv")
    with pytest.raises(CatalogError, match=r"row 3, column 'usd_per_gpu_hour': differs .* from row 2"):
        read_records((head + row.format("2.5") + row.format("3.5")).encode(), GpuPrice, name="upload.csv")


def _usage(rows: list[str]) -> bytes:
    return ("timestamp,input_tokens,output_tokens\n" + "".join(r + "\n" for r in rows)).encode()


@pytest.mark.parametrize("rows, match", [
    (["2099-01-01T00:00:00,10,10", "2099-01-02T00:00:00,1,1"], r"line 2, field 'timestamp': is in the future"),
    (["1" + "0" * 400 + ",10,10"], r"must be an ISO 8601 time or a finite number"),
    (["1700000000,1000000000000,10"], r"more tokens than any model's context \(at most 100,000,000"),
    (["1700000000," + "9" * 400 + ",10"], r"whole number of tokens"),
])
def test_usage_rows_refused(rows, match):
    with pytest.raises(MalformedInputError, match=match):
        read_requests(source_from_bytes(_usage(rows), "u.csv"))


def test_usage_jsonl_duplicate_key_refused():
    text = b'{"timestamp": 1700000000, "input_tokens": 1, "input_tokens": 900, "output_tokens": 1}\n'
    with pytest.raises(MalformedInputError, match=r"u.jsonl, line 1: has the key 'input_tokens' twice"):
        read_requests(source_from_bytes(text, "u.jsonl"))


def test_a_trace_236x_burstier_than_average_is_kept(tmp_path):
    # 240 hours, one request per hour except hour 100 with k; mean per hour = (239 + k) / 240 and
    # peak / mean = 236 -> k (240 - 236) = 236 x 239 -> k = 14,101
    start = 1_700_006_400  # 2023-11-15T00:00:00Z
    rows = []
    for hour in range(240):
        n = 14_101 if hour == 100 else 1
        rows += [f"{start + hour * 3600 + i * 3600 / n},100,10" for i in range(n)]
    path = tmp_path / "u.csv"
    path.write_bytes(_usage(rows))
    workload = import_usage_file(path)
    assert workload.peak_to_average_ratio == pytest.approx(236.0)
    fields, warnings = scenario_fields_and_warnings(workload)
    assert fields["requests_per_day"] == pytest.approx((239 + 14_101) / 10)  # 14,340 requests over 10 days
    if "peak_to_average_ratio" not in fields:  # the scenario's bound is below 236: left out, with a warning
        assert any("peak_to_average_ratio" in w for w in warnings)


@pytest.mark.parametrize("argv, message", [
    (["recommend", "--limit", "-1"], "--limit must be an integer in [1, 10000], got -1"),
    (["recommend", "--limit", "0"], "--limit must be an integer in [1, 10000], got 0"),
    (["recommend", "--context", "1" + "0" * 400], "context_tokens must be an integer in [1, 1000000000]"),
    (["recommend", "--gpu", "g" * 100_000], "is 100,000 characters, over 200"),
    (["usage", "import", str(FIXTURES / "usage" / "azure_conv_2023_head.csv"), "--write", "."], "is a directory"),
    (["usage", "import", "/proc/self/status"], "system pseudo-files"),
])
def test_cli_rejections_are_one_short_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and len(err) < 400


def test_recommend_limit_one(capsys):
    code, out, _ = run(capsys, "recommend", "--limit", "1")
    assert code == 0 and "... " in out and "more ranked" in out
