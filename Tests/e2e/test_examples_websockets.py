"""The WebSocket examples run end to end as a new user would run them (`lunar examples/NAME`,
the project's own config, watch on): examples/wds-websockets (the @web/dev-server docs as a
Lua plugin), examples/ping-pong (Vite's import.meta.hot code, unchanged) and examples/chat
(Socket.IO-style events and rooms; a bare-WebSocket page beside the Lunar-client page).
Headless Chromium; the chat tests use a second browser as the second user. Each example is
copied to tmp first so the tests never write into the repository."""

from __future__ import annotations

import time

import pytest
import requests
from selenium.webdriver.common.by import By

from lunar_harness import (
    REPO_ROOT, console_errors, console_messages, copy_tree, make_browser, reset_browser,
    wait_for_console,
)

pytestmark = pytest.mark.browser

EXAMPLES = REPO_ROOT / "examples"
TIMEOUT = 5


def run_example(make_server, tmp_path, name):
    source = EXAMPLES / name
    assert (source / "lunar.config.lua").is_file(), f"{source} is incomplete"
    assert (source / "README.md").is_file(), f"{source} has no README.md"
    root = copy_tree(source, tmp_path / name)
    return make_server(root, env={"LUNAR_PLUGIN_PATH": None})


def wait_js(driver, script, timeout=TIMEOUT, message=None):
    """Polls execute_script(script) until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message or script!r} not true within {timeout} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def second_browser():
    driver = make_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def other_browser(second_browser):
    reset_browser(second_browser)
    yield second_browser
    reset_browser(second_browser)  # leave the page: its socket says goodbye


# --- wds-websockets --------------------------------------------------------------------------

def test_wds_websockets_over_http(make_server, tmp_path):
    server = run_example(make_server, tmp_path, "wds-websockets")
    r = requests.get(server.url_for("/foo.js"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.text == "export default (...args) => console.log(...args);"
    assert not (server.root / "foo.js").exists()
    page = requests.get(server.url_for("/"), timeout=TIMEOUT).text
    assert '<script type="module" src="/__web-dev-server__web-socket.js"></script>' in page


def test_wds_websockets_in_browser(make_server, tmp_path, fresh_browser):
    server = run_example(make_server, tmp_path, "wds-websockets")
    driver = fresh_browser
    started = time.monotonic()
    driver.get(server.url + "/")
    # The page's question, answered by on("message") with a return value and a raw text.
    wait_for_console(driver, 'answer from the server:', TIMEOUT)
    assert '\\"answer\\":42' in wait_for_console(driver, "answer from the server:")["message"]
    wait_for_console(driver, 'got the raw text \\"message response\\"', TIMEOUT)
    # One second after connecting: the console log, /foo.js with a b c, the data: URL, x.
    hello = wait_for_console(driver, '"my-plugin" "Hello world!"', TIMEOUT)
    assert time.monotonic() - started >= 0.9
    assert hello["level"] == "INFO"
    abc = wait_for_console(driver, lambda e: e["message"].endswith('"a" "b" "c"'), TIMEOUT)
    assert "/foo.js" in abc["message"], abc
    wait_for_console(driver, "the data: URL import ran", TIMEOUT)
    assert driver.execute_script("return document.documentElement.dataset.dataUrl") == "imported"
    wait_for_console(driver, "custom message of type x", TIMEOUT)
    items = wait_js(driver, "const t = [...document.querySelectorAll('#log li')].map(li => li.textContent);"
                            "return t.length >= 3 ? t : null")
    assert "answer: 42" in items and "custom message: {\"type\":\"x\"}" in items, items
    assert console_errors(driver) == []
    out = server.wait_for_output("received message")
    assert '"question"' in out


# --- ping-pong ----------------------------------------------------------------------------------

def test_ping_pong_in_browser(make_server, tmp_path, fresh_browser):
    server = run_example(make_server, tmp_path, "ping-pong")
    main = requests.get(server.url_for("/main.js"), timeout=TIMEOUT).text
    assert "if (import.meta.hot) {" in main  # the Vite code, served as written (plus prelude)
    driver = fresh_browser
    driver.get(server.url + "/")
    connected = wait_for_console(driver, '"connected:" "connection established"', TIMEOUT)
    pong = wait_for_console(driver, '"pong:" "hello client"', TIMEOUT)
    assert connected["level"] == pong["level"] == "INFO"
    assert driver.execute_script("return document.querySelector('#connected').textContent") == "connection established"
    assert driver.execute_script("return document.querySelector('#pong').textContent") == "hello client"
    time.sleep(0.3)
    lines = [e["message"] for e in console_messages(driver)]
    assert sum('"pong:"' in m for m in lines) == 1, lines  # one ping, one pong
    assert console_errors(driver) == []
    server.wait_for_output("ping from")


# --- chat ----------------------------------------------------------------------------------------

MESSAGES_JS = ("return [...document.querySelectorAll('#messages li.message')]"
               ".map(li => li.dataset.user + ': ' + li.firstChild.nextSibling.textContent.slice(2).trim())")


def messages(driver):
    return driver.execute_script(MESSAGES_JS)


def wait_messages(driver, predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        got = messages(driver)
        if predicate(got):
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"messages did not match within {timeout} s: {got}")
        time.sleep(0.05)


def open_chat(driver, server, user, page="/"):
    driver.get(server.url + page)
    if page == "/raw.html":
        wait_for_console(driver, "raw socket open", TIMEOUT)
    else:
        wait_js(driver, "return window.__lunar && window.__lunar.boot", message="the Lunar client's hello")
    driver.find_element(By.ID, "user").send_keys(user)


def post(driver, text):
    box = driver.find_element(By.ID, "text")
    box.send_keys(text)
    driver.find_element(By.ID, "post").click()


def join(driver, room):
    box = driver.find_element(By.ID, "room")
    box.clear()
    box.send_keys(room)
    driver.find_element(By.ID, "join").click()
    wait_js(driver, f"return document.querySelector('#current-room').textContent === {room!r}")


def test_chat_two_windows_see_each_other(make_server, tmp_path, fresh_browser, other_browser):
    server = run_example(make_server, tmp_path, "chat")
    a, b = fresh_browser, other_browser
    open_chat(a, server, "alice")
    open_chat(b, server, "bob")
    post(a, "hi from alice")
    wait_messages(b, lambda m: m == ["alice: hi from alice"])
    wait_messages(a, lambda m: m == ["alice: hi from alice"])
    post(b, "hello <b>alice</b>")
    expected = ["alice: hi from alice", "bob: hello <b>alice</b>"]
    wait_messages(a, lambda m: m == expected)
    wait_messages(b, lambda m: m == expected)
    assert a.execute_script("return document.querySelectorAll('#messages b').length") == 0  # text, not HTML
    # A page opened later gets the history.
    a.get(server.url + "/")
    wait_messages(a, lambda m: m == expected)
    assert console_errors(a) == [] and console_errors(b) == []


def test_chat_raw_page_and_client_page_see_each_other(make_server, tmp_path, fresh_browser, other_browser):
    server = run_example(make_server, tmp_path, "chat")
    raw = requests.get(server.url_for("/raw.html"), timeout=TIMEOUT).text
    assert "__web-dev-server__web-socket.js" not in raw  # no Lunar client in the raw page
    a, b = fresh_browser, other_browser
    open_chat(a, server, "alice")
    open_chat(b, server, "rawbob", page="/raw.html")
    assert b.execute_script("return typeof window.__lunar") == "undefined"
    post(a, "from the client page")
    wait_messages(b, lambda m: m == ["alice: from the client page"])
    post(b, "from the raw page")
    expected = ["alice: from the client page", "rawbob: from the raw page"]
    wait_messages(a, lambda m: m == expected)
    wait_messages(b, lambda m: m == expected)
    assert console_errors(a) == [] and console_errors(b) == []


def test_chat_rooms_isolate(make_server, tmp_path, fresh_browser, other_browser):
    server = run_example(make_server, tmp_path, "chat")
    a, b = fresh_browser, other_browser
    open_chat(a, server, "alice")
    open_chat(b, server, "bob")
    post(b, "lobby talk")
    wait_messages(a, lambda m: m == ["bob: lobby talk"])

    join(a, "blue")
    assert messages(a) == []  # the blue room's history: empty
    post(a, "blue secret")
    wait_messages(a, lambda m: m == ["alice: blue secret"])
    post(b, "still in the lobby")
    wait_messages(b, lambda m: m == ["bob: lobby talk", "bob: still in the lobby"])
    time.sleep(0.3)
    assert messages(a) == ["alice: blue secret"]  # the lobby's post did not reach blue
    assert "alice: blue secret" not in messages(b)

    join(b, "blue")
    wait_messages(b, lambda m: m == ["alice: blue secret"])  # the room's history
    post(b, "bob in blue")
    wait_messages(a, lambda m: m == ["alice: blue secret", "bob: bob in blue"])
    join(a, "lobby")
    wait_messages(a, lambda m: m == ["bob: lobby talk", "bob: still in the lobby"])


def test_chat_typing_reaches_everyone_but_the_sender(make_server, tmp_path, fresh_browser, other_browser):
    server = run_example(make_server, tmp_path, "chat")
    a, b = fresh_browser, other_browser
    open_chat(a, server, "alice")
    open_chat(b, server, "bob")
    a.find_element(By.ID, "text").send_keys("typing something")
    wait_js(b, "return document.querySelector('#typing').textContent === 'alice is typing…'",
            message="bob sees alice typing")
    assert a.execute_script("return document.querySelector('#typing').textContent") == ""
    time.sleep(0.3)
    assert a.execute_script("return document.querySelector('#typing').textContent") == ""
