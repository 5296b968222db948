#!/usr/bin/env bash
# Installs what the tests need, then runs every test (the README's second command).
#
#   scripts/test.sh            # install what is missing, run the whole suite
#
# What it installs, only when missing:
#   - a C compiler and libc headers (gcc, libc6-dev): `live`'s build script compiles the clock
#     shim (live/shim/locksim_clock.c) that moves real servers' clocks
#   - Debian's redis-server (real-Redis tests start their own servers on loopback ports)
#   - the local Redis image locksim/redis:local, when a Docker engine answers
#     (scripts/build-image.sh: FROM scratch + Debian's redis-server; no registry needed)
#   - cargo-nextest is used when present, plain `cargo test` otherwise
# With CI=true a missing prerequisite that cannot be installed is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

if ! command -v cc >/dev/null 2>&1 || [ ! -e /usr/include/stdio.h ]; then
  say "installing a C compiler (gcc, libc6-dev) for the clock shim"
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null \
      || fail "could not install gcc and libc6-dev with apt-get"
  else
    fail "no C compiler (cc) and no apt-get to install one: install gcc and the libc headers and retry"
  fi
fi

if ! command -v redis-server >/dev/null 2>&1; then
  say "installing Debian's redis-server"
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
      || fail "could not install redis-server with apt-get"
  else
    fail "redis-server is missing and there is no apt-get to install it: install Redis 7 and retry"
  fi
fi
# The Debian package starts a system-wide server; the tests start their own and need none.
if command -v systemctl >/dev/null 2>&1; then as_root systemctl stop redis-server >/dev/null 2>&1 || true; fi
say "redis-server: $(redis-server --version | head -1)"
say "installing the shipped adapters (scripts/install-adapters.sh)"
bash scripts/install-adapters.sh

if docker info >/dev/null 2>&1; then
  say "building the local Redis image"
  bash scripts/build-image.sh
  export LOCKSIM_REDIS_IMAGE="${LOCKSIM_REDIS_IMAGE:-locksim/redis:local}"
elif [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then
  fail "no Docker engine answers (docker info failed): CI must run the container tests"
else
  say "no Docker engine: the container tests will say SKIPPED"
fi

if cargo nextest --version >/dev/null 2>&1; then
  say "cargo nextest run --workspace"
  cargo nextest run --workspace --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc -q
else
  say "cargo test --workspace"
  cargo test --workspace --no-fail-fast
fi
