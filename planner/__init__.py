"""Self-hosting cost and TCO planner for open-weight LLMs: the engine's public API.

    from planner import load_catalog, estimate, EstimateRequest, plan, load_scenario
    catalog = load_catalog()
    est = estimate(catalog, EstimateRequest(model="llama-3.1-70b", gpu="H100-SXM", num_gpus=4, precision="fp8"))
    result = plan(load_scenario("examples/rag-qwen3-8b-l40s.toml"), catalog)

Everything here is a pure function of numbers and frozen dataclasses; PlannerError and its
subclasses are the outcomes a user can act on.
"""

from __future__ import annotations

__version__ = "0.1.0"

from planner.advice.advisor import Constraints, Recommendation, recommend
from planner.advice.benchmarks_data import load_benchmarks
from planner.data.catalog import Catalog, load_catalog
from planner.econ.cost_curves import breakeven_chart, cost_curve
from planner.errors import (
    CatalogError,
    DoesNotFitError,
    InvalidInputError,
    NoBreakEvenError,
    PlannerError,
    UnknownNameError,
    UnreachableTargetError,
)
from planner.model.architecture import (
    Architecture,
    architecture_from_config,
    expected_experts_touched,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_cache_bytes_per_token,
    mla_kv_cache_bytes_per_token,
)
from planner.perf.estimate import Estimate, EstimateRequest, estimate
from planner.perf.sweep import sweep
from planner.plan import Plan, plan
from planner.report import plan_to_csv, plan_to_json, sanitize_csv_cell, write_csv
from planner.scenario import SCENARIO_FIELDS, Scenario, apply_overrides, dump_scenario, load_scenario

__all__ = [
    "__version__",
    # catalog and architecture
    "Catalog", "load_catalog", "Architecture", "architecture_from_config", "expected_experts_touched",
    "kv_bytes_per_sequence", "kv_bytes_per_token", "kv_cache_bytes_per_token", "mla_kv_cache_bytes_per_token",
    # one replica
    "Estimate", "EstimateRequest", "estimate", "sweep",
    # plans, costs and reports
    "Scenario", "SCENARIO_FIELDS", "load_scenario", "dump_scenario", "apply_overrides", "Plan", "plan",
    "cost_curve", "breakeven_chart", "plan_to_csv", "plan_to_json", "sanitize_csv_cell", "write_csv",
    # which model
    "Constraints", "Recommendation", "recommend", "load_benchmarks",
    # errors
    "PlannerError", "InvalidInputError", "UnknownNameError", "CatalogError", "DoesNotFitError",
    "UnreachableTargetError", "NoBreakEvenError",
]
