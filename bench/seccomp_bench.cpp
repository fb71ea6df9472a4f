// Seccomp overhead: the same syscall-heavy loops in a child without a filter
// and in a child with sbx's `default` and `strict` filters installed exactly
// as the launcher does (no_new_privs, raw seccomp(2), notify listener held by
// the parent). Prints time ratios filtered / unfiltered (target <= 1.05).
// Built and run by bench/seccomp.sh.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "seccomp/seccomp.hpp"

namespace {

// CPU time (user + system) of this process: on a shared, loaded machine wall
// time mostly measures waiting for a core.
double cpu_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double loop_seconds(const char* what, long n) {
  const double t0 = cpu_now();
  if (std::strcmp(what, "getppid") == 0) {
    for (long i = 0; i < n; ++i) ::syscall(SYS_getppid);
  } else {
    for (long i = 0; i < n; ++i) {
      long fd = ::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) std::_Exit(3);
      ::syscall(SYS_close, fd);
    }
  }
  return cpu_now() - t0;
}

// Runs the loop in a fresh child (with `prog` installed unless null) and
// returns its time, measured inside the child.
double run_child(const sbx::seccomp::Program* prog, const char* what, long n) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) std::exit(1);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    int listener = -1;
    if (prog != nullptr) {
      sbx::runtime::ChildError err;
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
          !sbx::seccomp::install(*prog, &listener, err))
        std::_Exit(2);
      // Nothing in the loop is denied, so nobody needs to listen; keeping the
      // listener open matches a real sandbox.
    }
    double s = loop_seconds(what, n);
    if (::write(pipefd[1], &s, sizeof s) != sizeof s) std::_Exit(4);
    std::_Exit(0);
  }
  ::close(pipefd[1]);
  double s = -1;
  if (::read(pipefd[0], &s, sizeof s) != sizeof s) s = -1;
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (s < 0) {
    std::fprintf(stderr, "seccomp_bench: child failed (status %d)\n", status);
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 10'000'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  sbx::ProcessPolicy strict_policy, default_policy;
  strict_policy.seccomp = sbx::SeccompMode::strict;
  const auto strict = sbx::seccomp::build_program(strict_policy);
  const auto deflt = sbx::seccomp::build_program(default_policy);
  // A one-instruction "allow everything" filter: the kernel's fixed cost of
  // having any filter at all (the syscall leaves the fast path), which no
  // filter design can avoid.
  sbx::seccomp::Program trivial;
  trivial.instructions = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  std::printf(
      "# %ld iterations per loop, best of %d interleaved rounds, CPU time; filter sizes: "
      "default %zu, strict %zu instructions%s\n",
      n, rounds, deflt.instructions.size(), strict.instructions.size(),
      strict.uses_notify ? " (notify)" : "");
  std::printf("%-8s %11s %11s %11s %11s %9s %9s %9s\n", "loop", "none ns/op", "allow-all",
              "default", "strict", "allow/none", "def/none", "strict/none");
  bool ok = true;
  for (const char* what : {"getppid", "openat"}) {
    double best_none = 1e9, best_trivial = 1e9, best_def = 1e9, best_strict = 1e9;
    for (int r = 0; r < rounds; ++r) {
      best_none = std::min(best_none, run_child(nullptr, what, n));
      best_trivial = std::min(best_trivial, run_child(&trivial, what, n));
      best_def = std::min(best_def, run_child(&deflt, what, n));
      best_strict = std::min(best_strict, run_child(&strict, what, n));
    }
    const double ratio = best_strict / best_none;
    std::printf("%-8s %11.1f %11.1f %11.1f %11.1f %9.3f %9.3f %9.3f\n", what, best_none * 1e9 / n,
                best_trivial * 1e9 / n, best_def * 1e9 / n, best_strict * 1e9 / n,
                best_trivial / best_none, best_def / best_none, ratio);
    ok = ok && ratio <= 1.05;
  }
  std::printf("# target strict/none <= 1.05: %s\n", ok ? "met" : "NOT met");
  return 0;
}
