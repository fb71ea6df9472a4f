// Namespaces from the supervisor's side: the one clone3 that creates the
// sandbox, and the uid/gid maps of its user namespace.
#pragma once

#include "runtime/launch.hpp"

#include <sys/types.h>

#include <sbx/error.hpp>

#include <cstdint>
#include <string>

#include "runtime/identity.hpp"
#include "runtime/shared_init.hpp"

namespace sbx::runtime {

struct CloneRequest {
  std::uint64_t namespaces = 0;  // CLONE_NEW* flags
  // Set: the child shares the caller's address space and runs shared->entry
  // (shared_init.hpp), where the kernel also has CLONE_CLEAR_SIGHAND (the
  // caller's signal handlers must never run in it).
  const SharedChild* shared = nullptr;
};

struct CloneOutcome {
  pid_t pid = -1;              // 0 in the child
  int pidfd = -1;              // parent only; -1 if the kernel gave none
  bool shared_memory = false;  // the child runs request.shared->entry (never returns)
};

// clone3(namespaces | CLONE_PIDFD | CLONE_CLEAR_SIGHAND [| CLONE_VM |
// CLONE_SETTLS]), falling back to what the kernel supports: to clone(2)
// when clone3 is missing or filtered (ENOSYS,
// e.g. under Docker's seccomp profile), and to a copy of the address space
// when it cannot be shared. Returns in the parent, and in the child only when
// it is a copy (pid 0), like fork.
// Throws sbx::Error (with the sysctl to check) in the parent when the kernel
// refuses the namespaces.
CloneOutcome clone_sandbox(const CloneRequest& request);

// An early start's clone3 (shared_init.hpp SharedInit::start_early), made
// by the parked thread while the supervisor still plans: init shares the
// address space and, until it is released, the fd table too (CLONE_FILES:
// the plan's fds do not exist yet). No fallback: returns the pid (the pidfd
// through `pidfd`), or -1 with errno, and the caller starts the usual way.
long clone_init_early(std::uint64_t namespaces, const SharedChild& child, int* pidfd);

// Starts the worker (pid 2) running worker_main(plan, exec_fd), after it
// closed control_fd. Like posix_spawn: clone(CLONE_VM | CLONE_VFORK) on a
// stack of its own, so init's address space (a copy of the supervisor's) is
// neither copied nor torn down again at the command's execve; init waits
// until the worker has called execve or exited. Not glibc's fork(): it runs
// atfork handlers and takes malloc locks, which are not safe in a process
// created by a raw clone3 from a possibly multi-threaded parent. Returns the
// worker's pid, or -1 with errno set.
// stack_top: a stack for the worker (SharedInit's, freed by the supervisor
// even if init dies meanwhile), or nullptr: mapped here and unmapped after.
pid_t start_worker(const LaunchPlan& plan, int control_fd, int exec_fd, char* stack_top);

// Writes setgroups, gid_map and uid_map of the child's user namespace (U1).
// The only mapped id is identity.uid/gid, onto itself. Unprivileged: the
// kernel allows exactly that once setgroups is "deny" (CVE-2014-8989: else a
// user could drop a group that denies access). Root: setgroups stays "allow"
// so init can drop root's supplementary groups before it becomes the user.
void write_id_maps(pid_t child, const Identity& identity);

// The user-facing error for a failed user-namespace operation, naming the
// sysctls that usually cause it.
// with_netns: the refused call also made a network namespace, whose own
// limit (user.max_net_namespaces) may be the cause.
Error user_namespace_error(const std::string& what, int error_number, bool with_netns = false);

}  // namespace sbx::runtime
