"""Widgets and renderers shared by the pages: errors, ranges, tables and catalog pickers.

Formatting only: every number shown here was computed by the engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from planner.data.catalog import Catalog
from planner.errors import DoesNotFitError, PlannerError
from planner.scenario import SCENARIO_FIELDS

EN_DASH = "\u2013"
EM_DASH = "\u2014"  # shown in tables for a missing value (no price, no break-even, does not apply)
NOT_AVAILABLE = "n/a"  # the same in metrics and text


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def show_error(err: PlannerError) -> None:
    """The engine's message as st.error, with its suggestions as a list (never a traceback)."""
    lines = [str(err)]
    suggestions = getattr(err, "suggestions", ()) if isinstance(err, DoesNotFitError) else ()
    if suggestions:
        lines.append("Configurations that would fit:")
        lines.extend(f"- {s}" for s in suggestions)
    st.error("\n".join(lines), icon=":material/block:")


def show_warnings(warnings: Iterable[str]) -> None:
    """One st.warning listing every warning (in order, repeats dropped), so a long list stays compact."""
    unique = list(dict.fromkeys(warnings))
    if len(unique) == 1:
        st.warning(unique[0], icon=":material/warning:")
    elif unique:
        st.warning("\n".join(f"- {w}" for w in unique), icon=":material/warning:")


def fmt_num(value: float | int | None, spec: str = ",.0f") -> str:
    """A number for text, "n/a" when it is missing (None or NaN)."""
    return NOT_AVAILABLE if _missing(value) else format(value, spec)


def fmt_range(value: float | None, low: float | None, high: float | None, spec: str = ",.0f",
              unit: str = "") -> str:
    """'value (low-high) unit', the way every estimate with an uncertainty range is shown."""
    suffix = f" {unit}" if unit else ""
    if _missing(value):
        return NOT_AVAILABLE
    if _missing(low) or _missing(high):
        return f"{format(value, spec)}{suffix}"
    return f"{format(value, spec)} ({format(low, spec)}{EN_DASH}{format(high, spec)}){suffix}"


def table(rows: Sequence[dict[str, Any]] | pd.DataFrame, *, column_config: dict[str, Any] | None = None,
          key: str | None = None, height: int | str = "auto", column_order: Sequence[str] | None = None) -> None:
    """A read-only table (its built-in CSV export is disabled in .streamlit/config.toml); missing values
    (None, NaN) show as an em dash, never as "None" or "nan"."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    st.dataframe(frame, hide_index=True, column_config=column_config, key=key, height=height,
                 column_order=column_order, placeholder=EM_DASH)


def model_label(catalog: Catalog):
    """format_func for a model selectbox: the display name beside the id."""
    def label(model_id: str) -> str:
        model = catalog.models.get(model_id)
        return f"{model.name} ({model_id})" if model else model_id
    return label


def gpu_label(catalog: Catalog):
    """format_func for a GPU selectbox: the name and memory."""
    def label(gpu_id: str) -> str:
        gpu = catalog.gpus.get(gpu_id)
        return f"{gpu.name} ({gpu.memory_gb:g} GB)" if gpu else gpu_id
    return label


def index_of(options: Sequence[Any], value: Any, default: int = 0) -> int:
    try:
        return list(options).index(value)
    except ValueError:
        return default


# --- scenario inputs ------------------------------------------------------------------------------------------

UNIT_LABELS = {
    "s": "s", "tokens": "tokens", "requests_per_day": "requests/day", "tokens_per_month": "tokens/month",
    "fraction": "fraction 0-1", "fraction_per_month": "fraction per month", "fraction_per_year": "fraction per year",
    "ratio": "ratio", "usd_per_gpu_hour": "USD per GPU-hour", "usd_per_gpu": "USD per GPU", "w": "W",
    "years": "years", "usd_per_kwh": "USD/kWh", "usd_per_kw_month": "USD per kW-month",
    "usd_per_gpu_year": "USD per GPU-year", "fte": "FTE", "usd_per_fte_year": "USD per FTE-year",
    "months": "months", "replicas": "replicas", "gpus": "GPUs", "relative_load": "relative load",
}


def widget_key(field: str) -> str:
    return f"sc_{field}"


def field_label(field: str, label: str) -> str:
    """'Label (unit)' from SCENARIO_FIELDS."""
    unit = SCENARIO_FIELDS[field].unit
    return f"{label} ({UNIT_LABELS.get(unit, unit)})" if unit else label


def field_help(field: str, extra: str = "") -> str:
    spec = SCENARIO_FIELDS[field]
    default = "empty" if spec.default is None else f"{spec.default:g}" if isinstance(spec.default, float) \
        else str(spec.default)
    text = f"{spec.help[0].upper()}{spec.help[1:]}. Default: {default}; source: {spec.source}."
    return f"{text} {extra}".strip()


AUTO = "(auto)"  # stands for an empty (None) scenario field in a selectbox, which cannot show None as an option
_CHOICE_NUMBER_FIELDS = ("num_gpus_per_replica",)  # numbers picked from a list rather than typed


def to_widget(field: str, value: Any) -> Any:
    """A scenario value as its widget holds it (None is AUTO in choice widgets, None in number inputs)."""
    kind = SCENARIO_FIELDS[field].kind
    if value is None and kind == "bool":
        return False  # a toggle has no empty state
    is_choice = kind in ("str", "choice") or field in _CHOICE_NUMBER_FIELDS
    return AUTO if value is None and is_choice else value


def from_widget(value: Any) -> Any:
    return None if value == AUTO else value


def set_widget(field: str, value: Any) -> None:
    """Overwrite a scenario widget's state (before it renders), e.g. with a model chosen on another page."""
    st.session_state[widget_key(field)] = to_widget(field, value)


def seed(fields: dict[str, Any], field: str) -> str:
    """The widget key for a scenario field, seeded from the session's scenario when the widget is new.

    The widgets below also pass the seeded value as their default (`value=` / `index=`): a widget inside
    a closed popover or collapsed expander is mounted by the browser only when opened, and it then shows
    the proto's default. Without it that default was min_value / the first option (horizon 1, discounts 0),
    and the next interaction wrote it into the scenario."""
    key = widget_key(field)
    if key not in st.session_state:
        st.session_state[key] = to_widget(field, fields[field])
    return key


def number_field(fields: dict[str, Any], field: str, label: str, *, container: Any = st, step: float | None = None,
                 fmt: str | None = None, placeholder: str | None = None, min_value: float | None = None,
                 max_value: float | None = None, help_extra: str = "") -> None:
    """A number input bound to a scenario field: bounds, unit and help from SCENARIO_FIELDS; empty = None."""
    spec = SCENARIO_FIELDS[field]
    key = seed(fields, field)
    is_int = spec.kind == "int"
    low = min_value if min_value is not None else spec.low
    high = max_value if max_value is not None else spec.high
    kwargs: dict[str, Any] = {}
    if low is not None:
        kwargs["min_value"] = int(low) if is_int else float(low)
    if high is not None:
        kwargs["max_value"] = int(high) if is_int else float(high)
    if step is not None:
        kwargs["step"] = int(step) if is_int else float(step)
    if fmt is not None:
        kwargs["format"] = fmt
    current = st.session_state[key]
    if current is not None:
        current = int(current) if is_int else float(current)
    value = container.number_input(field_label(field, label), value=current, key=key,
                                   help=field_help(field, help_extra),
                                   placeholder=placeholder or ("empty: default" if spec.nullable else None), **kwargs)
    fields[field] = value


def choice_field(fields: dict[str, Any], field: str, label: str, options: Sequence[Any], *, container: Any = st,
                 format_func: Any = str, auto_label: str | None = None, help_extra: str = "",
                 radio: bool = False) -> None:
    """A selectbox (or radio) bound to a scenario field; a value not among the options is added to them.

    With `auto_label`, the first option stands for an empty field (the engine picks the value)."""
    key = seed(fields, field)
    opts = ([AUTO] if auto_label is not None else []) + list(options)
    if st.session_state[key] not in opts:
        opts.append(st.session_state[key])
    widget = container.radio if radio else container.selectbox
    extra = {"horizontal": True} if radio else {}
    fields[field] = from_widget(widget(field_label(field, label), opts, key=key,
                                       index=opts.index(st.session_state[key]),
                                       format_func=lambda v: auto_label if v == AUTO else format_func(v),
                                       help=field_help(field, help_extra), **extra))


def bool_field(fields: dict[str, Any], field: str, label: str, *, container: Any = st, help_extra: str = "") -> None:
    key = seed(fields, field)
    fields[field] = container.toggle(label, value=bool(st.session_state[key]), key=key,
                                     help=field_help(field, help_extra))
