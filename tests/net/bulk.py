"""Bulk-transfer checks run INSIDE a sandbox (pass as: python3 -c "$(cat bulk.py)" ARGS).

  segments           lo's largest segment sizes, read over rtnetlink
                     (RTM_GETLINK): "ipv6 N ipv4 M" (M "absent" before Linux 6.3)
  echo ADDR BYTES    sends BYTES of a pattern to ADDR's TCP echo server (port 7)
                     while reading the echo back: "intact BYTES" when every byte
                     came back in order, else "corrupt ..." / an exception
"""
import hashlib
import socket
import struct
import sys
import threading

RTM_GETLINK, RTM_NEWLINK = 18, 16
IFLA_GSO_MAX_SIZE, IFLA_GSO_IPV4_MAX_SIZE = 41, 63


def segments():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    ifinfo = struct.pack("BxHiII", 0, 0, 1, 0, 0)  # lo: ifindex 1 in a new netns
    s.send(struct.pack("IHHII", 16 + len(ifinfo), RTM_GETLINK, 1, 1, 0) + ifinfo)
    reply = s.recv(65536)
    length, kind = struct.unpack_from("IH", reply)
    if kind != RTM_NEWLINK:
        sys.exit("unexpected rtnetlink reply type %d" % kind)
    found = {}
    off = 32  # nlmsghdr + ifinfomsg
    while off + 4 <= length:
        alen, atype = struct.unpack_from("HH", reply, off)
        if alen < 4:
            break
        if atype in (IFLA_GSO_MAX_SIZE, IFLA_GSO_IPV4_MAX_SIZE) and alen >= 8:
            found[atype] = struct.unpack_from("I", reply, off + 4)[0]
        off += (alen + 3) & ~3
    print("ipv6", found.get(IFLA_GSO_MAX_SIZE, "absent"),
          "ipv4", found.get(IFLA_GSO_IPV4_MAX_SIZE, "absent"))


def echo(addr, total):
    pattern = bytes((i * 7 + 3) % 251 for i in range(1 << 16))
    sent_hash = hashlib.sha256()
    conn = socket.create_connection((addr, 7), timeout=20)

    def send():
        left = total
        while left:
            chunk = pattern[: min(left, len(pattern))]
            conn.sendall(chunk)
            sent_hash.update(chunk)
            left -= len(chunk)
        conn.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    got_hash = hashlib.sha256()
    got = 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        got_hash.update(data)
        got += len(data)
    sender.join()
    if got == total and got_hash.digest() == sent_hash.digest():
        print("intact", got)
    else:
        print("corrupt: sent", total, "received", got)


if sys.argv[1] == "segments":
    segments()
elif sys.argv[1] == "echo":
    echo(sys.argv[2], int(sys.argv[3]))
else:
    sys.exit("usage: segments | echo ADDR BYTES")
