#!/usr/bin/env python3
"""Watch-mode latency, measured by hand (not a test):

  (a) file write -> reload message: the time from a served file's write (after close()) to
      the live-reload `import` message arriving at a raw WebSocket client on /wds;
  (b) plugin edit -> new plugin answering: the time from a plugin file's write (after
      close()) to GET /version answering the new version (polled on a keep-alive connection).

Usage (from the repository root):

  .venv/bin/python bench/watch_latency.py [--runs 20] [--bin PATH]

The binary is --bin, else $LUNAR_BIN, else .build/debug/lunar. Other helpers rebuild that
one mid-run: copy it to a private path first. Prints median, p90, min and max of each, and
what is left once the watcher's 30 ms quiet window is taken off.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WINDOW_MS = 30.0  # ChangeCoalescer's quiet window (Sources/LunarServer/Watch/ChangeCoalescer.swift)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin_source(version):
    return ('return { name = "ver", serve = function(ctx)\n'
            f'  if ctx.path == "/version" then return "{version}" end\n'
            'end }\n')


def write(path: Path, text: str):
    with open(path, "w") as f:
        f.write(text)
    return time.perf_counter()  # after close()


def percentile(values, q):
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(name, samples_ms, window_ms=None, rest="the rest"):
    med, p90 = statistics.median(samples_ms), percentile(samples_ms, 0.9)
    line = (f"{name}: n={len(samples_ms)}  median {med:6.1f} ms  p90 {p90:6.1f} ms  "
            f"min {min(samples_ms):6.1f} ms  max {max(samples_ms):6.1f} ms")
    if window_ms:
        line += (f"\n    of which the {window_ms:.0f} ms quiet window: {window_ms / med * 100:.0f}% of the median;"
                 f" {rest}: "
                 f"median {med - window_ms:.1f} ms, p90 {p90 - window_ms:.1f} ms")
    print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bin", default=os.environ.get("LUNAR_BIN") or str(REPO / ".build/debug/lunar"))
    parser.add_argument("--pause", type=float, default=0.15, help="s between runs (> the window)")
    args = parser.parse_args()

    from websockets.sync.client import connect

    base = Path(tempfile.mkdtemp(prefix="lunar-watch-bench-"))
    tmp = base / "project"
    (tmp / "plugins").mkdir(parents=True)
    (tmp / "index.html").write_text("<!doctype html><html><body><script type=module src=/main.js></script></body></html>\n")
    (tmp / "main.js").write_text("console.log(0);\n")
    (tmp / "plugins" / "ver.lua").write_text(plugin_source("v0"))
    (tmp / "lunar.config.lua").write_text('return { plugins = { "ver" } }\n')

    port = free_port()
    # The log goes outside the project: inside, every line lunar prints is a change to a
    # watched file, which reloads the pages.
    log_path = base / "lunar.log"
    log = open(log_path, "wb")
    env = dict(os.environ)
    env.pop("LUNAR_PLUGIN_PATH", None)
    proc = subprocess.Popen([args.bin, str(tmp), "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while b"Lunar is serving" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("lunar did not start:\n" + log_path.read_text(errors="replace"))
            time.sleep(0.05)
        time.sleep(0.3)  # the watcher starts right after the banner

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        def version():
            conn.request("GET", "/version")
            return conn.getresponse().read().decode()

        # The cost of one poll, to read (b) with: it bounds the polling error.
        rtts = []
        for _ in range(50):
            t = time.perf_counter()
            version()
            rtts.append((time.perf_counter() - t) * 1000)

        with connect(f"ws://127.0.0.1:{port}/wds", open_timeout=5, max_size=None) as ws:
            time.sleep(0.1)

            # (a) file write -> reload message
            reload_ms = []
            for i in range(args.runs):
                t0 = write(tmp / "main.js", f"console.log({i + 1});\n")
                while True:
                    text = ws.recv(timeout=5)
                    t1 = time.perf_counter()
                    try:
                        message = json.loads(text)
                    except (TypeError, ValueError):
                        continue
                    if message.get("type") == "import" and "location.reload()" in message["data"]["importPath"]:
                        break
                reload_ms.append((t1 - t0) * 1000)
                time.sleep(args.pause)

            # (b) plugin edit -> the new plugin answers
            plugin_ms = []
            for i in range(args.runs):
                want = f"v{i + 1}"
                t0 = write(tmp / "plugins" / "ver.lua", plugin_source(want))
                polls = 0
                while version() != want:
                    polls += 1
                    if time.perf_counter() - t0 > 5:
                        sys.exit(f"plugin edit {want} not answered within 5 s")
                plugin_ms.append((time.perf_counter() - t0) * 1000)
                time.sleep(args.pause)

            # Plugin code is not page code: no reload message should have come for (b).
            stray = 0
            while True:
                try:
                    text = ws.recv(timeout=0.3)
                except TimeoutError:
                    break
                if "location.reload()" in text:
                    stray += 1

        print(f"lunar {args.bin}  ({args.runs} runs each, {args.pause * 1000:.0f} ms apart)")
        summary("(a) file write -> reload message at /wds client  ", reload_ms, WINDOW_MS,
                "the rest (inotify, timer slack, fileChanged/reload hooks in Lua, WebSocket send)")
        summary("(b) plugin write -> new plugin answers GET       ", plugin_ms, WINDOW_MS,
                "the rest (inotify, timer slack, config re-read, plugin load + activate, the GET)")
        print(f"    (b) polls GET /version back to back; one request takes median "
              f"{statistics.median(rtts):.2f} ms (p90 {percentile(rtts, 0.9):.2f} ms), the polling error")
        if stray:
            print(f"    note: {stray} reload message(s) arrived during the plugin edits")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
