"""The CLI contract: subcommands, JSON fields, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from planner.cli import main

ESTIMATE_FIELDS = {"fits", "model_id", "gpu_id", "num_gpus", "precision", "total_params_b", "active_params_b",
                   "weights_gb", "kv_cache_bytes_per_token", "max_concurrency", "concurrency", "ttft_s", "tpot_s",
                   "prefill_tokens_per_s", "output_tokens_per_s", "output_tokens_per_s_per_user",
                   "output_tokens_per_s_low", "output_tokens_per_s_high", "tpot_s_low", "tpot_s_high",
                   "ttft_s_low", "ttft_s_high"}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_the_catalog(capsys, real_catalog):
    code, out, err = run(capsys, "models", "--json")
    rows = json.loads(out)
    assert code == 0 and err == "" and len(rows) == len(real_catalog.models)
    assert {"model_id", "total_params_b", "active_params_b", "license", "context_length_tokens"} <= set(rows[0])


def test_gpus_table(capsys):
    code, out, _ = run(capsys, "gpus")
    assert code == 0 and "H100-SXM" in out and "memory_GB" in out.splitlines()[0]


def test_estimate_json_has_the_contract_fields(capsys):
    code, out, _ = run(capsys, "estimate", "--model", "llama-3.1-70b", "--gpu", "H100-SXM", "--num-gpus", "4",
                       "--precision", "fp8", "--json")
    data = json.loads(out)
    assert code == 0 and ESTIMATE_FIELDS <= set(data)
    assert data["fits"] is True and data["concurrency"] == data["max_concurrency"] >= 1
    assert data["kv_cache_bytes_per_token"] == 327_680
    assert data["output_tokens_per_s_low"] <= data["output_tokens_per_s"] <= data["output_tokens_per_s_high"]


def test_estimate_with_concurrency_and_config_path(capsys, real_catalog, tmp_path):
    from planner.data.catalog import DATA_DIR

    cfg = DATA_DIR / "model_configs" / real_catalog.model("qwen3-8b").config_file
    code, out, _ = run(capsys, "estimate", "--model", str(cfg), "--gpu", "L4", "--concurrency", "4",
                       "--precision", "int4-awq", "--json")
    data = json.loads(out)
    assert code == 0 and data["concurrency"] == 4 and 7.5 < data["total_params_b"] < 8.5


@pytest.mark.parametrize("argv, code, message", [
    (["estimate", "--model", "llama-3.1-7b", "--gpu", "H100"], 2, "unknown model 'llama-3.1-7b'; closest:"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H1000"], 2, "unknown GPU 'H1000'; closest:"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--precision", "int3"], 2,
     "unknown precision 'int3'"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--num-gpus", "0"], 2, "--num-gpus: must be"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--input-tokens", "-5"], 2, "--input-tokens"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--num-gpus", "two"], 2, "--num-gpus: must be"),
    (["estimate", "--model", "llama-3.1-405b", "--gpu", "RTX-4090"], 3, "does not fit"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "M2-Ultra", "--engine", "vllm"], 2, "does not run on Apple"),
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--engine", "llama.cpp", "--precision",
      "int4-awq"], 2, "does not load int4-awq"),
    (["estimate", "--model", "/no/such/config.json", "--gpu", "H100-SXM"], 2, "does not exist"),
])
def test_errors_are_one_line(capsys, argv, code, message):
    got, out, err = run_or_exit(capsys, argv)
    assert got == code
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def run_or_exit(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_does_not_fit_suggests_what_would(capsys):
    code, out, err = run_or_exit(capsys, ["estimate", "--model", "llama-3.1-70b", "--gpu", "RTX-4090", "--json"])
    data = json.loads(out)
    assert code == 3 and data["fits"] is False and data["suggestions"]
    assert "would fit:" in err


def test_bad_config_file_is_one_line(capsys, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 10}')
    code, _, err = run_or_exit(capsys, ["estimate", "--model", str(bad), "--gpu", "H100-SXM"])
    assert code == 2 and "lacks 'num_hidden_layers'" in err and err.count("\n") == 1


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "planner", "estimate", "--model", "nope", "--gpu", "H100-SXM"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown model 'nope'")
    assert "Traceback" not in proc.stderr
