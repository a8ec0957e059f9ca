"""Self-hosting cost and TCO planner for open-weight LLMs: the engine's public API."""

from __future__ import annotations

__version__ = "0.1.0"

from planner.architecture import (
    Architecture,
    architecture_from_config,
    expected_experts_touched,
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_cache_bytes_per_token,
    mla_kv_cache_bytes_per_token,
)
from planner.catalog import Catalog, load_catalog
from planner.errors import (
    CatalogError,
    DoesNotFitError,
    InvalidInputError,
    NoBreakEvenError,
    PlannerError,
    UnknownNameError,
    UnreachableTargetError,
)
from planner.estimate import Estimate, EstimateRequest, estimate

__all__ = [
    "__version__",
    "Architecture",
    "architecture_from_config",
    "expected_experts_touched",
    "kv_bytes_per_sequence",
    "kv_bytes_per_token",
    "kv_cache_bytes_per_token",
    "mla_kv_cache_bytes_per_token",
    "Catalog",
    "load_catalog",
    "CatalogError",
    "DoesNotFitError",
    "InvalidInputError",
    "NoBreakEvenError",
    "PlannerError",
    "UnknownNameError",
    "UnreachableTargetError",
    "Estimate",
    "EstimateRequest",
    "estimate",
]
