// sbx-nft-refresh: proves the allow-set timeout refresh of netfilter/ on the
// running kernel (issue 7: "in the VM harness (kernel 6.1), timeout refresh
// works"). Before Linux 6.12 re-adding an element keeps its old expiry
// (commit 4201f3938914), so sbx refreshes with add, delete, add in one
// transaction (build_allow_batch(refresh=true)). In a fresh user+net
// namespace, with the real ruleset and batch code:
//   refreshed  added with T, refreshed with T at R: present at P (> T, < R+T)
//   unrefreshed added with T, never refreshed:      absent at P
//   readded    added with T, plain re-add at R:     reported (absent before 6.12)
// Presence is probed by deleting the element (ENOENT when gone or expired).
// Prints one line per check; exit 0 pass, 1 fail, 77 no user namespace.
#include <fcntl.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "netfilter/netfilter.hpp"
#include "sbx/error.hpp"

using namespace std::chrono_literals;
using sbx::net::AllowElement;
using sbx::net::IpAddress;

namespace {

bool write_file(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

std::uint32_t seq = 100;

void add(int fd, const IpAddress& a, std::chrono::milliseconds t, bool refresh) {
  AllowElement e{a, t};
  auto batch = sbx::net::build_allow_batch("sbx", {&e, 1}, seq, refresh);
  seq += 64;
  sbx::net::send_batch(fd, batch);
}

bool present(int fd, const IpAddress& a) {
  try {
    sbx::net::send_batch(fd, sbx::net::build_delete_allow_batch("sbx", {&a, 1}, seq));
    seq += 64;
    return true;
  } catch (const sbx::Error&) {
    seq += 64;
    return false;  // ENOENT: expired (or never there)
  }
}

}  // namespace

int main() {
  struct utsname u {};
  uname(&u);
  std::printf("kernel %s\n", u.release);
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    std::printf("SKIP: no user+net namespace: %s\n", std::strerror(errno));
    return 77;
  }
  write_file("/proc/self/setgroups", "deny");
  write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
  write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  try {
    int fd = sbx::net::open_netfilter_socket();
    if (fd < 0) throw sbx::Error(std::string("NETLINK_NETFILTER: ") + std::strerror(errno));
    sbx::net::send_batch(fd, sbx::net::build_ruleset_batch(sbx::net::RulesetConfig{}, 1));

    // T = 3 s, R = 2 s, P = 4 s: a second either side, for slow (emulated) CPUs.
    const auto T = 3000ms;
    const auto refreshed = *IpAddress::parse("198.51.100.1");
    const auto unrefreshed = *IpAddress::parse("198.51.100.2");
    const auto readded = *IpAddress::parse("198.51.100.3");
    const auto v6 = *IpAddress::parse("2001:db8::1");
    auto start = std::chrono::steady_clock::now();
    for (const auto& a : {refreshed, unrefreshed, readded, v6}) add(fd, a, T, false);
    std::this_thread::sleep_until(start + 2000ms);
    add(fd, refreshed, T, true);  // what the DNS filter sends before 6.12
    add(fd, v6, T, true);
    add(fd, readded, T, false);  // a plain re-add
    auto refreshed_at = std::chrono::steady_clock::now() - start;
    std::this_thread::sleep_until(start + 4000ms);
    auto probe_at = std::chrono::steady_clock::now() - start;
    bool r = present(fd, refreshed), r6 = present(fd, v6), n = present(fd, unrefreshed),
         p = present(fd, readded);
    auto ms = [](auto d) {
      return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    std::printf("refreshed at %ld ms, probed at %ld ms (timeout %ld ms)\n", ms(refreshed_at),
                ms(probe_at), ms(T));
    if (probe_at >= refreshed_at + T || probe_at < T) {
      std::printf("SKIP: timing too slow to decide (probe at %ld ms)\n", ms(probe_at));
      return 77;
    }
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
      std::printf("%s %s\n", ok ? "ok" : "FAIL", what);
      failures += ok ? 0 : 1;
    };
    check(r, "refreshed IPv4 element (add, delete, add) is present after its first timeout");
    check(r6, "refreshed IPv6 element is present after its first timeout");
    check(!n, "element without refresh expired after its timeout");
    std::printf("info plain re-add %s the timeout on this kernel\n",
                p ? "refreshes" : "does NOT refresh");
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
}
