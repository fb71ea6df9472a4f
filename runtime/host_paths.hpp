// Canonical host paths for the planners (mounts, Landlock), cheaply.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string>

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

// Up to `limit` bytes of the regular file `name` of `dir` (AT_FDCWD: a
// path); empty if missing, unreadable, a symlink (never followed) or not a
// regular file (O_NONBLOCK: a FIFO does not block the open). Sized by
// fstat, so a large limit costs nothing for a small or missing file.
inline std::string read_regular_file(int dir, const char* name, std::size_t limit) {
  std::string data;
  const int fd = ::openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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

}  // namespace sbx::runtime
