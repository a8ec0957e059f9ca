"""Bounded readers and the atomic writer: every refusal is one InputFileError naming the file and line."""

from __future__ import annotations

import os
import stat

import pytest

from planner.data import safe_io
from planner.data.safe_io import (
    InputFileError,
    list_files,
    loads_json,
    loads_toml,
    read_bytes,
    read_csv_rows,
    read_json,
    read_text,
    read_toml,
    write_text_atomic,
)
from planner.errors import InvalidInputError


def test_reads_a_json_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 4096, "rope": {"factor": 8.0}}', encoding="utf-8")
    assert read_json(path, what="config.json") == {"hidden_size": 4096, "rope": {"factor": 8.0}}


def test_reads_a_toml_file_with_bom(tmp_path):
    path = tmp_path / "s.toml"
    path.write_bytes(b"\xef\xbb\xbfmodel_id = 'x'\n")
    assert read_toml(path, what="scenario file") == {"model_id": "x"}


def test_error_is_an_invalid_input_error():
    assert issubclass(InputFileError, InvalidInputError)


@pytest.mark.parametrize(("text", "match"), [
    ('{"a": 1,\n "a": 2}', r"line 2: has the key 'a' twice"),
    ('{"a": 1e400}', r"line 1: number '1e400' is beyond the range of a float"),
    ('{"a": NaN}', r"'NaN' is not valid JSON \(NaN and Infinity are not numbers\)"),
    ('{"a": -Infinity}', r"'-Infinity' is not valid JSON"),
    ('{"a": ' + "9" * 5000 + "}", r"integer of 5000 digits"),
    ('{\n\n "a": }', r"line 3: is not valid JSON"),
    ("[" * 100_000, r"nests deeper than 64 levels"),
    ("[" * 70 + "]" * 70, r"nests deeper than 64 levels"),
    ('{"a": "\x00"}', r"NUL byte"),
])
def test_json_refusals(text, match):
    with pytest.raises(InputFileError, match=match):
        loads_json(text, what="config.json")


def test_json_depth_at_the_limit_is_accepted():
    depth = safe_io.MAX_NESTING_DEPTH
    assert loads_json("[" * depth + "]" * depth, what="x") == eval("[" * depth + "]" * depth)  # noqa: S307


def test_json_nonfinite_allowed_on_request():
    value = loads_json('{"a": NaN}', what="x", allow_nonfinite=True)["a"]
    assert value != value  # NaN


def test_json_bytes_not_utf8_names_line():
    with pytest.raises(InputFileError, match=r"upload, line 2: is not UTF-8 text \(byte 0xff\)"):
        loads_json(b'{\n"a": "\xff"}', what="upload")


@pytest.mark.parametrize(("text", "match"), [
    ("a = 1\na = 2\n", r"line 2: is not valid TOML"),
    ("a = nan\n", r"'nan' is not a finite number"),
    ("a = 1e400\n", r"beyond the range of a float"),
    ("a = " + "[" * 100_000, r"nests deeper than 64 levels"),
    ("a = " + "9" * 5000, r"over 4,300 digits"),
])
def test_toml_refusals(text, match):
    with pytest.raises(InputFileError, match=match):
        loads_toml(text, what="scenario file")


def test_message_never_echoes_a_huge_value():
    with pytest.raises(InputFileError) as info:
        loads_json('{"' + "k" * 1_000_000 + '": 1, "' + "k" * 1_000_000 + '": 2}', what="x")
    assert len(str(info.value)) < 300


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match=r"pipe.json: is a FIFO"):
        read_text(fifo, what="scenario file")
    with pytest.raises(InputFileError, match=r"pipe.json: is a FIFO"):
        list_files(tmp_path, what="import folder", pattern="*.json")


@pytest.mark.parametrize("path", ["/proc/self/status", "/dev/zero", "/sys/kernel"])
def test_pseudo_file_systems_refused(path):
    with pytest.raises(InputFileError, match=r"is under /(proc|dev|sys)"):
        read_text(path, what="file")


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="is a directory"):
        read_text(tmp_path, what="file")
    with pytest.raises(InputFileError, match="no such file"):
        read_text(tmp_path / "nope.json", what="file")


def test_size_limit(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 101)
    with pytest.raises(InputFileError, match="101 bytes, over the 100-byte limit"):
        read_bytes(path, what="file", max_bytes=100)
    assert read_bytes(path, what="file", max_bytes=101) == b" " * 101


def test_csv_limits(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("a,b\n1,2\n\"x\ny\",3\n", encoding="utf-8")
    assert read_csv_rows(path, what="usage file") == [["a", "b"], ["1", "2"], ["x\ny", "3"]]
    path.write_text("a,b\n1,2\n3," + "z" * 70_000 + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"line 3: has a cell of 70,000 characters"):
        read_csv_rows(path, what="usage file")
    path.write_text("a,b\n1,\"" + "z" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"not valid CSV"):
        read_csv_rows(path, what="usage file")
    path.write_text("a\n1\n2\n3\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"more than 3 rows"):
        read_csv_rows(path, what="usage file", max_rows=3)


def test_atomic_write_and_modes(tmp_path):
    target = tmp_path / "out.csv"
    write_text_atomic(target, "a\nb\n", what="CSV report")
    assert target.read_text(encoding="utf-8") == "a\nb\n"
    script = write_text_atomic(tmp_path / "serve.sh", "#!/bin/sh\n", what="script", mode=0o755)
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.mark.parametrize(("name", "match"), [
    ("missing/out.csv", "does not exist"),
    ("", "is a directory"),
    ("a" * 300, "too long"),
])
def test_output_path_refusals(tmp_path, name, match):
    with pytest.raises(InputFileError, match=match):
        write_text_atomic(tmp_path / name, "x", what="CSV report")


def test_write_over_a_fifo_refused(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="FIFO"):
        write_text_atomic(fifo, "x", what="CSV report")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied_leaves_target_unchanged(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.csv").write_text("old", encoding="utf-8")
    folder.chmod(0o500)
    try:
        with pytest.raises(InputFileError, match="permission denied"):
            write_text_atomic(folder / "out.csv", "new", what="CSV report")
        assert (folder / "out.csv").read_text(encoding="utf-8") == "old"
    finally:
        folder.chmod(0o700)
