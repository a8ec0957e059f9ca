"""The app under load: concurrent browser sessions against `streamlit run app.py`.

    python benchmarks/bench_app_load.py [--sessions 20] [--moves 3] [--deadline-s 300]

Starts `streamlit run app.py` on 127.0.0.1 (a free port), opens `--sessions` browser contexts
(each its own Streamlit session) in one headless Debian Chromium (/usr/bin/chromium, driven by
Playwright; nothing is downloaded) and runs them concurrently:

- page load: from navigation to the Plan page's "API USD/month" figure on screen;
- slider to numbers: `--moves` times, one ArrowRight on the traffic-volume slider (a new volume:
  a plan not computed before in that session, though other sessions may have cached it) until
  the "API USD/month" figure shows a new value.

Prints median, p90 and max in seconds, the number of sessions that failed, and the CPU count;
the target is a median slider-to-numbers of at most 2 s on 2 cores. Everything stops by itself
at `--deadline-s` (the server is terminated in every case). Figures are those of the machine
that runs it, including the browser's own CPU use on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TARGET_SLIDER_MEDIAN_S = 2.0
STARTUP_TIMEOUT_S = 90
METRIC = "API USD/month"
_METRIC_JS = """(label) => {
  const m = [...document.querySelectorAll('[data-testid=stMetric]')].find(e => e.innerText.includes(label));
  const v = m && m.querySelector('[data-testid=stMetricValue]');
  return v ? v.innerText : null;
}"""
_CHANGED_JS = """([label, before]) => {
  const m = [...document.querySelectorAll('[data-testid=stMetric]')].find(e => e.innerText.includes(label));
  const v = m && m.querySelector('[data-testid=stMetricValue]');
  return v !== null && v !== undefined && v.innerText !== before;
}"""


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"streamlit did not become healthy in {STARTUP_TIMEOUT_S} s")


async def _session(browser, url: str, moves: int, timeout_ms: int) -> tuple[float, list[float]]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout_ms)
        start = time.perf_counter()
        await page.goto(url)
        await page.wait_for_function(f"() => ({_METRIC_JS})({METRIC!r}) !== null")
        load_s = time.perf_counter() - start
        await page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
        slider_s: list[float] = []
        slider = page.get_by_role("slider").first
        for _ in range(moves):
            before = await page.evaluate(_METRIC_JS, METRIC)
            await slider.focus()
            start = time.perf_counter()
            await page.keyboard.press("ArrowRight")
            await page.wait_for_function(_CHANGED_JS, arg=[METRIC, before])
            slider_s.append(time.perf_counter() - start)
            await page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
        return load_s, slider_s
    finally:
        await context.close()


async def _drive(url: str, sessions: int, moves: int, deadline_s: float) -> tuple[list, list[str]]:
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tasks = [asyncio.create_task(_session(browser, url, moves, int(deadline_s * 1000)))
                     for _ in range(sessions)]
            done, pending = await asyncio.wait(tasks, timeout=deadline_s)
            for task in pending:
                task.cancel()
            results, errors = [], [f"session still running at the {deadline_s:g} s deadline" for _ in pending]
            for task in done:
                if task.exception() is not None:
                    errors.append(f"{type(task.exception()).__name__}: {str(task.exception()).splitlines()[0]}")
                else:
                    results.append(task.result())
            return results, errors
        finally:
            await browser.close()


def _summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no samples"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return (f"{label}: median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s, max {ordered[-1]:.2f} s "
            f"({len(ordered)} samples)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent browser sessions (default 20)")
    parser.add_argument("--moves", type=int, default=3, help="slider moves per session (default 3)")
    parser.add_argument("--deadline-s", type=float, default=300.0, help="stop everything after this (default 300)")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 100 or not 1 <= args.moves <= 20 or not 10 <= args.deadline_s <= 1800:
        parser.error("--sessions 1..100, --moves 1..20, --deadline-s 10..1800")
    if not CHROMIUM.exists():
        print(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc, url = _start_server(log)
        try:
            started, cpu_before = time.perf_counter(), _cpu_s(proc.pid)
            results, errors = asyncio.run(_drive(url, args.sessions, args.moves, args.deadline_s))
            wall_s, server_cpu_s = time.perf_counter() - started, _cpu_s(proc.pid) - cpu_before
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        tracebacks = log.read_text().count("Traceback")
    loads = [r[0] for r in results]
    moves = [s for r in results for s in r[1]]
    print(f"{args.sessions} concurrent sessions x {args.moves} slider moves on {os.cpu_count()} CPUs "
          f"(affinity {len(os.sched_getaffinity(0))}), {wall_s:.1f} s wall; the Streamlit server used "
          f"{server_cpu_s:.1f} CPU-s of the {wall_s * len(os.sched_getaffinity(0)):.0f} available (the rest: "
          f"the browsers and other processes)")
    print(_summary("page load (to the first figures)", loads))
    print(_summary("slider to numbers", moves))
    print(f"failed sessions: {len(errors)}; server tracebacks: {tracebacks}")
    for error in errors[:5]:
        print(f"  {error}")
    if moves:
        verdict = "meets" if statistics.median(moves) <= TARGET_SLIDER_MEDIAN_S else "misses"
        print(f"target median slider-to-numbers <= {TARGET_SLIDER_MEDIAN_S:g} s: {verdict}")
    return 0 if not errors and not tracebacks else 1


if __name__ == "__main__":
    raise SystemExit(main())
