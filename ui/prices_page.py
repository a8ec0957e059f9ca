"""Prices: the GPU and API price tables, editable in place or replaced by an uploaded CSV.

Every edit or upload goes through the same checks as data/ (the GpuPrice / ApiPrice records read by
planner.data._csvschema.read_records via ui.support); the first problem is shown with its row (header = row 1),
column and value, and the last valid table stays in use. Valid prices replace the session's catalog,
so every page prices with them until the session ends or they are reset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from planner.data.catalog import Catalog
from planner.data.columns import Col, columns
from planner.data.records import PRICING_TIERS, ApiPrice, GpuPrice
from planner.errors import PlannerError
from ui import state, widgets
from ui.support import api_prices_from_csv, gpu_prices_from_csv, price_rows

_FIRST_DATA_ROW = 2  # the header is row 1, as a spreadsheet and the validator count


@dataclass(frozen=True)
class PriceAge:
    """How old the prices in use are: over the rows whose source dates its price (price_flag != "undated").

    `oldest_as_of` / `median_as_of` are price_as_of dates (median of the sorted dates, the lower middle
    for an even count, so it is always a real row's date); ages are days before `today`."""

    n_rows: int
    n_dated: int
    n_undated: int
    n_stale: int
    oldest_as_of: dt.date | None
    median_as_of: dt.date | None
    oldest_age_days: int | None
    median_age_days: int | None
    oldest_undated_access: dt.date | None  # earliest source_accessed of the undated rows


def price_age(prices: Iterable[Any], today: dt.date) -> PriceAge:
    """Age summary of GpuPrice / ApiPrice rows (anything with price_as_of, price_flag, source_accessed)."""
    rows = list(prices)
    dated = sorted(r.price_as_of for r in rows if r.price_flag != "undated")
    undated = [r.source_accessed for r in rows if r.price_flag == "undated"]
    median = dated[(len(dated) - 1) // 2] if dated else None
    return PriceAge(
        n_rows=len(rows), n_dated=len(dated), n_undated=len(undated),
        n_stale=sum(1 for r in rows if r.price_flag == "stale"),
        oldest_as_of=dated[0] if dated else None, median_as_of=median,
        oldest_age_days=(today - dated[0]).days if dated else None,
        median_age_days=(today - median).days if median else None,
        oldest_undated_access=min(undated) if undated else None)


def _age_caption(age: PriceAge) -> str:
    if age.n_rows == 0:
        return "No prices in use."
    parts = []
    if age.n_dated:
        parts.append(f"Price dates (price_as_of) of {age.n_dated:,} dated rows: oldest {age.oldest_as_of} "
                     f"({age.oldest_age_days:,} days ago), median {age.median_as_of} ({age.median_age_days:,} days).")
    if age.n_undated:
        parts.append(f"{age.n_undated:,} rows are flagged undated (the source gives no price date; "
                     f"read {age.oldest_undated_access} or later).")
    if age.n_stale:
        parts.append(f"{age.n_stale:,} rows are flagged stale (superseded by a later price; see their notes).")
    return " ".join(parts)


def _show_age(prices: Iterable[Any]) -> None:
    age = price_age(prices, dt.date.today())
    if age.n_stale:
        st.warning(_age_caption(age), icon=":material/schedule:")
    else:
        st.caption(_age_caption(age))


def _column_config(schema: Mapping[str, Col]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, col in schema.items():
        if col.kind in ("float+", "float0"):
            config[name] = st.column_config.NumberColumn(name, min_value=0.0, format="%.4g", required=col.required)
        elif col.kind == "int+":
            config[name] = st.column_config.NumberColumn(name, min_value=1, step=1, format="%d",
                                                         required=col.required)
        elif name == "pricing":
            config[name] = st.column_config.SelectboxColumn(name, options=list(PRICING_TIERS), required=True)
        else:
            config[name] = st.column_config.TextColumn(name, required=col.required)
    return config


def _frame(rows: list[dict[str, Any]], schema: Mapping[str, Col]) -> pd.DataFrame:
    """Rows in schema order with nullable integer columns (so a CSV round trip keeps whole numbers)."""
    frame = pd.DataFrame(rows, columns=list(schema))
    for name, col in schema.items():
        if col.kind == "int+":
            frame[name] = frame[name].astype("Int64")
        elif col.kind in ("float+", "float0"):
            frame[name] = frame[name].astype("float64")
        else:
            frame[name] = frame[name].astype("object")
    frame.index = pd.RangeIndex(_FIRST_DATA_ROW, _FIRST_DATA_ROW + len(frame), name="row")
    return frame


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def _price_table(kind: str, label: str, schema: Mapping[str, Col], current: tuple,
                 parse: Callable[[bytes, Catalog, str], tuple], apply: Callable[[tuple | None], None],
                 overridden: bool) -> None:
    """Upload, edit and validate one price table; valid edits become the session's prices."""
    base_key, version_key = f"_{kind}_editor_base", f"_{kind}_editor_version"
    editor_key = f"{kind}_price_editor_{st.session_state.get(version_key, 0)}"
    if base_key not in st.session_state or editor_key not in st.session_state:
        # First visit, or back from another page (the editor's own state was dropped): start from the prices in use.
        st.session_state[base_key] = _frame(price_rows(current, schema), schema)

    upload = st.file_uploader(f"Upload {label} (CSV with the columns below)", type=["csv"], key=f"{kind}_upload",
                              help=f"Columns: {', '.join(schema)}. Replaces the whole table for this session.")
    if upload is not None and st.session_state.get(f"_{kind}_upload_id") != upload.file_id:
        try:
            prices = parse(upload.getvalue(), state.catalog(), f"{upload.name}")
        except PlannerError as err:
            widgets.show_error(err)
            st.caption("The table in use is unchanged.")
        else:
            st.session_state[f"_{kind}_upload_id"] = upload.file_id
            apply(prices)
            st.session_state[base_key] = _frame(price_rows(prices, schema), schema)
            st.session_state[version_key] = st.session_state.get(version_key, 0) + 1
            st.rerun()

    _show_age(current)
    cols = st.columns([3, 1, 1])
    cols[0].caption(f"{len(current):,} rows in use{' (changed in this session)' if overridden else ' (shipped data/)'}"
                    f". Row numbers count the header as row 1.")
    cols[1].download_button("Download (CSV)", state.prices_csv(current, schema), file_name=f"{kind}_prices.csv",
                            mime="text/csv", key=f"{kind}_download", icon=":material/download:", width="stretch",
                            help="The table in use, in the upload format (spreadsheet formulas neutralised).")
    if cols[2].button("Reset to shipped prices", key=f"{kind}_reset", disabled=not overridden, width="stretch"):
        apply(None)
        st.session_state.pop(base_key, None)  # the upload stays marked as used, so it is not applied again
        st.session_state[version_key] = st.session_state.get(version_key, 0) + 1
        st.rerun()

    edited = st.data_editor(st.session_state[base_key], key=editor_key, num_rows="dynamic", hide_index=False,
                            column_config=_column_config(schema), height=640,
                            placeholder="")  # an empty optional cell shows empty, not "None"
    try:
        prices = parse(_csv_bytes(edited), state.catalog(), f"edited {label}")
    except PlannerError as err:
        widgets.show_error(err)
        st.caption("The last valid table stays in use until this is fixed.")
        return
    if prices != current:
        apply(prices)
        st.rerun()


def render() -> None:
    st.title("Prices")
    st.caption("GPU rental and API token prices used by every page in this session. Edit a cell, add or delete "
               "rows, or upload a CSV; each change is validated before it is used.")
    cat = state.catalog()
    gpu_changed, api_changed = state.prices_overridden()
    gpu_tab, api_tab = st.tabs(["GPU prices (USD per GPU-hour)", "API prices (USD per million tokens)"])
    with gpu_tab:
        _price_table("gpu", "GPU prices", columns(GpuPrice), cat.gpu_prices,
                     lambda data, c, name: gpu_prices_from_csv(data, c, name=name), state.set_gpu_prices,
                     gpu_changed)
    with api_tab:
        _price_table("api", "API prices", columns(ApiPrice), tuple(cat.api_prices.values()),
                     lambda data, c, name: api_prices_from_csv(data, c, name=name), state.set_api_prices,
                     api_changed)


if __name__ == "__main__":  # run by st.navigation as a page script
    render()
