#!/usr/bin/env bash
# RA daemon footprint (radvd.md §8 home-router config): RSS and CPU of `v6home ra` and Debian's
# radvd, one after the other, idle for IDLE seconds and then under a flood of RATE Router
# Solicitations per second (from 100 link-local sources) for FLOOD seconds. Root only.
#
# Usage: sudo bench/ra/run.sh [IDLE=60] [FLOOD=60] [RATE=1000]
#   V6HOME_BIN   v6home binary (default: target/release/v6home; `cargo build --release -p v6home`)
# Namespaces v6h-br<pid>-rtr / v6h-br<pid>-host are removed on exit; only 2001:db8::/32 and
# link-local addresses are used; nothing on the host is changed.
# CPU = (utime + stime) / elapsed; RSS = VmRSS (radvd: main process + privsep child).
set -euo pipefail

IDLE=${1:-60}
FLOOD=${2:-60}
RATE=${3:-1000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${V6HOME_BIN:-$ROOT/target/release/v6home}
CONF=$ROOT/../shared/corpus/radvd/home-router-target.conf
[ -f "$CONF" ] || CONF=$ROOT/examples/lab/radvd.conf

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in ip radvd python3; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no v6home binary at $BIN" >&2; exit 2; }

R=v6h-br$$-rtr
H=v6h-br$$-host
T=$(mktemp -d)
chmod 755 "$T"
cleanup() {
  [ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null || true
  ip netns del "$R" 2>/dev/null || true
  ip netns del "$H" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

ip netns add "$R"
ip netns add "$H"
ip link add eth0 netns "$R" type veth peer name eth0 netns "$H"
ip -n "$R" link set lo up
ip -n "$H" link set lo up
ip netns exec "$R" sysctl -qw net.ipv6.conf.all.forwarding=1
ip netns exec "$H" sysctl -qw net.ipv6.conf.eth0.accept_ra=0
ip netns exec "$H" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip netns exec "$R" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip -n "$R" link set eth0 up
ip -n "$H" link set eth0 up
for i in $(seq 1 100); do
  ip -n "$H" addr add "fe80::1:$(printf %x "$i")/64" dev eth0 nodad
done
install -m 644 "$CONF" "$T/radvd.conf"

ticks=$(getconf CLK_TCK)
cpu_ticks() { # sum of utime+stime over the given pids
  local s=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    local f
    f=$(sed 's/^.*) //' "/proc/$p/stat")
    set -- $f
    s=$((s + ${12} + ${13}))
  done
  echo "$s"
}
rss_kb() {
  local s=0 p v
  for p in "$@"; do
    v=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
pids_of() { # the daemon and its children
  echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"
}

measure() { # name, command...
  local name=$1
  shift
  ip netns exec "$R" "$@" >"$T/$name.log" 2>&1 &
  DPID=$!
  sleep 3
  # ip netns exec execs the daemon, so $DPID is the daemon itself.
  local pids
  pids=$(pids_of "$DPID")
  local c0 c1 c2
  c0=$(cpu_ticks $pids)
  sleep "$IDLE"
  c1=$(cpu_ticks $pids)
  local rss_idle
  rss_idle=$(rss_kb $pids)
  local sent
  sent=$(ip netns exec "$H" python3 "$ROOT/bench/ra/rs_flood.py" eth0 "$RATE" "$FLOOD" fe80::1:0 100)
  c2=$(cpu_ticks $pids)
  local rss_flood
  rss_flood=$(rss_kb $pids)
  kill "$DPID"
  wait "$DPID" 2>/dev/null || true
  DPID=
  awk -v n="$name" -v i="$IDLE" -v f="$FLOOD" -v t="$ticks" -v c0="$c0" -v c1="$c1" -v c2="$c2" \
      -v ri="$rss_idle" -v rf="$rss_flood" -v s="$sent" 'BEGIN {
    printf "| %-12s | %6d | %7.3f %% | %6d | %7.2f %% | %7d |\n", n, ri, 100*(c1-c0)/t/i, rf, 100*(c2-c1)/t/f, s
  }'
}

echo "idle ${IDLE}s, flood ${FLOOD}s at ${RATE} RS/s from 100 sources; config $(basename "$CONF")"
echo "| daemon       | RSS idle (KiB) | CPU idle | RSS flood (KiB) | CPU flood | RS sent |"
echo "|---|---|---|---|---|---|"
measure "v6home-ra" "$BIN" ra -n -C "$T/radvd.conf" -p "$T/v6h.pid"
measure "radvd-$(radvd --version 2>&1 | awk '/Version/ {print $2}')" radvd -n -m stderr -C "$T/radvd.conf" -p "$T/radvd.pid"
