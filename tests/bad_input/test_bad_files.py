"""Bounded readers under arbitrary input: a value, or one InputFileError; never another exception or a hang."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from _hostile import SETTINGS, VALUES
from hypothesis import given
from hypothesis import strategies as st

from planner.data.safe_io import InputFileError, loads_json, loads_toml, read_csv_rows, read_text, write_text_atomic

JSONISH = st.one_of(
    st.binary(max_size=200),
    st.text(alphabet=st.sampled_from('{}[]":,0123456789.eE+-nulltruefalseNaNInfinity \n\\x\x00\xff'), max_size=300),
    VALUES.map(lambda v: json.dumps(v, allow_nan=True, default=str)),
    st.integers(1, 200_000).map(lambda n: "[" * n + "]" * (n % 3)),
    st.integers(1, 5000).map(lambda n: '{"a": ' + "9" * n + "}"),
)


@SETTINGS
@given(JSONISH)
def test_loads_json_returns_or_refuses(text):
    try:
        loads_json(text, what="fuzz.json")
    except InputFileError as err:
        assert str(err).startswith("fuzz.json") and len(str(err)) < 400


@SETTINGS
@given(st.one_of(st.text(max_size=300), st.integers(1, 100_000).map(lambda n: "a = " + "[" * n),
                 st.sampled_from(["a = nan", "a = 1e400", "a = 1\na = 2", "[t]\n[t]", "a = " + "9" * 5000])))
def test_loads_toml_returns_or_refuses(text):
    try:
        loads_toml(text, what="fuzz.toml")
    except InputFileError as err:
        assert str(err).startswith("fuzz.toml") and len(str(err)) < 400


@SETTINGS
@given(st.binary(max_size=2000))
def test_read_text_and_csv_of_any_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.csv"
        path.write_bytes(raw)
        for read in (read_text, read_csv_rows):
            try:
                read(path, what="upload")
            except InputFileError as err:
                assert "upload" in str(err)


@SETTINGS
@given(st.text(min_size=0, max_size=300))
def test_write_text_atomic_never_leaves_a_temporary(name):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            write_text_atomic(Path(tmp) / name, "x", what="output")
        except InputFileError:
            pass
        except ValueError:  # only an embedded NUL in the path may reach here
            assert "\x00" in name
        leftovers = [n for n in os.listdir(tmp) if n.startswith(".tmp-")]
        assert leftovers == []
