#!/usr/bin/env python3
"""Send Router Solicitations at a fixed rate from many link-local source addresses.

Usage: rs_flood.py IFACE RATE SECONDS SRC_PREFIX COUNT
  Sources are SRC_PREFIX + 1..COUNT (e.g. fe80::1:0 → fe80::1:1 …); they must already be
  assigned to IFACE (nodad). Each RS is 8 bytes plus an SLLAO, hop limit 255, to ff02::2.
Prints the number of RSs sent. Stdlib only; needs CAP_NET_RAW (run inside a namespace).
"""
import ipaddress
import socket
import struct
import sys
import time


def main() -> None:
    iface, rate, secs, base, count = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    idx = socket.if_nametoindex(iface)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    base_int = int(ipaddress.IPv6Address(base))
    srcs = [ipaddress.IPv6Address(base_int + i + 1).packed for i in range(count)]
    mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
    rs = bytes([133, 0, 0, 0, 0, 0, 0, 0, 1, 1]) + mac
    dst = ("ff02::2", 0, 0, idx)
    sent = 0
    start = time.monotonic()
    batch = max(1, rate // 100)
    while True:
        now = time.monotonic() - start
        if now >= secs:
            break
        due = int(now * rate)
        while sent < due:
            for _ in range(min(batch, due - sent)):
                pktinfo = srcs[sent % count] + struct.pack("@I", idx)
                try:
                    s.sendmsg([rs], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0, dst)
                except OSError:
                    pass
                sent += 1
        time.sleep(0.005)
    print(sent)


if __name__ == "__main__":
    main()
