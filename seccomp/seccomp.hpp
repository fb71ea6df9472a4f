// seccomp/: the policy's process.seccomp section as a BPF filter (libseccomp),
// and the user-notification listener that turns denied calls into events.
#pragma once

#include <linux/filter.h>
#include <sbx/events.hpp>
#include <sbx/policy.hpp>

#include <string>
#include <vector>

#include "runtime/child_error.hpp"

namespace sbx::seccomp {

// A filter compiled in the supervisor before clone, so the worker only has to
// hand the kernel a ready program (no allocation after clone).
struct Program {
  std::vector<sock_filter> instructions;  // empty for mode "none"
  bool uses_notify = false;               // filter contains SECCOMP_RET_USER_NOTIF
};

// Throws sbx::Error naming an unknown syscall or group and the fix.
Program build_program(const ProcessPolicy& policy);

// Worker: installs the program; the LAST step before execve. When the program
// uses notify, *listener_fd receives the notification fd, which the caller
// passes to the supervisor and closes. Async-signal-safe.
bool install(const Program& program, int* listener_fd, runtime::ChildError& err);

// Supervisor: answers every notification with EPERM and reports it as a
// "syscall_denied" event (rate-limited).
class NotifyListener {
 public:
  NotifyListener(int listener_fd, EventSink sink);
  ~NotifyListener();
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;
  int fd() const { return fd_; }
  // Call when fd() is readable; handles every pending notification.
  void on_readable();

 private:
  int fd_;
  EventSink sink_;
  struct RateLimit;
  RateLimit* rate_;
};

}  // namespace sbx::seccomp
