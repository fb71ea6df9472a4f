// The launch on one CPU (docs/launch.md "Start-up time").
//
// A start is a chain of hand-offs: the supervisor waits for init, init for
// the worker, the worker becomes the command, init waits for it, the
// supervisor for init. Each process runs while the one before it sleeps.
// On one CPU every hand-off is a direct switch; spread over CPUs it is a
// cross-CPU wake-up, and on a VM waking an idle virtual CPU is expensive
// (bench/run's first VM: a strict start ~3 ms faster). So sbx::run pins
// the calling thread to the CPU it runs on -- where that pays. On a VM whose
// idle vCPUs poll before they halt (cpuidle haltpoll) a wake-up is cheap,
// and the supervisor's nftables load and init's mounts running side by
// side win: pinned, standard and strict starts were ~0.6 ms slower there
// (60 interleaved rounds). What tells the two apart at a start's cost is
// the price of a page fault (fault_cost.hpp: ~12 µs on the first VM, ~1.5
// µs on the second), so the launch is pinned where faults are dear.
// SBX_LAUNCH_PIN=1 or =0 decides instead (to measure it). The worker gives
// the caller's CPU set back right before seccomp and execve, so the command
// and all it starts get the caller's set. Init (a reaper) stays, and so does the supervisor's
// loop while it only waits for the launch's hand-offs, which keeps those at
// the command's exit direct too (a short command: `git status` in CI); its
// first real work -- a DNS query, a proxied connection, the terminal, a
// signal, `sbx ps` -- gives the set back, so a long-running command that
// keeps the launch CPU busy never delays the DNS filter or the proxy.
// Nothing is pinned when the caller's set has one CPU.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include <future>
#include <system_error>
#include <type_traits>
#include <utility>

namespace sbx::runtime {

class LaunchCpuPin {
 public:
  // Pins the calling thread to the CPU it is on, where wanted().
  LaunchCpuPin() noexcept;
  static bool wanted() noexcept;
  ~LaunchCpuPin() { release(); }
  LaunchCpuPin(const LaunchCpuPin&) = delete;
  LaunchCpuPin& operator=(const LaunchCpuPin&) = delete;

  bool pinned() const { return pinned_; }
  // Another CPU to run a second thread on: not pinned, two CPUs or more.
  bool other_cpu() const { return !pinned_ && cpus_ >= 2; }
  // Starts `work` on a second thread beside the planning, where that may
  // run: not pinned and at least two CPUs allowed (another CPU to run it;
  // on one, a thread only adds switches), and at least kSpareFds open
  // files allowed. A side thread holds fds while it works; with few to
  // spare, a planning error's clean-up (placeholders are reopened to be
  // removed) could find none left and leave a placeholder behind, so a
  // start under a low limit runs serially, as a pinned one does. Returns no
  // future (valid() false) when it did not start one, also when no thread
  // could be made (RLIMIT_NPROC): the caller then does the work itself.
  template <class Work>
  auto beside(Work&& work) const -> std::future<std::invoke_result_t<Work>> {
    if (!side_threads()) return {};
    // Started with every signal blocked but those a fault raises (it
    // inherits this thread's mask while it is made): a signal for the
    // process goes to the launching thread, which routes it
    // (SignalRouting) once the sandbox starts.
    const BlockAllSignals blocked;
    try {
      // On another CPU than this thread's: started beside it, the scheduler
      // may queue it on this one while the other idles, and the two then
      // share one CPU until the next load balancing.
      return std::async(std::launch::async,
                        [elsewhere = other_cpus(), work = std::forward<Work>(work)]() mutable {
                          move_to(elsewhere);
                          return work();
                        });
    } catch (const std::system_error&) {
      return {};
    }
  }
  static constexpr rlim_t kSpareFds = 256;
  const cpu_set_t& caller_set() const { return caller_; }
  void release() noexcept;                // gives the caller's set back (idempotent)
  bool side_threads() const;              // what beside() asks
  cpu_set_t other_cpus() const noexcept;  // the caller's set without the current CPU

 private:
  static void move_to(const cpu_set_t& cpus) noexcept;  // the calling thread; best effort
  struct BlockAllSignals {                              // in the calling thread, for its lifetime
    BlockAllSignals() noexcept;
    ~BlockAllSignals();
    BlockAllSignals(const BlockAllSignals&) = delete;
    BlockAllSignals& operator=(const BlockAllSignals&) = delete;
    sigset_t saved;
  };
  cpu_set_t caller_{};
  int cpus_ = 1;  // in the caller's set
  bool pinned_ = false;
};

// Sandbox side (async-signal-safe): gives `set` back to the calling thread.
// False only when the kernel refuses both the set and the set of all CPUs
// (a cpuset changed under us): errno says why.
bool restore_cpu_set(const cpu_set_t& set) noexcept;

}  // namespace sbx::runtime
