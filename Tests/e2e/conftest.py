"""Fixtures for Lunar's end-to-end tests: the real binary, real sockets, a real browser.

Fixtures
  lunar_bin     the binary under test ($LUNAR_BIN, else .build/debug/lunar); a missing
                binary FAILS the test (never skips it)
  project       project(files) -> a folder under tmp_path with those files written
  make_server   make_server(root, *args, env=None, **kw) -> a started LunarServer; every
                server is stopped at teardown, and its output is printed if the test failed
  browser       session-wide headless Chromium (selenium). Tests share it: call
                reset_browser(browser) first if you need a blank page and an empty console
  fresh_browser the same driver, reset (about:blank, console cleared) before the test
  report_summary report_summary(text) adds text to the run's closing summary

Helpers (import them from lunar_harness): console_messages, wait_for_console, clear_console,
console_errors, reset_browser, make_project, LunarServer.
"""

from __future__ import annotations

import pytest

from lunar_harness import (  # noqa: F401  (re-exported for tests)
    LunarServer, LunarStartError, clear_console, console_errors, console_messages,
    find_lunar_bin, make_browser, make_project, reset_browser, wait_for_console,
)


_SUMMARY = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[_SUMMARY] = []
    config.addinivalue_line("markers", "autobahn: the Autobahn|Testsuite run (slow)")
    config.addinivalue_line("markers", "browser: needs headless Chromium")


def pytest_report_header(config):
    try:
        return f"lunar binary: {find_lunar_bin()}"
    except FileNotFoundError as e:
        return f"lunar binary: MISSING ({e})"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_SUMMARY, [])
    if lines:
        terminalreporter.section("lunar e2e")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def report_summary(request):
    """report_summary(text): shows text in the run's closing summary (before pytest's last
    line), whatever the outcome and without -s."""
    def _add(text):
        request.config.stash[_SUMMARY].extend(str(text).splitlines())
    return _add


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def lunar_bin():
    try:
        return find_lunar_bin()
    except FileNotFoundError as e:
        message = str(e)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def project(tmp_path):
    """project(files) writes files into a fresh folder under tmp_path and returns it."""
    counter = [0]

    def _project(files, name=None):
        counter[0] += 1
        return make_project(tmp_path / (name or f"project{counter[0]}"), files)

    return _project


@pytest.fixture
def make_server(lunar_bin, request):
    servers = []

    def _make_server(root=None, *args, env=None, **kwargs):
        kwargs.setdefault("lunar_bin", lunar_bin)
        server = LunarServer(root, args, env, **kwargs)
        try:
            server.start()
        except LunarStartError as e:
            message = str(e)  # holds the command line and the server's output
        else:
            servers.append(server)
            return server
        pytest.fail(message, pytrace=False)

    yield _make_server

    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    for server in servers:
        server.stop()
        if failed and server.log_path is not None:
            output = server.output()
            print(f"\n--- {server!r} output (exit status {server.returncode}) ---\n"
                  f"{crashed_thread(output)}{output}--- end ---")
        server.cleanup()


def crashed_thread(output: str) -> str:
    """The crashed thread's frames from a Swift backtrace, to show before the whole output
    (which a long backtrace would otherwise push out of a truncated CI log)."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if " crashed:" in line), None)
    if start is None:
        return ""
    excerpt = lines[max(0, start - 3):start + 40]
    return "--- the crashed thread ---\n" + "\n".join(excerpt) + "\n--- (full output follows) ---\n"


@pytest.fixture(scope="session")
def browser():
    driver = make_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def fresh_browser(browser):
    reset_browser(browser)
    return browser
