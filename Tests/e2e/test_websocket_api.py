"""The server side of the WebSocket channel (SPEC §4, docs/PROTOCOL.md), driven by plain
Python WebSocket clients against the real lunar binary: every row of the `ctx.webSockets`
and client tables, requests and their responses, reserved names, ordering, and the
reconnect/replay protocol at the frame level. No browser.

One probe plugin (PROBE below) is loaded by every server. Besides fixed handlers it has an
`eval` event: a request `eval` whose data is Lua source runs it in the plugin with `ws`
(ctx.webSockets), `client` (the sender), `seen` (a log of what the handlers saw), `keep` (a
table that lasts as long as the server) and `note(...)`, and answers with its result. So
each test says, in Lua, exactly what the plugin does.

What a plain connection gets (checked by test_send_text_verbatim_and_hello_only_with_session):
a client that connects to /wds without `?session=` is a plain client and gets no
`lunar:hello`; its first frame is the first thing a plugin sends. A client with a valid
`?session=` gets `{"type":"lunar:hello",...}` first.

Helpers (Peer, RawWS, start_probe) are imported by test_websocket_hostile.py."""

from __future__ import annotations

import base64
import collections
import json
import os
import socket
import struct
import time
import uuid

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

TIMEOUT = 5

PROBE = r'''
local ws
local seen, keep = {}, {}
local function note(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  seen[#seen + 1] = table.concat(parts, " ")
end

return {
  name = "probe",
  serverStart = function(ctx)
    ws = ctx.webSockets
    ws:on("connection", function(client) note("connection", client.id) end)
    ws:on("disconnect", function(client) note("disconnect", client.id) end)
    ws:on("message", function(m)
      if m.binary ~= nil then
        note("binary", m.webSocket.id, #m.binary)
        m.webSocket:sendBinary(m.binary)
        return
      end
      note("message", m.webSocket.id, m.text)
      if m.data and m.data.quiet then return end
      m.webSocket:send({ type = "echo", text = m.text, isNil = m.data == nil, data = m.data })
      if m.data and m.data.type == "ask" then return "answer to " .. tostring(m.data.q) end
    end)
    ws:on("eval", function(code, client)
      local env = setmetatable({ ws = ws, client = client, seen = seen, keep = keep, note = note },
        { __index = _ENV })
      local chunk = assert(load(code, "=eval", "t", env))
      return chunk()
    end)
    ws:on("whoami", function(_, client) return client.id end)
    ws:on("ev", function(data, client)
      note("ev", client.id)
      return { data = data, id = client.id, isNil = data == nil }
    end)
    ws:on("num", function(n, client)
      local order = client.data.order or {}
      client.data.order = order
      order[#order + 1] = n
    end)
    ws:on("bcast", function(data, client) client:broadcast("n", data) return true end)
  end,
  serve = function(ctx)
    if ctx.path == "/seen" then return { body = json.encode(json.array(seen)), type = "json" } end
    if ctx.path == "/clients" then return { body = tostring(#ws:clients()), type = "txt" } end
  end,
}
'''


def probe_files(extra_config: str = "", plugin: str = PROBE) -> dict:
    return {
        "index.html": "<!doctype html><html><body>probe</body></html>",
        "lunar.config.lua": ("return { watch = false, timeout = 300, " + extra_config +
                             ' plugins = { "./plugins/probe.lua" } }\n'),
        "plugins/probe.lua": plugin,
    }


def start_probe(make_server, project, extra_config: str = "", plugin: str = PROBE):
    root = project(probe_files(extra_config, plugin))
    return make_server(root, "--no-watch", env={"LUNAR_PLUGIN_PATH": None})


def seen(server) -> list:
    return requests.get(server.url_for("/seen"), timeout=TIMEOUT).json()


def wait_until(predicate, timeout=TIMEOUT, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached within {timeout} s")
        time.sleep(interval)


def as_json(frame):
    if isinstance(frame, (bytes, bytearray)):
        return None
    try:
        return json.loads(frame)
    except ValueError:
        return None


class Peer:
    """A WebSocket client (the `websockets` library) with helpers. Frames read while waiting
    for a response are kept, in order, for recv()."""

    def __init__(self, url, **kwargs):
        kwargs.setdefault("open_timeout", TIMEOUT)
        kwargs.setdefault("close_timeout", 2)
        kwargs.setdefault("proxy", None)
        kwargs.setdefault("max_size", None)
        self.ws = ws_connect(url, legacy=True, **kwargs)
        self.inbox = collections.deque()
        self.next_id = 1

    def close(self):
        self.ws.close()

    def recv(self, timeout=TIMEOUT):
        if self.inbox:
            return self.inbox.popleft()
        return self.ws.recv(timeout=timeout)

    def recv_json(self, timeout=TIMEOUT):
        frame = self.recv(timeout)
        message = as_json(frame)
        assert message is not None, f"not a JSON frame: {frame!r}"
        return message

    def recv_until(self, predicate, timeout=TIMEOUT):
        """Frames up to and including the first for which predicate(frame) is true."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching frame within {timeout} s; got {got!r}")
            try:
                frame = self.recv(left)
            except TimeoutError:
                raise AssertionError(f"no matching frame within {timeout} s; got {got!r}")
            got.append(frame)
            if predicate(frame):
                return got

    def expect_nothing(self, wait=0.3):
        if self.inbox:
            raise AssertionError(f"unexpected frames: {list(self.inbox)!r}")
        try:
            frame = self.ws.recv(timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame!r}")

    def send_json(self, message):
        self.ws.send(json.dumps(message))

    def send_raw(self, data):
        self.ws.send(data)

    def request_message(self, message, timeout=TIMEOUT):
        """Sends `message` with a fresh id; returns the message-response for it. Frames in
        between go to the inbox."""
        rid = self.next_id
        self.next_id += 1
        self.send_json(dict(message, id=rid))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no message-response {rid} within {timeout} s; inbox {list(self.inbox)!r}")
            try:
                frame = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            message_in = as_json(frame)
            if (isinstance(message_in, dict) and message_in.get("type") == "message-response"
                    and message_in.get("id") == rid):
                return message_in
            self.inbox.append(frame)

    def request(self, event, data=None, timeout=TIMEOUT):
        return self.request_message({"type": "custom", "event": event, "data": data}, timeout)

    def call(self, event, data=None, timeout=TIMEOUT):
        """request(), returning the response; fails on an error response."""
        answer = self.request(event, data, timeout)
        assert "error" not in answer, answer
        return answer["response"]

    def eval(self, code, timeout=TIMEOUT):
        return self.call("eval", code, timeout)

    def drop_console_errors(self):
        """Removes the console.error imports that a failing handler sends to every page."""
        self.inbox = collections.deque(
            f for f in self.inbox
            if not (isinstance(as_json(f), dict) and as_json(f).get("type") == "import"
                    and "console.error" in json.dumps(as_json(f))))


class RawWS:
    """A WebSocket client on a bare socket: full control over the handshake, the frames,
    reading (or not reading) and how the connection ends."""

    def __init__(self, host, port, path="/wds", headers=None, timeout=TIMEOUT, rcvbuf=None,
                 host_header=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host_header or f'{host}:{port}'}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        parts = self.head.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.buf = bytearray(rest)
        self.close_code = None
        self.close_reason = None

    # -- reading ------------------------------------------------------------------------
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed by the server")
            self.buf += chunk

    def recv_frame(self, timeout=TIMEOUT):
        """(fin, opcode, payload) of the next frame."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        length, offset = b1 & 0x7F, 2
        if length == 126:
            self._fill(4, deadline)
            length, offset = struct.unpack("!H", self.buf[2:4])[0], 4
        elif length == 127:
            self._fill(10, deadline)
            length, offset = struct.unpack("!Q", self.buf[2:10])[0], 10
        masked = b1 & 0x80
        if masked:
            offset += 4
        self._fill(offset + length, deadline)
        payload = bytes(self.buf[offset:offset + length])
        if masked:
            mask = self.buf[offset - 4:offset]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        del self.buf[:offset + length]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self, timeout=TIMEOUT):
        """The next data message: str for text, bytes for binary. Answers pings. Raises
        EOFError after a close frame (close_code / close_reason are set) or at EOF."""
        deadline = time.monotonic() + timeout
        parts, kind = [], None
        while True:
            fin, opcode, payload = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if opcode == 0x8:
                if len(payload) >= 2:
                    self.close_code = struct.unpack("!H", payload[:2])[0]
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                else:
                    self.close_code = 1005
                raise EOFError(f"close frame {self.close_code} {self.close_reason!r}")
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                kind = opcode
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                return data.decode("utf-8") if kind == 0x1 else data

    def recv_json(self, timeout=TIMEOUT):
        return json.loads(self.recv(timeout))

    def expect_nothing(self, wait=0.3):
        try:
            frame = self.recv(wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame!r}")

    # -- writing ------------------------------------------------------------------------
    def send_frame(self, opcode, payload=b"", fin=True):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        header = bytearray([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header.append(0x80 | 126)
            header += struct.pack("!H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", n)
        mask = os.urandom(4)
        header += mask
        masked = _mask(payload, mask) if n else b""
        self.sock.sendall(bytes(header) + masked)

    def send_text(self, text):
        self.send_frame(0x1, text)

    def send_json(self, message):
        self.send_text(json.dumps(message))

    def close(self, code=1000, reason=""):
        try:
            self.send_frame(0x8, struct.pack("!H", code) + reason.encode())
        except OSError:
            pass
        self.sock.close()

    def abort(self):
        """Drops the TCP connection without a close frame (RST)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def _mask(payload, mask):
    """XOR with the repeated 4-byte mask, as one big integer (fast for megabytes)."""
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def lua_str(text):
    """A Lua string literal for `text` (JSON's escapes minus \\uXXXX, which Lua lacks)."""
    return json.dumps(text, ensure_ascii=False)


def session_url(server, session, ack):
    return f"{server.ws_url}?session={session}&ack={ack}"


def new_session():
    return uuid.uuid4().hex


# --- Sending ---------------------------------------------------------------------------------

def test_send_text_verbatim_and_hello_only_with_session(make_server, project):
    server = start_probe(make_server, project)
    plain = Peer(server.ws_url)
    session = new_session()
    paged = Peer(session_url(server, session, 0))
    control = Peer(server.ws_url)

    # A plain client gets no hello: nothing arrives until a plugin sends.
    plain.expect_nothing()
    # A client with a session gets the hello first.
    hello = paged.recv_json()
    assert hello["type"] == "lunar:hello", hello
    assert hello["session"] == session and hello["resumed"] is False, hello
    assert isinstance(hello["boot"], str) and hello["boot"], hello

    text = 'not JSON at all <b>&amp;</b> ünïcödé {"half":'
    control.eval(f"ws:send({lua_str(text)})")
    assert plain.recv() == text
    assert paged.recv() == text
    assert control.inbox.popleft() == text  # every open page, the sender too
    plain.expect_nothing()
    paged.expect_nothing()


def test_send_table_event_and_one_argument(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    control = Peer(server.ws_url)

    control.eval('ws:send({ type = "x", list = { 1, 2, 3 }, nested = { a = true } })')
    assert page.recv_json() == {"type": "x", "list": [1, 2, 3], "nested": {"a": True}}

    control.eval('ws:send("news", { headline = "hi" })')
    assert page.recv_json() == {"type": "custom", "event": "news", "data": {"headline": "hi"}}

    # Two arguments, the second nil: a custom event whose data is null.
    control.eval('ws:send("ping", nil)')
    raw = page.recv()
    assert json.loads(raw) == {"type": "custom", "event": "ping", "data": None}
    assert '"data":null' in raw.replace(" ", ""), raw

    # One argument is send(text): the string goes out as it is (not a custom event).
    control.eval('ws:send("ping")')
    assert page.recv() == "ping"
    page.expect_nothing()


def test_send_import_and_console_log(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    control = Peer(server.ws_url)

    control.eval('ws:sendImport("/foo.js", { "a", "b", "c" })')
    assert page.recv_json() == {"type": "import", "data": {"importPath": "/foo.js", "args": ["a", "b", "c"]}}

    control.eval('ws:sendImport("/bar.js")')
    assert page.recv_json() == {"type": "import", "data": {"importPath": "/bar.js", "args": []}}

    control.eval('ws:sendImport("data:text/javascript,window.x=1")')
    assert page.recv_json() == {"type": "import",
                                "data": {"importPath": "data:text/javascript,window.x=1", "args": []}}

    control.eval('ws:sendConsoleLog("my-plugin", "Hello world!", 42, nil, true, { k = "v" })')
    message = page.recv_json()
    assert message["type"] == "import", message
    path = message["data"]["importPath"]
    assert path.startswith("data:text/javascript,"), path
    assert "console.log" in path, path
    assert message["data"]["args"] == ["my-plugin", "Hello world!", 42, None, True, {"k": "v"}]

    control.eval('ws:sendConsoleLog()')
    assert page.recv_json()["data"]["args"] == []
    page.expect_nothing()


# --- Receiving -------------------------------------------------------------------------------

def test_message_handler_data_text_and_binary(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)

    sent = '{"type":"hello","n":[1,2],"s":"x"}'
    page.send_raw(sent)
    echo = page.recv_json()
    assert echo == {"type": "echo", "text": sent, "isNil": False,
                    "data": {"type": "hello", "n": [1, 2], "s": "x"}}

    for text in ["not json", '{"type": "cut', ""]:
        page.send_raw(text)
        echo = page.recv_json()
        assert echo["isNil"] is True and echo["text"] == text and "data" not in echo, echo

    blob = bytes(range(256)) * 4 + b"\x00\xff"
    page.send_raw(blob)
    assert page.recv() == blob  # sendBinary echo, byte for byte
    page.send_raw(b"")
    assert page.recv() == b""
    pid = page.call("whoami")
    log = seen(server)
    assert f"binary {pid} {len(blob)}" in log, log
    assert f"binary {pid} 0" in log, log


def test_custom_event_handler_gets_data_and_client(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    me = page.call("whoami")
    assert page.call("ev", {"x": [1, "two"]}) == {"data": {"x": [1, "two"]}, "id": me, "isNil": False}
    assert page.call("ev", None) == {"id": me, "isNil": True}
    # Without an id: the handler runs, nothing is answered.
    page.send_json({"type": "custom", "event": "ev", "data": 5})
    page.expect_nothing()
    wait_until(lambda: seen(server).count(f"ev {me}") == 3, message="three ev notes")


def test_off_one_handler_and_all(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    page.eval('''
        keep.h1 = function() note("h1") return "from h1" end
        keep.h2 = function() note("h2") return "from h2" end
        ws:on("offt", keep.h1)
        ws:on("offt", keep.h2)
    ''')
    assert page.call("offt") == "from h1"
    page.eval('ws:off("offt", keep.h1)')
    assert page.call("offt") == "from h2"
    page.eval('ws:on("offt", keep.h1)')
    assert page.call("offt") == "from h2"  # re-added last
    page.eval('ws:off("offt")')
    assert page.call("offt") is None
    log = seen(server)
    assert [x for x in log if x in ("h1", "h2")] == ["h1", "h2", "h2", "h2", "h1"], log


def test_off_removes_only_the_calling_plugins_handlers(make_server, project):
    """Handlers belong to the plugin that registered them (they go when it is reloaded);
    one plugin's `off(event)` must not silence another plugin listening to the same event."""
    other = ('return { name = "other", serverStart = function(ctx)\n'
             '  ctx.webSockets:on("shared", function() return "other answers" end)\n'
             'end }\n')
    root = project(dict(probe_files(), **{
        "plugins/other.lua": other,
        "lunar.config.lua": ('return { watch = false, timeout = 300, plugins = '
                             '{ "./plugins/probe.lua", "./plugins/other.lua" } }\n'),
    }))
    server = make_server(root, "--no-watch", env={"LUNAR_PLUGIN_PATH": None})
    page = Peer(server.ws_url)
    page.eval('ws:on("shared", function() return "probe answers" end)')
    assert page.call("shared") == "other answers"  # registered first (at serverStart)
    page.eval('ws:off("shared")')
    assert page.call("shared") == "other answers", "probe's off() removed the other plugin's handler"


# --- Rooms, listing, broadcast -----------------------------------------------------------------

def test_rooms_to_and_sorted(make_server, project):
    server = start_probe(make_server, project)
    a, b, c = Peer(server.ws_url), Peer(server.ws_url), Peer(server.ws_url)
    control = Peer(server.ws_url)
    for p in (a, b):
        p.eval('client:join("r")')
    control.eval('ws:to("r"):send("roomev", { n = 1 })')
    control.eval('ws:to("r"):send("raw text")')
    control.eval('ws:to("r"):sendImport("/m.js", { 1 })')
    control.eval('ws:to("r"):sendConsoleLog("in room")')
    control.eval('ws:to("nobody"):send("lost", 1)')
    for p in (a, b):
        assert p.recv_json() == {"type": "custom", "event": "roomev", "data": {"n": 1}}
        assert p.recv() == "raw text"
        assert p.recv_json() == {"type": "import", "data": {"importPath": "/m.js", "args": [1]}}
        assert p.recv_json()["data"]["args"] == ["in room"]
        p.expect_nothing(0.1)
    c.expect_nothing()
    assert control.inbox == collections.deque()

    # rooms(): sorted, without duplicates; leave() removes; leaving a room stops delivery.
    got = a.eval('''
        client:join("zeta"); client:join("alpha"); client:join("mid"); client:join("alpha")
        local before = client:rooms()
        client:leave("mid"); client:leave("r"); client:leave("never-joined")
        return { before, client:rooms() }
    ''')
    assert got == [["alpha", "mid", "r", "zeta"], ["alpha", "zeta"]]
    assert c.eval("return client:rooms()") in ([], {})
    control.eval('ws:to("r"):send("again", 2)')
    assert b.recv_json()["event"] == "again"
    a.expect_nothing()


def test_clients_ids_and_broadcast(make_server, project):
    server = start_probe(make_server, project)
    peers = [Peer(server.ws_url) for _ in range(4)]
    ids = [p.call("whoami") for p in peers]
    assert all(isinstance(i, str) and i for i in ids), ids
    assert len(set(ids)) == 4, ids
    listed = peers[0].eval("local t = {} for _, c in ipairs(ws:clients()) do t[#t + 1] = c.id end return t")
    assert sorted(listed) == sorted(ids)
    assert requests.get(server.url_for("/clients"), timeout=TIMEOUT).text == "4"

    # client:broadcast: every page but the sender.
    assert peers[1].call("bcast", {"from": 1}) is True
    for i, p in enumerate(peers):
        if i == 1:
            p.expect_nothing()
        else:
            assert p.recv_json() == {"type": "custom", "event": "n", "data": {"from": 1}}
    peers[2].eval('client:broadcast("just text")')
    assert [p.recv() for i, p in enumerate(peers) if i != 2] == ["just text"] * 3
    peers[2].expect_nothing()

    # Ids stay unique as clients come and go.
    peers[3].close()
    wait_until(lambda: requests.get(server.url_for("/clients"), timeout=TIMEOUT).text == "3",
               message="3 clients")
    late = Peer(server.ws_url)
    assert late.call("whoami") not in ids


def test_close_with_code_runs_disconnect(make_server, project):
    server = start_probe(make_server, project)
    victim = Peer(server.ws_url)
    control = Peer(server.ws_url)
    vid = victim.call("whoami")
    control.eval(f'''
        for _, c in ipairs(ws:clients()) do
          if c.id == "{vid}" then c:close(4000, "bye") end
        end
    ''')
    with pytest.raises(ConnectionClosed):
        victim.recv(timeout=TIMEOUT)
    assert victim.ws.close_code == 4000
    assert victim.ws.close_reason == "bye"
    wait_until(lambda: f"disconnect {vid}" in seen(server), message="disconnect handler")
    ids = control.eval("local t = {} for _, c in ipairs(ws:clients()) do t[#t + 1] = c.id end return t")
    assert vid not in ids

    # A session client closed by the plugin is gone for good (disconnect now, not after the
    # resume window).
    paged = Peer(session_url(server, new_session(), 0))
    assert paged.recv_json()["type"] == "lunar:hello"
    pid = paged.call("whoami")
    # (No id: a response would be queued after the close frame and never sent.)
    paged.send_json({"type": "custom", "event": "eval", "data": "client:close()"})
    with pytest.raises(ConnectionClosed):
        while True:
            paged.recv(timeout=TIMEOUT)
    assert paged.ws.close_code == 1000
    wait_until(lambda: f"disconnect {pid}" in seen(server), message="disconnect of the session client")


def test_client_data_persists_per_client(make_server, project):
    server = start_probe(make_server, project)
    a, b = Peer(server.ws_url), Peer(server.ws_url)
    bump = "client.data.count = (client.data.count or 0) + 1 return client.data.count"
    assert [a.eval(bump) for _ in range(3)] == [1, 2, 3]
    assert b.eval(bump) == 1
    assert a.eval(bump) == 4
    # The same table is seen from ws:clients().
    aid = a.call("whoami")
    assert b.eval(f'for _, c in ipairs(ws:clients()) do if c.id == "{aid}" then return c.data.count end end') == 4


def test_method_called_with_dot_is_an_error_naming_the_colon(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    for call in ['client.send("x")', 'ws.send("x")', 'ws.to("r")', 'client.join("r")',
                 'ws:to("r").send("x")', 'ws.on("x", function() end)']:
        answer = page.request("eval", call)
        assert "error" in answer and "response" not in answer, (call, answer)
        assert "colon" in answer["error"] and ":" + call.split(".")[-1].split("(")[0] + "(" in answer["error"], (call, answer)
    # The socket stays open and usable after each error.
    page.drop_console_errors()
    assert page.call("whoami")


# --- Requests and responses ------------------------------------------------------------------

def test_request_response_rules(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    page.eval('''
        ws:on("first", function() note("first.1") end)
        ws:on("first", function() note("first.2") return "two" end)
        ws:on("first", function() note("first.3") return "three" end)
        ws:on("none", function() note("none.1") end)
        ws:on("falsy", function() return false end)
        ws:on("falsy", function() return "not me" end)
        ws:on("boom", function() note("boom.1") error("kaboom") end)
        ws:on("boom", function() note("boom.2") return "too late" end)
        ws:on("late", function() return "fine" end)
        ws:on("late", function() note("late.2") error("ignored") end)
        ws:on("slow", function() while true do end end)
        ws:on("slow", function() note("slow.2") return "after" end)
        ws:on("table", function(data) return { got = data, list = { 1, 2 } } end)
    ''')
    ids = []

    def ask(event, data=None):
        answer = page.request(event, data)
        ids.append(answer["id"])
        return answer

    answer = ask("first")
    assert answer == {"type": "message-response", "id": answer["id"], "response": "two"}
    answer = ask("none")
    assert "response" in answer and answer["response"] is None and "error" not in answer, answer
    answer = ask("no-handler-at-all")
    assert "response" in answer and answer["response"] is None and "error" not in answer, answer
    assert ask("falsy")["response"] is False  # false is not nil: it is the answer
    answer = ask("boom")
    assert "response" not in answer and "kaboom" in answer["error"], answer
    assert ask("late")["response"] == "fine"
    started = time.monotonic()
    answer = ask("slow")
    elapsed = time.monotonic() - started
    assert "response" not in answer and "time budget" in answer.get("error", ""), answer
    assert 0.2 <= elapsed < 3, elapsed  # stopped by the 300 ms budget
    assert ask("table", {"q": 1})["response"] == {"got": {"q": 1}, "list": [1, 2]}

    # A plain message with an id is answered by the message handlers the same way.
    answer = page.request_message({"type": "ask", "q": "life"})
    assert answer["response"] == "answer to life", answer
    answer = page.request_message({"type": "other"})
    assert "response" in answer and answer["response"] is None, answer

    # The socket is still open after the errors; every handler ran; exactly one response each.
    assert page.call("whoami")
    time.sleep(0.3)
    extra = []
    try:
        while True:
            extra.append(page.ws.recv(timeout=0.2))
    except TimeoutError:
        pass
    responses = [m for m in map(as_json, list(page.inbox) + extra)
                 if isinstance(m, dict) and m.get("type") == "message-response"]
    assert responses == [], f"second responses: {responses}"
    assert len(set(ids)) == len(ids)
    log = seen(server)
    for name in ["first.1", "first.2", "first.3", "none.1", "boom.1", "boom.2", "late.2", "slow.2"]:
        assert name in log, (name, log)


def test_reserved_event_names_are_dropped(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    me = page.call("whoami")
    before = seen(server)
    rid = 900
    for event in ["message", "connection", "disconnect"]:
        page.send_json({"type": "custom", "event": event, "data": {"id": "fake"}})
        page.send_json({"type": "custom", "event": event, "data": None, "id": rid})
        rid += 1
    assert page.call("whoami") == me  # later messages are still handled...
    page.expect_nothing()             # ...and the dropped ones got no response
    assert seen(server) == before     # no handler ran for them


def test_handlers_run_in_arrival_order(make_server, project):
    server = start_probe(make_server, project)
    a, b = Peer(server.ws_url), Peer(server.ws_url)
    for n in range(1, 201):
        a.send_json({"type": "custom", "event": "num", "data": n})
        b.send_json({"type": "custom", "event": "num", "data": -n})
    assert a.eval("return client.data.order") == list(range(1, 201))
    assert b.eval("return client.data.order") == [-n for n in range(1, 201)]


# --- Reconnect and replay (docs/PROTOCOL.md §2) -----------------------------------------------

def _custom_n(frame):
    message = json.loads(frame)
    assert message["type"] == "custom" and message["event"] == "n", message
    return message["data"]


def test_replay_after_a_dropped_connection(make_server, project):
    server = start_probe(make_server, project)
    control = Peer(server.ws_url)
    session = new_session()
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    assert page.status == 101, page.head
    hello = page.recv_json()
    assert hello["type"] == "lunar:hello" and hello["resumed"] is False, hello
    assert hello["session"] == session
    boot = hello["boot"]

    for n in (1, 2):
        control.call("bcast", n)
    assert [_custom_n(page.recv()) for _ in range(2)] == [1, 2]

    page.abort()  # no close frame
    time.sleep(0.2)
    for n in (3, 4, 5):
        control.call("bcast", n)

    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=2")
    assert page.status == 101, page.head
    hello = page.recv_json()
    assert hello["type"] == "lunar:hello" and hello["resumed"] is True, hello
    assert hello["boot"] == boot and hello["session"] == session, hello
    assert hello.get("count", 2) == 2, hello
    assert [_custom_n(page.recv()) for _ in range(3)] == [3, 4, 5]
    page.expect_nothing()

    # Live messages continue; the session is the same client (one connection, no disconnect).
    control.call("bcast", 6)
    assert _custom_n(page.recv()) == 6
    page.send_json({"type": "custom", "event": "whoami", "id": 1})
    answer = page.recv_json()
    assert answer["type"] == "message-response", answer
    pid = answer["response"]
    log = seen(server)
    assert log.count(f"connection {pid}") == 1, log
    assert f"disconnect {pid}" not in log, log
    page.close()


def test_replay_to_a_page_that_had_received_nothing(make_server, project):
    server = start_probe(make_server, project)
    control = Peer(server.ws_url)
    session = new_session()
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    assert page.recv_json()["resumed"] is False
    page.abort()
    time.sleep(0.2)
    for n in ("a", "b", "c"):
        control.call("bcast", n)
    control.eval('ws:send("plain text too")')
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    hello = page.recv_json()
    assert hello["resumed"] is True and hello.get("count", 0) == 0, hello
    assert [_custom_n(page.recv()) for _ in range(3)] == ["a", "b", "c"]
    assert page.recv() == "plain text too"
    page.expect_nothing()
    page.close()


def test_replay_resumes_from_any_ack(make_server, project):
    """An ack in the middle of what was received (the page lost the tail before the drop)."""
    server = start_probe(make_server, project)
    control = Peer(server.ws_url)
    session = new_session()
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    page.recv_json()
    for n in range(1, 5):
        control.call("bcast", n)
    assert [_custom_n(page.recv()) for _ in range(4)] == [1, 2, 3, 4]
    page.abort()
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=1")
    assert page.recv_json()["resumed"] is True
    assert [_custom_n(page.recv()) for _ in range(3)] == [2, 3, 4]
    page.expect_nothing()
    page.close()


def test_replay_keeps_the_last_1000_and_says_where_it_starts(make_server, project):
    """docs/PROTOCOL.md §2: the server keeps up to 1000 messages per session; a page that
    missed more gets a hello whose `count` says where the replay starts, then the last 1000."""
    server = start_probe(make_server, project)
    control = Peer(server.ws_url)
    session = new_session()
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    page.recv_json()
    page.abort()
    time.sleep(0.2)
    for first in range(1, 1501, 250):
        control.eval(f"for i = {first}, {first + 249} do client:broadcast(\"n\", i) end")
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    hello = page.recv_json()
    assert hello["resumed"] is True and hello.get("count") == 500, hello
    assert [_custom_n(page.recv()) for _ in range(1000)] == list(range(501, 1501))
    page.expect_nothing()
    page.close()


def test_unknown_session_starts_fresh(make_server, project):
    server = start_probe(make_server, project)
    page = RawWS("127.0.0.1", server.port, f"/wds?session={new_session()}&ack=7")
    hello = page.recv_json()
    assert hello["resumed"] is False and hello.get("count", 0) == 0, hello
    page.close()
    # An invalid session id makes a plain client: no hello.
    page = RawWS("127.0.0.1", server.port, "/wds?session=bad!&ack=0")
    assert page.status == 101
    page.expect_nothing()
    page.close()


def test_bye_ends_the_session_at_once(make_server, project):
    server = start_probe(make_server, project)
    control = Peer(server.ws_url)

    # Dropped without a bye: the session waits for a reconnect (no disconnect yet).
    kept = RawWS("127.0.0.1", server.port, f"/wds?session={new_session()}&ack=0")
    kept.recv_json()
    kept.send_json({"type": "custom", "event": "whoami", "id": 1})
    kept_id = kept.recv_json()["response"]
    kept.abort()

    session = new_session()
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    page.recv_json()
    page.send_json({"type": "custom", "event": "whoami", "id": 1})
    pid = page.recv_json()["response"]
    page.send_text('{"type":"lunar:bye"}')
    page.close(1000)
    wait_until(lambda: f"disconnect {pid}" in seen(server), timeout=2, message="disconnect after bye")
    assert f"disconnect {kept_id}" not in seen(server)
    assert not any(x.startswith(f"message {pid}") for x in seen(server)), "the bye reached the plugins"
    ids = control.eval("local t = {} for _, c in ipairs(ws:clients()) do t[#t + 1] = c.id end return t")
    assert pid not in ids and kept_id in ids, ids

    # Coming back after the bye: a fresh session under the same id, `connection` again.
    page = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=1")
    hello = page.recv_json()
    assert hello["resumed"] is False, hello
    page.send_json({"type": "custom", "event": "whoami", "id": 2})
    new_id = page.recv_json()["response"]
    assert new_id != pid
    assert f"connection {new_id}" in seen(server)
    page.close()
