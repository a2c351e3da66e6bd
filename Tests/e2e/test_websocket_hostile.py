"""The WebSocket endpoint under hostile or careless clients (SPEC §6): bad JSON, messages
without a type, oversized messages, binary and malformed frames, foreign origins, a client
that never reads while thousands of broadcasts go out, and hundreds of clients coming and
going at once (no leak of clients or memory). Real lunar binary, real sockets, no browser.

The probe plugin and the Peer / RawWS clients come from test_websocket_api.py."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import requests

from test_websocket_api import (
    PROBE, TIMEOUT, Peer, RawWS, new_session, seen, start_probe, wait_until,
)


def clients_count(server) -> int:
    return int(requests.get(server.url_for("/clients"), timeout=TIMEOUT).text)


def alive(server) -> bool:
    return server.running and requests.get(server.url_for("/"), timeout=TIMEOUT).status_code == 200


def rss_kib(server) -> int:
    with open(f"/proc/{server.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- Bad messages ----------------------------------------------------------------------------

def test_invalid_json_reaches_message_handlers_as_text(make_server, project):
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    nested = "[" * 100_000 + "]" * 100_000  # deeper than any decoder should recurse
    for text in ["{", '{"type":', "nul", "NaN", "{'type':'x'}", '{"type":"x"} trailing', "\ufeff{}",
                 '"\\ud800"', nested]:
        page.send_raw(text)
        echo = page.recv_json()
        assert echo["type"] == "echo" and echo["text"] == text, (text[:40], echo)
    assert page.call("whoami")
    assert alive(server)


def test_json_without_type_is_a_plain_message(make_server, project):
    """SPEC §4 names objects with a `type`; an object without one still reaches the `message`
    handlers (as data), and neither the socket nor the server suffers."""
    server = start_probe(make_server, project)
    page = Peer(server.ws_url)
    for message in [{"a": 1}, {"type": None}, {"type": 5}, {"event": "ev", "data": 1},
                    {"type": "custom"}, {"type": "custom", "event": 7}, [1, 2], 42, "str", None]:
        text = json.dumps(message)
        page.send_raw(text)
        echo = page.recv_json()
        assert echo["type"] == "echo" and echo["text"] == text, (message, echo)
    # A custom event with no handler and no id: nothing happens, no answer.
    page.send_raw('{"type":"custom","event":"nobody-listens","data":1}')
    page.expect_nothing()
    assert page.call("whoami")
    assert alive(server)


def test_oversized_messages_close_with_1009(make_server, project):
    server = start_probe(make_server, project)
    big = "x" * (2 * 1024 * 1024)
    # One 2 MiB text frame.
    page = RawWS("127.0.0.1", server.port)
    page.send_text(json.dumps({"type": "big", "s": big}))
    _expect_close(page, 1009)
    # The same as fragments (each small, the message too large).
    page = RawWS("127.0.0.1", server.port)
    chunk = b"y" * 65536
    page.send_frame(0x1, b'{"s":"' + chunk, fin=False)
    for _ in range(40):
        page.send_frame(0x0, chunk, fin=False)
    page.send_frame(0x0, b'"}', fin=True)
    _expect_close(page, 1009)
    # Binary too.
    page = RawWS("127.0.0.1", server.port)
    page.send_frame(0x2, os.urandom(2 * 1024 * 1024))
    _expect_close(page, 1009)
    # Just under the limit (1 MiB by default) is fine.
    peer = Peer(server.ws_url)
    payload = json.dumps({"type": "fits", "quiet": True, "s": "z" * (1024 * 1024 - 100)})
    assert len(payload) <= 1024 * 1024
    peer.send_raw(payload)
    assert peer.call("whoami")
    assert alive(server)


def test_compressed_bombs_close_with_1009(make_server, project):
    """permessage-deflate: the limit counts the inflated message, so a few KiB on the wire
    that inflate to 2 MiB (or 64 MiB) close the socket with 1009, without the server
    inflating it all."""
    server = start_probe(make_server, project)
    before = rss_kib(server)
    # Up to the 16 MiB inflate limit: Lunar's 1009 with a reason. Past it the WebSocket
    # library stops inflating and closes on its own (1011, no reason): documented limitation.
    for size, codes in ((2 << 20, {1009}), (8 << 20, {1009}), (64 << 20, {1009, 1011})):
        peer = Peer(server.ws_url, compression="deflate")
        assert peer.ws.protocol.extensions, "permessage-deflate was not negotiated"
        peer.send_raw('{"type":"bomb","s":"' + "0" * size + '"}')
        try:
            while True:
                peer.recv(TIMEOUT)
        except Exception:  # noqa: BLE001 -- ConnectionClosed expected
            pass
        assert peer.ws.close_code in codes, (size, peer.ws.close_code, peer.ws.close_reason)
        if peer.ws.close_code == 1009:
            assert peer.ws.close_reason
    assert rss_kib(server) - before < 40 * 1024, (before, rss_kib(server))
    assert Peer(server.ws_url).call("whoami")


def test_very_large_frame_closes_with_1009_and_a_reason(make_server, project):
    """A single frame far over the limit (8 MiB against 1 MiB) gets the same answer as one
    just over it: 1009 with a reason."""
    server = start_probe(make_server, project)
    page = RawWS("127.0.0.1", server.port)
    try:
        page.send_frame(0x1, b"x" * (8 * 1024 * 1024))
    except OSError:
        pass  # the server may cut the upload short once it has decided
    _expect_close(page, 1009)
    assert alive(server)


def test_max_message_size_from_config_is_exact(make_server, project):
    server = start_probe(make_server, project, extra_config="maxMessageSize = 1000,")
    peer = Peer(server.ws_url)
    text = '{"type":"t","s":"' + "a" * (1000 - 19) + '"}'
    assert len(text) == 1000
    peer.send_raw(text)
    assert peer.recv_json()["text"] == text
    page = RawWS("127.0.0.1", server.port)
    page.send_text(text[:-2] + 'a"}')  # 1001 bytes
    _expect_close(page, 1009)


def _expect_close(page, code):
    frames = []
    try:
        while True:
            frames.append(page.recv(TIMEOUT))
    except EOFError:
        pass
    assert page.close_code == code, (page.close_code, page.close_reason, frames[:3])
    assert page.close_reason, "the close frame gives no reason"
    page.sock.close()


def test_binary_frames_are_delivered_as_binary(make_server, project):
    server = start_probe(make_server, project)
    page = RawWS("127.0.0.1", server.port)
    blob = bytes([0, 255, 1, 254]) + b'{"type":"custom","event":"ev"}' + bytes(range(256))
    page.send_frame(0x2, blob)
    assert page.recv() == blob  # the probe echoes m.binary with sendBinary
    # Fragmented binary: one message.
    page.send_frame(0x2, blob[:10], fin=False)
    page.send_frame(0x0, blob[10:], fin=True)
    assert page.recv() == blob
    # Binary that happens to be valid JSON text is still binary (not a custom event).
    page.send_frame(0x2, b'{"type":"custom","event":"ev","data":1}')
    assert page.recv() == b'{"type":"custom","event":"ev","data":1}'
    log = seen(server)
    assert not any(x.startswith("ev ") for x in log), log
    page.close()


def test_malformed_frames_close_with_the_rfc_code(make_server, project):
    server = start_probe(make_server, project)
    # Text that is not UTF-8: 1007.
    page = RawWS("127.0.0.1", server.port)
    page.send_frame(0x1, b'{"type":"x","s":"\xff\xfe"}')
    _expect_close(page, 1007)
    # A reserved opcode: 1002.
    page = RawWS("127.0.0.1", server.port)
    page.send_frame(0x3, b"x")
    _expect_close_code_only(page, 1002)
    assert alive(server)
    assert Peer(server.ws_url).call("whoami")


def _expect_close_code_only(page, code):
    try:
        while True:
            page.recv(TIMEOUT)
    except EOFError:
        pass
    assert page.close_code == code, (page.close_code, page.close_reason)
    page.sock.close()


def test_second_socket_of_a_session_replaces_the_first(make_server, project):
    """docs/PROTOCOL.md §2: a session that reconnects while its old socket is still open
    (half-open) keeps one socket: the new one; the old is closed with 1008."""
    server = start_probe(make_server, project)
    session = new_session()
    first = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    assert first.recv_json()["resumed"] is False
    second = RawWS("127.0.0.1", server.port, f"/wds?session={session}&ack=0")
    assert second.recv_json()["resumed"] is True
    _expect_close_code_only(first, 1008)
    second.send_json({"type": "custom", "event": "whoami", "id": 1})
    assert second.recv_json()["type"] == "message-response"
    assert clients_count(server) == 1
    second.close()


# --- Origins (SPEC §6) ------------------------------------------------------------------------

def test_upgrade_origin_rules(make_server, project):
    server = start_probe(make_server, project)
    port = server.port
    other = port + 1 if port < 65535 else port - 1

    def status(origin=None, host=None):
        headers = {"Origin": origin} if origin is not None else {}
        page = RawWS("127.0.0.1", port, headers=headers, host_header=host)
        page.sock.close()
        return page.status

    accepted = [None, f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"]
    refused = ["http://evil.example", f"http://evil.example:{port}", f"http://localhost:{other}",
               f"http://127.0.0.1:{other}", f"http://localhost", f"https://127.0.0.1:{port}",
               "null", f"http://127.0.0.1:{port}.evil.example", f"http://localhost.evil.example:{port}"]
    got = {origin: status(origin) for origin in accepted + refused}
    assert {o: s for o, s in got.items() if o in accepted} == {o: 101 for o in accepted}, got
    assert all(got[o] not in (101, 0) for o in refused), got
    assert all(400 <= got[o] < 500 for o in refused), got

    # Reached as localhost:PORT, the page's origin is the same loopback host.
    assert status(f"http://localhost:{port}", host=f"localhost:{port}") == 101
    assert status(f"http://127.0.0.1:{port}", host=f"localhost:{port}") == 101
    # A foreign Host (DNS rebinding) is refused even with a matching Origin.
    assert status(f"http://evil.example:{port}", host=f"evil.example:{port}") not in (101, 0)
    assert status(None, host=f"evil.example:{port}") not in (101, 0)
    assert alive(server)


# --- A client that never reads ----------------------------------------------------------------

BIG_PROBE = PROBE.replace(
    'ws:on("bcast",',
    'ws:on("flood", function(range) local pad = string.rep("p", 900)\n'
    '      for i = range[1], range[2] do ws:send("f", { i = i, pad = pad }) end return true end)\n'
    '    ws:on("bcast",')


def test_stalled_client_does_not_hold_up_the_others(make_server, project):
    server = start_probe(make_server, project, extra_config="timeout = 3000,", plugin=BIG_PROBE)
    total = 10_000
    stalled = RawWS("127.0.0.1", server.port, rcvbuf=4096)  # handshake done; never read now
    assert stalled.status == 101
    control = Peer(server.ws_url)

    readers = [RawWS("127.0.0.1", server.port) for _ in range(3)]
    counts = [0] * len(readers)
    last = [0] * len(readers)
    errors = []

    def read(k):
        try:
            while counts[k] < total:
                message = json.loads(readers[k].recv(30))
                if message.get("event") == "f":
                    assert message["data"]["i"] == last[k] + 1, (k, message["data"]["i"], last[k])
                    last[k] = message["data"]["i"]
                    counts[k] += 1
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(f"reader {k}: {e!r}")

    threads = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(len(readers))]
    for t in threads:
        t.start()
    assert clients_count(server) == 5

    started = time.monotonic()
    slowest_answer = 0.0
    for first in range(1, total + 1, 500):
        t0 = time.monotonic()
        assert control.call("flood", [first, first + 499], timeout=10) is True
        slowest_answer = max(slowest_answer, time.monotonic() - t0)
        control.inbox.clear()  # the control page gets the flood too; it does read
    for t in threads:
        t.join(20)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert counts == [total] * len(readers), counts
    assert elapsed < 15, f"10,000 broadcasts took {elapsed:.1f} s"
    assert slowest_answer < 5, f"the plugin thread was held up: {slowest_answer:.1f} s for 500 sends"

    # The stalled client is cut off: it leaves the plugin's client list (disconnect ran)...
    wait_until(lambda: clients_count(server) == 4, timeout=6, message="the stalled client removed")
    # ...and its socket ends. If its close frame gets through, it says 1013 (try again later).
    got = 0
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            stalled.recv(5)
            got += 1
    except (EOFError, ConnectionError):
        pass
    assert time.monotonic() < deadline, "the stalled socket was never closed"
    assert got < total, got
    assert stalled.close_code in (None, 1013), (stalled.close_code, stalled.close_reason)
    for r in readers:
        r.close()


# --- Many clients coming and going ------------------------------------------------------------

async def _crowd(url, n, kind):
    from websockets.asyncio.client import connect

    async def one(i):
        ws = await connect(url, open_timeout=20, proxy=None, compression=None)
        return ws

    sockets = await asyncio.gather(*(one(i) for i in range(n)))
    await asyncio.sleep(0.2)
    if kind == "close":
        await asyncio.gather(*(ws.close() for ws in sockets))
    else:  # half close cleanly, half drop the TCP connection
        await asyncio.gather(*(ws.close() for ws in sockets[: n // 2]))
        for ws in sockets[n // 2:]:
            ws.transport.abort()
    return len(sockets)


def test_many_clients_come_and_go_without_leaks(make_server, project, report_summary):
    server = start_probe(make_server, project)
    url = server.ws_url
    idle = rss_kib(server)
    rounds = []
    for kind in ("close", "abort", "close"):
        assert asyncio.run(_crowd(url, 500, kind)) == 500
        wait_until(lambda: clients_count(server) == 0, timeout=15, message=f"0 clients after a '{kind}' round")
        time.sleep(0.3)
        rounds.append(rss_kib(server))
    report_summary(f"websocket crowd: RSS idle {idle // 1024} MiB, after 3 rounds of 500 clients "
                   f"{[r // 1024 for r in rounds]} MiB")
    log = seen(server)
    connections = [x for x in log if x.startswith("connection ")]
    disconnections = [x for x in log if x.startswith("disconnect ")]
    assert len(connections) == 1500 and len(set(connections)) == 1500, len(connections)
    assert len(disconnections) == 1500, len(disconnections)
    # Memory: after the first round (warm-up), further rounds stay flat.
    assert rounds[2] - rounds[0] < 30 * 1024, f"RSS idle {idle} KiB, after rounds {rounds} KiB"
    assert rounds[2] - idle < 100 * 1024, f"RSS idle {idle} KiB, after rounds {rounds} KiB"
    # The server still works.
    assert Peer(url).call("whoami")
