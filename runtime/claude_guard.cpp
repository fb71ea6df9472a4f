#include "runtime/claude_guard.hpp"

#include "runtime/host_paths.hpp"
#include "runtime/violation.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string_view>

namespace sbx::runtime {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::array<std::string_view, 5> kProjectKeys = {
    "mcpServers", "allowedTools", "enabledMcpjsonServers", "disabledMcpjsonServers",
    "enableAllProjectMcpServers"};
constexpr std::size_t kMaxSize = 64 << 20;

// In place (same inode, owner and mode: as root for another user, a new
// file would be root's), never through a symlink.
bool write_in_place(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::ftruncate(fd, 0) == 0;
  std::size_t done = 0;
  while (ok && done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0 && ok;
}

}  // namespace

// The document as the client (Node) reads it: the file decoded as UTF-8
// with each invalid byte U+FFFD, and a lone surrogate escape (\ud800), which
// JSON.parse takes, as \ufffd. nlohmann's parser refuses both; a sandbox
// could otherwise hide keys from sbx that the client still reads, and a
// string the client cut inside an emoji would make sbx refuse its file.
std::string ClaudeConfigGuard::as_node_reads(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto cont = [&](std::size_t i) {
    return i < bytes.size() && (static_cast<unsigned char>(bytes[i]) & 0xC0) == 0x80;
  };
  for (std::size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    std::size_t n = c < 0x80                      ? 1
                    : (c >> 5) == 6 && c >= 0xC2  ? 2
                    : (c >> 4) == 14              ? 3
                    : (c >> 3) == 30 && c <= 0xF4 ? 4
                                                  : 0;
    for (std::size_t k = 1; k < n; ++k)
      if (!cont(i + k)) n = 0;
    if (n == 3) {  // no overlong forms, no UTF-16 surrogates
      const auto c1 = static_cast<unsigned char>(bytes[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) n = 0;
    } else if (n == 4) {
      const auto c1 = static_cast<unsigned char>(bytes[i + 1]);
      if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) n = 0;
    }
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  // Lone surrogate escapes, inside strings only (a `\\u` is no escape).
  std::string fixed;
  fixed.reserve(out.size());
  const auto hex4 = [&](std::size_t at, unsigned& v) {
    if (at + 4 > out.size()) return false;
    v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      const char h = out[k];
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<unsigned>(d);
    }
    return true;
  };
  bool in_string = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char ch = out[i];
    if (!in_string) {
      in_string = ch == '"';
      fixed += ch;
      continue;
    }
    if (ch == '"') {
      in_string = false;
      fixed += ch;
      continue;
    }
    if (ch != '\\' || i + 1 >= out.size()) {
      fixed += ch;
      continue;
    }
    unsigned v = 0;
    if (out[i + 1] != 'u' || !hex4(i + 2, v) || v < 0xD800 || v > 0xDFFF) {
      fixed += ch;
      fixed += out[++i];  // the escaped character, whatever it is
      continue;
    }
    unsigned low = 0;
    if (v <= 0xDBFF && i + 12 <= out.size() && out[i + 6] == '\\' && out[i + 7] == 'u' &&
        hex4(i + 8, low) && low >= 0xDC00 && low <= 0xDFFF) {
      fixed.append(out, i, 12);  // a pair
      i += 11;
      continue;
    }
    fixed += "\\ufffd";
    i += 5;
  }
  return fixed;
}

namespace {

Json parse_object(const std::string& bytes) {
  Json doc = Json::parse(ClaudeConfigGuard::as_node_reads(bytes), nullptr,
                         /*allow_exceptions=*/false);
  return doc.is_object() ? doc : Json::object();
}

}  // namespace

Json ClaudeConfigGuard::guarded_keys(const Json& doc) {
  Json out = Json::object();
  if (!doc.is_object()) return out;
  if (auto it = doc.find("mcpServers"); it != doc.end()) out["mcpServers"] = *it;
  auto projects = doc.find("projects");
  if (projects == doc.end() || !projects->is_object()) return out;
  for (const auto& [dir, project] : projects->items()) {
    if (!project.is_object()) continue;
    for (std::string_view key : kProjectKeys) {
      if (auto it = project.find(key); it != project.end())
        out["projects"][dir][std::string(key)] = *it;
    }
  }
  return out;
}

std::vector<std::string> ClaudeConfigGuard::restore(Json& doc, const Json& before) {
  std::vector<std::string> changed;
  if (!doc.is_object()) return changed;
  // Sets `key` of `object` to what `old` held (removed when it held none).
  const auto put_back = [&](Json& object, const Json* old, const std::string& key,
                            const std::string& name) {
    const auto now = object.find(key);
    const auto was = old != nullptr ? old->find(key) : Json::const_iterator();
    const bool had = old != nullptr && was != old->end();
    if (had && (now == object.end() || *now != *was)) {
      object[key] = *was;
      changed.push_back(name);
    } else if (!had && now != object.end()) {
      object.erase(now);
      changed.push_back(name);
    }
  };
  put_back(doc, &before, "mcpServers", "mcpServers");
  auto projects = doc.find("projects");
  if (projects == doc.end() || !projects->is_object()) return changed;
  const Json* old_projects = before.contains("projects") ? &before["projects"] : nullptr;
  for (auto& [dir, project] : projects->items()) {
    if (!project.is_object()) continue;
    const Json* old =
        old_projects != nullptr && old_projects->contains(dir) ? &(*old_projects)[dir] : nullptr;
    for (std::string_view key : kProjectKeys)
      put_back(project, old, std::string(key), fmt::format("projects.{}.{}", dir, key));
  }
  return changed;
}

ClaudeConfigGuard::ClaudeConfigGuard(const Policy& policy, const RunOptions& options)
    : options_(options) {
  for (const auto& s : policy.filesystem.state) {
    std::string path;
    if (!s.directory && (s.path == ".claude.json" || s.path.ends_with("/.claude.json")))
      path = s.path;
    else if (s.directory)
      path = s.path + "/.claude.json";
    if (path.empty()) continue;
    Watched file{path, path.find('/') == std::string::npos ? "." : parent_of(path), {}, {}};
    // Keyed by its directory: the client replaces the file by a rename.
    const UniqueFd dir(::open(file.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) {
      file.baseline.emplace("claude", dir.get(), path);
    } else if (errno != ENOENT && options_.on_warning) {
      options_.on_warning(fmt::format(
          "cannot open {} ({}): runs at the same time do not share their snapshot of {}", file.dir,
          std::strerror(errno), path));
    }
    if (file.baseline && file.baseline->stored()) {
      file.before = *file.baseline->stored();
    } else {
      file.before = read_regular_file(AT_FDCWD, path.c_str(), kMaxSize);
      if (file.baseline) {
        file.baseline->publish(file.before);
        if (!file.baseline->shared() && options_.on_warning)
          options_.on_warning(file.baseline->unshared());
      }
    }
    files_.push_back(std::move(file));
  }
}

ClaudeConfigGuard::~ClaudeConfigGuard() {
  check_and_restore();
}

void ClaudeConfigGuard::check_and_restore() noexcept {
  for (const auto& file : files_) {
    try {
      struct stat st {};
      if (::lstat(file.path.c_str(), &st) != 0) continue;  // gone: the client starts afresh
      const std::string bytes =
          S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) <= kMaxSize
              ? read_regular_file(AT_FDCWD, file.path.c_str(), kMaxSize)
              : std::string();
      if (S_ISREG(st.st_mode) && bytes == file.before &&
          static_cast<std::size_t>(st.st_size) == bytes.size())
        continue;
      // (nlohmann's parser stops at a NUL, Node's refuses it: not JSON.)
      Json doc = S_ISREG(st.st_mode) && bytes.find('\0') == std::string::npos
                     ? Json::parse(as_node_reads(bytes), nullptr, false)
                     : Json();
      // What sbx cannot read as the client does (a symlink the client would
      // follow, a file too large or unreadable, bytes Node's JSON.parse takes
      // but nlohmann's does not: a lone surrogate, invalid UTF-8) could hold
      // any key: moved aside, the file from before the run put back.
      if (!doc.is_object()) {
        replace_unreadable(file, st);
        continue;
      }
      const Json before = guarded_keys(parse_object(file.before));
      if (guarded_keys(doc) == before) continue;
      const auto changed = restore(doc, before);
      const bool ok = write_in_place(file.path, doc.dump(2) + "\n");
      std::string keys;
      for (const auto& k : changed) keys += (keys.empty() ? "" : ", ") + k;
      report_violation(
          options_,
          {{"kind", "agent_config"}, {"path", file.path}, {"keys", changed}, {"restored", ok}},
          fmt::format(
              "the sandbox changed {} in {}, which the client on the host would act on (start "
              "commands, skip questions); {}",
              keys, file.path,
              ok ? "put back as they were before the run"
                 : "could not put them back: inspect the file (docs/filesystem.md, Agent state)"));
    } catch (...) {
      if (options_.on_warning)
        options_.on_warning(fmt::format("could not check {} after the run", file.path));
    }
  }
}

void ClaudeConfigGuard::replace_unreadable(const Watched& file, const struct stat& st) noexcept {
  const UniqueFd dir(::open(file.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const std::string name = file.path.substr(file.path.rfind('/') + 1);
  const std::string moved_name =
      dir ? quarantine(dir.get(), name, static_cast<long>(::time(nullptr))) : "";
  const bool aside = !moved_name.empty();
  const std::string moved = aside ? file.dir + "/" + moved_name : "";
  // 0600, owned as the sandbox's file was (a root caller's would be root's).
  const bool regular = S_ISREG(st.st_mode);
  const bool restored = aside && !file.before.empty() &&
                        create_file_at(dir.get(), name, file.before, 0600,
                                       regular ? st.st_uid : static_cast<uid_t>(-1),
                                       regular ? st.st_gid : static_cast<gid_t>(-1));
  report_violation(
      options_,
      {{"kind", "agent_config"},
       {"path", file.path},
       {"keys", nlohmann::json::array()},
       {"quarantined_to", moved},
       {"restored", restored}},
      fmt::format(
          "the sandbox left {} as something sbx cannot read as the client would ({}), so it could "
          "hold keys that start commands: {}{}. Fix: compare the two; keep the one you trust "
          "(docs/filesystem.md, Agent state)",
          file.path,
          S_ISLNK(st.st_mode)                               ? "a symlink"
          : !S_ISREG(st.st_mode)                            ? "not a regular file"
          : static_cast<std::size_t>(st.st_size) > kMaxSize ? "over 64 MiB"
                                                            : "unreadable or not JSON sbx accepts",
          aside ? "moved aside as " + moved
                : "could not move it aside (inspect it before running claude)",
          restored ? ", the file from before the run put back" : ""));
}

}  // namespace sbx::runtime
