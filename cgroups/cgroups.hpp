// cgroups/: per-sandbox resource limits (cgroup v2: root, delegated subtree or
// systemd scope; v1 fallback for hybrid hosts), usage stats, OOM events, and
// cleanup of the group (also of stale groups of dead sandboxes).
#pragma once

#include <sys/types.h>

#include <sbx/events.hpp>
#include <sbx/policy.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace sbx::cgroups {

struct Stats {
  std::uint64_t peak_memory_bytes = 0;
  std::uint64_t cpu_usage_us = 0;
  std::uint64_t peak_pids = 0;
  std::uint64_t oom_kills = 0;
};

class SandboxCgroup {
 public:
  // Creates the group and writes every limit before the command starts.
  // Throws sbx::Error when limits.required and they cannot be enforced;
  // otherwise reports the reason and fix through `warn` and returns an
  // inactive group.
  static SandboxCgroup create(const LimitsPolicy& limits, const std::string& sandbox_id,
                              const WarningSink& warn);
  SandboxCgroup(SandboxCgroup&&) noexcept;
  SandboxCgroup& operator=(SandboxCgroup&&) noexcept;
  ~SandboxCgroup();  // kills what is left in the group and removes it

  bool active() const;
  // cgroup v2 directory fd for clone3(CLONE_INTO_CGROUP), or -1.
  int clone_into_fd() const;
  // Moves pid into the group (v1, or when CLONE_INTO_CGROUP is unavailable);
  // called by the supervisor before it releases the child.
  void attach(pid_t pid);
  // Current usage; peak values since creation.
  Stats stats() const;
  // Reports new OOM kills / pids-max hits as "limit" events since the last call.
  void poll_events(const EventSink& sink);
  // SIGKILL everything in the group (cgroup.kill on v2 >= 5.14).
  void kill_all();

  struct State;

 private:
  SandboxCgroup();
  std::unique_ptr<State> state_;
};

// Removes groups left behind by sandboxes whose supervisor died (kill -9).
void remove_stale_groups(const WarningSink& warn);

}  // namespace sbx::cgroups
