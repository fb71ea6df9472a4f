#include "runtime/shared_baseline.hpp"

#include "control/control.hpp"
#include "runtime/host_paths.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include <sbx/error.hpp>

namespace sbx::runtime {
namespace {

// Written before the snapshot: a file without it holds none (its first run
// ended or died before it published).
constexpr std::string_view kHeader = "sbx-baseline 1\n";
// The exclusive lock lasts one snapshot (milliseconds) or one unlink.
constexpr int kAttempts = 100;
constexpr useconds_t kPause = 10000;

// Whether `fd` is still the file `name` of `base`: the last run out may
// have removed it between our open and our lock (then a new one is made).
bool still_named(int base, const std::string& name, int fd) {
  struct stat open_st {};
  struct stat named_st {};
  return ::fstat(fd, &open_st) == 0 &&
         ::fstatat(base, name.c_str(), &named_st, AT_SYMLINK_NOFOLLOW) == 0 &&
         open_st.st_dev == named_st.st_dev && open_st.st_ino == named_st.st_ino;
}

std::string read_all(int fd) {
  std::string data;
  char buf[65536];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(fmt::format("cannot read a git/agent guard snapshot: {}", std::strerror(errno)));
    if (n == 0) return data;
    data.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
}

}  // namespace

SharedBaseline::SharedBaseline(const std::string& base, std::string key)
    : SharedBaseline(base, std::move(key), false) {}

SharedBaseline::SharedBaseline(std::string base, std::string key, bool state_base)
    : base_path_(std::move(base)),
      name_(".guard-" + std::move(key)),
      path_(base_path_ + "/" + name_),
      state_base_(state_base) {
  open_base();
  lock();
}

void SharedBaseline::open_base() {
  for (int attempt = 0;; ++attempt) {
    base_.reset(::open(base_path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (base_) return;
    // A base in the shared /tmp goes when empty: made again, as the
    // control server does.
    if (errno == ENOENT && state_base_ && attempt < 3) {
      (void)control::state_base(true);
      continue;
    }
    throw Error(fmt::format("cannot open {}: {}", base_path_, std::strerror(errno)));
  }
}

void SharedBaseline::lock() {
  const std::string& path = path_;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) ::usleep(kPause);
    UniqueFd fd(
        ::openat(base_.get(), name_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd && errno == ENOENT && state_base_) {  // its /tmp base removed as we came
      open_base();
      continue;
    }
    if (!fd) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      if (!still_named(base_.get(), name_, fd.get())) continue;
      fd_ = std::move(fd);  // the first: snapshot, then publish()
      return;
    }
    if (errno != EWOULDBLOCK)
      throw Error(fmt::format("cannot lock {}: {}", path, std::strerror(errno)));
    // Held by others. Shared too, unless one of them holds it exclusively
    // (taking its snapshot, or the last run out removing the file).
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK)
        throw Error(fmt::format("cannot lock {}: {}", path, std::strerror(errno)));
      continue;
    }
    if (!still_named(base_.get(), name_, fd.get())) continue;
    std::string data = read_all(fd.get());
    // Nothing stored: its first run ended before it published. Again,
    // exclusively this time.
    if (data.empty()) continue;
    if (!std::string_view(data).starts_with(kHeader)) {
      throw Error(fmt::format("{} is not a snapshot sbx stored", path),
                  fmt::format("remove it once no sbx runs (`sbx ps`), then run again"));
    }
    stored_ = data.substr(kHeader.size());
    fd_ = std::move(fd);
    return;
  }
  throw Error(fmt::format("cannot take {}: another sbx run has held it for over a second", path),
              "find it with `fuser " + path + "` and end it, then run again");
}

void SharedBaseline::publish(const std::string& snapshot) {
  const std::string data = std::string(kHeader) + snapshot;
  std::size_t done = 0;
  bool ok = ::ftruncate(fd_.get(), 0) == 0;
  while (ok && done < data.size()) {
    const ssize_t n =
        ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  if (!ok) {
    const int err = errno;
    ::ftruncate(fd_.get(), 0);  // nothing half-written for the runs after
    throw Error(
        fmt::format("cannot store the guard's snapshot in {}: {}", path_, std::strerror(err)),
        "free space in sbx's state base (/run/sbx, $XDG_RUNTIME_DIR/sbx)");
  }
  // Shared from here: runs starting now read it. flock() converts by
  // dropping the lock and taking it again; a run that takes it exclusively
  // in between snapshots before this run's sandbox starts, as good as ours.
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) ::usleep(kPause);
    if (::flock(fd_.get(), LOCK_SH | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK) break;
  }
  throw Error(fmt::format("cannot share the lock of {}: {}", path_, std::strerror(errno)));
}

SharedBaseline::~SharedBaseline() {
  if (!fd_) return;
  // The last one out: no other run holds it, none can take it while we do.
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0 || !still_named(base_.get(), name_, fd_.get()))
    return;
  ::unlinkat(base_.get(), name_.c_str(), 0);
  // As control/server.cpp does with a base in the shared /tmp: removed
  // when empty (fails otherwise).
  if (state_base_ && base_path_.starts_with("/tmp/")) (void)::rmdir(base_path_.c_str());
}

std::optional<SharedBaseline> SharedBaseline::open(
    std::string key, const std::function<bool(const std::string&)>& sandbox_may_write,
    std::string& base) {
  base = control::state_base(true);
  if (sandbox_may_write) {
    const auto resolved = existing_real_path(base);
    if (!resolved || sandbox_may_write(*resolved)) return std::nullopt;
  }
  return SharedBaseline(base, std::move(key), true);
}

std::string SharedBaseline::unshared(const std::string& base, const std::string& what) {
  return fmt::format(
      "the sandbox may write sbx's state base {}, so runs at the same time do not share their "
      "snapshot of {}: one started while this sandbox runs would take what it changes there as "
      "the original and put it back at its end; keep {} out of the writable paths (a user's "
      "base follows XDG_RUNTIME_DIR; docs/filesystem.md, Several agents at once)",
      base, what, base);
}

std::string SharedBaseline::key_of(const char* kind, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(fmt::format("fstat: {}", std::strerror(errno)));
  return fmt::format("{}-{}-{}", kind, static_cast<unsigned long long>(st.st_dev),
                     static_cast<unsigned long long>(st.st_ino));
}

}  // namespace sbx::runtime
