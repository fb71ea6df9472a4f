// GitGuard (git_guard.hpp): snapshot before the sandbox, compare after it.
#include "runtime/git_guard.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace sbx::runtime {
namespace {

constexpr std::size_t kMaxFileBytes = 1 << 20;  // redirection files are tiny
constexpr int kMaxModuleDepth = 4;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Up to limit bytes of a regular file; empty if missing or unreadable. Sized
// by fstat, so a large limit costs nothing for a small or missing file.
std::string read_bytes(const std::string& path, std::size_t limit) {
  std::string data;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return data;
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    data.resize(std::min(limit, static_cast<std::size_t>(st.st_size)));
    std::size_t got = 0;
    while (got < data.size()) {
      ssize_t n = read(fd, data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    data.resize(got);
  }
  close(fd);
  return data;
}

// Adds path (file, symlink or directory marker) to the snapshot if it exists.
void add_entry(GitGuard::Snapshot& snap, const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  GitGuard::FileState state;
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
    state.content = "symlink:" + std::string(target, n > 0 ? static_cast<std::size_t>(n) : 0);
  } else if (S_ISDIR(st.st_mode)) {
    state.is_dir = true;
  } else if (S_ISREG(st.st_mode)) {
    state.content = read_bytes(path, kMaxFileBytes);
    if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes) {
      state.content += fmt::format("\n[size {} mtime {}]", st.st_size, st.st_mtim.tv_nsec);
    }
  } else {
    state.content = fmt::format("[special file mode {:o}]", st.st_mode);
  }
  snap[path] = std::move(state);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A git dir of a submodule or nested repository: what makes git run code.
void add_git_dir(GitGuard::Snapshot& snap, const std::string& dir, int depth) {
  for (const char* name : {"config", "config.worktree", "commondir"})
    add_entry(snap, dir + "/" + name);
  add_entry(snap, dir + "/hooks");
  for (const auto& hook : list_dir(dir + "/hooks")) add_entry(snap, dir + "/hooks/" + hook);
  if (depth < kMaxModuleDepth) {
    add_entry(snap, dir + "/modules");
    for (const auto& m : list_dir(dir + "/modules")) {
      if (is_dir(dir + "/modules/" + m)) add_git_dir(snap, dir + "/modules/" + m, depth + 1);
    }
  }
}

// The paths of the gitlink entries (mode 160000) of a git index (versions
// 2, 3 and 4; SHA-1 or SHA-256 object names). Empty if unreadable.
std::vector<std::string> index_gitlinks(const std::string& index_path, std::size_t hash_size) {
  std::vector<std::string> links;
  std::string data = read_bytes(index_path, 256u << 20);
  const auto u32 = [&](std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           p[3];
  };
  if (data.size() < 12 || data.compare(0, 4, "DIRC") != 0) return links;
  const std::uint32_t version = u32(4), count = u32(8);
  if (version < 2 || version > 4) return links;
  std::size_t pos = 12;
  std::string previous;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t start = pos;
    const std::size_t flags_at = start + 40 + hash_size;
    if (flags_at + 2 > data.size()) return links;
    const std::uint32_t mode = u32(start + 24);
    const unsigned flags = (static_cast<unsigned char>(data[flags_at]) << 8) |
                           static_cast<unsigned char>(data[flags_at + 1]);
    std::size_t name_at = flags_at + 2 + ((version >= 3 && (flags & 0x4000)) ? 2 : 0);
    std::string name;
    if (version == 4) {
      // Prefix compression: strip N bytes of the previous name, then a suffix.
      if (name_at >= data.size()) return links;
      unsigned char c = static_cast<unsigned char>(data[name_at++]);
      std::size_t strip = c & 127;
      while (c & 128) {
        if (name_at >= data.size()) return links;
        c = static_cast<unsigned char>(data[name_at++]);
        strip = ((strip + 1) << 7) + (c & 127);
      }
      if (strip > previous.size()) return links;
      std::size_t end = data.find('\0', name_at);
      if (end == std::string::npos) return links;
      name = previous.substr(0, previous.size() - strip) + data.substr(name_at, end - name_at);
      pos = end + 1;
    } else {
      std::size_t end = data.find('\0', name_at);
      if (end == std::string::npos) return links;
      name = data.substr(name_at, end - name_at);
      pos = start + ((name_at - start + name.size() + 8) & ~std::size_t{7});
    }
    previous = name;
    if ((mode & 0170000) == 0160000) links.push_back(name);
  }
  return links;
}

// True if `rel` is a plain relative path (no "..", no absolute part).
bool safe_relative(const std::string& rel) {
  if (rel.empty() || rel.front() == '/') return false;
  std::istringstream parts(rel);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

bool below(const std::string& path, const std::string& top) {
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) == nullptr) return false;
  std::string r = real;
  return r == top || r.starts_with(top + "/");
}

void emit_violation(const RunOptions& options, const std::string& path, const std::string& what,
                    const std::string& moved_to, bool restored) {
  if (options.on_event) {
    Event event;
    event.type = "violation";
    event.data["kind"] = "git_redirection";
    event.data["path"] = path;
    event.data["change"] = what;
    event.data["quarantined_to"] = moved_to;
    event.data["restored"] = restored;
    options.on_event(event);
  }
  if (options.on_warning) {
    options.on_warning(fmt::format(
        "the sandbox {} {}, which would make git on the host run code it chose; moved to {}{}. "
        "Fix: inspect it; delete it if you did not expect it (docs/filesystem.md, Git redirection)",
        what, path, moved_to.empty() ? "(could not move it)" : moved_to,
        restored ? " and put the original back" : ""));
  }
}

}  // namespace

GitGuard::Snapshot GitGuard::snapshot(const std::string& top) {
  Snapshot snap;
  const std::string dotgit = top + "/.git";
  // .git itself, whatever it is: a gitfile ("gitdir: PATH"), a symlink, or
  // a directory marker, so that a change of type (a directory where the
  // link was) is a change too.
  add_entry(snap, dotgit);
  struct stat st {};
  if (stat(dotgit.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return snap;
  for (const char* name : {"commondir", "config.worktree"}) add_entry(snap, dotgit + "/" + name);
  add_entry(snap, dotgit + "/worktrees");
  for (const auto& wt : list_dir(dotgit + "/worktrees")) {
    for (const char* name : {"commondir", "gitdir", "config.worktree", "config"}) {
      add_entry(snap, dotgit + "/worktrees/" + wt + "/" + name);
    }
  }
  add_entry(snap, dotgit + "/modules");
  for (const auto& m : list_dir(dotgit + "/modules")) {
    if (is_dir(dotgit + "/modules/" + m)) add_git_dir(snap, dotgit + "/modules/" + m, 1);
  }
  // Submodules: a gitlink in the index makes `git status` run git in it.
  std::string config = read_bytes(dotgit + "/config", 1 << 16);
  std::transform(config.begin(), config.end(), config.begin(), ::tolower);
  const bool sha256 = config.find("objectformat = sha256") != std::string::npos ||
                      config.find("objectformat=sha256") != std::string::npos;
  char real_top[PATH_MAX];
  if (realpath(top.c_str(), real_top) == nullptr) return snap;
  for (const auto& rel : index_gitlinks(dotgit + "/index", sha256 ? 32 : 20)) {
    if (!safe_relative(rel)) continue;
    const std::string sub = top + "/" + rel;
    if (!below(sub, real_top)) continue;
    const std::string sub_git = sub + "/.git";
    add_entry(snap, sub_git);
    if (is_dir(sub_git)) add_git_dir(snap, sub_git, 1);
  }
  return snap;
}

GitGuard::GitGuard(const Policy& policy, const RunOptions& options) : options_(options) {
  for (const auto& path : policy.filesystem.deny_write) {
    for (const char* suffix : {"/.git/hooks", "/.git/config"}) {
      if (!ends_with(path, suffix)) continue;
      std::string top = path.substr(0, path.size() - std::strlen(suffix));
      if (top.empty() || std::find(tops_.begin(), tops_.end(), top) != tops_.end()) continue;
      tops_.push_back(top);
      before_.push_back(snapshot(top));
    }
  }
}

GitGuard::~GitGuard() {
  check_and_revert();
}

void GitGuard::check_and_revert() noexcept {
  try {
    const long stamp =
        static_cast<long>(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
    for (std::size_t i = 0; i < tops_.size(); ++i) {
      const Snapshot after = snapshot(tops_[i]);
      const Snapshot& before = before_[i];
      std::vector<std::string> moved_dirs;  // their files went with them
      for (const auto& [path, state] : after) {
        if (std::any_of(moved_dirs.begin(), moved_dirs.end(),
                        [&](const std::string& d) { return path.starts_with(d + "/"); })) {
          continue;
        }
        auto old = before.find(path);
        if (old != before.end() && old->second.is_dir == state.is_dir &&
            old->second.content == state.content) {
          continue;
        }
        // Directories that merely appeared (worktrees/, modules/) are
        // harmless by themselves; their files are entries of their own.
        if (state.is_dir && old == before.end() && !ends_with(path, "/.git")) continue;
        const std::string moved = fmt::format("{}.sbx-quarantine-{}", path, stamp);
        const bool ok = rename(path.c_str(), moved.c_str()) == 0;
        if (ok && state.is_dir) moved_dirs.push_back(path);
        bool restored = false;
        if (ok && old != before.end() && old->second.content.starts_with("symlink:")) {
          restored = symlink(old->second.content.c_str() + 8, path.c_str()) == 0;
        } else if (ok && old != before.end() && !old->second.is_dir &&
                   !old->second.content.starts_with("[special")) {
          std::ofstream out(path, std::ios::binary | std::ios::trunc);
          out << old->second.content;
          restored = static_cast<bool>(out);
        }
        // "replaced": another type now (a directory where the link was).
        const auto kind = [](const FileState& f) {
          return f.is_dir ? 'd' : f.content.starts_with("symlink:") ? 'l' : 'f';
        };
        const char* change = old == before.end()                ? "created"
                             : kind(old->second) != kind(state) ? "replaced"
                                                                : "changed";
        emit_violation(options_, path, change, ok ? moved : std::string(), restored);
      }
    }
  } catch (...) {
    if (options_.on_warning) options_.on_warning("could not check the git redirection files");
  }
}

}  // namespace sbx::runtime
