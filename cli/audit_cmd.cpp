// sbx audit [NAME|FILE]: read an audit log back (docs/audit.md).
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "audit/audit.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace sbx::cli {
namespace {

constexpr const char* kAuditExamples = R"(
NAME is a sandbox name (--name) or profile name: its default log
$XDG_STATE_HOME/sbx/audit/NAME.jsonl (~/.local/state/...), rotated files
included. FILE is any audit log (a path containing '/' or an existing file).

Examples:
  sbx audit ci-42                         the log of sandbox ci-42 as a table
  sbx audit ./audit.jsonl --summary       top domains, blocked, denied syscalls, peaks
  sbx audit strict --blocked-only --json  blocked attempts as JSONL
  sbx audit ci-42 --category dns --since 1h
)";

struct AuditState {
  std::string target = "standard";
  bool json = false;
  bool summary = false;
  bool blocked_only = false;
  std::string category;
  std::string since;
};

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

int run_audit(const AuditState& s) {
  std::string path = s.target;
  bool rotated = false;
  if (s.target.find('/') == std::string::npos && !is_file(s.target)) {
    path = audit::default_log_path(s.target,
                                   [](const char* k) -> const char* { return std::getenv(k); });
    rotated = true;
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
        s.category != "limit" && s.category != "exec") {
      return report_usage_error(fmt::format("unknown --category '{}'", s.category),
                                "use dns, net, syscall, limit or exec");
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

  auto read = audit::read_log(path, rotated);
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
  cmd->add_option("--category", s->category, "Only dns|net|syscall|limit|exec")
      ->type_name("CATEGORY");
  cmd->add_option("--since", s->since, "Only records newer than an age: 30s, 15m, 1h, 2d")
      ->type_name("AGE");
  return [s, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return run_audit(*s);
  };
}

}  // namespace sbx::cli
