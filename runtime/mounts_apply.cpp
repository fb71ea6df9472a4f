// Sandbox-init side of the filesystem plan: build the new root and pivot
// into it. Runs after clone() in the new user+mount namespaces, so only
// async-signal-safe calls: no allocation, no exceptions, no logging. Every
// failure fills ChildError (step, errno, path) and stops.
//
// Order, and why:
//  1. make every mount private, so nothing we do propagates to the host;
//  2. clone every host source (work dir, allow_read, /dev nodes, the whole
//     host tree) from the pristine tree BEFORE anything covers it;
//  3. make the host tree clone read-only, nosuid, nodev in one recursive
//     mount_setattr (O(1) in syscalls, no mountinfo parsing);
//  4. attach it below a private staging tmpfs, then apply the ops parents
//     first, every target opened with RESOLVE_NO_SYMLINKS beneath the new
//     root and mounted by fd, so no symlink can redirect a mount;
//  5. make mask tmpfs read-only once their mount points exist;
//  6. pivot_root(".", ".") and detach the old root: nothing of the host tree
//     stays reachable except what was bound.
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "runtime/mount_plan.hpp"
#include "runtime/mounts_internal.hpp"
#include "runtime/mounts_syscalls.hpp"
#include "runtime/startup_trace.hpp"

namespace sbx::runtime {

namespace {

constexpr int kMntDetach = 2;  // MNT_DETACH (<sys/mount.h> clashes with <linux/mount.h>)
constexpr std::uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
constexpr const char* kStaging = "/tmp";  // any existing dir; covered by a private tmpfs

struct Dev {
  const char* name;
  const char* host;
};
constexpr Dev kDevices[] = {{"null", "/dev/null"},       {"zero", "/dev/zero"},
                            {"full", "/dev/full"},       {"random", "/dev/random"},
                            {"urandom", "/dev/urandom"}, {"tty", "/dev/tty"}};
constexpr int kDeviceCount = sizeof kDevices / sizeof kDevices[0];

struct Symlink {
  const char* target;
  const char* name;
};
constexpr Symlink kDevLinks[] = {{"pts/ptmx", "ptmx"},          {"/proc/self/fd", "fd"},
                                 {"/proc/self/fd/0", "stdin"},  {"/proc/self/fd/1", "stdout"},
                                 {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Decimal/octal formatting without allocation.
void format_u64(std::uint64_t v, unsigned base, char* out, std::size_t cap) {
  char tmp[32];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % base);
    v /= base;
  } while (v != 0 && n < sizeof tmp);
  std::size_t i = 0;
  while (n > 0 && i + 1 < cap) out[i++] = tmp[--n];
  out[i] = '\0';
}

bool set_attr(int fd, std::uint64_t set, bool recursive) {
  struct mount_attr attr {};
  attr.attr_set = set;
  attr.propagation = MS_PRIVATE;
  return sys::mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr) == 0;
}

// A detached copy of a host path, resolved without following any symlink.
int clone_host(const char* path, bool recursive, std::uint64_t attrs, ChildError& err) {
  int where = sys::openat2(AT_FDCWD, path, O_PATH | O_CLOEXEC | O_NOFOLLOW,
                           RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (where < 0) return err.fail("open mount source", errno, path), -1;
  // O_PATH|O_NOFOLLOW hands back a trailing symlink itself: the path was
  // swapped after the supervisor resolved it. Refuse rather than guess.
  struct stat st {};
  if (::fstat(where, &st) != 0 || S_ISLNK(st.st_mode)) {
    ::close(where);
    return err.fail("mount source became a symlink", ELOOP, path), -1;
  }
  int tree = sys::open_tree(
      where, "",
      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
  int e = errno;
  ::close(where);
  if (tree < 0) return err.fail("open_tree", e, path), -1;
  if (!set_attr(tree, attrs, recursive)) {
    e = errno;
    ::close(tree);
    return err.fail("mount_setattr", e, path), -1;
  }
  return tree;
}

int new_fs(const char* type, std::uint64_t size, std::uint32_t mode, unsigned attrs,
           ChildError& err, const char* what) {
  int fs = sys::fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0) return err.fail("fsopen", errno, type), -1;
  char num[32];
  bool ok = true;
  if (size != 0) {
    format_u64(size, 10, num, sizeof num);
    ok = sys::fsconfig(fs, FSCONFIG_SET_STRING, "size", num, 0) == 0;
  }
  if (ok && mode != 0 && std::strcmp(type, "tmpfs") == 0) {
    format_u64(mode, 8, num, sizeof num);
    ok = sys::fsconfig(fs, FSCONFIG_SET_STRING, "mode", num, 0) == 0;
  }
  if (ok && std::strcmp(type, "devpts") == 0)
    ok = sys::fsconfig(fs, FSCONFIG_SET_STRING, "ptmxmode", "0666", 0) == 0 &&
         sys::fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0620", 0) == 0;
  if (ok) ok = sys::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0;
  if (!ok) {
    int e = errno;
    ::close(fs);
    return err.fail("fsconfig", e, what), -1;
  }
  int mnt = sys::fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  int e = errno;
  ::close(fs);
  if (mnt < 0) return err.fail("fsmount", e, what), -1;
  return mnt;
}

bool attach(int tree, int target_fd, ChildError& err, const char* what) {
  if (sys::move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) !=
      0)
    return err.fail("move_mount", errno, what);
  return true;
}

// Opens `rel` (no leading '/') beneath root, never following a symlink. With
// `create`, missing components are made (directories, and the last one as a
// directory or an empty file). Returns -1 with errno set.
int open_beneath(int root, const char* rel, bool create, bool leaf_is_dir) {
  if (rel[0] == '\0') return ::fcntl(root, F_DUPFD_CLOEXEC, 0);
  int fd = sys::openat2(root, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC, kBeneath);
  if (fd >= 0 || errno != ENOENT || !create) return fd;
  char buf[PATH_MAX];
  std::size_t len = std::strlen(rel);
  if (len >= sizeof buf) return errno = ENAMETOOLONG, -1;
  std::memcpy(buf, rel, len + 1);
  int cur = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
  char* part = buf;
  while (cur >= 0) {
    char* slash = std::strchr(part, '/');
    bool last = slash == nullptr;
    if (!last) *slash = '\0';
    int next = sys::openat2(cur, part, O_PATH | O_NOFOLLOW | O_CLOEXEC, kBeneath);
    if (next < 0 && errno == ENOENT) {
      int rc;
      if (!last || leaf_is_dir) {
        rc = ::mkdirat(cur, part, 0755);
      } else {
        rc = ::openat(cur, part, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (rc >= 0) rc = ::close(rc);
      }
      if (rc == 0) next = sys::openat2(cur, part, O_PATH | O_NOFOLLOW | O_CLOEXEC, kBeneath);
    }
    int e = errno;
    ::close(cur);
    errno = e;
    cur = next;
    if (last) break;
    part = slash + 1;
  }
  return cur;
}

bool write_file(int dir, const char* name, const char* data, std::size_t len, mode_t mode,
                ChildError& err) {
  int fd = ::openat(dir, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return err.fail("create staging file", errno, name);
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      return err.fail("write staging file", e, name);
    }
    data += n;
    len -= static_cast<std::size_t>(n);
  }
  // fchmod after create: the umask must not decide what "unreadable" means.
  if (::fchmod(fd, mode) != 0) {
    int e = errno;
    ::close(fd);
    return err.fail("fchmod staging file", e, name);
  }
  ::close(fd);
  return true;
}

// Clone a staging file read-only onto the target.
bool bind_staging_file(int staging, const char* name, int target_fd, ChildError& err,
                       const char* what) {
  int tree = sys::open_tree(staging, name, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return err.fail("open_tree staging", errno, name);
  bool ok =
      set_attr(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
               false) ||
      err.fail("mount_setattr", errno, what);
  ok = ok && attach(tree, target_fd, err, what);
  ::close(tree);
  return ok;
}

// Self-bind of what is at the target now (after earlier ops).
bool self_bind(int target_fd, std::uint64_t attrs, ChildError& err, const char* what) {
  int tree = sys::open_tree(target_fd, "",
                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0) return err.fail("open_tree", errno, what);
  bool ok = (attrs == 0 || set_attr(tree, attrs, true) || err.fail("mount_setattr", errno, what)) &&
            attach(tree, target_fd, err, what);
  ::close(tree);
  return ok;
}

bool build_dev(int target_fd, const int* devices, ChildError& err) {
  int dev = new_fs("tmpfs", 256 << 10, 0755,
                   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err, "/dev");
  if (dev < 0) return false;
  if (!attach(dev, target_fd, err, "/dev")) return close_fd(dev), false;
  bool ok = true;
  for (int i = 0; ok && i < kDeviceCount; ++i) {
    int node = ::openat(dev, kDevices[i].name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    ok = (node >= 0 && ::close(node) == 0) || err.fail("create /dev node", errno, kDevices[i].host);
    if (ok) {
      ok = sys::move_mount(devices[i], "", dev, kDevices[i].name, MOVE_MOUNT_F_EMPTY_PATH) == 0 ||
           err.fail("move_mount", errno, kDevices[i].host);
    }
  }
  ok = ok && (::mkdirat(dev, "pts", 0755) == 0 || err.fail("mkdir", errno, "/dev/pts"));
  ok = ok && (::mkdirat(dev, "shm", 01777) == 0 || err.fail("mkdir", errno, "/dev/shm"));
  for (const auto& link : kDevLinks)
    ok = ok &&
         (::symlinkat(link.target, dev, link.name) == 0 || err.fail("symlink", errno, link.name));
  if (ok) {
    // A private devpts instance: the sandbox sees only its own ptys.
    int pts = new_fs("devpts", 0, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err, "/dev/pts");
    ok = pts >= 0 && (sys::move_mount(pts, "", dev, "pts", MOVE_MOUNT_F_EMPTY_PATH) == 0 ||
                      err.fail("move_mount", errno, "/dev/pts"));
    close_fd(pts);
  }
  close_fd(dev);
  return ok;
}

bool apply_op(const MountPlanData& d, std::size_t i, int root, int staging, const int* devices,
              ChildError& err) {
  const MountOp& op = d.ops[i];
  const char* what = op.target.c_str();
  int target = open_beneath(root, what + 1, op.create_target, op.target_is_dir);
  if (target < 0) {
    if (errno == ENOENT && op.optional) return true;
    // Init holds U1's capabilities, the command none: a target init cannot
    // reach (e.g. /root/... for uid 65534) the command cannot reach either,
    // so there is nothing to grant or to hide there.
    if (errno == EACCES) return true;
    return err.fail("open mount target", errno, what);
  }
  // Only the pin of a protected symlink mounts onto a link (a file over the
  // last component, a self-bind of one on the way); any other target that
  // is a link was swapped in after planning.
  struct stat st {};
  const bool link_pin = op.kind == MountKind::empty_file ||
                        (op.kind == MountKind::bind_ro && op.source != op.target) ||
                        (op.kind == MountKind::pin && !op.target_is_dir);
  if (::fstat(target, &st) != 0 || (S_ISLNK(st.st_mode) && !link_pin)) {
    ::close(target);
    return err.fail("mount target became a symlink", ELOOP, what);
  }
  bool ok = true;
  int& slot = d.op_fds[i];
  switch (op.kind) {
    case MountKind::bind_rw:
    case MountKind::bind_ro: {
      int src = op.prepared_fd >= 0 ? op.prepared_fd : slot;
      if (src >= 0)
        ok = attach(src, target, err, what);
      else if (op.source != op.target)  // a protected symlink: pin it even so
        ok = bind_staging_file(staging, "empty_ro", target, err, what);
      break;
    }
    case MountKind::mask_dir:
    case MountKind::tmpfs: {
      unsigned attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                       (op.kind == MountKind::mask_dir ? MOUNT_ATTR_NOEXEC : 0);
      slot = new_fs("tmpfs", op.size_bytes, op.mode, attrs, err, what);
      ok = slot >= 0 && attach(slot, target, err, what);
      break;
    }
    case MountKind::mask_file:
      ok = bind_staging_file(staging, "empty", target, err, what);
      break;
    case MountKind::empty_file:
      ok = bind_staging_file(staging, "empty_ro", target, err, what);
      break;
    case MountKind::generated:
      ok = bind_staging_file(staging, op.source.c_str(), target, err, what);
      break;
    case MountKind::protect:
      ok = self_bind(target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err, what);
      break;
    case MountKind::ro_self:
      ok = self_bind(target,
                     MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                     err, what);
      break;
    case MountKind::pin:
      ok = self_bind(target, 0, err, what);
      break;
    case MountKind::proc: {
      int proc = new_fs("proc", 0, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, err,
                        "/proc");
      ok = proc >= 0 && attach(proc, target, err, what);
      close_fd(proc);
      break;
    }
    case MountKind::dev:
      ok = build_dev(target, devices, err);
      if (ok) {
        // Reopen the new /dev mount (the target fd points below it).
        slot = open_beneath(root, "dev", false, true);
        ok = slot >= 0 || err.fail("open", errno, "/dev");
      }
      break;
  }
  ::close(target);
  return ok;
}

bool pivot_into(int root, const char* workdir, ChildError& err) {
  // pivot_root(".", "."): the old root ends up stacked on the new one and is
  // detached right away, so no path reaches the host tree any more (unlike
  // chroot, which a process with CAP_SYS_CHROOT could leave).
  if (::fchdir(root) != 0) return err.fail("fchdir new root", errno);
  if (sys::pivot_root(".", ".") != 0) return err.fail("pivot_root", errno);
  if (sys::umount2(".", kMntDetach) != 0) return err.fail("detach old root", errno);
  if (::chdir("/") != 0) return err.fail("chdir", errno, "/");
  if (::chdir(workdir) != 0) return err.fail("chdir work dir", errno, workdir);
  return true;
}

bool build_root(const MountPlanData& d, int* devices, int& rootfs, int& staging, int& root,
                ChildError& err) {
  // 1. Nothing we mount may propagate back to the host's mount namespace.
  if (sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return err.fail("make / private", errno);
  // 2. Clone the sources while the host tree is still whole.
  for (std::size_t i = 0; i < d.ops.size(); ++i) {
    const MountOp& op = d.ops[i];
    if (op.prepared_fd >= 0 || (op.kind != MountKind::bind_rw && op.kind != MountKind::bind_ro))
      continue;
    std::uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                          (op.kind == MountKind::bind_ro ? MOUNT_ATTR_RDONLY : 0);
    d.op_fds[i] = clone_host(op.source.c_str(), true, attrs, err);
    if (d.op_fds[i] < 0) {
      // Unreachable for init, so for the command too: nothing to grant.
      if (err.error_number != EACCES) return false;
      err = ChildError{};
    }
  }
  for (int i = 0; i < kDeviceCount; ++i) {
    devices[i] = clone_host(kDevices[i].host, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, err);
    if (devices[i] < 0) return false;
  }
  // 3. The whole host tree, read-only, nosuid, nodev, in one recursive call.
  rootfs = clone_host("/", true, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err);
  if (rootfs < 0) return false;
  // 4. A private staging tmpfs holds the new root's mount point and the
  //    files sbx generates; it disappears with the old root.
  staging = new_fs("tmpfs", 16 << 20, 0700, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, err, "staging");
  if (staging < 0) return false;
  if (sys::move_mount(staging, "", AT_FDCWD, kStaging, MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return err.fail("move_mount staging", errno, kStaging);
  if (::mkdirat(staging, "root", 0755) != 0) return err.fail("mkdir staging root", errno);
  if (!write_file(staging, "empty", "", 0, 0000, err) ||
      !write_file(staging, "empty_ro", "", 0, 0444, err))
    return false;
  for (const auto& op : d.ops)
    if (op.kind == MountKind::generated &&
        !write_file(staging, op.source.c_str(), op.generated_content.data(),
                    op.generated_content.size(), op.file_mode, err))
      return false;
  if (sys::move_mount(rootfs, "", staging, "root", MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return err.fail("move_mount new root", errno);
  root = sys::openat2(staging, "root", O_PATH | O_DIRECTORY | O_CLOEXEC, kBeneath);
  if (root < 0) return err.fail("open new root", errno);
  for (std::size_t i = 0; i < d.ops.size(); ++i)
    if (!apply_op(d, i, root, staging, devices, err)) return false;
  // 5. Masks and /dev become read-only now that their mount points exist.
  for (std::size_t i = 0; i < d.ops.size(); ++i)
    if (d.ops[i].read_only_at_end && d.op_fds[i] >= 0) {
      struct mount_attr attr {};
      attr.attr_set = MOUNT_ATTR_RDONLY;
      if (sys::mount_setattr(d.op_fds[i], "", AT_EMPTY_PATH, &attr) != 0)
        return err.fail("mount_setattr ro", errno, d.ops[i].target.c_str());
    }
  // 6. Into the new root.
  return pivot_into(root, d.workdir.c_str(), err);
}

}  // namespace

bool apply_mount_plan(const MountPlan& plan, ChildError& err) {
  const MountPlanData& d = plan.data();
  int devices[kDeviceCount];
  for (int& fd : devices) fd = -1;
  int rootfs = -1, staging = -1, root = -1;
  startup_trace::mark("init: mounts begin");
  bool ok = build_root(d, devices, rootfs, staging, root, err);
  startup_trace::mark("init: mounts done (pivot_root)");
  for (int& fd : devices) close_fd(fd);
  for (int& fd : d.op_fds) close_fd(fd);
  for (int fd : d.owned_fds) ::close(fd);
  close_fd(rootfs);
  close_fd(staging);
  close_fd(root);
  return ok;
}

}  // namespace sbx::runtime
