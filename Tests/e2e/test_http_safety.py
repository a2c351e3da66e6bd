"""SPEC §5/§6 (safety, HTTP half): nothing outside the root and no protected file is ever
served, malformed paths are 400s, the Host check stops DNS rebinding, malformed HTTP does
not hurt the server, and it binds loopback by default. Real server, raw sockets."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time

import pytest

from lunar_harness import LunarServer, free_port, make_project

# Markers that must never appear in any response.
OUTSIDE = b"OUTSIDE-SECRET-7f3a"
OUTSIDE_DIR = b"OUTSIDE-DIR-SECRET-91cc"
ENV = b"ENV-SECRET-5512"
ENV_LOCAL = b"ENV-LOCAL-SECRET-0a0a"
GIT = b"GIT-SECRET-e0e0"
PEM = b"PEM-SECRET-4444"
KEY = b"KEY-SECRET-abab"
SECRETS = (OUTSIDE, OUTSIDE_DIR, ENV, ENV_LOCAL, GIT, PEM, KEY)


@pytest.fixture(scope="module")
def safe_server(tmp_path_factory, lunar_bin):
    """One server for the whole module: base/secret.txt and base/outside/ sit next to the
    served base/root, which holds protected files and symbolic links leaving it."""
    base = tmp_path_factory.mktemp("safety")
    make_project(base, {
        "secret.txt": OUTSIDE,
        "outside/secret2.txt": OUTSIDE_DIR,
        "outside/index.html": OUTSIDE_DIR,
        "root/index.html": "<p>index</p>\n",
        "root/x/file.txt": "x file\n",
        "root/inside.txt": "inside target\n",
        "root/.env": ENV,
        "root/.env.local": ENV_LOCAL,
        "root/.git/config": GIT,
        "root/server.pem": PEM,
        "root/id.key": KEY,
        "root/sub/.env": ENV,
        "root/sub/.git/HEAD": GIT,
    })
    root = base / "root"
    os.symlink(base / "secret.txt", root / "link-file.txt")
    os.symlink(base / "outside", root / "link-dir")
    os.symlink("../secret.txt", root / "rel-link.txt")
    os.symlink(root / "inside.txt", root / "alias.txt")  # stays inside: may be served
    os.symlink(root / "x", root / "alias-dir")
    server = LunarServer(root, ["--no-watch"], lunar_bin=lunar_bin)
    server.start()
    yield server
    server.cleanup()


# -- helpers ------------------------------------------------------------------------------

def raw_exchange(port, data: bytes, timeout: float = 3.0) -> bytes:
    """Sends raw bytes, returns all the server sent until it closed (or went quiet)."""
    return raw_exchange_closed(port, data, timeout)[0]


def raw_exchange_closed(port, data: bytes, timeout: float = 1.5):
    """Like raw_exchange, and also says whether the server closed the connection (True) or
    just went quiet for `timeout` seconds with the connection still open (False)."""
    chunks = []
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b"", True
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
    return b"".join(chunks), closed


def raw_get(port, target: str, host: str = None, extra: str = ""):
    """GET with the request target sent byte for byte. Returns (status or None, raw reply)."""
    host = host if host is not None else f"127.0.0.1:{port}"
    data = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
    reply = raw_exchange(port, data.encode("latin-1"))
    return status_of(reply), reply


def status_of(reply: bytes):
    if not reply.startswith(b"HTTP/1."):
        return None
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def assert_no_secret(reply: bytes, what):
    for secret in SECRETS:
        assert secret not in reply, f"{what}: leaked {secret!r}\n{reply[:500]!r}"


def ok_get(port, path="/index.html", host=None):
    status, reply = raw_get(port, path, host=host)
    return status, reply


# -- outside the root and protected files -------------------------------------------------

ESCAPES = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/x/../../secret.txt",
    "/x/%2e%2e/%2e%2e/secret.txt",
    "/x/..%2f..%2fsecret.txt",
    "/./../secret.txt",
    "/../outside/secret2.txt",
    "/../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..",
    "/../",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_paths_leaving_the_root_are_refused(safe_server, target):
    status, reply = raw_get(safe_server.port, target)
    assert status is not None and 400 <= status < 500, (target, reply[:300])
    assert_no_secret(reply, target)
    assert b"root:x:0:0" not in reply


PROTECTED = [
    "//.env",
    "/.env",
    "/.ENV",
    "/.Env",
    "/.env/.",
    "/.env?raw??",
    "/.env?import&raw??",
    "/.env?import",
    "/.env.local",
    "/.ENV.LOCAL",
    "/%2eenv",
    "/%2e%65%6e%76",
    "/x/../.env",
    "/./.env",
    "///.env",
    "/sub/.env",
    "/.git/config",
    "/.GIT/config",
    "/.git/./config",
    "/%2egit/config",
    "/.git%2fconfig",
    "/.git/",
    "/.git",
    "/sub/.git/HEAD",
    "/server.pem",
    "/SERVER.PEM",
    "/server.pem?raw",
    "/id.key",
    "/ID.KEY",
    "/id.key?import&raw??",
    "/x/../id.key",
]


@pytest.mark.parametrize("target", PROTECTED)
def test_protected_files_are_403(safe_server, target):
    status, reply = raw_get(safe_server.port, target)
    assert status == 403, (target, reply[:300])
    assert_no_secret(reply, target)


@pytest.mark.parametrize("target", PROTECTED[:6] + ["/.git/config", "/server.pem", "/ID.KEY"])
def test_protected_files_refused_to_head_too(safe_server, target):
    data = (f"HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1:{safe_server.port}\r\n"
            "Connection: close\r\n\r\n").encode()
    reply = raw_exchange(safe_server.port, data)
    assert status_of(reply) == 403, (target, reply[:300])
    assert_no_secret(reply, target)


@pytest.mark.parametrize("target", [
    "/%00",
    "/a%00.txt",
    "/index.html%00.txt",
    "/%zz",
    "/%e2%28",
    "/%",
    "/%4",
    "/abc%g0",
    "/%c3",
    "/%ff%fe",
])
def test_malformed_paths_are_400(safe_server, target):
    status, reply = raw_get(safe_server.port, target)
    assert status == 400, (target, reply[:300])
    assert_no_secret(reply, target)


@pytest.mark.parametrize("target", ["/index.html#x", "/#", "/.env#x", "/../secret.txt#"])
def test_raw_hash_in_request_line_is_400(safe_server, target):
    status, reply = raw_get(safe_server.port, target)
    assert status == 400, (target, reply[:300])
    assert_no_secret(reply, target)


@pytest.mark.parametrize("target", [
    "/link-file.txt",
    "/rel-link.txt",
    "/link-dir/secret2.txt",
    "/link-dir/",
    "/link-dir/index.html",
    "/link-dir/../secret.txt",
])
def test_symlinks_leaving_the_root_are_refused(safe_server, target):
    status, reply = raw_get(safe_server.port, target)
    assert status in (403, 404), (target, reply[:300])
    assert_no_secret(reply, target)


def test_symlinks_inside_the_root_are_served(safe_server):
    status, reply = raw_get(safe_server.port, "/alias.txt")
    assert status == 200 and reply.endswith(b"inside target\n"), reply
    status, reply = raw_get(safe_server.port, "/alias-dir/file.txt")
    assert status == 200 and reply.endswith(b"x file\n"), reply


@pytest.mark.parametrize("target", [
    "../secret.txt",
    "secret.txt",
    "*",
    "http://127.0.0.1/../secret.txt",
    "http://evil.example/../secret.txt",
])
def test_odd_request_targets_never_leak(safe_server, target):
    data = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{safe_server.port}\r\n"
            "Connection: close\r\n\r\n").encode()
    reply, closed = raw_exchange_closed(safe_server.port, data)
    assert_no_secret(reply, target)
    status = status_of(reply)
    assert (status is not None and 400 <= status < 500) or (reply == b"" and closed), (
        f"{target!r}: expected a 4xx (or the connection closed); got "
        f"{'no reply, connection left open' if not reply and not closed else reply[:300]!r}")


def test_plain_files_still_served(safe_server):
    """The refusals above are not a server that refuses everything."""
    status, reply = raw_get(safe_server.port, "/x/file.txt")
    assert status == 200 and reply.endswith(b"x file\n")
    status, reply = raw_get(safe_server.port, "/x/../index.html")
    assert status == 200 and reply.endswith(b"<p>index</p>\n")
    status, reply = raw_get(safe_server.port, "/.environment-is-not-special/../index.html")
    assert status == 200


# -- DNS rebinding: the Host check ----------------------------------------------------------

@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "localhost.evil.example:{port}",
    "127.0.0.1.evil.example:{port}", "EVIL.EXAMPLE", "example.com",
])
def test_foreign_host_is_403(safe_server, host):
    status, reply = raw_get(safe_server.port, "/index.html", host=host.format(port=safe_server.port))
    assert status == 403, (host, reply[:300])
    assert b"<p>index</p>" not in reply


@pytest.mark.parametrize("host", [
    "localhost:{port}", "127.0.0.1:{port}", "foo.localhost:{port}", "[::1]:{port}",
    "LOCALHOST:{port}", "localhost", "127.0.0.1",
])
def test_local_hosts_are_served(safe_server, host):
    status, reply = raw_get(safe_server.port, "/index.html", host=host.format(port=safe_server.port))
    assert status == 200, (host, reply[:300])
    assert reply.endswith(b"<p>index</p>\n")


def test_foreign_host_refused_for_the_client_module_and_missing_files(safe_server):
    for path in ("/__web-dev-server__web-socket.js", "/nothing-here", "/.env"):
        status, reply = raw_get(safe_server.port, path, host="evil.example")
        assert status == 403, (path, reply[:200])


# -- malformed HTTP ----------------------------------------------------------------------

@pytest.mark.parametrize("garbage", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello start
    b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
], ids=["garbage-line", "no-target", "tls-hello", "bad-header", "negative-length", "huge-target"])
def test_malformed_http_then_server_keeps_serving(safe_server, garbage):
    reply, closed = raw_exchange_closed(safe_server.port, garbage)
    assert_no_secret(reply, garbage[:40])
    status = status_of(reply)
    # Afterwards the server still serves, whatever happened to that connection.
    ok_status, ok_reply = raw_get(safe_server.port, "/index.html")
    assert ok_status == 200 and ok_reply.endswith(b"<p>index</p>\n")
    assert safe_server.running
    assert (status is not None and 400 <= status < 500) or (reply == b"" and closed), (
        f"malformed request {garbage[:40]!r}: expected a 4xx or the connection closed; got "
        f"{'no reply, connection left open' if not reply and not closed else reply[:300]!r}")


def test_half_sent_request_does_not_block_others(safe_server):
    with socket.create_connection(("127.0.0.1", safe_server.port), timeout=2) as stalled:
        stalled.sendall(b"GET /index.html HTTP/1.1\r\nHost: loc")  # never finished
        start = time.monotonic()
        status, reply = raw_get(safe_server.port, "/index.html")
        assert status == 200
        assert time.monotonic() - start < 1.0


# -- loopback by default -----------------------------------------------------------------

class DefaultHostServer(LunarServer):
    """`lunar ROOT --port N --no-watch`: no --host, so the default bind is used."""

    @property
    def command(self):
        return [str(self.lunar_bin), str(self.root), "--port", str(self.port)] + self.args


def _non_loopback_addresses():
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [a for a in out.split() if not a.startswith("127.") and a != "::1"]


def test_binds_loopback_by_default(tmp_path, lunar_bin):
    root = make_project(tmp_path / "root", {"index.html": "<p>hi</p>\n"})
    server = DefaultHostServer(root, ["--no-watch"], lunar_bin=lunar_bin)
    server.start()
    try:
        out = server.wait_for_output("Lunar is serving", timeout=5)
        assert f"http://127.0.0.1:{server.port}/" in out, out
        status, reply = raw_get(server.port, "/index.html")
        assert status == 200
        for address in _non_loopback_addresses():
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                try:
                    s.connect((address, server.port))
                except OSError:
                    continue  # refused (or unreachable): not listening there, as it should be
                pytest.fail(f"lunar accepted a connection on {address}:{server.port}; "
                            f"it should bind 127.0.0.1 only by default")
    finally:
        server.cleanup()
