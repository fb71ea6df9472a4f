// sbx check [--profile P] [--json] [--probe PATH] [--timeout D]: the live verdict table.
#include <unistd.h>

#include <fmt/format.h>
#include <chrono>
#include <memory>

#include "check/check.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "control/control.hpp"
#include "profiles/profiles.hpp"

namespace sbx::cli {
namespace {

struct CheckState {
  std::string profile;
  std::string probe;
  std::string timeout = "2m";
  bool json = false;
};

void print_table(const check::Report& report) {
  const bool color = isatty(STDOUT_FILENO) != 0;
  const auto paint = [color](check::Verdict v) {
    std::string text(check::to_string(v));
    if (!color) return fmt::format("{:<11}", text);
    const char* code = v == check::Verdict::exposed          ? "1;31"
                       : v == check::Verdict::unsupported    ? "33"
                       : v == check::Verdict::not_applicable ? "2"
                                                             : "32";
    return fmt::format("\033[{}m{:<11}\033[0m", code, text);
  };
  fmt::print("sbx check --profile {}   ({}, kernel {})\n", report.profile, report.user,
             report.kernel);
  for (const auto& n : report.notes) fmt::print("note: {}\n", n);
  std::string area;
  for (const auto& row : report.rows) {
    const bool system = row.area == "system";
    if (area.empty() || (system != (area == "system"))) {
      fmt::print("\n{}\n", system ? "System (kernel features sbx builds on)"
                                  : "Protections (probed live in a sandbox of the profile)");
    }
    area = row.area;
    fmt::print("  {} {:<11} {}{}\n", paint(row.verdict), system ? "" : row.area, row.name,
               row.promised || system ? "" : "  (not promised)");
    if (!row.detail.empty()) fmt::print("      {}\n", row.detail);
    if (!row.why.empty() && row.verdict != check::Verdict::ok &&
        row.verdict != check::Verdict::contained)
      fmt::print("      why: {}\n", row.why);
    if (!row.fix.empty() &&
        (row.verdict == check::Verdict::exposed || row.verdict == check::Verdict::unsupported))
      fmt::print("      fix: {}\n", row.fix);
  }
  fmt::print("\n{}\n", report.summary);
}

int run_check(const CheckState& s) {
  std::chrono::milliseconds timeout{};
  try {
    timeout = profiles::parse_duration(s.timeout);
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
  if (timeout.count() <= 0) {
    return report_usage_error("--timeout must be longer than 0", "e.g. --timeout 5m");
  }
  check::Report report;
  try {
    report = check::run_check({s.profile, s.probe, timeout});
  } catch (const profiles::ProfileError& e) {
    return report_usage_error(e);
  }
  if (s.json) {
    fmt::print("{}\n", check::to_json(report).dump(2));
  } else {
    print_table(report);
  }
  return report.promises_hold ? 0 : 1;
}

}  // namespace

Command add_check(CLI::App& app) {
  auto s = std::make_shared<CheckState>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Show, live, what this machine and a profile contain (exit 0: promises hold)");
  cmd->add_option("-p,--profile", s->profile,
                  fmt::format("Built-in profile name or profile file (default: {})",
                              profiles::kDefaultProfile))
      ->type_name("NAME|FILE");
  cmd->add_flag("--json", s->json, "Print the rows as JSON");
  cmd->add_option("--probe", s->probe, "The sbx-probe helper (default: beside sbx)")
      ->type_name("PATH");
  cmd->add_option("--timeout", s->timeout,
                  "Stop the probe sandbox after this long; unfinished attempts are unverified "
                  "(exit 1) (default 2m)")
      ->type_name("DURATION");
  cmd->footer(R"(
Runs real sandboxes of the profile and attempts the escapes it promises to
stop; prints each protection's verdict (contained / EXPOSED / n/a /
unsupported) with why and the fix. Exit 0 only if the profile's promises hold.

Examples:
  sbx check                          the default profile
  sbx check --profile strict
  sbx check -p airgapped --json
)");
  return [s, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return run_check(*s);
  };
}

}  // namespace sbx::cli
