// cgroup v1 fallback for hybrid hosts (controllers bound to v1 hierarchies):
// one directory per controller, <own group>/sbx/<name>, each limit in its
// controller's files. Nested under this process's own group in each
// hierarchy so that limits imposed on sbx itself keep applying.
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <system_error>

#include "cgroups/backend.hpp"

namespace sbx::cgroups {
namespace {

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

class V1Group final : public Backend {
 public:
  // controller -> directory (co-mounted controllers share one directory).
  explicit V1Group(std::map<std::string, std::string> dirs) : dirs_(std::move(dirs)) {}
  ~V1Group() override { destroy(); }

  std::string describe() const override {
    std::string out;
    for (const auto& d : unique_dirs()) out += (out.empty() ? "" : ", ") + d;
    return out;
  }

  std::vector<std::string> dirs() const override { return unique_dirs(); }
  const char* join_file() const override { return "tasks"; }

  Stats read_stats() const override {
    Stats s;
    if (auto d = dir("memory")) s.peak_memory_bytes = number(*d + "/memory.max_usage_in_bytes");
    if (auto d = dir("cpuacct")) s.cpu_usage_us = number(*d + "/cpuacct.usage") / 1000;
    if (auto d = dir("pids")) s.peak_pids = number(*d + "/pids.peak");  // 0 when absent
    return s;
  }

  std::uint64_t current_memory() const override {
    auto d = dir("memory");
    return d ? number(*d + "/memory.usage_in_bytes") : 0;
  }
  std::uint64_t current_pids() const override {
    auto d = dir("pids");
    return d ? number(*d + "/pids.current") : 0;
  }

  LimitCounters counters() const override {
    LimitCounters c;
    if (auto d = dir("memory")) {
      // "oom_kill N" in memory.oom_control since 4.13.
      if (auto t = try_read_text_file(*d + "/memory.oom_control"))
        c.oom_kills = parse_keyed_file(*t)["oom_kill"];
    }
    if (auto d = dir("pids")) {
      if (auto t = try_read_text_file(*d + "/pids.events"))
        c.pids_max_hits = parse_keyed_file(*t)["max"];
    }
    return c;
  }

  void kill_all() override {
    // v1 has no cgroup.kill; pids.max (when set) bounds a fork bomb racing us.
    for (const auto& d : unique_dirs()) kill_listed_processes(d);
  }

  void destroy() noexcept override {
    if (dirs_.empty()) return;
    for (const auto& d : unique_dirs()) {
      // An empty group (the usual end: the sandbox is gone) goes at once.
      // Any other answer -- EBUSY for tasks left, or a refusal checked
      // before the kernel looks at the tasks (EACCES, EPERM) -- has this
      // directory's tasks killed first (v1 has no cgroup.kill), then the
      // removal retried.
      if (::rmdir(d.c_str()) != 0 && errno != ENOENT) {
        try {
          kill_listed_processes(d);
        } catch (...) {
        }
        remove_group_dir(d);
      }
      auto parent = d.substr(0, d.rfind('/'));
      ::rmdir(parent.c_str());  // fails while another sandbox uses it: fine
    }
    dirs_.clear();
  }

 private:
  std::optional<std::string> dir(const std::string& controller) const {
    auto it = dirs_.find(controller);
    if (it == dirs_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> unique_dirs() const {
    std::vector<std::string> out;
    for (const auto& [c, d] : dirs_)
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    return out;
  }
  static std::uint64_t number(const std::string& path) {
    auto t = try_read_text_file(path);
    if (!t) return 0;
    try {
      return parse_limit_value(*t).value_or(0);
    } catch (const std::exception&) {
      return 0;
    }
  }

  std::map<std::string, std::string> dirs_;
};

std::string describe_error(const std::system_error& e) {
  std::string what = e.what();
  auto colon = what.find(": ");
  return (colon == std::string::npos ? what : what.substr(0, colon)) + ": " +
         errno_text(e.code().value());
}

}  // namespace

std::unique_ptr<Backend> create_v1(const LimitsPolicy& limits, const std::string& name,
                                   const Discovery& d, std::vector<std::string>& why) {
  auto needs = Needs::from(limits);
  std::vector<std::string> required;
  if (needs.memory) required.push_back("memory");
  if (needs.pids) required.push_back("pids");
  if (needs.cpu) required.push_back("cpu");
  // For the usage report only; skipped silently when unavailable.
  std::vector<std::string> optional_ctrls = {"memory", "pids", "cpuacct"};

  std::map<std::string, std::string> dirs;
  std::vector<std::string> created;
  auto cleanup = [&] {
    for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());
  };
  auto make = [&](const std::string& controller) -> std::string {
    auto own = d.v1_own_dir(controller);
    if (!own)
      throw std::runtime_error("no cgroup v1 hierarchy carries the " + controller + " controller");
    std::string parent = *own + "/" + kParentName;
    std::string dir = parent + "/" + name;
    if (std::find(created.begin(), created.end(), dir) != created.end()) return dir;
    // A concurrent sbx may remove the empty parent between our mkdirs: retry.
    for (int attempt = 0;; ++attempt) {
      if (::mkdir(parent.c_str(), 0755) == 0)
        created.push_back(parent);
      else if (errno != EEXIST)
        throw std::system_error(errno, std::generic_category(), "mkdir " + parent);
      if (::mkdir(dir.c_str(), 0755) == 0) break;
      if (errno != ENOENT || attempt >= 5)
        throw std::system_error(errno, std::generic_category(), "mkdir " + dir);
    }
    created.push_back(dir);
    return dir;
  };

  try {
    for (const auto& c : required) dirs[c] = make(c);
  } catch (const std::system_error& e) {
    why.push_back("cgroup v1: " + describe_error(e));
    cleanup();
    return nullptr;
  } catch (const std::exception& e) {
    why.push_back(std::string("cgroup v1: ") + e.what());
    cleanup();
    return nullptr;
  }
  for (const auto& c : optional_ctrls) {
    if (dirs.count(c)) continue;
    try {
      dirs[c] = make(c);
    } catch (const std::exception&) {
    }
  }

  try {
    if (limits.memory_bytes) {
      auto md = dirs.at("memory");
      write_text_file(md + "/memory.limit_in_bytes", std::to_string(*limits.memory_bytes));
      // memsw = memory + swap; --memory alone means no swap on top. The file
      // exists only with swap accounting (CONFIG_MEMCG_SWAP, swapaccount=1).
      if (exists(md + "/memory.memsw.limit_in_bytes")) {
        write_text_file(md + "/memory.memsw.limit_in_bytes",
                        std::to_string(*limits.memory_bytes + limits.swap_bytes.value_or(0)));
      } else if (limits.swap_bytes) {
        throw std::runtime_error("memory.memsw.limit_in_bytes is missing (no swap accounting)");
      }
    } else if (limits.swap_bytes) {
      throw std::runtime_error(
          "a swap limit without a memory limit cannot be expressed in cgroup v1");
    }
    if (limits.pids) write_text_file(dirs.at("pids") + "/pids.max", std::to_string(*limits.pids));
    if (limits.cpus) {
      auto cd = dirs.at("cpu");
      write_text_file(cd + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
      write_text_file(cd + "/cpu.cfs_quota_us", std::to_string(cpu_quota_us(*limits.cpus)));
    }
  } catch (const std::system_error& e) {
    why.push_back("cgroup v1: " + describe_error(e));
    cleanup();
    return nullptr;
  } catch (const std::exception& e) {
    why.push_back(std::string("cgroup v1: ") + e.what());
    cleanup();
    return nullptr;
  }
  return std::make_unique<V1Group>(std::move(dirs));
}

std::vector<std::string> v1_parent_dirs(const Discovery& d) {
  std::vector<std::string> out;
  for (const char* c : {"memory", "pids", "cpu", "cpuacct"}) {
    if (auto own = d.v1_own_dir(c)) {
      std::string p = *own + "/" + kParentName;
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
  }
  return out;
}

}  // namespace sbx::cgroups
