#!/usr/bin/env bash
# Stateful DHCPv6 benchmark (spec dhcp6.md §7.3): perfdhcp 4-message exchanges (Solicit,
# Advertise, Request, Reply) per second against `v6home dhcp6` (durable lease journal, every
# lease fsynced before its Reply) and Kea 2.2 (memfile, persist on), one after the other in
# the same run, for addresses, prefixes, and both. Root only. Prints the completed rate and
# drops per offered rate, and the ratio of the best rates at <= 0.1 % drops.
#
# Usage: sudo bench/dhcp6/stateful.sh [SECONDS_PER_RUN] [RATES...]
#   V6HOME_BIN   v6home binary (default: target/release/v6home)
#   MODES        IA modes to run (default: "address-only prefix-only address-and-prefix")
#   SERVERS      servers to run (default: "v6home kea")
#   BENCH_TMPDIR where the lease files go (default: $TMPDIR or /tmp; /dev/shm shows the cost of fsync)
# Namespaces are v6h-s<pid>-srv / v6h-s<pid>-cli and are removed on exit.
set -euo pipefail

DUR=${1:-5}
shift || true
RATES=("${@:-5000 10000 20000}")
read -r -a RATES <<<"${RATES[*]}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${V6HOME_BIN:-$ROOT/target/release/v6home}

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in ip perfdhcp kea-dhcp6; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install kea-admin kea-dhcp6-server)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no v6home binary at $BIN" >&2; exit 2; }

SRV=v6h-s$$-srv
CLI=v6h-s$$-cli
T=$(mktemp -d ${BENCH_TMPDIR:+-p "$BENCH_TMPDIR"})
chmod 755 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.3
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

ip netns add "$SRV"
ip netns add "$CLI"
ip -n "$SRV" link add v6h-s0 type veth peer name v6h-c0 netns "$CLI"
ip -n "$CLI" link set v6h-c0 address fa:02:80:73:d1:02
for ns in "$SRV" "$CLI"; do
  ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$ns" link set lo up
done
ip netns exec "$SRV" sysctl -q -w net.ipv6.conf.v6h-s0.accept_dad=0
ip netns exec "$CLI" sysctl -q -w net.ipv6.conf.v6h-c0.accept_dad=0
ip -n "$SRV" link set v6h-s0 up
ip -n "$CLI" link set v6h-c0 up
ip -n "$SRV" -6 addr add 2001:db8:1::1/64 dev v6h-s0 nodad
sleep 1

# The same pools for both servers: addresses from 2001:db8:1::1:0/96, /56s from a /33.
cat >"$T/v6home.toml" <<EOF
[options]
dns_servers = ["2001:14b8:0:3401::6", "2001:1418:10:2::2"]
[[interface]]
name = "v6h-s0"
address_pools = [{ pool = "p", preferred = 3000, valid = 4000 }]
[[interface.pd_pool]]
prefix = "2001:db8:8000::/33"
delegated_len = 56
preferred = 3000
valid = 4000
[[pool]]
name = "p"
start = "2001:db8:1::1:0"
end = "2001:db8:1::ffff:ffff"
EOF
mkdir -p "$T/kea"
cat >"$T/kea/kea-dhcp6.json" <<EOF
{ "Dhcp6": {
  "interfaces-config": { "interfaces": [ "v6h-s0" ] },
  "data-directory": "$T/kea",
  "lease-database": { "type": "memfile", "persist": true,
                      "name": "$T/kea/kea-leases6.csv", "lfc-interval": 3600 },
  "renew-timer": 1000, "rebind-timer": 2000, "preferred-lifetime": 3000, "valid-lifetime": 4000,
  "option-data": [ { "name": "dns-servers", "data": "2001:14b8:0:3401::6, 2001:1418:10:2::2" } ],
  "subnet6": [ { "id": 1, "subnet": "2001:db8:1::/64", "interface": "v6h-s0",
     "pools": [ { "pool": "2001:db8:1::1:0/96" } ],
     "pd-pools": [ { "prefix": "2001:db8:8000::", "prefix-len": 33, "delegated-len": 56 } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "severity": "WARN",
                 "output_options": [ { "output": "$T/kea/kea-dhcp6.log" } ] } ] } }
EOF

# perfdhcp SARR at RATE with IA mode MODE; prints "completed/s drop% rejected".
perf() {
  local out
  out=$(ip netns exec "$CLI" perfdhcp -6 -l v6h-c0 -R 1000000 -p "$DUR" -r "$1" -e "$2" 2>&1 || true)
  awk '/^Rate:/{rate=$2}
       /Statistics for: SOLICIT-ADVERTISE/{sa=1; rr=0} /Statistics for: REQUEST-REPLY/{rr=1; sa=0}
       sa && /^sent packets:/{ss=$3} sa && /^drops:/{sd=$2}
       rr && /^sent packets:/{rs=$3} rr && /^drops:/{rd=$2}
       /^rejected leases:/{rej+=$3}
       END{d=(ss+rs)?100*(sd+rd)/(ss+rs):100; printf "%d %.3f %d\n", rate, d, rej}' <<<"$out"
}

# CPU time (utime + stime, all threads) of process $1 in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# Datagrams the client's kernel dropped because perfdhcp's socket buffer was full.
client_rcvbuf_errors() { ip netns exec "$CLI" awk '$1 == "Udp6RcvbufErrors" {print $2}' /proc/net/snmp6; }

declare -A BEST
measure() { # name mode pid
  local name=$1 mode=$2 pid=$3 best=0 t0 t1 us e0 e1
  for r in "${RATES[@]}"; do
    t0=$(cpu_ticks "$pid")
    e0=$(client_rcvbuf_errors)
    read -r rate drop rej < <(perf "$r" "$mode")
    t1=$(cpu_ticks "$pid")
    e1=$(client_rcvbuf_errors)
    # Server CPU per completed exchange (the run lasts DUR seconds plus perfdhcp's drain).
    us=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$rate" -v s="$DUR" \
      'BEGIN{ printf "%.1f", (n > 0 ? d * 1e6 / hz / (n * s) : 0) }')
    printf '%-7s %-19s offered %6d/s  completed %6d/s  drops %7s %%  rejected %d  server CPU %6s us/exchange  client rcvbuf overflows %d\n' \
      "$name" "$mode" "$r" "$rate" "$drop" "$rej" "$us" $((e1 - e0))
    if awk -v d="$drop" 'BEGIN{exit !(d <= 0.1)}' && [ "$rate" -gt "$best" ]; then best=$rate; fi
  done
  BEST[$name-$mode]=$best
}

wait_port() {
  for _ in $(seq 50); do
    ip netns exec "$SRV" ss -Hlun 2>/dev/null | grep -q ':547 ' && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; return 1
}

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, ${DUR}s per run, rates: ${RATES[*]}"
read -r -a MODES <<<"${MODES:-address-only prefix-only address-and-prefix}"
SERVERS=" ${SERVERS:-v6home kea} "
for mode in "${MODES[@]}"; do
  if [[ $SERVERS == *" v6home "* ]]; then
  rm -f "$T/leases.journal" "$T/leases.journal.lock"
  ip netns exec "$SRV" "$BIN" --log-level warn dhcp6 -f -c "$T/v6home.toml" \
    --duid-file "$T/v6home-duid" --no-import-dhcp6s-duid --lease-file "$T/leases.journal" \
    v6h-s0 2>"$T/v6home.log" &
  PIDS+=($!); V6PID=$!
  wait_port; sleep 0.5
  measure v6home "$mode" "$V6PID"
  kill "$V6PID"; wait "$V6PID" 2>/dev/null || true; sleep 0.5
  grep -E 'journal|fsync' "$T/v6home.log" | tail -3 || true
  fi

  if [[ $SERVERS == *" kea "* ]]; then
  rm -f "$T"/kea/kea-leases6*.csv*
  KEA_LOCKFILE_DIR=$T/kea KEA_PIDFILE_DIR=$T/kea ip netns exec "$SRV" kea-dhcp6 -c "$T/kea/kea-dhcp6.json" \
    >"$T/kea/stdout.log" 2>&1 &
  PIDS+=($!); KPID=$!
  wait_port; sleep 1
  measure kea "$mode" "$KPID"
  kill "$KPID"; wait "$KPID" 2>/dev/null || true; sleep 0.5
  fi
done
for mode in "${MODES[@]}"; do
  awk -v m="$mode" -v v="${BEST[v6home-$mode]:-0}" -v k="${BEST[kea-$mode]:-0}" 'BEGIN{
    printf "# %-19s best at <= 0.1 %% drops: v6home %d/s  kea %d/s  ratio %.2f\n", m, v+0, k+0, (k ? v/k : 0) }'
done
