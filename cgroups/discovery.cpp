// Where the cgroup file systems are and where this process sits in them;
// plus the kill/remove helpers both backends share.
#include <signal.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cgroups/backend.hpp"

namespace sbx::cgroups {
namespace {

// Maps a path from /proc/self/cgroup onto a mount whose root may be a
// sub-directory of the hierarchy (bind mounts, cgroup namespaces).
std::optional<std::string> dir_in_mount(const CgroupMount& m, const std::string& path) {
  if (m.root == "/") return path == "/" ? m.mount_point : m.mount_point + path;
  if (path == m.root) return m.mount_point;
  if (path.rfind(m.root + "/", 0) == 0) return m.mount_point + path.substr(m.root.size());
  return std::nullopt;
}

// A /proc file that is missing only on a kernel without the feature
// (ENOENT: nothing to find). Any other failure -- out of fds, out of memory
// -- throws: read as "no cgroup mounted", it would be a wrong diagnosis
// with a wrong fix.
std::optional<std::string> read_proc_file(const char* path) {
  auto text = try_read_text_file(path);
  if (!text && errno != ENOENT)
    throw Error(fmt::format("cannot read {}: {}", path, std::strerror(errno)),
                "check that /proc is mounted and readable");
  return text;
}

}  // namespace

Discovery Discovery::read() {
  Discovery d;
  if (auto mi = read_proc_file("/proc/self/mountinfo")) d.mounts = parse_cgroup_mounts(*mi);
  if (auto pc = read_proc_file("/proc/self/cgroup")) d.self = parse_proc_cgroup(*pc);
  return d;
}

std::optional<std::string> Discovery::v2_mount() const {
  for (const auto& m : mounts)
    if (m.v2) return m.mount_point;
  return std::nullopt;
}

std::optional<std::string> Discovery::v2_own_dir() const {
  auto path = unified_path(self);
  if (!path) return std::nullopt;
  for (const auto& m : mounts)
    if (m.v2) return dir_in_mount(m, *path);
  return std::nullopt;
}

std::optional<std::string> Discovery::v1_own_dir(const std::string& controller) const {
  auto path = v1_path(self, controller);
  if (!path) return std::nullopt;
  for (const auto& m : mounts) {
    if (m.v2) continue;
    for (const auto& c : m.controllers)
      if (c == controller) return dir_in_mount(m, *path);
  }
  return std::nullopt;
}

std::string errno_text(int err) {
  const char* name = ::strerrorname_np(err);
  return fmt::format("{} ({})", name ? name : "errno " + std::to_string(err), std::strerror(err));
}

bool kill_listed_processes(const std::string& dir) {
  // Without cgroup.kill a fork bomb can race a read-then-kill loop; pids.max
  // bounds it and repeated passes catch the children forked meanwhile.
  for (int pass = 0; pass < 200; ++pass) {
    auto procs = try_read_text_file(dir + "/cgroup.procs");
    if (!procs) return false;
    bool any = false;
    std::size_t pos = 0;
    while (pos < procs->size()) {
      auto nl = procs->find('\n', pos);
      if (nl == std::string::npos) nl = procs->size();
      auto line = procs->substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) continue;
      pid_t pid = static_cast<pid_t>(std::strtol(line.c_str(), nullptr, 10));
      if (pid > 0 && ::kill(pid, SIGKILL) == 0) any = true;
    }
    if (!any) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(pass < 10 ? 1 : 10));
  }
  return false;
}

bool remove_group_dir(const std::string& dir) {
  // Killed tasks leave the group asynchronously: retry EBUSY for up to ~2 s.
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY) return false;
    if (attempt % 20 == 19) kill_listed_processes(dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace sbx::cgroups
