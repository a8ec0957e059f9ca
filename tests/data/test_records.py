"""Typed records: each table declared once (planner.data.records / columns), read and checked by read_records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from planner.data._csvschema import read_records
from planner.data.columns import columns
from planner.data.records import GPU_HOUR_BAND, ApiPrice, EfficiencyProfile, Engine, GpuPrice, Model
from planner.errors import CatalogError

ROOT = Path(__file__).resolve().parents[2]
PRICE_HEADER = ("gpu_id,provider,pricing,usd_per_gpu_hour,region,instance_type,gpus_per_instance,source_url,"
                "source_accessed,notes\n")
PRICE_ROW = "H100-SXM,x,on_demand,{usd},us,i,8,https://x.example,2025-01-01,\n"


def _prices(*rows: str) -> bytes:
    return (PRICE_HEADER + "".join(rows)).encode()


def test_declaration_is_read_into_columns():
    cols = columns(GpuPrice)
    assert list(cols)[:4] == ["gpu_id", "provider", "pricing", "usd_per_gpu_hour"]  # field order = CSV order
    assert [c for c, col in cols.items() if col.key] == ["gpu_id", "provider", "pricing", "region", "instance_type"]
    assert cols["usd_per_gpu_hour"].band == (GPU_HOUR_BAND.low, GPU_HOUR_BAND.high, GPU_HOUR_BAND.source)
    assert (cols["usd_per_gpu_hour"].kind, cols["usd_per_gpu_hour"].required) == ("float+", True)
    assert (cols["region"].required, cols["price_as_of"].may_be_absent, cols["price_as_of"].kind) == (
        False, True, "past_date")
    assert "arch" not in columns(Model)  # derived by the loader from the config file, not a column
    assert columns(Engine)["aliases"].required is False and columns(Engine)["layouts"].required is True


def test_read_records_returns_typed_records_with_rows():
    table = read_records(_prices("\n", PRICE_ROW.format(usd="2.5")), GpuPrice, name="upload.csv")
    (price,) = table.records
    assert table.rows == (3,)  # the blank line is row 2, as a spreadsheet counts
    assert (price.usd_per_gpu_hour, price.gpus_per_instance, price.source_accessed) == (2.5, 8, dt.date(2025, 1, 1))
    # the defaults of columns an older file lacks
    assert (price.price_as_of, price.provider_class, price.price_flag) == (dt.date(2025, 1, 1), "unknown", None)
    assert dataclasses.replace(price, usd_per_gpu_hour=3.0).usd_per_gpu_hour == 3.0
    assert hash(price) == hash(dataclasses.replace(price))


@pytest.mark.parametrize("usd, match", [
    ("abc", r"row 2, column 'usd_per_gpu_hour': must be a number \(value 'abc'\)"),
    ("nan", r"column 'usd_per_gpu_hour': must be finite"),
    ("-inf", r"column 'usd_per_gpu_hour': must be finite"),
    ("0", r"column 'usd_per_gpu_hour': must be > 0"),
    ("1e300", r"column 'usd_per_gpu_hour': is outside the plausible band \[0.01, 200\] \(shipped GPU prices"),
])
def test_bad_number_names_file_row_column_value(usd, match):
    with pytest.raises(CatalogError, match=match):
        read_records(_prices(PRICE_ROW.format(usd=usd)), GpuPrice, name="upload.csv")


def test_first_bad_cell_in_header_order_and_huge_value_cut():
    row = "H100-SXM,x,weekly,abc,us,i,8,https://x.example,2025-01-01,\n"  # pricing and price both bad
    with pytest.raises(CatalogError, match=r"column 'pricing': unknown value \(allowed: on_demand, spot"):
        read_records(_prices(row), GpuPrice, name="upload.csv")
    huge = "9" * 60_000
    with pytest.raises(CatalogError) as info:
        read_records(_prices(PRICE_ROW.format(usd=huge + "x")), GpuPrice, name="upload.csv")
    message = str(info.value)
    assert "must be a number" in message and len(message) < 400 and "\n" not in message


def test_words_cells_and_choices():
    header = ("engine_id,aliases,name,vendors,precision_kinds,memory_utilization_frac,runtime_overhead_gb,max_num_seqs,"
              "max_num_batched_tokens,kv_reservation,kv_memory_basis,int8_matmul_precisions,layouts,"
              "fp8_checkpoint_kv_dtype,policy_source_url,source_url,source_accessed,notes\n")
    row = "e,,E,nvidia;amd,float,0.9,1,256,,paged,total,,tp;{layout},,https://p.example,https://s.example,2025-01-01,\n"
    (engine,) = read_records((header + row.format(layout="dp")).encode(), Engine, name="engines.csv")
    assert (engine.aliases, engine.vendors, engine.layouts, engine.int8_matmul_precisions) == (
        (), ("nvidia", "amd"), ("tp", "dp"), ())  # an empty list cell is (), never None
    with pytest.raises(CatalogError, match=r"engines.csv, row 2, column 'layouts': unknown value 'zz' \(allowed: tp"):
        read_records((header + row.format(layout="zz")).encode(), Engine, name="engines.csv")
    with pytest.raises(CatalogError) as info:  # a huge unknown word is cut in the one-line message
        read_records((header + row.format(layout="z" * 60_000)).encode(), Engine, name="engines.csv")
    assert len(str(info.value)) < 400 and "\n" not in str(info.value)
    bad = row.format(layout="dp").replace("paged", "eager")
    with pytest.raises(CatalogError, match=r"column 'kv_reservation': unknown value \(allowed: paged, full_sequence\)"):
        read_records((header + bad).encode(), Engine, name="engines.csv")


def test_frac_and_conflicting_key():
    cols = columns(EfficiencyProfile)
    assert cols["mbu_frac"].kind == "frac" and cols["moe_mbu_frac"].required is False
    first, second = PRICE_ROW.format(usd="2.5"), PRICE_ROW.format(usd="3.5")
    with pytest.raises(CatalogError, match=r"row 3, column 'usd_per_gpu_hour': differs .* from row 2"):
        read_records(_prices(first, second), GpuPrice, name="upload.csv")


def test_pydantic_type_adapter_validates_the_same_declaration():
    """The column markers are pydantic metadata: pydantic.TypeAdapter(GpuPrice) accepts and refuses the same cells."""
    adapter = pydantic.TypeAdapter(GpuPrice)
    cells = dict(gpu_id="H100-SXM", provider="x", pricing="spot", usd_per_gpu_hour="2.5", region=None,
                 instance_type=None, gpus_per_instance="8", source_url="https://x.example",
                 source_accessed="2025-01-01", notes=None, price_as_of=None, provider_class=None, price_flag=None)

    def csv(values: dict) -> bytes:
        return (",".join(values) + "\n" + ",".join(v or "" for v in values.values()) + "\n").encode()

    assert adapter.validate_python(cells) == read_records(csv(cells), GpuPrice).records[0]
    for column, value in (("usd_per_gpu_hour", "1e300"), ("usd_per_gpu_hour", "nan"), ("pricing", "weekly"),
                          ("source_accessed", "2999-01-01"), ("source_url", "ftp://x"), ("gpus_per_instance", "0")):
        with pytest.raises(pydantic.ValidationError) as info:
            adapter.validate_python({**cells, column: value})
        assert [e["loc"] for e in info.value.errors()] == [(column,)]
        with pytest.raises(CatalogError, match=f"row 2, column '{column}'"):
            read_records(csv({**cells, column: value}), GpuPrice)


def test_api_price_bands():
    header = ("api_id,provider,model_name,category,catalog_model_id,input_usd_per_mtok,output_usd_per_mtok,"
              "cached_input_usd_per_mtok,cache_write_usd_per_mtok,batch_input_usd_per_mtok,batch_output_usd_per_mtok,"
              "max_input_tokens,source_url,source_accessed,notes\n")
    row = "a,p,m,closed,,1,{out},,,,,1000,https://x.example,2025-01-01,\n"
    with pytest.raises(CatalogError, match=r"column 'output_usd_per_mtok': is outside the plausible band"):
        read_records((header + row.format(out="20000")).encode(), ApiPrice)


def test_no_validator_is_built_at_import():
    code = ("import planner, planner.plan; from planner.data import columns; "
            "print(columns._compiled.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
