// The run report: one JSON document at exit, built from the same records
// the audit log gets (docs/audit.md "Run report").
#include <algorithm>

#include <fmt/format.h>

#include "audit/audit.hpp"

namespace sbx::audit {
namespace {

std::string seccomp_name(SeccompMode m) {
  switch (m) {
    case SeccompMode::default_policy:
      return "default";
    case SeccompMode::strict:
      return "strict";
    case SeccompMode::none:
      return "none";
  }
  return "unknown";
}

std::string landlock_name(LandlockMode m) {
  switch (m) {
    case LandlockMode::best_effort:
      return "best_effort";
    case LandlockMode::required:
      return "required";
    case LandlockMode::off:
      return "off";
  }
  return "unknown";
}

nlohmann::json top(const std::map<std::string, std::uint64_t>& counts, std::size_t n,
                   const char* key) {
  std::vector<std::pair<std::string, std::uint64_t>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < v.size() && i < n; ++i)
    out.push_back({{key, v[i].first}, {"count", v[i].second}});
  return out;
}

}  // namespace

void RunReport::add(const nlohmann::json& r) {
  const std::string type = r.value("type", std::string());
  ++counts_[type];
  if (type == "syscall_denied") ++denied_syscalls_[r.value("syscall", std::string("?"))];
  if (type == "violation" && r.value("kind", std::string()) == "syscall_denied_suppressed" &&
      r.contains("syscalls") && r["syscalls"].is_object()) {
    for (auto& [name, n] : r["syscalls"].items())
      if (n.is_number_unsigned()) denied_syscalls_[name] += n.get<std::uint64_t>();
  }
  if (type == "limit") ++limits_[r.value("kind", std::string("?"))];
  const auto attempts = blocked_attempts(r);  // a summary stands for many
  blocked_ += attempts.total;
  for (const auto& [d, n] : attempts.destinations) rank_blocked(d, n);
  blocked_not_ranked_ += attempts.unlisted;
}

void RunReport::rank_blocked(const std::string& destination, std::uint64_t n) {
  if (destination.empty()) return;
  if (auto it = blocked_destinations_.find(destination); it != blocked_destinations_.end()) {
    it->second += n;
  } else if (blocked_destinations_.size() < kMaxRankedDestinations) {
    blocked_destinations_.emplace(destination, n);
  } else {
    blocked_not_ranked_ += n;
  }
}

nlohmann::json RunReport::finish(const SandboxIdentity& who, const Policy& policy,
                                 const RunResult& result) const {
  nlohmann::json j;
  j["v"] = kSchemaVersion;
  j["sandbox_id"] = who.id;
  j["sandbox"] = who.name;
  j["profile"] = policy.profile;
  j["exit_code"] = result.exit_code;
  j["signal"] = result.term_signal;
  j["timed_out"] = result.timed_out;
  j["duration_ms"] = result.duration.count();
  j["usage"] = {{"user_cpu_us", result.usage.user_cpu.count()},
                {"system_cpu_us", result.usage.system_cpu.count()},
                {"peak_memory_bytes", result.usage.peak_memory_bytes},
                {"peak_pids", result.usage.peak_pids}};
  j["events"] = counts_;
  j["blocked"] = {{"total", blocked_},
                  {"top_destinations", top(blocked_destinations_, 10, "destination")}};
  if (blocked_not_ranked_ > 0) j["blocked"]["not_ranked"] = blocked_not_ranked_;
  j["syscalls_denied"] = denied_syscalls_;
  j["limits"] = limits_;
  // What the policy asked for; the runtime does not (yet) report what the
  // kernel granted, so "requested" is the honest word.
  j["confinement_requested"] = {{"seccomp", seccomp_name(policy.process.seccomp)},
                                {"landlock", landlock_name(policy.process.landlock)}};
  return j;
}

}  // namespace sbx::audit
