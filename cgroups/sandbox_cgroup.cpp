// SandboxCgroup: picks the backend that can enforce the requested limits
// (cgroup v2 root or delegated, a systemd scope that delegates v2 to us, or
// cgroup v1), fails closed or warns when none can, and owns the group.
#include <fcntl.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "cgroups/backend.hpp"

namespace sbx::cgroups {

struct SandboxCgroup::State {
  std::unique_ptr<Backend> backend;
  std::vector<int> join_fds;  // see join_fds()
  LimitsPolicy limits;
  ~State();  // closes join_fds, then kills what is left and removes the group
  void close_join_fds() {
    for (int fd : join_fds) ::close(fd);
    join_fds.clear();
  }
  // Peaks the kernel does not track (no pids.peak before 6.13) are sampled
  // whenever the supervisor asks for stats or events.
  std::uint64_t sampled_peak_memory = 0;
  std::uint64_t sampled_peak_pids = 0;
  LimitCounters reported;
  // retire(): from then on only `remover` touches the backend.
  bool retired = false;
  Stats final_stats;
  std::thread remover;

  void sample() {
    sampled_peak_memory = std::max(sampled_peak_memory, backend->current_memory());
    sampled_peak_pids = std::max(sampled_peak_pids, backend->current_pids());
  }
  // Usage now, with the sampled peaks and the OOM kills of `now`.
  Stats usage(const LimitCounters& now) const {
    Stats s = backend->read_stats();
    s.peak_memory_bytes = std::max(s.peak_memory_bytes, sampled_peak_memory);
    s.peak_pids = std::max(s.peak_pids, sampled_peak_pids);
    s.oom_kills = now.oom_kills;
    return s;
  }
  // "limit" events for what grew since the last report.
  void report(const LimitCounters& now, const EventSink& sink);
};

namespace {

std::string requested_limits(const LimitsPolicy& l) {
  std::vector<std::string> parts;
  if (l.memory_bytes) parts.push_back(fmt::format("memory {} bytes", *l.memory_bytes));
  if (l.swap_bytes) parts.push_back(fmt::format("swap {} bytes", *l.swap_bytes));
  if (l.cpus) parts.push_back(fmt::format("cpus {}", *l.cpus));
  if (l.pids) parts.push_back(fmt::format("pids {}", *l.pids));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

SandboxCgroup::State::~State() {
  close_join_fds();
  if (remover.joinable()) remover.join();
  if (backend) backend->destroy();  // nothing left to do after the remover
}

SandboxCgroup::SandboxCgroup() = default;
SandboxCgroup::SandboxCgroup(SandboxCgroup&&) noexcept = default;
SandboxCgroup& SandboxCgroup::operator=(SandboxCgroup&& other) noexcept = default;
SandboxCgroup::~SandboxCgroup() = default;

bool SandboxCgroup::needed(const LimitsPolicy& limits) {
  return Needs::from(limits).any();
}

SandboxCgroup SandboxCgroup::create(const LimitsPolicy& limits, const std::string& sandbox_id,
                                    const WarningSink& warn, const Companion& companion) {
  SandboxCgroup cg;
  if (!needed(limits)) return cg;  // nothing to enforce: no group at all

  // Groups whose supervisor was SIGKILLed cannot clean up after themselves.
  auto d = Discovery::read();
  remove_stale_groups(d, warn);

  std::string name = group_name(sandbox_id, current_owner());
  std::vector<std::string> why;
  auto backend = create_v2(limits, name, d, why, companion);
  if (!backend && ::geteuid() != 0) {
    // Unprivileged without a usable delegated subtree: ask systemd for a
    // scope with Delegate=yes, move in, and retry the delegated path.
    if (move_into_systemd_scope(name, why, companion)) {
      d = Discovery::read();
      backend = create_v2(limits, name, d, why, companion);
    }
  }
  if (!backend) backend = create_v1(limits, name, d, why);

  if (!backend) {
    std::string what = fmt::format("({}): {}", requested_limits(limits), join(why));
    std::string fix =
        ::geteuid() == 0
            ? "mount cgroup2 with the memory, pids and cpu controllers (or cgroup v1 "
              "memory/pids/cpu hierarchies), or drop --memory/--pids/--cpus"
            : "run under `systemd-run --user --scope -p Delegate=yes sbx ...`, or chown a cgroup "
              "v2 subtree with the memory, pids and cpu controllers to your user and start sbx in "
              "it, or run as root; or drop --memory/--pids/--cpus";
    if (limits.required) throw Error("cannot enforce resource limits " + what, fix);
    if (warn) warn(fmt::format("resource limits NOT enforced {}. Fix: {}", what, fix));
    return cg;
  }
  cg.state_ = std::make_unique<State>();
  cg.state_->backend = std::move(backend);
  cg.state_->limits = limits;
  for (const auto& dir : cg.state_->backend->dirs()) {
    const std::string join = dir + "/" + cg.state_->backend->join_file();
    const int fd = ::open(join.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      throw Error(fmt::format("cannot open {}: {}", join, std::strerror(errno)),
                  "check that this user may write the cgroup it created");
    }
    cg.state_->join_fds.push_back(fd);
  }
  return cg;
}

bool SandboxCgroup::active() const {
  return state_ && state_->backend;
}

const std::vector<int>& SandboxCgroup::join_fds() const {
  static const std::vector<int> none;
  return active() ? state_->join_fds : none;
}

void SandboxCgroup::close_join_fds() {
  if (active()) state_->close_join_fds();
}

Stats SandboxCgroup::stats() const {
  if (!active()) return {};
  if (state_->retired) return state_->final_stats;
  state_->sample();
  return state_->usage(state_->backend->counters());
}

void SandboxCgroup::poll_events(const EventSink& sink) {
  if (!active() || state_->retired) return;
  state_->sample();
  state_->report(state_->backend->counters(), sink);
}

void SandboxCgroup::State::report(const LimitCounters& now, const EventSink& sink) {
  auto& seen = reported;
  if (now.oom_kills > seen.oom_kills || now.oom_group_kills > seen.oom_group_kills) {
    Event e;
    e.type = "limit";
    e.data = {{"kind", "oom_kill"},
              {"count", now.oom_kills - std::min(now.oom_kills, seen.oom_kills)},
              {"total", now.oom_kills},
              {"cgroup", backend->describe()}};
    if (limits.memory_bytes) e.data["limit_bytes"] = *limits.memory_bytes;
    if (now.oom_group_kills > seen.oom_group_kills) e.data["group_kill"] = true;
    if (sink) sink(e);
  }
  if (now.pids_max_hits > seen.pids_max_hits) {
    Event e;
    e.type = "limit";
    e.data = {{"kind", "pids_max"},
              {"count", now.pids_max_hits - seen.pids_max_hits},
              {"total", now.pids_max_hits},
              {"cgroup", backend->describe()}};
    if (limits.pids) e.data["limit"] = *limits.pids;
    if (sink) sink(e);
  }
  seen = now;
}

void SandboxCgroup::kill_all() {
  if (active() && !state_->retired) state_->backend->kill_all();
}

void SandboxCgroup::retire(const EventSink& sink) {
  if (!active() || state_->retired) return;
  // One sample and one read of the counters serve the last events and the
  // final usage (the sandbox is empty: nothing changes between them).
  state_->sample();
  const LimitCounters now = state_->backend->counters();
  if (sink) state_->report(now, sink);
  state_->final_stats = state_->usage(now);
  state_->retired = true;
  try {
    state_->remover = std::thread([backend = state_->backend.get()] { backend->destroy(); });
  } catch (...) {  // std::system_error: ~State removes the group on this thread
  }
}

}  // namespace sbx::cgroups
