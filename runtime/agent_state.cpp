// Creation of the policy's missing agent-state paths on the host, before
// the mount plan (rules in agent_state.hpp).
#include "runtime/agent_state.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sbx/error.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "runtime/host_paths.hpp"
#include "runtime/unique_fd.hpp"

namespace sbx::runtime {
namespace {

bool within(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

// Host directories the sandbox may write: where it could have planted a
// symlink during an earlier run.
std::vector<std::string> writable_roots(const Policy& policy) {
  std::vector<std::string> roots;
  const auto& fs = policy.filesystem;
  if (fs.workdir_writable) {
    std::string wd = fs.workdir.empty() ? current_dir() : fs.workdir;
    if (auto r = existing_real_path(wd)) roots.push_back(*r);
  }
  for (const auto& w : fs.allow_write)
    if (auto r = existing_real_path(w)) roots.push_back(*r);
  return roots;
}

[[noreturn]] void refuse(const StatePath& state, const std::string& why, const std::string& fix) {
  throw Error(fmt::format("agent state {}: {}", state.path, why), fix);
}

const char* kind(bool directory) {
  return directory ? "a directory" : "a file";
}

// An existing state path: leave it alone, but say so when it cannot serve.
void check_existing(const StatePath& state, const struct stat& lst) {
  struct stat st = lst;
  if (S_ISLNK(lst.st_mode) && ::stat(state.path.c_str(), &st) != 0)
    refuse(state,
           fmt::format("is a symlink whose target is missing ({}); sbx creates nothing "
                       "through a symlink",
                       std::strerror(errno)),
           "remove the link, or create its target yourself");
  if (S_ISDIR(st.st_mode) != state.directory)
    refuse(state, fmt::format("exists but is not {}", kind(state.directory)),
           fmt::format("move it away, or declare it as {} in filesystem.state",
                       kind(!state.directory)));
}

// A symlink on the way to `dir` that lies inside a writable area may have
// been planted by a sandbox to make sbx create the state elsewhere.
void refuse_planted_symlinks(const StatePath& state, const std::string& dir,
                             const std::vector<std::string>& roots) {
  for (std::size_t i = 1; i <= dir.size();) {
    std::size_t j = dir.find('/', i);
    if (j == std::string::npos) j = dir.size();
    std::string prefix = dir.substr(0, j);
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      auto where = existing_real_path(parent_of(prefix));
      if (where && std::any_of(roots.begin(), roots.end(),
                               [&](const std::string& r) { return within(*where, r); }))
        refuse(state,
               fmt::format("the way there goes through the symlink {}, which lies in a writable "
                           "area the sandbox controls",
                           prefix),
               "remove the link, or create the state path yourself");
    }
    i = j + 1;
  }
}

// What the creating process reports: the component that failed and why.
struct Outcome {
  int failed = -1;  // index of the component, -1 = done
  int error = 0;    // errno
  bool refused_link = false;
};

// Makes `names` below `anchor` (the last one is the state path itself).
// Async-signal-safe: it runs in a child forked from a process that may have
// threads (the C API), so no allocation, no exceptions.
Outcome create_below(int anchor, const char* const* names, int count, bool directory,
                     const char* content, std::size_t content_size) {
  Outcome out;
  int dir = anchor;
  int opened = -1;  // fd of an intermediate directory we opened
  for (int i = 0; i < count; ++i) {
    bool last = i + 1 == count;
    out.failed = i;
    if (!last || directory) {
      bool made = ::mkdirat(dir, names[i], 0700) == 0;
      if (!made && errno != EEXIST) {
        out.error = errno;
        break;
      }
      // O_NOFOLLOW: a symlink put there meanwhile is refused, not followed.
      int fd = ::openat(dir, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        out.error = errno;
        out.refused_link = errno == ELOOP || errno == ENOTDIR;
        break;
      }
      // The exact mode whatever the umask; one that appeared meanwhile is
      // somebody else's: left as it is.
      if (made && ::fchmod(fd, 0700) != 0) {
        out.error = errno;
        ::close(fd);
        break;
      }
      if (opened >= 0) ::close(opened);
      opened = dir = fd;
      if (last) out.failed = -1;
      continue;
    }
    int fd = ::openat(dir, names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) {  // created meanwhile (another sbx): existing, untouched
        out.failed = -1;
        break;
      }
      out.error = errno;
      break;
    }
    std::size_t done = 0;
    errno = 0;
    while (done < content_size) {
      ssize_t n = ::write(fd, content + done, content_size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    if (done != content_size || ::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0) {
      out.error = errno != 0 ? errno : EIO;
      ::close(fd);
      break;
    }
    ::close(fd);
    out.failed = -1;
  }
  if (opened >= 0) ::close(opened);
  return out;
}

// Runs create_below as the command's user. As root for another uid: in a
// child that drops to it first, so the kernel applies that user's rights.
Outcome create_as(const Identity& identity, int anchor, const std::vector<std::string>& names,
                  const StatePath& state) {
  std::vector<const char*> argv;
  for (const auto& n : names) argv.push_back(n.c_str());
  const int count = static_cast<int>(argv.size());
  const char* content = state.initial_content.data();
  const std::size_t size = state.initial_content.size();
  if (::geteuid() != 0 || identity.uid == 0)
    return create_below(anchor, argv.data(), count, state.directory, content, size);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(
        fmt::format("cannot create agent state {}: pipe: {}", state.path, std::strerror(errno)));
  UniqueFd rd(fds[0]);
  UniqueFd wr(fds[1]);
  const gid_t gid = identity.gid;
  pid_t pid = ::fork();
  if (pid < 0)
    throw Error(
        fmt::format("cannot create agent state {}: fork: {}", state.path, std::strerror(errno)));
  if (pid == 0) {
    Outcome out;
    out.failed = 0;
    if (::setgroups(1, &gid) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(identity.uid, identity.uid, identity.uid) != 0) {
      out.error = errno;
    } else {
      ::umask(077);
      out = create_below(anchor, argv.data(), count, state.directory, content, size);
    }
    (void)!::write(wr.get(), &out, sizeof out);
    ::_exit(0);
  }
  wr.reset();
  Outcome out;
  out.failed = 0;
  out.error = EPIPE;
  ssize_t n;
  do n = ::read(rd.get(), &out, sizeof out);
  while (n < 0 && errno == EINTR);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

// Returns why the path was skipped (for the warning), or nothing.
// `policy` gives the writable areas, resolved only when something is missing
// (an existing state path, the usual case, costs one lstat per start).
std::optional<std::string> create_one(const StatePath& state, const Identity& identity,
                                      const Policy& policy) {
  struct stat lst {};
  if (::lstat(state.path.c_str(), &lst) == 0) {
    check_existing(state, lst);
    return std::nullopt;
  }
  if (errno != ENOENT)
    refuse(state, std::strerror(errno), "make it reachable, or remove it from filesystem.state");

  // The deepest ancestor that exists; everything below it is created.
  std::vector<std::string> names;
  std::string anchor = state.path;
  do {
    names.insert(names.begin(), anchor.substr(anchor.rfind('/') + 1));
    anchor = parent_of(anchor);
  } while (::lstat(anchor.c_str(), &lst) != 0 && errno == ENOENT && anchor != "/");
  refuse_planted_symlinks(state, anchor, writable_roots(policy));

  UniqueFd dir(::open(anchor.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat st {};
  if (!dir || ::fstat(dir.get(), &st) != 0)
    refuse(state, fmt::format("cannot open {}: {}", anchor, std::strerror(errno)),
           "create the directory, or remove the path from filesystem.state");
  if (st.st_uid != identity.uid) {
    // Not the command's home (e.g. root's $HOME, the command runs as
    // nobody): it could not use the state there anyway.
    return fmt::format("{} ({} belongs to uid {})", state.path, anchor, st.st_uid);
  }

  Outcome out = create_as(identity, dir.get(), names, state);
  if (out.failed < 0) return std::nullopt;
  std::string failed = anchor == "/" ? "" : anchor;
  for (int i = 0; i <= out.failed && i < static_cast<int>(names.size()); ++i)
    failed += "/" + names[static_cast<std::size_t>(i)];
  if (out.refused_link)
    refuse(state,
           fmt::format("{} is not a plain directory (a symlink put there?): refused", failed),
           "remove it and run again");
  refuse(
      state,
      fmt::format("cannot create {} as uid {}: {}", failed, identity.uid, std::strerror(out.error)),
      state.directory ? fmt::format("create it yourself: mkdir -m 700 -p {}", state.path)
                      : fmt::format("create it yourself with the content {:?} and mode 0600",
                                    state.initial_content));
}

}  // namespace

void create_agent_state(const Policy& policy, const Identity& identity, const WarningSink& warn) {
  if (policy.filesystem.state.empty()) return;
  std::vector<std::string> skipped;
  for (const auto& state : policy.filesystem.state) {
    if (std::find(policy.filesystem.allow_write.begin(), policy.filesystem.allow_write.end(),
                  state.path) == policy.filesystem.allow_write.end())
      refuse(state, "is not writable in the policy (a state path must also be in allow_write)",
             "add it to allow_write; profiles do this for you");
    if (auto why = create_one(state, identity, policy)) skipped.push_back(std::move(*why));
  }
  if (!skipped.empty() && warn)
    warn(fmt::format(
        "agent state not created: {}; the command runs as uid {}. Run sbx as the user whose "
        "home it is, or set HOME to a directory that uid owns (and --env HOME=... so the "
        "command uses it too)",
        fmt::join(skipped, ", "), identity.uid));
}

}  // namespace sbx::runtime
