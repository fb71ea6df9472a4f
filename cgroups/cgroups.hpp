// cgroups/: per-sandbox resource limits (cgroup v2: root, delegated subtree or
// systemd scope; v1 fallback for hybrid hosts), usage stats, OOM events, and
// cleanup of the group (also of stale groups of dead sandboxes).
#pragma once

#include <sys/types.h>

#include <sbx/events.hpp>
#include <sbx/policy.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sbx::cgroups {

struct Stats {
  std::uint64_t peak_memory_bytes = 0;
  std::uint64_t cpu_usage_us = 0;
  std::uint64_t peak_pids = 0;
  std::uint64_t oom_kills = 0;
};

// A process that moves with sbx (SandboxCgroup::create).
using Companion = std::function<pid_t()>;

class SandboxCgroup {
 public:
  // Creates the group and writes every limit before the command starts.
  // Throws sbx::Error when limits.required and they cannot be enforced;
  // otherwise reports the reason and fix through `warn` and returns an
  // inactive group.
  // companion: a process of sbx's that must move wherever making the group
  // moves sbx itself (into a leaf of a delegated v2 subtree, for the "no
  // internal processes" rule, or into a systemd scope): sandbox init when
  // it was made beside (runtime/shared_init.hpp, the early start). Called
  // only then, from this thread; returns its pid (waiting for it), or <= 0.
  static SandboxCgroup create(const LimitsPolicy& limits, const std::string& sandbox_id,
                              const WarningSink& warn, const Companion& companion = {});
  // Whether create() makes a group for these limits at all.
  static bool needed(const LimitsPolicy& limits);
  SandboxCgroup(SandboxCgroup&&) noexcept;
  SandboxCgroup& operator=(SandboxCgroup&&) noexcept;
  ~SandboxCgroup();  // kills what is left in the group and removes it

  bool active() const;
  // The files that move a process into the group (cgroup.procs on v2, one
  // "tasks" per controller directory on v1: Backend::join_file), opened for
  // writing by this process; empty when inactive. The sandbox's worker, a
  // single-threaded process, writes "0" to each, moving itself in before its
  // execve:
  // the kernel checks that write against the credentials and the cgroup
  // namespace of the opener (Linux 5.16; stable kernels since the fix for
  // CVE-2021-4197), so a worker that no longer runs as root may make it.
  const std::vector<int>& join_fds() const;
  // Closes them: the sandbox holds its own copies once it is cloned.
  void close_join_fds();
  // Current usage; peak values since creation.
  Stats stats() const;
  // Reports new OOM kills / pids-max hits as "limit" events since the last call.
  void poll_events(const EventSink& sink);
  // SIGKILL everything in the group (cgroup.kill on v2 >= 5.14).
  void kill_all();
  // Once no process of the sandbox is left (the supervisor learns that
  // before init is reaped): reports the last events to sink, keeps the
  // final stats, and removes the group on a thread of its own, beside the
  // rest of the teardown (~0.2 ms for four v1 hierarchies). Afterwards
  // stats() gives the kept figures, and poll_events and kill_all do
  // nothing. Without a thread to be had, the destructor removes the group,
  // as before. Idempotent.
  void retire(const EventSink& sink);

  struct State;

 private:
  SandboxCgroup();
  std::unique_ptr<State> state_;
};

// Removes groups left behind by sandboxes whose supervisor died (kill -9).
void remove_stale_groups(const WarningSink& warn);

}  // namespace sbx::cgroups
