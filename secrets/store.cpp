// The secrets store: one 0600 file per secret in a 0700 directory.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "secrets/secrets.hpp"

namespace sbx::secrets {
namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

std::string errno_text(int e) {
  return std::strerror(e);
}

// mkdir -p with mode 0700 for every directory it creates.
void make_private_dirs(const std::string& dir) {
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      throw Error(fmt::format("cannot create {}: {}", partial, errno_text(errno)),
                  "check that the parent directory is writable, or set XDG_DATA_HOME");
    }
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string default_store_dir(const std::function<const char*(const char*)>& getenv) {
  const char* xdg = getenv("XDG_DATA_HOME");
  if (xdg != nullptr && xdg[0] == '/') return fmt::format("{}/sbx/secrets", xdg);
  const char* home = getenv("HOME");
  if (home != nullptr && home[0] == '/') {
    std::string h = home;
    while (h.size() > 1 && h.back() == '/') h.pop_back();
    return fmt::format("{}/.local/share/sbx/secrets", h == "/" ? "" : h);
  }
  throw Error("cannot find the secrets store: neither XDG_DATA_HOME nor HOME is an absolute path",
              "set HOME (or XDG_DATA_HOME) to your home directory");
}

void check_name(std::string_view name) {
  const auto bad = [&](std::string_view why) {
    throw Error(fmt::format("invalid secret name '{}': {}", name, why),
                "use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter, digit or "
                "'_' (e.g. anthropic_api_key)");
  };
  if (name.empty()) bad("empty");
  if (name.size() > 64) bad("longer than 64 characters");
  if (name.front() == '.' || name.front() == '-') bad("starts with '.' or '-'");
  for (char c : name) {
    if (!name_char(c)) bad(fmt::format("character '{}' is not allowed", c == '\n' ? ' ' : c));
  }
}

Request parse_request(std::string_view spec) {
  Request r;
  std::size_t colon = spec.find(':');
  r.name = std::string(spec.substr(0, colon));
  check_name(r.name);
  if (colon == std::string_view::npos) return r;
  r.env = std::string(spec.substr(colon + 1));
  bool ok = !r.env.empty() && !(r.env[0] >= '0' && r.env[0] <= '9');
  for (char c : r.env) {
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (!ok) {
    throw Error(fmt::format("--secret {}: invalid environment variable name '{}'", spec, r.env),
                "write --secret NAME or --secret NAME:VARIABLE, e.g. "
                "--secret anthropic:ANTHROPIC_API_KEY");
  }
  return r;
}

std::string Store::path_of(std::string_view name) const {
  check_name(name);
  return fmt::format("{}/{}", dir_, name);
}

bool Store::exists(std::string_view name) const {
  struct stat st {};
  return ::lstat(path_of(name).c_str(), &st) == 0;
}

void Store::check_dir_private() const {
  struct stat st {};
  if (::lstat(dir_.c_str(), &st) != 0) {
    throw Error(fmt::format("no secrets store at {}: {}", dir_, errno_text(errno)),
                "add a secret first: sbx secrets add NAME");
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    throw Error(fmt::format("the secrets store {} is not a private directory of yours "
                            "(mode {:o}, owner uid {})",
                            dir_, st.st_mode & 07777, st.st_uid),
                fmt::format("chown $(id -u) {0} && chmod 700 {0}", dir_));
  }
}

void Store::add(std::string_view name, std::string_view value, bool replace) const {
  const std::string path = path_of(name);
  if (value.empty()) {
    throw Error(fmt::format("secret '{}': the value is empty", name),
                "give the value on stdin, with --from-env VAR or with --from-file PATH");
  }
  if (value.size() > kMaxSecretBytes) {
    throw Error(fmt::format("secret '{}': the value has {} bytes, more than the {} allowed", name,
                            value.size(), kMaxSecretBytes),
                "store a smaller value (a token or key, not a file tree)");
  }
  make_private_dirs(dir_);
  check_dir_private();
  if (!replace && exists(name)) {
    throw Error(
        fmt::format("secret '{}' exists already", name),
        fmt::format("replace it with --force, or remove it first: sbx secrets rm {}", name));
  }
  // Write a temporary file and rename it over the old one: a reader never
  // sees half a value, and a crash leaves the old value in place.
  std::string tmp = fmt::format("{}/.{}.XXXXXX", dir_, name);
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    throw Error(fmt::format("cannot create a file in {}: {}", dir_, errno_text(errno)),
                "check the directory's permissions and free space");
  }
  const auto fail = [&](std::string_view step) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot {} {}: {}", step, tmp, errno_text(e)),
                "check the directory's permissions and free space");
  };
  if (::fchmod(fd.get(), 0600) != 0) fail("chmod");
  std::size_t done = 0;
  while (done < value.size()) {
    ssize_t n = ::write(fd.get(), value.data() + done, value.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("fsync");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
}

std::string Store::read(std::string_view name) const {
  const std::string path = path_of(name);
  check_dir_private();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    int e = errno;
    if (e == ENOENT) {
      throw Error(fmt::format("no secret named '{}' in {}", name, dir_),
                  fmt::format("add it: sbx secrets add {} (list them: sbx secrets list)", name));
    }
    throw Error(fmt::format("cannot open secret {}: {}", path, errno_text(e)),
                "it must be a regular file of yours, mode 0600");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 077) != 0) {
    throw Error(fmt::format("secret {} is not a private file of yours (mode {:o}, owner uid {})",
                            path, st.st_mode & 07777, st.st_uid),
                fmt::format("chmod 600 {} (and check who changed it)", path));
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxSecretBytes) {
    throw Error(fmt::format("secret {} has {} bytes, more than the {} allowed", path, st.st_size,
                            kMaxSecretBytes),
                "store a smaller value");
  }
  std::string value(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < value.size()) {
    ssize_t n = ::read(fd.get(), value.data() + done, value.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw Error(fmt::format("cannot read secret {}: {}", path, errno_text(errno)));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  value.resize(done);
  return value;
}

bool Store::remove(std::string_view name) const {
  const std::string path = path_of(name);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw Error(fmt::format("cannot remove secret {}: {}", path, errno_text(errno)),
              "check the store's permissions");
}

std::vector<Info> Store::list() const {
  std::vector<Info> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    throw Error(fmt::format("cannot list {}: {}", dir_, errno_text(errno)),
                "check the store's permissions");
  }
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;  // ".", "..", temporary files
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    Info info;
    info.name = std::move(name);
    info.size = static_cast<std::uint64_t>(st.st_size);
    info.modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    out.push_back(std::move(info));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Info& a, const Info& b) { return a.name < b.name; });
  return out;
}

}  // namespace sbx::secrets
