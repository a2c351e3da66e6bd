#!/usr/bin/env bash
# Installs what building and testing Lunar needs, idempotently; fast when already done.
#   - Debian packages: liblua5.4-dev (the Lua the server embeds), pkg-config,
#     chromium + chromium-driver (browser tests)
#   - .venv            Python 3 venv with Tests/e2e/requirements.txt (pytest, selenium, ...)
#   - .venv-autobahn   Python 2.7 virtualenv with Autobahn|Testsuite (wstest), from pyenv's 2.7.18
# Each step is skipped when a stamp file says it is done with the same requirements.
# Environment: LUNAR_SKIP_AUTOBAHN=1 skips the Python 2.7 step; PYTHON3 / PYTHON2 pick the
# interpreters (default: python3, and pyenv's 2.7.18).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[install-deps] $*" >&2; }
die() { echo "[install-deps] ERROR: $*" >&2; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- 1. Debian packages ---------------------------------------------------------------
APT_PACKAGES=(liblua5.4-dev pkg-config chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- 2. Python 3 venv for the end-to-end tests ----------------------------------------
PY3=${PYTHON3:-python3}
REQ3=Tests/e2e/requirements.txt
stamp3=.venv/.lunar-deps-stamp
want3="$(hash_of "$REQ3") $("$PY3" -c 'import sys; print(sys.version.split()[0])')"
if [ "$(cat "$stamp3" 2>/dev/null)" != "$want3" ] || ! .venv/bin/python -c '' 2>/dev/null; then
    log "creating .venv ($("$PY3" --version 2>&1)) with $REQ3"
    if ! .venv/bin/python -c '' 2>/dev/null; then
        rm -rf .venv
        "$PY3" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQ3"
    echo "$want3" > "$stamp3"
fi

# --- 3. Python 2.7 virtualenv for Autobahn|Testsuite -----------------------------------
if [ "${LUNAR_SKIP_AUTOBAHN:-0}" != 1 ]; then
    REQ2=Tests/e2e/autobahn/requirements-py2.txt
    stamp2=.venv-autobahn/.lunar-deps-stamp
    want2="$(hash_of "$REQ2")"
    if [ "$(cat "$stamp2" 2>/dev/null)" != "$want2" ] || [ ! -x .venv-autobahn/bin/wstest ] || ! .venv-autobahn/bin/python -c "" 2>/dev/null; then
        PY2=${PYTHON2:-}
        if [ -z "$PY2" ]; then
            pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
            PY2="$pyenv_root/versions/2.7.18/bin/python"
        fi
        [ -x "$PY2" ] || die "Python 2.7 not found at $PY2 (Autobahn|Testsuite needs it; set PYTHON2, or LUNAR_SKIP_AUTOBAHN=1)"
        if ! "$PY2" -m virtualenv --version >/dev/null 2>&1; then
            log "installing virtualenv for $PY2"
            # 20.15.x is the last virtualenv that runs on Python 2.7.
            venv_log=$(mktemp)
            if ! "$PY2" -m pip install -q --disable-pip-version-check 'virtualenv<20.16' >"$venv_log" 2>&1; then
                cat "$venv_log" >&2; rm -f "$venv_log"
                die "pip install virtualenv for $PY2 failed"
            fi
            rm -f "$venv_log"
        fi
        log "creating .venv-autobahn with $REQ2"
        rm -rf .venv-autobahn
        "$PY2" -m virtualenv -q .venv-autobahn
        pip_log=$(mktemp)
        if ! .venv-autobahn/bin/python -m pip install -q --disable-pip-version-check \
                --no-python-version-warning -r "$REQ2" >"$pip_log" 2>&1; then
            cat "$pip_log" >&2; rm -f "$pip_log"
            die "pip install -r $REQ2 failed"
        fi
        rm -f "$pip_log"
        .venv-autobahn/bin/wstest --help >/dev/null 2>&1 || die ".venv-autobahn: wstest does not run"
        echo "$want2" > "$stamp2"
    fi
fi
log "ok"
