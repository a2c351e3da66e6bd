#!/usr/bin/env python3
"""Lunar's own benchmark steps (driven by run.sh; the peer suite itself is ../shared/bench).

  lunarbench.py coldstart OUT.jsonl --cpu 1 --load-cpu 0 --reps 10 --base-port P --root DIR \
                          --peer NAME='CMD with {PORT} {ROOT}' [--peer ...] [--env NAME:K=V]
      ms from spawning the server to (a) the port accepting a TCP connection and
      (b) the first complete `GET /` response; median of REPS fresh starts per peer.
  lunarbench.py hook OUT.jsonl --lunar BIN --root DIR --file /m0.js --harness DIR \
                     --config none=FILE --config serve-nil=FILE ...
      wrk on one small static file against Lunar with each config (all started
      at once on their own ports, measured alternately); server CPU time per request.
  lunarbench.py report --raw HARNESS_RAW.jsonl --extra OUT.jsonl ... --out RESULTS.md
      the comparison table with ratios, printed and written as Markdown.

Everything listens on / connects to 127.0.0.1 only; every server started here is
stopped (SIGTERM, SIGKILL after 5 s, then its own process group) before returning,
also on errors and Ctrl-C.
"""
import argparse, errno, json, os, shlex, signal, socket, statistics, subprocess, sys, time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def spawn(cmd, cpu, logpath, env=None):
    """start CMD (argv list) pinned to CPU `cpu` in its own session; returns Popen"""
    e = dict(os.environ)
    if env:
        e.update(env)
    lf = open(logpath, "ab")
    return subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdin=subprocess.DEVNULL, stdout=lf,
                            stderr=subprocess.STDOUT, env=e, start_new_session=True)


def stop(p):
    """SIGTERM the PID we started, SIGKILL after 5 s, then anything left in its process group"""
    if p is None:
        return
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    try:
        os.killpg(p.pid, signal.SIGKILL)  # start_new_session: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def port_free(port):
    s = socket.socket()
    try:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        s.close()


def cpu_ticks(pid):
    """utime+stime of the process (all its threads), in clock ticks"""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    return int(st[11]) + int(st[12])


def wait_port(port, proc, timeout_s):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if not port_free(port):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- cold start

def probe_start(port, proc, deadline_s):
    """returns (t_accept, t_first_response) as perf_counter values, or raises"""
    end = time.perf_counter() + deadline_s
    t_acc = None
    s = None
    while time.perf_counter() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before accepting")
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
            t_acc = time.perf_counter()
            break
        except OSError as e:
            s.close()
            s = None
            if e.errno not in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, None):
                raise
            time.sleep(0.0005)
    if t_acc is None:
        raise RuntimeError("port never accepted")
    try:
        s.settimeout(max(0.1, end - time.perf_counter()))
        s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        t_resp = time.perf_counter()
        status = buf.split(b"\r\n", 1)[0].decode(errors="replace")
    finally:
        s.close()
    if " 200" not in status:
        raise RuntimeError(f"GET / answered {status!r}")
    return t_acc, t_resp


def cmd_coldstart(a):
    os.sched_setaffinity(0, {a.load_cpu})
    logdir = os.path.join(os.path.dirname(os.path.abspath(a.out)), "logs")
    os.makedirs(logdir, exist_ok=True)
    envs = {}
    for e in a.env or []:
        name, kv = e.split(":", 1)
        k, v = kv.split("=", 1)
        envs.setdefault(name, {})[k] = v
    out = open(a.out, "a")
    tag = os.path.splitext(os.path.basename(a.out))[0]
    port = a.base_port
    peers = [spec.split("=", 1) for spec in a.peer]
    acc = {n: [] for n, _ in peers}
    resp = {n: [] for n, _ in peers}
    errs = {n: [] for n, _ in peers}
    # rep 0 is a warm-up (page cache, dynamic loader): not counted; peers interleaved rep by rep
    for rep in range(a.reps + 1):
        for name, cmd in peers:
            while not port_free(port):
                port += 1
            argv = [x.replace("{PORT}", str(port)).replace("{ROOT}", a.root) for x in shlex.split(cmd)]
            p = None
            try:
                t0 = time.perf_counter()
                p = spawn(argv, a.cpu, os.path.join(logdir, f"{tag}-coldstart-{name}.log"), envs.get(name))
                ta, tr = probe_start(port, p, a.timeout)
                if rep > 0:
                    acc[name].append((ta - t0) * 1000)
                    resp[name].append((tr - t0) * 1000)
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                errs[name].append(str(e))
                log(f"coldstart {name} rep {rep}: {e}")
            finally:
                stop(p)
            port += 1
            time.sleep(0.2)
    for name, cmd in peers:
        r = {"accept_ms": acc[name], "first_response_ms": resp[name], "errors": errs[name],
             "accept_ms_median": statistics.median(acc[name]) if acc[name] else None,
             "first_response_ms_median": statistics.median(resp[name]) if resp[name] else None,
             "cmd": cmd}
        log(f"coldstart {name}: accept median {fmt(r['accept_ms_median'], 1)} ms, "
            f"first response median {fmt(r['first_response_ms_median'], 1)} ms ({len(acc[name])} ok, {len(errs[name])} failed)")
        out.write(json.dumps({"type": "coldstart", "peer": name, "r": r}) + "\n")
        out.flush()


# ---------------------------------------------------------------- serve-hook cost

def run_wrk(harness, url, secs, load_cpu, conns):
    cmd = ["timeout", "60", "taskset", "-c", str(load_cpu), "wrk", "-t1", f"-c{conns}", f"-d{secs}s",
           "--timeout", "5s", "-s", os.path.join(harness, "load", "wrk_json.lua"), url]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=harness).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError("wrk gave no result: " + out[-300:])


def cmd_hook(a):
    os.sched_setaffinity(0, {a.load_cpu})
    logdir = os.path.join(os.path.dirname(os.path.abspath(a.out)), "logs")
    os.makedirs(logdir, exist_ok=True)
    variants = [c.split("=", 1) for c in a.config]
    procs, ports = {}, {}
    port = a.base_port
    res = {name: [] for name, _ in variants}
    try:
        for name, cfg in variants:
            while not port_free(port):
                port += 1
            argv = [a.lunar, a.root, "--port", str(port), "--no-watch", "--config", cfg]
            tag = os.path.splitext(os.path.basename(a.out))[0]
            procs[name] = spawn(argv, a.cpu, os.path.join(logdir, f"{tag}-hook-{name}.log"))
            ports[name] = port
            port += 1
            if not wait_port(ports[name], procs[name], 30):
                raise RuntimeError(f"lunar with {cfg} did not start (see {logdir})")
            log(f"hook: {name} pid {procs[name].pid} port {ports[name]} ({cfg})")
        for name, _ in variants:  # warm-up, not recorded
            run_wrk(a.harness, f"http://127.0.0.1:{ports[name]}{a.file}", 1, a.load_cpu, a.conns)
        for rep in range(a.reps):
            order = variants if rep % 2 == 0 else variants[::-1]  # alternate to cancel drift
            for name, _ in order:
                p = procs[name]
                if p.poll() is not None:
                    raise RuntimeError(f"lunar ({name}) died with {p.returncode}")
                c0, t0 = cpu_ticks(p.pid), time.monotonic()
                w = run_wrk(a.harness, f"http://127.0.0.1:{ports[name]}{a.file}", a.secs, a.load_cpu, a.conns)
                c1, t1 = cpu_ticks(p.pid), time.monotonic()
                errs = sum(w.get(k, 0) for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
                cpu_s = (c1 - c0) / CLK_TCK
                w.update(cpu_s=cpu_s, util=cpu_s / (t1 - t0), errors=errs,
                         cpu_us_per_req=cpu_s * 1e6 / w["requests"] if w["requests"] else None)
                res[name].append(w)
                log(f"hook {name} rep {rep + 1}: {w['rps']:,.0f} req/s, {fmt(w['cpu_us_per_req'], 2)} µs CPU/req, "
                    f"server {w['util'] * 100:.0f}% busy, errors {errs}")
                time.sleep(0.3)
        # status check: the serve-nil variant must still serve the file
        for name, _ in variants:
            s = socket.create_connection(("127.0.0.1", ports[name]), timeout=5)
            s.sendall(f"GET {a.file} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
            s.close()
            res[name + ":status"] = head
    finally:
        for p in procs.values():
            stop(p)
    with open(a.out, "a") as out:
        out.write(json.dumps({"type": "hook", "file": a.file, "secs": a.secs, "conns": a.conns, "r": res}) + "\n")


# ---------------------------------------------------------------- report

def fmt(x, nd=0):
    if x is None:
        return "n/a"
    return f"{x:,.{nd}f}"


def med(vals):
    v = [x for x in vals if isinstance(x, (int, float))]
    return statistics.median(v) if v else None


def getp(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def ops_of(test, r):  # as ../shared/bench/summarize.py
    if test.startswith("http"):
        return r.get("requests")
    if test == "pageload":
        return (r.get("files") or 0) * (2 if "reval_ms" in r else 1)
    if test.startswith("ws_echo"):
        return r.get("msgs")
    if test.startswith("ws_bcast"):
        return r.get("deliveries")
    if test.startswith("ws_connect"):
        return r.get("conns_ok")
    return None


def load_harness(raw):
    res, single, peers = {}, {}, []
    for line in open(raw):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("type") != "result":
            continue
        peer, test, r = rec["peer"], rec["test"], rec["r"]
        if peer not in peers:
            peers.append(peer)
        if test in ("rss_idle", "rss_end", "check", "start", "caps", "background"):
            single.setdefault(peer, {})[test] = r
            continue
        if not isinstance(r, dict):
            continue
        pre, post = rec.get("pre") or {}, rec.get("post") or {}
        if "cpu_ticks" in pre and "cpu_ticks" in post and rec.get("wall_ms"):
            cpu = (post["cpu_ticks"] - pre["cpu_ticks"]) / 100.0
            r["_util"] = cpu / max(rec["wall_ms"] / 1000.0, 1e-9)
            ops = ops_of(test, r)
            if ops:
                r["_us_per_op"] = cpu * 1e6 / ops
        res.setdefault((peer, test), []).append(r)
    return res, single, peers


def cmd_report(a):
    L = []
    P = lambda s="": L.append(s)  # noqa: E731
    P(f"# Lunar vs peers — {time.strftime('%Y-%m-%d %H:%M %Z')}")
    P()
    if a.header:
        P(a.header)
        P()
    P("Ratios are Lunar ÷ peer of the same metric from this run. For throughput (req/s, msg/s) a ratio "
      "above 1 means Lunar is faster; for times (ms) and CPU µs per operation a ratio above 1 means Lunar "
      "is slower / costlier. CPU cells: server CPU µs per operation (utime+stime of the server process "
      "tree, 10 ms ticks), and how busy the server core was — well below ~90 % means the cell is bound by "
      "the load generator or by round-trip latency, not by the server.")
    P()
    res, single, peers = load_harness(a.raw) if a.raw else ({}, {}, [])
    lunar = a.lunar_name

    def ok(peer, test):
        return [r for r in res.get((peer, test), []) if "error" not in r and "skipped" not in r]

    def cell(peer, test, path):
        return med([getp(r, path) for r in ok(peer, test)])

    def cpu_cell(peer, test):
        r = ok(peer, test)
        u, ut = med([x.get("_us_per_op") for x in r]), med([x.get("_util") for x in r])
        return u, ut

    def ratio(x, y):
        return f"{x / y:.2f}" if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else "n/a"

    def table(title, rows, others):
        cols = [lunar] + others
        P(f"## {title}")
        P()
        P("| metric | better | " + " | ".join(cols) + " | " + " | ".join(f"{lunar}/{o}" for o in others) + " |")
        P("|---|---|" + "---:|" * (len(cols) + len(others)))
        for label, better, test, path, nd in rows:
            vals, shown = {}, []
            for c in cols:
                if path == "cpu":
                    u, ut = cpu_cell(c, test)
                    vals[c] = u
                    shown.append("—" if u is None else f"{u:,.1f} ({ut * 100:.0f}%)")
                else:
                    v = cell(c, test, path)
                    vals[c] = v
                    errs = [r for r in res.get((c, test), []) if "error" in r]
                    shown.append(fmt(v, nd) if v is not None else ("error" if errs else "—"))
            P(f"| {label} | {better} | " + " | ".join(shown) + " | " +
              " | ".join(ratio(vals[lunar], vals[o]) for o in others) + " |")
        P()

    present = lambda names: [n for n in names if n in peers and n != lunar]  # noqa: E731
    if a.raw:
        if lunar not in peers or "error" in single.get(lunar, {}).get("start", {}):
            P(f"**{lunar} did not start in the peer suite; see results/logs.**")
            P()
        table("1. HTTP (wrk, 500 small modules; pageload = index + 500 modules over 6 connections)", [
            ("http_modules req/s", "higher", "http_modules", "rps", 0),
            ("http_modules p99 latency µs", "lower", "http_modules", "lat_p99_us", 0),
            ("http_modules server CPU µs/req", "lower", "http_modules", "cpu", 1),
            ("pageload cold ms", "lower", "pageload", "cold_ms", 1),
            ("pageload revalidate ms (500 × 304)", "lower", "pageload", "reval_ms", 1),
            ("pageload server CPU µs/file", "lower", "pageload", "cpu", 1),
            ("http_big (1 MiB file) MiB/s", "higher", "http_big", "mb_per_s", 0),
        ], present(["nginx", "node"]))
        table("2. WebSocket (wsload; echo = ping-pong per connection, broadcast = sent by one, received by all 100)", [
            ("echo, 1 conn: msg/s", "higher", "ws_echo_c1", "msgs_per_s", 0),
            ("echo, 1 conn: server CPU µs/msg", "lower", "ws_echo_c1", "cpu", 1),
            ("echo, 1 conn: p50 µs", "lower", "ws_echo_c1", "lat.p50_us", 0),
            ("echo, 64 conns: msg/s", "higher", "ws_echo_c64", "msgs_per_s", 0),
            ("echo, 64 conns: server CPU µs/msg", "lower", "ws_echo_c64", "cpu", 1),
            ("echo, 64 conns: p99 µs", "lower", "ws_echo_c64", "lat.p99_us", 0),
            ("broadcast to 100, lockstep: deliveries/s", "higher", "ws_bcast_c100", "deliveries_per_s", 0),
            ("broadcast to 100, lockstep: server CPU µs/delivery", "lower", "ws_bcast_c100", "cpu", 1),
            ("broadcast to 100, 16 in flight: deliveries/s", "higher", "ws_bcast_c100_w16", "deliveries_per_s", 0),
            ("broadcast to 100, 16 in flight: server CPU µs/delivery", "lower", "ws_bcast_c100_w16", "cpu", 1),
            ("connect 1000: conn/s", "higher", "ws_connect_1000", "conns_per_s", 0),
            ("connect 1000: KiB RSS/conn", "lower", "ws_connect_1000", "kb_per_conn", 1),
        ], present(["node", "nginx", "py-websockets"]))
        # memory
        P("Server memory (RSS of the process tree): " + "; ".join(
            f"{p} idle {fmt((single.get(p, {}).get('rss_idle') or {}).get('rss_kb', 0) / 1024, 1)} MiB, "
            f"peak {fmt((single.get(p, {}).get('rss_end') or {}).get('hwm_kb', 0) / 1024, 1)} MiB"
            for p in peers) + ".")
        P()
        chk = single.get(lunar, {}).get("check")
        if isinstance(chk, dict):
            bad = [k for k, v in chk.items() if v is False]
            P(f"{lunar} capability check (`wsload check`): " + ("everything present" if not bad else
              "everything present except " + ", ".join(bad) +
              (" (Lunar sends no Last-Modified; SPEC §5 asks only for ETag, and pageload revalidates with If-None-Match)"
               if bad == ["last_modified"] else "")) + ".")
            P()
        bg = {p: (single.get(p, {}).get("background") or {}).get("busy_pct") for p in peers}
        busy = {p: v for p, v in bg.items() if isinstance(v, (int, float)) and v > 10}
        P("Machine busy (other processes) before each peer started: " +
          ", ".join(f"{p} {v}%" for p, v in bg.items()) +
          (" — **busy: those rows are noisy**" if busy else " (quiet)") + ".")
        P()
        # per-run spread for Lunar's and the peers' primary metrics
        P("<details><summary>runs per cell (primary metric of each rep)</summary>")
        P()
        prim = {"http_modules": "rps", "pageload": "cold_ms", "http_big": "mb_per_s", "ws_echo_c1": "msgs_per_s",
                "ws_echo_c64": "msgs_per_s", "ws_bcast_c100": "deliveries_per_s",
                "ws_bcast_c100_w16": "deliveries_per_s", "ws_connect_1000": "conns_per_s"}
        for p in peers:
            for t, k in prim.items():
                rr = res.get((p, t))
                if rr:
                    P(f"- {p} {t}: " + ", ".join(fmt(r.get(k), 1) if k in r else str(r.get('error', r))[:80] for r in rr))
        P()
        P("</details>")
        P()

    extra = []
    for path in a.extra or []:
        if os.path.exists(path):
            extra += [json.loads(x) for x in open(path) if x.strip()]
    bgs = [e for e in extra if e.get("type") == "background"]
    if bgs:
        P("Machine busy (other processes) before Lunar's own steps: " + ", ".join(
            f"{e['step']} {e['busy_pct']}% (waited {e['waited_s']} s)" for e in bgs) +
          (" — **busy: noisy**" if any(e["busy_pct"] > 10 for e in bgs) else " (quiet)") + ".")
        P()
    cs = {e["peer"]: e["r"] for e in extra if e.get("type") == "coldstart"}
    if cs:
        P("## 3. Cold start (spawn → port accepts a TCP connection; → first `GET /` answered), median of "
          f"{max(len(r['accept_ms']) for r in cs.values())} fresh starts")
        P()
        P("| peer | accept ms (median) | first response ms (median) | min–max accept ms | failed starts |")
        P("|---|---:|---:|---:|---:|")
        for p, r in cs.items():
            rng = f"{min(r['accept_ms']):.1f}–{max(r['accept_ms']):.1f}" if r["accept_ms"] else "n/a"
            P(f"| {p} | {fmt(r['accept_ms_median'], 1)} | {fmt(r['first_response_ms_median'], 1)} | {rng} | {len(r['errors'])} |")
        P()
        base = [p for p in cs if p != lunar and not p.startswith(lunar)]
        for o in base:
            P(f"Ratio {lunar}/{o}: accept {ratio(cs.get(lunar, {}).get('accept_ms_median'), cs[o]['accept_ms_median'])}, "
              f"first response {ratio(cs.get(lunar, {}).get('first_response_ms_median'), cs[o]['first_response_ms_median'])} "
              "(above 1 = Lunar starts slower).")
        for p, r in cs.items():
            if r["errors"]:
                P(f"- {p} failures: {r['errors'][0]}")
        P()
        P("Commands: " + "; ".join(f"{p}: `{r['cmd']}`" for p, r in cs.items()) +
          " (each spawned as `taskset -c SERVER_CPU CMD`, so ~1 ms of fork/exec of taskset is in every number; "
          "one unrecorded round first, then the peers take turns, one fresh start each per round).")
        P()
    hk = [e for e in extra if e.get("type") == "hook"]
    if hk:
        h = hk[-1]
        r = h["r"]
        names = [k for k in r if not k.endswith(":status")]
        P(f"## 4. Cost of one trivial `serve` hook per request (wrk -c{h['conns']} {h['secs']} s × {len(r[names[0]])} "
          f"reps, alternating, on `{h['file']}`)")
        P()
        P("| config | req/s (median) | server CPU µs/req (median) | server busy | 1/throughput µs | status of GET | errors |")
        P("|---|---:|---:|---:|---:|---|---:|")
        m = {}
        for n in names:
            rr = r[n]
            rps, cpu, util = med([x["rps"] for x in rr]), med([x["cpu_us_per_req"] for x in rr]), med([x["util"] for x in rr])
            m[n] = (rps, cpu)
            P(f"| {n} | {fmt(rps)} | {fmt(cpu, 2)} | {fmt(util * 100 if util else None)}% | "
              f"{fmt(1e6 / rps if rps else None, 2)} | {r.get(n + ':status', '?')} | {sum(x['errors'] for x in rr)} |")
        P()
        if len(names) >= 2 and all(m[n][0] for n in names[:2]):
            (r0, c0), (r1, c1) = m[names[0]], m[names[1]]
            P(f"**Added per request by the `serve` hook: {c1 - c0:+.2f} µs of server CPU** (difference of the median "
              f"CPU µs/req, the primary number: it does not depend on whether wrk or the server is the bottleneck); "
              f"{1e6 / r1 - 1e6 / r0:+.2f} µs by 1/throughput (the same if the server core is ~100 % busy in both). "
              f"Throughput ratio {names[1]}/{names[0]} = {r1 / r0:.2f}.")
            P()
            P("runs: " + "; ".join(f"{n}: " + ", ".join(f"{x['rps']:,.0f} req/s @ {x['cpu_us_per_req']:.2f} µs"
                                                          for x in r[n]) for n in names))
            P()
    text = "\n".join(L) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("coldstart")
    c.add_argument("out")
    c.add_argument("--peer", action="append", required=True)
    c.add_argument("--env", action="append")
    c.add_argument("--root", required=True)
    c.add_argument("--cpu", type=int, default=1)
    c.add_argument("--load-cpu", type=int, default=0)
    c.add_argument("--reps", type=int, default=10)
    c.add_argument("--base-port", type=int, default=18400)
    c.add_argument("--timeout", type=float, default=30)
    h = sub.add_parser("hook")
    h.add_argument("out")
    h.add_argument("--lunar", required=True)
    h.add_argument("--root", required=True)
    h.add_argument("--harness", required=True)
    h.add_argument("--config", action="append", required=True, help="NAME=FILE, baseline first")
    h.add_argument("--file", default="/m0.js")
    h.add_argument("--cpu", type=int, default=1)
    h.add_argument("--load-cpu", type=int, default=0)
    h.add_argument("--reps", type=int, default=5)
    h.add_argument("--secs", type=int, default=3)
    h.add_argument("--conns", type=int, default=32)
    h.add_argument("--base-port", type=int, default=18500)
    r = sub.add_parser("report")
    r.add_argument("--raw")
    r.add_argument("--extra", action="append")
    r.add_argument("--out")
    r.add_argument("--header")
    r.add_argument("--lunar-name", default="lunar")
    a = ap.parse_args()

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        {"coldstart": cmd_coldstart, "hook": cmd_hook, "report": cmd_report}[a.cmd](a)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
