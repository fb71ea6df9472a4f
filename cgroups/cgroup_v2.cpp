// cgroup v2 backend: one directory per sandbox, either under <mount>/sbx
// (root, real root cgroup) or under <own group>/sbx in a delegated subtree.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "cgroups/backend.hpp"

namespace sbx::cgroups {
namespace {

std::set<std::string> controller_set(const std::string& file) {
  std::set<std::string> out;
  auto text = try_read_text_file(file);
  if (!text) return out;
  std::istringstream in(*text);
  std::string c;
  while (in >> c) out.insert(c);
  return out;
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// mkdir that accepts an existing directory; throws with the path otherwise.
void make_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw std::system_error(errno, std::generic_category(), "mkdir " + dir);
}

// Enables each wanted controller in dir/cgroup.subtree_control that is not on
// yet. Writes one at a time so that the error names the controller.
void enable_controllers(const std::string& dir, const std::vector<std::string>& wanted) {
  auto on = controller_set(dir + "/cgroup.subtree_control");
  for (const auto& c : wanted) {
    if (on.count(c)) continue;
    write_text_file(dir + "/cgroup.subtree_control", "+" + c);
  }
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// "pid 123 (sh), pid 456 (make)": the processes listed in a group's
// cgroup.procs, at most four named; empty when it lists none.
std::string describe_procs(const std::string& dir) {
  std::istringstream in(try_read_text_file(dir + "/cgroup.procs").value_or(""));
  std::vector<std::string> named;
  std::string pid;
  size_t count = 0;
  while (in >> pid) {
    if (++count > 4) continue;
    auto comm = try_read_text_file("/proc/" + pid + "/comm").value_or("?\n");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    named.push_back(fmt::format("pid {} ({})", pid, comm));
  }
  if (count > 4) named.push_back(fmt::format("{} more", count - 4));
  return join(named, ", ");
}

// Enables `wanted` in the delegated group `own` that this process has just
// left for its leaf. The kernel refuses (EBUSY) while `own` still holds a
// task. Either another process is in it: returned, described, for the
// caller's warning. Or one of this process's own threads was exiting when
// the rest moved: the kernel moves only live threads, and the exiting one
// stays counted in `own` until it is gone, a moment later (the launch's side
// threads, or an embedding program's, end at any time). cgroup.procs lists
// no process then; that is waited out, for up to two seconds.
std::optional<std::string> enable_after_move(const std::string& own,
                                             const std::vector<std::string>& wanted) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    try {
      enable_controllers(own, wanted);
      return std::nullopt;
    } catch (const std::system_error& e) {
      if (e.code().value() != EBUSY) throw;
    }
    auto others = describe_procs(own);
    if (!others.empty()) return others;
    if (std::chrono::steady_clock::now() >= deadline)
      return std::string("a thread of this process that did not finish exiting");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

class V2Group final : public Backend {
 public:
  V2Group(std::string dir, std::string parent) : dir_(std::move(dir)), parent_(std::move(parent)) {}
  ~V2Group() override { destroy(); }

  std::string describe() const override { return dir_; }
  std::vector<std::string> dirs() const override { return {dir_}; }
  const char* join_file() const override { return "cgroup.procs"; }

  Stats read_stats() const override {
    Stats s;
    if (auto t = try_read_text_file(dir_ + "/memory.peak")) {  // 5.19+
      try {
        s.peak_memory_bytes = parse_limit_value(*t).value_or(0);
      } catch (const std::exception&) {
      }
    }
    if (auto t = try_read_text_file(dir_ + "/cpu.stat")) {
      auto kv = parse_keyed_file(*t);
      if (kv.count("usage_usec")) s.cpu_usage_us = kv["usage_usec"];
    }
    if (auto t = try_read_text_file(dir_ + "/pids.peak")) {  // 6.13+ (absent on 6.1)
      try {
        s.peak_pids = parse_limit_value(*t).value_or(0);
      } catch (const std::exception&) {
      }
    }
    return s;
  }

  std::uint64_t current_memory() const override { return read_number("memory.current"); }
  std::uint64_t current_pids() const override { return read_number("pids.current"); }

  LimitCounters counters() const override {
    LimitCounters c;
    if (auto t = try_read_text_file(dir_ + "/memory.events")) {
      auto kv = parse_keyed_file(*t);
      c.oom_kills = kv["oom_kill"];
      c.oom_group_kills = kv["oom_group_kill"];  // 5.18+
    }
    if (auto t = try_read_text_file(dir_ + "/pids.events"))
      c.pids_max_hits = parse_keyed_file(*t)["max"];
    return c;
  }

  void kill_all() override {
    // cgroup.kill (5.14) kills every task atomically, forks in flight included.
    if (exists(dir_ + "/cgroup.kill")) {
      try {
        write_text_file(dir_ + "/cgroup.kill", "1");
        return;
      } catch (const std::exception&) {
      }
    }
    // Older kernels: freeze so nothing forks while we walk cgroup.procs;
    // frozen tasks still die of SIGKILL in the v2 freezer.
    bool frozen = false;
    try {
      write_text_file(dir_ + "/cgroup.freeze", "1");
      frozen = true;
    } catch (const std::exception&) {
    }
    kill_listed_processes(dir_);
    if (frozen) {
      try {
        write_text_file(dir_ + "/cgroup.freeze", "0");
      } catch (const std::exception&) {
      }
    }
  }

  void destroy() noexcept override {
    if (dir_.empty()) return;
    try {
      kill_all();
    } catch (...) {
    }
    remove_group_dir(dir_);
    // The shared parent goes too once the last sandbox left it; another
    // sbx may be creating a group in it right now, so EBUSY/ENOTEMPTY is fine.
    ::rmdir(parent_.c_str());
    dir_.clear();
  }

 private:
  std::uint64_t read_number(const char* file) const {
    auto t = try_read_text_file(dir_ + "/" + file);
    if (!t) return 0;
    try {
      return parse_limit_value(*t).value_or(0);
    } catch (const std::exception&) {
      return 0;
    }
  }

  std::string dir_;
  std::string parent_;
};

std::vector<std::string> needed_controllers(const Needs& n) {
  std::vector<std::string> out;
  if (n.memory) out.push_back("memory");
  if (n.pids) out.push_back("pids");
  if (n.cpu) out.push_back("cpu");
  return out;
}

// Controllers to enable: the ones the limits need, plus memory and pids for
// the usage report when the parent offers them (cheap, no limit set).
std::vector<std::string> controllers_to_enable(const Needs& n,
                                               const std::set<std::string>& offered) {
  auto out = needed_controllers(n);
  for (const char* extra : {"memory", "pids"})
    if (offered.count(extra) && std::find(out.begin(), out.end(), extra) == out.end())
      out.push_back(extra);
  return out;
}

std::vector<std::string> missing(const std::vector<std::string>& needed,
                                 const std::set<std::string>& offered) {
  std::vector<std::string> out;
  for (const auto& c : needed)
    if (!offered.count(c)) out.push_back(c);
  return out;
}

// Writes every limit into a fresh group directory. Throws on failure.
void write_limits(const std::string& dir, const LimitsPolicy& limits) {
  if (limits.memory_bytes) {
    write_text_file(dir + "/memory.max", std::to_string(*limits.memory_bytes));
    // Kill the whole sandbox on OOM rather than leaving it half-dead.
    write_text_file(dir + "/memory.oom.group", "1");
  }
  if (limits.memory_bytes || limits.swap_bytes) {
    // --memory alone means no swap on top: the limit is a real bound.
    std::uint64_t swap = limits.swap_bytes.value_or(0);
    if (exists(dir + "/memory.swap.max")) {
      write_text_file(dir + "/memory.swap.max", std::to_string(swap));
    } else if (limits.swap_bytes) {
      throw std::runtime_error(
          "memory.swap.max is missing (kernel without swap accounting), so --swap cannot be "
          "enforced");
    }
  }
  if (limits.pids) write_text_file(dir + "/pids.max", std::to_string(*limits.pids));
  if (limits.cpus) write_text_file(dir + "/cpu.max", format_cpu_max(*limits.cpus));
}

// Creates parent/<name> with limits; parent's subtree must already offer the
// controllers. Cleans up and rethrows on failure.
std::unique_ptr<Backend> make_group(const std::string& base, const LimitsPolicy& limits,
                                    const std::string& name, const Needs& needs) {
  std::string parent = base + "/" + kParentName;
  std::string dir = parent + "/" + name;
  // A concurrent sbx may remove an empty parent between our mkdirs: retry.
  for (int attempt = 0;; ++attempt) {
    try {
      make_dir(parent);
      enable_controllers(
          parent, controllers_to_enable(needs, controller_set(parent + "/cgroup.controllers")));
      if (::mkdir(dir.c_str(), 0755) != 0)
        throw std::system_error(errno, std::generic_category(), "mkdir " + dir);
      break;
    } catch (const std::system_error& e) {
      if (e.code().value() != ENOENT || attempt >= 5) throw;
    }
  }
  try {
    write_limits(dir, limits);
    return std::make_unique<V2Group>(dir, parent);
  } catch (...) {
    ::rmdir(dir.c_str());
    ::rmdir(parent.c_str());
    throw;
  }
}

std::string describe_error(const std::exception& e) {
  if (auto* se = dynamic_cast<const std::system_error*>(&e)) {
    // system_error's what() is "<context>: <strerror>"; add the errno name.
    std::string what = se->what();
    auto colon = what.find(": ");
    std::string ctx = colon == std::string::npos ? what : what.substr(0, colon);
    return ctx + ": " + errno_text(se->code().value());
  }
  return e.what();
}

// Root on the real root cgroup: <mount>/sbx/<name>. The root cgroup is exempt
// from the no-internal-processes rule, so controllers can be enabled there.
std::unique_ptr<Backend> try_root(const LimitsPolicy& limits, const std::string& name,
                                  const std::string& mount, const Needs& needs,
                                  std::vector<std::string>& why) {
  auto offered = controller_set(mount + "/cgroup.controllers");
  auto lack = missing(needed_controllers(needs), offered);
  if (!lack.empty()) {
    why.push_back(fmt::format(
        "cgroup v2 at {} does not offer the {} controller(s) (bound to cgroup v1 on this host?)",
        mount, join(lack, ", ")));
    return nullptr;
  }
  try {
    enable_controllers(mount, controllers_to_enable(needs, offered));
    return make_group(mount, limits, name, needs);
  } catch (const std::exception& e) {
    why.push_back("cgroup v2 as root: " + describe_error(e));
    return nullptr;
  }
}

// A delegated subtree: this process's own group is writable by us.
std::unique_ptr<Backend> try_delegated(const LimitsPolicy& limits, const std::string& name,
                                       std::string own, const Needs& needs,
                                       std::vector<std::string>& why, const Companion& companion) {
  // A supervisor that an earlier sbx left in the leaf: the delegated group is its parent.
  auto slash = own.rfind('/');
  if (slash != std::string::npos && own.substr(slash + 1) == kSupervisorLeaf) own.resize(slash);
  for (const char* f : {"", "/cgroup.procs", "/cgroup.subtree_control"}) {
    std::string p = own + f;
    if (::access(p.c_str(), W_OK) != 0) {
      why.push_back(fmt::format("no delegated cgroup v2 subtree: {} is not writable ({})", p,
                                errno_text(errno)));
      return nullptr;
    }
  }
  auto offered = controller_set(own + "/cgroup.controllers");
  auto lack = missing(needed_controllers(needs), offered);
  if (!lack.empty()) {
    why.push_back(fmt::format("the delegated cgroup {} does not offer the {} controller(s)", own,
                              join(lack, ", ")));
    return nullptr;
  }
  auto wanted = controllers_to_enable(needs, offered);
  auto enabled = controller_set(own + "/cgroup.subtree_control");
  try {
    if (!missing(wanted, enabled).empty()) {
      // No internal processes: before own may distribute controllers, the
      // supervisor moves itself into a leaf. Other processes in own (e.g. the
      // shell that started sbx) would still block it: reported below.
      std::string leaf = own + "/" + kSupervisorLeaf;
      make_dir(leaf);
      write_text_file(leaf + "/cgroup.procs", std::to_string(::getpid()));
      // sbx's early init, made before: it goes along (it would stay behind
      // in own and block it like any other process).
      if (const pid_t c = companion ? companion() : 0; c > 0)
        write_text_file(leaf + "/cgroup.procs", std::to_string(c));
      if (auto others = enable_after_move(own, wanted)) {
        why.push_back(fmt::format(
            "the delegated cgroup {} also holds other processes ({}), so it cannot pass "
            "controllers to sandbox groups (cgroup v2 'no internal processes' rule)",
            own, *others));
        return nullptr;
      }
    }
    return make_group(own, limits, name, needs);
  } catch (const std::exception& e) {
    why.push_back("delegated cgroup v2 at " + own + ": " + describe_error(e));
    return nullptr;
  }
}

}  // namespace

std::unique_ptr<Backend> create_v2(const LimitsPolicy& limits, const std::string& name,
                                   const Discovery& d, std::vector<std::string>& why,
                                   const Companion& companion) {
  auto needs = Needs::from(limits);
  auto mount = d.v2_mount();
  if (!mount) {
    why.push_back("no cgroup v2 file system is mounted");
    return nullptr;
  }
  auto own = d.v2_own_dir();
  // Root whose view of the hierarchy starts at the real root: <mount>/sbx.
  if (::geteuid() == 0 && own && unified_path(d.self) == std::string("/")) {
    if (auto g = try_root(limits, name, *mount, needs, why)) return g;
    // Root in a namespace root (container) falls through to the delegated path.
  } else if (::geteuid() == 0 && own) {
    std::vector<std::string> ignored;
    if (auto g = try_root(limits, name, *mount, needs, ignored)) return g;
  }
  if (!own) {
    why.push_back("this process has no cgroup v2 path in /proc/self/cgroup");
    return nullptr;
  }
  if (*own == *mount) {
    if (::geteuid() != 0)
      why.push_back(
          fmt::format("unprivileged and no delegated cgroup v2 subtree ({} is the root)", *own));
    return nullptr;
  }
  return try_delegated(limits, name, *own, needs, why, companion);
}

std::vector<std::string> v2_parent_dirs(const Discovery& d) {
  std::vector<std::string> out;
  if (auto mount = d.v2_mount()) out.push_back(*mount + "/" + kParentName);
  if (auto own = d.v2_own_dir()) {
    std::string o = *own;
    auto slash = o.rfind('/');
    if (slash != std::string::npos && o.substr(slash + 1) == kSupervisorLeaf) o.resize(slash);
    std::string p = o + "/" + kParentName;
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  return out;
}

}  // namespace sbx::cgroups
