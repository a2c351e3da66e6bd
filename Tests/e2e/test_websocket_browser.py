"""The browser side of the WebSocket channel (SPEC §4 "Browser side", docs/PROTOCOL.md) in
headless Chromium against the real lunar binary: the injected client module and its
exports, import.meta.hot, events held until `load`, sendImport / sendConsoleLog, and the
reliability layer: a restarted server reloads the page; a dropped socket reconnects and
gets what the server sent meanwhile, in order and exactly once; what the page sent while
disconnected is delivered after the reconnect.

The plugin (BPROBE) has an `eval` event like the probe of test_websocket_api.py; the tests
drive it from a plain Python WebSocket client (Peer) or from the page itself."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
import requests

from lunar_harness import console_errors, wait_for_console
from test_websocket_api import Peer, seen, wait_until

pytestmark = pytest.mark.browser

TIMEOUT = 5

BPROBE = r'''
local seen, keep = {}, {}
local function note(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  seen[#seen + 1] = table.concat(parts, " ")
end

return function(options)
  local ws
  return {
    name = "bprobe",
    injectWebSocket = true,
    serverStart = function(ctx)
      ws = ctx.webSockets
      ws:on("connection", function(client)
        note("connection", client.id)
        if options.early then client:send("early", { n = 1 }) client:send("early", { n = 2 }) end
      end)
      ws:on("disconnect", function(client) note("disconnect", client.id) end)
      ws:on("message", function(m)
        if not m.data then return end
        note("message", m.data.type)
        if m.data.type == "fail" then error("nope, on purpose") end
        return { echo = m.data }
      end)
      ws:on("eval", function(code, client)
        local env = setmetatable({ ws = ws, client = client, seen = seen, keep = keep, note = note },
          { __index = _ENV })
        return assert(load(code, "=eval", "t", env))()
      end)
      ws:on("echo", function(data) return data end)
      ws:on("fail", function() error("request failed on purpose") end)
      ws:on("rec", function(data, client) note("rec", json.encode(data)) end)
      ws:on("hot-ping", function(data, client) client:send("hot-pong", { got = data }) end)
      ws:on("whoami", function(_, client) return client.id end)
    end,
    serve = function(ctx)
      if ctx.path == "/seen" then return { body = json.encode(json.array(seen)), type = "json" } end
      if ctx.path == "/virtual-mod.js" then
        return { body = "export default (...args) => { (window.imported ??= []).push(args); }", type = "js" }
      end
    end,
  }
end
'''

PAGE_JS = """\
import * as lunar from '/__web-dev-server__web-socket.js';
window.L = lunar;
window.ticks = [];
lunar.on('tick', (n) => window.ticks.push(n));
window.pageReady = true;
"""

HOT_JS = """\
const log = [];
window.hotLog = log;
if (import.meta.hot) {
  log.push('hot present');
  log.push(typeof import.meta.hot.accept === 'function' ? 'accept ok' : 'no accept');
  import.meta.hot.data.count = (import.meta.hot.data.count || 0) + 1;
  import.meta.hot.on('hot-pong', (data) => { log.push('pong ' + JSON.stringify(data)); });
  import.meta.hot.send('hot-ping', { from: 'hot.js' });
} else {
  log.push('no hot');
}
"""

PLAIN_JS = "window.plainLoaded = typeof window.__lunar;\nexport const x = 1;\n"


def files(options="{}"):
    return {
        "index.html": ("<!doctype html><html><head><title>b</title><link rel='icon' href='data:,'></head>"
                       "<body><h1>b</h1><script type='module' src='/page.js'></script></body></html>"),
        "page.js": PAGE_JS,
        "hot.js": HOT_JS,
        "plain.js": PLAIN_JS,
        "hot.html": ("<!doctype html><html><head><link rel='icon' href='data:,'></head><body>"
                     "<script type='module' src='/hot.js'></script>"
                     "<script type='module' src='/plain.js'></script></body></html>"),
        "fragment.html": "<p>just a fragment</p>",
        "lunar.config.lua": ('return { watch = false, timeout = 500, plugins = '
                             f'{{ {{ "./plugins/bprobe.lua", {options} }} }} }}\n'),
        "plugins/bprobe.lua": BPROBE,
    }


def start(make_server, project, options="{}", **kwargs):
    root = project(files(options))
    return make_server(root, "--no-watch", env={"LUNAR_PLUGIN_PATH": None}, **kwargs)


def js(driver, body, *args):
    """Runs `body` as an async function body (await allowed); returns its value.
    Exceptions come back as {"thrown": name, "message": ...}."""
    script = ("const done = arguments[arguments.length - 1];"
              "(async (...args) => {" + body + "})(...Array.from(arguments).slice(0, -1))"
              ".then(done, (e) => done({ thrown: e && e.name, message: String(e && e.message) }));")
    return driver.execute_async_script(script, *args)


def wait_js(driver, expression, timeout=TIMEOUT, message=None):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script("return " + expression)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message or expression!r} not true within {timeout} s")
        time.sleep(0.05)


def open_page(driver, server, path="/"):
    driver.get(server.url + path)
    wait_js(driver, "window.pageReady === true && window.__lunar && !!window.__lunar.boot",
            message="the page's client has its hello")


# --- The client module ----------------------------------------------------------------------------

def test_injected_client_and_its_exports(make_server, project, fresh_browser):
    server = start(make_server, project)
    html = requests.get(server.url_for("/"), timeout=TIMEOUT).text
    tag = '<script type="module" src="/__web-dev-server__web-socket.js"></script>'
    assert html.count(tag) == 1 and html.index(tag) < html.index("</body>"), html
    assert requests.get(server.url_for("/fragment.html"), timeout=TIMEOUT).text == "<p>just a fragment</p>"
    module = requests.get(server.url_for("/__web-dev-server__web-socket.js"), timeout=TIMEOUT)
    assert module.headers["content-type"].startswith("text/javascript")

    driver = fresh_browser
    open_page(driver, server)
    assert js(driver, "const s = await L.webSocketOpened; return s === L.webSocket && s.readyState === 1") is True
    exports = set(js(driver, "return Object.keys(L)"))
    assert exports >= {"webSocket", "webSocketOpened", "sendMessage", "sendMessageWaitForResponse",
                       "on", "off", "send", "request"}, exports

    # sendMessageWaitForResponse: the message handlers' answer, or their error.
    answer = js(driver, "return await L.sendMessageWaitForResponse({ type: 'q', n: 1 })")
    assert answer == {"echo": {"type": "q", "n": 1, "id": answer["echo"]["id"]}}, answer
    assert isinstance(answer["echo"]["id"], int) and answer["echo"]["id"] > 0
    failed = js(driver, "return await L.sendMessageWaitForResponse({ type: 'fail' })")
    assert failed["thrown"] == "Error" and "nope, on purpose" in failed["message"], failed
    # request: a custom event's answer, or its error.
    assert js(driver, "return await L.request('echo', { a: [1, 'b'] })") == {"a": [1, "b"]}
    assert js(driver, "return await L.request('no-such-handler')") is None
    failed = js(driver, "return await L.request('fail')")
    assert failed["thrown"] == "Error" and "request failed on purpose" in failed["message"], failed
    # sendMessage: a plain message, no answer.
    js(driver, "L.sendMessage({ type: 'fire-and-forget' })")
    wait_until(lambda: "message fire-and-forget" in seen(server), message="the plain message")
    # Bad arguments throw at once.
    assert js(driver, "L.sendMessage({ n: 1 })")["thrown"] == "TypeError"
    assert js(driver, "L.send('connection', 1)")["thrown"] == "TypeError"
    assert js(driver, "L.request('message')")["thrown"] == "TypeError"
    # The page's client errors (the failing handlers) show in its console; nothing else.
    errors = [e["message"] for e in console_errors(driver)]
    assert all("on purpose" in m for m in errors), errors


def test_on_off_send(make_server, project, fresh_browser):
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    control = Peer(server.ws_url)
    js(driver, """
        window.got = [];
        window.fa = (d) => got.push(['a', d]);
        window.fb = (d) => got.push(['b', d]);
        L.on('news', fa); L.on('news', fb);
    """)
    control.eval('ws:send("news", { n = 1 })')
    wait_js(driver, "got.length === 2")
    js(driver, "L.off('news', fa)")
    control.eval('ws:send("news", { n = 2 })')
    control.eval('ws:send("other", 0)')
    wait_js(driver, "got.length === 3")
    time.sleep(0.2)
    assert driver.execute_script("return got") == [["a", {"n": 1}], ["b", {"n": 1}], ["b", {"n": 2}]]
    # send: a custom event for the server's handlers; data defaults to null.
    js(driver, "L.send('rec', { from: 'page' }); L.send('rec');")
    wait_until(lambda: seen(server)[-2:] == ['rec {"from":"page"}', "rec null"], message="the page's events")
    assert console_errors(driver) == []


def test_import_meta_hot(make_server, project, fresh_browser):
    server = start(make_server, project)
    hot = requests.get(server.url_for("/hot.js"), timeout=TIMEOUT).text
    assert hot.endswith(HOT_JS) and "createHotContext" in hot.split(HOT_JS)[0], hot
    plain = requests.get(server.url_for("/plain.js"), timeout=TIMEOUT).text
    assert plain == PLAIN_JS  # a module without import.meta.hot gets no prelude
    driver = fresh_browser
    driver.get(server.url + "/hot.html")
    wait_js(driver, "window.hotLog && window.hotLog.length === 3", message="hot.js got its pong")
    assert driver.execute_script("return window.hotLog") == [
        "hot present", "accept ok", 'pong {"got":{"from":"hot.js"}}']
    assert driver.execute_script("return window.plainLoaded") in ("object", "undefined")
    assert console_errors(driver) == []


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        time.sleep(1.0)
        body = b"not really a png"
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    """A loopback HTTP server that answers after 1 s: a page that loads from it has a late
    `load` event."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_events_before_listeners_are_held_until_load(make_server, project, fresh_browser, slow_server):
    server = start(make_server, project, options="{ early = true }")
    page = ("<!doctype html><html><head><link rel='icon' href='data:,'>"
            "</head><body>"
            "<script type='module'>\n"
            "  import { on } from '/__web-dev-server__web-socket.js';\n"
            "  window.early = [];\n"
            "  addEventListener('load', () => {\n"
            "    window.receivedAtLoad = window.__lunar.received;\n"
            "    on('early', (d) => window.early.push(d.n));\n"
            "  });\n"
            "</script>"
            # An image that takes 1 s delays `load` (and, unlike a stylesheet, not the scripts).
            f"<img src='{slow_server}/slow.png' alt=''></body></html>")
    (server.root / "held.html").write_text(page)
    driver = fresh_browser
    driver.get(server.url + "/held.html")
    wait_js(driver, "window.early && window.early.length === 2", message="the held events")
    assert driver.execute_script("return window.early") == [1, 2]
    # They had arrived before the listener existed: held, not just late.
    assert driver.execute_script("return window.receivedAtLoad") == 2
    time.sleep(0.2)
    assert driver.execute_script("return window.early") == [1, 2]


def test_send_import_and_console_log(make_server, project, fresh_browser):
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    control = Peer(server.ws_url)
    control.eval('ws:sendImport("/virtual-mod.js", { "a", 2, { k = true } })')
    control.eval('ws:sendImport("/virtual-mod.js")')
    control.eval('ws:sendImport("data:text/javascript,window.fromDataUrl = 42")')
    wait_js(driver, "window.imported && window.imported.length === 2 && window.fromDataUrl === 42")
    assert driver.execute_script("return window.imported") == [["a", 2, {"k": True}], []]
    control.eval('ws:sendConsoleLog("from Lua", 7, { deep = { x = 1 } })')
    entry = wait_for_console(driver, '"from Lua" 7', TIMEOUT)
    assert entry["level"] == "INFO", entry
    assert console_errors(driver) == []


def test_import_is_loaded_before_the_next_message(make_server, project, fresh_browser):
    """docs/PROTOCOL.md §5: sendImport(a module that calls on("x")) then send("x") works,
    even after `load` (when nothing is held)."""
    server = start(make_server, project)
    (server.root / "listener.js").write_text(
        "import { on } from '/__web-dev-server__web-socket.js';\n"
        "on('x', (d) => (window.gotX ??= []).push(d));\n"
        "export default (tag) => { window.listenerTag = tag; };\n")
    driver = fresh_browser
    open_page(driver, server)
    wait_js(driver, "document.readyState === 'complete'")
    control = Peer(server.ws_url)
    control.eval('ws:sendImport("/listener.js", { "t1" }) ws:send("x", 1) ws:send("x", 2)')
    wait_js(driver, "window.gotX && window.gotX.length === 2")
    assert driver.execute_script("return [window.gotX, window.listenerTag]") == [[1, 2], "t1"]
    assert console_errors(driver) == []


# --- Reconnecting -----------------------------------------------------------------------------------

def test_restarted_server_reloads_the_page(make_server, project, fresh_browser):
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    boot = driver.execute_script("window.marker = 'before restart'; return window.__lunar.boot")
    server.stop()  # SIGTERM
    assert server.returncode == 0
    again = make_server(server.root, "--no-watch", env={"LUNAR_PLUGIN_PATH": None}, port=server.port)
    wait_js(driver, "window.marker === undefined && window.pageReady === true && !!window.__lunar.boot",
            timeout=8, message="the page reloaded")
    assert driver.execute_script("return window.__lunar.boot") != boot
    assert js(driver, "return await L.request('echo', 'new server')") == "new server"
    assert again.running


def test_leaving_the_page_ends_its_session_at_once(make_server, project, fresh_browser):
    """pagehide sends the bye: the plugins' `disconnect` runs now, not after the resume window."""
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    pid = js(driver, "return await L.request('whoami')")
    driver.get("about:blank")
    wait_until(lambda: f"disconnect {pid}" in seen(server), timeout=2, message="disconnect after leaving")
    assert not any(x.startswith("message lunar:bye") for x in seen(server))


def _drop_socket(driver):
    """Closes the page's socket from the page (not through pagehide): the client takes it
    for a drop and reconnects."""
    js(driver, "window.__lunar.webSocket.close(); window.droppedSocket = window.__lunar.webSocket;")


def test_dropped_socket_gets_what_was_sent_meanwhile(make_server, project, fresh_browser):
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    control = Peer(server.ws_url)
    control.eval('for i = 1, 3 do ws:send("tick", i) end')
    wait_js(driver, "ticks.length === 3")
    pid = js(driver, "return await L.request('whoami')")

    _drop_socket(driver)
    control.eval('for i = 4, 10 do ws:send("tick", i) end')
    wait_js(driver, "ticks.length >= 10 && window.__lunar.webSocket !== window.droppedSocket",
            timeout=TIMEOUT, message="the ticks sent while the socket was down")
    control.eval('ws:send("tick", 11)')
    wait_js(driver, "ticks.length >= 11")
    time.sleep(0.3)
    assert driver.execute_script("return ticks") == list(range(1, 12))
    # The same client for the plugins: no new connection, no disconnect.
    assert js(driver, "return await L.request('whoami')") == pid
    log = seen(server)
    assert log.count(f"connection {pid}") == 1 and f"disconnect {pid}" not in log, log

    # A second drop works the same.
    _drop_socket(driver)
    control.eval('for i = 12, 14 do ws:send("tick", i) end')
    wait_js(driver, "ticks.length >= 14 && window.__lunar.webSocket !== window.droppedSocket")
    time.sleep(0.3)
    assert driver.execute_script("return ticks") == list(range(1, 15))
    assert console_errors(driver) == []


def test_dropped_socket_of_a_page_that_had_received_nothing(make_server, project, fresh_browser):
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    assert driver.execute_script("return window.__lunar.received") == 0
    control = Peer(server.ws_url)
    _drop_socket(driver)
    control.eval('for i = 1, 5 do ws:send("tick", i) end')
    wait_js(driver, "ticks.length >= 5 && window.__lunar.webSocket !== window.droppedSocket")
    time.sleep(0.3)
    assert driver.execute_script("return ticks") == [1, 2, 3, 4, 5]
    assert driver.execute_script("return window.__lunar.received") == 5


def test_messages_sent_while_disconnected_are_delivered(make_server, project, fresh_browser):
    server = start(make_server, project)
    driver = fresh_browser
    open_page(driver, server)
    _drop_socket(driver)
    answer = js(driver, """
        L.send('rec', 'queued 1');
        L.sendMessage({ type: 'queued-plain' });
        L.send('rec', 'queued 2');
        const answer = L.request('echo', 'queued request');
        if (window.__lunar.webSocket.readyState === WebSocket.OPEN) return 'socket still open?';
        return await answer;
    """)
    assert answer == "queued request"
    log = seen(server)
    queued = [x for x in log if x.startswith("rec ") or x == "message queued-plain"]
    assert queued == ['rec "queued 1"', "message queued-plain", 'rec "queued 2"'], log
    assert console_errors(driver) == []
