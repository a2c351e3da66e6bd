#!/usr/bin/env bash
# THE test command: dependencies, build, unit tests (swift test), end-to-end tests (pytest:
# the real server, real sockets, headless Chromium, Autobahn|Testsuite).
# Extra arguments go to pytest, e.g.  scripts/test.sh -m "not autobahn"  or  -k smoke
# LUNAR_SWIFT_TEST_TIMEOUT (s, default 1200) caps swift test.
# Exits non-zero if any step fails; the last line is pytest's summary.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "==> $*"; }

step "scripts/install-deps.sh"
./scripts/install-deps.sh || { echo "install-deps failed" >&2; exit 1; }

step "swift build"
swift build || { echo "swift build failed" >&2; exit 1; }
LUNAR_BIN="$(swift build --show-bin-path)/lunar"
export LUNAR_BIN

status=0
# A hung unit test must not eat CI's whole budget: cap swift test (build included).
step "swift test (time limit ${LUNAR_SWIFT_TEST_TIMEOUT:=1200} s)"
timeout -k 30 "$LUNAR_SWIFT_TEST_TIMEOUT" swift test
rc=$?
if [ "$rc" -ne 0 ]; then
    status=1
    if [ "$rc" -eq 124 ]; then
        echo "swift test TIMED OUT after ${LUNAR_SWIFT_TEST_TIMEOUT} s (a hung test?)" >&2
    fi
    echo "swift test FAILED (exit $rc); running the end-to-end tests anyway" >&2
fi

step "pytest Tests/e2e (LUNAR_BIN=$LUNAR_BIN)"
.venv/bin/python -m pytest Tests/e2e -q "$@" || status=1
exit "$status"
