"""Smoke test: the repository's example project, served by the real lunar binary, runs its
JavaScript in headless Chromium (examples/hello/index.html loads main.js, which logs
"hello from lunar")."""

import pytest

from lunar_harness import REPO_ROOT, wait_for_console

pytestmark = pytest.mark.browser

EXAMPLE = REPO_ROOT / "examples" / "hello"


def test_hello_example_logs_in_browser(make_server, fresh_browser):
    assert (EXAMPLE / "index.html").is_file(), f"{EXAMPLE}/index.html is missing"
    server = make_server(EXAMPLE)
    fresh_browser.get(server.url + "/")
    entry = wait_for_console(fresh_browser, "hello from lunar", timeout=15)
    assert entry["level"] == "INFO", entry
    assert entry["source"] == "console-api", entry
