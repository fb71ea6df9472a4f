// Argument filters. Every comparison is written against what the KERNEL sees:
// an `int` or `unsigned int` argument is truncated to its low 32 bits, but
// seccomp sees the whole 64-bit register. A rule on the full value, like the
// one Flatpak had for TIOCSTI, is bypassed by setting high bits
// (CVE-2019-10063), so rules on such arguments mask to the low 32 bits.
#include "seccomp/arg_filters.hpp"

#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <sbx/error.hpp>

namespace sbx::seccomp {
namespace {

constexpr std::uint64_t kLow32 = 0xffffffffULL;

// clone(2) flags that create namespaces. Docker masks the same bits
// (0x7E020000); CLONE_NEWTIME only exists for clone3/unshare.
constexpr std::uint64_t kCloneNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                               CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                               CLONE_NEWNET;
static_assert(kCloneNamespaceFlags == 0x7E020000);

ArgFilter make_clone() {
  ArgFilter f;
  f.allow.push_back({{0, SCMP_CMP_MASKED_EQ, kCloneNamespaceFlags, 0}});
  for (std::uint64_t bit = 1; bit != 0; bit <<= 1)
    if (kCloneNamespaceFlags & bit) f.deny.push_back({{0, SCMP_CMP_MASKED_EQ, bit, bit}});
  return f;
}

// libseccomp takes one comparison per argument in a rule, so "the low 32
// bits are none of these values" is written as the prefix blocks that cover
// every other 32-bit value: one MASKED_EQ per trie branch that leads to no
// listed value (at most 32 per value).
void low32_complement(const std::vector<std::uint32_t>& values, int bit, std::uint32_t mask,
                      std::uint32_t prefix, unsigned arg, std::vector<Conjunction>& out) {
  if (bit < 0) return;
  const std::uint32_t b = 1u << bit;
  std::vector<std::uint32_t> zeros, ones;
  for (auto v : values) (v & b ? ones : zeros).push_back(v);
  for (auto [side, bitval] : {std::pair{&zeros, 0u}, std::pair{&ones, b}}) {
    if (side->empty())
      out.push_back({{arg, SCMP_CMP_MASKED_EQ, mask | b, prefix | bitval}});
    else
      low32_complement(*side, bit - 1, mask | b, prefix | bitval, arg, out);
  }
}

// A filter on an int argument that only ever looks at its low 32 bits (what
// the kernel uses): `listed` values go to one side, everything else to the
// other; the two sides are exact complements.
void low32_values(unsigned arg, const std::vector<std::uint32_t>& listed,
                  std::vector<Conjunction>& listed_side, std::vector<Conjunction>& other_side) {
  for (auto v : listed) listed_side.push_back({{arg, SCMP_CMP_MASKED_EQ, kLow32, v}});
  low32_complement(listed, 31, 0, 0, arg, other_side);
}

// ioctl(fd, cmd): TIOCSTI pushes bytes into a terminal's input queue (the
// sandbox could type commands into the user's shell: CVE-2017-5226);
// TIOCLINUX selection/paste does the same on a virtual console (CVE-2023-28100).
// cmd is `unsigned int`: TIOCSTI | (1 << 32) is TIOCSTI to the kernel.
ArgFilter make_ioctl() {
  static_assert(TIOCSTI == 0x5412 && TIOCLINUX == 0x541C);
  ArgFilter f;
  low32_values(1, {TIOCSTI, TIOCLINUX}, f.deny, f.allow);
  return f;
}

// personality(2): only the values Docker allows (PER_LINUX, PER_LINUX32,
// UNAME26 and their combination, and 0xffffffff = query). Others switch off
// ASLR (ADDR_NO_RANDOMIZE) or make data executable (READ_IMPLIES_EXEC).
ArgFilter make_personality() {
  ArgFilter f;
  low32_values(0, {0x0, 0x8, 0x20000, 0x20008, 0xffffffff}, f.allow, f.deny);
  return f;
}

// socket(family, type, protocol), mode default: deny the families with a
// history of kernel bugs reachable without privilege, and netlink other than
// NETLINK_ROUTE (glibc's getaddrinfo needs route; audit, uevent, sock_diag,
// netfilter... are not for a sandbox).
//   AF_ALG    kernel crypto API (Docker blocks it since the copy.fail bugs)
//   AF_VSOCK  host/VM sockets (WSL interop; Docker and Codex block it)
//   AF_PACKET raw link-layer frames (CVE-2016-8655, CVE-2020-14386)
//   AF_KEY    PF_KEY IPsec key management, legacy and rarely audited
ArgFilter make_socket_default() {
  ArgFilter f;
  for (std::uint64_t fam : {AF_KEY, AF_PACKET, AF_ALG, AF_VSOCK})
    f.deny.push_back({{0, SCMP_CMP_MASKED_EQ, kLow32, fam}});
  // protocol != 0 on the full register: a high-bit NETLINK_ROUTE is refused
  // too, which costs nothing and leaves no gap.
  f.deny.push_back({{0, SCMP_CMP_MASKED_EQ, kLow32, AF_NETLINK}, {2, SCMP_CMP_NE, 0}});
  return f;
}

// socket(), mode strict: an allow-list of families, like systemd's
// RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 (+ netlink route).
ArgFilter make_socket_strict() {
  ArgFilter f;
  for (std::uint64_t fam : {AF_UNIX, AF_INET, AF_INET6})
    f.allow.push_back({{0, SCMP_CMP_MASKED_EQ, kLow32, fam}});
  f.allow.push_back({{0, SCMP_CMP_MASKED_EQ, kLow32, AF_NETLINK}, {2, SCMP_CMP_EQ, 0}});
  return f;
}

}  // namespace

const std::vector<std::string>& filtered_syscalls() {
  static const std::vector<std::string> names = {"clone", "ioctl", "personality", "socket",
                                                 "socketpair"};
  return names;
}

const ArgFilter& arg_filter(const std::string& syscall, SeccompMode mode) {
  static const ArgFilter clone = make_clone(), ioctl = make_ioctl(),
                         personality = make_personality(), socket_default = make_socket_default(),
                         socket_strict = make_socket_strict();
  if (syscall == "clone") return clone;
  if (syscall == "ioctl") return ioctl;
  if (syscall == "personality") return personality;
  // socketpair(family, type, protocol, sv) creates its sockets through the
  // same per-family code before it can fail with EOPNOTSUPP: same rules.
  if (syscall == "socket" || syscall == "socketpair")
    return mode == SeccompMode::strict ? socket_strict : socket_default;
  throw Error("seccomp: no argument filter for " + syscall);
}

}  // namespace sbx::seccomp
