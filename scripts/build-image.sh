#!/usr/bin/env bash
# Builds the local Redis image the containers backend runs, with no registry:
#
#   scripts/build-image.sh            # build locksim/redis:local unless it is up to date
#   scripts/build-image.sh --force    # rebuild it anyway
#
# The image is `FROM scratch` plus this machine's own redis-server (Debian's package, which
# scripts/test.sh installs), every library `ldd` lists at the same path, the dynamic loader, a
# minimal /etc/passwd and /etc/nsswitch.conf, an empty /data, and locksim's server clock shim
# (live/shim/locksim_clock.c, compiled here with gcc) at /usr/lib/locksim/liblocksim_clock.so,
# named by the image's label locksim.clock-shim: the containers provider preloads it into every
# Redis node, with the node's clock control file bind-mounted from the host, so node clocks
# can be offset, drift and be stepped as on processes. `redis-server --sentinel`
# (or the `redis-sentinel` link) runs it as a Sentinel. Nothing is pulled: the root file system
# is packed here and loaded with `docker import`, so neither a registry nor BuildKit is needed.
# Run the tests with LOCKSIM_REDIS_IMAGE=locksim/redis:local.
set -euo pipefail

TAG="${LOCKSIM_REDIS_IMAGE_TAG:-locksim/redis:local}"
force=0
[ "${1:-}" = "--force" ] && force=1

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || fail "docker is not installed"
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (is dockerd running? DOCKER_HOST=${DOCKER_HOST:-unset})"
bin="$(command -v redis-server || true)"
[ -n "$bin" ] || fail "redis-server is not installed (scripts/test.sh installs Debian's redis-server)"
real="$(readlink -f "$bin")"
version="$(redis-server --version | head -1)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shim_src="$here/../live/shim/locksim_clock.c"
[ -f "$shim_src" ] || fail "the clock shim source $shim_src is missing"
command -v gcc >/dev/null 2>&1 || fail "gcc is not installed (it builds the clock shim)"
shim_path=/usr/lib/locksim/liblocksim_clock.so
# The image is up to date when it was built from this very binary, shim source and script.
stamp="$(cat "$real" "$shim_src" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"

if [ "$force" = 0 ]; then
  have="$(docker image inspect --format '{{ index .Config.Labels "locksim.redis" }}' "$TAG" 2>/dev/null || true)"
  if [ "$have" = "$stamp" ]; then
    echo "$TAG is up to date ($version)"
    exit 0
  fi
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/data" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
cp -L "$real" "$root/usr/bin/redis-server"
ln -s redis-server "$root/usr/bin/redis-sentinel"
mkdir -p "$root$(dirname "$shim_path")"
gcc -O2 -shared -fPIC -Wall -o "$root$shim_path" "$shim_src" || fail "building the clock shim failed (is libc6-dev installed?)"

# Every library ldd lists, at the same path (symlinks resolved), and the dynamic loader.
while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd "$real" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | sort -u)
interp="$(ldd "$real" | awk '/ld-linux/ { for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; exit } }')"
[ -n "$interp" ] && [ -e "$root$interp" ] || fail "could not find the dynamic loader of $real"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/data:/nonexistent
redis:x:999:999:redis:/data:/nonexistent
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
redis:x:999:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'WORKDIR /data' \
  --change "LABEL locksim.redis=$stamp" \
  --change "LABEL locksim.clock-shim=$shim_path" \
  --change 'EXPOSE 6379' \
  --change 'CMD ["redis-server", "--protected-mode", "no", "--repl-diskless-sync-delay", "0"]' \
  - "$TAG" >/dev/null
docker run --rm "$TAG" redis-server --version >/dev/null || fail "$TAG was built but redis-server does not run in it"
docker run --rm -e LD_PRELOAD="$shim_path" "$TAG" redis-server --version >/dev/null \
  || fail "$TAG was built but redis-server does not run with the clock shim preloaded"
echo "built $TAG ($version)"
