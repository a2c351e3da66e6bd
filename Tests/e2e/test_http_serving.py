"""SPEC §5 (serving files): content types, caching headers, ETag/304, HEAD, directory
indexes, the app index, odd file names, binary files, the browser client module, the
WebSocket client injection and the `import.meta.hot` prelude. Real server, real HTTP."""

from __future__ import annotations

import http.client
import os
import socket

import pytest

CLIENT_PATH = "/__web-dev-server__web-socket.js"
SCRIPT_TAG = b'<script type="module" src="/__web-dev-server__web-socket.js"></script>'

PAGE = b"<!doctype html>\n<html><head><title>t</title></head><body><h1>page</h1></body></html>\n"


# -- small HTTP helpers ------------------------------------------------------------------

def fetch(server, path, method="GET", headers=None):
    """One request with http.client (which sends the path exactly as given).
    Returns (status, {lower-case header: value}, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{server.port}")
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def raw_exchange(server, data: bytes, timeout: float = 3.0) -> bytes:
    """Sends raw bytes, returns everything the server sent until it closed the connection."""
    chunks = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks)


def request_bytes(server, method, path, extra=""):
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{extra}\r\n").encode()


def media_type(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower()


# -- content types and caching ------------------------------------------------------------

@pytest.mark.parametrize("name, content, expected", [
    ("page.html", PAGE, "text/html"),
    ("app.js", b"export const x = 1;\n", "text/javascript"),
    ("mod.mjs", b"export default 2;\n", "text/javascript"),
    ("style.css", b"body { color: red }\n", "text/css"),
    ("data.json", b'{"a": 1}\n', "application/json"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>\n', "image/svg+xml"),
    ("pixel.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "image/png"),
    ("blob.unknownext", b"\x00\x01\x02whatever", "application/octet-stream"),
])
def test_content_type_by_extension(project, make_server, name, content, expected):
    root = project({name: content})
    server = make_server(root, "--no-watch")
    status, headers, body = fetch(server, "/" + name)
    assert status == 200
    assert media_type(headers) == expected, headers
    assert body == content


def test_cache_control_no_cache_and_etag(project, make_server):
    root = project({"app.js": "export const a = 1;\n", "index.html": PAGE})
    server = make_server(root, "--no-watch")
    for path in ("/app.js", "/index.html", "/"):
        status, headers, _ = fetch(server, path)
        assert status == 200, path
        assert headers.get("cache-control") == "no-cache", (path, headers)
        assert headers.get("etag"), (path, headers)


def test_if_none_match_gives_304_without_body(project, make_server):
    root = project({"app.js": "export const a = 1;\n", "other.txt": "other\n"})
    server = make_server(root, "--no-watch")
    status, headers, body = fetch(server, "/app.js")
    assert status == 200
    etag = headers["etag"]

    status, headers304, body304 = fetch(server, "/app.js", headers={"If-None-Match": etag})
    assert status == 304
    assert body304 == b""

    # On the wire: the 304 carries no body, so a pipelined second request's response
    # follows the 304's header block directly.
    wire = raw_exchange(server, request_bytes(server, "GET", "/app.js", f"If-None-Match: {etag}\r\n")
                        + request_bytes(server, "GET", "/other.txt", "Connection: close\r\n"))
    assert wire.startswith(b"HTTP/1.1 304"), wire[:200]
    head, _, rest = wire.partition(b"\r\n\r\n")
    assert rest.startswith(b"HTTP/1.1 200"), wire
    assert rest.endswith(b"other\n"), wire

    # A different tag (and a list holding ours) behave as HTTP says.
    status, _, body = fetch(server, "/app.js", headers={"If-None-Match": '"not-the-tag"'})
    assert status == 200 and body == b"export const a = 1;\n"
    status, _, _ = fetch(server, "/app.js", headers={"If-None-Match": f'"nope", {etag}'})
    assert status == 304


def test_etag_changes_when_the_file_changes(project, make_server):
    root = project({"data.json": '{"v": 1}\n'})
    server = make_server(root, "--no-watch")
    _, headers, body = fetch(server, "/data.json")
    first = headers["etag"]
    assert body == b'{"v": 1}\n'

    (root / "data.json").write_text('{"v": 22222}\n')  # another size: a new stat identity
    status, headers, body = fetch(server, "/data.json")
    assert status == 200 and body == b'{"v": 22222}\n'
    assert headers["etag"] != first

    status, _, body = fetch(server, "/data.json", headers={"If-None-Match": first})
    assert status == 200 and body == b'{"v": 22222}\n'
    status, _, _ = fetch(server, "/data.json", headers={"If-None-Match": headers["etag"]})
    assert status == 304


def test_etag_changes_on_same_size_rewrite(project, make_server):
    root = project({"a.txt": "AAAA\n"})
    server = make_server(root, "--no-watch")
    _, headers, _ = fetch(server, "/a.txt")
    first = headers["etag"]
    path = root / "a.txt"
    path.write_text("BBBB\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # mtime surely differs
    status, headers, body = fetch(server, "/a.txt")
    assert status == 200 and body == b"BBBB\n"
    assert headers["etag"] != first


def test_head_gives_headers_and_no_body(project, make_server):
    content = b"export const big = '" + b"x" * 5000 + b"';\n"
    root = project({"app.js": content, "other.txt": "other\n"})
    server = make_server(root, "--no-watch")
    get_status, get_headers, _ = fetch(server, "/app.js")
    status, headers, body = fetch(server, "/app.js", method="HEAD")
    assert status == 200 and body == b""
    assert headers.get("content-length") == str(len(content)), headers
    assert media_type(headers) == "text/javascript"
    assert headers.get("etag") == get_headers["etag"]
    assert headers.get("cache-control") == "no-cache"

    wire = raw_exchange(server, request_bytes(server, "HEAD", "/app.js")
                        + request_bytes(server, "GET", "/other.txt", "Connection: close\r\n"))
    head, _, rest = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), wire[:300]
    assert rest.startswith(b"HTTP/1.1 200"), wire[:300]  # nothing between the two responses
    assert rest.endswith(b"other\n")


def test_head_of_missing_file_is_404(project, make_server):
    server = make_server(project({"index.html": PAGE}), "--no-watch")
    status, _, body = fetch(server, "/nope.js", method="HEAD")
    assert status == 404 and body == b""


# -- directories, missing files, the app index ----------------------------------------------

def test_directory_with_slash_serves_its_index(project, make_server):
    root = project({"index.html": PAGE, "dir/index.html": "<!doctype html><p>dir index</p>\n"})
    server = make_server(root, "--no-watch")
    status, headers, body = fetch(server, "/dir/")
    assert status == 200 and body == b"<!doctype html><p>dir index</p>\n"
    assert media_type(headers) == "text/html"
    status, _, body = fetch(server, "/")
    assert status == 200 and body == PAGE


def test_directory_without_slash_redirects(project, make_server):
    root = project({"dir/index.html": "<p>dir</p>\n"})
    server = make_server(root, "--no-watch")
    status, headers, _ = fetch(server, "/dir")
    assert status in (301, 302, 307, 308)
    assert headers.get("location") == "/dir/"
    status, headers, _ = fetch(server, "/dir?x=1")
    assert status in (301, 302, 307, 308)
    assert headers.get("location") == "/dir/?x=1"


def test_directory_without_index_is_not_a_listing(project, make_server):
    root = project({"empty/readme.txt": "r\n"})
    server = make_server(root, "--no-watch")
    status, _, body = fetch(server, "/empty/")
    assert status == 404
    assert b"readme.txt" not in body


def test_missing_file_is_404(project, make_server):
    server = make_server(project({"index.html": PAGE}), "--no-watch")
    for path in ("/missing.js", "/no/such/dir/", "/index.html/x"):
        status, _, _ = fetch(server, path)
        assert status == 404, path


APP_FILES = {
    "index.html": "<!doctype html><title>app</title><p>APP INDEX</p>\n",
    "main.js": "export default 1;\n",
}


def _check_app_index(server):
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for route in ("/some/route", "/users/42", "/x"):
        status, headers, body = fetch(server, route, headers=html)
        assert status == 200, route
        assert b"APP INDEX" in body, route
        assert media_type(headers) == "text/html"
    status, _, _ = fetch(server, "/missing.js", headers=html)
    assert status == 404
    status, _, _ = fetch(server, "/some/route", headers={"Accept": "application/json"})
    assert status == 404
    status, _, _ = fetch(server, "/some/route")
    assert status == 404
    status, _, body = fetch(server, "/main.js", headers=html)  # real files still win
    assert status == 200 and body == b"export default 1;\n"


def test_app_index_from_config(project, make_server):
    root = project(dict(APP_FILES, **{
        "lunar.config.lua": 'return { appIndex = "index.html", watch = false }\n'}))
    _check_app_index(make_server(root))


def test_app_index_from_flag(project, make_server):
    root = project(APP_FILES)
    _check_app_index(make_server(root, "--no-watch", "--app-index", "index.html"))


def test_without_app_index_routes_are_404(project, make_server):
    server = make_server(project(APP_FILES), "--no-watch")
    status, _, _ = fetch(server, "/some/route", headers={"Accept": "text/html"})
    assert status == 404


# -- names and bytes ------------------------------------------------------------------------

def test_percent_encoded_names(project, make_server):
    root = project({"café.txt": "accent\n", "my file.txt": "space\n", "dir x/ü.js": "export {};\n",
                    "a+b.txt": "plus\n"})
    server = make_server(root, "--no-watch")
    assert fetch(server, "/caf%C3%A9.txt")[2] == b"accent\n"
    assert fetch(server, "/caf%c3%a9.txt")[2] == b"accent\n"
    assert fetch(server, "/my%20file.txt")[2] == b"space\n"
    status, headers, body = fetch(server, "/dir%20x/%C3%BC.js")
    assert status == 200 and body == b"export {};\n"
    assert media_type(headers) == "text/javascript"
    status, _, body = fetch(server, "/a+b.txt")  # '+' in a path is a plus, not a space
    assert status == 200 and body == b"plus\n"
    status, _, _ = fetch(server, "/caf%C3%A9.txt?v=1&x=%20")
    assert status == 200


def test_large_binary_file_is_byte_exact(project, make_server):
    data = os.urandom(1 << 20)
    root = project({"blob.bin": data})
    server = make_server(root, "--no-watch")
    status, headers, body = fetch(server, "/blob.bin")
    assert status == 200
    assert headers.get("content-length") == str(len(data))
    assert body == data


def test_binary_png_with_html_markers_is_untouched(project, make_server):
    # Injection is on (watch on: live-reload asks for it); an image is never rewritten.
    data = b"\x89PNG\r\n\x1a\n<!doctype html><body></body>" + bytes(range(256))
    root = project({"x.png": data, "y.js": b"// import.meta.hot but as octets\n"})
    server = make_server(root)
    status, headers, body = fetch(server, "/x.png")
    assert status == 200 and body == data and media_type(headers) == "image/png"


# -- the browser client, injection and import.meta.hot -----------------------------------------

def test_client_module_is_served_as_javascript(project, make_server):
    server = make_server(project({"index.html": PAGE}), "--no-watch")
    status, headers, body = fetch(server, CLIENT_PATH)
    assert status == 200
    assert media_type(headers) == "text/javascript"
    assert b"export" in body and b"/wds" in body
    status, headers, body = fetch(server, CLIENT_PATH, method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_live_reload_injects_client_into_full_page(project, make_server):
    root = project({"index.html": PAGE, "frag.html": "<p>just a fragment</p>\n",
                    "sub/page.htm": "<HTML><BODY>upper</BODY></HTML>"})
    server = make_server(root)  # watch on: the bundled live-reload plugin asks for injection
    status, headers, body = fetch(server, "/index.html")
    assert status == 200
    assert body == PAGE.replace(b"</body>", SCRIPT_TAG + b"</body>")
    assert headers.get("content-length") == str(len(body))
    status, _, body = fetch(server, "/")
    assert body == PAGE.replace(b"</body>", SCRIPT_TAG + b"</body>")
    # A fragment is left alone, byte for byte.
    status, _, body = fetch(server, "/frag.html")
    assert status == 200 and body == b"<p>just a fragment</p>\n"
    # Tags in upper case are still a full page.
    status, _, body = fetch(server, "/sub/page.htm")
    assert body == b"<HTML><BODY>upper" + SCRIPT_TAG + b"</BODY></HTML>"


def test_injected_page_etag_and_304(project, make_server):
    root = project({"index.html": PAGE})
    server = make_server(root)
    _, headers, body = fetch(server, "/index.html")
    assert SCRIPT_TAG in body
    status, _, body = fetch(server, "/index.html", headers={"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""


def test_injection_falls_back_to_head_then_end(project, make_server):
    root = project({"head.html": "<!doctype html><html><head><title>x</title></head></html>",
                    "bare.html": "<!DOCTYPE html><p>no closing tags"})
    server = make_server(root)
    body = fetch(server, "/head.html")[2]
    assert body == b"<!doctype html><html><head><title>x</title>" + SCRIPT_TAG + b"</head></html>"
    body = fetch(server, "/bare.html")[2]
    assert body == b"<!DOCTYPE html><p>no closing tags" + SCRIPT_TAG


def test_no_injection_without_a_plugin_asking(project, make_server):
    root = project({"index.html": PAGE})
    server = make_server(root, "--no-watch")
    assert fetch(server, "/index.html")[2] == PAGE


def test_plugin_with_inject_websocket_injects(project, make_server):
    root = project({
        "index.html": PAGE,
        "plugins/inj.lua": 'return { name = "inj", injectWebSocket = true }\n',
        "lunar.config.lua": 'return { watch = false, plugins = { "./plugins/inj.lua" } }\n',
    })
    server = make_server(root)
    assert fetch(server, "/index.html")[2] == PAGE.replace(b"</body>", SCRIPT_TAG + b"</body>")


def test_config_inject_websocket_false_wins(project, make_server):
    root = project({
        "index.html": PAGE,
        "plugins/inj.lua": 'return { name = "inj", injectWebSocket = true }\n',
        "lunar.config.lua": 'return { injectWebSocket = false, plugins = { "./plugins/inj.lua" } }\n',
    })
    server = make_server(root)  # watch on: live-reload asks too; the config says no
    status, _, body = fetch(server, "/index.html")
    assert status == 200 and body == PAGE
    # The client module still works without injection.
    assert fetch(server, CLIENT_PATH)[0] == 200


def test_served_page_from_plugin_gets_injection(project, make_server):
    root = project({
        "plugins/virt.lua": (
            'return { name = "virt", injectWebSocket = true, serve = function(ctx)\n'
            '  if ctx.path == "/virtual.html" then\n'
            '    return { body = "<!doctype html><body>virtual</body>", type = "html" }\n'
            '  end\nend }\n'),
        "lunar.config.lua": 'return { watch = false, plugins = { "./plugins/virt.lua" } }\n',
    })
    server = make_server(root)
    status, headers, body = fetch(server, "/virtual.html")
    assert status == 200 and media_type(headers) == "text/html"
    assert body == b"<!doctype html><body>virtual" + SCRIPT_TAG + b"</body>"


def test_import_meta_hot_prelude(project, make_server):
    hot = b"if (import.meta.hot) {\n  import.meta.hot.on('x', () => {});\n}\nexport const v = 1;\n"
    cold = b"// plain module, no hot API\nexport const w = 2;\n"
    root = project({"hot.js": hot, "cold.js": cold, "hot.mjs": hot})
    server = make_server(root, "--no-watch")
    for path in ("/hot.js", "/hot.mjs"):
        status, headers, body = fetch(server, path)
        assert status == 200 and media_type(headers) == "text/javascript"
        assert body.endswith(hot), body
        prelude = body[: len(body) - len(hot)]
        assert b"import" in prelude and b'"/__web-dev-server__web-socket.js"' in prelude, prelude
        assert b"import.meta.hot" in prelude
        assert headers.get("content-length") == str(len(body))
    status, _, body = fetch(server, "/cold.js")
    assert status == 200 and body == cold


def test_import_meta_hot_not_added_to_non_javascript(project, make_server):
    text = b"import.meta.hot is mentioned in this text file\n"
    root = project({"notes.txt": text, "style.css": b"/* import.meta.hot */\n"})
    server = make_server(root, "--no-watch")
    assert fetch(server, "/notes.txt")[2] == text
    assert fetch(server, "/style.css")[2] == b"/* import.meta.hot */\n"


# -- Last-Modified, keep-alive and pipelining (plain files are answered on the event loop) ----

def test_last_modified_and_if_modified_since(project, make_server):
    root = project({"app.js": "export const a = 1;\n"})
    os.utime(root / "app.js", (784111777, 784111777))  # Sun, 06 Nov 1994 08:49:37 GMT
    server = make_server(root, "--no-watch")
    status, headers, _ = fetch(server, "/app.js")
    assert status == 200
    assert headers.get("last-modified") == "Sun, 06 Nov 1994 08:49:37 GMT", headers
    assert headers.get("date", "").endswith(" GMT"), headers

    status, _, body = fetch(server, "/app.js", headers={"If-Modified-Since": headers["last-modified"]})
    assert status == 304 and body == b""
    status, _, body = fetch(server, "/app.js", headers={"If-Modified-Since": "Mon, 07 Nov 1994 08:49:37 GMT"})
    assert status == 200 and body == b"export const a = 1;\n"
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2).
    status, _, _ = fetch(server, "/app.js", headers={"If-None-Match": '"other"', "If-Modified-Since": headers["last-modified"]})
    assert status == 200
    # Plugin-made bodies have no file date.
    status, headers, _ = fetch(server, CLIENT_PATH)
    assert status == 200 and "last-modified" not in headers


def test_http_1_0_gets_a_1_0_answer_and_the_connection_closes(project, make_server):
    from test_http_safety import raw_exchange_closed
    root = project({"a.txt": "aaa\n"})
    server = make_server(root, "--no-watch")
    fetch(server, "/a.txt")  # in memory now: the event loop answers the next ones
    for _ in range(2):
        wire, closed = raw_exchange_closed(server.port, f"GET /a.txt HTTP/1.0\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        assert wire.startswith(b"HTTP/1.0 200"), wire[:200]
        assert wire.endswith(b"\r\n\r\naaa\n"), wire
        assert closed, "an HTTP/1.0 request without keep-alive left the connection open"


def test_pipelined_requests_answer_in_order_across_plain_and_full_paths(project, make_server):
    """Plain files in memory (answered on the event loop at once) pipelined with requests the
    full path answers after a hop through a task (a 404, a redirect, the client module): the
    answers come back in request order."""
    root = project({"a.txt": "file a\n", "b.txt": "file b\n", "dir/index.html": "<p>dir</p>\n"})
    server = make_server(root, "--no-watch")
    for path in ("/a.txt", "/b.txt"):
        fetch(server, path)  # read into memory, so the event loop answers them below
    paths = ["/a.txt", "/missing.txt", "/b.txt", CLIENT_PATH, "/a.txt", "/dir", "/b.txt", "/a.txt"]
    data = b"".join(request_bytes(server, "GET", p) for p in paths[:-1]) \
        + request_bytes(server, "GET", paths[-1], "Connection: close\r\n")
    wire = raw_exchange(server, data, timeout=5)
    expected = [(b"200", b"file a\n"), (b"404", None), (b"200", b"file b\n"), (b"200", None),
                (b"200", b"file a\n"), (b"301", None), (b"200", b"file b\n"), (b"200", b"file a\n")]
    rest = wire
    for path, (status, body) in zip(paths, expected):
        assert rest.startswith(b"HTTP/1.1 " + status), (path, rest[:300])
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        got, rest = rest[:length], rest[length:]
        if body is not None:
            assert got == body, (path, got)
        if path == CLIENT_PATH:
            assert b"export" in got, got[:100]
    assert rest == b"", rest


def test_last_modified_on_the_full_path(project, make_server):
    """With a plugin hook every request takes the full path: the same Last-Modified and
    If-Modified-Since rules; a 304 there carries no Content-Length either."""
    root = project({
        "app.js": "export const a = 1;\n",
        "lunar.config.lua": "return { plugins = { { name = 'types', resolveMimeType = function(ctx) end } } }\n",
    })
    os.utime(root / "app.js", (784111777, 784111777))
    server = make_server(root, "--no-watch")
    status, headers, _ = fetch(server, "/app.js")
    assert status == 200 and headers.get("last-modified") == "Sun, 06 Nov 1994 08:49:37 GMT", headers
    status, headers, body = fetch(server, "/app.js", headers={"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"})
    assert status == 304 and body == b"" and "content-length" not in headers, headers


def test_plain_file_request_with_a_body_is_answered_and_the_body_skipped(project, make_server):
    root = project({"a.txt": "aaa\n", "b.txt": "bbb\n"})
    server = make_server(root, "--no-watch")
    for path in ("/a.txt", "/b.txt"):
        fetch(server, path)  # in memory: the event loop answers below
    body = b"x" * 3000
    data = (f"GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body \
        + request_bytes(server, "GET", "/b.txt", "Connection: close\r\n")
    wire = raw_exchange(server, data)
    first, _, rest = wire.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200"), wire[:200]
    assert rest.startswith(b"aaa\nHTTP/1.1 200"), wire
    assert rest.endswith(b"bbb\n"), wire


def test_no_last_modified_for_a_rewritten_body(project, make_server):
    """A body Lunar rewrote (the import.meta.hot prelude, the injected client) may change while
    the file does not: it is tagged by its bytes only. The file's own bytes carry its date."""
    root = project({"hot.js": "if (import.meta.hot) { import.meta.hot.on('x', () => {}) }\n",
                    "plain.js": "export const a = 1;\n"})
    server = make_server(root, "--no-watch")
    for _ in range(2):  # the full path first, then the event loop's
        _, hot, body = fetch(server, "/hot.js")
        assert b"__lunar_hot" in body and "last-modified" not in hot and hot.get("etag"), hot
        _, plain, _ = fetch(server, "/plain.js")
        assert plain.get("last-modified"), plain
