"""CLI flags under hostile values, run in-process: a result, or exit 2/3/4 with one bounded line on stderr."""

from __future__ import annotations

import pytest
from _hostile import NASTY_TEXT, NUMBER_TEXT, SETTINGS, assert_clean_outcome, run_cli
from hypothesis import given
from hypothesis import strategies as st

VALUE = st.one_of(NUMBER_TEXT, NASTY_TEXT)
RECOMMEND_FLAGS = ["--limit", "--context", "--num-gpus", "--memory-gb", "--min-tokens-per-s", "--output-tokens",
                   "--languages", "--developer-country", "--gpu", "--engine"]
DEPLOY_FLAGS = ["--num-gpus", "--input-tokens", "--output-tokens", "--concurrency", "--replicas", "--max-model-len",
                "--port", "--accelerator", "--image", "--name", "--model-repo", "--precision", "--kv-dtype"]


@pytest.fixture(autouse=True)
def _empty_price_store(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))


def _argv(flags: dict[str, str]) -> list[str]:
    out: list[str] = []
    for flag, value in flags.items():
        out.append(f"{flag}={value}")  # "=" keeps a value starting with "-" a value
    return out


@SETTINGS
@given(st.dictionaries(st.sampled_from(RECOMMEND_FLAGS), VALUE, min_size=1, max_size=3))
def test_recommend_flags(flags):
    code, _, err = run_cli(["recommend", *_argv(flags)])
    assert_clean_outcome(code, err)


@SETTINGS
@given(st.sampled_from(["vllm", "sglang", "llama.cpp", "trtllm", "skypilot", "kubernetes"]),
       st.dictionaries(st.sampled_from(DEPLOY_FLAGS), VALUE, min_size=1, max_size=3), st.booleans())
def test_deploy_flags(target, flags, expert_parallel):
    argv = ["deploy", "--target", target, "--model", "llama-3.1-8b", "--gpu", "h100", *_argv(flags)]
    code, out, err = run_cli(argv + (["--expert-parallel"] if expert_parallel else []))
    assert_clean_outcome(code, err)
    if code == 0:
        assert not expert_parallel  # llama-3.1-8b is dense: expert parallelism is refused
        assert "pwned" not in out or "'" in out  # any hostile repo was quoted


@SETTINGS
@given(st.sampled_from(["--map", "--time-unit"]), VALUE)
def test_usage_flags(flag, value):
    code, _, err = run_cli(["usage", "import", "tests/fixtures/usage/azure_conv_2023_head.csv", f"{flag}={value}"])
    assert_clean_outcome(code, err)
