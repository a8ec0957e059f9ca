"""Price and usage imports under hostile rows: records, or one MalformedInputError naming the input file; the
price store is byte-for-byte unchanged after any failure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from _hostile import NUMBER_TEXT, NUMBERS, SETTINGS, VALUES
from hypothesis import given
from hypothesis import strategies as st

from planner.data.catalog import load_catalog
from planner.data.importers._provenance import MalformedInputError, source_from_bytes
from planner.data.importers.litellm import parse_litellm
from planner.data.importers.skypilot import parse_vms_csv
from planner.data.importers.store import load_user_prices, save_api_prices, save_gpu_prices
from planner.data.importers.usage import read_requests, workload_from_requests
from planner.errors import InvalidInputError

DAY = dt.date(2026, 1, 15)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CATALOG = load_catalog()
TEXT_CELL = st.one_of(NUMBER_TEXT, st.text(max_size=12), st.sampled_from(["H100", "A100-80GB", "L4", "us-east-1"]))


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


@pytest.fixture(scope="module")
def seeded_store():
    """A price store holding the fixture imports, copied fresh for each example by `_store`."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        lite = parse_litellm(source_from_bytes((FIXTURES / "litellm" / "model_prices_subset.json").read_bytes(),
                                               "fixture.json"), accessed=DAY, catalog=CATALOG)
        save_api_prices(lite.records, base)
        sky = parse_vms_csv(source_from_bytes((FIXTURES / "skypilot" / "aws" / "vms.csv").read_bytes(), "aws.csv"),
                            provider="aws", catalog=CATALOG, accessed=DAY)
        save_gpu_prices(sky.records, CATALOG, base)
        yield {p.name: p.read_bytes() for p in base.iterdir()}


def _store(seed: dict[str, bytes], tmp: str) -> Path:
    base = Path(tmp) / "store"
    base.mkdir()
    for name, data in seed.items():
        (base / name).write_bytes(data)
    return base


ENTRY = st.fixed_dictionaries(
    {"mode": st.sampled_from(["chat", "completion", "embedding"]), "litellm_provider": st.sampled_from(["t", "u"])},
    optional={"input_cost_per_token": NUMBERS, "output_cost_per_token": NUMBERS, "max_input_tokens": NUMBERS,
              "cache_read_input_token_cost": VALUES, "source": VALUES},
)


@SETTINGS
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.one_of(ENTRY, VALUES), min_size=1, max_size=5))
def test_litellm_import_or_refuse_store_unchanged(seeded_store, data):
    raw = json.dumps(data, allow_nan=True, default=str).encode()
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(seeded_store, tmp)
        before = _digest(store)
        try:
            result = parse_litellm(source_from_bytes(raw, "hostile.json"), accessed=DAY, catalog=CATALOG)
            save_api_prices(result.records, store, source="hostile.json")
        except InvalidInputError as err:
            assert "hostile.json" in str(err) and len(str(err)) < 600
            assert _digest(store) == before
            return
        load_user_prices(store, catalog=CATALOG)  # what was written reads back


ROW = st.tuples(st.sampled_from(["p5.48xlarge", "", "g2-standard-4"]), TEXT_CELL, NUMBER_TEXT, NUMBER_TEXT,
                NUMBER_TEXT, TEXT_CELL)


@SETTINGS
@given(st.lists(ROW, min_size=1, max_size=6))
def test_skypilot_import_or_refuse_store_unchanged(seeded_store, rows):
    header = "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region\n"
    text = header + "".join(",".join(json.dumps(c) if ("," in c or '"' in c or "\n" in c or "\r" in c) else c
                                     for c in row) + "\n" for row in rows)
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(seeded_store, tmp)
        before = _digest(store)
        try:
            result = parse_vms_csv(source_from_bytes(text.encode(), "vms.csv"), provider="aws", catalog=CATALOG,
                                   accessed=DAY)
            save_gpu_prices(result.records, CATALOG, store, source="vms.csv")
        except InvalidInputError as err:
            assert "vms.csv" in str(err) and len(str(err)) < 600
            assert _digest(store) == before
            return
        gpu, _ = load_user_prices(store, catalog=CATALOG)
        assert all(0.01 <= p.usd_per_gpu_hour <= 200 for p in gpu)


USAGE_ROW = st.tuples(st.one_of(NUMBER_TEXT, st.sampled_from(["2024-05-01T10:00:00", "2099-01-01T00:00:00Z",
                                                               "1700000000", "1700003600.5"])),
                      NUMBER_TEXT, NUMBER_TEXT)


@SETTINGS
@given(st.lists(USAGE_ROW, min_size=1, max_size=8), st.booleans())
def test_usage_import_or_refuse(rows, as_jsonl):
    if as_jsonl:
        text = "".join(json.dumps({"timestamp": t, "input_tokens": i, "output_tokens": o}) + "\n" for t, i, o in rows)
        name = "u.jsonl"
    else:
        text = "timestamp,input_tokens,output_tokens\n" + "".join(f"{t},{i},{o}\n" for t, i, o in rows)
        name = "u.csv"
    try:
        workload = workload_from_requests(read_requests(source_from_bytes(text.encode(), name)))
    except MalformedInputError as err:
        assert str(err).startswith(name) and len(str(err)) < 600
        return
    except InvalidInputError as err:  # too few distinct times to measure a rate
        assert "usage export" in str(err)
        return
    assert workload.requests == len(rows) and workload.peak_to_average_ratio >= 1
