"""The curated public API (planner/__init__.py) is pinned: additions and removals are deliberate."""

from __future__ import annotations

from pathlib import Path

import planner

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_public_api_is_pinned():
    assert set(planner.__all__) == {
        "__version__", "Catalog", "load_catalog", "Architecture", "architecture_from_config",
        "expected_experts_touched", "kv_bytes_per_sequence", "kv_bytes_per_token", "kv_cache_bytes_per_token",
        "mla_kv_cache_bytes_per_token", "Estimate", "EstimateRequest", "estimate", "sweep", "Scenario",
        "SCENARIO_FIELDS", "load_scenario", "dump_scenario", "apply_overrides", "Plan", "plan", "cost_curve",
        "breakeven_chart", "plan_to_csv", "plan_to_json", "sanitize_csv_cell", "write_csv", "Constraints",
        "Recommendation", "recommend", "load_benchmarks", "PlannerError", "InvalidInputError", "UnknownNameError",
        "CatalogError", "DoesNotFitError", "UnreachableTargetError", "NoBreakEvenError",
    }
    for name in planner.__all__:
        assert hasattr(planner, name), name


def test_docstring_example_runs():
    catalog = planner.load_catalog()
    est = planner.estimate(catalog, planner.EstimateRequest(model="llama-3.1-70b", gpu="H100-SXM", num_gpus=4,
                                                            precision="fp8"))
    assert est.fits and est.kv_cache_bytes_per_token == 327_680
    result = planner.plan(planner.load_scenario(EXAMPLES / "rag-qwen3-8b-l40s.toml"), catalog)
    assert result.estimate.model_id == "Qwen/Qwen3-8B"
