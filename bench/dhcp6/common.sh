# Shared by the DHCPv6 benchmarks (run.sh, stateful.sh, saturate.sh); sourced, not run.
# The namespace pair with its veth link, cleanup on exit, the server configurations used for
# both v6home and Kea, and small /proc helpers. Only documentation prefixes are used; nothing
# on the host is changed.

# DNS servers handed out by every server in the benchmarks.
DNS_A=2001:db8:53::1
DNS_B=2001:db8:53::2

# Creates namespaces v6h-<tag><pid>-srv / -cli joined by a veth pair (v6h-s0 with
# 2001:db8:1::1/64 in srv, v6h-c0 in cli), a temp dir $T, and an EXIT trap that kills every pid
# in PIDS, calls bench_cleanup_extra if the script defines it, and removes all of it.
dhcp6_bench_setup() {
  SRV=v6h-$1$$-srv
  CLI=v6h-$1$$-cli
  T=$(mktemp -d ${BENCH_TMPDIR:+-p "$BENCH_TMPDIR"})
  chmod 755 "$T"
  PIDS=()
  trap dhcp6_bench_cleanup EXIT
  ip netns add "$SRV"
  ip netns add "$CLI"
  ip -n "$SRV" link add v6h-s0 type veth peer name v6h-c0 netns "$CLI"
  ip -n "$CLI" link set v6h-c0 address fa:02:80:73:d1:02
  local ns
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
}

dhcp6_bench_cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra || true; fi
  sleep 0.3
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  rm -rf "$T"
}

# Writes $T/v6home.toml and $T/kea/kea-dhcp6.json with the same pools: addresses from
# 2001:db8:1::1:0/96, /56s from 2001:db8:8000::/33, lifetimes 3000/4000 s. Extra Kea
# option-data entries (JSON objects, comma-separated) may be passed as $1.
write_server_configs() {
  local extra=${1:+, $1}
  cat >"$T/v6home.toml" <<EOT
[options]
dns_servers = ["$DNS_A", "$DNS_B"]
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
EOT
  mkdir -p "$T/kea"
  cat >"$T/kea/kea-dhcp6.json" <<EOT
{ "Dhcp6": {
  "interfaces-config": { "interfaces": [ "v6h-s0" ] },
  "data-directory": "$T/kea",
  "lease-database": { "type": "memfile", "persist": true,
                      "name": "$T/kea/kea-leases6.csv", "lfc-interval": 3600 },
  "renew-timer": 1000, "rebind-timer": 2000, "preferred-lifetime": 3000, "valid-lifetime": 4000,
  "option-data": [ { "name": "dns-servers", "data": "$DNS_A, $DNS_B" }$extra ],
  "subnet6": [ { "id": 1, "subnet": "2001:db8:1::/64", "interface": "v6h-s0",
     "pools": [ { "pool": "2001:db8:1::1:0/96" } ],
     "pd-pools": [ { "prefix": "2001:db8:8000::", "prefix-len": 33, "delegated-len": 56 } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "severity": "WARN",
                 "output_options": [ { "output": "$T/kea/kea-dhcp6.log" } ] } ] } }
EOT
}

# Waits until something listens on UDP 547 in the server namespace.
wait_port() {
  local _
  for _ in $(seq 50); do
    ip netns exec "$SRV" ss -Hlun 2>/dev/null | grep -q ':547 ' && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  return 1
}

# utime+stime (clock ticks) of every thread of process $1.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# UDP receive-buffer overflows (Udp6RcvbufErrors) so far in namespace $1.
rcvbuf_errs() { ip netns exec "$1" awk '$1 == "Udp6RcvbufErrors" {print $2}' /proc/net/snmp6; }
