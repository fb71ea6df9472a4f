// The system part of `sbx check`: each kernel feature sbx builds on, asked
// of the kernel live (a forked child tries it), with the sysctls that
// explain a refusal and the fix.
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include <sbx/error.hpp>

#include "cgroups/cgroups.hpp"
#include "check/system_features.hpp"
#include "netfilter/netfilter.hpp"

namespace sbx::check {
namespace {

std::optional<std::string> read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  if (!in || !std::getline(in, value)) return std::nullopt;
  return value;
}

std::string errno_name(int e) {
  const char* name = strerrorname_np(e);
  return name ? name : fmt::format("errno {}", e);
}

// Runs fn in a forked child (the changes it makes to its namespaces stay
// there); returns 0 or the errno the child reported, and its message.
struct ChildOutcome {
  int error = 0;
  std::string message;
};
template <typename Fn>
ChildOutcome in_child(Fn fn) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return {errno, "pipe"};
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    return {e, "fork"};
  }
  if (pid == 0) {
    close(pipefd[0]);
    std::string message;
    int e = 0;
    try {
      e = fn(message);
    } catch (const std::exception& ex) {
      e = EIO;
      message = ex.what();
    }
    (void)!write(pipefd[1], message.data(), std::min<std::size_t>(message.size(), 1000));
    _exit(e & 0xff);
  }
  close(pipefd[1]);
  char buf[1024];
  std::string message;
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) message.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) return {EIO, "the test process died"};
  return {WEXITSTATUS(status), message};
}

Row user_namespaces() {
  Row row = make_row("system", "user namespaces", Verdict::ok, true);
  std::string sysctls;
  const auto add = [&](const char* name, const char* path) {
    if (auto v = read_sysctl(path))
      sysctls += fmt::format("{}{}={}", sysctls.empty() ? "" : " ", name, *v);
  };
  add("max_user_namespaces", "/proc/sys/user/max_user_namespaces");
  add("unprivileged_userns_clone", "/proc/sys/kernel/unprivileged_userns_clone");
  add("apparmor_restrict_unprivileged_userns",
      "/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  ChildOutcome c = in_child([](std::string&) { return unshare(CLONE_NEWUSER) == 0 ? 0 : errno; });
  if (c.error == 0) {
    row.detail = fmt::format("unshare(CLONE_NEWUSER) works; {}", sysctls);
    return row;
  }
  row.verdict = Verdict::unsupported;
  row.detail = fmt::format("unshare(CLONE_NEWUSER): {}; {}", errno_name(c.error), sysctls);
  row.why = "sbx builds every sandbox in a user namespace and cannot start without one";
  if (read_sysctl("/proc/sys/user/max_user_namespaces") == std::optional<std::string>("0")) {
    row.fix = "sysctl -w user.max_user_namespaces=15000";
  } else if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") ==
             std::optional<std::string>("0")) {
    row.fix = "sysctl -w kernel.unprivileged_userns_clone=1";
  } else if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") ==
             std::optional<std::string>("1")) {
    row.fix =
        "load sbx's AppArmor profile (apparmor_parser -r /etc/apparmor.d/sbx, shipped by the "
        "package) or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0";
  } else {
    row.fix = "enable CONFIG_USER_NS, or check the LSM (AppArmor, SELinux) that refuses it";
  }
  return row;
}

Row landlock(const Policy& policy) {
  Row row = make_row("system", "Landlock", Verdict::ok,
                     policy.process.landlock == LandlockMode::required);
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi > 0) {
    row.detail = fmt::format("ABI {}", abi);
    return row;
  }
  int e = errno;
  row.verdict = Verdict::unsupported;
  row.detail = fmt::format("landlock_create_ruleset: {}", errno_name(e));
  row.why = e == EOPNOTSUPP ? "Landlock is built in but not enabled at boot"
                            : "this kernel has no Landlock (Linux >= 5.13)";
  row.fix = e == EOPNOTSUPP ? "add landlock to the lsm= kernel parameter (e.g. lsm=landlock,...)"
                            : "upgrade the kernel";
  if (!row.promised) row.why += " (the profile uses it best-effort: mount rules still apply)";
  return row;
}

std::string cgroup_layout() {
  struct statfs fs {};
  if (statfs("/sys/fs/cgroup", &fs) != 0) return "no /sys/fs/cgroup";
  if (fs.f_type == CGROUP2_SUPER_MAGIC) {
    auto controllers = read_sysctl("/sys/fs/cgroup/cgroup.controllers");
    return fmt::format("cgroup v2 (root controllers: {})", controllers ? *controllers : "?");
  }
  struct statfs unified {};
  bool hybrid =
      statfs("/sys/fs/cgroup/unified", &unified) == 0 && unified.f_type == CGROUP2_SUPER_MAGIC;
  if (!hybrid) return "cgroup v1 only";
  auto controllers = read_sysctl("/sys/fs/cgroup/unified/cgroup.controllers");
  return fmt::format("hybrid: v1 controllers, v2 with controllers '{}'",
                     controllers ? *controllers : "");
}

Row cgroups(const Policy& policy) {
  const LimitsPolicy& limits = policy.limits;
  bool wants = limits.memory_bytes || limits.pids || limits.cpus || limits.swap_bytes;
  Row row =
      make_row("system", "cgroup limits for this user", Verdict::ok, wants && limits.required);
  // The decisive test: create a real (empty) sandbox group with a pids
  // limit, required, exactly as a sandbox start would; removed at once.
  LimitsPolicy probe;
  probe.pids = 64;
  probe.required = true;
  std::string warned;
  try {
    auto group = cgroups::SandboxCgroup::create(
        probe, fmt::format("sbx-check-{}", getpid()),
        [&warned](const std::string& w) { warned += (warned.empty() ? "" : "; ") + w; });
    row.detail = fmt::format("a group with pids.max can be created; {}", cgroup_layout());
  } catch (const sbx::Error& e) {
    row.verdict = Verdict::unsupported;
    row.detail = cgroup_layout();
    row.why = e.what();
    row.fix = e.fix();
    if (!row.promised) {
      row.why += wants ? " (the profile's limits are best-effort: it warns and runs)"
                       : " (the profile sets no cgroup limit)";
    }
  }
  return row;
}

Row nftables(const Policy& policy) {
  Row row = make_row("system", "nf_tables in a user namespace", Verdict::ok,
                     policy.network.mode == NetworkMode::filtered);
  ChildOutcome c = in_child([](std::string& message) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
      message = "unshare(CLONE_NEWUSER|CLONE_NEWNET)";
      return errno;
    }
    int fd = net::open_netfilter_socket();
    if (fd < 0) {
      message = "socket(NETLINK_NETFILTER)";
      return errno;
    }
    // The sandbox's real ruleset, loaded into a throw-away netns.
    net::send_batch(fd, net::build_ruleset_batch(net::RulesetConfig{}, 1));
    return 0;
  });
  if (c.error == 0) {
    row.detail = "the filtered network's ruleset loads in a new user+net namespace";
    return row;
  }
  row.verdict = Verdict::unsupported;
  row.detail = fmt::format("{}: {}", c.message, errno_name(c.error));
  row.why =
      "the filtered network needs nf_tables (nft_reject_inet, nft_log, nfnetlink_log...) "
      "usable from a user namespace";
  row.fix =
      "load the nf_tables modules (modprobe nf_tables nft_reject_inet nft_log nfnetlink_log) "
      "or use --net none";
  return row;
}

Row seccomp_notify() {
  Row row = make_row("system", "seccomp user notification", Verdict::ok, false);
  struct seccomp_notif_sizes sizes {};
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0) {
    row.detail = "denied syscalls are reported as events";
    return row;
  }
  row.verdict = Verdict::unsupported;
  row.detail = fmt::format("SECCOMP_GET_NOTIF_SIZES: {}", errno_name(errno));
  row.why = "denied syscalls are still denied, but not reported as events (Linux >= 5.0)";
  row.fix = "upgrade the kernel";
  return row;
}

Row pidfd() {
  Row row = make_row("system", "pidfd", Verdict::ok, true);
  long fd = syscall(SYS_pidfd_open, getpid(), 0);
  if (fd >= 0) {
    close(static_cast<int>(fd));
    row.detail = "pidfd_open works (race-free waits and signals)";
    return row;
  }
  row.verdict = Verdict::unsupported;
  row.detail = fmt::format("pidfd_open: {}", errno_name(errno));
  row.why = "sbx signals and waits for sandboxes through pidfds (Linux >= 5.3)";
  row.fix = "upgrade the kernel";
  return row;
}

Row clone3() {
  Row row = make_row("system", "clone3", Verdict::ok, false);
  // A NULL argument of size 0: EINVAL means the call exists.
  long rc = syscall(SYS_clone3, nullptr, 0);
  if (rc < 0 && errno == EINVAL) {
    row.detail = "available (one call creates every namespace, with a pidfd)";
    return row;
  }
  row.verdict = Verdict::unsupported;
  row.detail = fmt::format("clone3: {}", rc < 0 ? errno_name(errno) : "unexpected success");
  row.why = "sbx falls back to clone(2), and sandbox init is then a copy of sbx (slower start)";
  row.fix = "upgrade the kernel (Linux >= 5.5 for clone3 with CLONE_CLEAR_SIGHAND)";
  return row;
}

Row tiocsti() {
  Row row = make_row("system", "TIOCSTI in the kernel", Verdict::ok, false);
  auto legacy = read_sysctl("/proc/sys/dev/tty/legacy_tiocsti");
  if (!legacy) {
    row.detail = "dev.tty.legacy_tiocsti absent (kernel < 6.2: TIOCSTI always allowed)";
  } else {
    row.detail = fmt::format("dev.tty.legacy_tiocsti={}{}", *legacy,
                             *legacy == "1" ? " (allowed by the kernel; sbx blocks it with seccomp "
                                              "and a private session)"
                                            : "");
  }
  return row;
}

}  // namespace

std::vector<Row> system_rows(const Policy& policy) {
  return {user_namespaces(), landlock(policy), cgroups(policy), nftables(policy),
          seccomp_notify(),  pidfd(),          clone3(),        tiocsti()};
}

}  // namespace sbx::check
