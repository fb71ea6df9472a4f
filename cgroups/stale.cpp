// Removal of groups left behind when a supervisor died without running its
// destructor (kill -9, power loss of a container...). A group's name carries
// its supervisor's pid and start time; if that process is gone, the group is
// an orphan: its leftover processes are killed (a sandbox must not outlive
// its supervisor) and the directory removed.
#include <dirent.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>

#include "cgroups/backend.hpp"

namespace sbx::cgroups {
namespace {

void remove_stale_in(const std::string& parent, const WarningSink& warn) {
  // Only parents we may modify; someone else's groups are not ours to judge.
  if (::access(parent.c_str(), W_OK) != 0) return;
  DIR* dir = ::opendir(parent.c_str());
  if (!dir) return;
  std::vector<std::string> stale;
  while (auto* ent = ::readdir(dir)) {
    if (ent->d_type != DT_DIR) continue;
    auto owner = parse_group_name(ent->d_name);
    if (owner && !owner_alive(*owner)) stale.emplace_back(ent->d_name);
  }
  ::closedir(dir);
  for (const auto& name : stale) {
    std::string group = parent + "/" + name;
    if (::access((group + "/cgroup.kill").c_str(), W_OK) == 0) {
      try {
        write_text_file(group + "/cgroup.kill", "1");
      } catch (const std::exception&) {
      }
    }
    kill_listed_processes(group);
    if (!remove_group_dir(group) && warn)
      warn(fmt::format("cannot remove the stale cgroup {} of a dead sandbox: {}", group,
                       errno_text(errno)));
  }
  ::rmdir(parent.c_str());  // only succeeds when no other sandbox is using it
}

}  // namespace

void remove_stale_groups(const WarningSink& warn) {
  remove_stale_groups(Discovery::read(), warn);
}

void remove_stale_groups(const Discovery& d, const WarningSink& warn) {
  for (const auto& p : v2_parent_dirs(d)) remove_stale_in(p, warn);
  for (const auto& p : v1_parent_dirs(d)) remove_stale_in(p, warn);
}

}  // namespace sbx::cgroups
