// pidfd calls as raw syscalls: glibc 2.36's <sys/pidfd.h> lacks extern "C",
// so its declarations do not link from C++.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace sbx::runtime {

inline int pidfd_signal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

inline int pidfd_for(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// SIGKILL to the process and waits until it is reaped (a child of ours).
inline void kill_and_reap(int pidfd) {
  pidfd_signal(pidfd, SIGKILL);
  siginfo_t info{};
  while (waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) < 0 && errno == EINTR) {
  }
}

}  // namespace sbx::runtime
