// Syscall groups (@mount, @debug, ...) and name <-> number resolution.
//
// Group names follow systemd's SystemCallFilter= sets where one exists, so a
// user who knows `@system-service` or `@privileged` gets what they expect;
// where sbx differs from systemd the summary says so. Names of syscalls that
// do not exist on x86_64 (chown32, socketcall, vm86...) are kept so a group
// reads the same on every architecture; expand() drops them.
#include <seccomp.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include <fmt/format.h>
#include <sbx/error.hpp>

#include "seccomp/seccomp.hpp"

namespace sbx::seccomp {
namespace {

// x86_64 syscalls newer than the libseccomp this was built against (2.5.4
// knows up to futex_wake, 454). Numbers from arch/x86/entry/syscalls/syscall_64.tbl.
struct NewSyscall {
  const char* name;
  int nr;
};
#if defined(__x86_64__)
constexpr NewSyscall kNewerSyscalls[] = {
    {"uretprobe", 335},         {"uprobe", 336},
    {"futex_wait", 455},        {"futex_requeue", 456},
    {"statmount", 457},         {"listmount", 458},
    {"lsm_get_self_attr", 459}, {"lsm_set_self_attr", 460},
    {"lsm_list_modules", 461},  {"mseal", 462},
    {"setxattrat", 463},        {"getxattrat", 464},
    {"listxattrat", 465},       {"removexattrat", 466},
    {"open_tree_attr", 467},    {"file_getattr", 468},
    {"file_setattr", 469},
};
#else
constexpr NewSyscall kNewerSyscalls[] = {{"", -1}};
#endif

// Names that exist on some architecture; used to tell "not on this arch"
// (silently dropped) from "misspelt" (an error).
bool known_on_any_arch(const std::string& name) {
  if (seccomp_syscall_resolve_name(name.c_str()) != __NR_SCMP_ERROR) return true;
  for (const auto& s : kNewerSyscalls)
    if (name == s.name) return true;
  return false;
}

std::vector<Group> make_groups() {
  return {
      {"@default",
       "always needed: exit, futex, clocks, identity getters, signals return",
       {"clock_getres",
        "clock_getres_time64",
        "clock_gettime",
        "clock_gettime64",
        "clock_nanosleep",
        "clock_nanosleep_time64",
        "execve",
        "exit",
        "exit_group",
        "futex",
        "futex_time64",
        "futex_waitv",
        "futex_wait",
        "futex_wake",
        "futex_requeue",
        "get_robust_list",
        "get_thread_area",
        "getegid",
        "getegid32",
        "geteuid",
        "geteuid32",
        "getgid",
        "getgid32",
        "getgroups",
        "getgroups32",
        "getpgid",
        "getpgrp",
        "getpid",
        "getppid",
        "getresgid",
        "getresgid32",
        "getresuid",
        "getresuid32",
        "getrlimit",
        "getsid",
        "gettid",
        "gettimeofday",
        "getuid",
        "getuid32",
        "membarrier",
        "nanosleep",
        "pause",
        "prlimit64",
        "restart_syscall",
        "rseq",
        "rt_sigreturn",
        "sched_yield",
        "set_robust_list",
        "set_thread_area",
        "set_tid_address",
        "set_tls",
        "sigreturn",
        "time",
        "ugetrlimit",
        "arch_prctl",
        "brk",
        "mmap",
        "mmap2",
        "munmap",
        "mprotect",
        "mremap",
        "madvise",
        "mincore",
        "msync",
        "getrandom",
        "uname",
        "olduname",
        "oldolduname",
        "sysinfo",
        "umask",
        "getcpu",
        "map_shadow_stack",
        "mseal"}},
      {"@aio",
       "POSIX/Linux asynchronous IO (io_setup...); io_uring is separate (@io-uring)",
       {"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
        "io_setup", "io_submit"}},
      {"@io-uring",
       "io_uring: bypasses seccomp argument checks on the operations it submits",
       {"io_uring_enter", "io_uring_register", "io_uring_setup"}},
      {"@basic-io",
       "read, write, seek, dup, close",
       {"_llseek", "close", "close_range", "dup", "dup2", "dup3", "lseek", "pread64", "preadv",
        "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readv", "write", "writev"}},
      {"@chown",
       "change file ownership",
       {"chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32"}},
      {"@clock",
       "set the system clock",
       {"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
        "settimeofday", "stime"}},
      {"@cpu-emulation",
       "CPU emulation (vm86, LDT, endianness switch)",
       {"modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old"}},
      {"@debug",
       "tracing and inspecting other processes (ptrace, process_vm_*, perf, kcmp)",
       {"kcmp", "lookup_dcookie", "perf_event_open", "pidfd_getfd", "process_vm_readv",
        "process_vm_writev", "ptrace", "rtas", "sys_debug_setcontext", "uprobe", "uretprobe"}},
      {"@file-system",
       "files and directories: open, stat, rename, xattrs, inotify",
       {"access",
        "chdir",
        "chmod",
        "close",
        "creat",
        "faccessat",
        "faccessat2",
        "fallocate",
        "fchdir",
        "fchmod",
        "fchmodat",
        "fchmodat2",
        "fcntl",
        "fcntl64",
        "fgetxattr",
        "flistxattr",
        "fremovexattr",
        "fsetxattr",
        "fstat",
        "fstat64",
        "fstatat64",
        "fstatfs",
        "fstatfs64",
        "ftruncate",
        "ftruncate64",
        "futimesat",
        "getcwd",
        "getdents",
        "getdents64",
        "getxattr",
        "getxattrat",
        "inotify_add_watch",
        "inotify_init",
        "inotify_init1",
        "inotify_rm_watch",
        "lgetxattr",
        "link",
        "linkat",
        "listxattr",
        "listxattrat",
        "llistxattr",
        "lremovexattr",
        "lsetxattr",
        "lstat",
        "lstat64",
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "newfstatat",
        "oldfstat",
        "oldlstat",
        "oldstat",
        "open",
        "openat",
        "openat2",
        "readlink",
        "readlinkat",
        "removexattr",
        "removexattrat",
        "rename",
        "renameat",
        "renameat2",
        "rmdir",
        "setxattr",
        "setxattrat",
        "stat",
        "stat64",
        "statfs",
        "statfs64",
        "statx",
        "symlink",
        "symlinkat",
        "truncate",
        "truncate64",
        "unlink",
        "unlinkat",
        "utime",
        "utimensat",
        "utimensat_time64",
        "utimes",
        "file_getattr",
        "file_setattr",
        "flock",
        "copy_file_range",
        "fadvise64",
        "fadvise64_64",
        "readahead",
        "readdir",
        "sendfile",
        "sendfile64",
        "splice",
        "tee",
        "vmsplice",
        "cachestat",
        "remap_file_pages",
        "memfd_create"}},
      {"@io-event",
       "event loops: epoll, poll, select, eventfd",
       {"_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll",
        "ppoll_time64", "pselect6", "pselect6_time64", "select"}},
      {"@ipc",
       "pipes, SysV IPC, POSIX message queues (process_vm_* is in @debug, unlike systemd)",
       {"ipc",
        "mq_getsetattr",
        "mq_notify",
        "mq_open",
        "mq_timedreceive",
        "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64",
        "mq_unlink",
        "msgctl",
        "msgget",
        "msgrcv",
        "msgsnd",
        "pipe",
        "pipe2",
        "semctl",
        "semget",
        "semop",
        "semtimedop",
        "semtimedop_time64",
        "shmat",
        "shmctl",
        "shmdt",
        "shmget"}},
      {"@keyring",
       "kernel keyrings (keys are not namespaced per sandbox)",
       {"add_key", "keyctl", "request_key"}},
      {"@memlock", "lock memory", {"mlock", "mlock2", "mlockall", "munlock", "munlockall"}},
      {"@module",
       "load and unload kernel modules",
       {"create_module", "delete_module", "finit_module", "init_module"}},
      {"@mount",
       "mount and unmount, the new mount API, pivot_root, chroot",
       {"chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount",
        "open_tree", "open_tree_attr", "pivot_root", "umount", "umount2"}},
      {"@namespaces",
       "enter or create namespaces (clone's namespace flags are filtered apart)",
       {"setns", "unshare"}},
      {"@network-io",
       "sockets: create, connect, send, receive",
       {"accept",     "accept4", "bind",       "connect",   "getpeername", "getsockname",
        "getsockopt", "listen",  "recv",       "recvfrom",  "recvmmsg",    "recvmmsg_time64",
        "recvmsg",    "send",    "sendmmsg",   "sendmsg",   "sendto",      "setsockopt",
        "shutdown",   "socket",  "socketcall", "socketpair"}},
      {"@obsolete",
       "unusual, obsolete or unimplemented syscalls",
       {"_sysctl",         "afs_syscall", "bdflush", "break",   "create_module", "ftime",
        "get_kernel_syms", "getpmsg",     "gtty",    "idle",    "lock",          "mpx",
        "nfsservctl",      "prof",        "profil",  "putpmsg", "query_module",  "security",
        "sgetmask",        "ssetmask",    "stty",    "sysfs",   "tuxcall",       "ulimit",
        "uselib",          "ustat",       "vserver"}},
      {"@pkey", "memory protection keys", {"pkey_alloc", "pkey_free", "pkey_mprotect"}},
      {"@privileged",
       "needs a capability the sandbox never has (unlike systemd, without the setuid and "
       "chown families, which work inside the user namespace)",
       {"@clock", "@module", "@raw-io", "@reboot", "@swap", "@mount", "_sysctl", "acct", "bpf",
        "fanotify_init", "lookup_dcookie", "nfsservctl", "open_by_handle_at", "quotactl",
        "quotactl_fd", "setdomainname", "sethostname", "syslog", "vhangup"}},
      {"@process",
       "create, wait for and signal processes (clone's namespace flags are filtered)",
       {"capget",
        "capset",
        "clone",
        "clone3",
        "execveat",
        "fork",
        "getrusage",
        "kill",
        "pidfd_open",
        "pidfd_send_signal",
        "prctl",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "tgkill",
        "times",
        "tkill",
        "vfork",
        "wait4",
        "waitid",
        "waitpid",
        "seccomp",
        "personality",
        "setpgid",
        "setsid",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "process_madvise"}},
      {"@raw-io",
       "raw I/O port and PCI config access",
       {"ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"}},
      {"@reboot", "reboot and kexec", {"kexec_file_load", "kexec_load", "reboot"}},
      {"@resources",
       "scheduling, NUMA policy, priorities, rlimits",
       {"get_mempolicy",
        "getpriority",
        "ioprio_get",
        "ioprio_set",
        "mbind",
        "migrate_pages",
        "move_pages",
        "nice",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "sched_getaffinity",
        "sched_getattr",
        "sched_getparam",
        "sched_getscheduler",
        "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
        "sched_setaffinity",
        "sched_setattr",
        "sched_setparam",
        "sched_setscheduler",
        "set_mempolicy",
        "set_mempolicy_home_node",
        "setpriority",
        "setrlimit"}},
      {"@setuid",
       "change user and group ids (within the sandbox's user namespace)",
       {"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
        "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
        "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32"}},
      {"@signal",
       "signal handling",
       {"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigtimedwait_time64", "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4",
        "sigpending", "sigprocmask", "sigsuspend"}},
      {"@swap", "enable and disable swap", {"swapoff", "swapon"}},
      {"@sync",
       "flush files to storage",
       {"fdatasync", "fsync", "sync", "sync_file_range", "sync_file_range2", "syncfs"}},
      {"@timer",
       "timers and alarms",
       {"alarm", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
        "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64"}},
      {"@default-deny",
       "what mode `default` denies outright (argument filters on clone, ioctl, socket and "
       "personality come on top)",
       {"@privileged", "@debug", "@keyring", "@io-uring", "@obsolete", "@cpu-emulation",
        "@namespaces", "userfaultfd", "name_to_handle_at"}},
      {"@system-service",
       "what mode `strict` starts from (systemd's set, io_uring and process_vm_* moved out); "
       "@default-deny is then removed from it",
       {"@default", "@aio", "@basic-io", "@chown", "@file-system", "@io-event", "@ipc", "@memlock",
        "@network-io", "@pkey", "@process", "@resources", "@setuid", "@signal", "@sync", "@timer",
        "ioctl"}},
  };
}

const Group* find_group(const std::string& name) {
  for (const auto& g : groups())
    if (g.name == name) return &g;
  return nullptr;
}

void expand_into(const std::string& entry, const std::string& where, std::set<std::string>& out,
                 int depth) {
  if (depth > 8) throw Error(fmt::format("seccomp group {} nests too deep", entry));
  if (!entry.empty() && entry[0] == '@') {
    const Group* g = find_group(entry);
    if (g == nullptr) {
      std::string known;
      for (const auto& gr : groups()) {
        if (!known.empty()) known += ' ';
        known += gr.name;
      }
      throw Error(
          fmt::format("unknown seccomp group '{}'{}", entry, where.empty() ? "" : " in " + where),
          fmt::format("use one of: {} (see docs/seccomp.md)", known));
    }
    for (const auto& m : g->members) expand_into(m, where, out, depth + 1);
    return;
  }
  if (!known_on_any_arch(entry))
    throw Error(fmt::format("unknown syscall '{}'{}", entry, where.empty() ? "" : " in " + where),
                "check the spelling (names as in syscalls(2), e.g. \"mount\", or a group such as "
                "\"@mount\"; see docs/seccomp.md)");
  if (syscall_number(entry) >= 0) out.insert(entry);
}

}  // namespace

const std::vector<Group>& groups() {
  static const std::vector<Group> all = make_groups();
  return all;
}

std::vector<std::string> expand(const std::string& entry, const std::string& where) {
  std::set<std::string> out;
  expand_into(entry, where, out, 0);
  return {out.begin(), out.end()};
}

int syscall_number(const std::string& name) {
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name.c_str());
  if (nr >= 0) return nr;
  for (const auto& s : kNewerSyscalls)
    if (name == s.name) return s.nr;
  return -1;
}

std::string syscall_name(int nr) {
  if (char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr)) {
    std::string s(n);
    std::free(n);
    return s;
  }
  for (const auto& s : kNewerSyscalls)
    if (nr == s.nr) return s.name;
  return fmt::format("syscall_{}", nr);
}

}  // namespace sbx::seccomp
