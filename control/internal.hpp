// Private helpers of the control module.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>

namespace sbx::control {

// A minimal owning fd (the module does not depend on runtime/).
class UniqueFdLite {
 public:
  explicit UniqueFdLite(int fd = -1) : fd_(fd) {}
  ~UniqueFdLite() { reset(); }
  UniqueFdLite(UniqueFdLite&& o) noexcept : fd_(o.release()) {}
  UniqueFdLite& operator=(UniqueFdLite&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFdLite(const UniqueFdLite&) = delete;
  UniqueFdLite& operator=(const UniqueFdLite&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// True when the lock file in dir_fd can be taken (its owner is gone).
bool lock_is_free(int dir_fd);
// A process beyond its pid, as the caller's /proc shows it: the caller's
// pid and time namespaces (inodes; time 0 on kernels without), the state
// letter and the start time in clock ticks after boot. nullopt when /proc
// is not the caller's pid namespace's or the process is not there.
struct ProcessStamp {
  std::uint64_t pid_ns = 0;
  std::uint64_t time_ns = 0;
  char state = '?';
  std::uint64_t start = 0;
};
std::optional<ProcessStamp> process_stamp(pid_t pid);

// Unlinks every entry of a state dir (files only). True when it is empty.
bool remove_dir_contents(int dir_fd);
// Whether the directory open as dir_fd holds nothing but . and .., read on
// that fd itself (getdents64: no second fd, so it works at the open-file
// limit); nullopt when it cannot be read. Moves the fd's offset.
std::optional<bool> directory_is_empty(int dir_fd);

// The emptied state dir a finished sandbox leaves in the base for the next
// start to take (server.cpp): two renames instead of a mkdir and an rmdir.
// Never listed, never swept as stale.
inline constexpr const char* kSpareDir = ".spare";

// The socket path of a state dir; must fit sockaddr_un.sun_path.
std::string socket_path(const std::string& dir);

}  // namespace sbx::control
