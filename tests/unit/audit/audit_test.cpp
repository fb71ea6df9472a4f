// Audit records, levels, the log writer (rotation, no torn lines), reading
// back, summary and run report.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "audit/audit.hpp"

using namespace sbx;
using namespace sbx::audit;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sbx-audit-test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)!std::system(("rm -rf '" + path + "'").c_str()); }
};

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

const SandboxIdentity kWho{"0123456789abcdef", "job-1"};

Event dns_event(const std::string& name, const std::string& verdict) {
  Event e;
  e.type = "dns";
  e.data = {{"name", name},       {"qtype", "A"}, {"verdict", verdict},
            {"rcode", "noerror"}, {"answers", 1}, {"latency_us", 120}};
  return e;
}

Event syscall_event() {
  Event e;
  e.type = "syscall_denied";
  e.data = {{"syscall", "unshare"}, {"nr", 272},        {"pid", 7},
            {"comm", "unshare"},    {"errno", "EPERM"}, {"args", {1, 2, 3, 0, 0, 0}}};
  return e;
}

}  // namespace

TEST_CASE("timestamps are RFC 3339 UTC with microseconds and round-trip") {
  using namespace std::chrono;
  system_clock::time_point t{microseconds(1'795'000'000'123'456LL)};
  const std::string s = format_timestamp(t);
  CHECK(std::regex_match(s, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)")));
  CHECK(s.ends_with(".123456Z"));
  REQUIRE(parse_timestamp(s));
  CHECK(*parse_timestamp(s) == t);
  CHECK(format_timestamp(system_clock::from_time_t(0)) == "1970-01-01T00:00:00.000000Z");
  CHECK_FALSE(parse_timestamp("yesterday"));
}

TEST_CASE("every record carries version, time, seq, type, sandbox id and name") {
  auto r = to_record(dns_event("example.org", "allowed"), kWho, AuditLevel::standard, 3);
  CHECK(r["v"] == kSchemaVersion);
  CHECK(r["seq"] == 3);
  CHECK(r["type"] == "dns");
  CHECK(r["sandbox_id"] == "0123456789abcdef");
  CHECK(r["sandbox"] == "job-1");
  CHECK(r["time"].get<std::string>().ends_with("Z"));
  CHECK(r["name"] == "example.org");
  CHECK(r["blocked"] == false);
}

TEST_CASE("levels: minimal drops names and paths, standard drops raw args, verbose keeps all") {
  auto minimal = to_record(syscall_event(), kWho, AuditLevel::minimal, 1);
  auto standard = to_record(syscall_event(), kWho, AuditLevel::standard, 1);
  auto verbose = to_record(syscall_event(), kWho, AuditLevel::verbose, 1);
  CHECK_FALSE(minimal.contains("comm"));
  CHECK(minimal["syscall"] == "unshare");  // a syscall name is not a name of user data
  CHECK_FALSE(minimal.contains("args"));
  CHECK(standard["comm"] == "unshare");
  CHECK_FALSE(standard.contains("args"));
  CHECK_FALSE(standard.contains("pid"));
  CHECK(verbose["args"].size() == 6);
  CHECK(verbose["pid"] == 7);

  auto dns_min = to_record(dns_event("secret.example", "denied"), kWho, AuditLevel::minimal, 1);
  CHECK_FALSE(dns_min.contains("name"));
  CHECK(dns_min["verdict"] == "denied");
  CHECK(dns_min.dump().find("secret.example") == std::string::npos);

  Policy p;
  p.profile = "/home/u/my.toml";
  auto start =
      to_record(start_event(p, "x", {"/usr/bin/make", "test"}), kWho, AuditLevel::minimal, 1);
  CHECK_FALSE(start.contains("argv"));
  CHECK_FALSE(start.contains("profile"));
  CHECK(start["policy_digest"].get<std::string>().starts_with("fnv1a64:"));
  CHECK(start.dump().find("/home/u") == std::string::npos);
}

TEST_CASE("runtime event names map onto the documented types; blocked is derived") {
  Event timeout;
  timeout.type = "timeout";
  timeout.data = {{"timeout_ms", 1000}};
  auto r = to_record(timeout, kWho, AuditLevel::standard, 1);
  CHECK(r["type"] == "limit");
  CHECK(r["kind"] == "timeout");
  CHECK(category_of(r) == "limit");

  Event odd;
  odd.type = "something_new";
  r = to_record(odd, kWho, AuditLevel::standard, 1);
  CHECK(r["type"] == "violation");
  CHECK(r["kind"] == "something_new");

  CHECK(is_blocked(to_record(dns_event("a.test", "unlisted"), kWho, AuditLevel::standard, 1)));
  CHECK_FALSE(is_blocked(to_record(dns_event("a.test", "no_ipv6"), kWho, AuditLevel::standard, 1)));
  CHECK(is_blocked(to_record(syscall_event(), kWho, AuditLevel::standard, 1)));
  Event conn;
  conn.type = "net_connect";
  conn.data = {{"address", "203.0.113.5"}, {"port", 443}, {"allowed", false}, {"verdict", "sni"}};
  r = to_record(conn, kWho, AuditLevel::standard, 1);
  CHECK(is_blocked(r));
  CHECK(category_of(r) == "net");

  // An event field named like an envelope key cannot overwrite the envelope.
  Event clash;
  clash.type = "limit";
  clash.data = {{"kind", "pids_max"}, {"sandbox", "evil"}, {"v", 99}};
  r = to_record(clash, kWho, AuditLevel::standard, 1);
  CHECK(r["sandbox"] == "job-1");
  CHECK(r["v"] == kSchemaVersion);
  CHECK(r["data_sandbox"] == "evil");
}

TEST_CASE("default log path follows XDG_STATE_HOME, then ~/.local/state") {
  std::map<std::string, std::string> env = {{"XDG_STATE_HOME", "/x/state"}, {"HOME", "/home/u"}};
  auto get = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  CHECK(default_log_path("job", get) == "/x/state/sbx/audit/job.jsonl");
  env.erase("XDG_STATE_HOME");
  CHECK(default_log_path("job", get) == "/home/u/.local/state/sbx/audit/job.jsonl");
  CHECK(default_log_path("../../etc/passwd", get) ==
        "/home/u/.local/state/sbx/audit/_.._etc_passwd.jsonl");
  env.clear();
  CHECK(default_log_path("job", get).empty());
  Policy p;
  p.profile = "/etc/sbx/My Profile.toml";
  CHECK(sandbox_label(p) == "My_Profile");
  p.name = "ci-42";
  CHECK(sandbox_label(p) == "ci-42");
}

TEST_CASE("log writer: 0600, one line per record, rotation by size") {
  TempDir dir;
  const std::string path = dir.path + "/sub/dir/a.jsonl";
  LogWriter w({path, 2000, 2});
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir.path + "/sub").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  for (int i = 1; i <= 100; ++i) {
    w.append(to_record(dns_event(fmt::format("host{}.test", i), "allowed"), kWho,
                       AuditLevel::standard, static_cast<std::uint64_t>(i)));
  }
  CHECK(w.written() == 100);
  CHECK(w.dropped() == 0);
  CHECK(w.rotations() >= 2);
  for (const auto& p : {path, path + ".1", path + ".2"}) {
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK(st.st_size <= 2000);
    CHECK((st.st_mode & 0777) == 0600);
  }
  CHECK(::stat((path + ".3").c_str(), &st) != 0);  // keep_rotated = 2
  // The newest records are in the current file, in order, oldest first overall.
  auto all = read_log(path, true);
  CHECK(all.invalid_lines == 0);
  REQUIRE(!all.records.empty());
  CHECK(all.records.back()["seq"] == 100);
  for (std::size_t i = 1; i < all.records.size(); ++i)
    CHECK(all.records[i]["seq"].get<int>() == all.records[i - 1]["seq"].get<int>() + 1);
}

TEST_CASE("log writer refuses a symlink and a relative path") {
  TempDir dir;
  const std::string link = dir.path + "/link.jsonl";
  REQUIRE(::symlink("/tmp/elsewhere", link.c_str()) == 0);
  CHECK_THROWS_AS(LogWriter({link, 0, 1}), Error);
  CHECK_THROWS_AS(LogWriter({"relative.jsonl", 0, 1}), Error);
}

TEST_CASE("concurrent writers never tear or lose lines") {
  TempDir dir;
  const std::string path = dir.path + "/c.jsonl";
  constexpr int kWriters = 8, kEach = 500;
  // Large records (several KiB) make torn writes likely if lines were split.
  const std::string pad(6000, 'x');
  std::vector<pid_t> kids;
  for (int k = 0; k < kWriters; ++k) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      LogWriter w({path, 0, 1});
      for (int i = 1; i <= kEach; ++i) {
        Event e;
        e.type = "limit";
        e.data = {{"kind", "test"}, {"writer", k}, {"pad", pad}};
        w.append(to_record(e, kWho, AuditLevel::verbose, static_cast<std::uint64_t>(i)));
      }
      ::_exit(w.dropped() == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto lines = lines_of(path);
  CHECK(lines.size() == kWriters * kEach);
  std::map<int, std::set<int>> seen;
  for (const auto& l : lines) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    seen[j["writer"].get<int>()].insert(j["seq"].get<int>());
  }
  REQUIRE(seen.size() == kWriters);
  for (auto& [k, seqs] : seen) CHECK(seqs.size() == kEach);
}

TEST_CASE("reader counts torn lines; filters; ages") {
  TempDir dir;
  const std::string path = dir.path + "/r.jsonl";
  {
    LogWriter w({path, 0, 1});
    w.append(to_record(dns_event("ok.test", "allowed"), kWho, AuditLevel::standard, 1));
    w.append(to_record(dns_event("bad.test", "denied"), kWho, AuditLevel::standard, 2));
    w.append(to_record(syscall_event(), kWho, AuditLevel::standard, 3));
  }
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"v\":1,\"type\":\"dn\n";  // a fragment, as a full disk leaves
  }
  auto rr = read_log(path, false);
  CHECK(rr.records.size() == 3);
  CHECK(rr.invalid_lines == 1);

  Filter f;
  f.blocked_only = true;
  CHECK(std::count_if(rr.records.begin(), rr.records.end(),
                      [&](auto& r) { return f.matches(r); }) == 2);
  f.category = "dns";
  CHECK(std::count_if(rr.records.begin(), rr.records.end(),
                      [&](auto& r) { return f.matches(r); }) == 1);
  Filter later;
  later.since = std::chrono::system_clock::now() + std::chrono::hours(1);
  CHECK_FALSE(later.matches(rr.records[0]));

  CHECK(parse_age("90s") == std::chrono::seconds(90));
  CHECK(parse_age("1h30m") == std::chrono::seconds(5400));
  CHECK(parse_age("2d") == std::chrono::seconds(172800));
  CHECK_THROWS_AS(parse_age("1x"), Error);
  CHECK_THROWS_AS(parse_age("h"), Error);
  CHECK_THROWS_AS(parse_age("10"), Error);
}

TEST_CASE("summary and run report count what the records say") {
  std::vector<nlohmann::json> recs;
  RunReport report;
  std::uint64_t seq = 0;
  auto add = [&](const Event& e) {
    recs.push_back(to_record(e, kWho, AuditLevel::standard, ++seq));
    report.add(recs.back());
  };
  add(dns_event("api.test", "allowed"));
  add(dns_event("api.test", "allowed"));
  add(dns_event("evil.test", "unlisted"));
  add(dns_event("evil.test", "unlisted"));
  add(dns_event("other.test", "denied"));
  add(syscall_event());
  Event nb;
  nb.type = "net_blocked";
  nb.data = {{"protocol", "udp"}, {"address", "198.51.100.7"}, {"port", 53}, {"reason", "x"}};
  add(nb);
  RunResult result;
  result.exit_code = 1;
  result.duration = std::chrono::milliseconds(42);
  result.usage.peak_memory_bytes = 1234;
  add(exit_event(result));

  auto s = summarize(recs);
  CHECK(s["records"] == 8);
  CHECK(s["blocked"]["total"] == 5);
  CHECK(s["blocked"]["top_destinations"][0]["destination"] == "evil.test");
  CHECK(s["blocked"]["top_destinations"][0]["count"] == 2);
  CHECK(s["top_domains"][0]["domain"] == "api.test");
  CHECK(s["syscalls_denied"]["unshare"] == 1);
  CHECK(s["peaks"]["peak_memory_bytes"] == 1234);

  Policy p;
  p.profile = "standard";
  auto j = report.finish(kWho, p, result);
  CHECK(j["exit_code"] == 1);
  CHECK(j["duration_ms"] == 42);
  CHECK(j["events"]["dns"] == 5);
  CHECK(j["events"]["syscall_denied"] == 1);
  CHECK(j["blocked"]["total"] == 5);
  CHECK(j["blocked"]["top_destinations"][0]["destination"] == "evil.test");
  bool has_udp = false;
  for (auto& d : j["blocked"]["top_destinations"]) has_udp |= d["destination"] == "198.51.100.7:53";
  CHECK(has_udp);
  CHECK(j["syscalls_denied"]["unshare"] == 1);
  CHECK(j["usage"]["peak_memory_bytes"] == 1234);
  CHECK(j["confinement_requested"]["seccomp"] == "default");
}

TEST_CASE("run report: blocked destinations are ranked among a bounded number") {
  RunReport report;
  std::uint64_t seq = 0;
  const std::size_t most = RunReport::kMaxRankedDestinations;
  for (std::size_t i = 0; i < most + 100; ++i)
    report.add(to_record(dns_event("x" + std::to_string(i) + ".test", "unlisted"), kWho,
                         AuditLevel::standard, ++seq));
  for (int i = 0; i < 3; ++i)  // a destination already ranked still counts
    report.add(to_record(dns_event("x7.test", "unlisted"), kWho, AuditLevel::standard, ++seq));
  RunResult result;
  Policy p;
  auto j = report.finish(kWho, p, result);
  CHECK(j["blocked"]["total"] == most + 103);
  CHECK(j["blocked"]["not_ranked"] == 100);
  CHECK(j["blocked"]["top_destinations"][0]["destination"] == "x7.test");
  CHECK(j["blocked"]["top_destinations"][0]["count"] == 4);
}

TEST_CASE("run report: suppression summaries are blocked and rank their destinations") {
  RunReport report;
  std::uint64_t seq = 0;
  Event nb;
  nb.type = "net_blocked_suppressed";
  nb.data = {{"count", 15},
             {"destinations", {{"203.0.113.10:9", 10}, {"[2001:db8::1]:80", 2}}},
             {"unlisted", 3}};
  auto r = to_record(nb, kWho, AuditLevel::standard, ++seq);
  CHECK(r["type"] == "violation");
  CHECK(r["kind"] == "net_blocked_suppressed");
  CHECK(r["blocked"] == true);
  CHECK(category_of(r) == "net");
  report.add(r);
  Event nc;  // ranked by the names the sandbox sent while the level keeps them
  nc.type = "net_connect_suppressed";
  nc.data = {{"count", 7},
             {"destinations", {{"198.51.100.7:443", 7}}},
             {"names", {{"evil.test:443", 6}}},
             {"verdicts", {{"name_not_allowed", 7}}}};
  report.add(to_record(nc, kWho, AuditLevel::standard, ++seq));
  Event dns;
  dns.type = "dns_suppressed";
  dns.data = {{"count", 5}, {"verdicts", {{"rate_limit", 5}}}};
  auto d = to_record(dns, kWho, AuditLevel::standard, ++seq);
  CHECK(d["kind"] == "dns_suppressed");
  CHECK(d["blocked"] == true);
  CHECK(category_of(d) == "dns");
  report.add(d);
  RunResult result;
  Policy p;
  auto j = report.finish(kWho, p, result);
  CHECK(j["events"]["violation"] == 3);
  CHECK(j["blocked"]["total"] == 15 + 7 + 5);  // attempts, not records
  const auto& top = j["blocked"]["top_destinations"];
  REQUIRE(top.size() == 3);
  CHECK(top[0] == nlohmann::json{{"destination", "203.0.113.10:9"}, {"count", 10}});
  CHECK(top[1] == nlohmann::json{{"destination", "evil.test:443"}, {"count", 6}});
  CHECK(top[2]["count"] == 2);
  CHECK(j["blocked"]["not_ranked"] == 3 + 1);  // the unlisted packets, the unnamed connection

  // `sbx audit --summary` counts the same way.
  auto s = summarize({r, to_record(nc, kWho, AuditLevel::standard, ++seq), d}, 10);
  CHECK(s["blocked"]["total"] == 27);
  CHECK(s["blocked"]["top_destinations"][0]["count"] == 10);

  // Level minimal keeps no names: the connections are ranked by address.
  auto m = to_record(nc, kWho, AuditLevel::minimal, ++seq);
  CHECK_FALSE(m.contains("names"));
  CHECK(m["destinations"] == nlohmann::json{{"198.51.100.7:443", 7}});
  RunReport minimal;
  minimal.add(m);
  auto mj = minimal.finish(kWho, p, result);
  CHECK(mj["blocked"]["top_destinations"][0] ==
        nlohmann::json{{"destination", "198.51.100.7:443"}, {"count", 7}});
}

TEST_CASE("blocked_attempts: edge cases of summaries") {
  std::uint64_t seq = 0;
  // Only lost reports: nothing counted, nothing ranked.
  Event lost;
  lost.type = "net_blocked_suppressed";
  lost.data = {{"count", 0}, {"destinations", nlohmann::json::object()}, {"lost_reads", 2}};
  auto a = blocked_attempts(to_record(lost, kWho, AuditLevel::standard, ++seq));
  CHECK(a.total == 0);
  CHECK(a.destinations.empty());
  CHECK(a.unlisted == 0);
  // An empty names object: ranked by address.
  Event nc;
  nc.type = "net_connect_suppressed";
  nc.data = {{"count", 3},
             {"destinations", {{"198.51.100.7:443", 3}}},
             {"names", nlohmann::json::object()}};
  auto b = blocked_attempts(to_record(nc, kWho, AuditLevel::standard, ++seq));
  CHECK(b.total == 3);
  REQUIRE(b.destinations.size() == 1);
  CHECK(b.destinations[0].first == "198.51.100.7:443");
  CHECK(b.unlisted == 0);
  // Lists that add up to more than the count rank no more than the count.
  nc.data["destinations"] = {{"198.51.100.7:443", 3}, {"198.51.100.8:443", 3}};
  nc.data.erase("names");
  auto c = blocked_attempts(to_record(nc, kWho, AuditLevel::standard, ++seq));
  std::uint64_t ranked = 0;
  for (const auto& [d, n] : c.destinations) ranked += n;
  CHECK(ranked + c.unlisted == 3);
  // Unanswered DNS queries are not refusals.
  Event un;
  un.type = "dns";
  un.data = {{"verdict", "unanswered"}, {"count", 4},   {"qtype", "0"},
             {"rcode", "NOERROR"},      {"answers", 0}, {"latency_us", 0}};
  auto r = to_record(un, kWho, AuditLevel::standard, ++seq);
  CHECK(r["blocked"] == false);
  CHECK(blocked_attempts(r).total == 0);
  CHECK(describe(r).find("4 queries unanswered") != std::string::npos);
}
