// seccomp/: the policy's process.seccomp section as a BPF filter (libseccomp),
// and the user-notification listener that turns denied calls into events.
//
// Modes (docs/seccomp.md):
//   default  everything is allowed except a deny-list in the spirit of
//            Docker's default profile (mount, namespaces, keyrings, bpf,
//            io_uring, ptrace, ...), plus argument filters on clone, ioctl,
//            socket and personality.
//   strict   an allow-list (roughly systemd's @system-service) minus the same
//            deny-list, with the same argument filters; everything else is
//            denied.
//   none     no filter.
// In every mode with a filter, syscalls from another ABI (i386 int 0x80, x32)
// kill the process: their numbers differ and socketcall would hide socket()'s
// arguments. Denied calls fail with EPERM (clone3 with ENOSYS so libc falls
// back to clone, whose flags the filter can read).
#pragma once

#include <linux/filter.h>
#include <sbx/events.hpp>
#include <sbx/policy.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/child_error.hpp"

namespace sbx::seccomp {

// A filter compiled in the supervisor before clone, so the worker only has to
// hand the kernel a ready program (no allocation after clone).
struct Program {
  std::vector<sock_filter> instructions;  // empty for mode "none"
  bool uses_notify = false;               // filter contains SECCOMP_RET_USER_NOTIF
  // The same filter with SECCOMP_RET_ERRNO in place of USER_NOTIF. install()
  // uses it when the kernel refuses a new listener (EBUSY: an outer sandbox
  // already holds one), so the sandbox still runs, without denial events.
  std::vector<sock_filter> fallback_instructions;
};

// Throws sbx::Error naming an unknown syscall or group and the fix.
Program build_program(const ProcessPolicy& policy);

// Worker: installs the program; the LAST step before execve. When the program
// uses notify, *listener_fd receives the notification fd, which the caller
// passes to the supervisor and closes (-1 when the fallback was installed).
// Async-signal-safe: one raw seccomp(2) call, no libseccomp, no allocation.
// no_new_privs must already be set (the launcher does it).
bool install(const Program& program, int* listener_fd, runtime::ChildError& err);

// Supervisor: answers every notification with EPERM (ENOSYS for clone3) and
// reports it as a "syscall_denied" event (rate-limited: a token bucket; calls
// over the limit are counted and reported as one "syscall_denied_suppressed"
// event by flush() or when tokens are available again).
class NotifyListener {
 public:
  NotifyListener(int listener_fd, EventSink sink);
  ~NotifyListener();
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;
  int fd() const { return fd_; }
  // Call when fd() is readable; handles every pending notification without
  // blocking. Returns false once the listener has hung up (no filtered
  // process is left; epoll keeps reporting EPOLLHUP): stop watching fd().
  bool on_readable();
  // Reports the calls suppressed by the rate limit so far, if any. Call once
  // the sandbox is finished (the destructor does not call the sink).
  void flush();
  // Denied calls answered / reported as events so far.
  std::uint64_t answered() const;
  std::uint64_t reported() const;

 private:
  int fd_;
  EventSink sink_;
  struct RateLimit;
  RateLimit* rate_;
};

// ---- Introspection (tests, docs, `sbx check`) ----

// How the filter treats one syscall.
enum class Verdict {
  allow,     // always allowed
  deny,      // always denied with EPERM (a denial event when notify is used)
  enosys,    // always fails with ENOSYS, no event (clone3: libc falls back)
  filtered,  // allowed or denied depending on its arguments (clone, ioctl...)
};

// The decision for every syscall the filter names, before compilation.
struct FilterPlan {
  SeccompMode mode = SeccompMode::default_policy;
  // What a syscall not in `rules` gets: allow (default) or deny (strict).
  Verdict fallback = Verdict::allow;
  std::map<std::string, Verdict> rules;  // syscall name -> verdict (native arch only)
  // The verdict for `name` (a syscall name; unknown names get `fallback`).
  Verdict verdict(const std::string& name) const;
};

// Throws sbx::Error for unknown syscall or group names.
FilterPlan plan_filter(const ProcessPolicy& policy);

// Compiles a plan. notify=false yields an ERRNO-only program.
std::vector<sock_filter> compile(const FilterPlan& plan, bool notify);

// The canonical text of a plan: equal keys, equal programs.
std::string plan_key(const FilterPlan& plan);

// The notify program of `plan` from the table generated at build time
// (seccomp/gen/: the built-in modes), when there is one and the kernel's
// libseccomp API level is the one it was generated at. Else false.
bool prebuilt_notify_program(const FilterPlan& plan, std::vector<sock_filter>& out);

// A notify program with every USER_NOTIF return replaced by EPERM: the same
// as compile(plan, false) for the plan it was compiled from (unit-tested).
std::vector<sock_filter> without_notify(std::vector<sock_filter> program);

// True when the running kernel supports SECCOMP_RET_USER_NOTIF.
bool notify_supported();

struct Group {
  std::string name;                  // "@mount"
  std::string summary;               // one line
  std::vector<std::string> members;  // syscall names and nested @groups
};
const std::vector<Group>& groups();

// Expands a syscall name or @group into native syscall names (sorted, unique;
// names that do not exist on this architecture are dropped). Throws sbx::Error
// for an unknown entry; `where` names the policy key in the message.
std::vector<std::string> expand(const std::string& entry, const std::string& where = "");

// The native syscall number for a name, or -1 (also knows syscalls newer than
// the installed libseccomp).
int syscall_number(const std::string& name);
// The name for a native syscall number, or "syscall_<nr>".
std::string syscall_name(int nr);

}  // namespace sbx::seccomp
