// sbx audit [NAME|FILE]: read an audit log back (docs/audit.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "audit/audit.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "control/control.hpp"

namespace sbx::cli {
namespace {

constexpr const char* kAuditExamples = R"(
NAME is a sandbox name (--name) or profile name: its default log
$XDG_STATE_HOME/sbx/audit/NAME.jsonl (~/.local/state/...), rotated files
included. FILE is any audit log (a path containing '/' or an existing file),
its rotated files FILE.N .. FILE.1 included.

Examples:
  sbx audit ci-42                         the log of sandbox ci-42 as a table
  sbx audit ./audit.jsonl --summary       top domains, blocked, denied syscalls, peaks
  sbx audit strict --blocked-only --json  blocked attempts as JSONL
  sbx audit ci-42 --category dns --since 1h
  sbx audit -f ci-42                      follow a running sandbox until it exits
)";

struct AuditState {
  std::string target = "standard";
  bool json = false;
  bool summary = false;
  bool blocked_only = false;
  std::string category;
  std::string since;
  bool follow = false;
};

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// -f: prints records as they are appended until the sandbox(es) writing the
// log have exited (their state dirs are gone), then what they wrote last.
int follow_log(const std::string& path, std::vector<std::string> live_dirs,
               const audit::Filter& filter, bool json) {
  if (!json) fmt::print("{:<27} {:<15} {:<20} {}\n", "TIME", "TYPE", "SANDBOX", "DETAIL");
  int fd = -1;
  std::string partial;
  std::uint64_t invalid = 0;
  const auto open_log = [&]() {
    if (fd >= 0) ::close(fd);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  };
  const auto drain = [&]() {
    if (fd < 0) return;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return;
      partial.append(buf, static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
        if (nl == start) continue;
        auto r = nlohmann::json::parse(partial.substr(start, nl - start), nullptr, false);
        if (r.is_discarded() || !r.is_object() || !r.contains("type")) {
          ++invalid;
          continue;
        }
        if (!filter.matches(r)) continue;
        fmt::print("{}\n", json ? r.dump() : audit::describe(r));
      }
      partial.erase(0, start);
      std::fflush(stdout);
    }
  };
  open_log();
  for (;;) {
    drain();
    std::erase_if(live_dirs, [](const std::string& d) { return !control::is_live(d); });
    if (live_dirs.empty()) {
      drain();  // what was written just before the exit
      break;
    }
    // Rotated: finish the old file, continue with the new one.
    struct stat by_name {
    }, by_fd{};
    if (fd < 0 || (::stat(path.c_str(), &by_name) == 0 && ::fstat(fd, &by_fd) == 0 &&
                   (by_name.st_ino != by_fd.st_ino || by_name.st_dev != by_fd.st_dev))) {
      drain();
      partial.clear();
      open_log();
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (fd >= 0) ::close(fd);
  if (invalid > 0) warn(fmt::format("{}: {} line(s) are not valid records", path, invalid));
  return 0;
}

int run_audit(const AuditState& s) {
  std::string path = s.target;
  std::vector<std::string> live_dirs;
  if (s.follow) {
    if (s.summary) return report_usage_error("-f and --summary exclude each other", "drop one");
    const std::string base = control::state_base(false);
    if (auto live = control::find_live(base, s.target); live && !is_file(s.target)) {
      path = live->state.value("audit_log", std::string());
      if (path.empty()) {
        return report_usage_error(fmt::format("sandbox '{}' writes no audit log", s.target),
                                  "run it with --audit-log FILE");
      }
      live_dirs.push_back(live->dir);
    } else if (is_file(s.target)) {
      for (const auto& e : control::list_live(base)) {
        const std::string log = e.state.value("audit_log", std::string());
        if (!log.empty() && real(log) == real(s.target)) live_dirs.push_back(e.dir);
      }
    }
  }
  if (live_dirs.empty() && s.target.find('/') == std::string::npos && !is_file(s.target)) {
    path = audit::default_log_path(s.target,
                                   [](const char* k) -> const char* { return std::getenv(k); });
  }
  if (path.empty() || !is_file(path)) {
    return report_usage_error(
        fmt::format("no audit log '{}'", path.empty() ? s.target : path),
        "give a log file, or the --name of a sandbox that ran with the default audit log");
  }
  audit::Filter filter;
  filter.blocked_only = s.blocked_only;
  if (!s.category.empty()) {
    if (s.category != "dns" && s.category != "net" && s.category != "syscall" &&
        s.category != "limit" && s.category != "exec" && s.category != "control") {
      return report_usage_error(fmt::format("unknown --category '{}'", s.category),
                                "use dns, net, syscall, limit, control or exec");
    }
    filter.category = s.category;
  }
  if (!s.since.empty()) {
    try {
      filter.since = std::chrono::system_clock::now() - audit::parse_age(s.since);
    } catch (const sbx::Error& e) {
      return report_usage_error(e);
    }
  }

  if (s.follow && is_file(path)) return follow_log(path, live_dirs, filter, s.json);
  // Rotated files (FILE.N .. FILE.1) first, for a NAME and a FILE alike.
  auto read = audit::read_log(path, true);
  std::vector<nlohmann::json> kept;
  for (auto& r : read.records)
    if (filter.matches(r)) kept.push_back(std::move(r));
  if (read.invalid_lines > 0) {
    warn(fmt::format("{}: {} line(s) are not valid records (torn by a full disk, or edited)", path,
                     read.invalid_lines));
  }

  if (s.summary) {
    auto sum = audit::summarize(kept);
    if (s.json) {
      fmt::print("{}\n", sum.dump(2));
      return 0;
    }
    fmt::print("records: {}  sandboxes: {}  blocked: {}\n", sum["records"].get<std::uint64_t>(),
               sum["sandboxes"].get<std::uint64_t>(), sum["blocked"]["total"].get<std::uint64_t>());
    fmt::print("events:\n");
    for (auto& [type, n] : sum["events"].items()) fmt::print("  {:<16} {}\n", type, n.dump());
    fmt::print("top domains:\n");
    for (auto& d : sum["top_domains"])
      fmt::print("  {:<40} {}\n", d["domain"].get<std::string>(), d["count"].dump());
    fmt::print("top blocked destinations:\n");
    for (auto& d : sum["blocked"]["top_destinations"])
      fmt::print("  {:<40} {}\n", d["destination"].get<std::string>(), d["count"].dump());
    fmt::print("denied syscalls:\n");
    for (auto& [name, n] : sum["syscalls_denied"].items())
      fmt::print("  {:<16} {}\n", name, n.dump());
    fmt::print("limits:\n");
    for (auto& [kind, n] : sum["limits"].items()) fmt::print("  {:<16} {}\n", kind, n.dump());
    const auto& p = sum["peaks"];
    fmt::print("peaks: memory {} bytes, pids {}, longest run {} ms ({} runs)\n",
               p["peak_memory_bytes"].dump(), p["peak_pids"].dump(), p["max_duration_ms"].dump(),
               p["runs"].dump());
    return 0;
  }
  if (s.json) {
    for (const auto& r : kept) fmt::print("{}\n", r.dump());
    return 0;
  }
  fmt::print("{:<27} {:<15} {:<20} {}\n", "TIME", "TYPE", "SANDBOX", "DETAIL");
  for (const auto& r : kept) fmt::print("{}\n", audit::describe(r));
  return 0;
}

}  // namespace

Command add_audit(CLI::App& app) {
  auto s = std::make_shared<AuditState>();
  CLI::App* cmd = app.add_subcommand("audit", "Show an audit log: sbx audit [NAME|FILE]");
  cmd->footer(kAuditExamples);
  cmd->add_option("target", s->target, "Sandbox/profile name or log file (default: standard)")
      ->type_name("NAME|FILE");
  cmd->add_flag("--json", s->json, "Print records (or the summary) as JSON");
  cmd->add_flag("--summary", s->summary,
                "Top domains, blocked attempts, denied syscalls, resource peaks");
  cmd->add_flag("--blocked-only", s->blocked_only, "Only attempts the policy refused");
  cmd->add_flag("-f,--follow", s->follow,
                "Follow a running sandbox's log (NAME or FILE) until it exits");
  cmd->add_option("--category", s->category, "Only dns|net|syscall|limit|control|exec")
      ->type_name("CATEGORY");
  cmd->add_option("--since", s->since, "Only records newer than an age: 30s, 15m, 1h, 2d")
      ->type_name("AGE");
  return [s, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return run_audit(*s);
  };
}

}  // namespace sbx::cli
