"""Scenarios in and out of the app: URL query parameters (validated and clipped) and JSON files.

Names must be catalog ids or aliases (a model may otherwise be a path to a config.json on the
server), and fields that name server files are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from planner.data.catalog import Catalog
from planner.errors import (
    InvalidInputError,
    PlannerError,
)
from planner.scenario import (
    SCENARIO_FIELDS,
    Scenario,
    clip_to_field,
    coerce_field,
    scenario_from_dict,
    scenario_to_dict,
)

# --- scenarios: URL query parameters and JSON files -----------------------------------------------------------

# Fields a shared link or an uploaded file may not set: they name files on the server.
SERVER_PATH_FIELDS = ("request_sizes_csv",)
# Fields that must name a catalog entry (a model may otherwise be a path to a config.json on the server).
# field -> (Catalog lookup method, id attribute of the record it returns)
_CATALOG_LOOKUPS = {"model": ("model", "model_id"), "gpu": ("gpu", "gpu_id"), "finetune_gpu": ("gpu", "gpu_id"),
                    "precision": ("precision", "precision_id"), "kv_dtype": ("kv_dtype", "kv_dtype_id"),
                    "engine": ("engine", "engine_id"), "api_id": ("api_price", "api_id"),
                    "profile": ("named_profile", "profile_id")}


def _canonical_name(catalog: Catalog, field: str, value: Any) -> Any:
    """The catalog id for a name field (UnknownNameError lists the closest), the value for other fields."""
    if value is None or field not in _CATALOG_LOOKUPS or (field == "gpu" and value == "auto"):
        return value
    lookup, id_attribute = _CATALOG_LOOKUPS[field]
    return getattr(getattr(catalog, lookup)(value), id_attribute)


def _clip_number(name: str, text: str) -> float | None:
    """A numeric parameter clipped into the field's bounds (`scenario.clip_to_field`); None when it is not a
    number, not finite, or sits at an open lower bound."""
    try:
        value = float(text)
    except ValueError:
        return None
    return clip_to_field(name, value)


def scenario_fields_from_text(params: Mapping[str, str], catalog: Catalog) -> tuple[dict[str, Any], list[str]]:
    """Validated scenario fields from text parameters (a shared URL's query string).

    Numbers are clipped into each field's bounds (SCENARIO_FIELDS); names must be catalog ids or
    aliases; fields that name server files are refused. Returns the accepted fields and one
    message per parameter that was clipped or ignored, so the caller can say so.
    """
    accepted: dict[str, Any] = {}
    notes: list[str] = []
    for name, text in params.items():
        spec = SCENARIO_FIELDS.get(name)
        if spec is None:
            notes.append(f"ignored unknown parameter {name!r}")
            continue
        if name in SERVER_PATH_FIELDS:
            notes.append(f"ignored {name!r}: a shared link cannot name a file on the server")
            continue
        value: Any = text
        if spec.kind in ("int", "float") and text.strip().lower() not in ("", "none", "null"):
            clipped = _clip_number(name, text)
            if clipped is None:
                notes.append(f"ignored {name}={text!r}: not a number in the allowed range")
                continue
            if clipped != float(text):
                notes.append(f"{name}={text} adjusted to {clipped:g} (allowed {spec.low:g} to {spec.high:g})")
            value = int(clipped) if spec.kind == "int" else clipped
        try:
            accepted[name] = _canonical_name(catalog, name, coerce_field(name, value))
        except PlannerError as err:
            notes.append(f"ignored {name}={text!r}: {err}")
    return accepted, notes


def scenario_to_text(scenario: Scenario) -> dict[str, str]:
    """The fields that differ from the defaults, as text parameters that `scenario_fields_from_text` reads back."""
    default = Scenario()
    out: dict[str, str] = {}
    for name in SCENARIO_FIELDS:
        value = getattr(scenario, name)
        if value == getattr(default, name) or name in SERVER_PATH_FIELDS:
            continue
        if value is None:
            out[name] = "none"
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, tuple):
            out[name] = ",".join(repr(float(v)) for v in value)
        elif isinstance(value, float):
            out[name] = repr(value)
        else:
            out[name] = str(value)
    return out


def scenario_from_json(data: bytes, catalog: Catalog, *, name: str = "uploaded scenario") -> Scenario:
    """A scenario from an uploaded JSON file (the format of `scenario_to_json`); names must be catalog ids.

    InvalidInputError names the file and the first bad field; fields naming server files are refused.
    """
    try:
        raw = json.loads(bytes(data).decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{name}: is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InvalidInputError(f"{name}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
                                ) from None
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{name}: must be a JSON object of scenario fields")
    for field in SERVER_PATH_FIELDS:
        if raw.get(field) is not None:
            raise InvalidInputError(f"{name}: field {field!r} names a file on the server; remove it")
    try:
        fields = {k: _canonical_name(catalog, k, v) for k, v in raw.items() if k in SCENARIO_FIELDS}
        return scenario_from_dict({**raw, **fields})
    except PlannerError as err:
        raise InvalidInputError(f"{name}: {err}") from None


def scenario_to_json(scenario: Scenario) -> str:
    """Every field of the scenario as a JSON document (null for empty), as `load_scenario` reads it."""
    return json.dumps(scenario_to_dict(scenario), indent=2) + "\n"
