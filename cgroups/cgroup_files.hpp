// Pure helpers for the cgroup files sbx reads and writes: value formatting,
// parsing of keyed files (memory.events, cpu.stat), /proc/self/cgroup and
// mountinfo, and the naming scheme that lets a later run find stale groups.
// No I/O here except the small read/write wrappers at the end, so the
// formatting and parsing are unit-tested without privileges.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::cgroups {

// cgroup v2 and v1 both use 100 ms as the CFS period; quota = cpus * period.
inline constexpr std::uint64_t kCpuPeriodUs = 100'000;
// The kernel refuses quotas below 1 ms.
inline constexpr std::uint64_t kMinCpuQuotaUs = 1'000;

// "cpu.max" value for a fractional CPU count: "50000 100000" for 0.5.
std::string format_cpu_max(double cpus);
// CFS quota in microseconds for cpus (at least kMinCpuQuotaUs).
std::uint64_t cpu_quota_us(double cpus);

// Parses "123\n" or "max\n" (max -> nullopt). Throws std::invalid_argument on junk.
std::optional<std::uint64_t> parse_limit_value(std::string_view text);
// Parses "key value\n" lines (memory.events, cpu.stat, pids.events, oom_control).
std::map<std::string, std::uint64_t> parse_keyed_file(std::string_view text);

// One line of /proc/<pid>/cgroup: "hierarchy-id:controller-list:path".
struct ProcCgroupEntry {
  int hierarchy = 0;
  std::vector<std::string> controllers;  // empty for the v2 line "0::/path"
  std::string path;
};
std::vector<ProcCgroupEntry> parse_proc_cgroup(std::string_view text);
// The v2 path ("0::PATH"), if any.
std::optional<std::string> unified_path(const std::vector<ProcCgroupEntry>& entries);
// The v1 path of the hierarchy that carries `controller`, if any.
std::optional<std::string> v1_path(const std::vector<ProcCgroupEntry>& entries,
                                   std::string_view controller);

// A cgroup file system mount from /proc/self/mountinfo.
struct CgroupMount {
  std::string mount_point;
  std::string root;                      // the mount's root inside the hierarchy
  bool v2 = false;                       // fstype cgroup2
  std::vector<std::string> controllers;  // v1 only: from the super options
};
std::vector<CgroupMount> parse_cgroup_mounts(std::string_view mountinfo);

// Group names encode the owning supervisor so that a later run can tell a
// live sandbox from one whose supervisor died: "<id>@<pid>.<starttime>".
struct GroupOwner {
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat (clock ticks)
};
std::string group_name(std::string_view sandbox_id, GroupOwner owner);
std::optional<GroupOwner> parse_group_name(std::string_view name);
// Field 22 (starttime) of a /proc/<pid>/stat line; nullopt if malformed.
std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat_line);

// Small I/O helpers; they throw std::system_error with the path on failure.
std::string read_text_file(const std::string& path);
std::optional<std::string> try_read_text_file(const std::string& path);
void write_text_file(const std::string& path, std::string_view value);
// The owner of this process: getpid() and its start time.
GroupOwner current_owner();
// True when pid exists and started at start_time (not a recycled pid).
bool owner_alive(GroupOwner owner);

}  // namespace sbx::cgroups
