"""Watch mode (SPEC §3 `fileChanged`, §5 watching; ARCHITECTURE "Watching and reloading"):
real files in a temporary project, the real lunar binary with watch ON, real headless
Chromium (or a raw WebSocket client on /wds where counting messages is the point).

- A changed served file reloads the pages (bundled live-reload); a changed stylesheet is
  swapped in place; `fileChanged` sees every change (path, file, kind) and may take it over.
- A plugin edit, an edit of a module it `require`s, or a config edit reloads the plugins,
  not the pages: the page's WebSocket, its rooms and `client.data` survive; a broken edit
  keeps the previous plugins and says why (file:line) in the terminal and in the page.
- A burst of writes is one reload; `.git/`, `node_modules/` and `ignore` globs are not
  watched; folders made after start are; `--no-watch` / `watch = false` turn it all off.

Timing: the watcher waits for 30 ms of quiet; "nothing happened" is checked after SETTLE
(0.6 s), and always next to a positive control where a stray late message would show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from lunar_harness import wait_for_console

HTTP_TIMEOUT = 5
SETTLE = 0.6  # s to wait before saying "nothing happened" (the window is 30 ms)
RELOAD_MARK = "location.reload()"


# -- helpers --------------------------------------------------------------------------------

def serve_watching(make_server, root, *args):
    """A server on `root` with watch on (the default), LUNAR_PLUGIN_PATH cleared. The watcher
    starts right after the banner; give it a moment to set up its inotify watches."""
    server = make_server(root, *args, env={"LUNAR_PLUGIN_PATH": None})
    server.wait_for_output("Lunar is serving")
    time.sleep(0.2)
    return server


def get(server, path):
    return requests.get(server.url_for(path), timeout=HTTP_TIMEOUT)


def wait_until(test, timeout, what):
    """Polls test() (exceptions count as "not yet") until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = test()
            if value:
                return value
        except Exception as e:  # a page mid-navigation, a server mid-reload
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}"
                                 + (f" (last error: {last!r})" if last else ""))
        time.sleep(0.03)


def wait_for_body(server, path, body, timeout=3.0):
    """Polls GET path until it answers `body`; returns the seconds it took."""
    start = time.monotonic()
    seen = []

    def check():
        text = get(server, path).text
        if not seen or seen[-1] != text:
            seen.append(text)
        return text == body

    try:
        wait_until(check, timeout, f"GET {path} to answer {body!r}")
    except AssertionError as e:
        raise AssertionError(f"{e}; answers seen: {seen!r}\n--- server output ---\n"
                             f"{server.output()}") from None
    return time.monotonic() - start


def write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def page_ready(driver):
    return driver.execute_script(
        "return !!(window.__lunar && window.__lunar.boot !== undefined"
        " && window.__lunar.webSocket && window.__lunar.webSocket.readyState === 1"
        " && document.readyState === 'complete')")


def open_page(driver, server, path="/"):
    """Loads the page, waits until its WebSocket is open and greeted (so the server knows the
    page), then sets window.__marker = 1: a reload loses it, a stylesheet swap does not."""
    driver.get(server.url_for(path))
    wait_until(lambda: page_ready(driver), 10, f"{path}'s WebSocket to open")
    driver.execute_script("window.__marker = 1; window.__ws0 = window.__lunar.webSocket;")


def marker(driver):
    return driver.execute_script("return window.__marker === undefined ? null : window.__marker")


def wait_for_reload(driver, timeout=5.0):
    """Waits until the page has reloaded (its marker is gone) and its WebSocket is open again."""
    wait_until(lambda: marker(driver) is None and page_ready(driver), timeout,
               "the page to reload (window.__marker to disappear)")


def request_event(driver, event, data=None):
    """The page's __lunar.request(event, data): its response, or {"error": message}."""
    return driver.execute_async_script(
        "const [event, data, done] = arguments;"
        "window.__lunar.request(event, data).then((r) => done({ok: r}),"
        " (e) => done({error: String(e && e.message || e)}));", event, data)


class WsListener:
    """A raw WebSocket client on /wds (no session: a plain client) that records every text
    message it receives, with the time it arrived."""

    def __init__(self, server):
        from websockets.sync.client import connect
        self.messages = []  # (monotonic time, text)
        # entered as a context manager (websockets >= 17.1 warns otherwise); close() ends it
        self.ws = connect(server.ws_url, open_timeout=5, max_size=None).__enter__()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        time.sleep(0.1)  # let the server register the client

    def _run(self):
        try:
            for message in self.ws:
                if isinstance(message, str):
                    with self.lock:
                        self.messages.append((time.monotonic(), message))
        except Exception:
            pass

    def imports(self):
        out = []
        with self.lock:
            for _, text in self.messages:
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("type") == "import":
                    out.append(message["data"])
        return out

    def reloads(self):
        return [m for m in self.imports() if RELOAD_MARK in m.get("importPath", "")]

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


@pytest.fixture
def listeners():
    made = []

    def _make(server):
        listener = WsListener(server)
        made.append(listener)
        return listener

    yield _make
    for listener in made:
        listener.close()


# A plugin that records every fileChanged event and serves them at /__events as JSON.
# Paths in CLAIM are taken over (fileChanged returns true: no reload).
def recorder(claim=(), name="recorder", endpoint="/__events"):
    claimed = ", ".join(f'["{p}"] = true' for p in claim)
    return f"""local events = {{}}
local claim = {{ {claimed} }}
return {{
  name = "{name}",
  fileChanged = function(event)
    events[#events + 1] = {{ path = event.path, file = event.file, kind = event.kind }}
    if claim[event.path] then return true end
  end,
  serve = function(ctx)
    if ctx.path == "{endpoint}" then
      return {{ body = json.encode(json.array(events)), type = "json" }}
    end
  end,
}}
"""


def events(server, endpoint="/__events"):
    return get(server, endpoint).json()


def wait_for_events(server, predicate, what, timeout=3.0, endpoint="/__events"):
    seen = []

    def check():
        seen[:] = [events(server, endpoint)]
        return predicate(seen[0])

    try:
        wait_until(check, timeout, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; fileChanged saw: {seen[0] if seen else None!r}") from None
    return seen[0]


PAGE = """<!doctype html>
<html>
<head><title>watch</title>{head}</head>
<body>
<h1 id="title">{title}</h1>
<script type="module" src="/main.js"></script>
</body>
</html>
"""


def page(title="one", head=""):
    return PAGE.format(title=title, head=head)


# -- 1-3: served files reload the pages, stylesheets are swapped ----------------------------

@pytest.mark.browser
def test_js_change_reloads_page(make_server, project, fresh_browser):
    root = project({"index.html": page(), "main.js": 'console.log("main v1");\n'})
    server = serve_watching(make_server, root)
    driver = fresh_browser
    open_page(driver, server)
    wait_for_console(driver, "main v1")

    write(root / "main.js", 'console.log("main v2");\n')
    wait_for_reload(driver)
    wait_for_console(driver, "main v2")


@pytest.mark.browser
def test_css_change_swaps_stylesheet_without_reload(make_server, project, fresh_browser):
    root = project({
        "index.html": page(head='<link rel="stylesheet" href="/style.css">'),
        "main.js": "",
        "style.css": "#title { color: rgb(255, 0, 0); }\n",
    })
    server = serve_watching(make_server, root)
    driver = fresh_browser
    open_page(driver, server)
    color = "return getComputedStyle(document.getElementById('title')).color"
    assert driver.execute_script(color) == "rgb(255, 0, 0)"

    write(root / "style.css", "#title { color: rgb(0, 0, 255); }\n")
    wait_until(lambda: driver.execute_script(color) == "rgb(0, 0, 255)", 5,
               "the new stylesheet to apply")
    assert marker(driver) == 1, "the page reloaded: a changed stylesheet should be swapped"
    assert driver.execute_script("return window.__lunar.webSocket === window.__ws0")
    # The old <link> goes once the new one loaded: one stylesheet link, not two.
    wait_until(lambda: driver.execute_script(
        "return document.querySelectorAll('link[rel=stylesheet]').length") == 1, 3,
        "the old <link> to be removed")
    time.sleep(0.3)
    assert marker(driver) == 1, "the page reloaded late after the stylesheet swap"


@pytest.mark.browser
def test_html_change_reloads_and_events_reach_file_changed(make_server, project, fresh_browser):
    root = project({
        "index.html": page("one"),
        "main.js": "",
        "old.txt": "bye",
        "sub/deep.js": "export default 1;\n",
        "a b.txt": "space",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    driver = fresh_browser
    open_page(driver, server)
    assert driver.find_element("id", "title").text == "one"

    write(root / "index.html", page("two"))
    wait_for_reload(driver)
    wait_until(lambda: driver.find_element("id", "title").text == "two", 5, "the new HTML")

    (root / "new.txt").write_text("hi")
    (root / "old.txt").unlink()
    (root / "sub" / "deep.js").write_text("export default 2;\n")
    (root / "a b.txt").write_text("still a space")
    expected = [
        {"path": "/index.html", "file": str(root / "index.html"), "kind": "change"},
        {"path": "/new.txt", "file": str(root / "new.txt"), "kind": "add"},
        {"path": "/old.txt", "file": str(root / "old.txt"), "kind": "unlink"},
        {"path": "/sub/deep.js", "file": str(root / "sub" / "deep.js"), "kind": "change"},
        # event.path is the decoded URL path, as ctx.path would be
        {"path": "/a b.txt", "file": str(root / "a b.txt"), "kind": "change"},
    ]
    seen = wait_for_events(server, lambda evs: all(e in evs for e in expected),
                           "fileChanged to see the change, add, unlink")
    assert sorted(seen, key=json.dumps) == sorted(expected, key=json.dumps), \
        "one event per change, nothing else (the config and plugin files are not page changes)"


# -- 4: fileChanged takes over ----------------------------------------------------------------

@pytest.mark.browser
def test_file_changed_true_suppresses_reload(make_server, project, fresh_browser):
    root = project({
        "index.html": page(),
        "main.js": 'import "./claimed.js";\n',
        "claimed.js": "window.__claimed = 1;\n",
        "other.js": "",
        "plugins/recorder.lua": recorder(claim=["/claimed.js"]),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    driver = fresh_browser
    open_page(driver, server)

    write(root / "claimed.js", "window.__claimed = 2;\n")
    wait_for_events(server, lambda evs: {"path": "/claimed.js", "file": str(root / "claimed.js"),
                                         "kind": "change"} in evs, "fileChanged to see /claimed.js")
    time.sleep(SETTLE)
    assert marker(driver) == 1, "the page reloaded although fileChanged returned true"

    # The control: an unclaimed change does reload.
    write(root / "other.js", "// changed\n")
    wait_for_reload(driver)


def test_claimed_and_unclaimed_in_one_burst(make_server, project, listeners):
    """In one batch, claimed changes are skipped and the rest reload once."""
    root = project({
        "index.html": page(), "main.js": "", "claimed.js": "", "other.js": "",
        "plugins/recorder.lua": recorder(claim=["/claimed.js"]),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    (root / "claimed.js").write_text("1")
    (root / "other.js").write_text("1")
    wait_until(lambda: ws.reloads(), 3, "a reload")
    time.sleep(SETTLE)
    assert len(ws.reloads()) == 1, ws.imports()
    kinds = sorted((e["path"], e["kind"]) for e in events(server))
    assert kinds == [("/claimed.js", "change"), ("/other.js", "change")]


def test_file_changed_hooks_run_in_order_until_one_claims(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "", "mine.js": "", "both.js": "",
        "plugins/first.lua": recorder(claim=["/mine.js"], name="first", endpoint="/first"),
        "plugins/second.lua": recorder(name="second", endpoint="/second"),
        "lunar.config.lua": 'return { plugins = { "first", "second" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    (root / "mine.js").write_text("1")
    wait_for_events(server, lambda evs: len(evs) == 1, "the first plugin to see /mine.js",
                    endpoint="/first")
    time.sleep(SETTLE)
    assert events(server, "/second") == [], "a claimed change went on to the next plugin"
    assert ws.reloads() == []
    (root / "both.js").write_text("1")
    wait_until(lambda: [e["path"] for e in events(server, "/second")] == ["/both.js"], 3,
               "the second plugin to see /both.js")
    wait_until(lambda: ws.reloads(), 3, "the reload")


def test_file_changed_error_is_reported_and_reload_goes_on(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/bad.lua": 'return { name = "bad", fileChanged = function(event)\n'
                           '  error("cannot handle " .. event.path)\n'
                           'end }\n',
        "lunar.config.lua": 'return { plugins = { "bad" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    (root / "main.js").write_text("1")
    server.wait_for_output("bad.lua:2", timeout=3)
    assert "cannot handle /main.js" in server.output()
    wait_until(lambda: ws.reloads(), 3, "the reload despite the failing hook")
    assert server.running


# -- 5-6: plugin edits reload the plugins, not the pages -------------------------------------

VERSION_PLUGIN_V1 = """return {
  name = "ver",
  injectWebSocket = true,
  serverStart = function(ctx)
    ctx.webSockets:on("remember", function(data, client)
      client.data.n = data.n
      client:join("room-" .. data.n)
      return "stored"
    end)
  end,
  serve = function(ctx)
    if ctx.path == "/version" then return "v1" end
  end,
}
"""


def version_plugin(version):
    return f"""return {{
  name = "ver",
  injectWebSocket = true,
  serverStart = function(ctx)
    ctx.webSockets:on("probe", function(data, client)
      return {{ n = client.data.n, rooms = client:rooms(), version = "{version}" }}
    end)
  end,
  serve = function(ctx)
    if ctx.path == "/version" then return "{version}" end
  end,
}}
"""


BROKEN_PLUGIN = """return {
  name = "ver",
  serve = function(ctx) if then end,
}
"""  # line 3: a syntax error


def version_project(project, plugin_source):
    return project({
        "index.html": page(),
        "main.js": "",
        "plugins/ver.lua": plugin_source,
        "lunar.config.lua": 'return { plugins = { "ver" } }\n',
    })


@pytest.mark.browser
def test_plugin_edit_reloads_plugin_and_keeps_websocket(make_server, project, fresh_browser,
                                                         report_summary):
    root = version_project(project, VERSION_PLUGIN_V1)
    server = serve_watching(make_server, root)
    driver = fresh_browser
    assert get(server, "/version").text == "v1"
    open_page(driver, server)
    assert request_event(driver, "remember", {"n": 42}) == {"ok": "stored"}
    session = driver.execute_script("return window.__lunar.sessionId")

    write(root / "plugins" / "ver.lua", version_plugin("v2"))
    took = wait_for_body(server, "/version", "v2", timeout=3)
    report_summary(f"watch: plugin edit -> new plugin answering: {took * 1000:.0f} ms")
    assert took < 1.5, f"the edited plugin answered only after {took:.2f} s"

    probe = request_event(driver, "probe")
    assert probe == {"ok": {"n": 42, "rooms": ["room-42"], "version": "v2"}}, \
        "client.data and rooms should survive a plugin reload"
    # The old plugin's handlers went with it.
    assert request_event(driver, "remember", {"n": 7}) == {"ok": None}
    time.sleep(0.3)
    assert marker(driver) == 1, "the page reloaded: a plugin edit is not a page change"
    assert driver.execute_script(
        "return window.__lunar.webSocket === window.__ws0 && window.__ws0.readyState === 1"), \
        "the page's WebSocket was replaced or closed by the plugin reload"
    assert driver.execute_script("return window.__lunar.sessionId") == session
    assert "plugins reloaded" in server.output()


@pytest.mark.browser
def test_broken_plugin_edit_keeps_old_plugin_and_reports(make_server, project, fresh_browser):
    root = version_project(project, version_plugin("v2"))
    server = serve_watching(make_server, root)
    driver = fresh_browser
    open_page(driver, server)
    assert get(server, "/version").text == "v2"

    write(root / "plugins" / "ver.lua", BROKEN_PLUGIN)
    entry = wait_for_console(driver, lambda e: "ver.lua:3" in e.get("message", ""), timeout=5)
    assert entry["level"] == "SEVERE", entry  # console.error
    out = server.wait_for_output("ver.lua:3", timeout=3)
    assert "Fatal error" not in out, out
    assert get(server, "/version").text == "v2", "the previous plugin should keep serving"
    assert request_event(driver, "probe")["ok"]["version"] == "v2"
    assert marker(driver) == 1, "a broken plugin edit reloaded the page"
    assert driver.execute_script("return window.__lunar.webSocket === window.__ws0")

    # Fixing it reloads the plugins again.
    write(root / "plugins" / "ver.lua", version_plugin("v3"))
    wait_for_body(server, "/version", "v3")
    assert marker(driver) == 1


def test_plugin_whose_server_start_fails_on_reload_keeps_old_one(make_server, project):
    """A reload whose new serverStart raises must not leave a half-started set in place: the
    terminal says "the previous ones keep running", so they must."""
    root = version_project(project, VERSION_PLUGIN_V1)
    server = serve_watching(make_server, root)
    assert get(server, "/version").text == "v1"
    write(root / "plugins" / "ver.lua", """return {
  name = "ver",
  serverStart = function(ctx)
    error("cannot start v2")
  end,
  serve = function(ctx)
    if ctx.path == "/version" then return "v2" end
  end,
}
""")
    server.wait_for_output("cannot start v2", timeout=3)
    time.sleep(0.2)
    assert get(server, "/version").text == "v1", \
        f"the new plugin's serverStart failed, yet the old one stopped\n{server.output()}"


# -- 7: required modules, the config, plugins outside the root ------------------------------

def test_required_module_edit_reloads_plugins(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/greeter/init.lua": 'local msg = require("msg")\n'
                                    'local deep = require("lib.deep")\n'
                                    'return { name = "greeter", serve = function(ctx)\n'
                                    '  if ctx.path == "/msg" then return msg .. "+" .. deep end\n'
                                    'end }\n',
        "plugins/greeter/msg.lua": 'return "m1"\n',
        "plugins/greeter/lib/deep.lua": 'return "d1"\n',
        "lunar.config.lua": 'return { plugins = { "greeter" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    assert get(server, "/msg").text == "m1+d1"
    write(root / "plugins" / "greeter" / "msg.lua", 'return "m2"\n')
    wait_for_body(server, "/msg", "m2+d1")
    # Saved the way many editors do: a temporary file renamed over the module.
    tmp = root / "plugins" / "greeter" / "lib" / ".deep.lua.tmp"
    write(tmp, 'return "d2"\n')
    os.replace(tmp, root / "plugins" / "greeter" / "lib" / "deep.lua")
    wait_for_body(server, "/msg", "m2+d2")
    time.sleep(0.3)
    assert ws.reloads() == [], "editing plugin code reloaded the pages"


def test_config_edit_reloads_plugins(make_server, project):
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/hello.lua": 'return function(options) return { name = "hello", serve = function(ctx)\n'
                             '  if ctx.path == "/greeting" then return options.greeting end\n'
                             'end } end\n',
        "plugins/extra.lua": 'return { name = "extra", serve = function(ctx)\n'
                             '  if ctx.path == "/extra" then return "e1" end\n'
                             'end }\n',
        "lunar.config.lua": 'return { plugins = { { "hello", { greeting = "hello" } } } }\n',
    })
    server = serve_watching(make_server, root)
    assert get(server, "/greeting").text == "hello"
    assert get(server, "/extra").status_code == 404

    write(root / "lunar.config.lua",
          'return { plugins = { { "hello", { greeting = "bonjour" } }, "extra" } }\n')
    wait_for_body(server, "/greeting", "bonjour")
    assert get(server, "/extra").text == "e1"

    # The plugin the config added is watched too.
    write(root / "plugins" / "extra.lua", 'return { name = "extra", serve = function(ctx)\n'
                                          '  if ctx.path == "/extra" then return "e2" end\n'
                                          'end }\n')
    wait_for_body(server, "/extra", "e2")

    # A broken config keeps the running plugins and names the file and line.
    before = len(server.output())
    write(root / "lunar.config.lua", 'return {\n  plugins = { "hello" \n  oops\n}\n')
    server.wait_for_output(lambda out: re.search(r"lunar\.config\.lua:\d+", out[before:]),
                           timeout=3)
    time.sleep(0.2)
    assert get(server, "/greeting").text == "bonjour"
    assert get(server, "/extra").text == "e2"


def far_plugin(answer):
    """A plugin that answers GET /far with `answer`."""
    return ('return { name = "far", serve = function(ctx)\n'
            f'  if ctx.path == "/far" then return "{answer}" end end }}\n')


def test_plugin_outside_root_is_watched(make_server, project, tmp_path):
    root = project({"index.html": page(), "main.js": ""})
    outside = tmp_path / "elsewhere"
    write(outside / "far.lua", far_plugin("f1"))
    server = serve_watching(make_server, root, "--plugin", str(outside / "far.lua"))
    assert get(server, "/far").text == "f1"
    write(outside / "far.lua", far_plugin("f2"))
    wait_for_body(server, "/far", "f2")


def test_plugin_outside_root_added_by_config_edit_is_watched(make_server, project, tmp_path):
    """A plugin that a config edit brings in from a folder outside the root (not watched at
    start): editing it reloads the plugins, like any plugin file."""
    root = project({
        "index.html": page(), "main.js": "",
        "lunar.config.lua": 'return { plugins = { } }\n',
    })
    shared = tmp_path / "shared-plugins"
    write(shared / "far.lua", far_plugin("f1"))
    server = serve_watching(make_server, root)
    write(root / "lunar.config.lua", f'return {{ plugins = {{ "{shared}/far.lua" }} }}\n')
    wait_for_body(server, "/far", "f1")
    write(shared / "far.lua", far_plugin("f2"))
    wait_for_body(server, "/far", "f2")


def test_config_edit_adding_plugin_paths_is_honoured(make_server, project, tmp_path):
    """`pluginPaths` added by a config edit are searched when the plugins reload, as they
    would be at start."""
    root = project({
        "index.html": page(), "main.js": "",
        "lunar.config.lua": 'return { plugins = { } }\n',
    })
    shared = tmp_path / "shared-plugins"
    write(shared / "far.lua", far_plugin("f1"))
    server = serve_watching(make_server, root)
    write(root / "lunar.config.lua",
          f'return {{ pluginPaths = {{ "{shared}" }}, plugins = {{ "far" }} }}\n')
    wait_for_body(server, "/far", "f1")


def test_config_outside_root_is_watched(make_server, project, tmp_path):
    """`--config FILE` outside the root, in a folder of its own (its plugin is found by name
    in ROOT/plugins): editing it reloads the plugins too."""
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/hello.lua": 'return function(options) return { name = "hello", serve = function(ctx)\n'
                             '  if ctx.path == "/greeting" then return options.greeting end\n'
                             'end } end\n',
    })
    conf = tmp_path / "conf"
    write(conf / "lunar.config.lua", 'return { plugins = { { "hello", { greeting = "hello" } } } }\n')
    server = serve_watching(make_server, root, "--config", str(conf / "lunar.config.lua"))
    assert get(server, "/greeting").text == "hello"
    write(conf / "lunar.config.lua", 'return { plugins = { { "hello", { greeting = "bonjour" } } } }\n')
    wait_for_body(server, "/greeting", "bonjour")


def test_config_edit_reloads_plugins_when_root_is_a_symlink(make_server, project, tmp_path):
    """ROOT given through a symbolic link (as /tmp is on macOS, or a linked home folder): the
    config is still plugin code, not a served file that reloads the pages."""
    real = project({
        "index.html": page(), "main.js": "",
        "plugins/recorder.lua": recorder(),
        "plugins/hello.lua": 'return function(options) return { name = "hello", serve = function(ctx)\n'
                             '  if ctx.path == "/greeting" then return options.greeting end\n'
                             'end } end\n',
        "lunar.config.lua": 'return { plugins = { "recorder", { "hello", { greeting = "hello" } } } }\n',
    })
    link = tmp_path / "linked-project"
    link.symlink_to(real, target_is_directory=True)
    server = serve_watching(make_server, link)
    assert get(server, "/greeting").text == "hello"
    write(real / "lunar.config.lua",
          'return { plugins = { "recorder", { "hello", { greeting = "bonjour" } } } }\n')
    wait_for_body(server, "/greeting", "bonjour")
    time.sleep(0.2)
    assert [e for e in events(server) if e["path"] == "/lunar.config.lua"] == [], \
        "the config edit was reported as a page change"


def test_config_edit_gives_plugins_the_new_config(make_server, project):
    """After a config edit, the reloaded plugins' serverStart sees the edited config in
    ctx.config, not the one read at start."""
    plugin = ('local seen\nreturn { name = "cfg", serverStart = function(ctx) seen = ctx.config.timeout end,\n'
              '  serve = function(ctx) if ctx.path == "/cfg" then return tostring(seen) end end }\n')
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/cfg.lua": plugin,
        "lunar.config.lua": 'return { timeout = 1000, plugins = { "cfg" } }\n',
    })
    server = serve_watching(make_server, root)
    assert get(server, "/cfg").text == "1000"
    write(root / "lunar.config.lua", 'return { timeout = 2000, plugins = { "cfg" } }\n')
    server.wait_for_output("plugins reloaded", timeout=3)
    time.sleep(0.1)
    assert get(server, "/cfg").text == "2000", "ctx.config is the config read at start"


def test_reloaded_plugin_gets_the_real_url(lunar_bin, project, tmp_path):
    """ctx.url in serverStart after a plugin reload is the URL the server really listens on
    (here --port 0: the kernel picks the port)."""
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/url.lua": 'local url\nreturn { name = "url", serverStart = function(ctx) url = ctx.url end,\n'
                           '  serve = function(ctx) if ctx.path == "/url" then return "a " .. url end end }\n',
        "lunar.config.lua": 'return { plugins = { "url" } }\n',
    })
    log = tmp_path / "url.log"
    env = dict(os.environ)
    env.pop("LUNAR_PLUGIN_PATH", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(lunar_bin), str(root), "--port", "0"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    try:
        banner = wait_until(lambda: re.search(r"Lunar is serving (http://\S+/)",
                                              log.read_text(errors="replace")), 15, "the banner")
        url = banner.group(1)
        time.sleep(0.2)
        assert requests.get(url + "url", timeout=HTTP_TIMEOUT).text == "a " + url
        write(root / "plugins" / "url.lua",
              'local url\nreturn { name = "url", serverStart = function(ctx) url = ctx.url end,\n'
              '  serve = function(ctx) if ctx.path == "/url" then return "b " .. url end end }\n')
        text = wait_until(lambda: (lambda t: t.startswith("b ") and t)(
            requests.get(url + "url", timeout=HTTP_TIMEOUT).text), 3, "the reloaded plugin")
        assert text == "b " + url, "ctx.url after a plugin reload is not the server's URL"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 8: a burst is one reload -----------------------------------------------------------------

def test_burst_of_200_files_is_one_reload(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    existing = root / "gen"
    existing.mkdir()
    for i in range(100):
        (existing / f"old{i}.js").write_text("0")
    server = serve_watching(make_server, root)
    ws = listeners(server)

    # 100 changed files and 100 new ones (in a folder made during the burst), as fast as a
    # build tool writes them.
    (root / "out").mkdir()
    for i in range(100):
        (existing / f"old{i}.js").write_text("1")
        (root / "out" / f"new{i}.js").write_text("1")
    wait_until(lambda: ws.reloads(), 5, "the reload")
    time.sleep(SETTLE + 0.4)
    assert len(ws.reloads()) == 1, f"{len(ws.reloads())} reloads for one burst"
    seen = events(server)
    assert len(seen) == 200, f"fileChanged got {len(seen)} events for 200 files"
    assert sum(e["kind"] == "change" for e in seen) == 100
    assert sum(e["kind"] == "add" for e in seen) == 100


@pytest.mark.browser
def test_burst_reloads_a_real_page_once(make_server, project, fresh_browser):
    root = project({
        "index.html": page(),
        "main.js": "sessionStorage.reloads = String(Number(sessionStorage.reloads || 0) + 1);\n",
    })
    server = serve_watching(make_server, root)
    driver = fresh_browser
    open_page(driver, server)
    assert driver.execute_script("return sessionStorage.reloads") == "1"
    for i in range(200):
        (root / f"f{i}.js").write_text(str(i))
    wait_for_reload(driver)
    time.sleep(SETTLE + 0.4)
    wait_until(lambda: page_ready(driver), 5, "the page to settle")
    assert driver.execute_script("return sessionStorage.reloads") == "2", \
        "200 files written in a burst should reload the page once"


def test_atomic_save_is_one_change(make_server, project, listeners):
    """Editors that save by writing a temporary file and renaming it over the original: one
    `change` of the original, no add/unlink of the temporary file."""
    root = project({
        "index.html": page(), "main.js": "1",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    tmp = root / ".main.js.swp-123"
    tmp.write_text("2")
    os.replace(tmp, root / "main.js")
    wait_until(lambda: ws.reloads(), 3, "the reload")
    time.sleep(SETTLE)
    assert events(server) == [{"path": "/main.js", "file": str(root / "main.js"), "kind": "change"}]
    assert len(ws.reloads()) == 1


def test_busy_file_does_not_hold_back_other_changes(make_server, project, listeners):
    """A file written every few ms (here one a plugin takes over, e.g. a data file it
    streams) must not postpone every other change for as long as it keeps being written:
    the quiet window coalesces bursts, it should not starve the rest."""
    root = project({
        "index.html": page(), "main.js": "", "busy.json": "0",
        "plugins/recorder.lua": recorder(claim=["/busy.json"]),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    # A process of its own, so that the test's threads do not make gaps in the writes. (A
    # stall of 30 ms anywhere, e.g. on a loaded machine, lets the current watcher flush:
    # then this test can pass by luck; it cannot fail against a watcher that bounds the wait.)
    busy = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    with open(sys.argv[1], 'w') as f: f.write(str(i))\n"
        "    time.sleep(0.005)  # well inside the 30 ms window\n"), str(root / "busy.json")])
    try:
        time.sleep(0.3)
        (root / "main.js").write_text("changed")
        written = time.monotonic()
        deadline = written + 3.0
        while not ws.reloads() and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.monotonic() - written
    finally:
        busy.kill()
        busy.wait()
    assert ws.reloads(), "no reload within 3 s while another file was being written"
    assert took < 0.5, f"the reload came {took:.2f} s after the write"


# -- 9: what is watched -------------------------------------------------------------------------

def test_ignored_paths_are_not_watched_and_new_folders_are(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "",
        "dist/bundle.js": "0",
        ".git/HEAD": "ref: refs/heads/main\n",
        "node_modules/pkg/index.js": "0",
        "lib/node_modules/inner/index.js": "0",
        "logs/app.log": "",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { ignore = { "dist/**", "*.log" }, plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)

    (root / "dist" / "bundle.js").write_text("1")
    (root / "dist" / "more" / "deep").mkdir(parents=True)
    (root / "dist" / "more" / "deep" / "x.js").write_text("1")
    (root / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    (root / ".git" / "objects").mkdir()
    (root / ".git" / "objects" / "ab").write_text("x")
    (root / "node_modules" / "pkg" / "index.js").write_text("1")
    (root / "node_modules" / "new-pkg").mkdir()
    (root / "node_modules" / "new-pkg" / "index.js").write_text("1")
    (root / "lib" / "node_modules" / "inner" / "index.js").write_text("1")
    (root / "logs" / "app.log").write_text("line\n")
    (root / "other.log").write_text("line\n")
    time.sleep(SETTLE)
    assert ws.imports() == [], "a change in an ignored path reloaded the pages"
    assert events(server) == []

    # A folder made after start is watched, files written into it at once included.
    (root / "fresh" / "deeper").mkdir(parents=True)
    (root / "fresh" / "deeper" / "x.js").write_text("1")
    wait_until(lambda: ws.reloads(), 3, "a reload for a file in a new folder")
    time.sleep(SETTLE)
    # ...and stays watched.
    (root / "fresh" / "deeper" / "x.js").write_text("2")
    wait_until(lambda: len(ws.reloads()) == 2, 3, "a second reload")
    assert [(e["path"], e["kind"]) for e in events(server)] == [
        ("/fresh/deeper/x.js", "add"), ("/fresh/deeper/x.js", "change")]


def test_ignored_folder_made_after_start_is_not_watched(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "",
        "lunar.config.lua": 'return { ignore = { "dist/**" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    (root / "dist" / "js").mkdir(parents=True)
    (root / "dist" / "js" / "app.js").write_text("1")
    time.sleep(SETTLE)
    (root / "dist" / "js" / "app.js").write_text("2")
    time.sleep(SETTLE)
    assert ws.imports() == []
    (root / "main.js").write_text("1")  # control
    wait_until(lambda: ws.reloads(), 3, "the control reload")


def test_folder_moved_out_of_root_reports_unlink(make_server, project, listeners, tmp_path):
    """Moving a folder out of the served tree removes its files from it: `unlink` for each,
    and later writes in the moved folder (now outside the root) are not changes."""
    root = project({
        "index.html": page(), "main.js": "",
        "sub/a.js": "1", "sub/b.js": "1",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    away = tmp_path / "away"
    shutil.move(str(root / "sub"), str(away))
    seen = wait_for_events(server, lambda evs: len(evs) >= 2, "unlink events for the moved files")
    assert sorted((e["path"], e["kind"]) for e in seen) == [("/sub/a.js", "unlink"),
                                                           ("/sub/b.js", "unlink")]
    wait_until(lambda: ws.reloads(), 3, "a reload")
    time.sleep(SETTLE)
    before = (len(events(server)), len(ws.reloads()))
    (away / "a.js").write_text("2")
    (away / "c.js").write_text("2")
    time.sleep(SETTLE)
    assert (len(events(server)), len(ws.reloads())) == before, \
        f"a file outside the root was reported: {events(server)}"


def test_deleted_folder_reports_unlink(make_server, project, listeners):
    root = project({
        "index.html": page(), "main.js": "",
        "sub/a.js": "1", "sub/inner/b.js": "1",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    shutil.rmtree(root / "sub")
    seen = wait_for_events(server, lambda evs: len(evs) >= 2, "unlink events")
    assert sorted((e["path"], e["kind"]) for e in seen) == [("/sub/a.js", "unlink"),
                                                           ("/sub/inner/b.js", "unlink")]
    wait_until(lambda: ws.reloads(), 3, "a reload")


def test_folder_renamed_inside_root(make_server, project, listeners):
    """`mv sub renamed`: the files left /sub/ and appeared under /renamed/."""
    root = project({
        "index.html": page(), "main.js": "",
        "sub/a.js": "1",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": 'return { plugins = { "recorder" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    os.rename(root / "sub", root / "renamed")
    wait_until(lambda: ws.reloads(), 3, "a reload")
    time.sleep(SETTLE)
    assert sorted((e["path"], e["kind"]) for e in events(server)) == [
        ("/renamed/a.js", "add"), ("/sub/a.js", "unlink")]
    # The renamed folder is watched under its new name.
    (root / "renamed" / "a.js").write_text("2")
    wait_until(lambda: ("/renamed/a.js", "change") in
               [(e["path"], e["kind"]) for e in events(server)], 3, "a change under /renamed/")


def test_server_log_inside_root_does_not_loop(make_server, project, listeners):
    """`lunar --log-level debug > lunar.log` run in the project folder: the file Lunar's own
    output goes to is not a page change, or each line it logs about a reload causes the
    next reload, for ever."""
    root = project({"index.html": page(), "main.js": ""})
    server = make_server(root, "--log-level", "debug", env={"LUNAR_PLUGIN_PATH": None},
                         log_path=root / "lunar.log")
    server.wait_for_output("Lunar is serving")
    time.sleep(0.2)
    ws = listeners(server)
    (root / "main.js").write_text("1")
    wait_until(lambda: ws.reloads(), 3, "the reload")
    time.sleep(1.0)
    assert len(ws.reloads()) == 1, f"{len(ws.reloads())} reloads in 1 s for one edit"


# -- 10: watching off -------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["--no-watch", "watch = false"])
def test_watch_off(make_server, project, listeners, how):
    config = "watch = true" if how == "--no-watch" else "watch = false"
    root = project({
        "index.html": page(), "main.js": "",
        "plugins/recorder.lua": recorder(),
        "lunar.config.lua": f'return {{ {config}, plugins = {{ "recorder" }} }}\n',
    })
    args = ["--no-watch"] if how == "--no-watch" else []
    server = make_server(root, *args, env={"LUNAR_PLUGIN_PATH": None})
    out = server.wait_for_output("Lunar is serving")
    time.sleep(0.3)
    out = server.output()
    assert "recorder" in out
    assert "live-reload" not in out, f"live-reload loaded with watching off:\n{out}"
    ws = listeners(server)
    (root / "main.js").write_text("changed")
    (root / "new.js").write_text("new")
    time.sleep(SETTLE)
    assert ws.imports() == []
    assert events(server) == []
    # The page gets no client script either: no plugin asked for it.
    assert "__web-dev-server__web-socket.js" not in get(server, "/").text


def test_config_edit_applies_ignore_and_names_what_needs_a_restart(make_server, project, listeners):
    """A config edit applies added `ignore` globs at once; settings that shape the listening
    server (port, hostname, appIndex…) are named in the terminal as needing a restart."""
    root = project({
        "index.html": page(), "main.js": "", "gen/out.js": "0",
        "lunar.config.lua": 'return { ignore = { "*.log" } }\n',
    })
    server = serve_watching(make_server, root)
    ws = listeners(server)
    (root / "gen" / "out.js").write_text("1")  # not ignored yet
    wait_until(lambda: len(ws.reloads()) == 1, 3, "a reload for gen/out.js")

    write(root / "lunar.config.lua", 'return { ignore = { "*.log", "gen/**" }, appIndex = "index.html" }\n')
    server.wait_for_output("restart Lunar to apply it", timeout=3)
    assert "appIndex changed" in server.output()
    time.sleep(SETTLE)
    count = len(ws.reloads())
    (root / "gen" / "out.js").write_text("2")
    time.sleep(SETTLE)
    assert len(ws.reloads()) == count, "a file the edited config ignores reloaded the pages"
    (root / "main.js").write_text("1")  # control
    wait_until(lambda: len(ws.reloads()) == count + 1, 3, "the control reload")
    time.sleep(SETTLE)
    assert len(ws.reloads()) == count + 1, "a late reload: the ignored file's change came through"
