#!/usr/bin/env bash
# Stateful DHCPv6 saturation benchmark: like stateful.sh, but the load comes from
# v6h-dhcp6-load (batched open-loop SARR generator) instead of perfdhcp, whose single thread
# tops out at ~12-16k exchanges/s on a 2-vCPU VM. The server is pinned to CPU 0 and the
# generator to CPU 1. For each IA mode and server it prints completed exchanges/s, drops and
# the server's CPU time per completed exchange (utime+stime of all its threads, from
# /proc/<pid>/stat), then the best rate at <= 0.1 % drops (and no rejected leases) per server
# and the ratio v6home/Kea. One line at a low rate checks the generator against perfdhcp.
# Root only.
#
# Usage: sudo bench/dhcp6/saturate.sh [SECONDS_PER_RUN] [RATES...]
#   V6HOME_BIN    v6home binary (default: target/release/v6home)
#   LOADGEN_BIN   load generator (default: target/release/v6h-dhcp6-load)
#   MODES         IA modes (default: "address-only prefix-only address-and-prefix")
#   SERVERS       servers (default: "v6home kea")
#   VALIDATE_RATE rate of the perfdhcp cross-check (default 5000; 0 skips it)
#   TIMEOUT_MS    drop timeout of the generator (default 1000, as perfdhcp)
#   SEARCH_STEPS  after the rates, bisect this many times between the highest passing and
#                 the lowest failing rate (default 0)
#   GEN_ARGS      extra v6h-dhcp6-load arguments (e.g. "--wake-on-rx" or "--slice-us 200")
#   BENCH_TMPDIR  where the lease files go (default: $TMPDIR or /tmp)
# Namespaces are v6h-sat<pid>-srv / v6h-sat<pid>-cli and are removed on exit.
set -euo pipefail

DUR=${1:-5}
shift || true
RATES=("${@:-10000 20000 30000 40000}")
read -r -a RATES <<<"${RATES[*]}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${V6HOME_BIN:-$ROOT/target/release/v6home}
LOADGEN=${LOADGEN_BIN:-$ROOT/target/release/v6h-dhcp6-load}
VALIDATE_RATE=${VALIDATE_RATE:-5000}
TIMEOUT_MS=${TIMEOUT_MS:-1000}
SEARCH_STEPS=${SEARCH_STEPS:-0}
read -r -a GEN_ARGS <<<"${GEN_ARGS:-}"

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in ip taskset perfdhcp kea-dhcp6 getconf; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install util-linux kea-admin kea-dhcp6-server)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no v6home binary at $BIN" >&2; exit 2; }
[ -x "$LOADGEN" ] || { echo "no v6h-dhcp6-load binary at $LOADGEN (cargo build --release -p v6h-loadgen)" >&2; exit 2; }
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then SRV_CPU=0; GEN_CPU=1; else SRV_CPU=0; GEN_CPU=0; fi
HZ=$(getconf CLK_TCK)

# shellcheck source=bench/dhcp6/common.sh
. "$ROOT/bench/dhcp6/common.sh"
dhcp6_bench_setup sat
write_server_configs

# Value of key $1 in the generator's summary line $2.
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k{print $2}'; }

NEXT_CLIENT=0
# gen RATE MODE: one generator run; prints its summary line.
gen() {
  local first=$NEXT_CLIENT
  NEXT_CLIENT=$((NEXT_CLIENT + $1 * DUR + 1000))
  taskset -c "$GEN_CPU" ip netns exec "$CLI" "$LOADGEN" -q -l v6h-c0 -r "$1" -p "$DUR" -e "$2" \
    --timeout-ms "$TIMEOUT_MS" --first-client "$first" "${GEN_ARGS[@]}" 2>&1 | tail -1
}

# perfdhcp SARR at RATE with IA mode MODE (as stateful.sh); prints "completed/s drop% rejected".
perf() {
  local out
  out=$(taskset -c "$GEN_CPU" ip netns exec "$CLI" perfdhcp -6 -l v6h-c0 -R 1000000 -p "$DUR" -r "$1" -e "$2" 2>&1 || true)
  awk '/^Rate:/{rate=$2}
       /Statistics for: SOLICIT-ADVERTISE/{sa=1; rr=0} /Statistics for: REQUEST-REPLY/{rr=1; sa=0}
       sa && /^sent packets:/{ss=$3} sa && /^drops:/{sd=$2}
       rr && /^sent packets:/{rs=$3} rr && /^drops:/{rd=$2}
       /^rejected leases:/{rej+=$3}
       END{d=(ss+rs)?100*(sd+rd)/(ss+rs):100; printf "%d %.3f %d\n", rate, d, rej}' <<<"$out"
}

validate() { # name pid
  local mode=address-only line
  read -r prate pdrop prej < <(perf "$VALIDATE_RATE" "$mode")
  sleep 0.5
  line=$(gen "$VALIDATE_RATE" "$mode")
  printf '%-7s check at %d/s %s: perfdhcp completed %6d/s drops %s %% rejected %d | v6h-dhcp6-load completed %6s/s drops %s %% rejected %s\n' \
    "$1" "$VALIDATE_RATE" "$mode" "$prate" "$pdrop" "$prej" \
    "$(field completed_per_s "$line")" "$(field drops_pct "$line")" "$(field rejected "$line")"
  sleep 0.5
}

# run_one NAME MODE PID RATE: one generator run against the server PID; prints a line and
# sets PASS (1 when drops <= 0.1 % and nothing was rejected) and COMP (completed/s).
run_one() {
  local name=$1 mode=$2 pid=$3 r=$4 line c0 c1 t0 t1 s0 s1 g0 g1 drop rej replies gcpu other
  s0=$(rcvbuf_errs "$SRV"); g0=$(rcvbuf_errs "$CLI")
  c0=$(cpu_ticks "$pid"); t0=$(date +%s%N)
  line=$(gen "$r" "$mode")
  c1=$(cpu_ticks "$pid"); t1=$(date +%s%N)
  s1=$(rcvbuf_errs "$SRV"); g1=$(rcvbuf_errs "$CLI")
  PASS=0; COMP=$(field completed_per_s "$line")
  if [ -z "$COMP" ]; then echo "$name $mode $r: generator failed: $line"; COMP=0; return; fi
  drop=$(field drops_pct "$line")
  rej=$(field rejected "$line"); replies=$(field replies "$line"); gcpu=$(field gen_cpu_pct "$line")
  other="rcvbuf_drops(srv/gen)=$((s1 - s0))/$((g1 - g0)) skipped=$(field skipped "$line") send_errors=$(field send_errors "$line") malformed=$(field malformed "$line")"
  awk -v n="$name" -v m="$mode" -v r="$r" -v c="$COMP" -v d="$drop" -v j="$rej" \
      -v rep="$replies" -v dt=$((c1 - c0)) -v hz="$HZ" -v w=$((t1 - t0)) -v g="$gcpu" -v o="$other" 'BEGIN{
    us = rep ? dt * 1e6 / hz / rep : 0
    printf "%-7s %-19s offered %6d/s  completed %6d/s  drops %7.3f %%  rejected %d  server %6.1f us/exch (%3.0f %% CPU)  loadgen %5.1f %% CPU  %s\n",
      n, m, r, c, d, j, us, 100 * dt / hz / (w / 1e9), g, o }'
  if awk -v d="$drop" -v j="$rej" 'BEGIN{exit !(d <= 0.1 && j == 0)}'; then PASS=1; fi
  sleep 0.5
}

declare -A BEST
# measure NAME MODE PID: the RATES, then SEARCH_STEPS bisection steps between the highest
# passing and the lowest failing offered rate (multiples of 500/s).
measure() {
  local name=$1 mode=$2 pid=$3 best=0 lo=0 hi=0 mid
  for r in "${RATES[@]}"; do
    run_one "$name" "$mode" "$pid" "$r"
    if [ "$PASS" = 1 ]; then
      [ "$COMP" -gt "$best" ] && best=$COMP
      [ "$r" -gt "$lo" ] && lo=$r
    elif [ "$hi" = 0 ] || [ "$r" -lt "$hi" ]; then
      hi=$r
    fi
  done
  for ((i = 0; i < SEARCH_STEPS; i++)); do
    [ "$hi" -gt "$lo" ] || break
    mid=$(( (lo + hi) / 2 / 500 * 500 ))
    { [ "$mid" -le "$lo" ] || [ "$mid" -ge "$hi" ]; } && break
    printf '  search: '
    run_one "$name" "$mode" "$pid" "$mid"
    if [ "$PASS" = 1 ]; then
      lo=$mid; [ "$COMP" -gt "$best" ] && best=$COMP
    else
      hi=$mid
    fi
  done
  BEST[$name-$mode]=$best
}

echo "# $(date -u +%FT%TZ) $NCPU CPUs, ${DUR}s per run, rates: ${RATES[*]}, drop timeout ${TIMEOUT_MS} ms, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# server pinned to CPU $SRV_CPU, load generator to CPU $GEN_CPU (taskset); other processes"
echo "# (kernel softirqs for the veth pair, jbd2, other users) still share both CPUs."
echo "# server us/exch = server utime+stime (all threads) / completed exchanges; kernel work done"
echo "# outside the server's context (journal commit threads, veth softirq on the other CPU) is not in it."
echo "# rcvbuf_drops(srv/gen): datagrams the kernel dropped because the server's / generator's socket"
echo "# receive buffer was full (Udp6RcvbufErrors in each namespace). With drops, us/exch also"
echo "# carries the work spent on exchanges that did not complete."
read -r -a MODES <<<"${MODES:-address-only prefix-only address-and-prefix}"
SERVERS=" ${SERVERS:-v6home kea} "
VALIDATED=""
for mode in "${MODES[@]}"; do
  if [[ $SERVERS == *" v6home "* ]]; then
    rm -f "$T/leases.journal" "$T/leases.journal.lock"
    taskset -c "$SRV_CPU" ip netns exec "$SRV" "$BIN" --log-level warn dhcp6 -f -c "$T/v6home.toml" \
      --duid-file "$T/v6home-duid" --no-import-dhcp6s-duid --lease-file "$T/leases.journal" \
      v6h-s0 2>"$T/v6home.log" &
    PIDS+=($!); V6PID=$!
    wait_port; sleep 0.5
    if [ "$VALIDATE_RATE" -gt 0 ] && [[ $VALIDATED != *v6home* ]]; then validate v6home; VALIDATED+=" v6home"; fi
    measure v6home "$mode" "$V6PID"
    kill "$V6PID"; wait "$V6PID" 2>/dev/null || true; sleep 0.5
    grep -E 'journal|fsync|error' "$T/v6home.log" | tail -3 || true
  fi

  if [[ $SERVERS == *" kea "* ]]; then
    rm -f "$T"/kea/kea-leases6*.csv*
    KEA_LOCKFILE_DIR=$T/kea KEA_PIDFILE_DIR=$T/kea taskset -c "$SRV_CPU" \
      ip netns exec "$SRV" kea-dhcp6 -c "$T/kea/kea-dhcp6.json" >"$T/kea/stdout.log" 2>&1 &
    PIDS+=($!); KPID=$!
    wait_port; sleep 1
    if [ "$VALIDATE_RATE" -gt 0 ] && [[ $VALIDATED != *kea* ]]; then validate kea; VALIDATED+=" kea"; fi
    measure kea "$mode" "$KPID"
    kill "$KPID"; wait "$KPID" 2>/dev/null || true; sleep 0.5
  fi
done
echo "# $(date -u +%FT%TZ) done, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in "${MODES[@]}"; do
  awk -v m="$mode" -v v="${BEST[v6home-$mode]:-0}" -v k="${BEST[kea-$mode]:-0}" 'BEGIN{
    printf "# %-19s best at <= 0.1 %% drops: v6home %d/s  kea %d/s  ratio %.2f\n", m, v+0, k+0, (k ? v/k : 0) }'
done
