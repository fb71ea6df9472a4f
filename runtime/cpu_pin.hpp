// The launch on one CPU (docs/launch.md "Start-up time").
//
// A start is a chain of hand-offs: the supervisor waits for init, init for
// the worker, the worker becomes the command, init waits for it, the
// supervisor for init. Each process runs while the one before it sleeps.
// On one CPU every hand-off is a direct switch; spread over CPUs it is a
// cross-CPU wake-up, and on a VM waking an idle virtual CPU is expensive
// (bench/run's VM: a strict start ~3 ms faster). So sbx::run pins the
// calling thread to the CPU it runs on. Init (a reaper) and the supervisor's
// loop (one thread: signals, DNS filter, egress proxy) stay there, which
// also keeps the hand-offs at the command's exit direct; the worker gives the
// caller's CPU set back right before seccomp and execve, so the command and
// all it starts get the caller's set. The calling thread gets it back when
// sbx::run returns. Nothing is pinned when the caller's set has one CPU.
#pragma once

#include <sched.h>

namespace sbx::runtime {

class LaunchCpuPin {
 public:
  LaunchCpuPin() noexcept;  // pins the calling thread to the CPU it is on
  ~LaunchCpuPin() { release(); }
  LaunchCpuPin(const LaunchCpuPin&) = delete;
  LaunchCpuPin& operator=(const LaunchCpuPin&) = delete;

  bool pinned() const { return pinned_; }
  const cpu_set_t& caller_set() const { return caller_; }

 private:
  void release() noexcept;  // gives the caller's set back

  cpu_set_t caller_{};
  bool pinned_ = false;
};

// Sandbox side (async-signal-safe): gives `set` back to the calling thread.
// False only when the kernel refuses both the set and the set of all CPUs
// (a cpuset changed under us): errno says why.
bool restore_cpu_set(const cpu_set_t& set) noexcept;

}  // namespace sbx::runtime
