"""A named efficiency profile (a calibrated one of the user's, or a shipped one) applies only to the engine and
GPUs it was fitted for: estimate and plan refuse it elsewhere in one line, and plan searches only where it
applies. The user's profiles are read at the boundary (the CLI), never by estimate() or plan()."""

from __future__ import annotations

import dataclasses

import pytest

from planner.cli import main
from planner.errors import InvalidInputError
from planner.fit.profile_store import load_user_profiles, save_profile
from planner.perf.estimate import EstimateRequest, estimate
from planner.plan import plan
from planner.scenario import Scenario

REQ = EstimateRequest(model="llama-3.1-8b", gpu="H100-SXM", input_tokens=1024, output_tokens=256)


@pytest.fixture
def slow_profile(real_catalog, tmp_path, monkeypatch):
    """A user profile fitted for vLLM on H100-SXM, 10x slower in memory bandwidth than the shipped one."""
    monkeypatch.setenv("PLANNER_PROFILE_DIR", str(tmp_path / "profiles"))
    monkeypatch.setenv("PLANNER_PRICES_DIR", str(tmp_path / "prices"))
    base = real_catalog.efficiency_for("vllm", real_catalog.gpu("H100-SXM"))
    save_profile(dataclasses.replace(base, profile_id="slow", gpu_match="H100-SXM", mbu_frac=base.mbu_frac / 10))
    return real_catalog.with_user_profiles(load_user_profiles())


def test_user_profiles_are_only_a_named_lookup(real_catalog, slow_profile):
    assert slow_profile.efficiency_for("vllm", slow_profile.gpu("H100-SXM")).profile_id != "slow"  # never default
    with pytest.raises(InvalidInputError, match="unknown efficiency profile 'slow'"):
        estimate(real_catalog, dataclasses.replace(REQ, profile="slow"))  # estimate reads no profile folder
    named = estimate(slow_profile, dataclasses.replace(REQ, profile="slow"))
    assert named.efficiency_profile == "slow" and named.engine == "vllm"
    assert named.output_tokens_per_s < estimate(slow_profile, REQ).output_tokens_per_s


@pytest.mark.parametrize("change, message", [
    (dict(gpu="L40S"), "calibrated on H100-SXM GPUs and does not describe L40S"),
    (dict(engine="sglang"), "calibrated for vllm, not sglang"),
])
def test_estimate_refuses_a_profile_fitted_elsewhere(slow_profile, change, message):
    with pytest.raises(InvalidInputError, match=message):
        estimate(slow_profile, dataclasses.replace(REQ, profile="slow", **change))


def test_plan_searches_only_where_the_profile_applies(slow_profile):
    p = plan(Scenario(model="llama-3.1-8b", gpu="auto", profile="slow", requests_per_day=50_000), slow_profile)
    assert p.estimate.efficiency_profile == "slow"
    assert {p.search.best.gpu_id, p.search.best.engine} == {"H100-SXM", "vllm"}
    for change, message in [(dict(gpu="L40S"), "does not describe L40S"), (dict(engine="sglang"), "not sglang")]:
        with pytest.raises(InvalidInputError, match=f"scenario field 'profile': .*{message}"):
            plan(Scenario(model="llama-3.1-8b", profile="slow", **change), slow_profile)


def test_cli_reads_the_users_profiles(slow_profile, capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--profile", "slow", "--json"]) == 0
    assert '"efficiency_profile": "slow"' in capsys.readouterr().out
    assert main(["plan", "--set", "model=llama-3.1-8b", "--set", "gpu=L40S", "--set", "profile=slow"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not describe L40S" in err
