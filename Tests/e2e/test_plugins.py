"""Plugins (SPEC §2-§3): how they are found, loaded and isolated, and what each hook does,
through the real lunar binary and real HTTP requests.

Every server here runs with --no-watch (no live-reload plugin) and with LUNAR_PLUGIN_PATH
removed from the environment unless a test sets it."""

from __future__ import annotations

import json
import os
import time

import requests

TIMEOUT = 5


def start(make_server, root, *args, env=None, cwd=None):
    """A server on `root` with --no-watch and a clean LUNAR_PLUGIN_PATH."""
    full_env = {"LUNAR_PLUGIN_PATH": None}
    full_env.update(env or {})
    return make_server(root, "--no-watch", *args, env=full_env, cwd=cwd)


def get(server, path, **kw):
    return requests.get(server.url_for(path), timeout=TIMEOUT, **kw)


def which(name, label):
    """A plugin called `name` that answers /which/NAME with `label` (where it was found)."""
    return (f'return {{ name = "{name}", serve = function(ctx)\n'
            f'  if ctx.path == "/which/{name}" then return "{label}" end\n'
            f'end }}\n')


def config(plugins, **extra):
    """A lunar.config.lua: `plugins` is Lua source for the list's items."""
    lines = ["return {", "  watch = false,"]
    for key, value in extra.items():
        lines.append(f"  {key} = {value},")
    lines.append("  plugins = {")
    lines += [f"    {p}," for p in plugins]
    lines += ["  },", "}", ""]
    return "\n".join(lines)


# --- Finding plugins ------------------------------------------------------------------------

def test_bare_names_search_order(make_server, project, tmp_path):
    """ROOT/plugins, then pluginPaths, then LUNAR_PLUGIN_PATH (in its order), then the
    bundled plugins; in each folder NAME.lua before NAME/init.lua."""
    env1 = project({
        "inroot.lua": which("inroot", "env1"),
        "inpaths.lua": which("inpaths", "env1"),
        "inenv1/init.lua": which("inenv1", "env1"),
        "inboth.lua": which("inboth", "env1"),
    }, name="env1")
    env2 = project({
        "inenv1.lua": which("inenv1", "env2"),
        "inboth.lua": which("inboth", "env2"),
        "inenv2.lua": which("inenv2", "env2"),
        # Shadows the bundled plugin of the same name.
        "live-reload.lua": which("live-reload", "env2"),
    }, name="env2")
    empty = project({"unrelated.txt": "x"}, name="empty")
    root = project({
        "index.html": "<!doctype html><title>t</title>",
        "plugins/inroot.lua": which("inroot", "root-plugins"),
        "plugins/fileandfolder.lua": which("fileandfolder", "file"),
        "plugins/fileandfolder/init.lua": which("fileandfolder", "folder"),
        "plugins/folderonly/init.lua": which("folderonly", "folder"),
        "extra/inroot.lua": which("inroot", "pluginPaths"),
        "extra/inpaths/init.lua": which("inpaths", "pluginPaths"),
        "lunar.config.lua": config(
            ['"inroot"', '"inpaths"', '"inenv1"', '"inboth"', '"inenv2"', '"live-reload"',
             '"fileandfolder"', '"folderonly"'],
            pluginPaths='{ "extra" }'),
    }, name="site")
    server = start(make_server, root,
                   env={"LUNAR_PLUGIN_PATH": f"{empty}:{env1}:{env2}"})
    expected = {
        "inroot": "root-plugins",      # ROOT/plugins beats pluginPaths and the env
        "inpaths": "pluginPaths",      # pluginPaths beats LUNAR_PLUGIN_PATH
        "inenv1": "env1",              # the env's folders in order (init.lua in the first)
        "inboth": "env1",
        "inenv2": "env2",              # a later env folder is searched too
        "live-reload": "env2",         # LUNAR_PLUGIN_PATH beats the bundled plugins
        "fileandfolder": "file",       # NAME.lua before NAME/init.lua
        "folderonly": "folder",
    }
    got = {name: get(server, f"/which/{name}").text for name in expected}
    assert got == expected


def test_bundled_plugin_found_last(make_server, project):
    """A name found nowhere else is the bundled plugin (live-reload ships with Lunar)."""
    root = project({
        "index.html": "<!doctype html><html><body>x</body></html>",
        "lunar.config.lua": config(['"live-reload"']),
    })
    server = start(make_server, root)
    out = server.wait_for_output("live-reload")
    bundled = os.path.join("plugins", "live-reload", "init.lua")
    assert bundled in out, out
    assert str(root) not in out.split("live-reload", 1)[1].splitlines()[0], out
    # live-reload asks for the client script: the page gets it.
    assert "/__web-dev-server__web-socket.js" in get(server, "/").text


def test_entry_forms(make_server, project, tmp_path):
    """A file path, a folder path (init.lua), { path, options } into a factory, a bare name
    with options, an inline plugin table, and --plugin paths relative to the working folder."""
    workspace = project({
        "site/index.html": "<!doctype html><title>t</title>",
        "site/lib/file.lua": which("file", "file path"),
        "site/lib/folder/init.lua": (
            'return function(options)\n'
            '  return { name = "folder", serve = function(ctx)\n'
            '    if ctx.path == "/which/folder" then return "folder path " .. type(options) .. " "'
            ' .. tostring(next(options)) end\n'
            '  end }\n'
            'end\n'),
        "site/lib/factory.lua": (
            'return function(options)\n'
            '  return { name = "factory", serve = function(ctx)\n'
            '    if ctx.path == "/which/factory" then return json.encode(options) end\n'
            '  end }\n'
            'end\n'),
        "site/plugins/named.lua": (
            'return function(options)\n'
            '  return { name = "named", serve = function(ctx)\n'
            '    if ctx.path == "/which/named" then return "named n=" .. tostring(options.n) end\n'
            '  end }\n'
            'end\n'),
        "site/lunar.config.lua": config([
            '"./lib/file.lua"',
            '"./lib/folder"',
            '{ "./lib/factory.lua", { opt = 1, word = "hi", list = { 1, 2 } } }',
            '{ "named", { n = 7 } }',
            '{ name = "inline", serve = function(ctx) '
            'if ctx.path == "/which/inline" then return "inline " .. ctx.method end end }',
        ]),
        "cli/cliplug.lua": which("cliplug", "cli file"),
        "cli/clidir/init.lua": which("clidir", "cli folder"),
        # Decoys: the same paths under the root must not be used for --plugin.
        "site/cli/cliplug.lua": which("cliplug", "WRONG: relative to ROOT"),
        "site/cli/clidir/init.lua": which("clidir", "WRONG: relative to ROOT"),
    }, name="workspace")
    server = start(make_server, workspace / "site", "--plugin", "cli/cliplug.lua",
                   "--plugin", "cli/clidir", cwd=workspace)
    assert get(server, "/which/file").text == "file path"
    assert get(server, "/which/folder").text == "folder path table nil"
    assert json.loads(get(server, "/which/factory").text) == {"opt": 1, "word": "hi", "list": [1, 2]}
    assert get(server, "/which/named").text == "named n=7"
    assert get(server, "/which/inline").text == "inline GET"
    assert get(server, "/which/cliplug").text == "cli file"
    assert get(server, "/which/clidir").text == "cli folder"


def test_config_paths_relative_to_config_file(make_server, project):
    """With --config sub/lunar.config.lua, the config's plugin paths and pluginPaths are
    relative to sub/, not to the working folder or the root."""
    workspace = project({
        "site/index.html": "<!doctype html><title>t</title>",
        "sub/lunar.config.lua": config(['"./p.lua"', '"frommore"', '"../other/o.lua"'],
                                       pluginPaths='{ "more" }'),
        "sub/p.lua": which("p", "sub"),
        "sub/more/frommore.lua": which("frommore", "sub/more"),
        "other/o.lua": which("o", "other"),
        # Decoys at the same relative paths from the working folder and from the root.
        "p.lua": which("p", "WRONG: cwd"),
        "more/frommore.lua": which("frommore", "WRONG: cwd"),
        "site/p.lua": which("p", "WRONG: root"),
        "site/more/frommore.lua": which("frommore", "WRONG: root"),
    }, name="workspace")
    server = start(make_server, "site", "--config", "sub/lunar.config.lua", cwd=workspace)
    assert get(server, "/which/p").text == "sub"
    assert get(server, "/which/frommore").text == "sub/more"
    assert get(server, "/which/o").text == "other"
    assert get(server, "/index.html").text.startswith("<!doctype html>")


def test_shared_plugin_folder_is_self_contained(make_server, project):
    """A plugin folder found through LUNAR_PLUGIN_PATH requires its own modules first (not
    the project's same-named one) and knows its folder as PLUGIN_DIR."""
    workspace = project({
        "shared/sharedplug/init.lua": (
            'local helper = require("helper")\n'
            'local util = require("lib.util")\n'
            'local f = assert(io.open(PLUGIN_DIR .. "/data.txt"))\n'
            'local data = f:read("a")\n'
            'f:close()\n'
            'return { name = "sharedplug", serve = function(ctx)\n'
            '  if ctx.path == "/shared" then\n'
            '    return json.encode({ helper = helper.word, util = util.word, dir = PLUGIN_DIR,\n'
            '      data = data, cached = require("helper") == helper })\n'
            '  end\n'
            'end }\n'),
        "shared/sharedplug/helper.lua": 'return { word = "own helper" }\n',
        "shared/sharedplug/lib/util.lua": 'return { word = "own util" }\n',
        "shared/sharedplug/data.txt": "plugin data",
        # The project's own helper.lua (and the working folder is the project): not used.
        "site/helper.lua": 'return { word = "WRONG: the project\'s helper" }\n',
        "site/lib/util.lua": 'return { word = "WRONG: the project\'s util" }\n',
        "site/index.html": "<!doctype html><title>t</title>",
        "site/lunar.config.lua": config(['"sharedplug"']),
    }, name="workspace")
    server = start(make_server, workspace / "site", cwd=workspace / "site",
                   env={"LUNAR_PLUGIN_PATH": str(workspace / "shared")})
    got = get(server, "/shared").json()
    assert got["helper"] == "own helper"
    assert got["util"] == "own util"
    assert got["data"] == "plugin data"
    assert got["cached"] is True
    assert os.path.isabs(got["dir"]), got
    assert os.path.realpath(got["dir"]) == os.path.realpath(workspace / "shared" / "sharedplug")


def test_isolation_and_globals(make_server, project):
    """A global set by one plugin is not seen by another; the standard libraries and json,
    timer, log are there in every plugin."""
    root = project({
        "index.html": "<!doctype html><title>t</title>",
        "plugins/a.lua": (
            'shared = 1\n'
            'return { name = "a", serve = function(ctx)\n'
            '  if ctx.path == "/a" then atRuntime = "set"; return tostring(shared) end\n'
            'end }\n'),
        "plugins/b.lua": (
            'log.info("b-loaded-marker")\n'
            'return { name = "b", serve = function(ctx)\n'
            '  if ctx.path == "/b" then return json.encode({\n'
            '    shared = tostring(shared), atRuntime = tostring(atRuntime),\n'
            '    viaG = tostring(rawget(_G, "shared")),\n'
            '    string = type(string.format), table = type(table.concat), math = type(math.floor),\n'
            '    os = type(os.time), io = type(io.open), coroutine = type(coroutine.wrap),\n'
            '    utf8 = type(utf8.char), debug = type(debug.traceback),\n'
            '    pcall = type(pcall), setmetatable = type(setmetatable),\n'
            '    json = type(json.encode) .. type(json.decode),\n'
            '    timer = type(timer.after) .. type(timer.every),\n'
            '    log = type(log.debug) .. type(log.info) .. type(log.warn) .. type(log.error),\n'
            '    decoded = json.decode(\'{"k":[1,2]}\').k[2],\n'
            '    emptyArray = json.encode(json.array({})), isNull = json.decode("null") == json.null,\n'
            '  }) end\n'
            'end }\n'),
        "lunar.config.lua": config(['"a"', '"b"']),
    })
    server = start(make_server, root)
    assert get(server, "/a").text == "1"
    got = get(server, "/b").json()
    assert got["shared"] == "nil"
    assert got["atRuntime"] == "nil"
    assert got["viaG"] == "nil"
    for lib in ("string", "table", "math", "os", "io", "coroutine", "utf8", "debug", "pcall",
                "setmetatable"):
        assert got[lib] == "function", (lib, got)
    assert got["json"] == "functionfunction"
    assert got["timer"] == "functionfunction"
    assert got["log"] == "function" * 4
    assert got["decoded"] == 2
    assert got["emptyArray"] == "[]"
    assert got["isNull"] is True
    out = server.output()
    line = next((l for l in out.splitlines() if "b-loaded-marker" in l), None)
    assert line is not None and "b" in line.replace("b-loaded-marker", ""), out


# --- serve ---------------------------------------------------------------------------------

SERVE_ONE = '''
return { name = "one", serve = function(ctx)
  local p = ctx.path
  if p == "/both" then return "from one" end
  if p == "/str.html" then return "<p>string form</p>" end
  if p == "/tbl/js" then return { body = "export default 1;", type = "js" } end
  if p == "/tbl/mime" then
    return { body = "custom", type = "text/x-custom", status = 201, headers = { ["x-a"] = "1" } }
  end
  if p == "/index.html" then return "overridden" end
  if p == "/post" then return ctx.method .. " " .. tostring(ctx.headers["content-type"]) end
end }
'''

SERVE_TWO = '''
return { name = "two", serve = function(ctx)
  if ctx.path == "/both" then return "from two" end
  if ctx.path == "/only-two" then return "two" end
end }
'''


def test_serve_hook(make_server, project):
    root = project({
        "index.html": "on disk",
        "real.txt": "real file",
        "plugins/one.lua": SERVE_ONE,
        "plugins/two.lua": SERVE_TWO,
        "lunar.config.lua": config(['"one"', '"two"']),
    })
    server = start(make_server, root)
    # The first non-nil result wins; a later plugin answers what the earlier leaves.
    assert get(server, "/both").text == "from one"
    assert get(server, "/only-two").text == "two"
    # String form: 200, type from the path's extension; the path exists on no disk.
    r = get(server, "/str.html")
    assert (r.status_code, r.text) == (200, "<p>string form</p>")
    assert r.headers["content-type"].startswith("text/html")
    # Table form: type as an extension, as a MIME type, status and headers.
    r = get(server, "/tbl/js")
    assert (r.status_code, r.text) == (200, "export default 1;")
    assert r.headers["content-type"].startswith("text/javascript")
    r = get(server, "/tbl/mime")
    assert (r.status_code, r.text) == (201, "custom")
    assert r.headers["content-type"] == "text/x-custom"
    assert r.headers["x-a"] == "1"
    # Overriding a file that exists on disk; files nobody serves still come from disk.
    assert get(server, "/index.html").text == "overridden"
    assert get(server, "/real.txt").text == "real file"
    assert get(server, "/nothing-here.txt").status_code == 404
    # POST reaches serve.
    r = requests.post(server.url_for("/post"), json={"x": 1}, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (200, "POST application/json")


def test_ctx_fields(make_server, project):
    root = project({
        "index.html": "x",
        "plugins/echo.lua": (
            'return { name = "echo", serve = function(ctx)\n'
            '  if ctx.path:sub(1, 5) == "/echo" then\n'
            '    local lower = true\n'
            '    for k in pairs(ctx.headers) do if k ~= k:lower() then lower = false end end\n'
            '    return json.encode({ path = ctx.path, url = ctx.url, method = ctx.method,\n'
            '      query = ctx.query, header = ctx.headers["x-custom-header"], lower = lower,\n'
            '      queryType = type(ctx.query), headersType = type(ctx.headers) })\n'
            '  end\n'
            'end }\n'),
        "lunar.config.lua": config(['"echo"']),
    })
    server = start(make_server, root)
    raw = "/echo/a%20b.txt?x=1&word=two%20words"
    got = get(server, raw, headers={"X-Custom-Header": "Val"}).json()
    assert got["path"] == "/echo/a b.txt"
    assert got["url"] == raw
    assert got["method"] == "GET"
    assert got["query"] == {"x": "1", "word": "two words"}
    assert got["header"] == "Val"
    assert got["lower"] is True
    got = requests.put(server.url_for("/echo"), data="b", timeout=TIMEOUT).json()
    assert got["method"] == "PUT"
    assert got["path"] == "/echo"
    assert got["queryType"] == "table" and got["headersType"] == "table"


def test_server_start_ctx(make_server, project):
    root = project({
        "index.html": "x",
        "plugins/st.lua": (
            'local seen\n'
            'return { name = "st",\n'
            '  serverStart = function(ctx)\n'
            '    seen = { timeout = ctx.config.timeout, watch = ctx.config.watch,\n'
            '      rootDir = ctx.rootDir, url = ctx.url, ws = type(ctx.webSockets),\n'
            '      send = type(ctx.webSockets.send) }\n'
            '  end,\n'
            '  serve = function(ctx) if ctx.path == "/seen" then return json.encode(seen) end end,\n'
            '}\n'),
        "lunar.config.lua": config(['"st"'], timeout="1234"),
    })
    server = start(make_server, root)
    got = get(server, "/seen").json()
    assert got["timeout"] == 1234
    assert got["watch"] is False
    assert os.path.realpath(got["rootDir"]) == os.path.realpath(root)
    assert got["url"] == server.url + "/"
    assert got["ws"] == "table"
    assert got["send"] == "function"


# --- transform and resolveMimeType -------------------------------------------------------

TRANSFORM_A = '''
return { name = "ta",
  serve = function(ctx) if ctx.path == "/t/virtual" then return { body = "vbody", type = "txt" } end end,
  transform = function(ctx)
    if ctx.path:sub(1, 3) == "/t/" then
      return { body = ctx.body .. "-a", headers = { ["x-from-a"] = "a" } }
    end
  end,
}
'''

TRANSFORM_B = '''
return { name = "tb",
  transform = function(ctx)
    if ctx.path == "/t/file.txt" then
      return { body = ctx.body .. "-b", headers = { ["X-From-B"] = "b" } }
    elseif ctx.path == "/t/type.txt" then
      return ctx.body .. "|" .. ctx.type
    elseif ctx.path:sub(1, 3) == "/t/" then
      return ctx.body .. "-b"
    end
  end,
}
'''


def test_transform_chain(make_server, project):
    root = project({
        "t/file.txt": "body",
        "t/type.txt": "type",
        "other.txt": "untouched",
        "plugins/ta.lua": TRANSFORM_A,
        "plugins/tb.lua": TRANSFORM_B,
        "lunar.config.lua": config(['"ta"', '"tb"']),
    })
    server = start(make_server, root)
    r = get(server, "/t/file.txt")
    assert (r.status_code, r.text) == (200, "body-a-b")
    assert r.headers["x-from-a"] == "a"
    assert r.headers["x-from-b"] == "b"
    # Plugin-served bodies are transformed too.
    r = get(server, "/t/virtual")
    assert (r.status_code, r.text) == (200, "vbody-a-b")
    # ctx.type and ctx.body reach transform.
    r = get(server, "/t/type.txt")
    assert r.text.startswith("type-a|text/plain"), r.text
    # A nil result leaves the body alone; a 404 is never transformed.
    assert get(server, "/other.txt").text == "untouched"
    r = get(server, "/t/missing.txt")
    assert r.status_code == 404
    assert "-a" not in r.text and "-b" not in r.text
    assert "x-from-a" not in r.headers


def test_resolve_mime_type_last_non_nil_wins(make_server, project):
    root = project({
        "doc.md": "# doc",
        "look.style": "b { }",
        "plain.txt": "t",
        "blob.data": "d",
        "plugins/m1.lua": (
            'return { name = "m1", resolveMimeType = function(ctx)\n'
            '  if ctx.path:match("%.md$") then return "text/x-first" end\n'
            '  if ctx.path:match("%.style$") then return "css" end\n'
            'end }\n'),
        "plugins/m2.lua": (
            'return { name = "m2", resolveMimeType = function(ctx)\n'
            '  if ctx.path:match("%.md$") then return "text/x-second" end\n'
            '  if ctx.path:match("%.data$") then return ctx.type .. "; from=" .. #ctx.body end\n'
            'end }\n'),
        "plugins/m3.lua": 'return { name = "m3", resolveMimeType = function(ctx) return nil end }\n',
        "lunar.config.lua": config(['"m1"', '"m2"', '"m3"']),
    })
    server = start(make_server, root)
    assert get(server, "/doc.md").headers["content-type"] == "text/x-second"
    assert get(server, "/look.style").headers["content-type"].startswith("text/css")
    assert get(server, "/plain.txt").headers["content-type"].startswith("text/plain")
    r = get(server, "/blob.data")
    assert r.headers["content-type"] == "application/octet-stream; from=1"
    assert r.text == "d"


# --- timers ----------------------------------------------------------------------------------

TIMERS = '''
local fired, firedAt, count, handle = false, nil, 0, nil
return { name = "timers", serve = function(ctx)
  local p = ctx.path
  if p == "/after/arm" then
    fired = false
    timer.after(50, function() fired = true end)
    return "armed"
  end
  if p == "/after/fired" then return tostring(fired) end
  if p == "/every/start" then
    count = 0
    handle = timer.every(20, function() count = count + 1 end)
    return "started"
  end
  if p == "/every/count" then return tostring(count) end
  if p == "/every/cancel" then handle:cancel(); return tostring(count) end
  if p == "/bad/ms" then
    local ok, err = pcall(timer.after, "soon", function() end)
    return tostring(ok) .. " " .. tostring(err)
  end
  if p == "/bad/fn" then
    local ok, err = pcall(timer.after, 10, "not a function")
    return tostring(ok) .. " " .. tostring(err)
  end
  if p == "/bad/uncaught" then
    timer.after(10, 42)
  end
end }
'''


def test_timers(make_server, project):
    root = project({
        "index.html": "x",
        "plugins/timers.lua": TIMERS,
        "lunar.config.lua": config(['"timers"']),
    })
    server = start(make_server, root)

    t0 = time.monotonic()
    assert get(server, "/after/arm").text == "armed"
    early = get(server, "/after/fired").text
    if time.monotonic() - t0 < 0.04:   # asked well before 50 ms had passed
        assert early == "false"
    while get(server, "/after/fired").text != "true":
        assert time.monotonic() - t0 < 1.0, "timer.after(50) did not fire within 1 s"
        time.sleep(0.005)
    assert time.monotonic() - t0 >= 0.045

    assert get(server, "/every/start").text == "started"
    time.sleep(0.3)
    running = int(get(server, "/every/count").text)
    assert 4 <= running <= 20, running   # about 15 in 300 ms
    cancelled_at = int(get(server, "/every/cancel").text)
    time.sleep(0.15)
    assert int(get(server, "/every/count").text) == cancelled_at


def test_timer_wrong_arguments(make_server, project):
    root = project({
        "index.html": "x",
        "plugins/timers.lua": TIMERS,
        "lunar.config.lua": config(['"timers"']),
    })
    server = start(make_server, root)
    text = get(server, "/bad/ms").text
    assert text.startswith("false "), text
    assert "timer.after" in text and "#1" in text, text
    text = get(server, "/bad/fn").text
    assert text.startswith("false "), text
    assert "timer.after" in text and "#2" in text, text
    # Uncaught, the error names the plugin's own file and line, not Lunar's runtime.
    r = get(server, "/bad/uncaught")
    assert r.status_code == 500
    plugin_file = str(root / "plugins" / "timers.lua")
    line = TIMERS.splitlines().index("    timer.after(10, 42)") + 1  # TIMERS starts with "\n"
    assert f"{plugin_file}:{line}: bad argument #2 to 'timer.after'" in r.text, r.text
    assert "host.lua" not in r.text, r.text


def test_static_files_without_serve_hook(make_server, project):
    """With plugins loaded but no `serve` hook (here a busy timer), files come from disk as
    they are: body, type, folder index, redirect, 404, HEAD."""
    root = project({
        "index.html": "<!doctype html><title>t</title>",
        "style.css": "body { color: red }",
        "app.js": "export const x = 1;\n",
        "sub/index.html": "<!doctype html><title>sub</title>",
        "plugins/ticker.lua": (
            'local n = 0\n'
            'return { name = "ticker", serverStart = function()\n'
            '  timer.every(5, function() for i = 1, 1000 do n = n + i end end)\n'
            'end }\n'),
        "lunar.config.lua": config(['"ticker"']),
    })
    server = start(make_server, root)
    for _ in range(3):
        r = get(server, "/style.css")
        assert (r.status_code, r.text) == (200, "body { color: red }")
        assert r.headers["content-type"].startswith("text/css")
        r = get(server, "/app.js")
        assert (r.status_code, r.text) == (200, "export const x = 1;\n")
        assert r.headers["content-type"].startswith("text/javascript")
    assert get(server, "/").text == "<!doctype html><title>t</title>"
    assert get(server, "/sub/").text == "<!doctype html><title>sub</title>"
    r = get(server, "/sub", allow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/sub/"
    assert get(server, "/missing.css").status_code == 404
    r = requests.head(server.url_for("/style.css"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["content-length"] == str(len("body { color: red }"))
