// Minimal first version: no group is created yet; limits are reported as not
// enforced (warning or, when required, an error). Replaced by the real
// backends in the following commits.
#include "cgroups/cgroups.hpp"

#include <sbx/error.hpp>

namespace sbx::cgroups {

struct SandboxCgroup::State {};

SandboxCgroup::SandboxCgroup() = default;
SandboxCgroup::SandboxCgroup(SandboxCgroup&&) noexcept = default;
SandboxCgroup& SandboxCgroup::operator=(SandboxCgroup&&) noexcept = default;
SandboxCgroup::~SandboxCgroup() = default;

SandboxCgroup SandboxCgroup::create(const LimitsPolicy& limits, const std::string&,
                                    const WarningSink& warn) {
  bool wanted = limits.memory_bytes || limits.swap_bytes || limits.cpus || limits.pids;
  if (wanted) {
    std::string why = "cgroup support is not implemented yet";
    if (limits.required) throw Error("cannot enforce resource limits: " + why);
    if (warn) warn("resource limits not enforced: " + why);
  }
  return SandboxCgroup();
}

bool SandboxCgroup::active() const {
  return false;
}
int SandboxCgroup::clone_into_fd() const {
  return -1;
}
void SandboxCgroup::attach(pid_t) {}
Stats SandboxCgroup::stats() const {
  return {};
}
void SandboxCgroup::poll_events(const EventSink&) {}
void SandboxCgroup::kill_all() {}

void remove_stale_groups(const WarningSink&) {}

}  // namespace sbx::cgroups
