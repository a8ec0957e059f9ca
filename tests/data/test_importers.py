"""Price importers on real snippets (tests/fixtures/README.md): LiteLLM JSON, SkyPilot vms.csv, the user store."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from planner.cli import main
from planner.data.catalog import GpuPrice
from planner.data.importers._provenance import MalformedInputError, source_from_bytes
from planner.data.importers.litellm import LITELLM_URL, import_litellm_file, parse_litellm
from planner.data.importers.skypilot import import_skypilot_dir, parse_vms_csv
from planner.data.importers.store import (
    load_user_prices,
    overlay_prices,
    reset_user_prices,
    save_api_prices,
    save_gpu_prices,
    with_user_prices,
)
from planner.errors import CatalogError, InvalidInputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LITELLM = FIXTURES / "litellm" / "model_prices_subset.json"
SKYPILOT = FIXTURES / "skypilot"
DAY = dt.date(2026, 11, 29)


def litellm_records(real_catalog, **kwargs):
    return {r.api_id: r for r in import_litellm_file(LITELLM, accessed=DAY, catalog=real_catalog, **kwargs).records}


# --- LiteLLM ----------------------------------------------------------------------------------------------------

def test_litellm_snippet_maps_fields(real_catalog):
    records = litellm_records(real_catalog)
    assert set(records) == {"gpt-5", "claude-sonnet-4-5", "deepseek/deepseek-chat",
                            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "cerebras/llama-3.3-70b",
                            "deepinfra/meta-llama/Llama-3.3-70B-Instruct"}
    gpt5 = records["gpt-5"]
    # per token x 1e6: 1.25e-06 -> 1.25, 1e-05 -> 10, 1.25e-07 -> 0.125, batches 6.25e-07 -> 0.625, 5e-06 -> 5
    assert (gpt5.input_usd_per_mtok, gpt5.output_usd_per_mtok, gpt5.cached_input_usd_per_mtok,
            gpt5.batch_input_usd_per_mtok, gpt5.batch_output_usd_per_mtok) == \
        pytest.approx((1.25, 10.0, 0.125, 0.625, 5.0))
    assert gpt5.cache_write_usd_per_mtok is None and gpt5.max_input_tokens == 272_000
    assert (gpt5.provider, gpt5.category, gpt5.catalog_model_id) == ("openai", "unclassified", None)
    assert gpt5.source_url == "https://developers.openai.com/api/docs/pricing" and gpt5.source_accessed == DAY
    assert "LiteLLM key gpt-5" in gpt5.notes and "sha256" in gpt5.notes
    claude = records["claude-sonnet-4-5"]
    assert claude.cache_write_usd_per_mtok == pytest.approx(3.75)  # 3.75e-06 per token
    cerebras = records["cerebras/llama-3.3-70b"]
    assert cerebras.source_url == LITELLM_URL  # no `source` in the entry
    assert cerebras.input_usd_per_mtok == pytest.approx(0.85) and cerebras.output_usd_per_mtok == pytest.approx(1.2)


def test_litellm_hosted_open_models_point_at_the_catalog(real_catalog):
    records = litellm_records(real_catalog)
    for key in ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "cerebras/llama-3.3-70b",
                "deepinfra/meta-llama/Llama-3.3-70B-Instruct"):
        assert records[key].catalog_model_id == "meta-llama/Llama-3.3-70B-Instruct"
        assert records[key].category == "open-hosted"


def test_litellm_skips_are_counted(real_catalog):
    result = import_litellm_file(LITELLM, accessed=DAY, catalog=real_catalog)
    assert dict(result.skipped) == {"documentation entry sample_spec": 1, "free (both prices 0)": 1,
                                    "mode not in chat, completion, responses": 2}
    only = litellm_records(real_catalog, providers=["openai", "Anthropic"])
    assert set(only) == {"gpt-5", "claude-sonnet-4-5"}


def _line_with(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def _mutate(key: str, field: str, value) -> str:
    data = json.loads(LITELLM.read_text())
    if field is None:
        data[key] = value
    else:
        data[key][field] = value
    return json.dumps(data, indent=4)


@pytest.mark.parametrize("text, needle, field, problem", [
    (_mutate("gpt-5", "input_cost_per_token", "1.25e-06"), '"input_cost_per_token": "1.25e-06"',
     "input_cost_per_token", "must be a finite number >= 0"),
    (_mutate("claude-sonnet-4-5", "output_cost_per_token", -1.5e-05), '"output_cost_per_token": -1.5e-05',
     "output_cost_per_token", "must be a finite number >= 0"),
    (_mutate("deepseek/deepseek-chat", "max_input_tokens", 1.5), '"max_input_tokens": 1.5', "max_input_tokens",
     "whole number of tokens"),
    (_mutate("cerebras/llama-3.3-70b", "litellm_provider", 7), '"litellm_provider": 7', "litellm_provider",
     "must be a string"),
    (_mutate("gpt-5", None, 3), '"gpt-5": 3', "gpt-5", "must be an object"),
    (_mutate("gpt-5", "input_cost_per_token", float("nan")), "NaN", None, "NaN and Infinity are not numbers"),
    # the error points at the repeated key (the second "gpt-5"), not the first
    (LITELLM.read_text().replace('    "claude-sonnet-4-5": {',
                                 '    "gpt-5": {"mode": "chat"},\n    "claude-sonnet-4-5": {', 1),
     '"gpt-5": {"mode": "chat"}', "gpt-5", "duplicate key"),
    (LITELLM.read_text()[:2000], None, None, "is not valid JSON"),
    ("[1, 2]", "[1, 2]", None, "must be a JSON object"),
])
def test_litellm_malformed_input_names_file_line_field(text, needle, field, problem):
    with pytest.raises(MalformedInputError) as info:
        parse_litellm(source_from_bytes(text.encode(), "prices.json"), accessed=DAY)
    err = info.value
    assert err.file == "prices.json" and problem in str(err)
    assert err.field == field
    if needle is not None:
        assert err.line == _line_with(text, needle)
    else:
        assert err.line is not None and str(err).startswith(f"prices.json, line {err.line}")


def test_litellm_with_nothing_to_import():
    text = json.dumps({"sample_spec": {}, "e": {"mode": "embedding", "input_cost_per_token": 1e-08}})
    with pytest.raises(MalformedInputError, match="no priced text-generation entries"):
        parse_litellm(source_from_bytes(text.encode(), "x.json"), accessed=DAY)


# --- SkyPilot ---------------------------------------------------------------------------------------------------

def sky(cloud: str, real_catalog, **kwargs):
    result = import_skypilot_dir(SKYPILOT / cloud / "vms.csv", catalog=real_catalog, accessed=DAY, **kwargs)[0]
    return result, {(r.gpu_id, r.pricing): r for r in result.records}


@pytest.mark.parametrize("cloud, expected", [
    # lambda: gpu_1x_h100_pcie 2.49; gpu_8x_h100_sxm5 23.92 / 8 = 2.99
    ("lambda", {("H100-PCIe", "on_demand"): 2.49, ("H100-SXM", "on_demand"): 2.99}),
    # runpod lists the PCIe H100 as "H100" and the PCIe A100-80GB as "A100-80GB"; L40S spot > on-demand as in source
    ("runpod", {("H100-PCIe", "on_demand"): 2.39, ("H100-SXM", "on_demand"): 2.99, ("H100-SXM", "spot"): 2.69,
                ("L40S", "on_demand"): 0.43, ("L40S", "spot"): 0.86, ("A100-80GB-PCIe", "on_demand"): 1.64,
                ("A100-80GB-PCIe", "spot"): 1.19}),
    # vast: SpotPrice 0.00 = no spot; 2x H100_NVL at 4.53 -> 2.265 per GPU
    ("vast", {("H100-SXM", "on_demand"): 1.80, ("H100-NVL", "on_demand"): 2.265}),
    # gcp: GPU row + a3-highgpu-1g host of the same zone; cheapest zone asia-south1: 10.18841 + 1.22981,
    # spot 1.8339 + 0.22136; asia-northeast3 has no host row, T4 is not in the catalog
    ("gcp", {("H100-SXM", "on_demand"): 11.41822, ("H100-SXM", "spot"): 2.05526}),
    # aws p5.48xlarge: ap-south-1 117.984 / 8 = 14.748; spot min over its zones 11.7984 / 8 = 1.4748;
    # p5e.48xlarge has no on-demand price; its spot 14.925 / 8 = 1.865625
    ("aws", {("H100-SXM", "on_demand"): 14.748, ("H100-SXM", "spot"): 1.4748, ("H200", "spot"): 1.865625}),
])
def test_skypilot_snippets(real_catalog, cloud, expected):
    result, rows = sky(cloud, real_catalog)
    assert set(rows) == set(expected)
    assert {k: r.usd_per_gpu_hour for k, r in rows.items()} == pytest.approx(expected)
    first = result.records[0]
    assert first.provider == cloud and first.source_accessed == DAY
    assert first.source_url == f"https://github.com/skypilot-org/skypilot-catalog/blob/master/catalogs/v7/{cloud}/vms.csv"
    assert "sha256" in first.notes


def test_skypilot_details(real_catalog):
    result, rows = sky("gcp", real_catalog)
    assert rows[("H100-SXM", "on_demand")].instance_type == "a3-highgpu-1g"
    assert rows[("H100-SXM", "on_demand")].region == "asia-south1"
    assert dict(result.skipped) == {"H100 x1: no host VM listed in the same zone": 1,
                                    "accelerator T4 not in the GPU catalog": 1}
    result, _ = sky("lambda", real_catalog)
    # three equal offers of gpu_8x_h100_sxm5: the cheapest and the median (lower middle) are both kept
    assert [r.notes.split(".")[0][:8] for r in result.records if r.gpu_id == "H100-SXM"] == ["cheapest", "median o"]
    assert dict(result.skipped) == {"accelerator V100 not in the GPU catalog": 1}
    every = import_skypilot_dir(SKYPILOT / "lambda" / "vms.csv", catalog=real_catalog, accessed=DAY, keep_all=True)
    assert len([r for r in every[0].records if r.gpu_id == "H100-SXM"]) == 3


def test_skypilot_directory_reads_every_cloud(real_catalog):
    results = import_skypilot_dir(SKYPILOT, catalog=real_catalog, accessed=DAY)
    assert sorted(r.records[0].provider for r in results) == ["aws", "gcp", "lambda", "runpod", "vast"]


def _lines(cloud: str) -> list[str]:
    return (SKYPILOT / cloud / "vms.csv").read_text().splitlines()


def _replace_cell(cloud: str, line: int, column: str, value: str) -> str:
    lines = _lines(cloud)
    header = lines[0].split(",")
    import csv
    import io
    cells = next(csv.reader([lines[line - 1]]))
    cells[header.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    lines[line - 1] = out.getvalue()
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("cloud, text, line, field, problem", [
    ("aws", "\n".join(_lines("aws")[1:]) + "\n", 1, "InstanceType", "missing column"),  # the headerless slice
    ("lambda", _replace_cell("lambda", 3, "Price", "abc"), 3, "Price", "must be a number"),
    ("runpod", _replace_cell("runpod", 4, "SpotPrice", "-2.69"), 4, "SpotPrice", "must be >= 0"),
    ("runpod", _replace_cell("runpod", 2, "AcceleratorCount", "0.5"), 2, "AcceleratorCount", "whole number >= 1"),
    ("vast", _replace_cell("vast", 2, "Region", ""), 2, "Region", "is empty but required"),
    ("gcp", _replace_cell("gcp", 4, "Price", "inf"), 4, "Price", "finite"),
    ("lambda", "\n".join(_lines("lambda")[:3] + [_lines("lambda")[3] + ",extra"]) + "\n", 4, None, "cells"),
])
def test_skypilot_malformed_input_names_file_line_field(real_catalog, cloud, text, line, field, problem):
    with pytest.raises(MalformedInputError) as info:
        parse_vms_csv(source_from_bytes(text.encode(), f"{cloud}/vms.csv"), provider=cloud, catalog=real_catalog,
                      accessed=DAY)
    err = info.value
    assert (err.file, err.line, err.field) == (f"{cloud}/vms.csv", line, field)
    assert problem in str(err) and str(err).startswith(f"{cloud}/vms.csv, line {line}")


# --- the user store ---------------------------------------------------------------------------------------------

def test_store_round_trip_and_reimport_replaces(real_catalog, tmp_path):
    api = import_litellm_file(LITELLM, accessed=DAY, catalog=real_catalog).records
    save_api_prices(api, tmp_path)
    save_api_prices(api[:2], tmp_path)  # re-import of the same ids replaces them, keeps the others
    gpu, stored = load_user_prices(tmp_path, catalog=real_catalog)
    assert gpu == [] and sorted(p.api_id for p in stored) == sorted(p.api_id for p in api)
    assert {p.api_id: p for p in stored}["gpt-5"] == {p.api_id: p for p in api}["gpt-5"]
    lam = import_skypilot_dir(SKYPILOT / "lambda" / "vms.csv", catalog=real_catalog, accessed=DAY)[0].records
    run_ = import_skypilot_dir(SKYPILOT / "runpod" / "vms.csv", catalog=real_catalog, accessed=DAY)[0].records
    save_gpu_prices(lam + run_, real_catalog, tmp_path)
    save_gpu_prices(lam[:1], real_catalog, tmp_path)  # a new lambda import supersedes every lambda row
    gpu, _ = load_user_prices(tmp_path, catalog=real_catalog)
    assert [p for p in gpu if p.provider == "lambda"] == list(lam[:1])
    assert [p for p in gpu if p.provider == "runpod"] == list(run_)
    assert reset_user_prices(tmp_path) and load_user_prices(tmp_path) == ([], [])


def test_empty_store_leaves_the_catalog_alone(real_catalog, tmp_path):
    assert with_user_prices(real_catalog, tmp_path) is real_catalog


def test_overlay_replaces_the_same_gpu_and_provider_and_api_id(real_catalog):
    price = GpuPrice("H100-SXM", "lambda", "on_demand", 1.0, "us-east-1", "gpu_8x_h100_sxm5", 8,
                     "https://example.org/p", DAY, None)
    api = dict(litellm_records(real_catalog))["gpt-5"]
    merged = overlay_prices(real_catalog, [price], [api])
    assert [p for p in merged.prices_for("H100-SXM") if p.provider == "lambda"] == [price]
    others = [p for p in real_catalog.prices_for("H100-SXM") if p.provider != "lambda"]
    assert [p for p in merged.prices_for("H100-SXM") if p.provider != "lambda"] == others
    assert merged.api_price("gpt-5") == api
    assert len(merged.api_prices) == len(real_catalog.api_prices)  # gpt-5 is already in data/api_prices.csv


def test_corrupt_store_file_is_named(real_catalog, tmp_path):
    (tmp_path / "gpu_prices.csv").write_text("gpu_id,provider\nH100-SXM,aws\n")
    with pytest.raises(CatalogError, match="gpu_prices.csv, row 1, column 'pricing': missing column"):
        load_user_prices(tmp_path)


def test_failed_import_never_half_applies(real_catalog, tmp_path, monkeypatch):
    save_api_prices(import_litellm_file(LITELLM, accessed=DAY).records, tmp_path)
    before = (tmp_path / "api_prices.csv").read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(_mutate("gpt-5", "output_cost_per_token", "free"))
    with pytest.raises(MalformedInputError):
        save_api_prices(import_litellm_file(bad, accessed=DAY).records, tmp_path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(InvalidInputError, match=r"api_prices.csv: cannot be written \(disk full\)"):
        save_api_prices(import_litellm_file(LITELLM, accessed=DAY).records[:1], tmp_path)
    assert (tmp_path / "api_prices.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api_prices.csv", "bad.json"]  # no temporary left


# --- CLI --------------------------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prices_import_list_reset(capsys, monkeypatch, tmp_path):
    store = tmp_path / "store"
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(store))
    code, out, _ = run(capsys, "prices", "import-litellm", str(LITELLM))
    assert code == 0 and "imported 6 API prices (3 matched to catalog models)" in out
    code, out, _ = run(capsys, "prices", "import-skypilot", str(SKYPILOT), "--json")
    data = json.loads(out)
    # lambda 3 + runpod 7 + vast 3 + gcp 2 + aws 3 rows (see test_skypilot_snippets)
    assert code == 0 and data["imported"] == 18 and Path(data["written"]) == store / "gpu_prices.csv"
    code, out, _ = run(capsys, "prices", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed["api_prices"]) == 6 and len(listed["gpu_prices"]) == 18
    code, out, _ = run(capsys, "prices", "reset")
    assert code == 0 and out.count("removed") == 2 and not any(store.iterdir())


def test_cli_import_with_one_bad_file_writes_nothing(capsys, monkeypatch, tmp_path):
    store = tmp_path / "store"
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(store))
    clouds = tmp_path / "catalogs"
    shutil.copytree(SKYPILOT, clouds)
    (clouds / "vast" / "vms.csv").write_text(_replace_cell("vast", 3, "Price", "n/a"))
    code, out, err = run(capsys, "prices", "import-skypilot", str(clouds))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "vast/vms.csv, line 3, field 'Price': must be a number (value 'n/a')" in err
    assert not store.exists()


@pytest.mark.parametrize("argv, message", [
    (["prices", "import-litellm", "nowhere.json"], "nowhere.json: no such file"),
    (["prices", "import-skypilot", "nowhere"], "nowhere: no such file or directory"),
])
def test_cli_prices_errors(capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path))
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_invalid_input_error_family():
    assert issubclass(MalformedInputError, InvalidInputError)
