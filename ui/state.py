"""Session state shared by every page: the catalog with this session's prices, and cached computations.

The shipped catalog is loaded once per server (`st.cache_resource`); a session that edits or
uploads prices gets its own copy through `Catalog.with_gpu_prices` / `with_api_prices`, and a
digest of those prices (`catalog_key()`) keys every cached computation, so sessions never see
each other's prices.

Calibrated efficiency profiles (the Calibrate page) live in the session too, never on the server's
disk: the session catalog knows them through `Catalog.with_user_profiles`, beside the profiles in the
server's profile folder ($PLANNER_PROFILE_DIR, read once per server process), and the digest covers them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from planner.advice.advisor import Constraints, Recommendation, recommend
from planner.advice.benchmarks_data import Benchmarks, load_benchmarks
from planner.data.catalog import ApiPrice, Catalog, EfficiencyProfile, GpuPrice, load_catalog
from planner.econ.sensitivity import sensitivity as sensitivity_swings
from planner.errors import PlannerError
from planner.fit.profile_store import load_user_profiles, profile_dir
from planner.plan import Plan, plan
from planner.report import plan_monthly_to_csv, plan_to_csv, plan_to_zip, write_csv
from planner.scenario import Scenario, scenario_to_dict
from ui import support as ui_support

_GPU_PRICES = "_gpu_price_override"
_API_PRICES = "_api_price_override"
_CATALOG = "_session_catalog"
_CATALOG_KEY = "_session_catalog_key"
_PROFILES = "_session_profiles"  # profile_id -> EfficiencyProfile calibrated in this session
SHIPPED = "shipped"


@st.cache_resource(show_spinner="Loading the catalogs...")
def shipped_catalog() -> Catalog:
    """data/ as shipped, validated once per server process."""
    return load_catalog()


@st.cache_resource(show_spinner=False)
def server_profiles() -> tuple[tuple[EfficiencyProfile, ...], str | None]:
    """The calibrated profiles in the server's profile folder (`planner calibrate` writes there), read once per
    server process, and a note when the folder could not be read (then no profiles, never a crash)."""
    try:
        return load_user_profiles(), None
    except (PlannerError, OSError, ValueError, RecursionError) as err:
        return (), f"the server's profile folder {profile_dir()} could not be read: {str(err)[:300]}"


def _base_catalog() -> Catalog:
    """The shipped catalog plus the server folder's profiles (a fixed pair per server process)."""
    folder = server_profiles()[0]
    return shipped_catalog().with_user_profiles(folder) if folder else shipped_catalog()


def catalog() -> Catalog:
    """The catalog every page uses: the shipped data with this session's edited or uploaded prices and its
    calibrated profiles."""
    return st.session_state.get(_CATALOG) or _base_catalog()


def catalog_key() -> str:
    """Identifies this session's prices and profiles for the caches ('shipped' when nothing was changed)."""
    return st.session_state.get(_CATALOG_KEY, SHIPPED)


def _rebuild() -> None:
    gpu, api = st.session_state.get(_GPU_PRICES), st.session_state.get(_API_PRICES)
    mine = tuple(session_profiles().values())
    if gpu is None and api is None and not mine:
        for key in (_CATALOG, _CATALOG_KEY):
            st.session_state.pop(key, None)
        return
    cat = _base_catalog()
    if gpu is not None:
        cat = cat.with_gpu_prices(gpu)
    if api is not None:
        cat = cat.with_api_prices(api)
    if mine:  # this session's first: named_profile takes the first match
        cat = cat.with_user_profiles((*mine, *server_profiles()[0]))
    st.session_state[_CATALOG] = cat
    st.session_state[_CATALOG_KEY] = hashlib.sha256(repr((gpu, api, mine)).encode()).hexdigest()[:16]


def session_profiles() -> dict[str, EfficiencyProfile]:
    """The efficiency profiles calibrated in this session, by profile id (gone when the session ends)."""
    return st.session_state.get(_PROFILES, {})


def add_session_profile(profile: EfficiencyProfile) -> None:
    """Keep a calibrated profile for the rest of the session (one of the same name is replaced); plans
    that name it use it from now on."""
    st.session_state[_PROFILES] = {**session_profiles(), profile.profile_id: profile}
    _rebuild()


def reserved_profile_names() -> list[str]:
    """Names a session profile may not take: the shipped profiles and the server folder's."""
    return [p.profile_id for p in (*shipped_catalog().efficiency, *server_profiles()[0])]


def set_gpu_prices(prices: Iterable[GpuPrice] | None) -> None:
    """Use these GPU prices for the rest of the session (None: back to the shipped table)."""
    st.session_state[_GPU_PRICES] = None if prices is None else tuple(prices)
    _rebuild()


def set_api_prices(prices: Iterable[ApiPrice] | None) -> None:
    """Use these API prices for the rest of the session (None: back to the shipped table)."""
    st.session_state[_API_PRICES] = None if prices is None else tuple(prices)
    _rebuild()


def prices_overridden() -> tuple[bool, bool]:
    """(GPU prices changed, API prices changed) in this session."""
    return st.session_state.get(_GPU_PRICES) is not None, st.session_state.get(_API_PRICES) is not None


# --- cached computations (keyed by catalog_key(); the catalog itself is not hashed) -------------------------

@st.cache_data(max_entries=32, show_spinner="Sizing every model...")
def model_table(gpu_id: str, precisions: tuple[str, ...], input_tokens: int, output_tokens: int) -> list[dict]:
    """ui.support.model_table on the shipped catalog (it does not depend on prices)."""
    return ui_support.model_table(shipped_catalog(), gpu_id=gpu_id, precisions=precisions,
                                  input_tokens=input_tokens, output_tokens=output_tokens)


@st.cache_data(max_entries=64, show_spinner="Sizing every GPU x precision x count...")
def _hardware_grid(model_id: str, gpu_ids: tuple[str, ...], precisions: tuple[str, ...], gpu_counts: tuple[int, ...],
                   input_tokens: int, output_tokens: int, pricing_tier: str, discounts: tuple[float, float],
                   prices_key: str, _catalog: Catalog) -> list[dict]:
    return ui_support.hardware_grid(
        _catalog, model_id, gpu_ids=gpu_ids, precisions=precisions, gpu_counts=gpu_counts,
        input_tokens=input_tokens, output_tokens=output_tokens, pricing_tier=pricing_tier,
        reserved_1y_discount_frac=discounts[0], reserved_3y_discount_frac=discounts[1])


def hardware_grid(model_id: str, gpu_ids: tuple[str, ...], precisions: tuple[str, ...], gpu_counts: tuple[int, ...],
                  input_tokens: int, output_tokens: int, pricing_tier: str) -> list[dict]:
    """ui.support.hardware_grid with this session's prices (cached per price digest) and the reserved
    discounts of the current scenario."""
    fields = scenario_fields()
    discounts = (fields["reserved_1y_discount_frac"], fields["reserved_3y_discount_frac"])
    return _hardware_grid(model_id, gpu_ids, precisions, gpu_counts, input_tokens, output_tokens, pricing_tier,
                          discounts, catalog_key(), catalog())


@st.cache_resource(show_spinner=False)
def benchmarks() -> Benchmarks:
    """data/benchmark_scores.csv and task_benchmarks.csv, validated once per server process."""
    return load_benchmarks(model_ids=shipped_catalog().models)


@st.cache_data(max_entries=64, show_spinner="Ranking models...")
def recommendation(constraints: Constraints) -> Recommendation:
    """planner.advice.advisor.recommend on the shipped catalog (prices play no part in it)."""
    return recommend(constraints, shipped_catalog(), benchmarks())


# --- navigation --------------------------------------------------------------------------------------------

def pages() -> dict[str, st.Page]:
    """The app's pages by short name (app.py hands them to st.navigation; pages link to each other).

    Each page is a module under ui/ that renders itself when Streamlit runs it as a script.
    """
    return {
        "plan": st.Page("ui/plan_page.py", title="Plan", icon=":material/calculate:", url_path="plan", default=True),
        "compare": st.Page("ui/compare_page.py", title="Compare models", icon=":material/table_chart:",
                           url_path="compare"),
        "hardware": st.Page("ui/hardware_page.py", title="Hardware fit", icon=":material/memory:",
                            url_path="hardware"),
        "sensitivity": st.Page("ui/sensitivity_page.py", title="Sensitivity and scenarios",
                               icon=":material/tune:", url_path="sensitivity"),
        "advisor": st.Page("ui/advisor_page.py", title="Choose a model", icon=":material/recommend:",
                           url_path="choose"),
        "prices": st.Page("ui/prices_page.py", title="Prices", icon=":material/sell:", url_path="prices"),
        "finetune": st.Page("ui/finetune_page.py", title="Fine-tune", icon=":material/model_training:",
                            url_path="finetune"),
        "calibrate": st.Page("ui/calibrate_page.py", title="Calibrate", icon=":material/speed:",
                             url_path="calibrate"),
    }


def page(name: str) -> st.Page:
    return pages()[name]


def pages_navigation() -> Any:
    """st.navigation over every page, grouped for the sidebar."""
    p = pages()
    return st.navigation({"Plan": [p["plan"], p["sensitivity"], p["finetune"]],
                          "Explore": [p["advisor"], p["compare"], p["hardware"]],
                          "Settings": [p["prices"], p["calibrate"]]})


# --- scenario ----------------------------------------------------------------------------------------------
# The current scenario lives in session state as a dict of validated field values, so it survives page
# switches (widget state does not); the Plan page's widgets are seeded from it and write back to it.

_SCENARIO = "_scenario"
_PENDING = "_pending_scenario_update"
_URL_NOTES = "_url_notes"
_URL_READ = "_url_read"
_SAVED = "_saved_scenarios"


def scenario_fields() -> dict[str, Any]:
    """The session's scenario as a dict of field values (created from the defaults on first use)."""
    if _SCENARIO not in st.session_state:
        st.session_state[_SCENARIO] = scenario_to_dict(Scenario())
    return st.session_state[_SCENARIO]


def read_url_once() -> None:
    """On a session's first run, take scenario fields from the URL's query parameters (validated, clipped)."""
    if st.session_state.get(_URL_READ):
        return
    st.session_state[_URL_READ] = True
    params = {k: st.query_params[k] for k in st.query_params}
    if not params:
        return
    accepted, notes = ui_support.scenario_fields_from_text(params, catalog())
    scenario_fields().update(accepted)
    st.session_state[_URL_NOTES] = notes


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def plain_markdown(text: str) -> str:
    """`text` with every Markdown (and Streamlit directive) character backslash-escaped, so that text from a
    URL shows literally in st.warning / st.markdown: no links, emphasis, HTML, colours or icons."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def url_notes() -> list[str]:
    """What the shared link carried that was clipped or ignored (shown once on the Plan page), escaped as
    plain text: the notes quote the URL, which anyone can write."""
    return [plain_markdown(note) for note in st.session_state.pop(_URL_NOTES, [])]


def queue_scenario_update(**fields: Any) -> None:
    """Ask the Plan page to apply these scenario fields on its next run (e.g. a model chosen elsewhere)."""
    st.session_state[_PENDING] = {**st.session_state.get(_PENDING, {}), **fields}


def take_pending_update() -> dict[str, Any]:
    return st.session_state.pop(_PENDING, {})


def replace_scenario(scenario: Scenario) -> None:
    """Make `scenario` the current one (an uploaded file or a saved scenario); the Plan page's widgets are
    re-seeded from it on their next run."""
    st.session_state[_SCENARIO] = scenario_to_dict(scenario)
    for key in [k for k in st.session_state if str(k).startswith("sc_")]:
        del st.session_state[key]


def current_model_id() -> str | None:
    return scenario_fields().get("model")


def write_url(scenario: Scenario) -> None:
    """Keep the address bar's query parameters equal to the scenario's non-default fields (the share link)."""
    wanted = ui_support.scenario_to_text(scenario)
    current = {k: st.query_params[k] for k in st.query_params}
    if current != wanted:
        st.query_params.from_dict(wanted)


def save_scenario(name: str, scenario: Scenario) -> None:
    """Keep a named copy for the side-by-side comparison (a name used again is replaced)."""
    saved = st.session_state.setdefault(_SAVED, {})
    saved[name] = scenario


def saved_scenarios() -> dict[str, Scenario]:
    return st.session_state.get(_SAVED, {})


def delete_saved(name: str) -> None:
    st.session_state.get(_SAVED, {}).pop(name, None)


@st.cache_data(max_entries=256, show_spinner=False)
def _plan(scenario: Scenario, prices_key: str, _catalog: Catalog) -> Plan:
    return plan(scenario, _catalog)


def cached_plan(scenario: Scenario) -> Plan:
    """planner.plan.plan with this session's prices, cached by scenario and price digest."""
    return _plan(scenario, catalog_key(), catalog())


def cached_cost_plan(scenario: Scenario) -> Plan:
    """The plan without the search's cost-latency frontier and per-axis alternatives (`plan(extras=False)`: every
    cost, fleet, latency and warning is the same), cached like cached_plan and shared with the sensitivity bars.
    What a slider move shows; only the "Why this configuration" tab needs cached_plan (about half the search's
    time per new volume is the frontier and the alternatives)."""
    return _cost_plan(scenario, catalog_key(), catalog())


def scenario_json(scenario: Scenario) -> str:
    return ui_support.scenario_to_json(scenario)


def scenario_from_upload(data: bytes, name: str) -> Scenario:
    return ui_support.scenario_from_json(data, catalog(), name=name)


def share_url(scenario: Scenario) -> str:
    """This page's address with the scenario's non-default fields as query parameters."""
    parts = urlsplit(st.context.url or "")
    query = urlencode(ui_support.scenario_to_text(scenario))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def plan_csv(result: Plan, cat: Catalog | None = None) -> str:
    """The CSV cost report table (planner.report.plan_to_csv, formula-injection safe) with this session's catalog;
    a download's callable passes the catalog it captured (it runs outside the script run: no session state)."""
    return plan_to_csv(result, catalog=cat or catalog())


def plan_monthly_csv(result: Plan) -> str:
    """The monthly table as its own CSV file (planner.report.plan_monthly_to_csv)."""
    return plan_monthly_to_csv(result)


def plan_zip(result: Plan, cat: Catalog | None = None) -> bytes:
    """Both CSV files in one zip (cost_report.csv, monthly.csv); `cat` as in plan_csv."""
    return plan_to_zip(result, catalog=cat or catalog())


@st.cache_data(max_entries=512, show_spinner=False)
def _cost_plan(scenario: Scenario, prices_key: str, _catalog: Catalog) -> Plan:
    """A re-plan for a sensitivity bar: cost and break-even only (no frontier or alternatives)."""
    return plan(scenario, _catalog, extras=False)


@st.cache_data(max_entries=64, show_spinner="Re-planning at each end of every driver...")
def _sensitivity(scenario: Scenario, swing_frac: float, prices_key: str, _catalog: Catalog) -> tuple:
    return sensitivity_swings(_plan(scenario, prices_key, _catalog), _catalog, swing_frac=swing_frac,
                              plan_fn=lambda s: _cost_plan(s, prices_key, _catalog))


def sensitivity(scenario: Scenario, swing_frac: float) -> tuple:
    """planner.econ.sensitivity.sensitivity with this session's prices, every variant plan cached."""
    return _sensitivity(scenario, swing_frac, catalog_key(), catalog())


def prices_csv(prices: Iterable[Any], schema: dict) -> str:
    """A price table as CSV in its upload format, through planner.report's formula-safe writer."""
    rows = ui_support.price_rows(prices, schema)
    return write_csv([list(schema), *([row[c] for c in schema] for row in rows)])
