#!/usr/bin/env python3
"""Runs Autobahn|Testsuite's fuzzingclient against Lunar (or any WebSocket echo server) and
prints the counts per behavior. Exit status 1 if any case FAILED.

    .venv/bin/python Tests/e2e/autobahn/run.py                  # starts lunar on echo-project
    .venv/bin/python Tests/e2e/autobahn/run.py --cases '*'      # every case (slow)
    .venv/bin/python Tests/e2e/autobahn/run.py --url ws://127.0.0.1:9001/   # another server
    .venv/bin/python Tests/e2e/autobahn/run.py --reference      # the websockets reference

The lunar binary is $LUNAR_BIN, else .build/debug/lunar. Reports go to --outdir
(default: a new temp folder, printed).
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lunar_harness import (AUTOBAHN_DIR, LunarServer, autobahn_cases, copy_tree,  # noqa: E402
                           free_port, run_autobahn, summarize_autobahn, wait_for_port)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="test this ws:// URL instead of starting lunar")
    ap.add_argument("--reference", action="store_true",
                    help="test reference_echo_server.py (the websockets library)")
    ap.add_argument("--cases", help="comma-separated case patterns (default: $AUTOBAHN_CASES "
                                    "or 1.*..7.*,12.1.*)")
    ap.add_argument("--outdir", help="where the spec, wstest.log and reports/ go")
    opts = ap.parse_args()

    cases = opts.cases.replace(",", " ").split() if opts.cases else autobahn_cases()
    outdir = Path(opts.outdir or tempfile.mkdtemp(prefix="lunar-autobahn-"))
    server = ref = None
    try:
        if opts.url:
            url = opts.url
        elif opts.reference:
            port = free_port()
            ref = subprocess.Popen([sys.executable, str(AUTOBAHN_DIR / "reference_echo_server.py"),
                                    str(port)], stdout=subprocess.DEVNULL)
            if not wait_for_port("127.0.0.1", port, 10, alive=lambda: ref.poll() is None):
                sys.exit("reference echo server did not start")
            url = f"ws://127.0.0.1:{port}/wds"
        else:
            root = copy_tree(AUTOBAHN_DIR / "echo-project", outdir / "project")
            server = LunarServer(root, log_path=outdir / "lunar.log").start()
            url = server.ws_url
        print(f"wstest fuzzingclient -> {url}, cases {' '.join(cases)}", flush=True)
        t0 = time.monotonic()
        results = run_autobahn(url, outdir, cases)
        print(summarize_autobahn(results))
        print(f"wall time {time.monotonic() - t0:.1f} s; report: {outdir / 'reports' / 'index.html'}")
        if server is not None and not server.running:
            print("lunar exited during the run; see", server.log_path)
            return 1
        return 1 if any(r["behavior"] == "FAILED" for r in results.values()) else 0
    finally:
        if server is not None:
            server.stop()
        if ref is not None:
            ref.terminate()
            ref.wait()


if __name__ == "__main__":
    sys.exit(main())
