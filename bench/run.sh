#!/usr/bin/env bash
# bench/run.sh - Lunar's numbers beside its peers', from one run on this machine.
#
#   bench/run.sh                 # from anywhere; ~4-6 min after the first release build
#
# Steps (see bench/README.md):
#   0. release build of Lunar into .build-release (skip: SKIP_BUILD=1; binary: LUNAR=path)
#   1+2. the peer suite of ../shared/bench (HTTP + WebSocket) with Lunar added as an extra peer
#   3. cold start, median of COLD_REPS fresh starts: Lunar vs node
#   4. cost of one trivial `serve` hook per request
#   5. the table with ratios -> stdout and bench/results/RESULTS-<time>.md
#
# Env: HARNESS (default ../shared/bench, relative to the repo), PEERS ("node nginx pyws"),
#      REPS (3), COLD_REPS (10), HOOK_REPS (5), QUIET_WAIT (30), QUIET_PCT (10), SERVER_CPU (1), LOAD_CPU (0),
#      APT=1 (let the harness apt-get install its Debian packages), SKIP_BUILD=1, LUNAR=binary,
#      STEPS ("peers coldstart hook": any subset, e.g. STEPS=hook).
# Loopback only; every server is started pinned to SERVER_CPU and stopped by its PID
# (SIGTERM, SIGKILL after 5 s, then its process group), also on Ctrl-C / SIGTERM.
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
cd "$REPO"

HARNESS_SRC=${HARNESS:-../shared/bench}
PEERS=${PEERS-"node nginx pyws"}
REPS=${REPS:-3}
COLD_REPS=${COLD_REPS:-10}
HOOK_REPS=${HOOK_REPS:-5}
QUIET_WAIT=${QUIET_WAIT:-30}
QUIET_PCT=${QUIET_PCT:-10}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
STEPS=${STEPS:-"peers coldstart hook"}
LUNAR=${LUNAR:-$REPO/.build-release/release/lunar}
RES=$BENCH/results
RUN_ID=$(date +%Y%m%dT%H%M%S)
EXTRA=$RES/lunar-$RUN_ID.jsonl
OUT=$RES/RESULTS-$RUN_ID.md
H=$BENCH/bin/harness          # working copy of the harness (git-ignored), see README
mkdir -p "$RES/logs"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

CHILD=""
on_signal() { log "interrupted"; [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD" 2>/dev/null; exit 130; }
trap on_signal INT TERM
step() {  # run a step in the background so that a signal can be forwarded to it
  "$@" & CHILD=$!
  wait "$CHILD"; local rc=$?; CHILD=""; return $rc
}

cpu_busy_pct() {  # whole-machine CPU busy % over 1 s (as the harness measures it)
  local a b idle tot=0 i
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  for i in 1 2 3 4 5 6 7 8; do tot=$(( tot + b[i] - a[i] )); done
  echo $(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))
}
wait_quiet() {  # STEP: wait (at most QUIET_WAIT s) for a quiet machine; record how busy it was
  local bg waited=0
  bg=$(cpu_busy_pct)
  while [ "$bg" -gt "$QUIET_PCT" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
    [ "$waited" = 0 ] && log "machine ${bg}% busy (other processes); waiting up to ${QUIET_WAIT}s for <= ${QUIET_PCT}%"
    sleep 4; waited=$((waited + 5)); bg=$(cpu_busy_pct)
  done
  [ "$bg" -gt "$QUIET_PCT" ] && log "WARNING: machine ${bg}% busy before $1; its numbers will be noisy"
  printf '{"type":"background","step":"%s","busy_pct":%s,"waited_s":%s}\n' "$1" "$bg" "$waited" >> "$EXTRA"
}

T0=$(date +%s)
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on $SERVER_CPU, load on $LOAD_CPU)"

# ---------------------------------------------------------------- 0. Lunar release build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building Lunar (release, .build-release) ..."
  step timeout -k 10 1800 swift build -c release --scratch-path .build-release --product lunar \
    >"$RES/logs/build-$RUN_ID.log" 2>&1 || { tail -30 "$RES/logs/build-$RUN_ID.log" >&2; die "release build failed (log: $RES/logs/build-$RUN_ID.log)"; }
fi
[ -x "$LUNAR" ] || die "no Lunar binary at $LUNAR"
LUNAR_VERSION="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- Sources Package.swift 2>/dev/null || echo '+dirty')"

# ---------------------------------------------------------------- harness working copy
# The harness writes fixture/, results/, bin/ and .venv/ into its own folder; the shared
# copy is read-only and shared by other sessions, so it runs from a mirror in bench/bin.
[ -f "$HARNESS_SRC/run_peers.sh" ] || die "peer harness not found at $HARNESS_SRC (set HARNESS=)"
mkdir -p "$H"
for f in build.sh gen_fixture.py run_peers.sh summarize.py README.md load peers; do
  rm -rf "${H:?}/$f"; cp -r "$HARNESS_SRC/$f" "$H/$f"
done
chmod -R u+w "$H"
step env APT="${APT:-0}" "$H/build.sh" || die "harness build failed (try: APT=1 $0)"
step python3 "$H/gen_fixture.py" "$H/fixture" 500 >&2 || die "fixture generation failed"
ROOT=$H/fixture
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

LUNAR_CMD="$LUNAR {ROOT} --port {PORT} --no-watch --config $BENCH/lunar-peer/lunar.config.lua"

# ---------------------------------------------------------------- 1+2. peer suite (HTTP + WebSocket)
RAW=""
if [[ " $STEPS " == *" peers "* ]]; then
  log "peer suite: $PEERS + lunar ($REPS reps each) ..."
  before=$(ls "$H"/results/raw-*.jsonl 2>/dev/null | sort | tail -1)
  PEERS="$PEERS" EXTRA_PEER="lunar:$LUNAR_CMD" EXTRA_PEER_WSPATH=/wds EXTRA_PEER_CAPS="http ws" \
    REPS=$REPS QUIET_WAIT=$QUIET_WAIT QUIET_PCT=$QUIET_PCT SERVER_CPU=$SERVER_CPU LOAD_CPU=$LOAD_CPU \
    OUT_MD="$RES/PEERS-$RUN_ID.md" step timeout -k 15 900 "$H/run_peers.sh"
  rc=$?
  RAW=$(ls "$H"/results/raw-*.jsonl 2>/dev/null | sort | tail -1)
  [ -n "$RAW" ] && [ "$RAW" != "$before" ] || die "peer suite produced no results (rc=$rc)"
  cp "$RAW" "$RES/peers-$RUN_ID.jsonl"; RAW=$RES/peers-$RUN_ID.jsonl
  cp -r "$H/results/logs/." "$RES/logs/" 2>/dev/null
  [ $rc = 0 ] || log "peer suite exited $rc; reporting what it recorded"
fi

# ---------------------------------------------------------------- 3. cold start
if [[ " $STEPS " == *" coldstart "* ]]; then
  wait_quiet coldstart
  log "cold start: $COLD_REPS starts each ..."
  step timeout -k 10 300 python3 "$BENCH/lunarbench.py" coldstart "$EXTRA" --root "$ROOT" --reps "$COLD_REPS" \
    --cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --base-port 18400 \
    --peer "lunar=$LUNAR_CMD" \
    --peer "lunar-no-plugin=$LUNAR {ROOT} --port {PORT} --no-watch --config $BENCH/hook/none.config.lua" \
    --peer "node=/usr/bin/node $H/peers/node/server.js {PORT} {ROOT}" --env "node:NODE_PATH=/usr/share/nodejs" \
    || log "cold start step failed"
fi

# ---------------------------------------------------------------- 4. serve-hook cost
if [[ " $STEPS " == *" hook "* ]]; then
  wait_quiet hook
  log "serve hook cost: $HOOK_REPS reps × 2 configs ..."
  step timeout -k 10 300 python3 "$BENCH/lunarbench.py" hook "$EXTRA" --lunar "$LUNAR" --root "$ROOT" \
    --harness "$H" --file /m0.js --reps "$HOOK_REPS" --secs 3 --conns 32 \
    --cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --base-port 18500 \
    --config "no-plugin=$BENCH/hook/none.config.lua" --config "serve-nil=$BENCH/hook/serve-nil.config.lua" \
    || log "hook step failed"
fi

# ---------------------------------------------------------------- 5. report
HEADER="Lunar $LUNAR_VERSION (release build), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, Linux $(uname -r). Server pinned to CPU $SERVER_CPU, load (wrk -t1, Go wsload) to CPU $LOAD_CPU; loopback only. Peer suite: \`$HARNESS_SRC/run_peers.sh\`, median of $REPS reps per cell (full harness table: \`bench/results/PEERS-$RUN_ID.md\`). Total wall time $(( $(date +%s) - T0 )) s."
python3 "$BENCH/lunarbench.py" report ${RAW:+--raw "$RAW"} --extra "$EXTRA" --out "$OUT" --header "$HEADER"
log "done in $(( $(date +%s) - T0 )) s: $OUT"
