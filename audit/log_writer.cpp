// The JSONL audit log: whole lines appended with one write(2) each, 0600,
// size-based rotation, failures counted instead of blocking the sandbox.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "audit/audit.hpp"

namespace sbx::audit {
namespace {

// mkdir -p with 0700 for the directories we create: the log's directory must
// not be listable or writable by anyone else.
void make_parents(const std::string& path) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      throw Error(
          fmt::format("cannot create the audit log directory {}: {}", dir, std::strerror(errno)),
          "choose another file with --audit-log FILE, or create the directory");
    }
  }
}

}  // namespace

LogWriter::LogWriter(Options options) : options_(std::move(options)) {
  if (options_.path.empty() || options_.path.front() != '/') {
    throw Error(fmt::format("audit log path '{}' is not absolute", options_.path),
                "give an absolute path to --audit-log");
  }
  make_parents(options_.path);
  open_log();
}

LogWriter::~LogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void LogWriter::open_log() {
  // O_APPEND: every write lands at the end even with several writers, and a
  // single write of a whole line is never interleaved with another's (the
  // inode lock is held for the whole write on local file systems).
  // O_NOFOLLOW: a symlink planted at the log path is refused, not followed.
  int fd =
      ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    throw Error(
        fmt::format("cannot open the audit log {}: {}", options_.path, std::strerror(errno)),
        "choose a writable file with --audit-log FILE (audit.log in the profile)");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("audit log {} is not a regular file", options_.path),
                "point --audit-log at a regular file");
  }
  // An existing log keeps no looser mode than a new one.
  if ((st.st_mode & 077) != 0 && st.st_uid == ::geteuid()) (void)::fchmod(fd, 0600);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = static_cast<std::uint64_t>(st.st_size);
}

void LogWriter::rotate() {
  // path.N-1 -> path.N, ..., path -> path.1; the oldest falls off.
  for (int k = options_.keep_rotated; k >= 2; --k) {
    const std::string from = fmt::format("{}.{}", options_.path, k - 1);
    const std::string to = fmt::format("{}.{}", options_.path, k);
    (void)::rename(from.c_str(), to.c_str());  // ENOENT: fewer rotated files so far
  }
  if (options_.keep_rotated >= 1) {
    const std::string to = options_.path + ".1";
    if (::rename(options_.path.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      last_error_ = fmt::format("rotate {}: {}", options_.path, std::strerror(errno));
      return;  // keep appending to the current file rather than losing records
    }
  } else {
    (void)::truncate(options_.path.c_str(), 0);
  }
  ++rotations_;
  try {
    open_log();
  } catch (const Error& e) {
    last_error_ = e.what();
  }
}

void LogWriter::append(const nlohmann::json& record) {
  std::string line;
  try {
    line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const std::exception& e) {
    ++dropped_;
    last_error_ = e.what();
    return;
  }
  line += '\n';
  if (options_.max_size_bytes > 0) {
    // Another writer may have grown (or rotated) the file meanwhile.
    struct stat st {};
    struct stat by_name {};
    if (::fstat(fd_, &st) == 0) {
      size_ = static_cast<std::uint64_t>(st.st_size);
      // Rotated away by another sbx writing the same log: follow the name.
      if (::stat(options_.path.c_str(), &by_name) != 0 || by_name.st_ino != st.st_ino ||
          by_name.st_dev != st.st_dev) {
        try {
          open_log();
        } catch (const Error& e) {
          last_error_ = e.what();
        }
      }
    }
    if (size_ > 0 && size_ + line.size() > options_.max_size_bytes) rotate();
  }
  for (;;) {
    const ssize_t n = ::write(fd_, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n == static_cast<ssize_t>(line.size())) {
      size_ += line.size();
      ++written_;
      return;
    }
    ++dropped_;
    if (n < 0) {
      last_error_ = fmt::format("write {}: {}", options_.path, std::strerror(errno));
    } else {
      // A short write (disk full): end the fragment so the next record starts
      // on its own line; readers count the fragment as an invalid line.
      last_error_ = fmt::format("write {}: short write (disk full?)", options_.path);
      (void)!::write(fd_, "\n", 1);
    }
    return;
  }
}

}  // namespace sbx::audit
