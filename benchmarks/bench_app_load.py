"""The app under load: concurrent browser sessions against `streamlit run app.py`.

    python benchmarks/bench_app_load.py [--sessions 20] [--moves 3] [--ramp-s 0] [--deadline-s 300]
    python benchmarks/bench_app_load.py --cpu-per-move 10

`--cpu-per-move N` instead opens ONE session and prints, per slider move, the CPU seconds of all the browser's
processes and of the server, and the page's main-thread task, script, layout and style seconds (DevTools
Performance.getMetrics), then their medians over moves 2..N: CPU time, so the figures hold on a loaded machine.

Starts `streamlit run app.py` on 127.0.0.1 (a free port), opens `--sessions` browser contexts
(each its own Streamlit session) in one headless Debian Chromium (/usr/bin/chromium, driven by
Playwright; nothing is downloaded) and runs them concurrently: all at once (the default, the issue's
condition), or with `--ramp-s R` session i opening the page at i x R / sessions seconds. Every time is
taken as the user sees it, inside the page (tests/ui/browser_support.TIMING_INIT_JS: a MutationObserver, no polling):

- page load: navigation start to the animation frame that first paints the Plan page's "API USD/month";
- slider to numbers: `--moves` times, one ArrowRight on the traffic-volume slider (a new volume: a plan
  not computed before in that session, though other sessions may have cached it), from the key event's
  timestamp to the animation frame that paints the new "API USD/month".

And, from the WebSocket frames (Chrome DevTools Network events, timestamps taken by the browser's network
stack, not its busy main thread): the server's share of each move, from the rerun request leaving the
browser to the frame with the new "API USD/month" arriving, and the bytes the server sends per move.

Prints median, p90 and max, the number of sessions that failed, the server's CPU seconds, the CPU count
and the load average before the run; the target is a median slider-to-numbers of at most 2 s on 2 cores.
Everything stops by itself at `--deadline-s` (the server is terminated in every case). The browsers share
the machine's cores with the server, so the figures include their rendering work.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from browser_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    HEADLINE_METRIC,
    TIMING_INIT_JS,
    ServerError,
    start_server,
    stop_server,
)

TARGET_SLIDER_MEDIAN_S = 2.0
STARTUP_TIMEOUT_S = 90
POLL_MS = 250  # how often the driver looks at the page's recorded times (the times themselves are exact)
MS_PER_S = 1e3


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass
class _Wire:
    """One session's WebSocket traffic: per rerun request, when the new headline figure arrived and the bytes."""

    sent_at: float | None = None
    received_bytes: int = 0
    server_s: list[float] = field(default_factory=list)
    bytes_per_rerun: list[int] = field(default_factory=list)

    def on_sent(self, params: dict) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        msg = _decode(_payload(params), BackMsg)
        if msg is not None and msg.WhichOneof("type") == "rerun_script":
            self.sent_at, self.received_bytes = params["timestamp"], 0

    def on_received(self, params: dict) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        if self.sent_at is None:
            return
        raw = _payload(params)
        self.received_bytes += len(raw)
        msg = _decode(raw, ForwardMsg)
        if msg is None:
            return
        kind = msg.WhichOneof("type")
        if (kind == "delta" and msg.delta.WhichOneof("type") == "new_element"
                and msg.delta.new_element.WhichOneof("type") == "metric"
                and msg.delta.new_element.metric.label == HEADLINE_METRIC):
            self.server_s.append(params["timestamp"] - self.sent_at)
        elif kind == "script_finished":
            self.bytes_per_rerun.append(self.received_bytes)
            self.sent_at = None


def _payload(params: dict) -> bytes:
    """A frame's bytes: Streamlit's messages are binary frames (opcode 2, base64 in the DevTools event)."""
    response = params.get("response", {})
    data = response.get("payloadData", "")
    return base64.b64decode(data) if response.get("opcode") == 2 else data.encode()


def _decode(raw: bytes, proto_type):
    try:
        return proto_type.FromString(raw)
    except Exception:  # noqa: BLE001 - a frame that is not this message type is not counted
        return None


@dataclass
class _Result:
    load_s: float
    moves_s: list[float]
    wire: _Wire


async def _session(browser, url: str, moves: int, timeout_ms: int, delay_s: float) -> _Result:
    await asyncio.sleep(delay_s)
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        await context.add_init_script(TIMING_INIT_JS)
        page = await context.new_page()
        page.set_default_timeout(timeout_ms)
        wire = _Wire()
        cdp = await context.new_cdp_session(page)
        cdp.on("Network.webSocketFrameSent", wire.on_sent)
        cdp.on("Network.webSocketFrameReceived", wire.on_received)
        await cdp.send("Network.enable")
        await page.goto(url)
        await page.wait_for_function("() => window.__planTimes.loadMs !== null", polling=POLL_MS)
        load_ms = await page.evaluate("() => window.__planTimes.loadMs")
        await page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
        wire.server_s.clear()  # the first run's figure is the page load, not a move
        wire.bytes_per_rerun.clear()
        slider = page.get_by_role("slider").first
        for done in range(moves):
            await slider.focus()
            await page.keyboard.press("ArrowRight")
            await page.wait_for_function("n => window.__planTimes.movesMs.length > n", arg=done, polling=POLL_MS)
            await page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
        moves_ms = await page.evaluate("() => window.__planTimes.movesMs")
        return _Result(load_ms / MS_PER_S, [m / MS_PER_S for m in moves_ms], wire)
    finally:
        await context.close()


async def _drive(url: str, sessions: int, moves: int, ramp_s: float,
                 deadline_s: float) -> tuple[list[_Result], list[str]]:
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tasks = [asyncio.create_task(_session(browser, url, moves, int(deadline_s * MS_PER_S),
                                                  i * ramp_s / sessions)) for i in range(sessions)]
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


def _p90(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def _summary(label: str, values: list[float], unit: str = "s", fmt: str = ".2f") -> str:
    if not values:
        return f"{label}: no samples"
    ordered = sorted(values)
    return (f"{label}: median {statistics.median(ordered):{fmt}} {unit}, p90 {_p90(ordered):{fmt}} {unit}, "
            f"max {ordered[-1]:{fmt}} {unit} ({len(ordered)} samples)")


def _process_tree_cpu_s(root: int, name_part: str) -> float:
    """CPU seconds of `root`'s descendant processes whose command line contains `name_part` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            if name_part in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore"):
                total += _cpu_s(pid)
        except OSError:
            continue
    return total


def cpu_per_move(moves: int) -> int:
    """One session: browser and server CPU seconds per slider move (module docstring)."""
    from playwright.sync_api import sync_playwright
    metric_names = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
    rows: list[tuple[float, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "server.log", timeout_s=STARTUP_TIMEOUT_S)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1400, "height": 1600})
                context.add_init_script(TIMING_INIT_JS)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")

                def metrics() -> dict[str, float]:
                    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

                def settle() -> None:
                    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
                    time.sleep(1.0)  # what the page does right after the rerun (chart, fades) is part of the move

                browser_0, server_0 = _process_tree_cpu_s(os.getpid(), "chrom"), _cpu_s(proc.pid)
                page.goto(url)
                page.wait_for_function("() => window.__planTimes.loadMs !== null", polling=POLL_MS)
                settle()
                print(f"page load: browser {_process_tree_cpu_s(os.getpid(), 'chrom') - browser_0:.2f} CPU-s, "
                      f"server {_cpu_s(proc.pid) - server_0:.2f} CPU-s (incl. the browser's start, the app's imports)")
                slider = page.get_by_role("slider").first
                for done in range(moves):
                    before, browser_0, server_0 = metrics(), _process_tree_cpu_s(os.getpid(), "chrom"), _cpu_s(proc.pid)
                    slider.focus()
                    page.keyboard.press("ArrowRight")
                    page.wait_for_function("n => window.__planTimes.movesMs.length > n", arg=done, polling=POLL_MS)
                    settle()
                    after = metrics()
                    row = (_process_tree_cpu_s(os.getpid(), "chrom") - browser_0, _cpu_s(proc.pid) - server_0,
                           *(after[k] - before[k] for k in metric_names),
                           page.evaluate("() => window.__planTimes.movesMs")[-1] / MS_PER_S)
                    rows.append(row)
                    print(f"move {done + 1}: slider to numbers {row[-1]:.3f} s; CPU-s browser {row[0]:.3f}, server "
                          f"{row[1]:.3f}; page main thread: task {row[2]:.3f} s, script {row[3]:.3f}, layout "
                          f"{row[4]:.3f}, style {row[5]:.3f}")
                browser.close()
        finally:
            stop_server(proc)
    later = rows[1:] or rows
    med = [statistics.median(r[i] for r in later) for i in range(len(rows[0]))]
    print(f"median of moves {2 if len(rows) > 1 else 1}..{len(rows)}: browser {med[0]:.3f} CPU-s, server {med[1]:.3f} "
          f"CPU-s, page main-thread task {med[2]:.3f} s (script {med[3]:.3f}), slider to numbers {med[-1]:.3f} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent browser sessions (default 20)")
    parser.add_argument("--moves", type=int, default=3, help="slider moves per session (default 3)")
    parser.add_argument("--ramp-s", type=float, default=0.0,
                        help="spread the sessions' start over this many seconds (default 0: all at once)")
    parser.add_argument("--deadline-s", type=float, default=300.0, help="stop everything after this (default 300)")
    parser.add_argument("--cpu-per-move", type=int, default=0, metavar="N",
                        help="instead: one session, N slider moves, browser and server CPU seconds per move")
    args = parser.parse_args(argv)
    if (not 1 <= args.sessions <= 100 or not 1 <= args.moves <= 20 or not 10 <= args.deadline_s <= 1800
            or not 0 <= args.ramp_s < args.deadline_s):
        parser.error("--sessions 1..100, --moves 1..20, --deadline-s 10..1800, --ramp-s 0..deadline")
    if not CHROMIUM.exists():
        print(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    if args.cpu_per_move:
        return cpu_per_move(max(1, min(args.cpu_per_move, 50)))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        try:
            proc, url = start_server(log, timeout_s=STARTUP_TIMEOUT_S)
        except ServerError as err:
            print(str(err).splitlines()[0], file=sys.stderr)
            return 1
        try:
            started, cpu_before = time.perf_counter(), _cpu_s(proc.pid)
            results, errors = asyncio.run(_drive(url, args.sessions, args.moves, args.ramp_s, args.deadline_s))
            wall_s, server_cpu_s = time.perf_counter() - started, _cpu_s(proc.pid) - cpu_before
        finally:
            stop_server(proc)
        tracebacks = log.read_text().count("Traceback")
    cpus = len(os.sched_getaffinity(0))
    moves = [s for r in results for s in r.moves_s]
    ramp = f" started over {args.ramp_s:g} s" if args.ramp_s else " started at once"
    print(f"{args.sessions} concurrent sessions{ramp} x {args.moves} slider moves on {os.cpu_count()} CPUs "
          f"(affinity {cpus}), load average before {load_before[0]:.1f} / {load_before[1]:.1f} (1 / 5 min); "
          f"{wall_s:.1f} s wall; the Streamlit server used {server_cpu_s:.1f} CPU-s of the {wall_s * cpus:.0f} "
          f"available (the rest: the browsers and other processes)")
    print(_summary("page load (to the first figures painted)", [r.load_s for r in results]))
    print(_summary("slider to numbers (key event to the new figure painted)", moves))
    print(_summary("  of which the server (rerun request sent to the new figure received)",
                   [s for r in results for s in r.wire.server_s]))
    print(_summary("  bytes the server sends per move", [b / 1e3 for r in results for b in r.wire.bytes_per_rerun],
                   unit="kB", fmt=".1f"))
    print(f"failed sessions: {len(errors)}; server tracebacks: {tracebacks}")
    for error in errors[:5]:
        print(f"  {error}")
    if moves:
        verdict = "meets" if statistics.median(moves) <= TARGET_SLIDER_MEDIAN_S else "misses"
        print(f"target median slider-to-numbers <= {TARGET_SLIDER_MEDIAN_S:g} s: {verdict}")
    return 0 if not errors and not tracebacks else 1


if __name__ == "__main__":
    raise SystemExit(main())
