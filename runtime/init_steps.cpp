// Sandbox init (pid 1 of the new pid namespace): the steps before the worker
// is forked, and the reaper it becomes afterwards.
#include <linux/securebits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "runtime/channel.hpp"
#include "runtime/exit_status.hpp"
#include "runtime/mount_plan.hpp"
#include "runtime/sandbox_steps.hpp"
#include "runtime/startup_trace.hpp"

namespace sbx::runtime {
namespace {

// Signals sbx forwards to the command (docs/launch.md), plus SIGCHLD.
void forwarded_signal_set(sigset_t* set) {
  sigemptyset(set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGCHLD}) {
    sigaddset(set, sig);
  }
}

bool supervisor_alive(int control_fd) {
  struct pollfd pfd {};
  pfd.fd = control_fd;
  pfd.events = POLLRDHUP;
  // Only a hang-up means it is gone; a pending "go" byte (POLLIN) is fine.
  if (poll(&pfd, 1, 0) < 0) return true;
  return (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)) == 0;
}

}  // namespace

bool die_with_supervisor(int control_fd, ChildError& err) {
  // Nothing may outlive sbx (kill -9 included): init dies with it, and the
  // kernel kills the whole pid namespace when its init dies.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return err.fail("prctl(PR_SET_PDEATHSIG)", errno);
  // The supervisor may have died before PDEATHSIG was armed; its end of the
  // control socket is then closed.
  if (!supervisor_alive(control_fd)) _exit(kExitSbxError);
  return true;
}

bool keep_only_init_fds(const LaunchPlan& plan, int control_fd, int exec_fd, ChildError& err) {
  // init is a fork of the supervisor and so held every fd of sbx and of its
  // caller for the sandbox's whole life: the audit log, the control socket,
  // the state dir's lock, a host directory fd a caller leaked (runc
  // CVE-2024-21626). Non-dumpable keeps them from the command; closing them
  // keeps them from init too. Sorted without allocating (async-signal-safe).
  constexpr std::size_t kMaxCgroupFds = 8;  // one per v1 controller directory
  constexpr std::size_t kMaxKeep = kMaxPreparedTrees + kMaxCgroupFds + 2;
  const std::vector<int>& trees = mount_plan_fds(plan.mounts);
  // Bounded by prepare_mount_plan (which says so with a fix); kept as a check.
  if (trees.size() > kMaxPreparedTrees || plan.cgroup_join_fds.size() > kMaxCgroupFds)
    return err.fail("too many fds to keep", E2BIG);
  int keep[kMaxKeep];
  std::size_t n = 0;
  keep[n++] = control_fd;
  keep[n++] = exec_fd;
  for (int fd : trees) keep[n++] = fd;
  for (int fd : plan.cgroup_join_fds) keep[n++] = fd;
  for (std::size_t i = 1; i < n; ++i) {
    for (std::size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  }
  unsigned int next = 3;
  for (std::size_t i = 0; i < n; ++i) {
    if (keep[i] < 0 || static_cast<unsigned int>(keep[i]) < next) continue;
    const auto fd = static_cast<unsigned int>(keep[i]);
    if (fd > next && close_range(next, fd - 1, 0) != 0) return err.fail("close_range", errno);
    next = fd + 1;
  }
  if (close_range(next, ~0U, 0) != 0) return err.fail("close_range", errno);
  return true;
}

void close_cgroup_fds(const LaunchPlan& plan) {
  for (int fd : plan.cgroup_join_fds) close(fd);
}

bool hide_from_command(ChildError& err) {
  // Not dumpable: the command runs with init's uid, and a dumpable init could
  // be ptraced or have its /proc/1/fd opened from the sandbox, handing the
  // command init's capabilities over the namespaces of U1. Only after the
  // release: it also makes /proc/<init>/uid_map unwritable for an
  // unprivileged supervisor.
  if (prctl(PR_SET_DUMPABLE, 0) != 0) return err.fail("prctl(PR_SET_DUMPABLE)", errno);
  return true;
}

namespace {
// A pidfd that says its process or thread ended (or is itself unusable:
// never while sbx lives, it holds them). A pollfd with fd -1 never does.
bool ended(const struct pollfd& p) {
  return (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
}
}  // namespace

bool die_with_supervisor_process(ChildError& err) {
  // PDEATHSIG follows the parked thread, which lives as long as sbx runs
  // this sandbox. It may have ended before the flag was armed: sbx died, or
  // another thread's execve ended it (the process then lives on in the new
  // program, and only the thread's own pidfd says so). The wait for the
  // release, next, looks at both pidfds first.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return err.fail("prctl(PR_SET_PDEATHSIG)", errno);
  return true;
}

bool wait_for_release_early(int control_fd, int supervisor_pidfd, int parent_thread_pidfd,
                            ChildError& err) {
  struct pollfd fds[3] = {
      {control_fd, POLLIN, 0}, {supervisor_pidfd, POLLIN, 0}, {parent_thread_pidfd, POLLIN, 0}};
  for (;;) {
    const int n = poll(fds, 3, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err.fail("wait for the supervisor", errno);
    if (ended(fds[1]) || ended(fds[2])) _exit(kExitSbxError);  // sbx gone
    if ((fds[0].revents & POLLNVAL) != 0) return err.fail("wait for the supervisor", EBADF);
    if (fds[0].revents != 0) break;
  }
  return wait_for_release(control_fd, err);
}

bool take_own_fd_table(ChildError& err) {
  if (unshare(CLONE_FILES) != 0) return err.fail("unshare(CLONE_FILES)", errno);
  return true;
}

bool tell_fd_table_own(int control_fd, ChildError& err) {
  Message message;
  message.kind = MessageKind::fd_table_own;
  if (!send_message(control_fd, message)) return err.fail("tell the supervisor", errno);
  return true;
}

bool wait_for_release(int control_fd, ChildError& err) {
  char go = 0;
  const ssize_t got = read_go_byte(control_fd, &go);
  if (got == 0) _exit(kExitSbxError);  // supervisor gone (or gave up): nothing to report to
  if (got != 1) return err.fail("wait for the supervisor", errno);
  startup_trace::mark("init: released");
  return true;
}

bool become_sandbox_user(const Identity& identity, int control_fd, ChildError& err) {
  if (!identity.started_as_root) return true;  // already uid/gid, the only mapped ids
  // Started by root: we are still host root's credentials (unmapped in U1)
  // with root's supplementary groups, which would keep opening group-root
  // files. Drop them and become the sandbox user; NO_SETUID_FIXUP keeps the
  // capabilities init still needs in U1 for mounts. Raw system calls, not
  // glibc's wrappers: those change the ids of every thread of a process
  // (signalling them from a list in memory) and init, a process of its own,
  // may share the memory of a multi-threaded supervisor (shared_init.hpp).
  if (syscall(SYS_setgroups, 0, nullptr) != 0) return err.fail("setgroups", errno);
  if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) != 0) {
    return err.fail("prctl(PR_SET_SECUREBITS)", errno);
  }
  if (syscall(SYS_setresgid, identity.gid, identity.gid, identity.gid) != 0) {
    return err.fail("setresgid", errno);
  }
  if (syscall(SYS_setresuid, identity.uid, identity.uid, identity.uid) != 0) {
    return err.fail("setresuid", errno);
  }
  if (prctl(PR_SET_SECUREBITS, 0) != 0) return err.fail("prctl(PR_SET_SECUREBITS)", errno);
  // Changing credentials clears PDEATHSIG: arm it again.
  return die_with_supervisor(control_fd, err);
}

bool set_hostname(const LaunchPlan& plan, ChildError& err) {
  if (sethostname(plan.hostname.data(), plan.hostname.size()) != 0) {
    return err.fail("sethostname", errno, plan.hostname.c_str());
  }
  return true;
}

bool leave_host_session(ChildError& err) {
  // Out of the host's session and process group: keystrokes on the host
  // terminal (^C) reach sbx once and sbx forwards them once.
  if (setsid() < 0) return err.fail("setsid (init)", errno);
  return true;
}

bool block_signals_for_reaping(int* signal_fd, ChildError& err) {
  // pid 1 gets no default action for signals, so they are read from a
  // signalfd and forwarded. Blocked before the fork so no SIGCHLD is lost;
  // the worker unblocks everything before execve.
  sigset_t set;
  forwarded_signal_set(&set);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return err.fail("sigprocmask", errno);
  *signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
  if (*signal_fd < 0) return err.fail("signalfd", errno);
  return true;
}

[[noreturn]] void reap_until_worker_exits(pid_t worker, int signal_fd, int control_fd,
                                          bool serve_sockets) {
  int worker_status = 0;
  bool alone = false;
  for (;;) {
    if (serve_sockets) {
      // Also the supervisor's requests for sockets of the netns (--publish).
      struct pollfd fds[2] = {{signal_fd, POLLIN, 0}, {control_fd, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;  // EINTR
      if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !serve_socket_request(control_fd))
        serve_sockets = false;
      if ((fds[0].revents & POLLIN) == 0) continue;
    }
    struct signalfd_siginfo info {};
    ssize_t got = read(signal_fd, &info, sizeof info);
    if (got != static_cast<ssize_t>(sizeof info)) {
      if (got < 0 && errno == EINTR) continue;
      worker_status = kExitSbxError << 8;
      alone = false;  // not known: init's exit tells
      break;
    }
    if (info.ssi_signo != SIGCHLD) {
      kill(worker, static_cast<int>(info.ssi_signo));
      continue;
    }
    // Reap everything: orphans of the command are re-parented to us.
    bool worker_done = false;
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0) {
      if (pid == worker) {
        worker_done = true;
        worker_status = status;
      }
    }
    // No child left: every process of the pid namespace descends from init
    // and an orphan is re-parented to it (or to a subreaper below it) before
    // its parent can be reaped, so nothing of the sandbox runs any more.
    // __WALL: children whose exit signal is not SIGCHLD count too (and are
    // reaped), or ECHILD could come while one of them still runs.
    alone = pid < 0 && errno == ECHILD;
    if (worker_done) break;
  }
  startup_trace::mark("init: worker reaped");
  Message message;
  if (alone) {
    message.kind = MessageKind::sandbox_empty;
    send_message(control_fd, message);
  }
  message.kind = MessageKind::worker_status;
  message.value = worker_status;
  send_message(control_fd, message);
  // Our exit tears down the pid namespace: the kernel SIGKILLs whatever the
  // command left running in the background.
  _exit(exit_code_from_wait_status(worker_status));
}

}  // namespace sbx::runtime
