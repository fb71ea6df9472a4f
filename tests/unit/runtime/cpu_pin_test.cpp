// LaunchCpuPin::beside: start-up work on a second thread only where it may
// run, and never an error when no thread can be made: the caller then does
// the work in line.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <catch2/catch.hpp>

#include "runtime/cpu_pin.hpp"

TEST_CASE("beside: the work runs, on a thread or not at all", "[runtime][cpu_pin]") {
  const sbx::runtime::LaunchCpuPin pin;
  auto made = pin.beside([] { return 42; });
  if (made.valid()) CHECK(made.get() == 42);
  // Pinned or with few fds it must not start one.
  rlimit nofile{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &nofile) == 0);
  if (pin.pinned() || nofile.rlim_cur < sbx::runtime::LaunchCpuPin::kSpareFds)
    CHECK_FALSE(made.valid());
}

TEST_CASE("beside: no thread can be made -> no future, no exception", "[runtime][cpu_pin]") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const sbx::runtime::LaunchCpuPin pin;
    // Out of processes for this user (RLIMIT_NPROC; root is exempt, so as
    // nobody): a thread cannot be made.
    if (::geteuid() == 0 &&
        (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0))
      ::_exit(97);
    const rlimit none{0, 0};
    if (::setrlimit(RLIMIT_NPROC, &none) != 0) ::_exit(97);
    try {
      auto made = pin.beside([] { return 1; });
      ::_exit(made.valid() ? 1 : 0);
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("beside: one CPU allowed -> no side thread", "[runtime][cpu_pin]") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (::sched_setaffinity(0, sizeof one, &one) != 0) ::_exit(97);
    const sbx::runtime::LaunchCpuPin pin;
    auto made = pin.beside([] { return 1; });
    ::_exit(pin.pinned() ? 3 : made.valid() ? 1 : 0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// The side thread runs on another CPU than the launching thread's (the
// scheduler could queue it behind that one while the other idles) and with
// every signal blocked but a fault's, so a signal for the process reaches
// the launching thread (SignalRouting), whose own mask is as before.
TEST_CASE("beside: another CPU, signals blocked but a fault's, the caller's mask kept",
          "[runtime][cpu_pin]") {
  cpu_set_t allowed;
  REQUIRE(::sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  if (CPU_COUNT(&allowed) < 2 || !CPU_ISSET(0, &allowed) || !CPU_ISSET(1, &allowed)) {
    WARN("needs CPUs 0 and 1");
    return;
  }
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("SBX_LAUNCH_PIN", "0", 1);
    cpu_set_t two;
    CPU_ZERO(&two);
    CPU_SET(0, &two);
    CPU_SET(1, &two);
    if (::sched_setaffinity(0, sizeof two, &two) != 0) ::_exit(97);
    const sbx::runtime::LaunchCpuPin pin;  // the caller's set: CPUs 0 and 1
    cpu_set_t zero;
    CPU_ZERO(&zero);
    CPU_SET(0, &zero);
    if (::sched_setaffinity(0, sizeof zero, &zero) != 0) ::_exit(97);  // the caller on CPU 0
    auto made = pin.beside([] {
      cpu_set_t mine;
      sigset_t mask;
      if (::sched_getaffinity(0, sizeof mine, &mine) != 0 ||
          ::pthread_sigmask(SIG_SETMASK, nullptr, &mask) != 0)
        return 10;
      if (CPU_COUNT(&mine) != 1 || !CPU_ISSET(1, &mine) || ::sched_getcpu() != 1) return 11;
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGWINCH})
        if (sigismember(&mask, sig) != 1) return 12;
      // A fault's signal stays deliverable: an embedder's crash handler runs.
      for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL})
        if (sigismember(&mask, sig) != 0) return 13;
      return 0;
    });
    if (!made.valid()) ::_exit(3);
    sigset_t after;
    if (::pthread_sigmask(SIG_SETMASK, nullptr, &after) != 0 || sigismember(&after, SIGTERM) != 0)
      ::_exit(4);
    ::_exit(made.get());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
