// Private to the filesystem part of runtime/: the prepared mount plan.
//
// The supervisor (prepare_mount_plan) fills MountPlanData with everything the
// sandbox init needs; apply_mount_plan only reads it (plus the per-op fd
// slots of op_fds, which only init uses: the supervisor never reads them
// after clone, also when init shares its address space), so nothing is
// allocated after clone().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace sbx::runtime {

enum class MountKind : std::uint8_t {
  bind_rw,     // host path, writable (work dir, allow_write)
  bind_ro,     // host path re-exposed read-only (allow_read, allowed socket)
  mask_dir,    // empty read-only tmpfs over a directory (deny_read, host sockets)
  mask_file,   // empty mode-000 read-only file over a file (deny_read, host sockets)
  empty_file,  // empty read-only mode-0444 file over a symlink (deny_write on a link)
  protect,     // read-only recursive self-bind (deny_write; placeholders)
  pin,         // writable self-bind: a dir, link or file can no longer be renamed/removed
  tmpfs,       // fresh tmpfs (/tmp, /dev/shm, filesystem.tmpfs)
  proc,        // fresh procfs of the sandbox pid namespace
  dev,         // minimal /dev: tmpfs + device binds + devpts + symlinks
  ro_self,     // read-only self-bind of a procfs path (/proc/sys ...)
  generated,   // a file sbx generated (passwd/group), read-only
};

const char* to_string(MountKind kind);

struct MountOp {
  MountKind kind = MountKind::bind_ro;
  std::string target;          // absolute path inside the new root (== host path for binds)
  std::string source;          // host path for bind_rw/bind_ro; generated file name for `generated`
  int prepared_fd = -1;        // detached tree made by the supervisor (idmapped), or -1
  bool create_target = false;  // target lies in a tmpfs sbx made: create the mount point
  bool target_is_dir = true;   // kind of mount point to create / expect
  bool optional = false;       // skip silently when the target does not exist
  bool read_only_at_end = false;   // tmpfs that becomes read-only once filled (masks, /dev)
  std::uint64_t size_bytes = 0;    // tmpfs size
  std::uint32_t mode = 0755;       // tmpfs root mode
  std::string generated_content;   // for `generated`
  std::uint32_t file_mode = 0644;  // for `generated`: the file's mode (secrets: 0400)
  int depth() const;
};

// The extended attribute that marks a placeholder on the host, so that
// another sbx run that finds it knows it for one (mounts_plan.cpp).
inline constexpr const char* kPlaceholderXattr = "user.sbx.placeholder";

// A file or directory on the host that stands in for a deny_write path which
// did not exist, so the read-only mount has a mount point: one this run
// created, or another run's that it protects too. The run holds a shared
// flock on it (fd) while its sandbox lives; remove_placeholders removes it,
// if no other run holds one, once the sandbox is gone.
struct Placeholder {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  bool is_dir = false;
  int fd = -1;  // holds the shared flock
};

// A placeholder the planning decided on, not yet made (create_placeholders).
struct PendingPlaceholder {
  std::string path;
  bool is_dir = false;
  bool chown_to_parent = false;  // root made it: give it the parent's owner
};

struct MountPlanData {
  std::vector<MountOp> ops;                 // in application order (parents before children)
  std::string workdir;                      // chdir target inside after pivot_root
  std::vector<PendingPlaceholder> pending;  // decided on, not made yet
  std::vector<Placeholder> placeholders;
  std::vector<int> owned_fds;     // prepared_fd values, closed by ~MountPlan
  std::vector<Placeholder> held;  // other runs' placeholders this run protects too
  // Child-side scratch: one fd per op (the mounted tree), so the final pass
  // can make mask tmpfs read-only without allocating after clone().
  mutable std::vector<int> op_fds;
  bool cleanup_placeholders = true;
  std::thread placeholder_remover;  // start_placeholder_removal; joined by the destructor
  // Host paths bound writable and the dirs masked, both resolved: what the
  // sandbox can write (sandbox_may_write).
  std::vector<std::string> writable_roots;
  std::vector<std::string> masked_dirs;

  void remove_placeholders() noexcept;  // once; children before parents
  ~MountPlanData();
};

// Plan building blocks, exposed for the unit tests.
std::string normalize_path(const std::string& path);  // lexical: "//a/./b/" -> "/a/b"
bool path_is_within(const std::string& path, const std::string& root);  // root itself counts
void sort_mount_ops(std::vector<MountOp>& ops);
// The temporary name a placeholder for `name` in the directory `dir` is
// made under (create_placeholder).
std::string placeholder_temporary_name(int dir, const std::string& name, unsigned serial);

}  // namespace sbx::runtime
