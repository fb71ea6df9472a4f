// Private to cgroups/: the interface each backend (cgroup v2 directory,
// cgroup v1 directories) implements for SandboxCgroup, and the discovery of
// where this process may create groups.
#pragma once

#include <sys/types.h>

#include <sbx/policy.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cgroups/cgroup_files.hpp"
#include "cgroups/cgroups.hpp"

namespace sbx::cgroups {

// Name of the parent group that holds every sandbox group.
inline constexpr const char* kParentName = "sbx";
// Leaf a delegated (non-root) supervisor moves itself into, because cgroup v2
// forbids processes in a group whose subtree_control distributes controllers
// (the "no internal processes" rule).
inline constexpr const char* kSupervisorLeaf = "sbx-supervisor";

// Counters that become "limit" events when they grow.
struct LimitCounters {
  std::uint64_t oom_kills = 0;
  std::uint64_t oom_group_kills = 0;
  std::uint64_t pids_max_hits = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string describe() const = 0;  // directory (or directories) for messages
  // The group's directories: one on v2, one per mounted controller on v1.
  virtual std::vector<std::string> dirs() const = 0;
  // The file in each of dirs() that a process writes "0" to, to move itself
  // in: cgroup.procs on v2; on v1 "tasks", which moves the writing thread
  // alone and so skips the kernel's global threadgroup lock, whose first
  // write-lock after a quiet spell waits out an RCU grace period (7-20 ms
  // here, against ~25 us). The sandbox's worker is single-threaded, so its
  // thread is the whole process. (v2's cgroup.threads only moves threads
  // within one resource domain.)
  virtual const char* join_file() const = 0;
  // Raw usage now; peaks that the kernel does not track are sampled by the
  // caller, and the OOM kills come from counters().
  virtual Stats read_stats() const = 0;
  virtual std::uint64_t current_memory() const = 0;
  virtual std::uint64_t current_pids() const = 0;
  virtual LimitCounters counters() const = 0;
  virtual void kill_all() = 0;
  // Kills what is left, waits for it to exit, removes the directories.
  virtual void destroy() noexcept = 0;
};

// What the limits need from the kernel.
struct Needs {
  bool memory = false;
  bool pids = false;
  bool cpu = false;
  bool any() const { return memory || pids || cpu; }
  static Needs from(const LimitsPolicy& limits) {
    return Needs{limits.memory_bytes.has_value() || limits.swap_bytes.has_value(),
                 limits.pids.has_value(), limits.cpus.has_value()};
  }
};

// The cgroup file systems visible to this process and its place in them.
struct Discovery {
  std::vector<CgroupMount> mounts;
  std::vector<ProcCgroupEntry> self;
  static Discovery read();
  // v2 mount and the directory of this process's v2 group in it.
  std::optional<std::string> v2_mount() const;
  std::optional<std::string> v2_own_dir() const;
  // Directory of this process's group in the v1 hierarchy carrying controller.
  std::optional<std::string> v1_own_dir(const std::string& controller) const;
};

// Each returns nullptr and appends a human reason to `why` when it cannot
// enforce every requested limit; throws nothing on those expected failures.
// companion (SandboxCgroup::create): a process of sbx's that moves wherever
// sbx moves itself.
std::unique_ptr<Backend> create_v2(const LimitsPolicy& limits, const std::string& name,
                                   const Discovery& d, std::vector<std::string>& why,
                                   const Companion& companion = {});
std::unique_ptr<Backend> create_v1(const LimitsPolicy& limits, const std::string& name,
                                   const Discovery& d, std::vector<std::string>& why);

// Asks the systemd user (or system) manager for a transient scope with
// Delegate=yes holding this process; true once this process is in it.
// Without libsystemd at build time it explains that in `why`.
bool move_into_systemd_scope(const std::string& name, std::vector<std::string>& why,
                             const Companion& companion = {});

// remove_stale_groups (cgroups.hpp) where `d` is at hand: one read of
// mountinfo and /proc/self/cgroup for the scan and the new group.
void remove_stale_groups(const Discovery& d, const WarningSink& warn);

// Directories that may hold sandbox groups (for stale-group removal).
std::vector<std::string> v2_parent_dirs(const Discovery& d);
std::vector<std::string> v1_parent_dirs(const Discovery& d);

// Shared by both backends.
std::string errno_text(int err);
// SIGKILLs every pid listed in dir/cgroup.procs until none is left (or gives up).
bool kill_listed_processes(const std::string& dir);
// rmdir that retries while the last killed tasks finish exiting (EBUSY).
bool remove_group_dir(const std::string& dir);

}  // namespace sbx::cgroups
