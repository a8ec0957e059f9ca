"""Scenarios: field metadata, validation, overrides and JSON/TOML round trips."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from planner.errors import InvalidInputError
from planner.scenario import (
    COST_DEFAULTS,
    PRESETS,
    SCENARIO_FIELDS,
    Scenario,
    apply_overrides,
    coerce_field,
    dump_scenario,
    load_scenario,
    scenario_from_dict,
    scenario_to_dict,
)

PROFILE = tuple(float(h % 6 + 1) for h in range(24))


def test_every_field_has_metadata_and_a_valid_default():
    assert set(SCENARIO_FIELDS) == {f.name for f in dataclasses.fields(Scenario)}
    for spec in SCENARIO_FIELDS.values():
        assert spec.help and spec.source and spec.group
        assert coerce_field(spec.name, spec.default) == spec.default
        if spec.kind in ("int", "float"):
            assert spec.low is not None and spec.high is not None


def test_cost_defaults_come_from_the_data_file():
    s = Scenario()
    assert s.pue == COST_DEFAULTS["pue"].value == pytest.approx(1.58)
    assert "uptimeinstitute" in SCENARIO_FIELDS["pue"].source


def test_dict_round_trip():
    s = Scenario(requests_per_day=2e6, hourly_profile=PROFILE, mode="owned", api_id="test-api",
                 num_gpus_per_replica=8)
    assert scenario_from_dict(scenario_to_dict(s)) == s


@pytest.mark.parametrize("suffix", [".json", ".toml", ".JSON"])
def test_file_round_trip(tmp_path, suffix):
    s = Scenario(preset="rag", requests_per_day=12345.5, hourly_profile=PROFILE, autoscale=True,
                 tokens_per_month=1e9, provider="aws", redundancy_replicas=2)
    path = tmp_path / f"scenario{suffix}"
    dump_scenario(s, path)
    assert load_scenario(path) == s


def test_partial_file_keeps_defaults(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('model = "qwen3-8b"\nrequests_per_day = 5000\n')
    s = load_scenario(path)
    assert s.model == "qwen3-8b" and s.requests_per_day == 5000.0 and s.preset == "chat"


@pytest.mark.parametrize("name, text, match", [
    ("s.yaml", "model: x", "must end in .json or .toml"),
    ("s.json", "{not json", "line 1.*not valid JSON"),
    ("s.toml", "model = ", "not valid TOML"),
    ("s.json", "[1, 2]", "must be a mapping"),
    ("s.json", '{"requests_per_dya": 5}', "unknown scenario field 'requests_per_dya'; closest: requests_per_day"),
    ("s.json", '{"pue": NaN}', "NaN"),
    ("s.json", '{"pue": 0.5}', r"'pue' must be in \[1, 5\] \(ratio\), got 0.5"),
    ("s.json", '{"requests_per_day": 0}', r"'requests_per_day' must be in \(0"),
    ("s.json", '{"requests_per_day": "many"}', "must be a finite number"),
    ("s.json", '{"mode": "leased"}', "must be one of rented, owned"),
    ("s.json", '{"autoscale": "yes"}', "must be true or false"),
    ("s.json", '{"redundancy_replicas": 1.5}', "whole number"),
    ("s.json", '{"hourly_profile": [1, 2, 3]}', "list of 24 numbers"),
    ("s.json", '{"model": ""}', "non-empty string"),
    ("s.json", '{"preset": "chatbot"}', "must be one of chat"),
    ("s.toml", "horizon_months = 0", r"'horizon_months' must be in \[1, 120\]"),
    ("s.json", '{"prompt_cache_hit_frac": 0.8, "prompt_cache_write_frac": 0.3}', "<= 1"),
])
def test_bad_scenario_files_get_one_clear_message(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=match):
        load_scenario(path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_scenario(tmp_path / "nope.json")


@pytest.mark.parametrize("field", ["requests_per_day", "pue", "electricity_usd_per_kwh", "headroom_frac",
                                   "ttft_target_s", "tpot_target_s", "api_price_decline_frac_per_year",
                                   "offline_frac", "amortisation_years"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, 1e20])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(InvalidInputError, match=f"'{field}'"):
        Scenario(**{field: value})


def test_apply_overrides_parses_text():
    s = apply_overrides(Scenario(), ["requests_per_day=2e6", "autoscale=yes", "num_gpus_per_replica=8",
                                     "hourly_profile=" + ",".join(str(v) for v in PROFILE), "provider=aws",
                                     "mode=OWNED", "api_id=none"])
    assert s.requests_per_day == 2e6 and s.autoscale and s.num_gpus_per_replica == 8
    assert s.hourly_profile == PROFILE and s.mode == "owned" and s.api_id is None


@pytest.mark.parametrize("override, match", [
    ("requests_per_day", "key=value"), ("=5", "key=value"), ("nope=1", "unknown scenario field"),
    ("requests_per_day=lots", "cannot read 'lots'"), ("hourly_profile=1,2,x", "list of numbers"),
    ("autoscale=maybe", "true or false"), ("requests_per_day=none", "cannot read .none."),
])
def test_bad_overrides(override, match):
    with pytest.raises(InvalidInputError, match=match):
        apply_overrides(Scenario(), [override])


def test_json_dump_keeps_nulls(tmp_path):
    path = tmp_path / "s.json"
    dump_scenario(Scenario(), path)
    data = json.loads(path.read_text())
    assert data["tokens_per_month"] is None and data["pue"] == pytest.approx(1.58)


def test_optimizer_fields_default_to_searched_and_validate():
    from planner.scenario import Scenario, apply_overrides
    s = Scenario()
    assert (s.tp, s.pp, s.max_num_seqs, s.precision, s.kv_dtype, s.engine) == (None,) * 6
    assert (s.quality_policy, s.provider_policy, s.latency_percentile) == ("low-risk", "no-marketplace", 0.95)
    assert (s.finetune_runs_per_year, s.finetune_method, s.finetune_epochs) == (0.0, "lora", 1.0)
    assert (s.finetune_seq_len, s.finetune_lora_rank, s.finetune_gpu, s.finetune_num_gpus) == (4096, 16, None, None)
    t = apply_overrides(s, ["gpu=auto", "tp=4", "pp=2", "expert_parallel=none", "max_num_seqs=256",
                            "latency_percentile=0.99", "peak_to_average_ratio=236", "finetune_method=qlora"])
    assert (t.gpu, t.tp, t.pp, t.expert_parallel, t.max_num_seqs) == ("auto", 4, 2, None, 256)
    assert (t.latency_percentile, t.peak_to_average_ratio, t.finetune_method) == (0.99, 236.0, "qlora")
    for bad in ("latency_percentile=0.98", "max_num_seqs=65537", "max_num_seqs=0", "quality_policy=best",
                "provider_policy=cheap", "finetune_epochs=0", "finetune_method=adapter", "tp=1.5"):
        with pytest.raises(InvalidInputError, match=bad.split("=")[0]):
            apply_overrides(s, [bad])


@pytest.mark.parametrize("item", ["requests_per_day=" + "9" * 500, "requests_per_day=nan", "model=" + "x" * 100_000,
                                  "horizon_months=1e400", "requests_per_day=-inf"])
def test_hostile_overrides_give_one_short_line(item):
    from planner.scenario import Scenario, apply_overrides
    with pytest.raises(InvalidInputError) as err:
        apply_overrides(Scenario(), [item])
    message = str(err.value)
    assert "\n" not in message and len(message) < 400 and item.split("=")[0] in message


@pytest.mark.parametrize("text", ['{"tp": 2, "tp": 3}', '{"requests_per_day": 1e400}', "[" * 10_000,
                                  '{"requests_per_day": ' + "9" * 5000 + "}", '{"requests_per_day": NaN}'])
def test_hostile_scenario_files_are_refused_in_one_line(tmp_path, text):
    from planner.scenario import load_scenario
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as err:
        load_scenario(path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_import_reads_no_data_file():
    import subprocess
    import sys
    code = ("import planner.scenario as m; "
            "assert m.cost_defaults.cache_info().currsize == 0 and m.presets.cache_info().currsize == 0")
    subprocess.run([sys.executable, "-c", code], check=True)


DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_published_schema_and_field_table_are_current():
    from planner.scenario import scenario_fields_markdown, scenario_json_schema
    stale = "stale: run `python3 -m planner.scenario`"
    assert json.loads((DOCS / "scenario.schema.json").read_text()) == scenario_json_schema(), stale
    assert scenario_fields_markdown() in (DOCS / "scenario.md").read_text(), stale


def test_shipped_examples_validate_against_the_schema_and_load():
    jsonschema = pytest.importorskip("jsonschema")
    import tomllib

    from planner.scenario import scenario_json_schema
    schema = scenario_json_schema()
    paths = sorted(EXAMPLES.glob("*.toml")) + sorted(EXAMPLES.glob("*.json"))
    assert paths
    for path in paths:
        data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
        jsonschema.validate(data, schema)
        load_scenario(path)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"latency_percentile": 0.98}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"requests_per_dya": 1}, schema)


def test_the_field_table_is_derived_from_the_pydantic_declaration():
    """One declaration: SCENARIO_FIELDS and the JSON Schema read the bounds, unit and description of
    `Scenario`'s pydantic field annotations (no second table)."""
    from planner.scenario import scenario_json_schema
    assert [f.name for f in dataclasses.fields(Scenario)] == list(SCENARIO_FIELDS)
    # requests_per_day is declared gt=0, le=1e12, unit requests_per_day
    spec = SCENARIO_FIELDS["requests_per_day"]
    assert (spec.kind, spec.unit, spec.low, spec.high, spec.low_open, spec.nullable) == (
        "float", "requests_per_day", 0, 1e12, True, False)
    prop = scenario_json_schema()["properties"]["requests_per_day"]
    assert (prop["exclusiveMinimum"], prop["maximum"], prop["x-unit"]) == (0, 1e12, "requests_per_day")
    assert prop["description"] == spec.help
    # tp: a whole number in [1, 4096] or empty
    tp = SCENARIO_FIELDS["tp"]
    assert (tp.kind, tp.low, tp.high, tp.low_open, tp.nullable, tp.default) == ("int", 1, 4096, False, True, None)
    assert scenario_json_schema()["properties"]["tp"]["anyOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 4096}, {"type": "null"}]
    # a cost field: default and source from data/cost_defaults.csv, read lazily
    assert SCENARIO_FIELDS["pue"].default == pytest.approx(1.58)
    assert scenario_json_schema()["properties"]["pue"]["default"] == pytest.approx(1.58)
    assert SCENARIO_FIELDS["preset"].choices == tuple(PRESETS) and "chat" in PRESETS
    assert SCENARIO_FIELDS["hourly_profile"].kind == "profile"


@pytest.mark.parametrize("fields", [
    {"pue": 0.5}, {"pue": math.nan}, {"pue": 10**400}, {"requests_per_day": True}, {"tp": True}, {"tp": 1.5},
    {"tp": "4"}, {"mode": 3}, {"autoscale": 1}, {"model": "x" * 100_000}, {"hourly_profile": [1.0] * 23},
    {"hourly_profile": [1.0] * 23 + [math.inf]}, {"preset": "nope"}, {"model": None},
])
def test_bad_values_raise_the_planners_one_line_error_not_pydantics(fields):
    from pydantic import ValidationError
    with pytest.raises(InvalidInputError) as err:
        Scenario(**fields)
    assert not isinstance(err.value, ValidationError)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400 and "Input should" not in message
    assert next(iter(fields)) in message


@pytest.mark.parametrize("fields, match", [
    ({"mode": 3}, "'mode' must be one of rented, owned, got 3"),
    ({"tp": True}, r"'tp' must be a finite number in \[1, 4096\] \(gpus\), got True"),
    ({"horizon_months": 10**400}, r"'horizon_months' must be in \[1, 120\] \(months\), got an integer of about 401"),
    ({"pue": math.inf}, r"'pue' must be a finite number in \[1, 5\] \(ratio\), got inf"),
    ({"model": "  "}, "'model' must be a non-empty string"),
    ({"autoscale": None}, "'autoscale' is required"),
    ({"hourly_profile": [0.0] * 24}, "'hourly_profile' must have some traffic"),
])
def test_messages_name_the_field_the_range_and_the_value(fields, match):
    with pytest.raises(InvalidInputError, match=match):
        Scenario(**fields)


def test_replace_validates_and_keeps_the_types():
    s = Scenario()
    with pytest.raises(InvalidInputError, match=r"'pue' must be in \[1, 5\] \(ratio\), got 9"):
        dataclasses.replace(s, pue=9.0)
    t = dataclasses.replace(s, tp=4.0, requests_per_day=5, mode=" Owned ", hourly_profile=list(PROFILE))
    assert t.tp == 4 and isinstance(t.tp, int)  # 4.0, as JSON writers emit it, is the whole number 4
    assert t.requests_per_day == 5.0 and isinstance(t.requests_per_day, float)
    assert t.mode == "owned" and t.hourly_profile == PROFILE
    assert hash(t) != hash(s) and t != s and dataclasses.replace(t) == t


def test_the_first_construction_builds_the_validator_and_still_raises_one_line():
    """Import builds no pydantic model; the first Scenario() builds it, and the error is still one line."""
    import subprocess
    import sys
    code = ("import planner.scenario as m, planner.errors as e\n"
            "assert m._model.cache_info().currsize == 0\n"
            "for _ in range(2):\n"
            "    try:\n"
            "        m.Scenario(pue=0.5)\n"
            "    except e.InvalidInputError as err:\n"
            "        assert 'pue' in str(err)\n"
            "    else:\n"
            "        raise SystemExit('accepted')\n"
            "assert m._model.cache_info().currsize == 1 and m.Scenario().pue > 0")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name, value, expected", [
    ("tp", "4", 4), ("tp", 4.0, 4), ("mode", " OWNED", "owned"), ("latency_percentile", "0.9", 0.9),
    ("expert_parallel", "none", None), ("model", "  qwen3-8b ", "qwen3-8b"),
])
def test_coerce_field_uses_the_same_declaration(name, value, expected):
    assert coerce_field(name, value) == expected


@pytest.mark.parametrize("name, value, match", [
    ("tp", 0, r"'tp' must be in \[1, 4096\] \(gpus\), got 0"),
    ("requests_per_day", math.inf, r"finite number in \(0, 1e\+12\]"),
    ("hourly_profile", [1.0] * 23 + [-1.0], r"'hourly_profile'\[23\] must be in \[0, inf\)"),
    ("latency_percentile", 0.98, "must be one of 0.5, 0.9, 0.95, 0.99, got 0.98"),
])
def test_coerce_field_refuses_with_the_range(name, value, match):
    with pytest.raises(InvalidInputError, match=match):
        coerce_field(name, value)
