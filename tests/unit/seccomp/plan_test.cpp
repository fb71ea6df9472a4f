// Rule building: which syscalls each mode allows, denies or filters, group
// expansion, and the errors for unknown names.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>

#include <sbx/error.hpp>

#include "seccomp/seccomp.hpp"

using namespace sbx;
using namespace sbx::seccomp;

namespace {

ProcessPolicy mode(SeccompMode m) {
  ProcessPolicy p;
  p.seccomp = m;
  return p;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Every syscall the issue names as blocked in `default` (and so in `strict`).
const char* const kMustDeny[] = {"mount",
                                 "umount2",
                                 "open_tree",
                                 "move_mount",
                                 "fsopen",
                                 "fsconfig",
                                 "fsmount",
                                 "fspick",
                                 "mount_setattr",
                                 "pivot_root",
                                 "swapon",
                                 "swapoff",
                                 "reboot",
                                 "kexec_load",
                                 "kexec_file_load",
                                 "init_module",
                                 "finit_module",
                                 "delete_module",
                                 "bpf",
                                 "perf_event_open",
                                 "keyctl",
                                 "add_key",
                                 "request_key",
                                 "userfaultfd",
                                 "io_uring_setup",
                                 "io_uring_enter",
                                 "io_uring_register",
                                 "ptrace",
                                 "process_vm_readv",
                                 "process_vm_writev",
                                 "setns",
                                 "unshare",
                                 "acct",
                                 "quotactl",
                                 "syslog",
                                 "open_by_handle_at",
                                 "name_to_handle_at",
                                 "lookup_dcookie",
                                 "settimeofday",
                                 "clock_settime",
                                 "adjtimex",
                                 "clock_adjtime",
                                 "iopl",
                                 "ioperm",
                                 "open_tree_attr"};

}  // namespace

TEST_CASE("default mode denies the Docker-like deny-list and allows the rest") {
  const FilterPlan plan = plan_filter(mode(SeccompMode::default_policy));
  CHECK(plan.fallback == Verdict::allow);
  for (const char* name : kMustDeny) {
    INFO(name);
    CHECK(plan.verdict(name) == Verdict::deny);
  }
  for (const char* name : {"read", "openat", "execve", "getppid", "mmap", "statmount", "chown"})
    CHECK(plan.verdict(name) == Verdict::allow);
  for (const char* name : {"clone", "ioctl", "socket", "socketpair", "personality"}) {
    INFO(name);
    CHECK(plan.verdict(name) == Verdict::filtered);
  }
  CHECK(plan.verdict("clone3") == Verdict::enosys);
}

TEST_CASE("strict mode is an allow-list that still denies the default deny-list") {
  const FilterPlan plan = plan_filter(mode(SeccompMode::strict));
  CHECK(plan.fallback == Verdict::deny);
  for (const char* name : kMustDeny) {
    INFO(name);
    CHECK(plan.verdict(name) == Verdict::deny);
  }
  // What shells, compilers, git, node and python need.
  for (const char* name : {"read",
                           "write",
                           "openat",
                           "close",
                           "execve",
                           "wait4",
                           "pipe2",
                           "dup2",
                           "fcntl",
                           "newfstatat",
                           "statx",
                           "getdents64",
                           "faccessat2",
                           "close_range",
                           "rseq",
                           "futex",
                           "epoll_pwait",
                           "epoll_pwait2",
                           "eventfd2",
                           "getrandom",
                           "membarrier",
                           "madvise",
                           "prctl",
                           "arch_prctl",
                           "set_robust_list",
                           "rt_sigaction",
                           "connect",
                           "sendmmsg",
                           "vfork",
                           "setpgid",
                           "kill",
                           "memfd_create",
                           "sched_getaffinity",
                           "uname",
                           "flock",
                           "copy_file_range",
                           "mseal",
                           "map_shadow_stack"}) {
    INFO(name);
    CHECK(plan.verdict(name) == Verdict::allow);
  }
  // Not in the allow-list: denied by the fallback.
  for (const char* name : {"statmount", "sethostname", "vhangup", "fanotify_init", "kcmp"}) {
    INFO(name);
    CHECK(plan.verdict(name) == Verdict::deny);
  }
  for (const char* name : {"clone", "ioctl", "socket", "socketpair", "personality"})
    CHECK(plan.verdict(name) == Verdict::filtered);
  CHECK(plan.verdict("clone3") == Verdict::enosys);
}

TEST_CASE("mode none has no rules and no program") {
  const FilterPlan plan = plan_filter(mode(SeccompMode::none));
  CHECK(plan.rules.empty());
  CHECK(plan.verdict("mount") == Verdict::allow);
  const Program p = build_program(mode(SeccompMode::none));
  CHECK(p.instructions.empty());
  CHECK_FALSE(p.uses_notify);
}

TEST_CASE("profile allow and deny lists apply on top, deny last") {
  ProcessPolicy p = mode(SeccompMode::default_policy);
  p.seccomp_allow = {"@keyring", "ioctl"};
  p.seccomp_deny = {"add_key", "@sync"};
  const FilterPlan plan = plan_filter(p);
  CHECK(plan.verdict("keyctl") == Verdict::allow);
  CHECK(plan.verdict("request_key") == Verdict::allow);
  CHECK(plan.verdict("add_key") == Verdict::deny);
  CHECK(plan.verdict("ioctl") == Verdict::allow);  // allowed whatever its arguments
  CHECK(plan.verdict("fsync") == Verdict::deny);
  CHECK(plan.verdict("mount") == Verdict::deny);

  ProcessPolicy none = mode(SeccompMode::none);
  none.seccomp_deny = {"ptrace"};
  CHECK(plan_filter(none).verdict("ptrace") == Verdict::deny);
  CHECK_FALSE(build_program(none).instructions.empty());
}

TEST_CASE("unknown names are errors naming the entry, the key and a fix") {
  ProcessPolicy p = mode(SeccompMode::strict);
  p.seccomp_allow = {"@mountt"};
  try {
    plan_filter(p);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("@mountt") && Catch::Contains("process.seccomp_allow"));
    CHECK_THAT(e.fix(), Catch::Contains("@mount"));
  }
  p.seccomp_allow.clear();
  p.seccomp_deny = {"mnt"};
  try {
    plan_filter(p);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("'mnt'") && Catch::Contains("process.seccomp_deny"));
    CHECK_FALSE(e.fix().empty());
  }
  CHECK_THROWS_AS(expand("@nope"), Error);
}

TEST_CASE("groups expand recursively and drop other architectures' syscalls") {
  const auto priv = expand("@privileged");
  CHECK(contains(priv, "mount"));         // via @mount
  CHECK(contains(priv, "reboot"));        // via @reboot
  CHECK(contains(priv, "settimeofday"));  // via @clock
  CHECK(contains(priv, "bpf"));
  CHECK_FALSE(contains(priv, "setuid"));  // unlike systemd: works inside a user namespace
  const auto chown = expand("@chown");
  CHECK(contains(chown, "fchownat"));
  CHECK_FALSE(contains(chown, "chown32"));  // i386 only
  CHECK(expand("socketcall").empty());      // exists, but not on x86_64
  CHECK(expand("mount") == std::vector<std::string>{"mount"});
  // Every group's members are known names or groups.
  for (const auto& g : groups()) {
    INFO(g.name);
    CHECK_NOTHROW(expand(g.name));
    CHECK_FALSE(g.summary.empty());
  }
}

TEST_CASE("syscall numbers include syscalls newer than libseccomp") {
  CHECK(syscall_number("getppid") == 110);
  CHECK(syscall_number("mseal") == 462);
  CHECK(syscall_number("open_tree_attr") == 467);
  CHECK(syscall_number("nonexistent") == -1);
  CHECK(syscall_name(110) == "getppid");
  CHECK(syscall_name(467) == "open_tree_attr");
  CHECK(syscall_name(9999) == "syscall_9999");
}

TEST_CASE("docs/seccomp.md lists every group") {
  std::ifstream f(std::string(SBX_SOURCE_DIR) + "/docs/seccomp.md");
  REQUIRE(f);
  const std::string doc((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (const auto& g : groups()) {
    INFO(g.name);
    CHECK(doc.find("| `" + g.name + "` |") != std::string::npos);
  }
}
