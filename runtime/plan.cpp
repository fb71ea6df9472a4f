#include "runtime/plan.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <future>
#include <set>
#include <sstream>
#include <string_view>

#include "netfilter/netfilter.hpp"
#include "runtime/agent_state.hpp"
#include "runtime/environment.hpp"
#include "runtime/host_paths.hpp"
#include "runtime/mounts_internal.hpp"
#include "runtime/sandbox_steps.hpp"
#include "runtime/secret_mounts.hpp"
#include "runtime/startup_trace.hpp"
#include "runtime/test_hooks.hpp"

extern char** environ;

namespace sbx::runtime {
namespace {

void add_rlimit(LaunchPlan& plan, const RunOptions& options, int resource, const char* name,
                const std::optional<std::uint64_t>& wanted) {
  if (!wanted) return;
  struct rlimit current {};
  getrlimit(static_cast<__rlimit_resource>(resource), &current);
  rlim_t value = static_cast<rlim_t>(*wanted);
  // Lowering is always allowed; raising past the hard limit needs
  // CAP_SYS_RESOURCE, which sbx does not have (nor needs: a limit only makes
  // the sandbox stricter). Keep the stricter of the two.
  if (current.rlim_max != RLIM_INFINITY && value > current.rlim_max) {
    if (options.on_warning) {
      options.on_warning(fmt::format("rlimit {}={} is above the hard limit {}; using {}", name,
                                     *wanted, current.rlim_max, current.rlim_max));
    }
    value = current.rlim_max;
  }
  RlimitSetting setting;
  setting.resource = resource;
  setting.value.rlim_cur = value;
  setting.value.rlim_max = value;
  plan.rlimits.push_back(setting);
}

}  // namespace

CStringArray::CStringArray(std::vector<std::string> items) : items_(std::move(items)) {
  pointers_.reserve(items_.size() + 1);
  for (auto& item : items_) pointers_.push_back(item.data());
  pointers_.push_back(nullptr);
}

void reject_unsupported(const Policy& policy) {
  if (policy.process.hostname.empty() || policy.process.hostname.size() > 64) {
    throw Error(
        fmt::format("invalid hostname \"{}\" (1 to 64 characters)", policy.process.hostname),
        "set process.hostname to a short name");
  }
}

void open_missing_stdio() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // open() returns the lowest free fd, which is this one.
    int opened = open("/dev/null", O_RDWR);
    if (opened != fd) {
      if (opened >= 0) close(opened);
      throw Error(fmt::format("fd {} is closed and /dev/null cannot take its place", fd),
                  "start sbx with stdin, stdout and stderr open");
    }
  }
}

std::uint64_t sandbox_namespaces(const Policy& policy) {
  std::uint64_t flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (policy.network.mode != NetworkMode::host) flags |= CLONE_NEWNET;
  return flags;
}

std::optional<Policy> hide_in_command_home(const Policy& policy, const Identity& identity,
                                           const char* caller_home) {
  if (caller_home == nullptr || caller_home[0] != '/') return std::nullopt;
  const std::string from = normalize_path(caller_home);
  const std::string to = normalize_path(identity.home);
  struct stat st {};
  // A home that does not exist (nobody's /nonexistent) has nothing to hide.
  if (from == "/" || to == "/" || from == to || ::stat(to.c_str(), &st) != 0) return std::nullopt;
  std::optional<Policy> out;
  const auto rebase = [&](std::vector<std::string> FilesystemPolicy::*list) {
    for (const auto& path : policy.filesystem.*list) {
      if (!path_is_within(path, from)) continue;
      std::string moved = to + path.substr(from.size());
      if (!out) out = policy;
      auto& target = (*out).filesystem.*list;
      if (std::find(target.begin(), target.end(), moved) == target.end())
        target.push_back(std::move(moved));
    }
  };
  rebase(&FilesystemPolicy::deny_read);
  rebase(&FilesystemPolicy::allow_read);
  return out;
}

namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// A value of a git config line: surrounding quotes removed, an unquoted
// '#' or ';' starts a comment, \" \\ \t \n unescaped.
std::string config_value(std::string_view raw) {
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && (c == '#' || c == ';')) {
      break;
    } else if (c == '\\' && i + 1 < raw.size()) {
      const char n = raw[++i];
      out += n == 't' ? '\t' : n == 'n' ? '\n' : n;
    } else {
      out += c;
    }
  }
  return trim(out);
}

// What one git config file makes git read or run from elsewhere: its
// core.hooksPath values and the files its include.path and
// includeIf.<condition>.path name (every one, whatever the condition).
struct GitConfigRefs {
  std::vector<std::string> hooks_paths;
  std::vector<std::string> includes;
};

// Reads FILE. An include's relative path is relative to FILE's directory
// (as in git), a relative hooksPath to HOOKS_BASE (the work tree); "~/"
// is HOME.
GitConfigRefs read_git_config(const std::string& file, const std::string& hooks_base,
                              const char* home) {
  GitConfigRefs refs;
  // Followed like git follows it (a symlinked ~/.gitconfig), but a regular
  // file only and at most 1 MiB: a FIFO or /dev/zero planted as a config
  // (or named by a commondir) does not stall the start.
  std::istringstream in(read_regular_file(AT_FDCWD, file.c_str(), 1 << 20, true));
  const auto absolute = [&](std::string value, const std::string& base) {
    if (value.starts_with("~/") && home != nullptr && home[0] == '/')
      value = std::string(home) + value.substr(1);
    return normalize_path(value[0] == '/' ? value : base + "/" + value);
  };
  enum class Section { other, core, include } section = Section::other;
  std::string line;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (!t.empty() && t[0] == '[') {
      const auto close = t.find(']');
      if (close == std::string::npos) continue;
      const std::string header = t.substr(1, close - 1);
      const auto space = header.find_first_of(" \t\".");
      const std::string name = trim(header.substr(0, space));
      const bool sub = space != std::string::npos;  // [includeIf "gitdir:..."]
      section =
          equals_nocase(name, "core") && !sub ? Section::core
          : (equals_nocase(name, "include") && !sub) || (equals_nocase(name, "includeIf") && sub)
              ? Section::include
              : Section::other;
      t = trim(t.substr(close + 1));  // "[core] hooksPath = x" on one line
    }
    if (t.empty() || t[0] == '#' || t[0] == ';' || section == Section::other) continue;
    const auto eq = t.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(t.substr(0, eq));
    const std::string value = config_value(t.substr(eq + 1));
    if (value.empty()) continue;
    if (section == Section::core && equals_nocase(key, "hooksPath"))
      refs.hooks_paths.push_back(absolute(value, hooks_base));
    else if (section == Section::include && equals_nocase(key, "path"))
      refs.includes.push_back(absolute(value, normalize_path(file + "/..")));
  }
  return refs;
}

}  // namespace

std::optional<Policy> protect_hooks_paths(const Policy& policy, const char* home) {
  std::optional<Policy> out;
  const auto protect = [&](const std::string& path) {
    if (path == "/") return;
    const auto& now = out ? out->filesystem.deny_write : policy.filesystem.deny_write;
    if (std::find(now.begin(), now.end(), path) != now.end()) return;
    if (!out) out = policy;
    out->filesystem.deny_write.push_back(path);
  };
  // Each config file and, depth first, what it includes (git stops at 10
  // levels; a cycle is read once).
  std::set<std::string> read;
  const auto follow = [&](auto& self, const std::string& file, const std::string& hooks_base,
                          int depth) -> void {
    if (depth > 10 || !read.insert(file).second) return;
    const GitConfigRefs refs = read_git_config(file, hooks_base, home);
    for (const auto& dir : refs.hooks_paths) protect(dir);
    for (const auto& included : refs.includes) {
      protect(included);
      self(self, included, hooks_base, depth + 1);
    }
  };
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  for (const auto& entry : policy.filesystem.deny_write) {
    constexpr std::string_view kHooks = "/.git/hooks";
    constexpr std::string_view kGlobal = "/.gitconfig";
    if (entry.ends_with(kHooks)) {
      const std::string top = entry.substr(0, entry.size() - kHooks.size());
      follow(follow, top + "/.git/config", top, 0);
      // `.git` a gitfile (a linked worktree, --separate-git-dir): git takes
      // hooks and config from the git dir it names and, for a linked
      // worktree, from the common dir that one names (commondir).
      for (const auto& dir : gitfile_git_dirs(top)) {
        protect(dir + "/hooks");
        protect(dir + "/config");
        follow(follow, dir + "/config", top, 0);
      }
    } else if (home != nullptr && home[0] == '/' &&
               entry == std::string(home) + std::string(kGlobal)) {
      // The user's global config: git also reads $XDG_CONFIG_HOME/git/config.
      // A relative hooksPath there is relative to each repository; the work
      // dir is the one this run can reach.
      const std::string cwd = current_dir();
      follow(follow, entry, cwd, 0);
      follow(follow,
             (xdg != nullptr && xdg[0] == '/' ? std::string(xdg) : std::string(home) + "/.config") +
                 "/git/config",
             cwd, 0);
    }
  }
  return out;
}

LaunchPlan prepare_launch_plan(const Policy& policy, const RunOptions& options,
                               const Identity& identity, const HostTerminal& terminal,
                               const LaunchCpuPin& cpu_pin, bool other_cpu_busy) {
  if (options.argv.empty() || options.argv[0].empty()) {
    throw Error("no command to run", "give the command after --: sbx run -- COMMAND [ARGS...]");
  }
  LaunchPlan plan;
  plan.identity = identity;
  plan.restore_cpus = cpu_pin.pinned();
  plan.caller_cpus = cpu_pin.caller_set();
  plan.network = policy.network.mode;
  plan.hostname = policy.process.hostname;
  if (plan.network != NetworkMode::host) {
    plan.loopback_up_request = build_loopback_up_request();
    if (large_loopback_segments_safe())
      plan.loopback_large_segments_request = with_large_loopback_segments(plan.loopback_up_request);
  }
  if (plan.network == NetworkMode::filtered) {
    plan.route_requests.push_back(build_local_default_route_request(AF_INET));
    plan.route_requests.push_back(build_local_default_route_request(AF_INET6));
    plan.address_request = build_sandbox_address_request();
    plan.egress_ports = net::egress_listener_ports(policy.network.allow_ports);
    for (std::uint16_t port : policy.network.host_ports) {
      if (std::find(plan.egress_ports.begin(), plan.egress_ports.end(), port) ==
          plan.egress_ports.end())
        plan.host_ports.push_back(port);
    }
    plan.serve_sockets = !policy.network.publish.empty();
  }
  plan.wait_for_go = plan.network == NetworkMode::filtered || options.controller != nullptr;

  startup_trace::mark("plan: begin");
  // The seccomp program depends on the policy alone: where the launch is
  // not pinned to one CPU (LaunchCpuPin::beside) it is compiled on a
  // second thread beside the mount plan (~0.25 ms of a strict start) --
  // unless an early start's clone3 has the other CPU (other_cpu_busy): the
  // two there took longer than the compile here (--net none: 0.2 ms).
  std::future<seccomp::Program> seccomp_built;
  if (!other_cpu_busy)
    seccomp_built = cpu_pin.beside([&policy] { return seccomp::build_program(policy.process); });
  create_agent_state(policy, identity, options.on_warning);  // filesystem.state, before binds
  plan.mounts = prepare_mount_plan(policy, identity, Placeholders::later);  // launch.cpp
  startup_trace::mark("plan: mount plan");
  plan_secret_mounts(options.secrets, plan.mounts);  // --secret: /run/secrets
  plan.landlock = prepare_landlock(policy);
  startup_trace::mark("plan: landlock");
  plan.seccomp =
      seccomp_built.valid() ? seccomp_built.get() : seccomp::build_program(policy.process);
  startup_trace::mark("plan: seccomp program");
  // Null except in the test-only sbx-test-hooks executable (test_hooks.hpp).
  if (test_hooks::break_protections) test_hooks::break_protections(plan, options.on_warning);
  if (test_hooks::init_delay_ms) plan.test_init_delay_ms = test_hooks::init_delay_ms();

  (void)std::snprintf(plan.u2_uid_map, sizeof plan.u2_uid_map, "%u %u 1\n", identity.uid,
                      identity.uid);
  (void)std::snprintf(plan.u2_gid_map, sizeof plan.u2_gid_map, "%u %u 1\n", identity.gid,
                      identity.gid);
  plan.cap_last_cap = std::max<int>(static_cast<int>(cap_max_bits()) - 1, CAP_LAST_CAP);

  plan.pty_stdio = pty_stdio_mask(policy.process.tty, terminal);
  plan.have_termios = terminal.have_termios;
  plan.termios = terminal.termios;
  plan.have_winsize = terminal.have_winsize;
  plan.winsize = terminal.winsize;

  const Rlimits& limits = policy.process.rlimits;
  add_rlimit(plan, options, RLIMIT_CORE, "core", limits.core);
  add_rlimit(plan, options, RLIMIT_NOFILE, "nofile", limits.nofile);
  add_rlimit(plan, options, RLIMIT_NPROC, "nproc", limits.nproc);
  add_rlimit(plan, options, RLIMIT_FSIZE, "fsize", limits.fsize);

  std::vector<std::string> env = build_environment(policy.process, identity, environ);
  add_secret_environment(options.secrets, env);  // --secret NAME:VAR
  plan.exec_paths = CStringArray(exec_candidates(options.argv[0], env_value(env, "PATH")));
  plan.envp = CStringArray(std::move(env));
  plan.argv = CStringArray(options.argv);
  return plan;
}

}  // namespace sbx::runtime
