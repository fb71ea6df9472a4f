// Canonical host paths for the planners (mounts, Landlock), cheaply.
#pragma once

#include <sys/stat.h>

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

}  // namespace sbx::runtime
