// Turns a ChildError (step, errno, detail) from inside the sandbox into the
// message and fix the user sees. Only the supervisor formats; the sandbox
// never logs.
#include <fmt/format.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "runtime/namespaces.hpp"
#include "runtime/supervisor.hpp"

namespace sbx::runtime {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string errno_text(int error_number) {
  if (error_number == 0) return "failed";
  const char* name = strerrorname_np(error_number);
  return fmt::format("{} ({})", std::strerror(error_number), name ? name : "?");
}

}  // namespace

Error sandbox_step_error(const ChildError& error) {
  std::string_view step = error.step;
  std::string what =
      fmt::format("cannot build the sandbox: {}: {}", step, errno_text(error.error_number));
  if (error.detail[0] != '\0') what += fmt::format(" [{}]", error.detail);

  std::string fix;
  if (starts_with(step, "unshare(CLONE_NEWUSER)")) {
    // The nested namespace of the worker: same sysctls as the outer one.
    return user_namespace_error("cannot build the sandbox: nested user namespace for the command",
                                error.error_number);
  }
  if (error.error_number == EPERM &&
      (starts_with(step, "mount") || starts_with(step, "pivot") ||
       starts_with(step, "sethostname") || starts_with(step, "set loopback"))) {
    // Ubuntu's AppArmor restriction lets the namespace be created but
    // strips its capabilities, so the first privileged step fails.
    return user_namespace_error(what, EPERM);
  }
  if (starts_with(step, "open /dev/ptmx") || starts_with(step, "ioctl(T")) {
    fix = "the sandbox's /dev/pts is unusable; run without a terminal: --no-tty";
  } else if (starts_with(step, "landlock")) {
    fix =
        "the kernel cannot enforce the Landlock rules; set landlock = \"best-effort\" (or "
        "\"off\") in the profile, or boot with lsm=...,landlock";
  } else if (starts_with(step, "seccomp")) {
    fix = "the kernel refused the seccomp filter; check CONFIG_SECCOMP_FILTER, or --seccomp none";
  } else if (starts_with(step, "setrlimit")) {
    fix = "lower the rlimit in the profile to at most the current hard limit (ulimit -H)";
  } else if (starts_with(step, "join the sandbox's cgroup")) {
    fix = error.error_number == EACCES || error.error_number == EPERM
              ? "this kernel checks a cgroup move against the mover, not against sbx that "
                "opened the group: started by root, limits need Linux 5.16 or a stable kernel "
                "with the fix for CVE-2021-4197; or drop --memory/--pids/--cpus and the "
                "profile's [limits]"
              : "the sandbox's cgroup refused the command; check the cgroup hierarchy "
                "(sbx check), or drop --memory/--pids/--cpus and the profile's [limits]";
  } else if (starts_with(step, "network")) {
    fix = "use --net none or --net host";
  } else if (error.error_number == ENOENT || error.error_number == EACCES) {
    fix = "check that the path exists and is readable by the sandbox user";
  } else {
    fix =
        "this kernel or configuration is not supported; please report it with this message and "
        "`uname -r`";
  }
  return Error(what, fix);
}

Error out_of_fds_error(std::string_view what, std::string_view other_fix) {
  struct rlimit rl {};
  getrlimit(RLIMIT_NOFILE, &rl);
  std::string fix =
      "raise the hard open-file limit (ulimit -Hn: sbx raises its own soft limit up to it)";
  if (!other_fix.empty()) fix += fmt::format(" or {}", other_fix);
  return Error(fmt::format("sbx ran out of file descriptors taking over {} (open-file limit {})",
                           what, rl.rlim_cur),
               std::move(fix));
}

std::optional<Error> with_open_files_fix(const Error& e) {
  const std::string_view what = e.what();
  // Messages carry strerror's words or the errno's name (netlink's).
  const auto says = [&](int error_number) {
    return what.find(std::strerror(error_number)) != std::string_view::npos ||
           what.find(strerrorname_np(error_number)) != std::string_view::npos;
  };
  if (says(ENFILE)) {  // before EMFILE: its words are ENFILE's prefix
    if (e.fix().find("fs.file-max") != std::string::npos) return std::nullopt;
    return Error(e.what(),
                 "the system's table of open files is full (sysctl fs.file-max): close programs "
                 "or raise fs.file-max");
  }
  if (!says(EMFILE) || e.fix().find("open-file limit") != std::string::npos) {
    return std::nullopt;
  }
  struct rlimit rl {};
  getrlimit(RLIMIT_NOFILE, &rl);
  return Error(e.what(), fmt::format("sbx ran out of file descriptors (open-file limit {}): raise "
                                     "it (ulimit -n; above the hard limit: ulimit -Hn as root, "
                                     "LimitNOFILE= for a service)",
                                     rl.rlim_cur));
}

}  // namespace sbx::runtime
