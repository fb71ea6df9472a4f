// Worker side: hand the prepared program to the kernel. Runs between clone
// and execve, so only raw syscalls: no libseccomp (it allocates), no errors
// thrown, nothing logged.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "seccomp/seccomp.hpp"

namespace sbx::seccomp {
namespace {

long set_filter(const std::vector<sock_filter>& insns, unsigned flags) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(insns.size());
  prog.filter = const_cast<sock_filter*>(insns.data());
  return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

}  // namespace

bool install(const Program& program, int* listener_fd, runtime::ChildError& err) {
  if (listener_fd != nullptr) *listener_fd = -1;
  if (program.instructions.empty()) return true;

  if (program.uses_notify && listener_fd != nullptr) {
    long fd = set_filter(program.instructions, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    if (fd >= 0) {
      *listener_fd = static_cast<int>(fd);
      return true;
    }
    // EBUSY: a filter with a listener is already installed (sbx inside a
    // sandbox that uses notify); the kernel allows one per filter chain.
    // Anything else is a real failure.
    if (errno != EBUSY) return err.fail("seccomp", errno, "SECCOMP_FILTER_FLAG_NEW_LISTENER");
  }
  // Without a listener (none wanted, none possible) the ERRNO-only variant:
  // a notify filter with nobody listening would fail calls with ENOSYS.
  const auto& insns = program.uses_notify ? program.fallback_instructions : program.instructions;
  if (insns.empty()) return err.fail("seccomp", EINVAL, "no fallback filter");
  if (set_filter(insns, 0) != 0) return err.fail("seccomp", errno, "SECCOMP_SET_MODE_FILTER");
  return true;
}

}  // namespace sbx::seccomp
