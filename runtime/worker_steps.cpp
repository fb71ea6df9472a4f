// The worker (pid 2): from init's child to the command. Each step removes
// something the command must not have; the order matters and is in launch.cpp.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "runtime/channel.hpp"
#include "runtime/cpu_pin.hpp"
#include "runtime/exit_status.hpp"
#include "runtime/sandbox_steps.hpp"
#include "runtime/startup_trace.hpp"

namespace sbx::runtime {
namespace {

bool write_file(const char* path, const char* content, ChildError& err) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return err.fail("open", errno, path);
  size_t len = std::strlen(content);
  ssize_t written = write(fd, content, len);
  int saved = errno;
  close(fd);
  if (written != static_cast<ssize_t>(len))
    return err.fail("write", written < 0 ? saved : EIO, path);
  return true;
}

bool dup_onto_stdio(int fd, unsigned mask, ChildError& err) {
  for (int target = 0; target <= 2; ++target) {
    if ((mask & (1u << target)) != 0 && dup2(fd, target) < 0) {
      return err.fail("dup2 (pty slave)", errno);
    }
  }
  return true;
}

// A closed fd 0-2 (or one the embedding program uses close-on-exec) would
// make the command's first open() its stdin or stdout: give it /dev/null.
bool null_for_missing_stdio(ChildError& err) {
  for (int fd = 0; fd <= 2; ++fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) continue;
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) return err.fail("open /dev/null", errno, "/dev/null");
    bool ok = dup2(null_fd, fd) == fd;  // dup2 clears close-on-exec on fd
    int saved = errno;
    if (null_fd != fd) close(null_fd);
    if (!ok) return err.fail("dup2 /dev/null", saved);
  }
  return true;
}

// The signals this process ignores or catches, from /proc/self/status
// (the sandbox's /proc, mounted by init): bit N-1 is signal N. False if it
// cannot be read; no allocation.
bool non_default_signals(std::uint64_t& mask) {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8192];
  std::size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
    len += static_cast<std::size_t>(n);
  close(fd);
  buf[len] = '\0';
  mask = 0;
  for (const char* key : {"\nSigIgn:\t", "\nSigCgt:\t"}) {
    const char* p = std::strstr(buf, key);
    if (p == nullptr) return false;
    p += std::strlen(key);
    std::uint64_t bits = 0;
    int digits = 0;
    for (; digits < 16; ++digits, ++p) {
      const char c = *p;
      const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (v < 0) break;
      bits = bits << 4 | static_cast<std::uint64_t>(v);
    }
    if (digits != 16) return false;
    mask |= bits;
  }
  return true;
}

}  // namespace

bool reset_signals(ChildError& err) {
  // Init blocked signals for its signalfd; execve keeps the mask and any
  // SIG_IGN (and until execve a handler inherited where clone3 could not
  // clear them), so give the command a clean default state: every signal
  // that is not at its default, or all of them if that cannot be read.
  std::uint64_t pending = 0;
  if (!non_default_signals(pending)) pending = ~std::uint64_t{0};
  for (int sig = 1; sig < NSIG && sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if ((pending >> (sig - 1) & 1) == 0) continue;
    (void)signal(sig, SIG_DFL);  // fails harmlessly for the reserved RT signals
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return err.fail("sigprocmask", errno);
  return true;
}

bool join_sandbox_cgroup(const LaunchPlan& plan, ChildError& err) {
  // Into the group before anything of the command runs: "0" is the writer.
  // Init stays outside it. It shares sbx's address space (shared_init.hpp),
  // and the OOM killer kills every process sharing its victim's: with init
  // in the group, memory.oom.group (or a command of many small processes
  // that leaves init the largest) would kill sbx too. We share that address
  // space as well until our execve, but we are the group's only member
  // then (it is created fresh for this sandbox) and a vfork child is never
  // the OOM killer's choice, so there is no victim for a group kill to
  // start from: a charge over the limit fails with ENOMEM instead. The
  // kernel checks the write against the opener, the supervisor, so this
  // works after init dropped root (Linux 5.16). On v1 the file is "tasks",
  // which moves this thread alone: we are a process of one thread (a
  // CLONE_VM child, not CLONE_THREAD), and the kernel then skips its global
  // threadgroup lock (Backend::join_file).
  for (int fd : plan.cgroup_join_fds) {
    if (write(fd, "0", 1) != 1) return err.fail("join the sandbox's cgroup", errno);
    close(fd);
  }
  // A cgroup namespace rooted at the group (at the supervisor's group
  // without limits): /proc/self/cgroup shows "/", not the host's path.
  // Still in U1 with init's capabilities, so U1 owns it, as every other
  // namespace of the sandbox.
  if (unshare(CLONE_NEWCGROUP) != 0) return err.fail("unshare(CLONE_NEWCGROUP)", errno);
  return true;
}

bool enter_nested_user_namespace(const LaunchPlan& plan, ChildError& err) {
  // U1 (init's user namespace) owns the netns, the mount namespace and,
  // later, the netns's nftables. The command lives in a child namespace U2,
  // so whatever it does it holds no capability over them: even regaining
  // every capability of U2 does not let it flush the firewall or remount.
  // Init is non-dumpable (so the command cannot ptrace it), and we share its
  // memory, so its mm's flag is ours: that makes our own /proc/self/*_map
  // root-owned and unwritable. Dumpable only while we write them (nothing
  // else runs in the sandbox yet; init waits for our execve), then back, so
  // init is never dumpable once the command runs. execve gives the command
  // a new mm with its own dumpable flag.
  if (prctl(PR_SET_DUMPABLE, 1) != 0) return err.fail("prctl(PR_SET_DUMPABLE)", errno);
  bool ok = unshare(CLONE_NEWUSER) == 0 || err.fail("unshare(CLONE_NEWUSER) (nested)", errno);
  // Unprivileged in U1, the only mapping we may write is our own id; the
  // gid map additionally requires setgroups=deny (CVE-2014-8989).
  ok = ok && write_file("/proc/self/setgroups", "deny", err) &&
       write_file("/proc/self/gid_map", plan.u2_gid_map, err) &&
       write_file("/proc/self/uid_map", plan.u2_uid_map, err);
  if (prctl(PR_SET_DUMPABLE, 0) != 0 && ok) ok = err.fail("prctl(PR_SET_DUMPABLE)", errno);
  startup_trace::mark("worker: nested user namespace");
  return ok;
}

bool start_session(const LaunchPlan& plan, int exec_fd, ChildError& err) {
  // A new session has no controlling terminal: TIOCSTI/TIOCLINUX on an
  // inherited host tty fail with EPERM (CVE-2017-5226, CVE-2016-7545).
  if (setsid() < 0) return err.fail("setsid", errno);
  if (plan.pty_stdio == 0) return null_for_missing_stdio(err);
  // A fresh pty of the sandbox's own devpts instance: the command never
  // holds the user's terminal; the supervisor relays bytes.
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return err.fail("open /dev/ptmx", errno, "/dev/ptmx");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) {
    int saved = errno;
    close(master);
    return err.fail("ioctl(TIOCSPTLCK)", saved);
  }
  // TIOCGPTPEER (4.13) opens the slave through the master, not by a path
  // the sandbox could have swapped.
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int saved = errno;
    close(master);
    return err.fail("ioctl(TIOCGPTPEER)", saved);
  }
  bool ok = true;
  if (plan.have_termios && tcsetattr(slave, TCSANOW, &plan.termios) != 0) {
    ok = err.fail("tcsetattr (pty)", errno);
  }
  if (ok && plan.have_winsize && ioctl(slave, TIOCSWINSZ, &plan.winsize) != 0) {
    ok = err.fail("ioctl(TIOCSWINSZ)", errno);
  }
  if (ok && ioctl(slave, TIOCSCTTY, 0) != 0) ok = err.fail("ioctl(TIOCSCTTY)", errno);
  // Only the fds that were the user's terminal; pipes and files stay.
  if (ok) ok = dup_onto_stdio(slave, plan.pty_stdio, err);
  if (ok) ok = null_for_missing_stdio(err);
  if (ok) {
    Message message;
    message.kind = MessageKind::pty_master;
    if (!send_message(exec_fd, message, master)) ok = err.fail("send pty master", errno);
  }
  close(slave);
  close(master);
  return ok;
}

bool set_resource_limits(const LaunchPlan& plan, ChildError& err) {
  for (const auto& limit : plan.rlimits) {
    if (setrlimit(static_cast<__rlimit_resource>(limit.resource), &limit.value) != 0) {
      return err.fail("setrlimit", errno);
    }
  }
  return true;
}

bool restore_caller_cpus(const LaunchPlan& plan, ChildError& err) {
  if (plan.restore_cpus && !restore_cpu_set(plan.caller_cpus)) {
    return err.fail("sched_setaffinity (the caller's CPU set)", errno);
  }
  return true;
}

bool close_inherited_fds(int keep_fd, ChildError& err) {
  // Every fd of the supervisor's process above 2 could be a way out
  // (runc CVE-2024-21626 leaked a host directory fd). Only the exec channel
  // stays, close-on-exec.
  unsigned int keep = static_cast<unsigned int>(keep_fd);
  if (keep > 3 && close_range(3, keep - 1, 0) != 0) return err.fail("close_range", errno);
  if (close_range(keep + 1, ~0U, 0) != 0) return err.fail("close_range", errno);
  return true;
}

bool drop_all_capabilities(const LaunchPlan& plan, ChildError& err) {
  // Bounding set first: dropping needs CAP_SETPCAP, which the capset below
  // removes. Without it, a setuid-root or file-capability binary could give
  // capabilities back (no_new_privs and nosuid are the other two locks).
  for (int cap = 0; cap <= plan.cap_last_cap; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return err.fail("prctl(PR_CAPBSET_DROP)", errno);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return err.fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", errno);
  }
  // Locked securebits: uid 0 (if --user 0) gets no capabilities on execve,
  // and no later process in the sandbox can undo that.
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                             SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0)
    return err.fail("prctl(PR_SET_SECUREBITS)", errno);
  struct __user_cap_header_struct header {};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return err.fail("capset", errno);
  return true;
}

bool set_no_new_privs(ChildError& err) {
  // execve can never grant privileges again (setuid bits, file caps); also
  // what lets an unprivileged process install seccomp and Landlock.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return err.fail("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  return true;
}

bool install_seccomp_last(const LaunchPlan& plan, int exec_fd, ChildError& err) {
  // Last before execve, so the filter need not allow the privilege-dropping
  // calls above. Only sendmsg, close and execve follow.
  int listener = -1;
  startup_trace::mark("worker: landlock done, seccomp next");
  if (!seccomp::install(plan.seccomp, &listener, err)) return false;
  if (listener < 0) return true;
  Message message;
  message.kind = MessageKind::notify_fd;
  bool sent = send_message(exec_fd, message, listener);
  int saved = errno;
  close(listener);
  if (!sent) return err.fail("send seccomp listener", saved);
  return true;
}

[[noreturn]] void exec_command(const LaunchPlan& plan, int exec_fd) {
  // execvp's rules with the PATH walk precomputed: ENOENT-like errors move
  // on to the next directory, EACCES is remembered, anything else stops.
  startup_trace::mark("worker: execve");
  int error_number = ENOENT;
  bool saw_eacces = false;
  for (std::size_t i = 0; i < plan.exec_paths.size(); ++i) {
    execve(plan.exec_paths.data()[i], plan.argv.data(), plan.envp.data());
    error_number = errno;
    if (error_number == EACCES) {
      // A PATH directory we may not search (/root/bin in root's PATH) is
      // "not here", like bash does; only an existing file is "not executable".
      struct stat st {};
      if (stat(plan.exec_paths.data()[i], &st) == 0) saw_eacces = true;
      continue;
    }
    if (error_number == ENOENT || error_number == ENOTDIR || error_number == ESTALE ||
        error_number == ENODEV || error_number == ETIMEDOUT) {
      continue;
    }
    break;
  }
  if (saw_eacces && (error_number == ENOENT || error_number == ENOTDIR)) error_number = EACCES;
  ChildError err;
  err.fail("execve", error_number, plan.argv.size() > 0 ? plan.argv.data()[0] : "");
  send_failure(exec_fd, err);
  _exit(exit_code_for_exec_errno(error_number));
}

}  // namespace sbx::runtime
