// LaunchCpuPin::beside: start-up work on a second thread only where it may
// run, and never an error when no thread can be made: the caller then does
// the work in line.
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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
