#!/usr/bin/env bash
# Installs the shipped adapters (adapters/README.md), so that a scenario's `"program": "redis-py"`
# (or pottery, python-redis-lock, aioredlock, rslock, redis-cli) runs. Idempotent; fast when done.
#
#   scripts/install-adapters.sh
#
#   - target/adapters/venv: a Python venv (python3 -m venv) with adapters/requirements.txt,
#     reinstalled only when that file changes
#   - target/adapters/cargo/release/locksim-adapter-rslock: the rslock adapter (adapters/rslock,
#     its own cargo project), built with cargo, which does nothing when it is up to date
#   - redis-cli (Debian's redis-tools) for the redis-cli recipe, when it is missing
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
fail() { printf 'error: install-adapters: %s\n' "$*" >&2; exit 1; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-cli >/dev/null 2>&1; then
  say "installing Debian's redis-tools (redis-cli) for the redis-cli adapter"
  apt_install redis-tools || fail "redis-cli is missing and could not be installed with apt-get: install redis-tools"
fi

venv=target/adapters/venv
stamp=$venv/.locksim-requirements
if [ ! -x "$venv/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv \
    || fail "python3 is missing and could not be installed with apt-get: install Python 3.11 or later"
  mkdir -p target/adapters
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_install python3-venv && python3 -m venv "$venv" \
      || fail "python3 -m venv failed: install python3-venv and retry"
  fi
fi
if ! cmp -s adapters/requirements.txt "$stamp"; then
  say "installing the Python adapters' libraries into $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r adapters/requirements.txt \
    || fail "pip could not install adapters/requirements.txt into $venv"
  cp adapters/requirements.txt "$stamp"
fi

cargo build -q --release --locked --manifest-path adapters/rslock/Cargo.toml --target-dir target/adapters/cargo \
  || fail "cargo could not build the rslock adapter (adapters/rslock)"
say "adapters: $(cd adapters/bin && echo *) ($("$venv/bin/python" --version))"
