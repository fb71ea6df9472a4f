// Supervisor side of the filesystem plan: resolve every policy path safely,
// decide each mount, and prepare what only real root can prepare (idmapped
// work dir). Runs before clone(), so it may allocate, throw and touch the host.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sbx/error.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "runtime/host_paths.hpp"
#include "runtime/mount_plan.hpp"
#include "runtime/mounts_idmap.hpp"
#include "runtime/mounts_internal.hpp"
#include "runtime/mounts_syscalls.hpp"
#include "runtime/startup_trace.hpp"
#include "runtime/unique_fd.hpp"

namespace sbx::runtime {

// Defined in mounts_identity.cpp.
void plan_identity_files(const Identity& identity, std::vector<MountOp>& ops);
void plan_resolv_conf(const Policy& policy, std::vector<MountOp>& ops);  // mounts_network.cpp

const char* to_string(MountKind kind) {
  switch (kind) {
    case MountKind::bind_rw:
      return "bind_rw";
    case MountKind::bind_ro:
      return "bind_ro";
    case MountKind::mask_dir:
      return "mask_dir";
    case MountKind::mask_file:
      return "mask_file";
    case MountKind::empty_file:
      return "empty_file";
    case MountKind::protect:
      return "protect";
    case MountKind::pin:
      return "pin";
    case MountKind::tmpfs:
      return "tmpfs";
    case MountKind::proc:
      return "proc";
    case MountKind::dev:
      return "dev";
    case MountKind::ro_self:
      return "ro_self";
    case MountKind::generated:
      return "generated";
  }
  return "?";
}

int MountOp::depth() const {
  if (target == "/") return 0;
  return static_cast<int>(std::count(target.begin(), target.end(), '/'));
}

std::string normalize_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    std::string part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

bool path_is_within(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

namespace {

// Symlinks one lookup follows at most (the kernel's MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

// Order of mounts on the same target: later ones cover earlier ones.
int kind_rank(MountKind kind) {
  switch (kind) {
    case MountKind::tmpfs:
    case MountKind::proc:
    case MountKind::dev:
      return 0;
    case MountKind::bind_rw:
      return 1;
    case MountKind::mask_dir:
    case MountKind::mask_file:
      return 2;
    case MountKind::bind_ro:
      return 3;
    case MountKind::pin:
      return 4;
    case MountKind::protect:
    case MountKind::empty_file:
      return 5;
    case MountKind::ro_self:
    case MountKind::generated:
      return 6;
  }
  return 7;
}

std::optional<std::string> real_path(const std::string& path) {
  return existing_real_path(path);
}

std::string absolute(const std::string& path, const std::string& base) {
  if (!path.empty() && path[0] == '/') return normalize_path(path);
  return normalize_path(base + "/" + path);
}

bool within_any(const std::string& path, const std::vector<std::string>& roots) {
  return std::any_of(roots.begin(), roots.end(),
                     [&](const std::string& r) { return path_is_within(path, r); });
}

const std::string* innermost_root(const std::string& path, const std::vector<std::string>& roots) {
  const std::string* best = nullptr;
  for (const auto& r : roots)
    if (path_is_within(path, r) && (best == nullptr || r.size() > best->size())) best = &r;
  return best;
}

// The directory a placeholder is (or goes) in, reached without following
// any symlink: the planning walked its path with lstat and found none, and a
// sandbox that swaps a directory on it for a link meanwhile (another run in
// the same work dir) must not move a placeholder, or its removal, to where
// the link points. Sets `name` to the last component. Fails with ELOOP
// when a link is there now.
UniqueFd open_parent_no_symlinks(const std::string& path, std::string& name) {
  const std::size_t slash = path.rfind('/');
  name = path.substr(slash + 1);
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  return UniqueFd(sys::openat2(AT_FDCWD, parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                               RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
}

// An fd for the flock of a placeholder (or what may be one): never through a
// symlink, never blocking on a FIFO put in its place.
int open_placeholder(int parent, const std::string& name, bool is_dir) {
  return ::openat(parent, name.c_str(),
                  O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (is_dir ? O_DIRECTORY : 0));
}

Error changed_during_start(const std::string& path) {
  return Error(fmt::format("cannot protect {}: a directory on its path was replaced by a symlink "
                           "while this sandbox was being set up",
                           path),
               "run the command again; if it recurs, stop whatever replaces directories in the "
               "work dir (another sandbox running there?)");
}

// A path to protect may be another sbx run's placeholder (two sandboxes
// in one work dir, or sharing ~/.claude): marked with kPlaceholderXattr.
// Its creator removing it would detach this sandbox's mount on it (an
// unlink or rmdir on the host does that in every namespace), and the
// command could then create it. So this run holds a shared flock on it; a
// placeholder is removed only under an exclusive one, by whichever run
// ends last (remove_placeholders).
void hold_placeholder(MountPlanData& data, const std::string& path) {
  const auto vanished = [&] {
    return Error(fmt::format("{} was removed while this sandbox was being set up (another sbx "
                             "using the same directory ended)",
                             path),
                 "run the command again");
  };
  std::string name;
  const UniqueFd parent = open_parent_no_symlinks(path, name);
  if (!parent) {
    if (errno == ELOOP) throw changed_during_start(path);
    if (errno == ENOENT) throw vanished();
    return;  // unreachable: not this user's placeholder
  }
  // Either type: another run's plan may have wanted a file where this one
  // wants a directory; what is there is what protects the path.
  int fd = open_placeholder(parent.get(), name, false);
  if (fd < 0) {
    if (errno == ENOENT) throw vanished();
    return;  // unreadable: not this user's placeholder
  }
  if (::fgetxattr(fd, kPlaceholderXattr, nullptr, 0) < 0 && errno != ENOTSUP &&
      errno != EOPNOTSUPP) {
    // Not marked: not a placeholder, unless the file system cannot mark
    // (no user xattrs): then any empty file or directory may be one.
    ::close(fd);
    return;
  }
  struct stat st {};
  const auto same = [&](const Placeholder& h) { return h.dev == st.st_dev && h.ino == st.st_ino; };
  if (::fstat(fd, &st) != 0 || std::any_of(data.held.begin(), data.held.end(), same) ||
      std::any_of(data.placeholders.begin(), data.placeholders.end(), same) ||
      !(S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0))) {
    // Held already (e.g. .claude, walked through for each entry below it),
    // or not what a placeholder is (an empty file or a directory).
    ::close(fd);
    return;
  }
  // The exclusive lock of a run removing it lasts one unlink: retry a
  // moment. Held longer, someone else holds it on purpose: stop, saying so.
  int rc = ::flock(fd, LOCK_SH | LOCK_NB);
  for (int i = 0; rc != 0 && errno == EWOULDBLOCK && i < 100; ++i) {
    ::usleep(10000);
    rc = ::flock(fd, LOCK_SH | LOCK_NB);
  }
  if (rc != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw Error(fmt::format("cannot protect {}: another process holds a lock on it (an sbx "
                              "placeholder)",
                              path),
                  fmt::format("find the holder with `fuser {}` and end it, then run again", path));
    }
    throw Error(fmt::format("cannot lock {}: {}", path, std::strerror(err)));
  }
  if (::fstat(fd, &st) != 0 || st.st_nlink == 0) {
    ::close(fd);
    throw vanished();
  }
  try {
    data.held.push_back({path, st.st_dev, st.st_ino, S_ISDIR(st.st_mode), fd});
  } catch (...) {
    ::close(fd);
    throw;
  }
}

void create_placeholder(MountPlanData& data, const PendingPlaceholder& pending) {
  const std::string& path = pending.path;
  const bool is_dir = pending.is_dir;
  // Created empty on the host, owned like its parent, and removed after the
  // run (see ~MountPlanData). Made under a temporary name, locked and marked
  // there, then renamed into place: another sbx that finds it finds the
  // mark (hold_placeholder) and cannot remove it while this run holds its
  // shared lock; whichever run ends last removes it. A file system without
  // user xattrs leaves it unmarked. All of it relative to the parent,
  // reached without a symlink (open_parent_no_symlinks).
  std::string name;
  const UniqueFd dir = open_parent_no_symlinks(path, name);
  struct stat parent {};
  if (!dir || ::fstat(dir.get(), &parent) != 0) {
    if (errno == ELOOP) throw changed_during_start(path);
    throw Error(fmt::format("cannot protect {}: {}", path, std::strerror(errno)));
  }
  // Unique within the process too (an embedder may start two at once).
  static std::atomic<unsigned> made{0};
  const std::string tmp = placeholder_temporary_name(dir.get(), name, made++);
  data.placeholders.reserve(data.placeholders.size() + 1);  // recorded below without a throw
  int fd = is_dir ? ::mkdirat(dir.get(), tmp.c_str(), 0755)
                  : ::openat(dir.get(), tmp.c_str(),
                             O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    throw Error(fmt::format("cannot create the placeholder {} that protects a denied path: {}",
                            path, std::strerror(errno)),
                "make the directory writable for the invoking user, or drop the deny_write entry");
  if (is_dir)
    fd = ::openat(dir.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  int err = 0;
  // Not blocking: nobody else has a reason to lock a name just made, and a
  // sandbox sharing the work dir could lock it first and stall the start.
  if (fd < 0 || ::flock(fd, LOCK_SH | LOCK_NB) != 0 || ::fstat(fd, &st) != 0) err = errno;
  if (err == 0) {
    (void)::fsetxattr(fd, kPlaceholderXattr, "1", 1, 0);
    // Root creates it as root; a work dir of another owner gets its own.
    if (pending.chown_to_parent && (st.st_uid != parent.st_uid || st.st_gid != parent.st_gid))
      (void)::fchown(fd, parent.st_uid, parent.st_gid);
    if (::renameat2(dir.get(), tmp.c_str(), dir.get(), name.c_str(), RENAME_NOREPLACE) != 0)
      err = errno;
  }
  if (err != 0) {
    if (fd >= 0) ::close(fd);
    (void)::unlinkat(dir.get(), tmp.c_str(), is_dir ? AT_REMOVEDIR : 0);
    if (err == EEXIST) {  // another sbx made it meanwhile: protect that one
      hold_placeholder(data, path);
      return;
    }
    throw Error(fmt::format(
        "cannot create the placeholder {}: {}", path,
        err == EWOULDBLOCK ? "another process locked it as it was made" : std::strerror(err)));
  }
  data.placeholders.push_back({path, st.st_dev, st.st_ino, is_dir, fd});
}

struct Planner {
  Planner(const Policy& p, const Identity& i, MountPlanData& d, std::string c)
      : policy(p), identity(i), data(d), cwd(std::move(c)) {}
  const Policy& policy;
  const Identity& identity;
  MountPlanData& data;
  std::string cwd;
  std::vector<std::string> writable;               // resolved host paths bound writable
  std::vector<std::string> masked_dirs;            // host dirs replaced by an empty tmpfs
  std::vector<std::string> fresh_dirs = {"/tmp"};  // sandbox tmpfs: host content invisible
  std::vector<std::string> sealed_dirs;            // empty placeholder dirs mounted read-only
  std::set<std::string> pinned;
  IdmapNamespaces idmap_namespaces;  // one per distinct owner mapping

  void add(MountOp op) { data.ops.push_back(std::move(op)); }

  // A writable policy path must not reach its target through a symlink that
  // lives inside a writable area: the sandbox could have planted it during an
  // earlier run to make, say, $HOME writable in the next one.
  void refuse_planted_symlinks(const std::string& lexical) {
    std::string prefix;
    std::size_t i = 1;
    while (i <= lexical.size()) {
      std::size_t j = lexical.find('/', i);
      if (j == std::string::npos) j = lexical.size();
      prefix = lexical.substr(0, j);
      struct stat st {};
      if (::lstat(prefix.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        auto where = real_path(parent_of(prefix));
        if (where && within_any(*where, writable))
          throw Error(fmt::format("writable path {} goes through the symlink {}, which lies in a "
                                  "writable area the sandbox controls",
                                  lexical, prefix),
                      fmt::format("name the real directory instead (e.g. {}), or remove the link",
                                  real_path(lexical).value_or("its target")));
      }
      i = j + 1;
    }
  }

  void plan_writable() {
    std::string wd =
        policy.filesystem.workdir.empty() ? cwd : absolute(policy.filesystem.workdir, cwd);
    auto resolved = real_path(wd);
    if (!resolved)
      throw Error(fmt::format("work dir {} is not usable: {}", wd, std::strerror(errno)),
                  "create it, or pass an existing directory with --workdir");
    struct stat st {};
    if (::stat(resolved->c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw Error(fmt::format("work dir {} is not a directory", *resolved), "pass a directory");
    data.workdir = *resolved;
    std::vector<std::pair<std::string, std::string>> paths;  // lexical, resolved
    if (policy.filesystem.workdir_writable) paths.emplace_back(wd, *resolved);
    for (const auto& p : policy.filesystem.allow_write) {
      auto lex = absolute(p, cwd);
      // A missing allow_write path grants nothing; nothing to mount.
      if (auto r = real_path(lex)) paths.emplace_back(lex, *r);
    }
    for (const auto& [lex, res] : paths) writable.push_back(res);
    for (const auto& [lex, res] : paths) {
      (void)res;
      // The work dir itself is where the user stands; only later entries
      // can have been planted by a sandbox.
      std::vector<std::string> others;
      for (const auto& w : writable)
        if (w != res) others.push_back(w);
      std::swap(writable, others);
      refuse_planted_symlinks(lex);
      std::swap(writable, others);
    }
    for (const auto& [lex, res] : paths) {
      if (res == "/")
        throw Error(fmt::format("writable path {} resolves to /", lex),
                    "name a project directory, not the whole file system");
      MountOp op;
      op.kind = MountKind::bind_rw;
      op.target = res;
      op.source = res;
      struct stat ws {};
      if (::stat(res.c_str(), &ws) != 0) continue;
      op.target_is_dir = S_ISDIR(ws.st_mode);
      maybe_idmap(op, ws);
      add(std::move(op));
    }
  }

  // Started as root, the command runs as identity.uid, yet what it creates
  // in a writable dir must belong to that dir's owner on the host. An
  // idmapped mount maps the owner to the command's uid (and back on create).
  void maybe_idmap(MountOp& op, const struct stat& st) {
    if (!identity.started_as_root) return;
    if (st.st_uid == identity.uid && st.st_gid == identity.gid) return;
    if (data.owned_fds.size() >= kMaxPreparedTrees) {
      throw Error(fmt::format("more than {} writable paths owned by others need an id-mapped "
                              "mount (started as root, the command runs as uid {})",
                              kMaxPreparedTrees, identity.uid),
                  "make fewer paths writable (a common parent instead of many entries), or run "
                  "the command as their owner (--user)");
    }
    op.prepared_fd = make_idmapped_tree(op.source, st.st_uid, st.st_gid, identity.uid, identity.gid,
                                        idmap_namespaces);
    data.owned_fds.push_back(op.prepared_fd);
  }

  void plan_deny_read() {
    for (const auto& p : policy.filesystem.deny_read) {
      auto res = real_path(absolute(p, cwd));
      if (!res) continue;  // nothing there to hide
      struct stat st {};
      if (::stat(res->c_str(), &st) != 0) continue;
      if (*res == "/") throw Error("deny_read covers /", "hide specific directories, e.g. ~/.ssh");
      MountOp op;
      op.target = *res;
      if (S_ISDIR(st.st_mode)) {
        op.kind = MountKind::mask_dir;
        op.mode = 0755;
        op.size_bytes = 1 << 20;
        op.read_only_at_end = true;
        masked_dirs.push_back(*res);
      } else {
        op.kind = MountKind::mask_file;
        op.target_is_dir = false;
      }
      add(std::move(op));
    }
  }

  // Re-expose a host path read-only below a mask (allow_read, allowed socket).
  void plan_reexpose(const std::string& path) {
    auto res = real_path(absolute(path, cwd));
    if (!res || (!within_any(*res, masked_dirs) && !within_any(*res, fresh_dirs))) return;
    struct stat st {};
    if (::stat(res->c_str(), &st) != 0) return;
    MountOp op;
    op.kind = MountKind::bind_ro;
    op.target = *res;
    op.source = *res;
    op.target_is_dir = S_ISDIR(st.st_mode);
    add(std::move(op));
  }

  // Every directory between the writable root and a protected path becomes a
  // mount point, so the sandbox cannot rename it away and recreate the path
  // (mv .git x && mkdir -p .git/hooks): rename/unlink of a mount point in the
  // same mount namespace fails with EBUSY.
  void pin_ancestors(const std::string& root, const std::string& path) {
    for (std::string dir = parent_of(path); dir.size() > root.size() && path_is_within(dir, root);
         dir = parent_of(dir)) {
      if (!pinned.insert(dir).second) continue;
      MountOp op;
      op.kind = MountKind::pin;
      op.target = dir;
      add(std::move(op));
    }
  }

  // The mount point must exist: created on the host by create_placeholders,
  // at once or (Placeholders::later) when the launch asks.
  void add_placeholder(const std::string& path, bool is_dir) {
    data.pending.push_back({path, is_dir, identity.started_as_root});
  }

  // Pins a symlink met on the way to a protected path when it lies in a
  // writable area, so the sandbox can neither remove it nor re-point it: a
  // mount on the link's dentry makes unlink/rename fail with EBUSY. The last
  // component is covered by the read-only content of its target file (or an
  // empty read-only file); a link on the way gets a self-bind of the link
  // itself, which still resolves to its target.
  void pin_link(const std::string& dir, const std::string& link, bool last) {
    const std::string* root = innermost_root(dir, writable);
    if (root == nullptr || within_any(dir, masked_dirs) || !pinned.insert(link).second) return;
    pin_ancestors(*root, link);
    MountOp op;
    op.kind = MountKind::pin;
    op.target = link;
    op.target_is_dir = false;
    if (last) {
      op.kind = MountKind::empty_file;
      auto target = real_path(link);
      struct stat ts {};
      if (target && ::stat(target->c_str(), &ts) == 0 && S_ISREG(ts.st_mode)) {
        // Keep the content readable: bind the target read-only onto the link.
        op.kind = MountKind::bind_ro;
        op.source = *target;
      }
    }
    add(std::move(op));
  }

  // `links` counts the symlinks followed so far, as the kernel's lookup does.
  void plan_deny_write_one(const std::string& lexical, int links = 0) {
    // Walk the path component by component so we know where it stops
    // existing and whether the last component is a symlink.
    std::string resolved = "/";
    std::vector<std::string> parts;
    for (std::size_t i = 1; i <= lexical.size();) {
      std::size_t j = lexical.find('/', i);
      if (j == std::string::npos) j = lexical.size();
      if (j > i) parts.push_back(lexical.substr(i, j - i));
      i = j + 1;
    }
    for (std::size_t k = 0; k < parts.size(); ++k) {
      // Only a symlink's target brings these; `resolved` has no links, so
      // its parent is where the kernel's ".." goes. The directory left must
      // stay: the sandbox must not swap it for a link that moves "..".
      if (parts[k] == ".") continue;
      if (parts[k] == "..") {
        const std::string* root = innermost_root(resolved, writable);
        if (root != nullptr && !within_any(resolved, masked_dirs))
          pin_ancestors(*root, resolved + "/..");
        resolved = parent_of(resolved);
        continue;
      }
      std::string candidate = resolved == "/" ? "/" + parts[k] : resolved + "/" + parts[k];
      bool last = k + 1 == parts.size();
      struct stat st {};
      if (::lstat(candidate.c_str(), &st) != 0) {
        if (errno != ENOENT) return;  // unreachable for the user: nothing to protect
        const std::string* root = innermost_root(resolved, writable);
        // Nothing can be created below a masked dir or a placeholder sealed
        // for an earlier path (.claude/agents after .claude/commands).
        if (root == nullptr || within_any(resolved, masked_dirs) ||
            within_any(resolved, sealed_dirs))
          return;
        // Missing because this plan's own placeholder is not made yet
        // (Placeholders::later): protected already.
        const auto pending =
            std::find_if(data.pending.begin(), data.pending.end(),
                         [&](const PendingPlaceholder& p) { return p.path == candidate; });
        const bool is_dir = pending != data.pending.end() ? pending->is_dir : !last;
        if (pending == data.pending.end()) {
          // Mask the first missing component: nothing can be created below it.
          pin_ancestors(*root, candidate);
          add_placeholder(candidate, is_dir);
          if (is_dir) sealed_dirs.push_back(candidate);
          MountOp op;
          op.kind = MountKind::protect;
          op.target = candidate;
          op.target_is_dir = is_dir;
          add(std::move(op));
        }
        // Inside, the placeholder directory exists: a ".." right after it
        // (a link to `.claude/../payload`) leads out of it again, to a path
        // that needs protecting too. Any other name below it cannot be
        // created, and the kernel's lookup stops there.
        std::size_t next = k + 1;
        while (next < parts.size() && parts[next] == ".") ++next;
        if (is_dir && next < parts.size() && parts[next] == "..") {
          resolved = candidate;
          continue;
        }
        return;
      }
      if (S_ISLNK(st.st_mode)) {
        // The link stays as it is (pinned), and what the path reaches
        // through it is protected like the path itself: the rest of the
        // path is walked again from the link's target, so a missing target
        // gets its placeholder and each further link on the way its pin.
        pin_link(resolved, candidate, last);
        if (links >= kMaxSymlinks)
          throw Error(fmt::format("cannot protect {}: more than {} symlinks on the way (a loop?)",
                                  lexical, kMaxSymlinks),
                      fmt::format("remove or fix the symlink {}", candidate));
        char buf[PATH_MAX];
        const ssize_t n = ::readlink(candidate.c_str(), buf, sizeof buf);
        if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
          throw Error(fmt::format("cannot protect {}: cannot read the symlink {}: {}", lexical,
                                  candidate, n < 0 ? std::strerror(errno) : "bad target"),
                      "remove or fix the link, or drop the read_only entry");
        std::string next(buf, static_cast<std::size_t>(n));
        if (next[0] != '/') next = resolved + "/" + next;
        for (std::size_t r = k + 1; r < parts.size(); ++r) next += "/" + parts[r];
        plan_deny_write_one(next, links + 1);
        return;
      }
      if (!last && !S_ISDIR(st.st_mode)) {
        // A file on the way (.claude a file, for .claude/commands): nothing
        // is below it, and nothing can be once it can no longer be replaced
        // by a directory. Pinned, it stays writable.
        const std::string* root = innermost_root(resolved, writable);
        if (root == nullptr || within_any(resolved, masked_dirs) ||
            !pinned.insert(candidate).second)
          return;
        // Another run's file placeholder: held, or its removal would detach
        // the pin and let a directory be made in its place.
        if (S_ISREG(st.st_mode) && st.st_size == 0) hold_placeholder(data, candidate);
        pin_ancestors(*root, candidate);
        MountOp op;
        op.kind = MountKind::pin;
        op.target = candidate;
        op.target_is_dir = false;
        add(std::move(op));
        return;
      }
      // Another run's placeholder directory on the way (.git for .git/hooks):
      // held, so its creator leaves it to the last run using it.
      if (!last && S_ISDIR(st.st_mode)) {
        const std::string* root = innermost_root(candidate, writable);
        if (root != nullptr && *root != candidate) hold_placeholder(data, candidate);
      }
      resolved = candidate;
    }
    const std::string* root = innermost_root(resolved, writable);
    if (root == nullptr || within_any(resolved, masked_dirs)) return;  // already read-only
    pin_ancestors(*root, resolved);
    struct stat st {};
    ::stat(resolved.c_str(), &st);
    if ((S_ISREG(st.st_mode) && st.st_size == 0) || S_ISDIR(st.st_mode))
      hold_placeholder(data, resolved);
    MountOp op;
    op.kind = MountKind::protect;
    op.target = resolved;
    op.target_is_dir = S_ISDIR(st.st_mode);
    add(std::move(op));
  }

  void plan_deny_write() {
    std::set<std::string> seen;
    for (const auto& p : policy.filesystem.deny_write) {
      auto lex = absolute(p, cwd);
      if (seen.insert(lex).second) plan_deny_write_one(lex);
    }
  }

  void plan_system() {
    MountOp proc;
    proc.kind = MountKind::proc;
    proc.target = "/proc";
    add(proc);
    // OCI maskedPaths / readonlyPaths: kernel memory, keyrings, the SysRq
    // trigger and scheduler/timer internals that leak host activity.
    for (const char* p : {"/proc/kcore", "/proc/keys", "/proc/sysrq-trigger", "/proc/timer_list",
                          "/proc/timer_stats", "/proc/latency_stats", "/proc/sched_debug",
                          "/proc/kallsyms", "/proc/kmsg", "/proc/kpagecount", "/proc/kpageflags",
                          "/proc/kpagecgroup", "/proc/config.gz"}) {
      MountOp op;
      op.kind = MountKind::mask_file;
      op.target = p;
      op.target_is_dir = false;
      op.optional = true;
      add(op);
    }
    // Init stays in sbx's cgroup, outside the command's cgroup namespace
    // (join_sandbox_cgroup), and a process's cgroup file needs no ptrace
    // rights: /proc/1/cgroup would show the host's cgroup path relative to
    // the sandbox's group ("0::/../../user.slice/..."). Empty instead.
    MountOp init_cgroup;
    init_cgroup.kind = MountKind::empty_file;
    init_cgroup.target = "/proc/1/cgroup";
    init_cgroup.target_is_dir = false;
    init_cgroup.optional = true;
    add(init_cgroup);
    for (const char* p : {"/proc/acpi", "/proc/scsi", "/proc/asound", "/proc/driver"}) {
      MountOp op;
      op.kind = MountKind::mask_dir;
      op.target = p;
      op.optional = true;
      op.size_bytes = 4096;
      op.read_only_at_end = true;
      add(op);
    }
    for (const char* p : {"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"}) {
      MountOp op;
      op.kind = MountKind::ro_self;
      op.target = p;
      op.optional = true;
      add(op);
    }
    for (const char* p : {"/sys/firmware", "/sys/kernel/security", "/sys/kernel/debug"}) {
      MountOp op;
      op.kind = MountKind::mask_dir;
      op.target = p;
      op.optional = true;
      op.size_bytes = 4096;
      op.read_only_at_end = true;
      add(op);
    }
    MountOp dev;
    dev.kind = MountKind::dev;
    dev.target = "/dev";
    dev.read_only_at_end = true;
    add(dev);
    MountOp shm;
    shm.kind = MountKind::tmpfs;
    shm.target = "/dev/shm";
    shm.mode = 01777;
    shm.size_bytes = policy.filesystem.tmp_size_bytes;
    shm.create_target = true;
    add(shm);
    MountOp tmp;
    tmp.kind = MountKind::tmpfs;
    tmp.target = "/tmp";
    tmp.mode = 01777;
    tmp.size_bytes = policy.filesystem.tmp_size_bytes;
    add(tmp);
    for (const auto& t : policy.filesystem.tmpfs) {
      MountOp op;
      op.kind = MountKind::tmpfs;
      op.target = absolute(t.path, cwd);
      op.size_bytes = t.size_bytes;
      op.mode = t.mode;
      if (op.target == "/" || op.target == "/proc" || op.target == "/dev")
        throw Error(fmt::format("tmpfs on {} is not allowed", op.target), "pick another path");
      fresh_dirs.push_back(op.target);
      add(std::move(op));
    }
  }

  // Host IPC endpoints that hand out more power than the sandbox has: the
  // Docker/containerd/podman APIs (root on the host), the D-Bus buses
  // (systemd can start commands), the ssh agent (the user's keys).
  void plan_host_sockets() {
    std::set<std::string> allowed;
    for (const auto& s : policy.filesystem.allow_unix_sockets)
      if (auto r = real_path(absolute(s, cwd))) allowed.insert(*r);
    std::vector<std::string> candidates = {"/run/docker.sock",
                                           "/var/run/docker.sock",
                                           "/run/containerd",
                                           "/run/podman",
                                           "/run/dbus",
                                           "/run/user",
                                           "/run/snapd.socket",
                                           "/run/snapd-snap.socket",
                                           "/run/systemd/private",
                                           "/run/systemd/io.systemd.Credentials",
                                           "/run/libvirt",
                                           "/run/lxd",
                                           "/var/lib/lxd/unix.socket",
                                           "/run/incus",
                                           "/run/screen",  // GNU screen: `screen -X stuff` types
                                           "/var/run/screen",  // into the user's terminal
                                           "/run/sbx"};        // control sockets (docs/control.md)
    // A directory is hidden whole only if it is somebody's private one (no
    // access for group and others: ssh-agent's /tmp/ssh-XXXX,
    // $XDG_RUNTIME_DIR) and holds nothing the sandbox is given: not /, not
    // inside a writable area, and no home, current or work dir, writable
    // area or allow_read path inside it (never /run, /dev/shm or a parent of
    // the home).
    const auto home = real_path(identity.home.empty() ? "/nonexistent" : identity.home);
    const auto private_dir = [&](const std::optional<std::string>& rdir) {
      if (!rdir || *rdir == "/" || within_any(*rdir, writable)) return false;
      const auto inside = [&](const std::string& p) { return path_is_within(p, *rdir); };
      const auto named_inside = [&](const std::string& p) {
        auto r = real_path(absolute(p, cwd));
        return r && inside(*r);
      };
      struct stat st {};
      return !(home && inside(*home)) && !inside(cwd) &&
             (data.workdir.empty() || !inside(data.workdir)) &&
             std::none_of(writable.begin(), writable.end(), inside) &&
             std::none_of(policy.filesystem.allow_read.begin(), policy.filesystem.allow_read.end(),
                          named_inside) &&
             ::stat(rdir->c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0;
    };
    // A socket named by the environment: its own directory if that is a
    // private one (the socket is then hidden with it), else the socket
    // alone (an agent socket straight in /run or /var/tmp hides only itself).
    const auto socket_and_dir = [&](std::string socket) {
      if (socket.empty() || socket[0] != '/') return;
      if (auto rdir = real_path(parent_of(socket)); private_dir(rdir)) candidates.push_back(*rdir);
      candidates.push_back(std::move(socket));
    };
    if (const char* agent = std::getenv("SSH_AUTH_SOCK"); agent != nullptr)
      socket_and_dir(agent);  // ssh-XXXX/agent.N
    // Terminal multiplexers: their server types whatever a client sends into
    // the user's terminal (tmux send-keys, screen -X stuff), as TIOCSTI
    // would. tmux's socket ($TMUX is "socket,pid,session"; its default
    // directory /tmp/tmux-UID is under the sandbox's fresh /tmp anyway) and
    // screen's directory when it is not /run/screen.
    if (const char* tmux = std::getenv("TMUX"); tmux != nullptr)
      socket_and_dir(std::string(tmux).substr(0, std::string_view(tmux).find(',')));
    if (const char* dir = std::getenv("TMUX_TMPDIR"); dir != nullptr && dir[0] == '/') {
      if (auto rdir = real_path(fmt::format("{}/tmux-{}", dir, ::getuid())); private_dir(rdir))
        candidates.push_back(*rdir);
    }
    if (const char* dir = std::getenv("SCREENDIR"); dir != nullptr && dir[0] == '/') {
      if (auto rdir = real_path(dir); private_dir(rdir)) candidates.push_back(*rdir);
    }
    // The user's runtime dir where it is not below /run/user: the same
    // sockets (session bus, agents) and sbx's own state dirs
    // ($XDG_RUNTIME_DIR/sbx). Only what the XDG spec promises it is.
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && xdg[0] == '/') {
      if (auto rdir = real_path(xdg); private_dir(rdir)) candidates.push_back(*rdir);
    }
    std::set<std::string> done;
    // Masked here (not deny_read's: allow_read may re-expose those).
    std::vector<std::string> socket_dirs;
    for (const auto& c : candidates) {
      auto res = real_path(c);
      if (!res || !done.insert(*res).second || allowed.count(*res)) continue;
      // Inside a writable area the user put it there on purpose; below /tmp
      // the sandbox's fresh tmpfs hides it anyway.
      if (within_any(*res, writable) || within_any(*res, fresh_dirs) ||
          within_any(*res, socket_dirs))
        continue;
      struct stat st {};
      if (::stat(res->c_str(), &st) != 0) continue;
      MountOp op;
      op.target = *res;
      // Host sockets come and go (another sandbox's /run/sbx/NAME, a daemon
      // restarting): one that vanished before the mount has nothing to hide.
      op.optional = true;
      if (S_ISDIR(st.st_mode)) {
        op.kind = MountKind::mask_dir;
        op.size_bytes = 4096;
        op.read_only_at_end = true;
        masked_dirs.push_back(*res);
        socket_dirs.push_back(*res);  // nothing below it needs a mask of its own
      } else {
        op.kind = MountKind::mask_file;
        op.target_is_dir = false;
      }
      add(std::move(op));
    }
    for (const auto& a : allowed) plan_reexpose(a);
  }

  // Targets below a tmpfs that sbx mounts do not exist there: create them.
  void mark_creatable() {
    for (std::size_t i = 0; i < data.ops.size(); ++i) {
      const MountOp* nearest = nullptr;
      for (std::size_t k = 0; k < i; ++k) {
        const auto& a = data.ops[k];
        if (a.target != data.ops[i].target && path_is_within(data.ops[i].target, a.target) &&
            (nearest == nullptr || a.target.size() >= nearest->target.size()))
          nearest = &a;
      }
      if (nearest != nullptr &&
          (nearest->kind == MountKind::tmpfs || nearest->kind == MountKind::mask_dir ||
           nearest->kind == MountKind::dev))
        data.ops[i].create_target = true;
    }
  }
};

}  // namespace

// The name a placeholder is made under before it is renamed into place:
// `name` then a suffix unique in this process. The name is cut short where
// both together would pass the file system's longest name (NAME_MAX, less
// on some: f_namelen), and never inside a UTF-8 character (a casefolding
// directory refuses invalid UTF-8), so that any name the path may end in
// can be protected.
std::string placeholder_temporary_name(int dir, const std::string& name, unsigned serial) {
  const std::string suffix = fmt::format(".sbx-new-{}-{}", ::getpid(), serial);
  std::size_t longest = NAME_MAX;
  if (name.size() + suffix.size() > 128) {  // rare: ask the file system
    struct statfs fs {};
    if (::fstatfs(dir, &fs) == 0 && fs.f_namelen > 0)
      longest = std::min<std::size_t>(longest, static_cast<std::size_t>(fs.f_namelen));
  }
  std::size_t keep = std::min(name.size(), longest - std::min(suffix.size(), longest));
  while (keep > 0 && keep < name.size() && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80)
    --keep;  // name[keep] continues a character: cut before the character
  return name.substr(0, keep) + suffix;
}

void sort_mount_ops(std::vector<MountOp>& ops) {
  std::stable_sort(ops.begin(), ops.end(), [](const MountOp& a, const MountOp& b) {
    if (a.depth() != b.depth()) return a.depth() < b.depth();
    if (a.target != b.target) return false;  // independent: keep planning order
    return kind_rank(a.kind) < kind_rank(b.kind);
  });
}

namespace {

// Removes a placeholder if it is still the empty inode `p` names, nobody
// else protects it (an exclusive flock), and, for another run's, it still
// carries the mark.
void remove_placeholder(const Placeholder& p, bool need_mark) {
  std::string name;
  const UniqueFd dir = open_parent_no_symlinks(p.path, name);
  if (!dir) return;  // gone, or a link on the way now: left as it is
  int fd = open_placeholder(dir.get(), name, p.is_dir);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_dev == p.dev && st.st_ino == p.ino &&
      (!need_mark || ::fgetxattr(fd, kPlaceholderXattr, nullptr, 0) >= 0) &&
      ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
    if (p.is_dir)
      (void)::unlinkat(dir.get(), name.c_str(), AT_REMOVEDIR);  // fails if not empty: it stays
    else if (S_ISREG(st.st_mode) && st.st_size == 0)
      (void)::unlinkat(dir.get(), name.c_str(), 0);
  }
  ::close(fd);
}

}  // namespace

void MountPlanData::remove_placeholders() noexcept {
  // The sandbox is gone: the locks on other runs' placeholders go first, so
  // that this run, if it is the last user of one, can take it exclusively.
  for (auto* list : {&placeholders, &held}) {
    for (auto& p : *list) {
      if (p.fd >= 0) ::close(p.fd);
      p.fd = -1;
    }
  }
  if (!cleanup_placeholders) return;
  cleanup_placeholders = false;
  // Own directories on a thread of their own: freeing a directory's block
  // can be a synchronous discard (~0.5 ms each on an ext4 without journal
  // mounted with `discard`), which the file unlinks need not wait for. None
  // of this run's placeholders lies below another of its placeholder
  // directories (plan_deny_write_one), so the two lists are independent.
  const auto own_dirs = [this] {
    for (auto it = placeholders.rbegin(); it != placeholders.rend(); ++it)
      if (it->is_dir) remove_placeholder(*it, false);
  };
  std::thread dirs;
  try {
    if (std::any_of(placeholders.begin(), placeholders.end(),
                    [](const Placeholder& p) { return p.is_dir; }))
      dirs = std::thread(own_dirs);
  } catch (...) {  // no thread: below, on this one
  }
  for (auto it = placeholders.rbegin(); it != placeholders.rend(); ++it)
    if (!it->is_dir) remove_placeholder(*it, false);
  if (dirs.joinable())
    dirs.join();
  else
    own_dirs();
  // Then the others' (held walking down: reversed, children first), which
  // may contain this run's.
  for (auto it = held.rbegin(); it != held.rend(); ++it) remove_placeholder(*it, true);
}

MountPlanData::~MountPlanData() {
  for (int fd : owned_fds)
    if (fd >= 0) ::close(fd);
  if (placeholder_remover.joinable())
    placeholder_remover.join();
  else
    remove_placeholders();
}

void start_placeholder_removal(MountPlan& plan) noexcept {
  auto& data = plan.data();
  const bool any_dir = std::any_of(data.placeholders.begin(), data.placeholders.end(),
                                   [](const Placeholder& p) { return p.is_dir; }) ||
                       std::any_of(data.held.begin(), data.held.end(),
                                   [](const Placeholder& h) { return h.is_dir; });
  if (!data.cleanup_placeholders || !any_dir || data.placeholder_remover.joinable()) return;
  try {
    data.placeholder_remover = std::thread([&data] {
      data.remove_placeholders();
      startup_trace::mark("supervisor: placeholders removed");
    });
  } catch (...) {  // std::system_error, std::bad_alloc
    // No thread: ~MountPlanData removes them on this one.
  }
}

MountPlan::MountPlan() : data_(std::make_unique<MountPlanData>()) {}
MountPlan::MountPlan(MountPlan&&) noexcept = default;
MountPlan& MountPlan::operator=(MountPlan&&) noexcept = default;
MountPlan::~MountPlan() = default;

const std::vector<int>& mount_plan_fds(const MountPlan& plan) {
  return plan.data().owned_fds;
}

MountPlan prepare_mount_plan(const Policy& policy, const Identity& identity,
                             Placeholders placeholders) {
  MountPlan plan;
  auto& data = plan.data();
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf) == nullptr)
    throw Error(fmt::format("cannot read the current directory: {}", std::strerror(errno)),
                "cd into an existing directory or pass --workdir");
  Planner planner{policy, identity, data, buf};
  planner.plan_system();
  planner.plan_writable();
  planner.plan_deny_read();
  for (const auto& p : policy.filesystem.allow_read) planner.plan_reexpose(p);
  // A read-only work dir below /tmp (or an extra tmpfs) would not exist
  // inside: show it read-only so the command can still start there.
  if (!policy.filesystem.workdir_writable) planner.plan_reexpose(data.workdir);
  planner.plan_host_sockets();
  planner.plan_deny_write();
  plan_identity_files(identity, data.ops);
  plan_resolv_conf(policy, data.ops);  // filtered network: the DNS filter is the resolver
  sort_mount_ops(data.ops);
  planner.mark_creatable();
  data.writable_roots = std::move(planner.writable);  // the planning is done with them
  data.masked_dirs = std::move(planner.masked_dirs);
  data.op_fds.assign(data.ops.size(), -1);
  if (placeholders == Placeholders::now) create_placeholders(plan);
  return plan;
}

bool sandbox_may_write(const MountPlan& plan, const std::string& host_path) {
  const auto& data = plan.data();
  // The innermost of each decides: a writable bind inside a masked dir
  // (--hide ~/s --rw ~/s/p) is writable, a mask inside a writable one not.
  const std::string* writable = innermost_root(host_path, data.writable_roots);
  const std::string* masked = innermost_root(host_path, data.masked_dirs);
  if (writable == nullptr || (masked != nullptr && writable->size() < masked->size())) return false;
  // And owned like that writable path: for a root caller it is an idmapped
  // bind, where the files of a third uid are read-only to the command
  // (docs/filesystem.md, the ownership rule); an unprivileged caller's
  // command writes what the caller owns.
  struct stat root {};
  struct stat path {};
  return ::stat(writable->c_str(), &root) == 0 && ::stat(host_path.c_str(), &path) == 0 &&
         root.st_uid == path.st_uid;
}

void create_placeholders(MountPlan& plan) {
  auto& data = plan.data();
  std::vector<PendingPlaceholder> pending;
  pending.swap(data.pending);
  for (const auto& p : pending) create_placeholder(data, p);
}

bool placeholders_pending(const MountPlan& plan) {
  return !plan.data().pending.empty();
}

}  // namespace sbx::runtime
