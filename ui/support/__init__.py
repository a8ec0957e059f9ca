"""Wiring helpers for the Streamlit app: tables, checks and chart inputs built from engine functions.

The app (app.py, ui/) only gathers inputs, calls the engine and renders (STYLE §8); whatever it
needs beyond a field of an engine result is assembled here from engine functions, so it can be
tested without Streamlit. Modules: `catalog_tables` (price tables from uploads, models with
their license terms and minimum hardware, the hardware-fit grid), `scenario_io` (URL and JSON
round trips), `plan_views` (the volume slider's steps, a plan's summary column). No formulas
live here: costs, ranges, warnings, chart curves and sensitivity swings come from the engine
(`planner.plan`, `planner.econ.costs`, `planner.econ.cost_curves`, `planner.econ.sensitivity`,
`planner.perf.hardware_fit`).
"""

from __future__ import annotations

from ui.support.catalog_tables import (
    GPU_COUNTS,
    MinimumHardware,
    ModelFilter,
    api_prices_from_csv,
    estimate_or_reason,
    filter_models,
    gpu_prices_from_csv,
    hardware_grid,
    license_restrictions,
    minimum_hardware,
    model_languages,
    model_row,
    model_table,
    price_rows,
)
from ui.support.plan_views import REQUESTS_PER_DAY_STEPS, plan_summary, requests_per_day_options
from ui.support.scenario_io import (
    SERVER_PATH_FIELDS,
    scenario_fields_from_text,
    scenario_from_json,
    scenario_to_json,
    scenario_to_text,
)

__all__ = [
    "GPU_COUNTS", "MinimumHardware", "ModelFilter", "api_prices_from_csv", "estimate_or_reason", "filter_models",
    "gpu_prices_from_csv", "hardware_grid", "license_restrictions", "minimum_hardware", "model_languages",
    "model_row", "model_table", "price_rows",
    "REQUESTS_PER_DAY_STEPS", "plan_summary", "requests_per_day_options",
    "SERVER_PATH_FIELDS", "scenario_fields_from_text", "scenario_from_json", "scenario_to_json", "scenario_to_text",
]
