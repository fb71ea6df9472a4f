// /run/secrets inside the sandbox (see secret_mounts.hpp). Supervisor side
// only: everything is decided and allocated here, before clone; the sandbox
// init applies the ops like any other (mounts_apply.cpp).
#include "runtime/secret_mounts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "runtime/mounts_internal.hpp"

namespace sbx::runtime {
namespace {

constexpr const char* kRun = "/run";
constexpr const char* kSecretsDir = "/run/secrets";

MountOp* find_op(std::vector<MountOp>& ops, const std::string& target) {
  for (auto& op : ops)
    if (op.target == target) return &op;
  return nullptr;
}

// /run as a tmpfs of mount points with the host's entries bound back: the
// only way to get a new directory into a host tree that is read-only inside.
void overlay_run(std::vector<MountOp>& ops) {
  MountOp run;
  run.kind = MountKind::tmpfs;
  run.target = kRun;
  run.mode = 0755;
  run.size_bytes = 1 << 20;
  run.read_only_at_end = true;  // like the host's /run inside: not writable
  DIR* d = ::opendir(kRun);
  if (d == nullptr) {
    throw Error(fmt::format("--secret: cannot list {}: {}", kRun, std::strerror(errno)),
                "check that /run exists and is readable");
  }
  std::vector<MountOp> rebinds;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == "secrets") continue;
    std::string path = fmt::format("{}/{}", kRun, name);
    struct stat st {};
    // A symlink cannot be recreated by a mount; /run holds none that a
    // command needs (its targets, e.g. /var/run -> /run, still resolve).
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode))
      continue;
    if (MountOp* existing = find_op(ops, path)) {
      // The policy already mounts something here (a host-socket mask, a
      // hidden or writable path): only its mount point has to exist now.
      existing->create_target = true;
      existing->target_is_dir = S_ISDIR(st.st_mode);
      continue;
    }
    MountOp op;
    op.kind = MountKind::bind_ro;
    op.target = path;
    op.source = path;
    op.target_is_dir = S_ISDIR(st.st_mode);
    op.create_target = true;
    rebinds.push_back(std::move(op));
  }
  ::closedir(d);
  ops.push_back(std::move(run));
  for (auto& op : rebinds) ops.push_back(std::move(op));
}

}  // namespace

void plan_secret_mounts(const std::vector<Secret>& secrets, MountPlan& plan) {
  if (secrets.empty()) return;
  std::set<std::string> names;
  std::uint64_t total = 0;
  for (const auto& s : secrets) {
    if (s.name.empty() || s.name.find('/') != std::string::npos || s.name[0] == '.') {
      throw Error(fmt::format("invalid secret name '{}'", s.name),
                  "secret names are file names: letters, digits, '_', '.', '-'");
    }
    if (!names.insert(s.name).second) {
      throw Error(fmt::format("--secret {} is given twice", s.name), "give each secret once");
    }
    total += s.value.size();
  }
  auto& ops = plan.data().ops;
  const MountOp* run = find_op(ops, kRun);
  if (run != nullptr && run->kind != MountKind::tmpfs) {
    throw Error("--secret needs /run/secrets, but the policy mounts /run itself",
                "drop the writable/hidden /run from the profile, or do not use --secret");
  }
  struct stat st {};
  const bool host_has_dir = ::lstat(kSecretsDir, &st) == 0 && S_ISDIR(st.st_mode);
  if (run == nullptr && !host_has_dir) overlay_run(ops);

  MountOp dir;
  dir.kind = MountKind::tmpfs;
  dir.target = kSecretsDir;
  dir.mode = 0500;  // the command's uid: list and read, nothing else
  dir.size_bytes = std::max<std::uint64_t>(64 << 10, 2 * total + (64 << 10));
  dir.read_only_at_end = true;
  dir.create_target = !host_has_dir;
  if (MountOp* existing = find_op(ops, kSecretsDir)) {
    throw Error(fmt::format("--secret: the policy already mounts {} ({})", kSecretsDir,
                            to_string(existing->kind)),
                "remove /run/secrets from the profile's paths");
  }
  ops.push_back(std::move(dir));
  for (const auto& s : secrets) {
    MountOp file;
    file.kind = MountKind::generated;
    file.target = fmt::format("{}/{}", kSecretsDir, s.name);
    file.source = "secret-" + s.name;  // file name in the staging tmpfs
    file.target_is_dir = false;
    file.create_target = true;
    file.file_mode = 0400;
    file.generated_content = s.value;
    ops.push_back(std::move(file));
  }
  sort_mount_ops(ops);
  plan.data().op_fds.assign(ops.size(), -1);
}

void add_secret_environment(const std::vector<Secret>& secrets, std::vector<std::string>& env) {
  for (const auto& s : secrets) {
    if (s.env.empty()) continue;
    const std::string prefix = s.env + "=";
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
    env.push_back(prefix + s.value);
  }
}

}  // namespace sbx::runtime
