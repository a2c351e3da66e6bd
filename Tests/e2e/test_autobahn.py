"""Autobahn|Testsuite (wstest -m fuzzingclient) against Lunar's /wds, with an echo plugin.

Cases: 1.* .. 7.* and 12.1.* by default; AUTOBAHN_CASES="*" (or any comma-separated list)
overrides them, e.g. for a full run by hand:

    AUTOBAHN_CASES='*' .venv/bin/python -m pytest Tests/e2e/test_autobahn.py -s

OK, NON-STRICT, INFORMATIONAL and UNIMPLEMENTED pass (12.* are UNIMPLEMENTED when the server
does not negotiate permessage-deflate); any FAILED fails the test. The HTML report is left in
pytest's tmp folder (path printed).
"""

import os
import time

import pytest

from lunar_harness import (AUTOBAHN_DIR, DEFAULT_AUTOBAHN_CASES, autobahn_cases, copy_tree,
                           run_autobahn, summarize_autobahn)

pytestmark = pytest.mark.autobahn


@pytest.mark.timeout(4000)
def test_autobahn_fuzzingclient(make_server, tmp_path, report_summary):
    root = copy_tree(AUTOBAHN_DIR / "echo-project", tmp_path / "project")
    server = make_server(root)
    cases = autobahn_cases()
    # The default subset takes about a minute; a full run ('*', with 9.* and 12.*/13.*)
    # takes much longer.
    timeout = float(os.environ.get("AUTOBAHN_TIMEOUT", 900 if cases == DEFAULT_AUTOBAHN_CASES
                                   else 3600))
    t0 = time.monotonic()
    results = run_autobahn(server.ws_url, tmp_path / "autobahn", cases, timeout=timeout)
    summary = (f"{summarize_autobahn(results)}\n  wall time {time.monotonic() - t0:.1f} s; "
               f"report: {tmp_path / 'autobahn' / 'reports' / 'index.html'}")
    report_summary(summary)

    assert results, f"wstest ran no case for {cases}"
    failed = sorted(cid for cid, r in results.items() if r["behavior"] == "FAILED")
    assert not failed, f"{len(failed)} Autobahn case(s) FAILED: {', '.join(failed)}\n{summary}"
    assert server.running, "lunar exited during the Autobahn run:\n" + server.output()[-4000:]
