"""examples/virtual-modules runs as documented: its plugin serves /virtual/config.js (a module
on no disk), puts a banner on every served script, and serves .md as text/plain; in
Chromium, main.js logs the virtual module's values. The example is copied to tmp first so
the tests never write into the repository."""

from __future__ import annotations

import re
import time

import pytest
import requests

from lunar_harness import REPO_ROOT, console_errors, copy_tree, wait_for_console

EXAMPLE = REPO_ROOT / "examples" / "virtual-modules"
BANNER = "/* served by Lunar */"
TIMEOUT = 5


@pytest.fixture
def example_server(make_server, tmp_path):
    assert (EXAMPLE / "lunar.config.lua").is_file(), f"{EXAMPLE} is incomplete"
    root = copy_tree(EXAMPLE, tmp_path / "virtual-modules")
    # As the README runs it: the project's config, watching on (live-reload loaded too).
    return make_server(root, env={"LUNAR_PLUGIN_PATH": None})


def test_example_over_http(example_server):
    server = example_server
    before = int(time.time())

    r = requests.get(server.url_for("/virtual/config.js"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.text.startswith(BANNER), r.text
    match = re.search(r"export default \{ builtAt: (\d+), answer: 42 \};", r.text)
    assert match, r.text
    assert before - 60 <= int(match.group(1)) <= before + 1
    assert not (server.root / "virtual").exists()

    r = requests.get(server.url_for("/main.js"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.text.startswith(BANNER), r.text
    assert 'import config from "/virtual/config.js";' in r.text

    r = requests.get(server.url_for("/notes.md"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("# Notes")

    # Only scripts get the banner.
    r = requests.get(server.url_for("/"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert BANNER not in r.text
    assert requests.get(server.url_for("/virtual/other.js"), timeout=TIMEOUT).status_code == 404


@pytest.mark.browser
def test_example_in_browser(example_server, fresh_browser):
    server = example_server
    built_at = re.search(r"builtAt: (\d+)",
                         requests.get(server.url_for("/virtual/config.js"), timeout=TIMEOUT).text).group(1)
    fresh_browser.get(server.url + "/")
    entry = wait_for_console(fresh_browser, "virtual config: answer=42", timeout=10)
    assert entry["level"] == "INFO", entry
    assert entry["source"] == "console-api", entry
    assert f"builtAt={built_at}" in entry["message"], entry
    answer = fresh_browser.execute_script("return document.querySelector('#answer').textContent")
    assert answer == "42"
    assert console_errors(fresh_browser) == []
