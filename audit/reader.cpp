// Reading audit logs back for `sbx audit`: rotated files in order, filters,
// the summary and the one-line human description of a record.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>

#include <fmt/format.h>

#include "audit/audit.hpp"

namespace sbx::audit {
namespace {

void read_one(const std::string& path, ReadResult& out) {
  std::ifstream in(path);
  if (!in) return;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("type")) {
      ++out.invalid_lines;
      continue;
    }
    out.records.push_back(std::move(j));
  }
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void bump(std::map<std::string, std::uint64_t>& m, const std::string& k, std::uint64_t n = 1) {
  m[k] += n;
}

nlohmann::json top(const std::map<std::string, std::uint64_t>& counts, std::size_t n,
                   const char* key) {
  std::vector<std::pair<std::string, std::uint64_t>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < v.size() && i < n; ++i)
    out.push_back({{key, v[i].first}, {"count", v[i].second}});
  return out;
}

std::string str(const nlohmann::json& r, const char* key, const char* fallback = "") {
  auto it = r.find(key);
  if (it == r.end()) return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace

ReadResult read_log(const std::string& path, bool with_rotated) {
  ReadResult out;
  if (with_rotated) {
    int last = 0;
    while (last < 100 && exists(fmt::format("{}.{}", path, last + 1))) ++last;
    for (int k = last; k >= 1; --k) read_one(fmt::format("{}.{}", path, k), out);
  }
  read_one(path, out);
  return out;
}

std::chrono::seconds parse_age(const std::string& text) {
  std::chrono::seconds total{0};
  std::size_t i = 0;
  if (text.empty()) throw Error("empty --since", "give an age such as 30s, 15m, 1h or 2d");
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || j >= text.size()) {
      throw Error(fmt::format("bad age '{}'", text), "give an age such as 30s, 15m, 1h or 2d");
    }
    const long long n = std::stoll(text.substr(i, j - i));
    switch (text[j]) {
      case 's':
        total += std::chrono::seconds(n);
        break;
      case 'm':
        total += std::chrono::minutes(n);
        break;
      case 'h':
        total += std::chrono::hours(n);
        break;
      case 'd':
        total += std::chrono::hours(24 * n);
        break;
      default:
        throw Error(fmt::format("bad age '{}': unknown unit '{}'", text, text[j]),
                    "units are s, m, h, d: 30s, 15m, 1h, 2d");
    }
    i = j + 1;
  }
  return total;
}

bool Filter::matches(const nlohmann::json& r) const {
  if (blocked_only && !is_blocked(r)) return false;
  if (category && category_of(r) != *category) return false;
  if (since) {
    auto t = parse_timestamp(r.value("time", std::string()));
    if (!t || *t < *since) return false;
  }
  return true;
}

nlohmann::json summarize(const std::vector<nlohmann::json>& records, std::size_t n) {
  std::map<std::string, std::uint64_t> types, domains, blocked_dest, syscalls, limits;
  std::map<std::string, std::uint64_t> sandboxes;
  std::uint64_t blocked = 0, peak_memory = 0, peak_pids = 0, max_duration = 0, runs = 0;
  for (const auto& r : records) {
    const std::string type = r.value("type", std::string());
    bump(types, type);
    bump(sandboxes, r.value("sandbox_id", std::string()));
    if (type == "dns" && r.contains("name")) bump(domains, str(r, "name"));
    if (type == "net_connect" && r.contains("name")) bump(domains, str(r, "name"));
    if (type == "syscall_denied") bump(syscalls, str(r, "syscall", "?"));
    if (type == "violation" && r.contains("syscalls") && r["syscalls"].is_object()) {
      for (auto& [k, v] : r["syscalls"].items())
        if (v.is_number_unsigned()) bump(syscalls, k, v.get<std::uint64_t>());
    }
    if (type == "limit") bump(limits, str(r, "kind", "?"));
    if (type == "sandbox_exit") {
      ++runs;
      peak_memory = std::max(peak_memory, r.value("peak_memory_bytes", std::uint64_t{0}));
      peak_pids = std::max(peak_pids, r.value("peak_pids", std::uint64_t{0}));
      max_duration = std::max(max_duration, r.value("duration_ms", std::uint64_t{0}));
    }
    const auto attempts = blocked_attempts(r);  // a summary stands for many
    blocked += attempts.total;
    for (const auto& [d, k] : attempts.destinations) bump(blocked_dest, d, k);
  }
  nlohmann::json s;
  s["records"] = records.size();
  s["sandboxes"] = sandboxes.size();
  s["events"] = types;
  s["top_domains"] = top(domains, n, "domain");
  s["blocked"] = {{"total", blocked}, {"top_destinations", top(blocked_dest, n, "destination")}};
  s["syscalls_denied"] = syscalls;
  s["limits"] = limits;
  s["peaks"] = {{"runs", runs},
                {"peak_memory_bytes", peak_memory},
                {"peak_pids", peak_pids},
                {"max_duration_ms", max_duration}};
  return s;
}

std::string describe(const nlohmann::json& r) {
  const std::string type = r.value("type", std::string());
  std::string detail;
  if (type == "dns" && r.contains("count")) {  // queries never answered, counted
    detail = fmt::format("{} queries {}", str(r, "count"), str(r, "verdict"));
  } else if (type == "dns") {
    detail = fmt::format("{} {} -> {} ({} answers)", str(r, "qtype"), str(r, "name", "-"),
                         str(r, "verdict"), str(r, "answers", "0"));
  } else if (type == "net_connect") {
    detail = fmt::format("{} {}:{} {} up={} down={}", str(r, "name", "-"), str(r, "address"),
                         str(r, "port"), str(r, "verdict"), str(r, "bytes_up", "0"),
                         str(r, "bytes_down", "0"));
  } else if (type == "net_blocked") {
    detail = fmt::format("{} {}:{} {}", str(r, "protocol"), str(r, "address"), str(r, "port", "-"),
                         str(r, "reason"));
  } else if (type == "syscall_denied") {
    detail = fmt::format("{} -> {} ({})", str(r, "syscall"), str(r, "errno"), str(r, "comm", "-"));
  } else if (type == "limit" || type == "violation") {
    detail = str(r, "kind");
    if (r.contains("count")) detail += " count=" + str(r, "count");
    if (r.contains("verdicts")) detail += " " + str(r, "verdicts");
  } else if (type == "sandbox_start") {
    detail = fmt::format("profile={} argv={}", str(r, "profile", "-"), str(r, "argv", "-"));
  } else if (type == "sandbox_exit") {
    detail = fmt::format("exit={} signal={} {}ms peak_mem={}", str(r, "exit_code"),
                         str(r, "signal"), str(r, "duration_ms"), str(r, "peak_memory_bytes", "0"));
  } else if (type == "exec") {
    detail = str(r, "path", "-");
  } else if (type == "control") {
    detail = str(r, "action");
    for (const char* k : {"domain", "cidr", "signal", "grace_ms", "peer_uid"})
      if (r.contains(k)) detail += fmt::format(" {}={}", k, str(r, k));
    if (r.contains("applied") && !r.value("applied", true)) detail += " REFUSED " + str(r, "error");
  }
  return fmt::format("{:<27} {:<15} {:<20} {}{}", str(r, "time"), type, str(r, "sandbox"),
                     is_blocked(r) ? "BLOCKED " : "", detail);
}

}  // namespace sbx::audit
