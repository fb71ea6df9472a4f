// Idmapped work dir for a root caller. The command runs as an unprivileged
// uid, yet what it creates must belong to the directory's owner on the host
// and it must be able to write there. An idmapped mount (Linux >= 5.12) shows
// the owner's files as the command's and writes new files as the owner.
//
// Only real root may idmap a host filesystem (it needs CAP_SYS_ADMIN over the
// superblock's user namespace, the initial one), so the supervisor builds the
// detached tree before clone() and the sandbox init attaches it with
// move_mount(); the fd is inherited through clone().
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include <fmt/format.h>
#include <sbx/error.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "runtime/mounts_idmap.hpp"
#include "runtime/mounts_syscalls.hpp"

namespace sbx::runtime {

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void write_map(pid_t pid, const char* file, const std::string& line) {
  std::string path = fmt::format("/proc/{}/{}", pid, file);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw Error(
        fmt::format("cannot write {} for the idmapped work dir: {}", path, std::strerror(e)));
  }
  ::close(fd);
}

// The helper exists only to own the new user namespace: it returns at once.
// Its credentials (and with them the namespace) live on until it is reaped,
// so the maps are written and the namespace opened without any handshake.
int helper_returns_at_once(void*) {
  return 0;
}

// A user namespace whose only mapping is owner -> command id. CLONE_VM: the
// helper shares our memory instead of copying the page tables (a fork of
// the supervisor costs a page-table copy plus a copy-on-write fault on every
// page either side touches next). It runs nothing but a return on its own
// small stack, so sharing is safe; exit signal 0 and __WALL keep an
// embedding program's SIGCHLD handler away from it.
int idmap_userns(uid_t owner_uid, gid_t owner_gid, uid_t uid, gid_t gid) {
  alignas(16) char stack[1024];  // lives until the helper is reaped below
  pid_t pid =
      ::clone(helper_returns_at_once, stack + sizeof stack, CLONE_NEWUSER | CLONE_VM, nullptr);
  if (pid < 0)
    throw Error(fmt::format("cannot create a user namespace for the idmapped work dir: {}",
                            std::strerror(errno)));
  int ns = -1;
  std::string failure;
  try {
    // uid_map: "<id on disk> <id the command sees> 1".
    write_map(pid, "uid_map", fmt::format("{} {} 1\n", owner_uid, uid));
    write_map(pid, "gid_map", fmt::format("{} {} 1\n", owner_gid, gid));
    ns = ::open(fmt::format("/proc/{}/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) failure = fmt::format("open ns/user: {}", std::strerror(errno));
  } catch (const Error& e) {
    failure = e.what();
  }
  int status = 0;
  while (::waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  if (ns < 0) throw Error("cannot build the idmapped work dir: " + failure);
  return ns;
}

std::string fs_name(int fd) {
  struct statfs sf {};
  if (::fstatfs(fd, &sf) != 0) return "unknown";
  switch (static_cast<unsigned long>(sf.f_type)) {
    case NFS_SUPER_MAGIC:
      return "nfs";
    case 0x65735546:
      return "fuse";
    case OVERLAYFS_SUPER_MAGIC:
      return "overlay";
    case 0x6a656a63:
      return "fakeowner";
    default:
      return fmt::format("type 0x{:x}", static_cast<unsigned long>(sf.f_type));
  }
}

}  // namespace

int IdmapNamespaces::get(uid_t owner_uid, gid_t owner_gid, uid_t uid, gid_t gid) {
  for (const auto& e : entries_)
    if (e.owner_uid == owner_uid && e.owner_gid == owner_gid && e.uid == uid && e.gid == gid)
      return e.ns.get();
  entries_.push_back(
      {owner_uid, owner_gid, uid, gid, UniqueFd(idmap_userns(owner_uid, owner_gid, uid, gid))});
  return entries_.back().ns.get();
}

int make_idmapped_tree(const std::string& path, uid_t owner_uid, gid_t owner_gid, uid_t uid,
                       gid_t gid, IdmapNamespaces& namespaces) {
  // Resolve without symlinks: the path was canonicalised a moment ago, so a
  // symlink here means it was swapped under us.
  Fd where{sys::openat2(AT_FDCWD, path.c_str(), O_PATH | O_CLOEXEC,
                        RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)};
  if (where.fd < 0)
    throw Error(
        fmt::format("cannot open {} for the idmapped mount: {}", path, std::strerror(errno)),
        "make sure the path is a real directory, not reached through a symlink");
  Fd tree{sys::open_tree(where.fd, "",
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE)};
  if (tree.fd < 0)
    throw Error(fmt::format("open_tree({}): {}", path, std::strerror(errno)),
                "sbx needs Linux >= 5.12 for a root caller's work dir");
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = static_cast<std::uint64_t>(namespaces.get(owner_uid, owner_gid, uid, gid));
  attr.propagation = MS_PRIVATE;
  if (sys::mount_setattr(tree.fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) != 0) {
    int e = errno;
    throw Error(
        fmt::format("cannot give uid {} write access to {} (owned by uid {}): its file system ({}) "
                    "does not support idmapped mounts: {}",
                    uid, path, owner_uid, fs_name(where.fd), std::strerror(e)),
        fmt::format("run the command as the directory's owner (--user {}:{}), or use a work dir "
                    "on ext4/xfs/btrfs/tmpfs",
                    owner_uid, owner_gid));
  }
  int out = tree.fd;
  tree.fd = -1;
  return out;
}

}  // namespace sbx::runtime
