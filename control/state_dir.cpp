// State directories of running sandboxes: where they live, which are alive
// (their sbx holds the flock), and the cleaning of stale ones.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "control/control.hpp"
#include "control/internal.hpp"

namespace sbx::control {
namespace {

// The base must be ours alone: another user who could write it could plant
// a socket under a sandbox's name, or read the states.
void check_private_dir(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    throw Error(fmt::format("cannot inspect {}: {}", path, std::strerror(errno)),
                "check the directory or set XDG_RUNTIME_DIR");
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(fmt::format("{} is not a directory (a symlink or a file)", path),
                fmt::format("remove {} or set XDG_RUNTIME_DIR", path));
  }
  if (st.st_uid != ::geteuid()) {
    throw Error(
        fmt::format("{} belongs to uid {}, not to you (uid {})", path, st.st_uid, ::geteuid()),
        fmt::format("remove {} (someone else created it) or set XDG_RUNTIME_DIR", path));
  }
  if ((st.st_mode & 077) != 0) {
    throw Error(
        fmt::format("{} is accessible to other users (mode {:o})", path, st.st_mode & 07777),
        fmt::format("chmod 700 {}", path));
  }
}

void make_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    throw Error(fmt::format("cannot create {}: {}", path, std::strerror(errno)),
                "set XDG_RUNTIME_DIR to a writable private directory");
  }
  check_private_dir(path);
}

// Root of the host, not "root" of a user namespace (unshare -r, a rootless
// container), who cannot create /run/sbx.
bool in_initial_user_namespace() {
  std::ifstream in("/proc/self/uid_map");
  unsigned long inside = 1, outside = 1, count = 0;
  in >> inside >> outside >> count;
  return in && inside == 0 && outside == 0 && count == 4294967295UL;
}

}  // namespace

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && name.front() != '.' &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
         });
}

std::string state_base(bool create) {
  std::string base;
  if (::geteuid() == 0 && in_initial_user_namespace()) {
    base = "/run/sbx";
  } else if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && xdg[0] == '/') {
    // XDG_RUNTIME_DIR is the user's own (0700, logind); sbx/ inside it too.
    base = std::string(xdg) + "/sbx";
  } else {
    // No runtime dir (su, cron, setpriv): a private dir in /tmp, checked to
    // be ours and 0700 because anyone can create names in /tmp.
    base = fmt::format("/tmp/sbx-{}", ::geteuid());
  }
  if (create) {
    make_private_dir(base);
  } else {
    struct stat st {};
    if (::lstat(base.c_str(), &st) != 0) return base;  // nothing runs
    check_private_dir(base);
  }
  return base;
}

nlohmann::json SandboxInfo::to_json() const {
  nlohmann::json j;
  j["name"] = name;
  j["id"] = id;
  j["profile"] = profile;
  j["audit_log"] = audit_log;
  j["sbx_pid"] = sbx_pid;
  if (init_pid != 0) j["init_pid"] = init_pid;  // the status reply's, not the file's
  if (sbx_pid_ns != 0 && sbx_start != 0) {
    j["sbx_pid_ns"] = sbx_pid_ns;
    j["sbx_time_ns"] = sbx_time_ns;
    j["sbx_start"] = sbx_start;
  }
  j["started"] =
      std::chrono::duration_cast<std::chrono::microseconds>(started.time_since_epoch()).count();
  return j;
}

bool lock_is_free(int dir_fd) {
  // The running sbx holds the flock of the directory itself. flock locks
  // belong to the open file description, so this fd's lock test is not
  // disturbed by (and does not disturb) the owner's.
  if (::flock(dir_fd, LOCK_EX | LOCK_NB) != 0) return false;
  ::flock(dir_fd, LOCK_UN);
  // A dir of an older sbx is locked through a "lock" file inside it.
  UniqueFdLite legacy(::openat(dir_fd, kLegacyLockFile, O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  return legacy.get() < 0 || ::flock(legacy.get(), LOCK_EX | LOCK_NB) == 0;
}

namespace {

// The inode of /proc/self/ns/NAME; 0 when the kernel has no such namespace.
std::optional<std::uint64_t> own_namespace(const char* name) {
  struct stat st {};
  if (::stat(fmt::format("/proc/self/ns/{}", name).c_str(), &st) == 0) return st.st_ino;
  if (errno == ENOENT) return 0;
  return std::nullopt;
}

// The caller's view of /proc: a stamp with only its pid and time namespaces
// filled in. nullopt when /proc is not this process's pid namespace's (a
// host /proc in a container, an unshare -p without a new /proc).
std::optional<ProcessStamp> own_view() {
  char self[32] = {};
  if (::readlink("/proc/self", self, sizeof self - 1) <= 0 ||
      std::string_view(self) != std::to_string(::getpid())) {
    return std::nullopt;
  }
  const auto pid_ns = own_namespace("pid");
  // Start times in /proc are shifted by the reader's time namespace
  // (boottime offset): only comparable within the same one.
  const auto time_ns = own_namespace("time");
  if (!pid_ns || *pid_ns == 0 || !time_ns) return std::nullopt;
  ProcessStamp view;
  view.pid_ns = *pid_ns;
  view.time_ns = *time_ns;
  return view;
}

// The fields of a /proc/.../stat file after the command name, from the
// state letter on ("pid (comm) state ppid ...": comm may hold anything,
// even ") "). nullopt if it cannot be read (the process or thread is gone).
std::optional<std::istringstream> stat_fields(const std::filesystem::path& stat) {
  std::ifstream in(stat);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  return std::istringstream(line.substr(close + 1));
}

// `view` completed with pid's state letter and start time.
std::optional<ProcessStamp> stamp_in(ProcessStamp view, pid_t pid) {
  auto rest = stat_fields(fmt::format("/proc/{}/stat", pid));
  if (!rest) return std::nullopt;
  *rest >> view.state;
  std::string skip;
  for (int field = 4; field < 22 && *rest >> skip; ++field) {
  }
  if (!(*rest >> view.start)) return std::nullopt;
  return view;
}

// True if a thread of process `pid` other than its leader still runs: a
// zombie leader with live threads (an embedder whose main thread called
// pthread_exit) is a live process.
bool other_thread_alive(pid_t pid) {
  const std::string leader = std::to_string(pid);
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
    if (entry.path().filename() == leader) continue;
    char state = 0;
    if (auto rest = stat_fields(entry.path() / "stat"); rest && *rest >> state)
      if (state != 'Z' && state != 'X') return true;
  }
  return false;
}

}  // namespace

std::optional<ProcessStamp> process_stamp(pid_t pid) {
  const auto view = own_view();
  return view ? stamp_in(*view, pid) : std::nullopt;
}

namespace {

nlohmann::json read_state_at(int dir_fd) {
  UniqueFdLite fd(::openat(dir_fd, kStateFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return nlohmann::json::object();
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0 && text.size() < (1U << 20)) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

// True when the state names its sbx and that process is provably gone:
// exited, a zombie (all its threads), or its pid now another process's.
// Then the sandbox is over even if its lock is still held: the holder is a
// process that inherited the locked fd (init, a fork of sbx, until its
// first step, or killed with sbx and not yet done exiting). False when
// unsure (an older sbx's state without a stamp, another pid namespace).
bool owner_gone(const nlohmann::json& state) {
  pid_t pid = 0;
  std::uint64_t pid_ns = 0, time_ns = 0, start = 0;
  try {
    pid = state.value("sbx_pid", pid_t{0});
    pid_ns = state.value("sbx_pid_ns", std::uint64_t{0});
    time_ns = state.value("sbx_time_ns", std::uint64_t{0});
    start = state.value("sbx_start", std::uint64_t{0});
    if (!state.contains("sbx_time_ns")) return false;  // older state: unsure
  } catch (const nlohmann::json::exception&) {
    return false;  // not what sbx writes: unsure
  }
  if (pid <= 0 || pid_ns == 0 || start == 0) return false;
  // Only through sbx's own /proc and clocks.
  const auto view = own_view();
  if (!view || view->pid_ns != pid_ns || view->time_ns != time_ns) return false;
  const auto now = stamp_in(*view, pid);
  if (!now) return ::kill(pid, 0) != 0 && errno == ESRCH;
  if (now->start != start || now->state == 'X') return true;
  return now->state == 'Z' && !other_thread_alive(pid);
}

// The state of the sandbox that owns `dir` while it runs: its lock is held
// and its sbx is not provably gone.
std::optional<nlohmann::json> live_state(const std::string& dir) {
  UniqueFdLite d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (d.get() < 0 || lock_is_free(d.get())) return std::nullopt;
  nlohmann::json state = read_state_at(d.get());
  if (owner_gone(state)) return std::nullopt;
  return state;
}

}  // namespace

bool is_live(const std::string& dir) {
  return live_state(dir).has_value();
}

std::optional<bool> directory_is_empty(int dir_fd) {
  if (::lseek(dir_fd, 0, SEEK_SET) != 0) return std::nullopt;
  alignas(dirent64) char buf[4096];
  for (;;) {
    const ssize_t n = ::getdents64(dir_fd, buf, sizeof buf);
    if (n < 0) return std::nullopt;
    if (n == 0) return true;
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const dirent64*>(buf + off);
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) return false;
      off += e->d_reclen;
    }
  }
}

bool remove_dir_contents(int dir_fd) {
  int dup = ::dup(dir_fd);
  if (dup < 0) return false;
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    ::close(dup);
    return false;
  }
  ::rewinddir(dir);  // the dup shares dir_fd's offset: an earlier pass left it at the end
  std::vector<std::string> names;
  while (auto* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  ::closedir(dir);
  bool empty = true;
  for (const auto& n : names) {
    // A state dir holds files only; anything else is not ours to remove.
    if (::unlinkat(dir_fd, n.c_str(), 0) != 0) empty = false;
  }
  return empty;
}

int clean_stale(const std::string& base) {
  DIR* dir = ::opendir(base.c_str());
  if (dir == nullptr) return 0;
  std::vector<std::string> names;
  while (auto* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  ::closedir(dir);
  int removed = 0;
  for (const auto& n : names) {
    if (n == kSpareDir) continue;  // empty, kept for the next start on purpose
    const std::string path = base + "/" + n;
    UniqueFdLite d(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (d.get() < 0) continue;
    // A temporary name (.new-PID-X) is a creation in progress for a moment:
    // between its mkdir and the flock, the lock looks free. Only an old one
    // is a leftover (a creation takes milliseconds).
    if (n.rfind(".new-", 0) == 0) {
      struct stat st {};
      if (::fstat(d.get(), &st) != 0 || std::time(nullptr) - st.st_mtime < 10) continue;
    }
    // Held: alive, unless its sbx is provably gone. Taken: its sbx died; we
    // keep it while removing, so no second cleaner works on the same
    // directory at the same time (and a cleaner racing us on a held one
    // only repeats the same unlinks).
    if (::flock(d.get(), LOCK_EX | LOCK_NB) != 0 && !owner_gone(read_state_at(d.get()))) {
      continue;
    }
    UniqueFdLite legacy(::openat(d.get(), kLegacyLockFile, O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (legacy.get() >= 0 && ::flock(legacy.get(), LOCK_EX | LOCK_NB) != 0) continue;
    remove_dir_contents(d.get());
    // rmdir by name: if the name meanwhile belongs to a new, complete
    // sandbox dir, that one is not empty and rmdir fails (ENOTEMPTY).
    if (::rmdir(path.c_str()) == 0) ++removed;
  }
  return removed;
}

std::vector<LiveEntry> list_live(const std::string& base) {
  clean_stale(base);
  std::vector<LiveEntry> out;
  DIR* dir = ::opendir(base.c_str());
  if (dir == nullptr) return out;
  std::vector<std::string> names;
  while (auto* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    const std::string path = base + "/" + n;
    if (!valid_name(n)) continue;
    if (auto state = live_state(path)) out.push_back({n, path, std::move(*state)});
  }
  return out;
}

std::optional<LiveEntry> find_live(const std::string& base, const std::string& name) {
  if (!valid_name(name)) return std::nullopt;
  clean_stale(base);
  const std::string path = base + "/" + name;
  auto state = live_state(path);
  if (!state) return std::nullopt;
  return LiveEntry{name, path, std::move(*state)};
}

}  // namespace sbx::control
