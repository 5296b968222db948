#!/usr/bin/env bash
# Seed 003's recipe, command for command, over redis-cli: SET key token NX PX ttl (retried after a
# fixed delay until the acquire timeout), release by GET then DEL in two separate calls (NOT atomic,
# on purpose), and with LOCKSIM_WATCHDOG=1 a background loop of plain PEXPIRE key ttl every ttl/3.
set -u
url=${LOCKSIM_NODES%%,*} key=$LOCKSIM_KEY ttl=$LOCKSIM_TTL_MS
IFS=, read -ra works <<<"$LOCKSIM_WORK_MS"; IFS=, read -ra thinks <<<"$LOCKSIM_THINK_MS"
say() { printf '{"event":"%s"%s}\n' "$1" "${2:-}"; }
esc() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//[$'\n\r\t']/ }; printf '%s' "$s"; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
now_ms() { local up; read -r up _ </proc/uptime; echo $((10#${up/./} * 10)); }  # monotonic
cli() { redis-cli -u "$url" "$@" 2>&1; }
exec 3<>"/dev/tcp/${LOCKSIM_RESOURCE%:*}/${LOCKSIM_RESOURCE##*:}" || exit 1
write() { printf 'WRITE\n' >&3; read -r _ <&3; }
watchdog=
stop_watchdog() { [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null && wait "$watchdog" 2>/dev/null; watchdog=; }
trap stop_watchdog EXIT
for ((i = 0; i < LOCKSIM_ITERATIONS; i++)); do
  token="$LOCKSIM_CLIENT-$i-$RANDOM" deadline=$(($(now_ms) + LOCKSIM_ACQUIRE_TIMEOUT_MS))
  say acquiring
  while reply=$(cli SET "$key" "$token" NX PX "$ttl") && [ "$reply" = OK ] && break; \
        [ $(($(now_ms) + LOCKSIM_RETRY_DELAY_MS)) -le "$deadline" ]; do
    sleep "$(secs "$LOCKSIM_RETRY_DELAY_MS")"
  done
  if [ "$reply" != OK ]; then
    say failed ",\"reason\":\"timeout${reply:+ (last reply: $(esc "$reply"))}\""
  else
    say acquired
    if [ "${LOCKSIM_WATCHDOG:-0}" = 1 ]; then
      (trap 'kill $child 2>/dev/null; exit 0' TERM
       while :; do sleep "$(secs $((ttl / 3)))" & child=$!; wait $child
         cli PEXPIRE "$key" "$ttl" >/dev/null & child=$!; wait $child; done) & watchdog=$!
    fi
    write; sleep "$(secs "${works[i]}")"; write
    say releasing
    stop_watchdog
    if ! held=$(cli GET "$key"); then
      say released ",\"ok\":false,\"error\":\"RedisCliError: $(esc "$held")\""
    elif [ "$held" != "$token" ]; then
      say released ",\"ok\":false,\"error\":\"NotOwnedError: GET returned '$(esc "$held")', not my token $token\""
    elif ! out=$(cli DEL "$key"); then
      say released ",\"ok\":false,\"error\":\"RedisCliError: $(esc "$out")\""
    else
      say released ',"ok":true'
    fi
  fi
  sleep "$(secs "${thinks[i]}")"
done
