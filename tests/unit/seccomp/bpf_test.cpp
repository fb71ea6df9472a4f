// The compiled BPF, run in a userspace interpreter: actions per syscall,
// architecture checks, and the argument filters over edge-case values.
#include <catch2/catch.hpp>

#include <linux/audit.h>
#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>

#include "bpf_eval.hpp"
#include "seccomp/seccomp.hpp"

using namespace sbx;
using namespace sbx::seccomp;
using sbx::seccomp::test::bpf_eval;

namespace {

constexpr std::uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr std::uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
constexpr std::uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS;
constexpr std::uint32_t kNotify = SECCOMP_RET_USER_NOTIF;
constexpr std::uint32_t kKill = SECCOMP_RET_KILL_PROCESS;

std::vector<sock_filter> program(SeccompMode m, bool notify) {
  ProcessPolicy p;
  p.seccomp = m;
  return compile(plan_filter(p), notify);
}

std::uint32_t run(const std::vector<sock_filter>& prog, const char* name,
                  std::initializer_list<std::uint64_t> args = {},
                  std::uint32_t arch = AUDIT_ARCH_X86_64) {
  seccomp_data d{};
  d.nr = syscall_number(name);
  d.arch = arch;
  std::size_t i = 0;
  for (auto a : args) d.args[i++] = a;
  return bpf_eval(prog, d);
}

std::uint32_t run_nr(const std::vector<sock_filter>& prog, int nr, std::uint32_t arch,
                     std::uint64_t a0 = 0) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = arch;
  d.args[0] = a0;
  return bpf_eval(prog, d);
}

using U = std::vector<std::uint64_t>;

// Interesting 64-bit values around a set of constants: each, its neighbours,
// with high bits set, sign-extended, plus random values.
std::vector<std::uint64_t> samples(std::initializer_list<std::uint64_t> around) {
  std::vector<std::uint64_t> v = {0,
                                  1,
                                  0x7fffffff,
                                  0x80000000,
                                  0xffffffff,
                                  0x100000000ULL,
                                  0xffffffff00000000ULL,
                                  0xffffffff80000000ULL,
                                  ~0ULL};
  for (auto c : around)
    for (std::uint64_t base : {c, c - 1, c + 1})
      for (std::uint64_t hi :
           {0ULL, 1ULL << 32, 0x123ULL << 32, 0xffffffffULL << 32, 0x8000000000000000ULL})
        v.push_back(base | hi);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) v.push_back(rng());
  for (int i = 0; i < 2000; ++i) v.push_back(rng() & 0xffffffff);
  return v;
}

}  // namespace

TEST_CASE("default: deny-list answered by notify or EPERM, the rest allowed") {
  for (bool notify : {false, true}) {
    INFO("notify " << notify);
    const auto prog = program(SeccompMode::default_policy, notify);
    const std::uint32_t deny = notify ? kNotify : kEperm;
    for (const char* name : {"mount",          "open_tree",
                             "move_mount",     "fsopen",
                             "pivot_root",     "unshare",
                             "setns",          "keyctl",
                             "add_key",        "bpf",
                             "ptrace",         "process_vm_readv",
                             "io_uring_setup", "perf_event_open",
                             "userfaultfd",    "kexec_load",
                             "init_module",    "reboot",
                             "swapon",         "syslog",
                             "acct",           "open_by_handle_at",
                             "settimeofday",   "iopl",
                             "ioperm",         "umount2",
                             "mount_setattr",  "open_tree_attr"}) {
      INFO(name);
      CHECK(run(prog, name) == deny);
    }
    for (const char* name : {"read", "getppid", "openat", "execve", "statmount", "mseal"}) {
      INFO(name);
      CHECK(run(prog, name) == kAllow);
    }
    CHECK(run(prog, "clone3") == kEnosys);
  }
}

TEST_CASE("strict: allow-list, everything else denied") {
  for (bool notify : {false, true}) {
    const auto prog = program(SeccompMode::strict, notify);
    const std::uint32_t deny = notify ? kNotify : kEperm;
    for (const char* name : {"read", "getppid", "openat", "execve", "wait4", "faccessat2"})
      CHECK(run(prog, name) == kAllow);
    for (const char* name : {"mount", "bpf", "ptrace", "statmount", "sethostname", "kcmp"})
      CHECK(run(prog, name) == deny);
    CHECK(run_nr(prog, 999, AUDIT_ARCH_X86_64) == deny);  // a future syscall
    CHECK(run(prog, "clone3") == kEnosys);
  }
}

TEST_CASE("other ABIs are killed: i386 (int 0x80) and x32") {
  for (auto m : {SeccompMode::default_policy, SeccompMode::strict}) {
    const auto prog = program(m, true);
    CHECK(run_nr(prog, 20 /* i386 getpid */, AUDIT_ARCH_I386) == kKill);
    CHECK(run_nr(prog, 102 /* i386 socketcall */, AUDIT_ARCH_I386) == kKill);
    // x32 shares x86_64's audit arch but sets bit 30 of the number.
    CHECK(run_nr(prog, 0x40000000 | 39, AUDIT_ARCH_X86_64) == kKill);
    CHECK(run_nr(prog, 0x40000000 | 41 /* socket */, AUDIT_ARCH_X86_64, AF_ALG) == kKill);
  }
}

TEST_CASE("clone: namespace flags denied, threads and fork allowed") {
  for (auto m : {SeccompMode::default_policy, SeccompMode::strict}) {
    const auto prog = program(m, false);
    CHECK(run(prog, "clone", {SIGCHLD}) == kAllow);
    CHECK(run(prog, "clone",
              {CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
               CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID}) == kAllow);
    for (auto f : U{CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWUTS,
                    CLONE_NEWIPC, CLONE_NEWCGROUP}) {
      INFO(f);
      CHECK(run(prog, "clone", {f | SIGCHLD}) == kEperm);
      CHECK(run(prog, "clone", {f | (1ULL << 40)}) == kEperm);
    }
  }
}

TEST_CASE("ioctl: TIOCSTI and TIOCLINUX denied on the low 32 bits (CVE-2019-10063)") {
  for (auto m : {SeccompMode::default_policy, SeccompMode::strict}) {
    const auto prog = program(m, false);
    for (auto cmd :
         U{std::uint64_t(TIOCSTI), std::uint64_t(TIOCLINUX), std::uint64_t(TIOCSTI) | (1ULL << 32),
           std::uint64_t(TIOCSTI) | (0x123ULL << 32),
           std::uint64_t(TIOCSTI) | 0xffffffff00000000ULL,
           std::uint64_t(TIOCLINUX) | (1ULL << 63)}) {
      INFO(std::hex << cmd);
      CHECK(run(prog, "ioctl", {0, cmd}) == kEperm);
    }
    for (auto cmd :
         U{std::uint64_t(TCGETS), std::uint64_t(TIOCGWINSZ), std::uint64_t(TIOCSWINSZ),
           std::uint64_t(FIONREAD), std::uint64_t(TIOCSTI) - 1, std::uint64_t(TIOCLINUX) + 1,
           0x80045430ULL /* TIOCGPTN */, 0xffffffff80045430ULL /* the same, sign-extended */}) {
      INFO(std::hex << cmd);
      CHECK(run(prog, "ioctl", {0, cmd}) == kAllow);
    }
  }
}

TEST_CASE("argument filters: default's deny side and strict's allow side agree") {
  const auto def = program(SeccompMode::default_policy, false);
  const auto strict = program(SeccompMode::strict, false);
  struct Case {
    const char* name;
    unsigned arg;
    std::vector<std::uint64_t> values;
  };
  const Case cases[] = {
      {"clone", 0, samples({CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, SIGCHLD, 0x7E020000})},
      {"ioctl", 1, samples({TIOCSTI, TIOCLINUX, TCGETS})},
      {"personality", 0, samples({0, 8, 0x20000, 0x20008, 0xffffffff, 0x0040000})},
  };
  for (const auto& c : cases) {
    for (auto v : c.values) {
      seccomp_data d{};
      d.nr = syscall_number(c.name);
      d.arch = AUDIT_ARCH_X86_64;
      d.args[c.arg] = v;
      const auto a = bpf_eval(def, d), b = bpf_eval(strict, d);
      INFO(c.name << " " << std::hex << v);
      REQUIRE((a == kAllow || a == kEperm));
      REQUIRE(a == b);
      // What the kernel will act on: the low 32 bits for int arguments.
      if (std::string(c.name) == "ioctl" && a == kAllow) {
        const auto low = v & 0xffffffff;
        REQUIRE(low != TIOCSTI);
        REQUIRE(low != TIOCLINUX);
      }
      if (std::string(c.name) == "clone" && a == kAllow) REQUIRE((v & 0x7E020000) == 0);
    }
  }
}

TEST_CASE("personality: only Docker's harmless values") {
  for (auto m : {SeccompMode::default_policy, SeccompMode::strict}) {
    const auto prog = program(m, false);
    // The kernel reads an unsigned int: 1 << 32 is PER_LINUX to it.
    for (auto v : U{0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL, 0x100000000ULL})
      CHECK(run(prog, "personality", {v}) == kAllow);
    for (auto v : U{0x0040000ULL /* ADDR_NO_RANDOMIZE */, 0x0400000ULL /* READ_IMPLIES_EXEC */,
                    0x1ULL, 0x100040000ULL})
      CHECK(run(prog, "personality", {v}) == kEperm);
  }
}

TEST_CASE("socket: dangerous families denied (default), allow-list (strict)") {
  const auto def = program(SeccompMode::default_policy, true);
  const auto strict = program(SeccompMode::strict, true);
  for (const auto* prog : {&def, &strict}) {
    for (auto fam : U{AF_ALG, AF_VSOCK, AF_PACKET, AF_KEY}) {
      INFO(fam);
      CHECK(run(*prog, "socket", {fam, SOCK_STREAM, 0}) == kNotify);
      CHECK(run(*prog, "socket", {fam | (1ULL << 32), SOCK_STREAM, 0}) == kNotify);
    }
    CHECK(run(*prog, "socket", {AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */}) == kAllow);
    CHECK(run(*prog, "socket", {AF_NETLINK, SOCK_RAW, 9 /* NETLINK_AUDIT */}) == kNotify);
    CHECK(run(*prog, "socket", {AF_NETLINK, SOCK_RAW, 15 /* KOBJECT_UEVENT */}) == kNotify);
    CHECK(run(*prog, "socket", {AF_NETLINK | (1ULL << 32), SOCK_RAW, 9}) == kNotify);
    for (auto fam : U{AF_UNIX, AF_INET, AF_INET6})
      CHECK(run(*prog, "socket", {fam, SOCK_STREAM, 0}) == kAllow);
  }
  for (const auto* prog : {&def, &strict}) {
    CHECK(run(*prog, "socketpair", {AF_UNIX, SOCK_STREAM, 0}) == kAllow);
    CHECK(run(*prog, "socketpair", {AF_ALG, SOCK_SEQPACKET, 0}) == kNotify);
    CHECK(run(*prog, "socketpair", {AF_VSOCK | (1ULL << 32), SOCK_STREAM, 0}) == kNotify);
  }
  // Families outside the strict allow-list.
  CHECK(run(def, "socket", {AF_BLUETOOTH, SOCK_STREAM, 0}) == kAllow);
  CHECK(run(strict, "socket", {AF_BLUETOOTH, SOCK_STREAM, 0}) == kNotify);
  CHECK(run(strict, "socket", {AF_UNIX | (1ULL << 32), SOCK_STREAM, 0}) == kAllow);
}

TEST_CASE("build_program: notify program plus an ERRNO fallback") {
  ProcessPolicy p;
  const Program prog = build_program(p);
  REQUIRE_FALSE(prog.instructions.empty());
  REQUIRE_FALSE(prog.fallback_instructions.empty());
  if (notify_supported()) {
    CHECK(prog.uses_notify);
    CHECK(run(prog.instructions, "mount") == kNotify);
  }
  CHECK(run(prog.fallback_instructions, "mount") == kEperm);
  CHECK(prog.instructions.size() < 1024);
  ProcessPolicy strict;
  strict.seccomp = SeccompMode::strict;
  CHECK(build_program(strict).instructions.size() < 1024);
}

TEST_CASE("without_notify: the notify program with EPERM in place of USER_NOTIF is the ERRNO one") {
  // build_program derives the fallback instead of compiling twice; it must
  // be exactly what libseccomp yields with EPERM as the deny action.
  for (SeccompMode m : {SeccompMode::default_policy, SeccompMode::strict}) {
    ProcessPolicy p;
    p.seccomp = m;
    p.seccomp_allow = {"ptrace"};
    p.seccomp_deny = {"@swap", "uname"};
    const FilterPlan plan = plan_filter(p);
    const auto errno_only = compile(plan, false);
    const auto derived = without_notify(compile(plan, true));
    REQUIRE(derived.size() == errno_only.size());
    for (std::size_t i = 0; i < derived.size(); ++i) {
      INFO("instruction " << i);
      CHECK(derived[i].code == errno_only[i].code);
      CHECK(derived[i].jt == errno_only[i].jt);
      CHECK(derived[i].jf == errno_only[i].jf);
      CHECK(derived[i].k == errno_only[i].k);
    }
  }
}

TEST_CASE("prebuilt programs of the built-in modes are what the compiler yields") {
  // The table generated at build time (seccomp/gen/) replaces libseccomp's
  // compiler at start-up; it must be instruction for instruction the same.
  for (SeccompMode m : {SeccompMode::default_policy, SeccompMode::strict}) {
    ProcessPolicy p;
    p.seccomp = m;
    const FilterPlan plan = plan_filter(p);
    std::vector<sock_filter> prebuilt;
    REQUIRE(prebuilt_notify_program(plan, prebuilt));
    const auto compiled = compile(plan, true);
    REQUIRE(prebuilt.size() == compiled.size());
    CHECK(std::memcmp(prebuilt.data(), compiled.data(), compiled.size() * sizeof(sock_filter)) ==
          0);
  }
  // Any other plan is compiled: a profile's own list changes the key.
  ProcessPolicy custom;
  custom.seccomp = SeccompMode::strict;
  custom.seccomp_allow = {"ptrace"};
  std::vector<sock_filter> none;
  CHECK_FALSE(prebuilt_notify_program(plan_filter(custom), none));
  CHECK(none.empty());
  ProcessPolicy off;
  off.seccomp = SeccompMode::none;
  CHECK_FALSE(prebuilt_notify_program(plan_filter(off), none));
}
