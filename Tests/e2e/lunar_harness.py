"""Helpers for end-to-end tests of Lunar: start the real server on a real port, make
throw-away projects, run Autobahn|Testsuite. No mocks.

Plugin authors can use it from their own pytest suites:

    from lunar_harness import LunarServer, make_project

    def test_my_plugin(tmp_path):
        root = make_project(tmp_path, {
            "index.html": "<!doctype html><html><body>hi</body></html>",
            "lunar.config.lua": 'return { plugins = { "./plugins/mine.lua" }, watch = false }',
            "plugins/mine.lua": 'return { name = "mine", serve = function(ctx) '
                                'if ctx.path == "/x" then return "virtual" end end }',
        })
        with LunarServer(root) as server:
            assert requests.get(server.url + "/x").text == "virtual"

The binary is `LUNAR_BIN` from the environment (scripts/test.sh sets it to the one it just
built), else `.build/debug/lunar` in the repository.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Union

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
AUTOBAHN_DIR = E2E_DIR / "autobahn"
DEFAULT_AUTOBAHN_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "12.1.*"]

__all__ = [
    "LunarServer", "LunarStartError", "find_lunar_bin", "free_port", "make_project",
    "wait_for_port", "run_autobahn", "summarize_autobahn", "autobahn_cases",
    "REPO_ROOT", "make_browser", "console_messages", "clear_console", "console_errors",
    "wait_for_console", "copy_tree", "reset_browser",
]


class LunarStartError(RuntimeError):
    """The server did not start listening (it exited, or timed out). The message holds
    the command line and everything it printed."""


def find_lunar_bin() -> Path:
    """The lunar binary to test: $LUNAR_BIN, else .build/debug/lunar. Raises
    FileNotFoundError (never returns a missing path)."""
    env = os.environ.get("LUNAR_BIN")
    path = Path(env) if env else REPO_ROOT / ".build" / "debug" / "lunar"
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"LUNAR_BIN={env}" if env else f"{path} (LUNAR_BIN is not set)"
        raise FileNotFoundError(
            f"lunar binary not found: {where}. Build it with `swift build` and set "
            f"LUNAR_BIN=$(swift build --show-bin-path)/lunar, or run scripts/test.sh.")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _connect_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host.strip("[]")


def wait_for_port(host: str, port: int, timeout: float = 20.0,
                  alive: Optional[Callable[[], bool]] = None) -> bool:
    """Polls until host:port accepts a TCP connection. Returns False on timeout, or as soon
    as `alive()` returns False (the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection((_connect_host(host), port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def make_project(tmp_path: Union[str, Path], files: Mapping[str, Union[str, bytes]]) -> Path:
    """Writes `files` ({relative path: text or bytes}) under tmp_path, creating folders, and
    returns tmp_path as a Path. Text is written as UTF-8, exactly as given."""
    root = Path(tmp_path)
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return root


class LunarServer:
    """A running `lunar ROOT --port N --host H [args...]`, as a context manager.

    - root: the project folder (passed as ROOT); None leaves ROOT out (then `cwd` is served).
    - args: extra command-line arguments, e.g. ["--plugin", "x.lua", "--no-watch"].
    - env: variables added to (or, with value None, removed from) the inherited environment.
    - port: fixed port; by default a free one is picked.
    - log_path: where stdout+stderr go; by default a temp file (removed by stop() unless
      keep_log=True).

    Attributes: .url ("http://127.0.0.1:PORT", no trailing slash), .ws_url (".../wds"),
    .port, .host, .process, .returncode (after stop).
    """

    def __init__(self, root: Union[str, Path, None] = None, args: Iterable[str] = (),
                 env: Optional[Mapping[str, Optional[str]]] = None, *,
                 port: Optional[int] = None, host: str = "127.0.0.1",
                 lunar_bin: Union[str, Path, None] = None, cwd: Union[str, Path, None] = None,
                 startup_timeout: float = 20.0, log_path: Union[str, Path, None] = None,
                 keep_log: bool = False):
        self.root = Path(root) if root is not None else None
        self.args = [str(a) for a in args]
        self.extra_env = dict(env or {})
        self.host = host
        self.port = port
        self.lunar_bin = Path(lunar_bin) if lunar_bin else None
        self.cwd = str(cwd) if cwd is not None else None
        self.startup_timeout = startup_timeout
        self.keep_log = keep_log or log_path is not None
        self.log_path = Path(log_path) if log_path else None
        self.process: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self._log_file = None

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def command(self) -> list:
        cmd = [str(self.lunar_bin or find_lunar_bin())]
        if self.root is not None:
            cmd.append(str(self.root))
        cmd += ["--port", str(self.port), "--host", self.host]
        return cmd + self.args

    def start(self) -> "LunarServer":
        if self.process is not None:
            raise RuntimeError("already started")
        if self.lunar_bin is None:
            self.lunar_bin = find_lunar_bin()
        if self.port is None:
            self.port = free_port(_connect_host(self.host))
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"lunar-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        env = dict(os.environ)
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, env=env, cwd=self.cwd, start_new_session=True)
        ok = wait_for_port(self.host, self.port, self.startup_timeout,
                           alive=lambda: self.process.poll() is None)
        if not ok or self.process.poll() is not None:
            if self.process.poll() is None:
                why = f"did not listen on {self.host}:{self.port} within {self.startup_timeout:g} s"
                self.stop()
            else:
                self.stop()
                why = f"exited with status {self.returncode} before listening"
            message = (f"lunar {why}\ncommand: {' '.join(self.command)}\n"
                       f"--- output ---\n{self.output()}--- end of output ---")
            self.cleanup()
            raise LunarStartError(message)
        return self

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        """SIGTERM, wait up to `timeout` s, then SIGKILL. Returns the exit status
        (negative: killed by that signal). Safe to call twice."""
        p = self.process
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.returncode = p.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.returncode

    def signal(self, sig: int) -> None:
        """Sends a signal (e.g. signal.SIGINT) to the server process."""
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: Optional[float] = None) -> int:
        """Waits for the process to exit by itself; returns its status."""
        assert self.process is not None
        self.returncode = self.process.wait(timeout)
        return self.returncode

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cleanup(self) -> None:
        """stop(), and remove the temp log unless it was asked to be kept."""
        self.stop()
        if not self.keep_log and self.log_path is not None:
            try:
                self.log_path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> "LunarServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- what it printed ---------------------------------------------------------------
    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr, interleaved)."""
        if self._log_file is not None:
            self._log_file.flush()
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", errors="replace")

    def wait_for_output(self, predicate: Union[str, Callable[[str], bool]],
                        timeout: float = 10.0) -> str:
        """Polls output() until it contains the substring (or predicate(output) is true);
        returns the output. Raises AssertionError with the output on timeout."""
        test = (lambda out: predicate in out) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        while True:
            out = self.output()
            if test(out):
                return out
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"server output did not show {predicate!r} within {timeout:g} s\n"
                    f"--- output ---\n{out}--- end of output ---")
            time.sleep(0.05)

    # -- addresses ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        h = _connect_host(self.host)
        return f"http://[{h}]:{self.port}" if ":" in h else f"http://{h}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):] + "/wds"

    def url_for(self, path: str = "/") -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    def __repr__(self) -> str:
        return f"<LunarServer {self.url} root={self.root} running={self.running}>"


# ---------------------------------------------------------------------------------------
# Autobahn|Testsuite (fuzzingclient mode, i.e. wstest is the client, Lunar the server)

def autobahn_cases() -> list:
    """The case list: $AUTOBAHN_CASES (comma- or space-separated, e.g. "*" or "1.*,9.1.1"),
    else 1.* .. 7.* and 12.1.*."""
    env = os.environ.get("AUTOBAHN_CASES", "").replace(",", " ").split()
    return env or list(DEFAULT_AUTOBAHN_CASES)


def find_wstest() -> Path:
    path = REPO_ROOT / ".venv-autobahn" / "bin" / "wstest"
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} not found: run scripts/install-deps.sh")
    return path


def run_autobahn(ws_url: str, workdir: Union[str, Path], cases: Optional[list] = None,
                 agent: str = "lunar", timeout: float = 1800.0,
                 exclude: Iterable[str] = ()) -> dict:
    """Runs `wstest -m fuzzingclient` against ws_url in workdir (spec and reports go there),
    with Tests/e2e/autobahn/fuzzingclient.json as the template. Returns {case id: result}
    from reports/index.json (each with "behavior", "behaviorClose", "duration", ...).
    wstest's own output goes to workdir/wstest.log."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec = json.loads((AUTOBAHN_DIR / "fuzzingclient.json").read_text())
    spec["outdir"] = str(workdir / "reports")
    spec["servers"] = [{"agent": agent, "url": ws_url}]
    spec["cases"] = list(cases or autobahn_cases())
    spec["exclude-cases"] = list(spec.get("exclude-cases", [])) + list(exclude)
    spec_path = workdir / "fuzzingclient.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    log_path = workdir / "wstest.log"
    with open(log_path, "wb") as log:
        proc = subprocess.run([str(find_wstest()), "-m", "fuzzingclient", "-s", str(spec_path)],
                              cwd=workdir, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, timeout=timeout)
    index = workdir / "reports" / "index.json"
    if proc.returncode != 0 or not index.exists():
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"wstest exited with {proc.returncode}; no usable {index}\n{tail}")
    return json.loads(index.read_text())[agent]


def _case_key(case_id: str):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))


def summarize_autobahn(results: dict) -> str:
    """A readable summary: counts per behavior and close behavior, the slowest cases, and
    every case whose behavior is not OK."""
    by = collections.Counter(r["behavior"] for r in results.values())
    by_close = collections.Counter(r["behaviorClose"] for r in results.values())
    total_ms = sum(r.get("duration", 0) for r in results.values())
    lines = [f"autobahn: {len(results)} cases in {total_ms / 1000:.1f} s (sum of case durations)",
             "  behavior:       " + ", ".join(f"{k} {v}" for k, v in sorted(by.items())),
             "  behaviorClose:  " + ", ".join(f"{k} {v}" for k, v in sorted(by_close.items()))]
    odd = [(cid, r) for cid, r in results.items()
           if r["behavior"] not in ("OK", "INFORMATIONAL", "UNIMPLEMENTED")
           or r["behaviorClose"] not in ("OK", "INFORMATIONAL", "UNIMPLEMENTED")]
    for cid, r in sorted(odd, key=lambda x: _case_key(x[0])):
        lines.append(f"  {cid}: {r['behavior']} (close: {r['behaviorClose']}, "
                     f"code {r.get('remoteCloseCode')}) -> reports/{r.get('reportfile')}")
    return "\n".join(lines)


def copy_tree(src: Union[str, Path], dst: Union[str, Path]) -> Path:
    """Copies a project folder (e.g. an example) into dst and returns dst."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return Path(dst)


# ---------------------------------------------------------------------------------------
# Headless Chromium (selenium), kept on loopback

CHROMIUM = os.environ.get("LUNAR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LUNAR_CHROMEDRIVER", "/usr/bin/chromedriver")

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--window-size=1280,900",
    # Keep the browser on this machine: every non-loopback request goes to a proxy on a
    # closed port (127.0.0.1:9, "discard") and fails at once. Chromium never proxies
    # loopback addresses (127.0.0.1, localhost, [::1]) unless the bypass list says
    # "<-loopback>", so requests to the server under test go direct.
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<loopback>",
    # No background traffic, no first-run UI.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", "--no-default-browser-check",
    "--disable-extensions", "--disable-client-side-phishing-detection",
    "--disable-domain-reliability", "--disable-breakpad", "--metrics-recording-only",
    "--safebrowsing-disable-auto-update", "--password-store=basic", "--use-mock-keychain",
    "--disable-features=Translate,OptimizationHints,MediaRouter,"
    "DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
]


def make_browser(extra_args: Iterable[str] = (), log_path: Union[str, Path, None] = None):
    """Starts headless Chromium through chromedriver (both from Debian's packages) with
    console capture on (goog:loggingPrefs browser=ALL). Call .quit() when done."""
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS + list(extra_args):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER,
                      log_output=str(log_path) if log_path else subprocess.DEVNULL)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def console_messages(driver) -> list:
    """Every browser console entry since the driver started (or since clear_console):
    dicts with "level" (INFO, WARNING, SEVERE, ...), "message", "source", "timestamp".

    Chromium formats "message" as 'URL LINE:COL ARG ARG...' with string arguments in JSON
    quotes, e.g. 'http://127.0.0.1:8000/main.js 1:8 "hello from lunar"'.

    driver.get_log("browser") returns only the entries that arrived since its previous
    call, so this helper keeps them all on the driver; always read the log through it (or
    through wait_for_console), never with get_log directly, or entries are lost."""
    acc = driver.__dict__.setdefault("_lunar_console", [])
    acc.extend(driver.get_log("browser"))
    return list(acc)


def clear_console(driver) -> None:
    """Forgets the console entries seen so far (drains pending ones first)."""
    console_messages(driver)
    driver.__dict__["_lunar_console"] = []


def reset_browser(driver) -> None:
    """Navigates to about:blank and forgets the console so far."""
    driver.get("about:blank")
    clear_console(driver)


def console_errors(driver) -> list:
    """The SEVERE entries (uncaught errors, console.error, failed loads)."""
    return [e for e in console_messages(driver) if e.get("level") == "SEVERE"]


def wait_for_console(driver, predicate: Union[str, Callable[[dict], bool]],
                     timeout: float = 10.0) -> dict:
    """Polls the accumulated console log until an entry matches: a string matches as a
    substring of the entry's "message"; a callable gets the entry dict. Returns the first
    matching entry; raises AssertionError listing the log on timeout."""
    if isinstance(predicate, str):
        text = predicate
        test = lambda e: text in e.get("message", "")  # noqa: E731
    else:
        test = predicate
    deadline = time.monotonic() + timeout
    while True:
        entries = console_messages(driver)
        for entry in entries:
            if test(entry):
                return entry
        if time.monotonic() >= deadline:
            seen = "\n".join(f"  [{e.get('level')}] {e.get('message')}" for e in entries)
            raise AssertionError(f"no console entry matching {predicate!r} within "
                                 f"{timeout:g} s; the console had:\n{seen or '  (nothing)'}")
        time.sleep(0.1)
