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

# shellcheck source=bench/dhcp6/common.sh
. "$ROOT/bench/dhcp6/common.sh"
dhcp6_bench_setup s
write_server_configs

# perfdhcp SARR at RATE with IA mode MODE; prints "completed/s drop% rejected".
perf() {
  local out
  out=$(ip netns exec "$CLI" perfdhcp -6 -l v6h-c0 -R 1000000 -p "$DUR" -W "$EXIT_WAIT_US" -r "$1" -e "$2" 2>&1 || true)
  # Completed = Replies received / test period (perfdhcp's own "Rate:" also divides by the
  # exit-wait time).
  awk -v dur="$DUR" '
       /Statistics for: SOLICIT-ADVERTISE/{sa=1; rr=0} /Statistics for: REQUEST-REPLY/{rr=1; sa=0}
       sa && /^sent packets:/{ss=$3} sa && /^drops:/{sd=$2}
       rr && /^sent packets:/{rs=$3} rr && /^received packets:/{rv=$3} rr && /^drops:/{rd=$2}
       /^rejected leases:/{rej+=$3}
       END{d=(ss+rs)?100*(sd+rd)/(ss+rs):100; printf "%d %.3f %d\n", rv/dur, d, rej}' <<<"$out"
}

HZ=$(getconf CLK_TCK)
# perfdhcp waits this long after the test period for replies still in flight (default 0: a
# Reply delayed by a few ms at the very end would count as a drop).
EXIT_WAIT_US=${EXIT_WAIT_US:-1000000}

declare -A BEST
measure() { # name mode pid
  local name=$1 mode=$2 pid=$3 best=0 t0 t1 us e0 e1
  for r in "${RATES[@]}"; do
    t0=$(cpu_ticks "$pid")
    e0=$(rcvbuf_errs "$CLI")
    read -r rate drop rej < <(perf "$r" "$mode")
    t1=$(cpu_ticks "$pid")
    e1=$(rcvbuf_errs "$CLI")
    # Server CPU per completed exchange (the run lasts DUR seconds plus perfdhcp's drain).
    us=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$rate" -v s="$DUR" \
      'BEGIN{ printf "%.1f", (n > 0 ? d * 1e6 / hz / (n * s) : 0) }')
    printf '%-7s %-19s offered %6d/s  completed %6d/s  drops %7s %%  rejected %d  server CPU %6s us/exchange  client rcvbuf overflows %d\n' \
      "$name" "$mode" "$r" "$rate" "$drop" "$rej" "$us" $((e1 - e0))
    if awk -v d="$drop" 'BEGIN{exit !(d <= 0.1)}' && [ "$rate" -gt "$best" ]; then best=$rate; fi
  done
  BEST[$name-$mode]=$best
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
