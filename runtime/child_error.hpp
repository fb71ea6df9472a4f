// ChildError — how a sandbox process reports a failure to the supervisor.
//
// Between clone() and execve() nothing may allocate, log or throw (the parent
// may be multi-threaded; spdlog holds mutexes). A failing step fills this
// fixed-size record and writes it whole to the sync socket; only the
// supervisor turns it into a message for the user.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace sbx::runtime {

struct ChildError {
  char step[48] = {};     // the launch step, e.g. "pivot_root", "uid_map"
  int error_number = 0;   // errno at the failure (0 if not a syscall failure)
  char detail[256] = {};  // path or value involved, truncated

  // Async-signal-safe: no allocation, bounded copies.
  bool fail(const char* step_name, int err, const char* what = "") {
    copy(step, sizeof step, step_name);
    error_number = err;
    copy(detail, sizeof detail, what);
    return false;
  }
  bool failed() const { return step[0] != '\0'; }

 private:
  static void copy(char* dst, std::size_t cap, const char* src) {
    std::size_t i = 0;
    for (; src != nullptr && src[i] != '\0' && i + 1 < cap; ++i) dst[i] = src[i];
    dst[i] = '\0';
  }
};

}  // namespace sbx::runtime
