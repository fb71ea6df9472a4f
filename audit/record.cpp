// Events -> versioned audit records (docs/audit.md): envelope, type mapping,
// levels, and the sandbox_start / sandbox_exit events.
#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "audit/audit.hpp"

namespace sbx::audit {
namespace {

// Fields that carry names or paths: dropped at level "minimal" so a log can
// be shared without revealing what was looked up or which files were used.
const std::set<std::string> kNameFields = {"name",    "names",   "comm",   "argv",
                                           "path",    "cwd",     "cgroup", "user",
                                           "profile", "dropped", "error",  "domain"};

// Fields only worth their size at level "verbose".
const std::set<std::string> kVerboseFields = {"args", "nr", "pid"};

// Envelope keys; an event field with the same name is kept under "data_<key>".
const std::set<std::string> kEnvelope = {"v",          "time",    "seq",    "type",
                                         "sandbox_id", "sandbox", "blocked"};

// DNS verdicts that refuse a name (dnsproxy Decision::reason).
const std::set<std::string> kDnsBlocked = {"denied",     "unlisted",     "any",       "class",
                                           "rate_limit", "wildcard_cap", "label_cap", "name_cap"};

// Summaries of blocked attempts a rate limit did not report one by one.
const std::set<std::string> kSuppressedKinds = {"syscall_denied_suppressed", "dns_suppressed",
                                                "net_blocked_suppressed", "net_connect_suppressed"};

const std::set<std::string> kTypes = {"sandbox_start", "exec",           "dns",   "net_connect",
                                      "net_blocked",   "syscall_denied", "limit", "violation",
                                      "sandbox_exit",  "control"};

std::string sanitize(const std::string& in) {
  std::string out;
  for (char c : in) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  return out.empty() ? std::string("sandbox") : out.substr(0, 100);
}

}  // namespace

std::string new_sandbox_id() {
  unsigned char bytes[8];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(fmt::format("cannot read random bytes for the sandbox id: errno {}", errno));
    }
    got += static_cast<std::size_t>(n);
  }
  std::string id;
  for (unsigned char b : bytes) id += fmt::format("{:02x}", b);
  return id;
}

std::string sandbox_label(const Policy& policy) {
  if (!policy.name.empty()) return sanitize(policy.name);
  std::string profile = policy.profile;
  if (auto slash = profile.rfind('/'); slash != std::string::npos) profile.erase(0, slash + 1);
  if (profile.ends_with(".toml")) profile.resize(profile.size() - 5);
  return sanitize(profile.empty() ? std::string("sandbox") : profile);
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  long frac = static_cast<long>(us % 1'000'000);
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::optional<std::chrono::system_clock::time_point> parse_timestamp(const std::string& text) {
  int y, mo, d, h, mi, s;
  char frac[16] = {0};
  // Only the form format_timestamp writes (and without a fraction).
  int n =
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%9[0-9]Z", &y, &mo, &d, &h, &mi, &s, frac);
  if (n < 6) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const std::time_t secs = ::timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
  long us = 0;
  std::string f(frac);
  f.resize(6, '0');
  if (n == 7) us = std::stol(f);
  return std::chrono::system_clock::from_time_t(secs) + std::chrono::microseconds(us);
}

nlohmann::json to_record(const Event& event, const SandboxIdentity& who, AuditLevel level,
                         std::uint64_t seq) {
  nlohmann::json data = event.data.is_object() ? event.data : nlohmann::json::object();
  std::string type = event.type;
  // Map runtime event names onto the documented types.
  if (type == "timeout") {
    type = "limit";
    data["kind"] = "timeout";
  } else if (type == "syscall_denied_suppressed") {
    type = "violation";
    data["kind"] = "syscall_denied_suppressed";
  } else if (!kTypes.contains(type)) {
    data["kind"] = type;
    type = "violation";
  }

  nlohmann::json r = nlohmann::json::object();
  r["v"] = kSchemaVersion;
  r["time"] = format_timestamp(event.time);
  r["seq"] = seq;
  r["type"] = type;
  r["sandbox_id"] = who.id;
  r["sandbox"] = who.name;
  for (auto& [key, value] : data.items()) {
    if (level == AuditLevel::minimal && kNameFields.contains(key)) continue;
    if (level != AuditLevel::verbose && kVerboseFields.contains(key)) continue;
    if (level != AuditLevel::verbose && key == "policy") continue;
    r[kEnvelope.contains(key) ? "data_" + key : key] = value;
  }
  bool blocked = false;
  if (type == "net_blocked" || type == "syscall_denied") blocked = true;
  if (type == "net_connect") blocked = !data.value("allowed", true);
  if (type == "dns") blocked = kDnsBlocked.contains(data.value("verdict", std::string()));
  if (type == "violation") blocked = kSuppressedKinds.contains(data.value("kind", std::string()));
  r["blocked"] = blocked;
  return r;
}

bool is_blocked(const nlohmann::json& record) {
  return record.is_object() && record.value("blocked", false);
}

namespace {

// "name:port", "address:port" or a DNS name for a blocked attempt; empty if none.
std::string destination_of(const nlohmann::json& r) {
  const std::string type = r.value("type", std::string());
  if (type == "dns") return r.value("name", std::string("(name hidden)"));
  if (type != "net_blocked" && type != "net_connect") return {};
  std::string host;
  if (r.contains("name") && r["name"].is_string()) {
    host = r["name"].get<std::string>();
  } else if (r.contains("names") && r["names"].is_array() && !r["names"].empty() &&
             r["names"][0].is_string()) {
    host = r["names"][0].get<std::string>();
  } else {
    host = r.value("address", std::string("?"));
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
  }
  if (r.contains("port") && r["port"].is_number()) host += fmt::format(":{}", r["port"].get<int>());
  return host;
}

std::uint64_t count_of(const nlohmann::json& v) {
  return v.is_number_integer() && v.get<std::int64_t>() > 0 ? v.get<std::uint64_t>() : 0;
}

}  // namespace

BlockedAttempts blocked_attempts(const nlohmann::json& r) {
  BlockedAttempts a;
  if (!is_blocked(r)) return a;
  const std::string type = r.value("type", std::string());
  if (type != "violation" || !r.contains("count")) {  // one attempt
    a.total = 1;
    if (auto d = destination_of(r); !d.empty()) a.destinations.emplace_back(std::move(d), 1);
    return a;
  }
  a.total = count_of(r["count"]);  // 0: e.g. only lost_reads
  const bool by_name = r.contains("names") && r["names"].is_object() && !r["names"].empty();
  const char* listed = by_name ? "names" : "destinations";
  // Summaries without destinations (syscalls, DNS) rank nothing, like a
  // single denied syscall.
  if (!r.contains(listed) || !r[listed].is_object()) return a;
  std::uint64_t ranked = 0;
  for (auto& [d, n] : r[listed].items()) {
    if (const auto k = count_of(n); k > 0 && ranked + k <= a.total) {
      a.destinations.emplace_back(d, k);
      ranked += k;
    }
  }
  // What a net summary could not list (`unlisted`, and attempts without a
  // name when ranked by name).
  a.unlisted = a.total - ranked;
  return a;
}

std::string category_of(const nlohmann::json& record) {
  const std::string type = record.value("type", std::string());
  if (type == "dns") return "dns";
  if (type == "net_connect" || type == "net_blocked") return "net";
  if (type == "syscall_denied") return "syscall";
  if (type == "violation") {
    const std::string kind = record.value("kind", std::string());
    if (kind.starts_with("syscall")) return "syscall";
    if (kind.starts_with("dns")) return "dns";
    return kind.starts_with("net") ? "net" : "violation";
  }
  if (type == "limit") return "limit";
  if (type == "control") return "control";
  return "exec";  // sandbox_start, exec, sandbox_exit
}

Event start_event(const Policy& policy, const std::string& policy_text,
                  const std::vector<std::string>& argv) {
  Event e;
  e.type = "sandbox_start";
  e.data["profile"] = policy.profile;
  // A digest of the resolved policy (the caller passes its canonical text,
  // e.g. the TOML of `sbx profile show --resolved`): two runs with the same
  // digest ran under the same rules. FNV-1a 64 identifies, it does not sign.
  const std::string& text = policy_text;
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  e.data["policy_digest"] = fmt::format("fnv1a64:{:016x}", h);
  e.data["argv"] = argv;
  e.data["uid"] = ::getuid();
  e.data["gid"] = ::getgid();
  if (const char* user = ::getenv("USER"); user && *user) e.data["user"] = user;
  e.data["host_pid"] = ::getpid();
  return e;
}

Event exit_event(const RunResult& result) {
  Event e;
  e.type = "sandbox_exit";
  e.data["exit_code"] = result.exit_code;
  e.data["signal"] = result.term_signal;
  e.data["timed_out"] = result.timed_out;
  e.data["duration_ms"] = result.duration.count();
  e.data["user_cpu_us"] = result.usage.user_cpu.count();
  e.data["system_cpu_us"] = result.usage.system_cpu.count();
  e.data["peak_memory_bytes"] = result.usage.peak_memory_bytes;
  e.data["peak_pids"] = result.usage.peak_pids;
  return e;
}

std::string default_log_path(const std::string& label,
                             const std::function<const char*(const char*)>& getenv_fn) {
  std::string base;
  if (const char* state = getenv_fn("XDG_STATE_HOME"); state && state[0] == '/') {
    base = state;
  } else if (const char* home = getenv_fn("HOME"); home && home[0] == '/') {
    base = std::string(home) + "/.local/state";
  } else {
    return {};
  }
  return base + "/sbx/audit/" + sanitize(label) + ".jsonl";
}

}  // namespace sbx::audit
