"""SPEC §1/§2 (running it, the config file): config values and flags, clear errors for a
user's mistakes (never a Swift stack trace), the port choice, the banner, clean shutdown on
SIGINT/SIGTERM, and config-relative paths. Real binary, real ports."""

from __future__ import annotations

import errno
import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from lunar_harness import free_port, make_project

STACK_TRACE_MARKERS = ("Fatal error", "Stack dump", ".swift:", "Current stack trace", "💣")
BANNER_RE = re.compile(r"Lunar is serving (http://(\S+?):(\d+)/)")


# -- helpers --------------------------------------------------------------------------------

def run_lunar(lunar_bin, *args, cwd=None, timeout=8.0):
    """Runs lunar expecting it to exit by itself (a user's mistake). Returns
    (exit status, stdout, stderr). If it is still running after `timeout` s it is killed and
    the test fails: it started serving instead of refusing."""
    proc = subprocess.Popen([str(lunar_bin), *map(str, args)], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"lunar {' '.join(map(str, args))} kept running instead of exiting with an "
                    f"error\n--- stdout ---\n{out.decode(errors='replace')}"
                    f"--- stderr ---\n{err.decode(errors='replace')}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def assert_clean_failure(status, out, err, *needles):
    text = out + err
    assert status != 0, f"exit status 0 for a mistake\n{text}"
    for marker in STACK_TRACE_MARKERS:
        assert marker not in text, f"looks like a Swift crash/stack trace ({marker!r}):\n{text}"
    for needle in needles:
        assert needle in err, f"stderr does not mention {needle!r}:\n--- stderr ---\n{err}" \
                              f"--- stdout ---\n{out}"


def assert_one_message(err):
    """One clear message: no Lua traceback through Lunar's own internals."""
    assert "stack traceback" not in err and "host.lua" not in err, \
        f"a user's mistake should give one clear message, not a traceback through Lunar:\n{err}"


class Spawned:
    """`lunar ARGS...` run as it is (no --port/--host added, unlike LunarServer), with its
    output in a file; it waits for the banner and knows the URL the banner printed."""

    def __init__(self, lunar_bin, args, cwd=None):
        fd, name = tempfile.mkstemp(prefix="lunar-cli-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(lunar_bin), *map(str, args)], cwd=cwd,
                                        stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.url = self.host = self.port = None

    def output(self):
        self._log.flush()
        return self.log_path.read_bytes().decode(errors="replace")

    def wait_banner(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            match = BANNER_RE.search(out)
            if match:
                self.url, self.host, self.port = match.group(1), match.group(2), int(match.group(3))
                return out
            if self.process.poll() is not None:
                break
            time.sleep(0.03)
        raise AssertionError(f"no banner (exit status {self.process.poll()}):\n{self.output()}")

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self):
        self.stop()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def spawn(lunar_bin, request):
    spawned = []

    def _spawn(*args, cwd=None):
        s = Spawned(lunar_bin, args, cwd=cwd)
        spawned.append(s)
        return s

    yield _spawn
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for s in spawned:
        s.stop()
        if failed:
            print(f"\n--- lunar {s.process.args[1:]} output (exit {s.process.returncode}) ---\n"
                  f"{s.output()}--- end ---")
        s.close()


def get(host, port, path="/"):
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def listening_socket(host="127.0.0.1", port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, port))
    s.listen(1)
    return s


# -- config values and flags ---------------------------------------------------------------

def test_config_port_hostname_rootdir_applied(project, spawn):
    port = free_port("127.0.0.2")
    root = project({
        "site/page.html": "<p>from site</p>\n",
        "page.html": "<p>from the config folder</p>\n",
        "lunar.config.lua": (f'return {{ port = {port}, hostname = "127.0.0.2", '
                             f'rootDir = "site", watch = false }}\n'),
    })
    server = spawn(cwd=root)  # no ROOT: the config in the working folder is read
    out = server.wait_banner()
    assert server.url == f"http://127.0.0.2:{port}/", out
    assert str((root / "site").resolve()) in out
    assert get("127.0.0.2", port, "/page.html") == (200, b"<p>from site</p>\n")
    with pytest.raises(OSError):  # bound to 127.0.0.2 only
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_command_line_port_and_host_beat_the_config(project, spawn):
    config_port = free_port()
    flag_port = free_port()
    while flag_port == config_port:
        flag_port = free_port()
    root = project({
        "index.html": "<p>hi</p>\n",
        "lunar.config.lua": f'return {{ port = {config_port}, hostname = "127.0.0.2", watch = false }}\n',
    })
    server = spawn(root, "--port", flag_port, "--host", "127.0.0.1")
    out = server.wait_banner()
    assert server.url == f"http://127.0.0.1:{flag_port}/", out
    assert get("127.0.0.1", flag_port, "/index.html")[0] == 200
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", config_port), timeout=1).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", config_port), timeout=1).close()


def test_config_file_given_with_flag_paths_relative_to_it(project, spawn):
    """--config other/dir/lunar.config.lua: pluginPaths, plugin files and rootDir are
    relative to other/dir, appIndex to the served root."""
    root = project({
        "other/dir/lunar.config.lua": (
            'return {\n'
            '  rootDir = "www",\n'
            '  watch = false,\n'
            '  appIndex = "app.html",\n'
            '  pluginPaths = { "myplugins" },\n'
            '  plugins = { "greeter", "./local/echo.lua" },\n'
            '}\n'),
        "other/dir/myplugins/greeter.lua": (
            'return { name = "greeter", serve = function(ctx)\n'
            '  if ctx.path == "/greet" then return "hello from greeter" end\nend }\n'),
        "other/dir/local/echo.lua": (
            'return { name = "echo", serve = function(ctx)\n'
            '  if ctx.path == "/echo" then return "echo:" .. PLUGIN_DIR end\nend }\n'),
        "other/dir/www/index.html": "<p>www index</p>\n",
        "other/dir/www/app.html": "<!doctype html><p>APP</p>\n",
        # Decoys in the working folder: must not be picked.
        "myplugins/greeter.lua": 'return { name = "greeter", serve = function() return "WRONG" end }\n',
        "www/index.html": "<p>WRONG www</p>\n",
        "app.html": "<p>WRONG app</p>\n",
    })
    port = free_port()
    server = spawn("--config", "other/dir/lunar.config.lua", "--port", port, cwd=root)
    out = server.wait_banner()
    assert get("127.0.0.1", port, "/greet") == (200, b"hello from greeter"), out
    status, body = get("127.0.0.1", port, "/echo")
    assert status == 200 and body == ("echo:" + str((root / "other/dir/local").resolve())).encode()
    assert get("127.0.0.1", port, "/index.html") == (200, b"<p>www index</p>\n")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/deep/route", headers={"Accept": "text/html"})
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"<!doctype html><p>APP</p>\n")
    conn.close()


def test_root_argument_relative_to_working_directory_beats_config_root(project, spawn):
    root = project({
        "cfg/lunar.config.lua": 'return { rootDir = "elsewhere", watch = false }\n',
        "cfg/elsewhere/index.html": "<p>WRONG</p>\n",
        "served/index.html": "<p>served by ROOT</p>\n",
    })
    port = free_port()
    server = spawn("served", "--config", "cfg/lunar.config.lua", "--port", port, cwd=root)
    server.wait_banner()
    assert get("127.0.0.1", port, "/") == (200, b"<p>served by ROOT</p>\n")


def test_plugin_flag_relative_to_working_directory(project, spawn):
    root = project({
        "site/index.html": "<p>x</p>\n",
        "tools/flagged.lua": ('return { name = "flagged", serve = function(ctx)\n'
                              '  if ctx.path == "/flag" then return "flagged" end end }\n'),
    })
    port = free_port()
    server = spawn("site", "--plugin", "tools/flagged.lua", "--port", port, "--no-watch", cwd=root)
    out = server.wait_banner()
    assert get("127.0.0.1", port, "/flag") == (200, b"flagged")
    assert "flagged" in out and str((root / "tools/flagged.lua").resolve()) in out, out


# -- a user's mistakes: one clear message, non-zero, no stack trace -------------------------------

def test_unknown_config_key(project, lunar_bin):
    root = project({"lunar.config.lua": 'return { prot = 8000, watch = false }\n'})
    status, out, err = run_lunar(lunar_bin, root)
    assert_clean_failure(status, out, err, "prot", "lunar.config.lua")
    assert str(root.resolve() / "lunar.config.lua") in err or str(root / "lunar.config.lua") in err


@pytest.mark.parametrize("setting, key", [
    ('port = "x"', "port"),
    ("watch = 1", "watch"),
    ("plugins = 5", "plugins"),
    ('hostname = 127', "hostname"),
    ('pluginPaths = "plugins"', "pluginPaths"),
    ("injectWebSocket = \"no\"", "injectWebSocket"),
    ("port = 80.5", "port"),
    ("timeout = {}", "timeout"),
])
def test_wrong_config_type_names_the_key(project, lunar_bin, setting, key):
    root = project({"lunar.config.lua": f"return {{ {setting} }}\n"})
    status, out, err = run_lunar(lunar_bin, root, "--no-watch")
    assert_clean_failure(status, out, err, key, "lunar.config.lua")


def test_config_syntax_error_names_file_and_line(project, lunar_bin):
    root = project({"lunar.config.lua": 'return {\n  port = 8000,\n  rootDir = = ".",\n}\n'})
    status, out, err = run_lunar(lunar_bin, root)
    assert_clean_failure(status, out, err, "lunar.config.lua:3")


def test_config_runtime_error_names_file_and_line(project, lunar_bin):
    root = project({"lunar.config.lua": 'local x = 1\nerror("config exploded")\nreturn {}\n'})
    status, out, err = run_lunar(lunar_bin, root)
    assert_clean_failure(status, out, err, "lunar.config.lua:2", "config exploded")


def test_config_not_returning_a_table(project, lunar_bin):
    root = project({"lunar.config.lua": 'return 42\n'})
    status, out, err = run_lunar(lunar_bin, root)
    assert_clean_failure(status, out, err, "lunar.config.lua")


def test_missing_config_file_given_by_flag(project, lunar_bin):
    root = project({"index.html": "x"})
    status, out, err = run_lunar(lunar_bin, root, "--config", root / "nope.config.lua")
    assert_clean_failure(status, out, err, "nope.config.lua")


def test_missing_root_folder(tmp_path, lunar_bin):
    missing = tmp_path / "does-not-exist"
    status, out, err = run_lunar(lunar_bin, missing, "--no-watch")
    assert_clean_failure(status, out, err, str(missing))


def test_root_that_is_a_file(tmp_path, lunar_bin):
    file = tmp_path / "file.txt"
    file.write_text("x")
    status, out, err = run_lunar(lunar_bin, file, "--no-watch")
    assert_clean_failure(status, out, err, str(file))


def test_config_root_dir_missing(project, lunar_bin):
    root = project({"lunar.config.lua": 'return { rootDir = "nowhere", watch = false }\n'})
    status, out, err = run_lunar(lunar_bin, cwd=root)
    assert_clean_failure(status, out, err, "nowhere")


def test_unknown_flag(tmp_path, lunar_bin):
    status, out, err = run_lunar(lunar_bin, tmp_path, "--nope")
    assert_clean_failure(status, out, err, "--nope")


@pytest.mark.parametrize("args, needle", [
    (["--log-level", "nope"], "log-level"),
    (["--port", "notaport"], "port"),
    (["--port", "70000"], "port"),
    (["--port"], "port"),
])
def test_bad_flag_values(tmp_path, lunar_bin, args, needle):
    status, out, err = run_lunar(lunar_bin, tmp_path, "--no-watch", *args)
    assert_clean_failure(status, out, err, needle)


BROKEN_PLUGIN = {
    "plugins/broken.lua": 'local a = 1\nlocal b = nil + 1\nreturn { name = "broken" }\n',
    "lunar.config.lua": 'return { watch = false, plugins = { "./plugins/broken.lua" } }\n',
}


def test_plugin_that_fails_to_load(project, lunar_bin):
    root = project(BROKEN_PLUGIN)
    status, out, err = run_lunar(lunar_bin, root, "--port", free_port())
    assert_clean_failure(status, out, err, "broken.lua:2")


def test_plugin_load_error_is_one_message(project, lunar_bin):
    root = project(BROKEN_PLUGIN)
    status, out, err = run_lunar(lunar_bin, root, "--port", free_port())
    assert_clean_failure(status, out, err, "broken.lua:2")
    assert_one_message(err)


@pytest.mark.parametrize("case", ["config-syntax", "config-error", "plugin-load"])
def test_errors_name_the_full_file_path(tmp_path, lunar_bin, case):
    """A long project path (longer than Lua's 60-character chunk ids) is still named in full,
    so the user can open the file."""
    root = tmp_path / "a-project-folder-with-a-long-name" / "and-some-nesting" / "site"
    if case == "config-syntax":
        files = {"lunar.config.lua": 'return {\n  port = 8000,\n  rootDir = = ".",\n}\n'}
        where = f"{root / 'lunar.config.lua'}:3"
    elif case == "config-error":
        files = {"lunar.config.lua": 'local x = 1\nerror("config exploded")\nreturn {}\n'}
        where = f"{root / 'lunar.config.lua'}:2"
    else:
        files = BROKEN_PLUGIN
        where = f"{root / 'plugins/broken.lua'}:2"
    make_project(root, files)
    status, out, err = run_lunar(lunar_bin, root, "--port", free_port())
    assert_clean_failure(status, out, err, where)


def test_missing_plugin_by_name(project, lunar_bin):
    root = project({"lunar.config.lua": 'return { watch = false, plugins = { "no-such-plugin" } }\n'})
    status, out, err = run_lunar(lunar_bin, root, "--port", free_port())
    assert_clean_failure(status, out, err, "no-such-plugin")


# -- the port ----------------------------------------------------------------------------------

def test_default_port_8000_taken_uses_the_next_and_says_so(tmp_path, spawn):
    try:
        blocker = listening_socket("127.0.0.1", 8000)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            pytest.skip("port 8000 is in use by something else; cannot run this test")
        raise
    with blocker:
        (tmp_path / "index.html").write_text("<p>next port</p>\n")
        server = spawn("--no-watch", cwd=tmp_path)  # no ROOT, no --port: the defaults
        out = server.wait_banner()
        assert server.port != 8000
        assert 8000 < server.port < 8100, out
        assert server.url == f"http://127.0.0.1:{server.port}/"
        # The banner says 8000 was taken and which port is used instead.
        banner = out[out.index("Lunar is serving"):]
        notes = [line for line in banner.splitlines() if "8000" in line and "serving" not in line]
        assert notes and any(str(server.port) in line for line in notes), out
        assert get("127.0.0.1", server.port, "/index.html") == (200, b"<p>next port</p>\n")


def test_default_port_8000_when_free(tmp_path, spawn):
    try:
        listening_socket("127.0.0.1", 8000).close()
    except OSError:
        pytest.skip("port 8000 is in use by something else")
    (tmp_path / "index.html").write_text("x")
    server = spawn("--no-watch", cwd=tmp_path)
    out = server.wait_banner()
    if server.port != 8000:  # someone took it in between
        pytest.skip(f"port 8000 got taken meanwhile:\n{out}")
    assert server.url == "http://127.0.0.1:8000/"


def test_explicit_taken_port_is_an_error(tmp_path, lunar_bin):
    with listening_socket() as blocker:
        port = blocker.getsockname()[1]
        status, out, err = run_lunar(lunar_bin, tmp_path, "--port", port, "--no-watch")
        assert_clean_failure(status, out, err, str(port))


# -- the banner ----------------------------------------------------------------------------------

def test_banner_lists_url_root_and_each_plugin_with_its_file(project, spawn):
    root = project({
        "index.html": "x",
        "plugins/hello.lua": 'return { name = "hello" }\n',
        "plugins/chat/init.lua": 'return function(options) return { name = "chat-" .. options.room } end\n',
        "lunar.config.lua": ('return { plugins = { "./plugins/hello.lua", '
                             '{ "./plugins/chat", { room = "lobby" } } } }\n'),
    })
    port = free_port()
    server = spawn(root, "--port", port)  # watch on: live-reload is loaded too
    out = server.wait_banner()
    real = root.resolve()
    assert f"http://127.0.0.1:{port}/" in out
    assert str(real) in out
    lines = out.splitlines()

    def line_with(name, file_part):
        return [l for l in lines if re.search(rf"\b{re.escape(name)}\b", l) and file_part in l]

    assert line_with("hello", str(real / "plugins/hello.lua")), out
    assert line_with("chat-lobby", str(real / "plugins/chat")), out
    assert line_with("live-reload", "live-reload"), out
    assert out.count("Lunar is serving") == 1


# -- clean shutdown -----------------------------------------------------------------------------

STOP_PLUGIN = ('return { name = "stopper",\n'
               '  serverStop = function()\n'
               '    local f = io.open(PLUGIN_DIR .. "/stopped", "w") f:write("yes") f:close()\n'
               '  end }\n')


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly(project, make_server, sig):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    root = project({
        "index.html": "x",
        "plugins/stopper.lua": STOP_PLUGIN,
        "lunar.config.lua": 'return { watch = false, plugins = { "./plugins/stopper.lua" } }\n',
    })
    server = make_server(root)
    server.wait_for_output("Lunar is serving", timeout=5)
    with connect(server.ws_url, open_timeout=5, close_timeout=2) as ws:
        time.sleep(0.1)
        server.signal(sig)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        received = closed.value.rcvd
        assert received is not None, f"no close frame received ({closed.value!r})"
        assert received.code == 1001, received
    assert server.wait(timeout=5) == 0, server.output()
    assert (root / "plugins/stopped").read_text() == "yes"
    out = server.output()
    for marker in STACK_TRACE_MARKERS:
        assert marker not in out, out


def test_sigterm_without_clients_exits_zero_quickly(project, make_server):
    root = project({"index.html": "x", "plugins/stopper.lua": STOP_PLUGIN,
                    "lunar.config.lua": 'return { plugins = { "./plugins/stopper.lua" } }\n'})
    server = make_server(root)  # watch on
    server.wait_for_output("Lunar is serving", timeout=5)
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=5) == 0, server.output()
    assert time.monotonic() - start < 2.0
    assert (root / "plugins/stopped").read_text() == "yes"
