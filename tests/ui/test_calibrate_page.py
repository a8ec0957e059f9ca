"""AppTest for the Calibrate page and the Plan page's "Efficiency profile" choice: a `vllm bench serve` JSON
becomes a profile kept in the session (never on the server's disk, never seen by another session), the
profiles table lists it beside the server folder's and the shipped ones, and a plan that names it uses it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner.data.catalog import load_catalog
from planner.fit.profile_store import load_user_profiles, profile_dir
from ui import state
from ui.calibrate_page import profile_csv

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT_S = 60
MODEL = "meta-llama/Llama-3.1-8B"
BENCH = {  # the fields `vllm bench serve --save-result` writes (the pattern of tests/fit/test_calibration.py)
    "backend": "vllm", "model_id": MODEL, "num_prompts": 200, "request_rate": "inf",
    "max_concurrency": 32, "duration": 40.0, "completed": 200, "total_input_tokens": 204_800,
    "total_output_tokens": 51_200, "request_throughput": 5.0, "output_throughput": 1280.0,
    "total_token_throughput": 6400.0, "mean_ttft_ms": 150.0, "mean_tpot_ms": 22.0, "mean_itl_ms": 22.0,
}


@pytest.fixture(autouse=True)
def _fresh_server_folder():
    """The server folder's profiles are read once per process (st.cache_resource): re-read per test."""
    state.server_profiles.clear()
    yield
    state.server_profiles.clear()


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def _calibrate_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("ui/calibrate_page.py").run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, body: bytes, name: str = "bench.json") -> AppTest:
    at.file_uploader(key="bench_upload").set_value((name, body, "application/json"))
    return at.run()


def _profiles(at: AppTest) -> dict[str, dict]:
    frame = next(t.value for t in at.dataframe if "origin" in t.value.columns)
    return {row["profile"]: row for row in frame.to_dict("records")}


def _calibrated(name: str = "my-h100", bench: dict | None = None) -> AppTest:
    at = _calibrate_page()
    _upload(at, json.dumps(bench or BENCH).encode())
    at.selectbox(key="cal_gpu").set_value("H100-SXM")
    at.selectbox(key="cal_model").set_value(MODEL)
    at.text_input(key="cal_name").set_value(name).run()
    at.button(key="cal_run").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    return at


def _capacity_rows(at: AppTest) -> dict[str, str]:
    at.session_state["plan_tab"] = "Capacity and latency"
    at.run()
    assert not at.exception, at.exception
    for table in at.dataframe:
        frame = table.value
        if len(frame.columns) == 2 and "Efficiency profile" in set(frame.iloc[:, 0]):
            return dict(zip(frame.iloc[:, 0], frame.iloc[:, 1], strict=True))
    raise AssertionError("no capacity table with an 'Efficiency profile' row")


def test_calibration_shows_the_points_lists_the_profile_and_the_plan_uses_it() -> None:
    at = _calibrated()
    points = next(t.value for t in at.dataframe if "predicted after" in t.value.columns)
    # the file's three metrics, measured values as written in BENCH
    assert list(points["metric"]) == ["output_tokens_per_s", "ttft_ms", "tpot_ms"]
    assert list(points["measured"]) == [1280.0, 150.0, 22.0]
    for row in points.to_dict("records"):  # the refit moves every prediction towards its measurement
        assert abs(math.log(row["predicted after"] / row["measured"])) < abs(
            math.log(row["predicted before"] / row["measured"])), row
    listed = _profiles(at)
    mine = listed["my-h100"]
    assert (mine["origin"], mine["engine"], mine["applies to GPUs"], mine["points"]) == ("this session", "vllm",
                                                                                           "H100-SXM", 3)
    assert listed["vllm-datacenter"]["origin"] == "shipped" and "MBU" in mine["fitted factors"]
    assert not any(profile_dir().glob("*.csv")), "a session profile must not be written to the server's disk"

    at.switch_page("ui/plan_page.py").run()
    at.selectbox(key="sc_model").set_value(MODEL)
    at.selectbox(key="sc_gpu").set_value("H100-SXM")
    at.selectbox(key="sc_engine").set_value("vllm").run()  # the file's engine (the search may pick another)
    assert "my-h100" in at.selectbox(key="sc_profile").options
    before = _capacity_rows(at)
    assert before["Efficiency profile"] == "vllm-datacenter"
    at.selectbox(key="sc_profile").set_value("my-h100").run()
    after = _capacity_rows(at)
    assert after["Efficiency profile"] == "my-h100" and not at.error, _texts(at, "error")
    assert after["Output tokens/s per replica"] != before["Output tokens/s per replica"]
    assert dict(at.query_params)["profile"] == "my-h100"  # the share link names it

    at.selectbox(key="sc_gpu").set_value("L40S").run()  # the profile describes H100-SXM only
    assert not at.exception, at.exception
    errors = _texts(at, "error")
    assert len(errors) == 1 and "my-h100" in errors[0] and "L40S" in errors[0], errors
    assert "my-h100" not in at.selectbox(key="sc_profile").options[:-1]  # kept as the chosen value, not offered


def test_use_it_in_the_plan_sets_profile_gpu_and_model() -> None:
    at = _calibrated("use-me")
    at.button(key="cal_use").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Plan"]  # st.switch_page ran the Plan page
    at.switch_page("ui/plan_page.py")  # AppTest's own page for the next runs
    assert at.selectbox(key="sc_profile").value == "use-me"
    assert at.selectbox(key="sc_gpu").value == "H100-SXM" and at.selectbox(key="sc_model").value == MODEL
    assert _capacity_rows(at)["Efficiency profile"] == "use-me"


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not valid JSON"),
    (json.dumps({**BENCH, "completed": None}).encode(), "completed"),
    (json.dumps({**BENCH, "output_throughput": 1e-300}).encode(), "output_throughput"),
    (b"[" * 100_000 + b"]" * 100_000, "bench.json"),
])
def test_bad_upload_shows_one_error_and_no_calibration(body: bytes, words: str) -> None:
    at = _upload(_calibrate_page(), body)
    assert not at.exception, at.exception
    errors = _texts(at, "error")
    assert len(errors) == 1 and words in errors[0] and "bench.json" in errors[0], errors
    assert len(errors[0]) < 400, "the message must not echo the input"
    assert at.button(key="cal_run").disabled


def test_a_shipped_profile_name_is_refused() -> None:
    at = _calibrate_page()
    _upload(at, json.dumps(BENCH).encode())
    at.selectbox(key="cal_model").set_value(MODEL)
    at.text_input(key="cal_name").set_value("vllm-datacenter").run()
    at.button(key="cal_run").click().run()
    errors = _texts(at, "error")
    assert len(errors) == 1 and "shipped profile" in errors[0], errors
    assert all(row["origin"] != "this session" for row in _profiles(at).values())


def test_a_second_session_does_not_see_the_first_ones_profile() -> None:
    _calibrated("only-mine")
    other = _calibrate_page()
    assert "only-mine" not in _profiles(other)
    other.switch_page("ui/plan_page.py").run()
    other.selectbox(key="sc_gpu").set_value("H100-SXM").run()
    assert "only-mine" not in other.selectbox(key="sc_profile").options


def _plan_with(at: AppTest, profile: str) -> dict[str, str]:
    at.switch_page("ui/plan_page.py").run()
    at.selectbox(key="sc_model").set_value(MODEL)
    at.selectbox(key="sc_gpu").set_value("H100-SXM").run()
    at.selectbox(key="sc_profile").set_value(profile).run()
    return _capacity_rows(at)


def test_two_sessions_with_one_profile_name_never_share_a_cached_plan() -> None:
    """Same name, same scenario, different measurements: the cache key covers the session's profiles."""
    first = _plan_with(_calibrated("same-name"), "same-name")
    half = {**BENCH, "output_throughput": 640.0, "mean_tpot_ms": 44.0, "mean_ttft_ms": 300.0}  # a 2x slower run
    second = _plan_with(_calibrated("same-name", bench=half), "same-name")
    assert first["Efficiency profile"] == second["Efficiency profile"] == "same-name"
    assert first["Output tokens/s per replica"] != second["Output tokens/s per replica"]


def test_a_shared_link_naming_an_unknown_profile_is_a_note() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.query_params.update({"profile": "someone-elses", "model": MODEL})
    at.run()
    assert not at.exception and not at.error, _texts(at, "error")
    notes = " ".join(_texts(at, "warning")).replace("\\", "")
    assert "profile" in notes and "someone-elses" in notes, notes
    assert at.selectbox(key="sc_profile").value == "(auto)" and "profile" not in at.query_params


def test_a_shared_link_naming_a_shipped_profile_keeps_it() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.query_params.update({"profile": "VLLM-datacenter", "model": MODEL, "gpu": "H100-SXM"})
    at.run()
    assert not at.exception and not at.error, _texts(at, "error")
    assert at.selectbox(key="sc_profile").value == "vllm-datacenter"  # the catalog's spelling


def test_the_server_folder_profiles_are_listed_and_usable(monkeypatch, tmp_path) -> None:
    from planner.fit.calibration import calibrate_profile, points_from_vllm_bench

    cat = load_catalog()
    points = points_from_vllm_bench(json.dumps(BENCH), model=MODEL, gpu="H100-SXM")
    profile, _ = calibrate_profile(cat, points, name="team-h100")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "team-h100.csv").write_text(profile_csv(profile), encoding="utf-8")  # the page's CSV download
    monkeypatch.setenv("PLANNER_PROFILE_DIR", str(folder))
    [loaded] = load_user_profiles()  # what the CLI reads back from that download
    assert loaded.profile_id == "team-h100" and loaded.gpu_match == "H100-SXM"
    at = _calibrate_page()
    assert _profiles(at)["team-h100"]["origin"] == "server folder"
    at.switch_page("ui/plan_page.py").run()
    at.selectbox(key="sc_model").set_value(MODEL)
    at.selectbox(key="sc_gpu").set_value("H100-SXM").run()
    at.selectbox(key="sc_profile").set_value("team-h100").run()
    assert _capacity_rows(at)["Efficiency profile"] == "team-h100"


def test_an_unreadable_server_folder_is_a_note(monkeypatch, tmp_path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "bad.csv").write_text("profile_id,engine\nx,vllm\n", encoding="utf-8")
    monkeypatch.setenv("PLANNER_PROFILE_DIR", str(folder))
    at = _calibrate_page()
    assert not at.exception and not at.error, _texts(at, "error")
    assert any("could not be read" in i for i in _texts(at, "info")), _texts(at, "info")
    assert "vllm-datacenter" in _profiles(at)


def test_the_page_module_does_not_import_scipy() -> None:
    """scipy (the fit) is imported on the first "Calibrate" click, not when the page or the app loads."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ("import sys, ui.calibrate_page, ui.plan_page, ui.state; "
            "print(sorted(m for m in ('scipy', 'planner.fit.calibration') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
