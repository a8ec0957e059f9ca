"""Catalog loading: the shipped data validates; each kind of malformed file names file, row, column, value."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.data.catalog import load_catalog
from planner.data.records import provider_class_for
from planner.errors import CatalogError, UnknownNameError


def test_tiny_catalog_loads(tiny_catalog):
    assert tiny_catalog.model_ids == ["test/Tiny-Dense", "test/Tiny-MoE"]
    assert tiny_catalog.gpu("TG").gpu_id == "TEST-GPU"  # alias, case-insensitive
    assert tiny_catalog.model("TINY-MOE").architecture == "moe"
    assert tiny_catalog.gpu("test-gpu").supports("fp8") and not tiny_catalog.gpu("test-small").supports("fp8")


def test_unknown_name_lists_closest(tiny_catalog):
    with pytest.raises(UnknownNameError, match=r"unknown GPU 'TEST-GPV'; closest: test-gpu"):
        tiny_catalog.gpu("TEST-GPV")
    with pytest.raises(UnknownNameError, match="unknown model 'tiny-mo'; closest: tiny-moe"):
        tiny_catalog.model("tiny-mo")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture lacks {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("file, old, new, match", [
    ("gpus.csv", "memory_gb,usable", "mem_gb,usable", r"gpus.csv, row 1, column 'memory_gb': missing column"),
    ("gpus.csv", ",notes", ",notes,color", r"gpus.csv, row 1, column 'color': unknown column"),
    ("gpus.csv", "TEST-SMALL,,", "TEST-GPU,,", r"gpus.csv, row 3, column 'gpu_id': duplicate id"),
    ("gpus.csv", "hopper,datacenter,10,10,1,", "hopper,datacenter,10,10,nan,",
     r"gpus.csv, row 2, column 'memory_bandwidth_tb_s': must be finite \(value 'nan'\)"),
    ("gpus.csv", "hopper,datacenter,10,10,1,", "hopper,datacenter,10,10,-1,",
     r"column 'memory_bandwidth_tb_s': must be > 0 \(value '-1'\)"),
    ("gpus.csv", "hopper,datacenter,10,10,1,", "hopper,datacenter,10,10,fast,",
     r"column 'memory_bandwidth_tb_s': must be a number \(value 'fast'\)"),
    ("gpus.csv", "https://example.org/gpu,2026-11-29", "https://example.org/gpu,29/11/2026",
     r"row 2, column 'source_accessed': must be an ISO date"),
    ("gpus.csv", "https://example.org/gpu,", ",", r"row 2, column 'source_url': is empty but required"),
    ("gpus.csv", "https://example.org/gpu,", "example.org/gpu,", r"column 'source_url': must be an http\(s\) URL"),
    ("gpus.csv", "tg;testgpu", "tg;test-small", r"column 'aliases': name already used"),
    ("gpus.csv", "hopper,datacenter,10,10,", "hopper,datacenter,10,12,", r"usable_memory_gb.*exceeds memory_gb"),
    ("models.csv", "tiny-moe.json,moe,llama-test", "tiny-moe.json,moe,llama-9", r"models.csv, row 3, column "
                                                                                r"'license_id': unknown license_id"),
    ("models.csv", "tiny-dense.json,dense", "missing.json,dense", r"column 'config_file': no such file"),
    ("models.csv", "tiny-moe.json,moe", "tiny-moe.json,dense", r"disagrees with the config's expert layout"),
    ("licenses.csv", "true,,true,,false,false,true", "yes,,true,,false,false,true",
     r"licenses.csv, row 2, column 'commercial_use': must be true or false"),
    ("gpu_prices.csv", "TEST-GPU,testcloud,spot", "NOPE,testcloud,spot",
     r"gpu_prices.csv, row 3, column 'gpu_id': unknown gpu_id"),
    ("gpu_prices.csv", "testcloud,spot", "testcloud,weekly", r"column 'pricing': unknown value"),
    ("api_prices.csv", "closed,,1,4", "closed,,-1,4", r"api_prices.csv, row 2, column 'input_usd_per_mtok': "
                                                      r"must be >= 0"),
    ("gpu_prices.csv", "us,test.8x,8,https", "us,test.8x,8,\"https", r"gpu_prices.csv, row 3: is not valid CSV"),
])
def test_malformed_catalog_rows(tiny_data_dir, file, old, new, match):
    _edit(tiny_data_dir / file, old, new)
    with pytest.raises(CatalogError, match=match):
        load_catalog(tiny_data_dir)


def test_row_with_missing_cells(tiny_data_dir):
    path = tiny_data_dir / "gpu_prices.csv"
    path.write_text(path.read_text() + "TEST-GPU,x,spot\n")
    with pytest.raises(CatalogError, match=r"gpu_prices.csv, row 4: has 3 cells, the header has 10"):
        load_catalog(tiny_data_dir)


def test_malformed_model_config(tiny_data_dir):
    (tiny_data_dir / "model_configs" / "tiny-dense.json").write_text("{not json")
    with pytest.raises(CatalogError, match=r"models.csv, row 2, column 'config_file'.*not valid JSON"):
        load_catalog(tiny_data_dir)


def test_missing_file(tiny_data_dir):
    (tiny_data_dir / "engines.csv").unlink()
    with pytest.raises(CatalogError, match="engines.csv: cannot be read"):
        load_catalog(tiny_data_dir)


# --- price date, flag and provider class -------------------------------------------------------------------

def _add_price_columns(path: Path, *cells: str) -> None:
    """Append price_as_of, price_flag, provider_class to every row of a tiny price file."""
    lines = path.read_text().splitlines()
    header = lines[0] + ",price_as_of,price_flag,provider_class"
    path.write_text("\n".join([header, *(line + "," + ",".join(cells) for line in lines[1:])]) + "\n")


def test_price_columns_may_be_absent(tiny_catalog):
    # The tiny files predate the columns: price_as_of falls back to source_accessed, the class to the mapping
    # ("testcloud" is not in it), and no flag is set.
    price = tiny_catalog.gpu_prices[0]
    assert price.price_as_of == price.source_accessed
    assert price.provider_class == "unknown" and price.price_flag is None and not price.stale
    api = tiny_catalog.api_price("test-api")
    assert api.price_as_of == api.source_accessed and api.price_flag is None


def test_price_columns_read(tiny_data_dir):
    _add_price_columns(tiny_data_dir / "gpu_prices.csv", "2026-06-01", "stale", "neocloud")
    price = load_catalog(tiny_data_dir).gpu_prices[0]
    assert price.price_as_of.isoformat() == "2026-06-01" and price.stale and price.provider_class == "neocloud"


@pytest.mark.parametrize("cells, match", [
    (("2999-01-01", "", ""), r"column 'price_as_of': is in the future"),
    (("2026-12-01", "", ""), r"column 'price_as_of': is later than source_accessed \(2026-11-29\)"),
    (("01/06/2026", "", ""), r"column 'price_as_of': must be an ISO date"),
    (("", "old", ""), r"column 'price_flag': unknown value \(allowed: stale, undated\)"),
    (("", "", "bigcloud"), r"column 'provider_class': unknown value \(allowed: hyperscaler, neocloud, marketplace"),
])
def test_bad_price_columns(tiny_data_dir, cells, match):
    _add_price_columns(tiny_data_dir / "gpu_prices.csv", *cells)
    with pytest.raises(CatalogError, match=r"gpu_prices.csv, row 2, " + match):
        load_catalog(tiny_data_dir)


def test_future_api_price_date(tiny_data_dir):
    path = tiny_data_dir / "api_prices.csv"
    lines = path.read_text().splitlines()
    path.write_text(f"{lines[0]},price_as_of\n{lines[1]},2999-01-01\n")
    with pytest.raises(CatalogError, match=r"api_prices.csv, row 2, column 'price_as_of': is in the future"):
        load_catalog(tiny_data_dir)


@pytest.mark.parametrize("provider, expected", [
    ("aws", "hyperscaler"), ("GCP", "hyperscaler"), ("lambda", "neocloud"), ("nebius", "neocloud"),
    ("runpod", "neocloud"), ("vast", "marketplace"), ("runpod-community", "marketplace"), ("acme", "unknown"),
])
def test_provider_class_inferred(provider, expected):
    assert provider_class_for(provider) == expected


@pytest.mark.parametrize("old, new, column", [(",8192,paged,total,", ",8192,pagd,total,", "kv_reservation"),
                                              (",8192,paged,total,", ",8192,paged,halfway,", "kv_memory_basis"),
                                              (",tp;pp;dp;ep;adp,,https://docs.vllm", ",tp;pp;zz,,https://docs.vllm",
                                               "layouts")])
def test_engine_policies_are_checked(tmp_path, old, new, column):
    import shutil

    from planner.data.catalog import DATA_DIR

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "engines.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError, match=f"engines.csv, row 2, column '{column}'"):
        load_catalog(data)
