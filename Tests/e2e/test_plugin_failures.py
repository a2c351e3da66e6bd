"""Plugins that fail (SPEC §3, "Every entry into Lua..."): errors, runaway loops and memory
hogs are stopped and reported with the plugin's name, file and line; the server and the
other plugins keep running. Mistakes found at start-up end the run with one clear message
and a non-zero exit status, never a Swift crash."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import requests

from lunar_harness import free_port

TIMEOUT = 5

# What a crash of the Swift side would print; a plugin's mistake must never look like that.
SWIFT_CRASH_MARKS = ("Fatal error", "Stack dump", "Current stack trace", ".swift:", "Illegal instruction",
                     "Segmentation fault", "Swift runtime failure")


def start(make_server, root, *args, env=None):
    full_env = {"LUNAR_PLUGIN_PATH": None}
    full_env.update(env or {})
    return make_server(root, "--no-watch", *args, env=full_env)


def get(server, path, **kw):
    return requests.get(server.url_for(path), timeout=TIMEOUT, **kw)


def line_of(source, needle):
    """The 1-based line of the first line of `source` containing `needle`."""
    for number, line in enumerate(source.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the source")


def has_file_line(text, path, line):
    """True when `text` has PATH:LINE: -- Lua may shorten a long path to "...tail:LINE:", so
    any "...tail" whose tail ends the full path counts (the full path is named elsewhere)."""
    path = str(path)
    for match in re.finditer(r"(\S+):(\d+):", text):
        where, number = match.group(1), int(match.group(2))
        if number != line:
            continue
        if where == path or (where.startswith("...") and path.endswith(where[3:])):
            return True
    return False


def run_to_failure(lunar_bin, root, *args, timeout=10):
    """Runs lunar expecting it to exit by itself; returns (status, stdout, stderr)."""
    cmd = [str(lunar_bin), str(root), "--port", str(free_port()), "--no-watch", *map(str, args)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              env=_env_without_plugin_path(), cwd=str(root))
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"lunar did not exit within {timeout} s: {cmd}\n"
                             f"{(e.stdout or b'').decode()}{(e.stderr or b'').decode()}")
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def _env_without_plugin_path():
    env = dict(os.environ)
    env.pop("LUNAR_PLUGIN_PATH", None)
    return env


def assert_clean_failure(status, out, err, *needles):
    assert status not in (0, None) and status > 0, (status, out, err)
    for needle in needles:
        assert needle in err, f"{needle!r} not in stderr:\n{err}"
    for mark in SWIFT_CRASH_MARKS:
        assert mark not in out + err, f"{mark!r} in the output:\n{out}{err}"
    assert "Lunar is serving" not in out, out


# --- errors in hooks -------------------------------------------------------------------------

BROKEN = '''return { name = "broken", serve = function(ctx)
  if ctx.path == "/boom" then
    local t = nil
    return t.field -- indexing nil
  end
  if ctx.path == "/raise" then
    error("custom failure")
  end
end }
'''

FINE = '''return { name = "fine", serve = function(ctx)
  if ctx.path == "/fine" then return "still fine" end
end }
'''


def test_serve_error_is_500_naming_plugin_file_and_line(make_server, project):
    root = project({
        "static.txt": "static",
        "plugins/broken.lua": BROKEN,
        "plugins/fine.lua": FINE,
        "lunar.config.lua": 'return { plugins = { "broken", "fine" } }',
    })
    server = start(make_server, root)
    plugin_file = str(root / "plugins" / "broken.lua")

    r = get(server, "/boom")
    assert r.status_code == 500
    assert 'plugin "broken"' in r.text, r.text
    assert has_file_line(r.text, plugin_file, line_of(BROKEN, 'indexing nil')), r.text
    assert "serve" in r.text

    r = get(server, "/raise")
    assert r.status_code == 500
    assert has_file_line(r.text, plugin_file, line_of(BROKEN, 'custom failure')), r.text
    assert "custom failure" in r.text

    # The terminal says the same, with a traceback.
    out = server.wait_for_output("custom failure")
    assert 'plugin "broken"' in out
    assert has_file_line(out, plugin_file, line_of(BROKEN, 'indexing nil')), out
    assert "stack traceback" in out
    for mark in SWIFT_CRASH_MARKS:
        assert mark not in out, out

    # The server, a static file and the other plugin all go on working.
    assert get(server, "/static.txt").text == "static"
    assert get(server, "/fine").text == "still fine"
    assert get(server, "/boom").status_code == 500


LOOPING = '''return { name = "looping", serve = function(ctx)
  if ctx.path == "/spin" then
    while true do end -- runaway
  end
  if ctx.path == "/after" then return "recovered" end
end }
'''


def test_runaway_serve_is_stopped_by_timeout(make_server, project):
    root = project({
        "static.txt": "static",
        "plugins/looping.lua": LOOPING,
        "lunar.config.lua": 'return { timeout = 300, plugins = { "looping" } }',
    })
    server = start(make_server, root)
    plugin_file = str(root / "plugins" / "looping.lua")

    result = {}

    def spin():
        t0 = time.monotonic()
        result["response"] = requests.get(server.url_for("/spin"), timeout=TIMEOUT)
        result["elapsed"] = time.monotonic() - t0

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.05)
    # A concurrent request for a static file (which also goes through the serve hook, so it
    # waits for Lua) is answered once the loop is stopped.
    t0 = time.monotonic()
    static = requests.get(server.url_for("/static.txt"), timeout=TIMEOUT)
    static_elapsed = time.monotonic() - t0
    spinner.join(TIMEOUT)
    assert not spinner.is_alive()

    r = result["response"]
    assert r.status_code == 500
    assert 0.25 <= result["elapsed"] <= 2.0, result["elapsed"]
    assert "time budget" in r.text and "300 ms" in r.text, r.text
    assert has_file_line(r.text, plugin_file, line_of(LOOPING, 'runaway')), r.text
    assert 'plugin "looping"' in r.text

    assert (static.status_code, static.text) == (200, "static")
    assert static_elapsed <= 0.3 + 1.0, static_elapsed

    # The same plugin works on its next call.
    assert get(server, "/after").text == "recovered"
    out = server.wait_for_output("time budget")
    assert plugin_file in out


TIMERS = '''local ticks = 0
return { name = "badtimers",
  serverStart = function()
    timer.after(10, function() error("timer exploded") end)
    timer.after(20, function() while true do end end) -- timer loop
    timer.every(20, function() ticks = ticks + 1 end)
  end,
  serve = function(ctx) if ctx.path == "/ticks" then return tostring(ticks) end end,
}
'''


def test_failing_timers_are_stopped_and_server_keeps_serving(make_server, project):
    root = project({
        "static.txt": "static",
        "plugins/badtimers.lua": TIMERS,
        "lunar.config.lua": 'return { timeout = 300, plugins = { "badtimers" } }',
    })
    server = start(make_server, root)
    plugin_file = str(root / "plugins" / "badtimers.lua")
    out = server.wait_for_output(lambda o: "timer exploded" in o and "time budget" in o, timeout=3)
    assert has_file_line(out, plugin_file, line_of(TIMERS, 'timer exploded')), out
    assert has_file_line(out, plugin_file, line_of(TIMERS, 'timer loop')), out
    assert 'plugin "badtimers"' in out
    assert get(server, "/static.txt").text == "static"
    # The plugin's other timer still runs.
    first = int(get(server, "/ticks").text)
    time.sleep(0.15)
    assert int(get(server, "/ticks").text) > first


HOG = '''return { name = "hog", serve = function(ctx)
  if ctx.path == "/hog" then
    local t = {}
    local i = 0
    while true do i = i + 1; t[i] = string.rep("x", 1000) .. i end
  end
  if ctx.path == "/small" then return string.rep("y", 10) end
end }
'''


def test_memory_limit_stops_a_hog(make_server, project):
    root = project({
        "static.txt": "static",
        "plugins/hog.lua": HOG,
        "lunar.config.lua": 'return { memoryLimit = 16777216, plugins = { "hog" } }',
    })
    server = start(make_server, root)
    r = get(server, "/hog")
    assert r.status_code == 500
    assert 'plugin "hog"' in r.text, r.text
    assert "memory" in r.text, r.text
    assert server.running
    assert get(server, "/static.txt").text == "static"
    assert get(server, "/small").text == "y" * 10
    # It can fail again and recover again.
    assert get(server, "/hog").status_code == 500
    assert get(server, "/small").text == "y" * 10


JSON = '''return { name = "jsonbad", serve = function(ctx)
  if ctx.path == "/json" then return json.encode(function() end) end -- encode a function
  if ctx.path == "/json/pcall" then
    local ok, err = pcall(json.encode, { f = function() end })
    return tostring(err)
  end
end }
'''


def test_json_encode_error_names_json_encode(make_server, project):
    root = project({"plugins/jsonbad.lua": JSON,
                    "lunar.config.lua": 'return { plugins = { "jsonbad" } }'})
    server = start(make_server, root)
    plugin_file = str(root / "plugins" / "jsonbad.lua")
    r = get(server, "/json")
    assert r.status_code == 500
    assert has_file_line(r.text, plugin_file, line_of(JSON, 'encode a function')), r.text
    assert "function" in r.text
    assert "json.encode" in r.text, r.text
    assert "json.encode" in get(server, "/json/pcall").text


# --- start-up failures ---------------------------------------------------------------------

def test_dot_instead_of_colon_in_server_start(lunar_bin, project):
    source = ('return { name = "dotted", serverStart = function(ctx)\n'
              '  ctx.webSockets.send("x") -- dot\n'
              'end }\n')
    root = project({"plugins/dotted.lua": source,
                    "lunar.config.lua": 'return { plugins = { "dotted" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    plugin_file = str(root / "plugins" / "dotted.lua")
    assert_clean_failure(status, out, err, plugin_file, "webSockets:send", "colon")
    assert has_file_line(err, plugin_file, 2), err


def test_endless_loop_at_load_time(lunar_bin, project):
    source = 'local x = 0\nwhile true do x = x + 1 end\nreturn { name = "never" }\n'
    root = project({"plugins/never.lua": source,
                    "lunar.config.lua": 'return { timeout = 300, plugins = { "never" } }'})
    t0 = time.monotonic()
    status, out, err = run_to_failure(lunar_bin, root)
    assert time.monotonic() - t0 < 3
    plugin_file = str(root / "plugins" / "never.lua")
    assert_clean_failure(status, out, err, "time budget of 300 ms")
    assert has_file_line(err, plugin_file, 2), err


def test_error_at_load_time(lunar_bin, project):
    source = 'local x = 1\nerror("cannot load")\nreturn { name = "x" }\n'
    root = project({"plugins/loaderr.lua": source,
                    "lunar.config.lua": 'return { plugins = { "loaderr" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    plugin_file = str(root / "plugins" / "loaderr.lua")
    assert_clean_failure(status, out, err, "cannot load")
    assert has_file_line(err, plugin_file, 2), err
    # Frames inside Lunar's own runtime say nothing to a plugin author.
    assert "host.lua" not in err, err


def test_missing_plugin_lists_places_looked_in(lunar_bin, project, tmp_path):
    root = project({"index.html": "x",
                    "lunar.config.lua": 'return { pluginPaths = { "extra" }, plugins = { "nosuch" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    assert_clean_failure(status, out, err, "nosuch",
                         str(root / "plugins" / "nosuch.lua"),
                         str(root / "plugins" / "nosuch" / "init.lua"),
                         str(root / "extra" / "nosuch.lua"))


def test_missing_plugin_path(lunar_bin, project):
    root = project({"index.html": "x"})
    status, out, err = run_to_failure(lunar_bin, root, "--plugin", "nope.lua")
    assert_clean_failure(status, out, err, str(root / "nope.lua"))


def test_syntax_error(lunar_bin, project):
    root = project({"plugins/syn.lua": 'return { name = "syn",\n  serve = function( end }\n',
                    "lunar.config.lua": 'return { plugins = { "syn" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    assert_clean_failure(status, out, err)
    assert has_file_line(err, root / "plugins" / "syn.lua", 2), err


def test_plugin_returning_a_number(lunar_bin, project):
    root = project({"plugins/num.lua": "return 42\n",
                    "lunar.config.lua": 'return { plugins = { "num" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    assert_clean_failure(status, out, err, str(root / "plugins" / "num.lua"), "number")


def test_plugin_without_name(lunar_bin, project):
    root = project({"plugins/anon.lua": "return { serve = function() end }\n",
                    "lunar.config.lua": 'return { plugins = { "anon" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    assert_clean_failure(status, out, err, str(root / "plugins" / "anon.lua"), "name")


def test_two_plugins_with_the_same_name(lunar_bin, project):
    root = project({"plugins/one.lua": 'return { name = "same" }\n',
                    "plugins/two.lua": 'return { name = "same" }\n',
                    "lunar.config.lua": 'return { plugins = { "one", "two" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    assert_clean_failure(status, out, err, '"same"', str(root / "plugins" / "one.lua"),
                         str(root / "plugins" / "two.lua"))


def test_server_start_that_raises(lunar_bin, project):
    source = ('return { name = "starter",\n'
              '  serverStart = function()\n'
              '    error("start went wrong")\n'
              '  end,\n'
              '}\n')
    root = project({"plugins/starter.lua": source,
                    "lunar.config.lua": 'return { plugins = { "starter" } }'})
    status, out, err = run_to_failure(lunar_bin, root)
    plugin_file = str(root / "plugins" / "starter.lua")
    assert_clean_failure(status, out, err, plugin_file, "start went wrong", 'plugin "starter"')
    assert has_file_line(err, plugin_file, 3), err
    # One message, not the same failure twice.
    assert (out + err).count("start went wrong") == 1, out + err
