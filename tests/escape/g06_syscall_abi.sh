#!/usr/bin/env bash
# Group 6: bypassing the syscall filter through another ABI (i386 int 0x80,
# the x32 bit: firejail 0.9.38.2, moby 3c28324), io_uring (operations not
# seen by seccomp), and socket families that open kernel attack surface or a
# path out (AF_ALG, AF_VSOCK, AF_PACKET, raw sockets).
source "$SBX_SOURCE_DIR/tests/escape/common.bash"
[[ -n ${SBX_PROBE:-} && -x ${SBX_PROBE:-} ]] || skip "SBX_PROBE (tests/probe) not built"

# int 0x80 on the host: 0 when the kernel has ia32 emulation (then the
# filter must kill with SIGSYS), else the kernel's own SIGSEGV (139).
host_int80=$("$SBX_PROBE" int80 >/dev/null 2>&1; echo $?)
for p in "${ESC_PROFILES[@]}"; do
  esc_run "$p" -- sh -c '
    P=$0
    t() { l=$1; shift; r=$("$@" 2>/dev/null); c=$?; echo "$l=${r#errno=}"; echo "${l}_rc=rc$c"; }
    t int80 "$P" int80
    t x32 "$P" x32
    t uring "$P" io_uring_setup
    t uring_enter "$P" syscall 426 -1 0 0 0 0 0
    t uring_register "$P" syscall 427 -1 0 0 0
    t alg "$P" socket-alg
    t alg_high "$P" socket-alg-high
    t vsock "$P" socket-vsock
    t packet "$P" socket-packet
    t packet_dgram "$P" socket 17 2 0
    t raw "$P" raw-socket
    t raw_tcp "$P" socket 2 3 6
    t raw6 "$P" socket 10 3 58
    t key "$P" socket-key
  ' "$SBX_PROBE"
  expect_rc 0 "$p: attempts ran"
  if [[ $host_int80 -eq 0 ]]; then
    expect_res int80_rc rc159 "$p: int 0x80 kills the process with SIGSYS"
  else
    expect_res int80_rc "rc$host_int80" "$p: int 0x80 does not run (no ia32 emulation: exit $host_int80 as on the host)"
  fi
  expect_res int80 "" "$p: int 0x80 printed nothing (never returned)"
  expect_res x32_rc rc159 "$p: an x32 syscall kills the process with SIGSYS"
  expect_res uring EPERM "$p: io_uring_setup -> EPERM"
  expect_res uring_enter EPERM "$p: io_uring_enter -> EPERM"
  expect_res uring_register EPERM "$p: io_uring_register -> EPERM"
  expect_res alg EPERM "$p: socket(AF_ALG) -> EPERM"
  expect_res alg_high EPERM "$p: socket(AF_ALG | 1<<32) -> EPERM"
  expect_res vsock EPERM "$p: socket(AF_VSOCK) -> EPERM"
  expect_res packet EPERM "$p: socket(AF_PACKET, SOCK_RAW) -> EPERM"
  expect_res packet_dgram EPERM "$p: socket(AF_PACKET, SOCK_DGRAM) -> EPERM"
  expect_res raw EPERM "$p: socket(AF_INET, SOCK_RAW, ICMP) -> EPERM"
  expect_res raw_tcp EPERM "$p: socket(AF_INET, SOCK_RAW, TCP) -> EPERM"
  expect_res raw6 EPERM "$p: socket(AF_INET6, SOCK_RAW, ICMPV6) -> EPERM"
  expect_res key EPERM "$p: socket(AF_KEY) -> EPERM"
done
esc_done "6 (ABI, io_uring, socket families)"
