// The filesystem half of the launch: the sandbox's new root.
//
// prepare_mount_plan() runs in the supervisor before clone: it resolves every
// policy path safely (no symlink may widen what is writable), decides each
// mount, and preallocates everything. apply_mount_plan() runs in the sandbox
// init after clone, inside the new user+mount namespaces; it is
// async-signal-safe (no allocation, no logging, no exceptions).
#pragma once

#include <sbx/policy.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "runtime/child_error.hpp"
#include "runtime/identity.hpp"

namespace sbx::runtime {

struct MountPlanData;  // private to mounts.cpp

class MountPlan {
 public:
  MountPlan();
  MountPlan(MountPlan&&) noexcept;
  MountPlan& operator=(MountPlan&&) noexcept;
  ~MountPlan();
  MountPlanData& data() { return *data_; }
  const MountPlanData& data() const { return *data_; }

 private:
  std::unique_ptr<MountPlanData> data_;
};

// Supervisor side. Throws sbx::Error (message + fix) for an unusable policy.
// Protected paths that do not exist get a placeholder on the host (an empty
// file or directory, the read-only mount's mount point): made here (now), or
// left to create_placeholders (later), which the launch runs beside clone3.
enum class Placeholders { now, later };
MountPlan prepare_mount_plan(const Policy& policy, const Identity& identity,
                             Placeholders placeholders = Placeholders::now);

// Makes the placeholders a Placeholders::later plan decided on; once, before
// the sandbox mounts anything. Throws sbx::Error when one cannot be made
// (~MountPlan removes those made so far).
void create_placeholders(MountPlan& plan);
bool placeholders_pending(const MountPlan& plan);  // any left to create_placeholders

// Whether `host_path` (resolved, no symlink in it) lies in what the plan
// binds writable, outside the dirs it masks, and has the owner of that
// writable path: somewhere the sandbox may have written (a read-only entry
// inside may still protect it).
bool sandbox_may_write(const MountPlan& plan, const std::string& host_path);

// The fds the plan holds for init (detached trees prepared by the
// supervisor), at most kMaxPreparedTrees. The vector lives as long as the
// plan.
inline constexpr std::size_t kMaxPreparedTrees = 254;
const std::vector<int>& mount_plan_fds(const MountPlan& plan);

// Once the sandbox is gone: removes the placeholders prepare_mount_plan
// created on the host (empty files and directories standing in for protected
// paths that did not exist), on a thread of its own when one of them is a
// directory, so the rest of the teardown runs meanwhile; ~MountPlan waits for
// it. Freeing a directory's block can wait for the disk: on ext4 with
// `discard` and no journal (the benchmark VM) rmdir sleeps ~0.5 ms in a
// synchronous discard. Without this call ~MountPlan removes them itself.
void start_placeholder_removal(MountPlan& plan) noexcept;

// Sandbox init: builds the new root on tmpfs, pivot_root, detaches the old
// root, chdir to the work dir. Returns false with `err` filled on failure.
bool apply_mount_plan(const MountPlan& plan, ChildError& err);

struct LandlockPlanData;

class LandlockPlan {
 public:
  LandlockPlan();
  LandlockPlan(LandlockPlan&&) noexcept;
  LandlockPlan& operator=(LandlockPlan&&) noexcept;
  ~LandlockPlan();
  LandlockPlanData& data() { return *data_; }
  const LandlockPlanData& data() const { return *data_; }

 private:
  std::unique_ptr<LandlockPlanData> data_;
};

// Supervisor side: detects the Landlock ABI and prepares the ruleset that
// mirrors the filesystem policy. Throws sbx::Error when landlock="required"
// and the kernel cannot enforce it.
LandlockPlan prepare_landlock(const Policy& policy);

// Worker, after no_new_privs and before seccomp. Paths are as seen inside the
// new root. Returns false with `err` filled when a required ruleset fails.
bool apply_landlock(const LandlockPlan& plan, ChildError& err);

// One line for the run report / a warning: "landlock ABI 6 (best-effort)",
// "landlock unavailable (disabled at boot): not applied", ...
const std::string& landlock_status(const LandlockPlan& plan);

}  // namespace sbx::runtime
