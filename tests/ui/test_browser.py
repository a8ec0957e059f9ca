"""The app in a real browser: headless Chromium (Debian's /usr/bin/chromium) against `streamlit run app.py`.

Loads every page, moves the traffic-volume slider and checks the numbers change, downloads the
CSV cost report and checks its contents, and saves a screenshot per page under
artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, ROOT, ServerError, start_server, stop_server

pytestmark = pytest.mark.browser

SHOTS = ROOT / "artifacts" / "screenshots"
STARTUP_TIMEOUT_S = 60
RENDER_TIMEOUT_MS = 60_000
# (screenshot name, URL path, page title)
PAGES = [("plan", "", "Plan"), ("sensitivity", "sensitivity", "Sensitivity and scenarios"),
         ("choose", "choose", "Choose a model"), ("compare", "compare", "Compare models"),
         ("hardware", "hardware", "Hardware fit"), ("prices", "prices", "Prices"),
         ("calibrate", "calibrate", "Calibrate")]
FORMULA_PREFIXES = ("=", "+", "@", "\t", "\r")  # a leading "-" is fine on numbers, checked separately

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    try:
        proc, url = start_server(log, timeout_s=STARTUP_TIMEOUT_S)
    except ServerError as err:
        pytest.fail(str(err))
    try:
        yield url
    finally:
        stop_server(proc)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 2200}, accept_downloads=True)
        tab = context.new_page()
        tab.set_default_timeout(RENDER_TIMEOUT_MS)
        yield tab
        context.close()
        browser.close()


def _settle(tab: object) -> None:
    """Wait until the script run has finished and the page shows no stale elements."""
    tab.wait_for_timeout(300)
    tab.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
    tab.wait_for_selector('[data-stale="true"]', state="detached")
    tab.wait_for_function(  # plotly draws after the script run ends
        "() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]"
        ".every(chart => chart.querySelector('.main-svg'))")
    tab.wait_for_timeout(300)


def _open(tab: object, server: str, path: str, title: str) -> None:
    tab.goto(f"{server}/{path}")
    tab.get_by_role("heading", name=title, level=1).wait_for()
    _settle(tab)


@pytest.mark.parametrize(("name", "path", "title"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_loads_without_an_exception(page: object, server: str, name: str, path: str,
                                                 title: str) -> None:
    _open(page, server, path, title)
    assert page.locator('[data-testid="stException"]').count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _metric(tab: object, label: str) -> str:
    metric = tab.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def test_volume_slider_changes_the_plan_and_the_csv_report(page: object, server: str) -> None:
    _open(page, server, "", "Plan")
    gpus_before = _metric(page, "GPUs")
    api_before = _metric(page, "API USD/month")
    slider = page.get_by_role("slider").first
    volume_before = slider.get_attribute("aria-valuetext")
    slider.focus()
    for _ in range(8):  # eight log steps up: 100,000 -> 3,000,000 requests/day
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "before => document.querySelector('input[type=range]').getAttribute('aria-valuetext') !== before",
        arg=volume_before)
    _settle(page)
    volume_after = slider.get_attribute("aria-valuetext")
    assert _metric(page, "GPUs") != gpus_before
    assert _metric(page, "API USD/month") != api_before
    # the slider reruns only the results fragment: the address bar and the sidebar's share link follow it too
    volume = float(volume_after.replace(",", ""))
    assert float(parse_qs(urlsplit(page.url).query)["requests_per_day"][0]) == volume
    page.get_by_text("Load and share").click()
    link = page.locator('[data-testid="stSidebar"] [data-testid="stText"]').filter(has_text="requests_per_day=")
    assert float(parse_qs(urlsplit(link.inner_text()).query)["requests_per_day"][0]) == volume

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Cost report (CSV)").click()
    text = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "name", "value", "unit", "source"]
    values = {r[1]: r[2] for r in rows if len(r) >= 3 and r[0] in ("assumption", "result")}
    assert float(values["requests_per_day"]) == float(volume_after.replace(",", ""))
    assert values["model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert int(values[f"{values['headline_tier']}_gpus"]) == int(_metric(page, "GPUs").replace(",", ""))
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES), cell
            if cell.startswith("-"):
                float(cell)  # only negative numbers may start with a minus sign
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "plan_after_slider.png"), full_page=True)


def test_popover_opened_after_a_rerun_keeps_the_scenario(page: object, server: str) -> None:
    """The bug: a widget in a closed popover is mounted when opened and showed its minimum (horizon 1,
    discounts 0, N+k 0); the next interaction wrote those into the scenario and the share link."""
    _open(page, server, "", "Plan")
    slider = page.get_by_role("slider").first
    slider.focus()
    page.keyboard.press("ArrowRight")  # a rerun before the popover is ever opened
    _settle(page)
    page.get_by_text("Deployment and comparison", exact=True).click()  # a collapsed expander, mounted now
    button = page.get_by_role("button", name="Capacity, prices and horizon")
    button.wait_for()  # the expander's content is mounted and laid out before the popover is opened
    _settle(page)
    horizon = page.get_by_role("spinbutton", name="Horizon (months)", exact=True)
    for _ in range(3):  # a click that lands while the expander still animates opens nothing: click again
        button.click()
        try:
            horizon.wait_for(timeout=15_000)
            break
        except Exception:  # playwright's TimeoutError
            continue
    horizon.wait_for()
    assert horizon.input_value() == "36"
    discount = page.get_by_role("spinbutton", name="1-year reserved discount (fraction 0-1)", exact=True)
    assert discount.input_value() == "0.37"
    headroom = page.get_by_role("spinbutton", name="Headroom above peak (fraction 0-1)", exact=True)
    headroom.fill("0.25")
    headroom.press("Enter")
    _settle(page)
    query = parse_qs(urlsplit(page.url).query)
    assert query.get("headroom_frac") == ["0.25"], query
    for field in ("horizon_months", "redundancy_replicas", "reserved_1y_discount_frac", "reserved_3y_discount_frac",
                  "spot_interruption_overhead_frac"):
        assert field not in query, (field, query)
