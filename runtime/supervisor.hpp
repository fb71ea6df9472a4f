// The supervisor: sbx's side of a running sandbox. One thread, one epoll
// loop: forwarded signals, init's pidfd, the sandbox's messages, the pty
// relay, the seccomp listener, timers for --timeout and cgroup events.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <sbx/sbx.hpp>

#include <functional>
#include <memory>
#include <optional>

#include "cgroups/cgroups.hpp"
#include "runtime/child_error.hpp"
#include "runtime/cpu_pin.hpp"
#include "runtime/launch.hpp"
#include "runtime/shared_init.hpp"
#include "runtime/terminal.hpp"
#include "runtime/unique_fd.hpp"

namespace sbx::runtime {

class FilteredNetwork;

// An inherited SIGCHLD = SIG_IGN makes the kernel reap sbx's children itself:
// init's exit status and every waitpid would be lost (sbx hung waiting for
// init). For the run, SIGCHLD has its default disposition; the caller's is
// restored after.
class DefaultChildSignal {
 public:
  DefaultChildSignal();
  DefaultChildSignal(const DefaultChildSignal&) = delete;
  DefaultChildSignal& operator=(const DefaultChildSignal&) = delete;
  ~DefaultChildSignal();

 private:
  bool was_ignored_ = false;
};

// Blocks the signals sbx forwards (and SIGCHLD, SIGPIPE) in the calling
// thread and reads them from a signalfd; restores the old mask on
// destruction, after discarding what is still pending. Created before clone
// so no signal is lost between clone and the loop.
class SignalRouting {
 public:
  SignalRouting();
  SignalRouting(const SignalRouting&) = delete;
  SignalRouting& operator=(const SignalRouting&) = delete;
  ~SignalRouting();
  int fd() const { return fd_.get(); }

 private:
  sigset_t old_mask_{};
  UniqueFd fd_;
};

// The running sandbox: init's pid and pidfd and the supervisor's ends of the
// two channels (channel.hpp). Kills and reaps init if destroyed while it runs.
struct Sandbox {
  // Init's stack and thread area when it shares the supervisor's address
  // space; freed after the destructor's body has made sure init is gone.
  std::unique_ptr<SharedInit> shared_init;
  pid_t init_pid = -1;
  UniqueFd pidfd;
  UniqueFd control;
  UniqueFd exec;
  bool reaped = false;
  Sandbox() = default;
  Sandbox(Sandbox&&) = default;
  Sandbox& operator=(Sandbox&&) = default;
  ~Sandbox();
};

struct SuperviseContext {
  const Policy& policy;
  const RunOptions& options;
  const LaunchPlan& plan;
  const HostTerminal& terminal;
  cgroups::SandboxCgroup& cgroup;
  const SignalRouting& signals;
  FilteredNetwork* network = nullptr;  // network "filtered": DNS filter, proxy, NFLOG
  LaunchCpuPin* cpu_pin = nullptr;     // released by the loop's first real work
  // Host-side clean-up may start: once no process of the sandbox is left
  // (init's sandbox_empty message, or init reaped). Called once or twice.
  std::function<void()> sandbox_gone;
};

// Runs the loop until init exits. Throws sbx::Error when the sandbox failed
// before the command started (a ChildError from init or the worker).
RunResult supervise(Sandbox& sandbox, const SuperviseContext& context);

// The user-facing error for a step that failed inside the sandbox.
Error sandbox_step_error(const ChildError& error);

// sbx had no fd free to take one over from the sandbox (`what`: "the
// sandbox's network sockets"): the error, with the open-file limit and the
// fix (raise the hard limit, or `other_fix`).
Error out_of_fds_error(std::string_view what, std::string_view other_fix = {});

// For an error about running out of file descriptors (EMFILE or ENFILE, as
// strerror words them in its message) without the fix for that: `e` with
// that fix. A fix chosen for the step that failed would send the user the
// wrong way.
std::optional<Error> with_open_files_fix(const Error& e);

}  // namespace sbx::runtime
