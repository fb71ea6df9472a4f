// pidfd calls as raw syscalls: glibc 2.36's <sys/pidfd.h> lacks extern "C",
// so its declarations do not link from C++.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace sbx::runtime {

inline int pidfd_signal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

inline int pidfd_for(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace sbx::runtime
