// The launch sequence of ../shared/ARCHITECTURE.md, in order, in three short
// functions: the supervisor's (sbx::run), sandbox init's (pid 1) and the
// worker's (pid 2, the command). Each step is one function named after what
// it does; the comments say why it is there and why at that point.
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/sbx.hpp>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <future>
#include <optional>

#include "cgroups/cgroups.hpp"
#include "runtime/channel.hpp"
#include "runtime/claude_guard.hpp"
#include "runtime/cpu_pin.hpp"
#include "runtime/filtered_network.hpp"
#include "runtime/git_guard.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/pidfd.hpp"
#include "runtime/plan.hpp"
#include "runtime/sandbox_steps.hpp"
#include "runtime/startup_trace.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/test_hooks.hpp"

namespace sbx {
namespace runtime {
namespace {

std::string sandbox_id(const Policy& policy) {
  static std::atomic<unsigned> counter{0};
  if (!policy.name.empty()) return policy.name;
  return fmt::format("sbx-{}-{}", getpid(), counter++);
}

struct ChannelPair {
  UniqueFd supervisor_end;
  UniqueFd sandbox_end;
};

ChannelPair make_channel() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Error(fmt::format("socketpair: {}", std::strerror(errno)));
  }
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// The soft open-file limit up to the hard one, at most kOpenFileCeiling
// (RunOptions::raise_open_file_limit): enough for the proxy's connection
// cap (1024 connections of up to six fds each), the DNS filter and the
// listeners. Best effort: the limit stays as it was if the kernel refuses,
// and the proxy reports what it then sheds.
constexpr rlim_t kOpenFileCeiling = 16384;
void raise_soft_open_file_limit() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t want = std::min(rl.rlim_max, kOpenFileCeiling);
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = want;
  (void)setrlimit(RLIMIT_NOFILE, &rl);
}

// Init made, by either start: the Sandbox that owns it from here (~Sandbox
// kills and reaps it on a throw), with the supervisor's channel ends.
// `shared`: init's stack and thread area when it shares this address space;
// they go only once it is reaped.
Sandbox adopt_init(pid_t pid, int pidfd, ChannelPair& control, ChannelPair& exec,
                   std::unique_ptr<SharedInit> shared, const RunOptions& options) {
  // Now, not before clone3: the sandbox keeps the caller's limit (nofile
  // "inherit"; rlimits are per process, also for an init sharing memory),
  // and the network's sockets below already count against the raised one.
  if (options.raise_open_file_limit) raise_soft_open_file_limit();
  Sandbox sandbox;
  sandbox.shared_init = std::move(shared);
  sandbox.init_pid = pid;
  sandbox.pidfd.reset(pidfd >= 0 ? pidfd : pidfd_for(pid));
  sandbox.control = std::move(control.supervisor_end);
  sandbox.exec = std::move(exec.supervisor_end);
  if (!sandbox.pidfd) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw Error("this kernel has no pidfd (Linux >= 5.3 needed)", "upgrade the kernel");
  }
  return sandbox;
}

// Step 4: the id maps, what must be done before init mounts anything, and
// the release.
void release_init(const Sandbox& sandbox, const LaunchPlan& plan,
                  const std::function<void()>& before_release) {
  write_id_maps(sandbox.init_pid, plan.identity);
  before_release();
  const char go = 'G';
  if (write(sandbox.control.get(), &go, 1) != 1) {
    throw Error(fmt::format("cannot release the sandbox: {}", std::strerror(errno)));
  }
}

// A test hook's sleep (test_hooks.hpp).
void test_delay(unsigned ms) {
  if (ms == 0) return;
  struct timespec delay {
    static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L
  };
  while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {
  }
}

// While init mounts: the filtered network (init passes its netns sockets
// out, the ruleset is loaded through them) and the live controller's start
// (the CLI claims the sandbox's name), then the go that init waits for
// before its worker (wait_for_go). A throw here kills init (~Sandbox): the
// command never starts.
void finish_start(const Sandbox& sandbox, const LaunchPlan& plan, const RunOptions& options,
                  FilteredNetwork* network) {
  if (network != nullptr) {
    connect_filtered_network(sandbox.control.get(), *network);
    startup_trace::mark("supervisor: ruleset loaded");
  }
  if (options.controller != nullptr) {
    if (test_hooks::controller_start_delay_ms != nullptr)
      test_delay(test_hooks::controller_start_delay_ms());
    options.controller->start();
    startup_trace::mark("supervisor: controller started");
  }
  if (plan.wait_for_go) send_go(sandbox.control.get());
}

// Steps 3 and 4: one clone3 creates every namespace at once; the parent maps
// the ids and only then releases the child, which until then waits on the
// control channel (it has no usable uid before the maps exist).
// `before_release` runs once the id maps are written, while init still
// waits: what run_sandbox overlaps with clone3 and must finish before the
// sandbox mounts anything. A throw from it kills init (~Sandbox).
Sandbox start_sandbox(const Policy& policy, const RunOptions& options, const LaunchPlan& plan,
                      cgroups::SandboxCgroup& cgroup, FilteredNetwork* network,
                      const std::function<void()>& before_release) {
  ChannelPair control = make_channel();
  ChannelPair exec = make_channel();
  // Init in this address space where the caller allows it (shared_init.hpp),
  // else a copy. It never joins the sandbox's cgroup (join_sandbox_cgroup):
  // an OOM kill there cannot reach it, nor through it sbx.
  std::unique_ptr<SharedInit> shared =
      options.share_address_space
          ? SharedInit::prepare(plan, control.sandbox_end.get(), exec.sandbox_end.get())
          : nullptr;
  const SharedChild shared_child = shared ? shared->child() : SharedChild{};
  // A copy: the less heap, the fewer pages to copy and to fault back
  // (strict: ~0.7 ms here).
  if (!shared) malloc_trim(0);
  CloneOutcome child =
      clone_sandbox({sandbox_namespaces(policy), shared ? &shared_child : nullptr});
  if (child.pid == 0) {
    // The sandbox: from here to execve only async-signal-safe code.
    sandbox_init(plan, control.sandbox_end.get(), exec.sandbox_end.get());
  }
  Sandbox sandbox = adopt_init(child.pid, child.pidfd, control, exec,
                               child.shared_memory ? std::move(shared) : nullptr, options);
  // Sandbox ends close here: EOF on the exec channel then means execve.
  control.sandbox_end.reset();
  exec.sandbox_end.reset();
  cgroup.close_join_fds();  // init has its own; sbx needs no way to move tasks
  release_init(sandbox, plan, before_release);
  finish_start(sandbox, plan, options, network);
  return sandbox;
}

// An early start (shared_init.hpp SharedInit::start_early): init is made
// before the planning, by the parked thread on another CPU, where init may
// share the address space and side threads may run. SBX_EARLY_INIT=0 or =1
// decides instead (to measure it).
struct EarlyInit {
  ChannelPair control;
  ChannelPair exec;
  UniqueFd supervisor_pidfd;  // init watches it until it has its own fds
  std::unique_ptr<SharedInit> shared;
};

// side_threads: LaunchCpuPin::side_threads() of the launch.
bool early_init_wanted(bool share_address_space, bool side_threads) {
  if (const char* v = std::getenv("SBX_EARLY_INIT"); v != nullptr && *v != '\0')
    return std::strcmp(v, "1") == 0 && share_address_space;
  return share_address_space && side_threads;
}

// thread_cpus: where the parked thread runs clone3 (the launching thread's
// LaunchCpuPin::other_cpus()).
std::optional<EarlyInit> start_init_early(std::uint64_t namespaces, const cpu_set_t& thread_cpus) {
  EarlyInit early;
  early.control = make_channel();
  early.exec = make_channel();
  early.supervisor_pidfd.reset(pidfd_for(getpid()));
  if (!early.supervisor_pidfd) return std::nullopt;
  EarlyStart start;
  start.namespaces = namespaces;
  start.control_fd = early.control.sandbox_end.get();
  start.exec_fd = early.exec.sandbox_end.get();
  start.supervisor_pidfd = early.supervisor_pidfd.get();
  start.init_delay_ms = test_hooks::init_delay_ms ? test_hooks::init_delay_ms() : 0;
  start.thread_cpus = thread_cpus;
  early.shared = SharedInit::start_early(start);
  if (!early.shared) return std::nullopt;
  return early;
}

// Released, init takes an fd table of its own and says so first; until then
// every fd here is also init's, and a channel end closed here would close
// there.
void wait_for_own_fd_table(const Sandbox& sandbox) {
  struct pollfd fds[2] = {{sandbox.control.get(), POLLIN, 0}, {sandbox.pidfd.get(), POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("waiting for sandbox init: {}", std::strerror(errno)));
    }
    if (fds[0].revents != 0) {
      Message message;
      int fd = -1;
      const int rc = receive_message(sandbox.control.get(), message, &fd);
      if (fd >= 0) close(fd);
      if (rc == 1 && message.kind == MessageKind::fd_table_own) return;
      if (rc == 1 && message.kind == MessageKind::failure) throw sandbox_step_error(message.error);
      if (rc < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      throw Error("sandbox init broke off its start (no fd table of its own)");
    }
    if (fds[1].revents != 0) throw Error("sandbox init ended during its start");
  }
}

// start_sandbox for an early start, from the clone3 made meanwhile; nullopt
// when it made no init (the usual start then reports why, with its
// fallbacks for older kernels).
std::optional<Sandbox> start_sandbox_early(EarlyInit& early, const RunOptions& options,
                                           const LaunchPlan& plan, cgroups::SandboxCgroup& cgroup,
                                           FilteredNetwork* network,
                                           const std::function<void()>& before_release) {
  early.shared->set_plan(plan);
  CloneResult child;
  if (!early.shared->wait_cloned(child)) return std::nullopt;
  Sandbox sandbox = adopt_init(child.pid, child.pidfd, early.control, early.exec,
                               std::move(early.shared), options);
  release_init(sandbox, plan, before_release);
  wait_for_own_fd_table(sandbox);
  // Sandbox ends close here: EOF on the exec channel then means execve.
  early.control.sandbox_end.reset();
  early.exec.sandbox_end.reset();
  early.supervisor_pidfd.reset();
  cgroup.close_join_fds();  // init has its own; sbx needs no way to move tasks
  finish_start(sandbox, plan, options, network);
  return sandbox;
}

}  // namespace

// Pid 1 of the sandbox (steps 5 and 6). Holds every capability of user
// namespace U1, which owns the new mount, net, uts, ipc and pid namespaces.
namespace {

// Init from its release on, whichever way it started.
[[noreturn]] void run_released_init(const LaunchPlan& plan, int control_fd, int exec_fd,
                                    char* worker_stack_top) {
  ChildError err;
  int signal_fd = -1;
  bool ok = become_sandbox_user(plan.identity, control_fd, err) &&  // root: drop root now
            hide_from_command(err) &&                    // non-dumpable: no ptrace, no /proc/1/fd
            set_hostname(plan, err) &&                   // uts namespace
            set_up_network(plan, control_fd, err) &&     // lo (none); filter sockets (filtered)
            apply_mount_plan(plan.mounts, err) &&        // new root, pivot_root, chdir
            wait_for_go(plan, control_fd, err) &&        // ruleset, controller: meanwhile
            leave_host_session(err) &&                   // out of the host's job control
            block_signals_for_reaping(&signal_fd, err);  // before fork: no SIGCHLD lost
  if (!ok) {
    send_failure(control_fd, err);
    _exit(kExitSbxError);
  }
  pid_t worker = start_worker(plan, control_fd, exec_fd,
                              worker_stack_top);  // returns after its execve
  close_cgroup_fds(plan);                         // the worker has joined the group
  if (worker < 0) {
    err.fail("clone (worker)", errno);
    send_failure(control_fd, err);
    _exit(kExitSbxError);
  }
  // The worker shared our memory: if it failed while dumpable, undo that.
  if (!hide_from_command(err)) {
    send_failure(control_fd, err);
    _exit(kExitSbxError);
  }
  close(exec_fd);  // only the worker holds it now: its EOF is the worker's execve
  reap_until_worker_exits(worker, signal_fd, control_fd, plan.serve_sockets);
}

}  // namespace

[[noreturn]] void sandbox_init(const LaunchPlan& plan, int control_fd, int exec_fd,
                               char* worker_stack_top) {
  ChildError err;
  test_delay(plan.test_init_delay_ms);
  // First the fds: a copy of the supervisor's channel ends here would keep
  // die_with_supervisor from ever seeing the supervisor gone (a kill -9 of
  // sbx before PDEATHSIG was armed left init waiting forever).
  bool ok = keep_only_init_fds(plan, control_fd, exec_fd, err) &&  // not sbx's, not the caller's
            die_with_supervisor(control_fd, err) &&                // kill -9 sbx kills us
            wait_for_release(control_fd, err);                     // id maps written
  if (!ok) {
    send_failure(control_fd, err);
    _exit(kExitSbxError);
  }
  run_released_init(plan, control_fd, exec_fd, worker_stack_top);
}

void init_before_release(int control_fd, int supervisor_pidfd, int parent_thread_pidfd,
                         unsigned delay_ms) {
  ChildError err;
  test_delay(delay_ms);
  bool ok = die_with_supervisor_process(err) &&  // kill -9 sbx kills us
            wait_for_release_early(control_fd, supervisor_pidfd, parent_thread_pidfd, err);
  if (!ok) {
    send_failure(control_fd, err);
    _exit(kExitSbxError);
  }
}

[[noreturn]] void sandbox_init_released(const LaunchPlan& plan, int control_fd, int exec_fd,
                                        char* worker_stack_top) {
  ChildError err;
  bool ok = take_own_fd_table(err) &&                              // every fd of the plan exists
            keep_only_init_fds(plan, control_fd, exec_fd, err) &&  // not sbx's, not the caller's
            tell_fd_table_own(control_fd, err);                    // sbx may close its fds now
  if (!ok) {
    send_failure(control_fd, err);
    _exit(kExitSbxError);
  }
  run_released_init(plan, control_fd, exec_fd, worker_stack_top);
}

// Pid 2: becomes the command (step 7). Each step takes away something the
// command must not have; seccomp last because it cuts off the calls the
// earlier steps make.
[[noreturn]] void worker_main(const LaunchPlan& plan, int exec_fd) {
  ChildError err;
  bool ok = reset_signals(err) &&                      // default dispositions, empty mask
            join_sandbox_cgroup(plan, err) &&          // limits; init stays outside
            enter_nested_user_namespace(plan, err) &&  // U2: no power over U1's namespaces
            start_session(plan, exec_fd, err) &&       // setsid (+ private pty)
            set_resource_limits(plan, err) &&          // core=0, nofile, nproc, fsize
            close_inherited_fds(exec_fd, err) &&       // only 0, 1, 2 reach the command
            drop_all_capabilities(plan, err) &&        // bounding, ambient, securebits, sets
            set_no_new_privs(err) &&                   // execve cannot grant privileges
            apply_landlock(plan.landlock, err) &&      // needs no_new_privs when unprivileged
            restore_caller_cpus(plan, err) &&          // the launch ran on one CPU
            install_seccomp_last(plan, exec_fd, err);  // last: filter the command only
  if (!ok) {
    send_failure(exec_fd, err);
    _exit(kExitSbxError);
  }
  exec_command(plan, exec_fd);  // environment cleared to the allowlist (plan.envp)
}

}  // namespace runtime

// The supervisor (steps 1, 2 and 8); sandbox_init and worker_main above run
// steps 5 to 7 on the other side of clone3.
namespace {

RunResult run_sandbox(const Policy& given, const RunOptions& options) {
  using namespace runtime;
  reject_unsupported(given);              // fail closed, exit 125
  const DefaultChildSignal child_signal;  // children are ours to reap (not SIG_IGN)
  LaunchCpuPin cpu_pin;  // one CPU for the launch; the command gets the caller's set
  open_missing_stdio();  // channels never land on 0-2
  // Init made now, beside the rest of the start, where it can be
  // (EarlyInit): first, so that its clone3 (~0.5-0.7 ms of the kernel's on
  // the other CPU) is under way while the identity is resolved and the
  // planning runs. The namespaces depend on the given policy's network
  // mode alone, which the adjustments below keep. Not for a setuid sbx,
  // which resolve_identity refuses: refused before any namespace exists.
  std::optional<EarlyInit> early;
  if (getuid() == geteuid() &&
      early_init_wanted(options.share_address_space, cpu_pin.side_threads()))
    early = start_init_early(sandbox_namespaces(given), cpu_pin.other_cpus());
  const Identity identity = resolve_identity(given.process);  // never host root by default
  // sudo, --user: what ~ hides is hidden in the command's home too; a
  // protected repository's core.hooksPath is protected like .git/hooks.
  std::optional<Policy> adjusted = hide_in_command_home(given, identity, std::getenv("HOME"));
  if (auto hooks = protect_hooks_paths(adjusted ? *adjusted : given, std::getenv("HOME")))
    adjusted = std::move(hooks);
  const Policy& policy = adjusted ? *adjusted : given;
  const HostTerminal terminal = inspect_host_terminal();
  // The cgroup, limits set before start. Where the launch is not pinned to
  // one CPU (LaunchCpuPin::beside) it is made on a second thread beside the
  // planning (~0.6 ms of a strict start on cgroup v1). Its warnings are
  // collected either way and passed on from here, in order, also when it
  // fails. If the planning throws, the future's destructor waits for the
  // group, and the group's destructor removes it. Making it can move sbx
  // itself (into a leaf of a delegated cgroup v2 subtree, for the "no
  // internal processes" rule, or into a systemd scope): an early init goes
  // along (the companion), or it would stay behind and block the move
  // (vm.cgroups_early). Made after the group instead, init came ~0.45 ms
  // later in a strict start (1.08x, 150 rounds).
  std::vector<std::string> cgroup_warnings;
  const auto make_cgroup = [&] {
    return cgroups::SandboxCgroup::create(
        policy.limits, sandbox_id(policy),
        [&cgroup_warnings](const std::string& w) { cgroup_warnings.push_back(w); },
        [&early]() -> pid_t { return early ? early->shared->cloned_pid() : -1; });
  };
  std::future<cgroups::SandboxCgroup> cgroup_made;
  if (cgroups::SandboxCgroup::needed(policy.limits)) cgroup_made = cpu_pin.beside(make_cgroup);
  LaunchPlan plan = prepare_launch_plan(policy, options, identity, terminal, cpu_pin,
                                        early.has_value());  // all allocation
  if (early) {
    // Init runs where the parked thread made it: the worker gives the
    // command the caller's set.
    plan.restore_cpus = true;
    plan.caller_cpus = cpu_pin.caller_set();
  }
  // The placeholders of protected paths that do not exist yet (strict in a
  // repository: ~19, ~0.45 ms here) are made on a second thread from here
  // until init is released, while clone3 builds the namespaces; where no
  // side thread may run, at once. In an early start clone3 (and the cgroup)
  // already have the other CPU: here, at once (strict 0.95x, 40 rounds).
  // Either way they exist before init mounts on them. If the launch throws
  // before, the future's destructor waits for the thread, and ~MountPlan
  // removes what it made.
  std::future<void> placeholders_made;
  if (placeholders_pending(plan.mounts)) {
    if (!early) placeholders_made = cpu_pin.beside([&plan] { create_placeholders(plan.mounts); });
    if (!placeholders_made.valid()) create_placeholders(plan.mounts);
  }
  const auto pass_on_warnings = [&] {
    if (options.on_warning)
      for (const auto& w : cgroup_warnings) options.on_warning(w);
  };
  cgroups::SandboxCgroup cgroup = [&] {
    try {
      return cgroup_made.valid() ? cgroup_made.get() : make_cgroup();
    } catch (...) {
      pass_on_warnings();
      throw;
    }
  }();
  pass_on_warnings();
  plan.cgroup_join_fds = cgroup.join_fds();  // the worker joins it
  startup_trace::mark("run: cgroup");
  std::unique_ptr<FilteredNetwork> network;  // filtered: checked, publish ports bound
  if (policy.network.mode == NetworkMode::filtered)
    network = std::make_unique<FilteredNetwork>(policy, options);
  startup_trace::mark("run: network prepared");
  SignalRouting signals;  // before clone: none lost
  // ~/.claude.json: the keys that make the host's client run code, put back.
  const ClaudeConfigGuard claude_guard(policy, options);
  // strict: git redirection files snapshotted once the placeholders exist
  // (one is .git/hooks) and before the sandbox runs, checked (and reverted)
  // by the guard's destructor once it is gone (git_guard.hpp).
  std::optional<GitGuard> git_guard;
  const auto before_release = [&] {
    if (placeholders_made.valid()) placeholders_made.get();  // rethrows
    git_guard.emplace(policy, options, [&plan](const std::string& host_path) {
      return sandbox_may_write(plan.mounts, host_path);
    });
    startup_trace::mark("run: placeholders made, git guard");
  };
  std::optional<Sandbox> early_sandbox;
  if (early) {
    early_sandbox = start_sandbox_early(*early, options, plan, cgroup, network.get(),
                                        before_release);  // maps, release
    early.reset();
  }
  Sandbox sandbox = early_sandbox ? std::move(*early_sandbox)
                                  : start_sandbox(policy, options, plan, cgroup, network.get(),
                                                  before_release);  // clone3, maps, release
  return supervise(sandbox, {policy, options, plan, terminal, cgroup, signals, network.get(),
                             &cpu_pin, [&plan] { start_placeholder_removal(plan.mounts); }});
}

}  // namespace

RunResult run(const Policy& policy, const RunOptions& options) {
  try {
    return run_sandbox(policy, options);
  } catch (const Error& e) {
    if (auto explained = runtime::with_open_files_fix(e)) throw *explained;
    throw;
  }
}

}  // namespace sbx
