#include "runtime/namespaces.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "runtime/startup_trace.hpp"

namespace sbx::runtime {
namespace {

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  if (!(in >> value)) return {};
  return value;
}

long raw_clone3(struct clone_args* args) {
  return syscall(SYS_clone3, args, sizeof *args);
}

#ifdef SBX_CLONE3_RUN
// clone3_run_x86_64.S: clone3, and in the child fn(arg) on args->stack,
// then exit. Returns the pid or -errno.
extern "C" long sbx_clone3_run(struct clone_args* args, std::size_t size, int (*fn)(void*),
                               void* arg);

long shared_clone3(struct clone_args* args, const SharedChild& child) {
  args->flags |= CLONE_VM | CLONE_SETTLS;
  args->stack = reinterpret_cast<std::uint64_t>(child.stack);
  args->stack_size = child.stack_size;
  args->tls = child.tls;
  const long pid = sbx_clone3_run(args, sizeof *args, child.entry, child.arg);
  if (pid >= 0) return pid;
  errno = static_cast<int>(-pid);
  return -1;
}
#endif

void write_proc_file(pid_t pid, const char* name, const std::string& content) {
  std::string path = fmt::format("/proc/{}/{}", pid, name);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw user_namespace_error(fmt::format("cannot open {}", path), errno);
  ssize_t written = write(fd, content.data(), content.size());
  int saved = errno;
  close(fd);
  if (written != static_cast<ssize_t>(content.size())) {
    throw user_namespace_error(fmt::format("cannot write \"{}\" to {}", content, path),
                               written < 0 ? saved : EIO);
  }
}

}  // namespace

Error user_namespace_error(const std::string& what, int error_number, bool with_netns) {
  std::string why = fmt::format("{}: {}", what, std::strerror(error_number));
  std::string fix;
  std::string apparmor = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  std::string debian = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
  std::string max_ns = read_sysctl("/proc/sys/user/max_user_namespaces");
  // clone3 makes the network namespace too: its own limit, told apart.
  std::string max_net = read_sysctl("/proc/sys/user/max_net_namespaces");
  if (with_netns && max_net == "0" && max_ns != "0") {
    fix =
        "network namespaces are disabled (user.max_net_namespaces=0); raise it: sysctl -w "
        "user.max_net_namespaces=15000 (--net host would run without network isolation)";
  } else if (error_number == ENOSPC || max_ns == "0") {
    fix = fmt::format(
        "user namespaces are exhausted or disabled (user.max_user_namespaces={}); raise it: "
        "sysctl -w user.max_user_namespaces=15000",
        max_ns.empty() ? "?" : max_ns);
  } else if (apparmor == "1") {
    // Ubuntu 23.10+: the profile sbx ships (packaging/apparmor/sbx) grants
    // `userns,` to /usr/bin/sbx only; the .deb installs and loads it.
    fix =
        "AppArmor restricts unprivileged user namespaces "
        "(kernel.apparmor_restrict_unprivileged_userns=1); install the profile shipped with sbx "
        "(packaging/apparmor/sbx; the .deb installs it as /etc/apparmor.d/sbx): sudo install -m "
        "644 packaging/apparmor/sbx /etc/apparmor.d/sbx && sudo apparmor_parser -r "
        "/etc/apparmor.d/sbx (it grants `userns,` to /usr/bin/sbx only; edit the path if sbx is "
        "elsewhere), or allow all programs: sudo sysctl -w "
        "kernel.apparmor_restrict_unprivileged_userns=0";
  } else if (debian == "0") {
    fix =
        "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); enable "
        "them: sysctl -w kernel.unprivileged_userns_clone=1";
  } else if (error_number == EPERM) {
    fix =
        "the kernel refused a user namespace: inside a container or another sandbox (sbx "
        "included), its seccomp filter forbids new namespaces — run sbx outside it, or give the "
        "container a seccomp profile that allows them; a chroot cannot create user namespaces; "
        "on Ubuntu check kernel.apparmor_restrict_unprivileged_userns, elsewhere "
        "user.max_user_namespaces";
  } else {
    fix = "check that the kernel supports user namespaces (CONFIG_USER_NS)";
  }
  return Error(why, fix);
}

CloneOutcome clone_sandbox(const CloneRequest& request) {
  CloneOutcome out;
  bool clear_sighand = true;
  for (;;) {
    int pidfd = -1;
    struct clone_args args {};
    // CLONE_CLEAR_SIGHAND (5.5): the embedding process's handlers do not
    // reach the sandbox (its SIG_IGN settings do: the worker resets them,
    // reset_signals, as SIG_IGN survives execve).
    args.flags = request.namespaces | CLONE_PIDFD | (clear_sighand ? CLONE_CLEAR_SIGHAND : 0);
    args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    startup_trace::mark("clone3");
    long pid;
#ifdef SBX_CLONE3_RUN
    // Shared only with CLONE_CLEAR_SIGHAND: the caller's handlers would run
    // the embedding program's code in init, on its live memory.
    out.shared_memory = request.shared != nullptr && clear_sighand;
    if (out.shared_memory) {
      pid = shared_clone3(&args, *request.shared);
    } else {
      pid = raw_clone3(&args);
    }
#else
    pid = raw_clone3(&args);
#endif
    if (pid == 0) {
      startup_trace::mark("init: running");
      out.pid = 0;
      return out;
    }
    if (pid > 0) {
      out.pid = static_cast<pid_t>(pid);
      out.pidfd = pidfd;
      return out;
    }
    int err = errno;
    if (err == ENOSYS) break;  // no clone3 (< 5.3) or filtered: use clone(2)
    if ((err == EINVAL || err == E2BIG) && clear_sighand) {
      clear_sighand = false;  // < 5.5
      continue;
    }
    throw user_namespace_error("cannot create the sandbox namespaces (clone3)", err,
                               (request.namespaces & CLONE_NEWNET) != 0);
  }
  // clone(2): x86-64 order is flags, stack, parent_tid, child_tid, tls; the
  // pidfd is returned through parent_tid. Always a copy of the address space.
  out.shared_memory = false;
  int pidfd = -1;
  long pid =
      syscall(SYS_clone, static_cast<unsigned long>(request.namespaces) | CLONE_PIDFD | SIGCHLD,
              nullptr, &pidfd, nullptr, nullptr);
  if (pid < 0)
    throw user_namespace_error("cannot create the sandbox namespaces (clone)", errno,
                               (request.namespaces & CLONE_NEWNET) != 0);
  out.pid = static_cast<pid_t>(pid);
  out.pidfd = pid == 0 ? -1 : pidfd;
  return out;
}

long clone_init_early(std::uint64_t namespaces, const SharedChild& child, int* pidfd) {
#ifdef SBX_CLONE3_RUN
  struct clone_args args {};
  args.flags = namespaces | CLONE_FILES | CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
  args.pidfd = reinterpret_cast<std::uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  startup_trace::mark("clone3 (early)");
  return shared_clone3(&args, child);
#else
  (void)namespaces;
  (void)child;
  (void)pidfd;
  errno = ENOSYS;
  return -1;
#endif
}

namespace {

struct WorkerStart {
  const LaunchPlan* plan;
  int control_fd;
  int exec_fd;
};

int worker_entry(void* arg) {
  const auto* start = static_cast<const WorkerStart*>(arg);
  startup_trace::mark("worker: running");
  close(start->control_fd);  // the fd table is the worker's own (no CLONE_FILES)
  worker_main(*start->plan, start->exec_fd);
}

}  // namespace

pid_t start_worker(const LaunchPlan& plan, int control_fd, int exec_fd, char* stack_top) {
  startup_trace::mark("init: fork worker");
  WorkerStart start{&plan, control_fd, exec_fd};
  if (stack_top != nullptr)
    return clone(worker_entry, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
  // The worker runs sbx code only until execve (no allocation: it shares
  // init's heap). Its stack: plenty for the steps, with a guard page below
  // so an overflow faults instead of writing into init's memory.
  constexpr std::size_t kGuard = 4096, kStack = 512 * 1024;
  void* area = mmap(nullptr, kGuard + kStack, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (area == MAP_FAILED) return -1;
  if (mprotect(area, kGuard, PROT_NONE) != 0) {
    const int saved = errno;
    munmap(area, kGuard + kStack);
    errno = saved;
    return -1;
  }
  char* top = static_cast<char*>(area) + kGuard + kStack;
  pid_t pid = clone(worker_entry, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
  // Back here only once the worker is gone from this address space.
  const int saved = errno;
  munmap(area, kGuard + kStack);
  errno = saved;
  return pid;
}

void write_id_maps(pid_t child, const Identity& identity) {
  if (!identity.started_as_root) write_proc_file(child, "setgroups", "deny");
  write_proc_file(child, "gid_map", fmt::format("{} {} 1\n", identity.gid, identity.gid));
  write_proc_file(child, "uid_map", fmt::format("{} {} 1\n", identity.uid, identity.uid));
  startup_trace::mark("id maps written");
}

}  // namespace sbx::runtime
