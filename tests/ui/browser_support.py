"""What the browser test (tests/ui/test_browser.py) and the load benchmark (benchmarks/bench_app_load.py) share:
the Debian Chromium they drive, a `streamlit run app.py` server on a free local port, and the page-side
timing of the Plan page's figures.

No pytest and no Playwright import here: the test and the benchmark bring their own (sync and async) API.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HEADLINE_METRIC = "API USD/month"  # the Plan page figure that changes with every volume step


class ServerError(RuntimeError):
    """The Streamlit server exited or did not become healthy (the message ends with its log's tail)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(log_path: Path, *, timeout_s: float = 60.0, cwd: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` headless on 127.0.0.1 and a free port, output to `log_path`; returns the process
    and its URL once /_stcore/health answers "ok" (ServerError otherwise, the process stopped)."""
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise ServerError(f"streamlit did not become healthy in {timeout_s:g} s:\n{log_path.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# Page-side timing, installed before the app's own scripts (context.add_init_script). A MutationObserver
# watches the headline metric's text: `window.__planTimes.loadMs` is the animation frame that first paints
# it (ms after navigation start); each ArrowRight keydown (its event timestamp: when the input happened)
# followed by a new value appends keydown -> animation frame that paints the new value to `movesMs`.
# No polling, and textContent (no forced layout), so the measurement adds little work to a loaded page.
TIMING_INIT_JS = """(() => {
  const label = __LABEL__;
  const t = window.__planTimes = {loadMs: null, movesMs: [], value: null};
  let since = null;
  const read = () => {
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
      if (m.textContent.includes(label)) {
        const v = m.querySelector('[data-testid="stMetricValue"]');
        return v ? v.textContent : null;
      }
    }
    return null;
  };
  document.addEventListener('keydown', e => { if (e.key === 'ArrowRight' && since === null) since = e.timeStamp; },
                            true);
  const seen = () => {
    const v = read();
    if (v === null || v === t.value) return;
    const first = t.value === null, start = since;
    t.value = v;
    if (!first) since = null;
    requestAnimationFrame(frame => {
      if (first) t.loadMs = frame;
      else if (start !== null) t.movesMs.push(frame - start);
    });
  };
  new MutationObserver(seen).observe(document, {subtree: true, childList: true, characterData: true});
})();""".replace("__LABEL__", json.dumps(HEADLINE_METRIC))

__all__ = ["ROOT", "CHROMIUM", "CHROMIUM_ARGS", "HEADLINE_METRIC", "ServerError", "free_port", "start_server",
           "stop_server", "TIMING_INIT_JS"]
