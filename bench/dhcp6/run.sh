#!/usr/bin/env bash
# Stateless DHCPv6 benchmark (spec dhcp6.md §7): perfdhcp Information-Request replies/s against
# `v6home dhcp6`, Kea 2.2 (memfile) and wide dhcp6s (daemon mode), one after another in the
# same run, on an isolated namespace pair. Root only. Prints replies/s per rate and the ratios.
#
# Usage: sudo bench/dhcp6/run.sh [SECONDS_PER_RUN] [RATES...]
#   V6HOME_BIN   v6home binary (default: target/release/v6home; build with
#                `cargo build --release -p v6home`)
# Namespaces are v6h-b<pid>-srv / v6h-b<pid>-cli and are removed on exit. Only documentation
# prefixes are used; nothing on the host is changed.
set -euo pipefail

DUR=${1:-10}
shift || true
RATES=("${@:-20000 40000 60000}")
read -r -a RATES <<<"${RATES[*]}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${V6HOME_BIN:-$ROOT/target/release/v6home}

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in ip perfdhcp kea-dhcp6 dhcp6s; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install kea-admin kea-dhcp6-server wide-dhcpv6-server)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no v6home binary at $BIN" >&2; exit 2; }

# shellcheck source=bench/dhcp6/common.sh
. "$ROOT/bench/dhcp6/common.sh"
DHCP6S_DUID=/var/lib/dhcpv6/dhcp6s_duid
DUID_EXISTED=0
[ -e "$DHCP6S_DUID" ] && DUID_EXISTED=1
bench_cleanup_extra() {
  [ -f "$T/dhcp6s.pid" ] && kill "$(cat "$T/dhcp6s.pid")" 2>/dev/null
  [ "$DUID_EXISTED" = 0 ] && rm -f "$DHCP6S_DUID"
  return 0
}
dhcp6_bench_setup b
write_server_configs '{ "name": "information-refresh-time", "data": "86400" }'

echo "option domain-name-servers $DNS_A $DNS_B;" >"$T/dhcp6s.conf"
# §7.4: message type 11, Client ID DUID-LL 00:0c:01:02:03:04, ORO {23}, Elapsed Time.
echo '0b000001 0001000a00030001000c01020304 000600020017 000800020000' >"$T/inforeq.hex"

# perfdhcp at RATE for DUR seconds; prints "sent orphans".
perf() {
  local out
  out=$(ip netns exec "$CLI" perfdhcp -6 -l v6h-c0 -R 1000000 -p "$DUR" -r "$1" \
        -T "$T/inforeq.hex" -X 1 -O 17 2>&1 || true)
  awk '/Statistics for: SOLICIT-ADVERTISE/{sa=1; rr=0} /Statistics for: REQUEST-REPLY/{rr=1; sa=0}
       sa && /^sent packets:/{sent=$3} rr && /^orphans:/{orph=$2}
       END{printf "%d %d\n", sent, orph}' <<<"$out"
}

declare -A BEST
measure() {
  local name=$1 best=0
  for r in "${RATES[@]}"; do
    read -r sent orph < <(perf "$r")
    local rps=$((orph / DUR))
    local pct=0
    [ "$sent" -gt 0 ] && pct=$(awk -v o="$orph" -v s="$sent" 'BEGIN{printf "%.1f", 100*o/s}')
    printf '%-8s offered %6d/s  sent %8d  answered %6s %%  replies/s %6d\n' "$name" "$r" "$sent" "$pct" "$rps"
    [ "$rps" -gt "$best" ] && best=$rps
  done
  BEST[$name]=$best
}

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, ${DUR}s per run, rates: ${RATES[*]}"

# v6home
ip netns exec "$SRV" "$BIN" --log-level warn dhcp6 -f -c "$T/dhcp6s.conf" \
  --duid-file "$T/v6home-duid" --no-import-dhcp6s-duid v6h-s0 2>"$T/v6home.log" &
PIDS+=($!); V6PID=$!
wait_port; sleep 0.5
measure v6home
kill "$V6PID"; wait "$V6PID" 2>/dev/null || true; sleep 0.5

# Kea 2.2, memfile, single-threaded (the default)
KEA_LOCKFILE_DIR=$T/kea KEA_PIDFILE_DIR=$T/kea ip netns exec "$SRV" kea-dhcp6 -c "$T/kea/kea-dhcp6.json" \
  >"$T/kea/stdout.log" 2>&1 &
PIDS+=($!); KPID=$!
wait_port; sleep 1
measure kea
kill "$KPID"; wait "$KPID" 2>/dev/null || true; sleep 0.5

# wide dhcp6s, daemon mode (its -f mode is ~8x slower; spec §3 defect 5)
ip netns exec "$SRV" dhcp6s -k /dev/null -c "$T/dhcp6s.conf" -P "$T/dhcp6s.pid" v6h-s0
wait_port; sleep 0.5
measure dhcp6s
kill "$(cat "$T/dhcp6s.pid")" 2>/dev/null || true; rm -f "$T/dhcp6s.pid"; sleep 0.5

echo "# best replies/s: v6home ${BEST[v6home]}  kea ${BEST[kea]}  dhcp6s ${BEST[dhcp6s]}"
awk -v v="${BEST[v6home]}" -v k="${BEST[kea]}" -v d="${BEST[dhcp6s]}" 'BEGIN{
  printf "# ratio v6home/kea %.2f   v6home/dhcp6s %.2f\n", (k ? v/k : 0), (d ? v/d : 0) }'
