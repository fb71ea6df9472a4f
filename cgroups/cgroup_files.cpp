#include "cgroups/cgroup_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

namespace sbx::cgroups {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      auto oct = s.substr(i + 1, 3);
      if (oct.size() == 3 &&
          std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>((oct[0] - '0') * 64 + (oct[1] - '0') * 8 + (oct[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::uint64_t cpu_quota_us(double cpus) {
  if (!(cpus > 0) || !std::isfinite(cpus)) throw std::invalid_argument("cpus must be > 0");
  auto quota = static_cast<std::uint64_t>(std::llround(cpus * static_cast<double>(kCpuPeriodUs)));
  return std::max(quota, kMinCpuQuotaUs);
}

std::string format_cpu_max(double cpus) {
  return fmt::format("{} {}", cpu_quota_us(cpus), kCpuPeriodUs);
}

std::optional<std::uint64_t> parse_limit_value(std::string_view text) {
  auto t = trim(text);
  if (t == "max") return std::nullopt;
  auto v = to_u64(t);
  if (!v) throw std::invalid_argument(fmt::format("not a cgroup limit value: '{}'", t));
  return v;
}

std::map<std::string, std::uint64_t> parse_keyed_file(std::string_view text) {
  std::map<std::string, std::uint64_t> out;
  for (auto line : split(text, '\n')) {
    line = trim(line);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    auto value = to_u64(trim(line.substr(sp + 1)));
    if (value) out[std::string(line.substr(0, sp))] = *value;
  }
  return out;
}

std::vector<ProcCgroupEntry> parse_proc_cgroup(std::string_view text) {
  std::vector<ProcCgroupEntry> out;
  for (auto line : split(text, '\n')) {
    if (line.empty()) continue;
    // The path may itself contain ':' so split only at the first two.
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    auto id = to_u64(line.substr(0, c1));
    if (!id) continue;
    ProcCgroupEntry e;
    e.hierarchy = static_cast<int>(*id);
    auto ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    if (!ctrls.empty()) {
      for (auto c : split(ctrls, ',')) e.controllers.emplace_back(c);
    }
    e.path = std::string(line.substr(c2 + 1));
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<std::string> unified_path(const std::vector<ProcCgroupEntry>& entries) {
  for (const auto& e : entries) {
    if (e.hierarchy == 0 && e.controllers.empty()) return e.path;
  }
  return std::nullopt;
}

std::optional<std::string> v1_path(const std::vector<ProcCgroupEntry>& entries,
                                   std::string_view controller) {
  for (const auto& e : entries) {
    if (e.hierarchy == 0) continue;
    if (std::find(e.controllers.begin(), e.controllers.end(), controller) != e.controllers.end())
      return e.path;
  }
  return std::nullopt;
}

std::vector<CgroupMount> parse_cgroup_mounts(std::string_view mountinfo) {
  std::vector<CgroupMount> out;
  for (auto line : split(mountinfo, '\n')) {
    if (line.empty()) continue;
    auto fields = split(line, ' ');
    // Optional fields end at "-"; then fstype, source, super options.
    auto dash = std::find(fields.begin(), fields.end(), std::string_view("-"));
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    auto fstype = *(dash + 1);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    CgroupMount m;
    m.root = unescape_mount_path(fields[3]);
    m.mount_point = unescape_mount_path(fields[4]);
    m.v2 = fstype == "cgroup2";
    if (!m.v2) {
      for (auto opt : split(*(dash + 3), ',')) {
        static constexpr std::string_view kNotControllers[] = {
            "rw", "ro", "clone_children", "noprefix", "xattr", "cpuset_v2_mode", "favordynmods"};
        if (opt.empty() || opt.find('=') != std::string_view::npos) continue;
        if (std::find(std::begin(kNotControllers), std::end(kNotControllers), opt) !=
            std::end(kNotControllers))
          continue;
        m.controllers.emplace_back(opt);
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string group_name(std::string_view sandbox_id, GroupOwner owner) {
  // Keep the id readable but safe as one path component.
  std::string id;
  for (char c : sandbox_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    id.push_back(ok ? c : '_');
    if (id.size() >= 64) break;
  }
  if (id.empty()) id = "sandbox";
  return fmt::format("{}@{}.{}", id, owner.pid, owner.start_time);
}

std::optional<GroupOwner> parse_group_name(std::string_view name) {
  auto at = name.rfind('@');
  if (at == std::string_view::npos || at == 0) return std::nullopt;
  auto rest = name.substr(at + 1);
  auto dot = rest.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto pid = to_u64(rest.substr(0, dot));
  auto start = to_u64(rest.substr(dot + 1));
  if (!pid || !start || *pid == 0 || *pid > 0x7fffffff) return std::nullopt;
  return GroupOwner{static_cast<pid_t>(*pid), *start};
}

std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat_line) {
  // comm (field 2) may contain spaces and ')' : fields restart after the LAST ')'.
  auto close = stat_line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  auto rest = trim(stat_line.substr(close + 1));
  auto fields = split(rest, ' ');
  // rest starts at field 3 (state); starttime is field 22 -> index 19.
  if (fields.size() < 20) return std::nullopt;
  return to_u64(fields[19]);
}

std::string read_text_file(const std::string& path) {
  auto text = try_read_text_file(path);
  if (!text) throw std::system_error(errno, std::generic_category(), "read " + path);
  return *text;
}

std::optional<std::string> try_read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

void write_text_file(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  // cgroup files take one value per write(2); a short write is an error.
  ssize_t n = ::write(fd, value.data(), value.size());
  int saved = errno;
  ::close(fd);
  if (n < 0) throw std::system_error(saved, std::generic_category(), "write " + path);
  if (static_cast<std::size_t>(n) != value.size())
    throw std::system_error(EIO, std::generic_category(), "short write " + path);
}

GroupOwner current_owner() {
  GroupOwner o;
  o.pid = ::getpid();
  auto stat = try_read_text_file("/proc/self/stat");
  if (stat) o.start_time = parse_stat_start_time(*stat).value_or(0);
  return o;
}

bool owner_alive(GroupOwner owner) {
  auto stat = try_read_text_file(fmt::format("/proc/{}/stat", owner.pid));
  if (!stat) return false;
  auto start = parse_stat_start_time(*stat);
  return start && *start == owner.start_time;
}

}  // namespace sbx::cgroups
