"""data/gemm_attainable.csv: the shipped rows are sane and sourced, the loader refuses bad rows naming file, row and
column, and the rate the roofline uses for a format is the dense peak times the row's fraction (unchanged where a
GPU has no row)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from planner.data.catalog import DATA_DIR, load_catalog
from planner.errors import CatalogError
from planner.perf import evaluator
from planner.perf.estimate import EstimateRequest, prepare

HEADER = "gpu_id,format,attainable_frac,n_shapes,source_url,source_accessed,notes"
SRC = "https://github.com/ai-dynamo/aiconfigurator/blob/v0.12.0/x.parquet,2026-12-07,"


def _rows() -> list[dict[str, str]]:
    with open(DATA_DIR / "gemm_attainable.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_shipped_rows_name_known_gpus_with_a_peak_and_a_plausible_fraction(real_catalog):
    rows = _rows()
    assert rows, "data/gemm_attainable.csv has no rows"
    for r in rows:
        gpu = real_catalog.gpus[r["gpu_id"]]  # every gpu_id exists in gpus.csv
        assert r["format"] in ("bf16", "fp8", "fp4", "int8")
        assert gpu.supports(r["format"]), r
        assert 0 < float(r["attainable_frac"]) <= 1.05, r
        assert int(r["n_shapes"]) >= 100, r  # a median over many large shapes, not one point
        assert r["source_url"].startswith("https://github.com/ai-dynamo/aiconfigurator/"), r
        assert "0.12.0" in r["source_url"] and r["source_accessed"] == "2026-12-07"
        # the loader attached the row to its GPU
        assert gpu.attainable_frac(r["format"]) == pytest.approx(float(r["attainable_frac"]))
    assert len({(r["gpu_id"], r["format"]) for r in rows}) == len(rows)


def _tiny_with(data: Path, *lines: str) -> Path:
    (data / "gemm_attainable.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    return data


@pytest.mark.parametrize("line, match", [
    ("TEST-GPU,fp8,0,675," + SRC, r"gemm_attainable.csv, row 2, column 'attainable_frac'"),
    ("TEST-GPU,fp8,1.2,675," + SRC, r"gemm_attainable.csv, row 2, column 'attainable_frac'"),
    ("TEST-GPU,fp8,nan,675," + SRC, r"gemm_attainable.csv, row 2, column 'attainable_frac'"),
    ("NO-SUCH-GPU,fp8,0.5,675," + SRC, r"gemm_attainable.csv, row 2, column 'gpu_id'.*unknown gpu_id"),
    ("TEST-GPU,fp6,0.5,675," + SRC, r"gemm_attainable.csv, row 2, column 'format'"),
    ("TEST-GPU,fp4,0.5,675," + SRC, r"gemm_attainable.csv, row 2, column 'format'.*no fp4 peak"),  # fp4 cell empty
])
def test_bad_rows_raise_catalog_error_naming_file_row_column(tiny_data_dir, line, match):
    with pytest.raises(CatalogError, match=match):
        load_catalog(_tiny_with(tiny_data_dir, line))


def test_duplicate_row_is_refused(tiny_data_dir):
    data = _tiny_with(tiny_data_dir, "TEST-GPU,fp8,0.5,675," + SRC, "TEST-GPU,fp8,0.6,675," + SRC)  # same key
    with pytest.raises(CatalogError, match=r"gemm_attainable.csv, row 3, .*conflicting duplicate"):
        load_catalog(data)


def _rate(cat, gpu: str, precision: str) -> float:
    s = prepare(cat, EstimateRequest(model="tiny-dense", gpu=gpu, num_gpus=1, engine="vllm", precision=precision,
                                     input_tokens=128, output_tokens=16))
    return evaluator.tflops_of(s.candidate)


def test_rate_is_peak_times_fraction_relative_to_the_reference_gpu(tiny_data_dir, monkeypatch):
    from planner.data import catalog as catalog_mod

    monkeypatch.setattr(catalog_mod, "GEMM_REFERENCE_GPU", "TEST-GPU")  # the tiny catalog has no H100-SXM
    before = load_catalog(tiny_data_dir)
    assert _rate(before, "TEST-GPU", "fp8") == 200.0  # no file: the fp8 dense peak in the tiny gpus.csv
    after = load_catalog(_tiny_with(tiny_data_dir, "TEST-GPU,fp8,0.5,675," + SRC, "TEST-GPU,bf16,0.8,675," + SRC,
                                    "TEST-SMALL,bf16,0.4,675," + SRC))
    # the reference GPU keeps its peaks: the fitted efficiencies are calibrated on it
    assert _rate(after, "TEST-GPU", "fp8") == pytest.approx(200.0)
    assert _rate(after, "TEST-GPU", "bf16") == pytest.approx(100.0)
    # TEST-SMALL reaches half the reference's bf16 share (0.4 / 0.8): 50 x 0.5 = 25 TFLOPS; fp8 (no fp8 peak)
    # runs at bf16, at bf16's factor
    assert _rate(after, "TEST-SMALL", "bf16") == pytest.approx(25.0)
    assert _rate(after, "TEST-SMALL", "fp8") == pytest.approx(25.0)
    # without the reference's row for the format there is nothing to compare with: the peak as before
    lone = load_catalog(_tiny_with(tiny_data_dir, "TEST-SMALL,bf16,0.4,675," + SRC))
    assert _rate(lone, "TEST-SMALL", "bf16") == _rate(before, "TEST-SMALL", "bf16") == 50.0


def test_fp4_is_taken_relative_to_the_reference_fp8(real_catalog):
    # B300's measured FP4 share over H100-SXM's FP8 share, from the shipped rows
    rows = {(r["gpu_id"], r["format"]): float(r["attainable_frac"]) for r in _rows()}
    b300 = real_catalog.gpus["B300"]
    assert b300.rate_factor("fp4") == pytest.approx(rows["B300", "fp4"] / rows["H100-SXM", "fp8"])
    assert real_catalog.gpus["H100-SXM"].rate_factor("fp8") == pytest.approx(1.0)
    assert real_catalog.gpus["H200-NVL"].rate_factor("fp8") == 1.0  # no row
