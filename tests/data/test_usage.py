"""Usage importer: real trace snippets, hand-derived workloads, malformed rows, the scenario snippet."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from planner.cli import main
from planner.data.importers._provenance import MalformedInputError, source_from_bytes
from planner.data.importers.usage import (
    describe_usage,
    import_usage_file,
    parse_mapping,
    read_requests,
    scenario_fields,
    workload_from_requests,
)
from planner.errors import InvalidInputError
from planner.scenario import load_scenario, scenario_from_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "usage"
AZURE = FIXTURES / "azure_conv_2023_head.csv"
MOONCAKE = FIXTURES / "mooncake_conversation_head.jsonl"
H = 3600.0


def test_azure_trace_snippet():
    w = import_usage_file(AZURE)
    # 20 requests from 18:15:46.6805900 to 18:15:59.7056780 = 13.025088 s
    assert w.requests == 20 and w.window_s == pytest.approx(13.025088, abs=1e-6)
    assert w.mean_requests_per_s == pytest.approx(20 / 13.025088)
    assert w.requests_per_day == pytest.approx(20 / 13.025088 * 86_400)
    # ContextTokens sum 11,540 / 20; GeneratedTokens sum 1,674 / 20
    assert (w.input_tokens_mean, w.output_tokens_mean) == pytest.approx((577.0, 83.7))
    assert (w.input_tokens_max, w.output_tokens_max) == (2221, 174)
    # sorted inputs: the 10th and 11th are 388 and 389 -> median 388.5
    assert w.input_tokens_p50 == pytest.approx(388.5)
    assert w.peak_to_average_ratio == pytest.approx(1.0) and all(v is None for v in w.hourly_profile)
    assert w.first_request_utc == "2023-11-16T18:15:46.680590Z" and w.prompt_cache_hit_frac is None
    assert "less than a day" in w.warnings[0]


def test_mooncake_jsonl_in_milliseconds():
    w = import_usage_file(MOONCAKE, time_unit="ms")
    # 12 requests between 0 and 3,000 ms: 4 per second, 345,600 a day
    assert w.requests == 12 and w.window_s == pytest.approx(3.0)
    assert w.requests_per_day == pytest.approx(345_600)
    # input_length sum 133,045 over 12; output_length sum 4,818 over 12
    assert w.input_tokens_mean == pytest.approx(133_045 / 12) and w.output_tokens_mean == pytest.approx(401.5)


def _at(day: int, hour: int, minute: int = 0) -> float:
    return day * 86_400 + hour * H + minute * 60.0


def test_two_days_hand_derived():
    # every hour gets 1 request, hour 12 gets 5: 28 a day, 56 over 48 whole clock hours
    times = [_at(d, h, m) for d in (0, 1) for h in range(24) for m in range(5 if h == 12 else 1)]
    w = describe_usage(times, [100] * len(times), [10] * len(times))
    assert w.requests == 56 and w.window_s == pytest.approx(48 * H)
    assert w.requests_per_day == pytest.approx(28.0)
    # mean hourly rate 56 / 48 = 7/6; busiest hour 5 -> 5 / (7/6) = 30/7
    assert w.peak_to_average_ratio == pytest.approx(30 / 7)
    assert w.peak_requests_per_s == pytest.approx(5 / H)
    assert w.hourly_profile[12] == pytest.approx(30 / 7) and w.hourly_profile[0] == pytest.approx(6 / 7)
    assert sum(w.hourly_profile) / 24 == pytest.approx(1.0)
    assert w.warnings == ()


def test_short_window_uses_whole_hours_inside_it():
    # 00:30, 2 in hour 1, 4 in hour 2, 03:30: 8 requests over 3 h; whole hours inside: 1 and 2
    times = [_at(0, 0, 30), _at(0, 1, 10), _at(0, 1, 20)] + [_at(0, 2, m) for m in (1, 2, 3, 4)] + [_at(0, 3, 30)]
    w = describe_usage(times, [1] * 8, [1] * 8)
    assert w.requests_per_day == pytest.approx(8 / 3 * 24)  # 64
    assert w.peak_to_average_ratio == pytest.approx(4 / (8 / 3))  # 1.5
    assert w.hourly_profile[1] == pytest.approx(0.75) and w.hourly_profile[2] == pytest.approx(1.5)
    assert w.hourly_profile[0] is None and w.hourly_profile[3] is None


@pytest.mark.parametrize("times, inputs, outputs, match", [
    ([], [], [], "no requests"),
    ([5.0], [1], [1], "two or more distinct times"),
    ([1.0, 1.0], [1, 1], [1, 1], "two or more distinct times"),
    ([1.0, 2.0], [1], [1, 1], "same length"),
])
def test_describe_usage_rejects(times, inputs, outputs, match):
    with pytest.raises(InvalidInputError, match=match):
        describe_usage(times, inputs, outputs)


def src(text: str, name: str):
    return source_from_bytes(text.encode(), name)


def test_mapping_and_default_names():
    csv_text = "ts,prompt,gen,note\n2024-05-01T00:00:00Z,10,2,a\n2024-05-01T00:00:04+00:00,30,4,b\n"
    mapping = parse_mapping("timestamp=ts, input_tokens=prompt,output_tokens=gen")
    w = workload_from_requests(read_requests(src(csv_text, "u.csv"), mapping=mapping))
    assert (w.requests, w.window_s, w.input_tokens_mean, w.output_tokens_mean) == (2, 4.0, 20.0, 3.0)
    # OpenAI-style names are found without a mapping; nested JSONL keys, cached tokens, epoch seconds
    lines = [{"created": 1_700_000_000 + i, "usage": {"prompt_tokens": 100, "completion_tokens": 5,
                                                    "prompt_tokens_details": {"cached_tokens": 25 * i}}}
             for i in range(3)]
    text = "\n".join(json.dumps(x) for x in lines) + "\n"
    w = workload_from_requests(read_requests(src(text, "u.jsonl")))
    assert w.prompt_cache_hit_frac == pytest.approx((0 + 25 + 50) / 300)  # cached / input tokens
    assert w.first_request_utc == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC).isoformat()[:19] + "Z"


def test_parse_mapping():
    assert parse_mapping(" timestamp=ts , input_tokens=usage.prompt_tokens,") == \
        {"timestamp": "ts", "input_tokens": "usage.prompt_tokens"}
    assert parse_mapping(None) == {}


@pytest.mark.parametrize("text, match", [
    ("timestamp", "must look like field=column"),
    ("timestamp=", "must look like field=column"),
    ("when=ts", "is not one of"),
])
def test_parse_mapping_rejects(text, match):
    with pytest.raises(InvalidInputError, match=match):
        parse_mapping(text)


HEADER = "timestamp,input_tokens,output_tokens,cached_input_tokens\n"
GOOD = "2024-05-01 10:00:00,100,10,0\n"


@pytest.mark.parametrize("name, text, line, field, problem", [
    ("u.csv", HEADER + GOOD + "2024-05-01 10:00:01,-5,10,0\n", 3, "input_tokens", "whole number of tokens"),
    ("u.csv", HEADER + GOOD + "2024-05-01 10:00:01,5,1.5,0\n", 3, "output_tokens", "whole number of tokens"),
    ("u.csv", HEADER + GOOD + GOOD + "yesterday,5,1,0\n", 4, "timestamp", "not an ISO 8601 time"),
    ("u.csv", HEADER + GOOD + "2024-05-01 10:00:01,,1,0\n", 3, "input_tokens", "missing or empty"),
    ("u.csv", HEADER + GOOD + "2024-05-01 10:00:01,5,1\n", 3, None, "cells"),
    ("u.csv", HEADER + GOOD + "2024-05-01 10:00:01,5,1,9\n", 3, "cached_input_tokens", "exceeds the input"),
    ("u.csv", "time_of_day,input_tokens,output_tokens\n", 1, "timestamp", "no timestamp column"),
    ("u.jsonl", '{"timestamp": 1, "input_tokens": 1, "output_tokens": 1}\n\n{"timestamp": 2,', 3, None,
     "not valid JSON"),
    ("u.jsonl", '{"timestamp": 1, "input_tokens": 1, "output_tokens": 1}\n[1, 2]\n', 2, None, "JSON object"),
    ("u.jsonl", '{"timestamp": 1, "input_tokens": 1, "output_tokens": 1}\n{"timestamp": 2, "input_tokens": 1}\n',
     2, "output_tokens", "missing or empty"),
    ("u.jsonl", '{"timestamp": -1, "input_tokens": 1, "output_tokens": 1}\n', 1, "timestamp", "finite number >= 0"),
    ("u.jsonl", '{"timestamp": NaN, "input_tokens": 1, "output_tokens": 1}\n', 1, "timestamp", "finite number"),
])
def test_malformed_usage_names_file_line_field(name, text, line, field, problem):
    with pytest.raises(MalformedInputError) as info:
        read_requests(src(text, name))
    err = info.value
    assert (err.file, err.line, err.field) == (name, line, field)
    assert problem in str(err) and str(err).startswith(f"{name}, line {line}")


def test_mapped_column_must_exist():
    with pytest.raises(MalformedInputError, match="line 1, field 'prompt': mapped input_tokens column not found"):
        read_requests(src(HEADER + GOOD, "u.csv"), mapping={"input_tokens": "prompt"})


def test_scenario_fields_load_as_a_scenario():
    times = [_at(d, h) for d in (0, 1) for h in range(24)]
    w = describe_usage(times, [200] * 48, [50] * 48, [50] * 48)
    fields = scenario_fields(w)
    assert fields == {"requests_per_day": 24.0, "input_tokens_mean": 200.0, "output_tokens_mean": 50.0,
                      "peak_to_average_ratio": 1.0, "hourly_profile": [1.0] * 24, "prompt_cache_hit_frac": 0.25}
    scenario = scenario_from_dict(fields)
    assert scenario.requests_per_day == pytest.approx(24.0) and scenario.hourly_profile == (1.0,) * 24
    assert "hourly_profile" not in scenario_fields(import_usage_file(AZURE))  # partial day: no profile


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_usage_import_writes_a_scenario_snippet(capsys, tmp_path):
    snippet = tmp_path / "workload.toml"
    code, out, err = run(capsys, "usage", "import", str(AZURE), "--write", str(snippet))
    assert code == 0 and "requests per day" in out and "warning:" in out and str(snippet) in out
    scenario = load_scenario(snippet)
    assert scenario.input_tokens_mean == pytest.approx(577.0) and scenario.output_tokens_mean == pytest.approx(83.7)
    code, out, _ = run(capsys, "usage", "import", str(MOONCAKE), "--time-unit", "ms", "--json")
    data = json.loads(out)
    assert code == 0 and data["requests"] == 12
    assert data["scenario_fields"]["requests_per_day"] == pytest.approx(345_600)


def test_cli_usage_bad_file_leaves_the_snippet(capsys, tmp_path):
    snippet = tmp_path / "workload.json"
    snippet.write_text('{"requests_per_day": 5.0}\n')
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + GOOD + "2024-05-01 10:00:01,x,1,0\n")
    code, out, err = run(capsys, "usage", "import", str(bad), "--write", str(snippet))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "bad.csv, line 3, field 'input_tokens': must be a whole number of tokens >= 0 (value 'x')" in err
    assert snippet.read_text() == '{"requests_per_day": 5.0}\n'


@pytest.mark.parametrize("argv, message", [
    (["usage", "import", "nowhere.csv"], "nowhere.csv: no such file"),
    (["usage", "import", str(AZURE), "--map", "when=ts"], "--map field 'when' is not one of"),
    (["usage", "import", str(AZURE), "--write", "out.yaml"], "must end in .json or .toml"),
])
def test_cli_usage_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1
