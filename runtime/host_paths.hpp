// Canonical host paths for the planners (mounts, Landlock), cheaply.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace sbx::runtime {

// realpath(3), but a path that does not exist costs one stat() instead of a
// readlink() per component. Most policy paths (the credential lists of the
// built-in profiles) do not exist on a given host. stat fails exactly when
// realpath would (a missing component, a dangling or looping symlink, no
// search permission), with the same errno.
inline std::optional<std::string> existing_real_path(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return std::nullopt;
  char buf[PATH_MAX];
  if (::realpath(path, buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

inline std::optional<std::string> existing_real_path(const std::string& path) {
  return existing_real_path(path.c_str());
}

// The process's working directory; "/" when it cannot be read (removed).
inline std::string current_dir() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof buf) != nullptr ? std::string(buf) : std::string("/");
}

// The directory part of a path ("/" for "/x" or a bare name).
inline std::string parent_of(const std::string& path) {
  const auto pos = path.rfind('/');
  if (pos == 0 || pos == std::string::npos) return "/";
  return path.substr(0, pos);
}

// Up to `limit` bytes of the regular file `name` of `dir` (AT_FDCWD: a
// path); empty if missing, unreadable, a symlink (never followed, unless
// `follow_link`: as git follows a linked config) or not a regular file
// (O_NONBLOCK: a FIFO does not block the open). Sized by fstat, so a large
// limit costs nothing for a small or missing file.
inline std::string read_regular_file(int dir, const char* name, std::size_t limit,
                                     bool follow_link = false) {
  std::string data;
  const int fd =
      ::openat(dir, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow_link ? 0 : O_NOFOLLOW));
  if (fd < 0) return data;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    data.resize(std::min(limit, static_cast<std::size_t>(st.st_size)));
    std::size_t got = 0;
    while (got < data.size()) {
      const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    data.resize(got);
  }
  ::close(fd);
  return data;
}

// `text` without its trailing newlines and carriage returns (as git reads
// a gitfile or a commondir).
inline void strip_line_ends(std::string& text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
}

// The git dir a work tree's `.git` gitfile names ("gitdir: PATH", as `git
// worktree add` and `--separate-git-dir` write it), made absolute against
// the work tree `top` (lexically: ".." is kept for the caller to resolve);
// nullopt when TOP/.git is no such file.
inline std::optional<std::string> gitfile_dir(const std::string& top) {
  std::string text = read_regular_file(AT_FDCWD, (top + "/.git").c_str(), 4096);
  constexpr std::string_view kPrefix = "gitdir: ";
  if (!text.starts_with(kPrefix)) return std::nullopt;
  text.erase(0, kPrefix.size());
  strip_line_ends(text);
  if (text.empty()) return std::nullopt;
  return text.front() == '/' ? text : top + "/" + text;
}

// What git takes for a git dir: HEAD, and objects/ or (a linked worktree's)
// commondir (a symlink followed, as git follows it). `dir` an open
// directory, or AT_FDCWD with `path`.
inline bool looks_like_git_dir(int dir, const std::string& path = ".") {
  struct stat head {};
  struct stat objects {};
  struct stat common {};
  const std::string at = path == "." ? std::string() : path + "/";
  return fstatat(dir, (at + "HEAD").c_str(), &head, AT_SYMLINK_NOFOLLOW) == 0 &&
         (S_ISREG(head.st_mode) || S_ISLNK(head.st_mode)) &&
         ((fstatat(dir, (at + "objects").c_str(), &objects, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(objects.st_mode)) ||
          (fstatat(dir, (at + "commondir").c_str(), &common, 0) == 0 &&  // followed, as git does
           S_ISREG(common.st_mode)));
}

// The git dir a gitfile `.git` of the work tree `top` names, and the common
// dir that one names in its `commondir` (a linked worktree), resolved: what
// git reads in place of TOP/.git. Empty when .git is no gitfile.
inline std::vector<std::string> gitfile_git_dirs(const std::string& top) {
  std::vector<std::string> dirs;
  const auto named = gitfile_dir(top);
  const auto git_dir = named ? existing_real_path(*named) : std::nullopt;
  if (!git_dir || !looks_like_git_dir(AT_FDCWD, *git_dir)) return dirs;  // git refuses it too
  dirs.push_back(*git_dir);
  // A symlink there is followed: git reads it with strbuf_read_file.
  std::string common = read_regular_file(AT_FDCWD, (*git_dir + "/commondir").c_str(), 4096,
                                         /*follow_link=*/true);
  strip_line_ends(common);
  if (common.empty()) return dirs;
  if (auto common_dir =
          existing_real_path(common.front() == '/' ? common : *git_dir + "/" + common))
    if (*common_dir != *git_dir && looks_like_git_dir(AT_FDCWD, *common_dir))
      dirs.push_back(*common_dir);
  return dirs;
}

// Moves the entry `name` of `dir` aside as NAME.sbx-quarantine-TIME and
// returns that name ("" if it could not). renameat2 moves the entry itself,
// never what a symlink points to; RENAME_NOREPLACE keeps a name the sandbox
// planted in advance (a directory there made rename() fail) from stopping
// the move: then a random suffix is added.
inline std::string quarantine(int dir, const std::string& name, long stamp) {
  std::string moved = fmt::format("{}.sbx-quarantine-{}", name, stamp);
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (::renameat2(dir, name.c_str(), dir, moved.c_str(), RENAME_NOREPLACE) == 0) return moved;
    // EINVAL: a file system without RENAME_NOREPLACE.
    if (errno == EINVAL && ::renameat(dir, name.c_str(), dir, moved.c_str()) == 0) return moved;
    if (errno != EEXIST) break;
    moved = fmt::format("{}.sbx-quarantine-{}-{:08x}", name, stamp, std::random_device()());
  }
  return {};
}

// Creates the entry `name` of `dir` with `content` (O_EXCL, O_NOFOLLOW:
// never over anything, never through a symlink), then its mode and, where
// allowed, its owner (uid/gid -1: the caller's; a root caller's file would
// otherwise be root's). False if it could not be written in full.
inline bool create_file_at(int dir, const std::string& name, std::string_view content,
                           unsigned mode, uid_t uid, gid_t gid) {
  const int fd =
      ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  bool ok = true;
  while (ok && done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  (void)::fchown(fd, uid, gid);  // EPERM unless root: stays the caller's
  ok = ok && ::fchmod(fd, mode) == 0;
  ::close(fd);
  return ok;
}

}  // namespace sbx::runtime
