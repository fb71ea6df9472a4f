// check/ — `sbx check`: what this machine and a profile actually contain,
// found out live. The system part asks the kernel for the features sbx
// builds on (user namespaces, Landlock, cgroups, nf_tables in a user
// namespace, seccomp notify, pidfd, clone3); the probe part starts real
// sandboxes of the profile through sbx::run and attempts, with the static
// sbx-probe helper, the escapes the profile promises to stop. Nothing here
// prints: cli/cmd_check.cpp renders the Report (docs/check.md).
#pragma once

#include <sbx/policy.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sbx::check {

enum class Verdict {
  ok,              // system: the feature is there
  contained,       // protection: the attempt was stopped
  exposed,         // protection: the attempt got through
  not_applicable,  // the profile does not promise it (why says so)
  unsupported,     // this machine cannot provide it (why and fix say so)
};
std::string_view to_string(Verdict verdict);

struct Row {
  std::string area;  // "system", "identity", "seccomp", "filesystem", "network", ...
  std::string name;  // what is protected, in words
  Verdict verdict = Verdict::not_applicable;
  // The profile depends on it: an exposed or unsupported promised row
  // breaks the profile's promise (exit 1).
  bool promised = false;
  std::string detail;  // what was observed (errnos, values)
  std::string why;     // for exposed / unsupported / not applicable
  std::string fix;     // for exposed / unsupported
};

inline Row make_row(std::string area, std::string name, Verdict verdict, bool promised) {
  Row row;
  row.area = std::move(area);
  row.name = std::move(name);
  row.verdict = verdict;
  row.promised = promised;
  return row;
}

struct Options {
  std::string profile;     // built-in name or file; empty = the default profile
  std::string probe_path;  // sbx-probe; empty = find_probe()
  // The probe sandbox's time limit: a probe that hangs (a stuck connect,
  // a kernel bug) ends there; its attempts are unverified (exit 1).
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};
};

struct Report {
  std::string profile;
  std::string user;                // who ran the check ("root", "alice (uid 1000)")
  std::string kernel;              // uname -r
  std::vector<Row> rows;           // system rows first, then the protections
  std::vector<std::string> notes;  // warnings from the sandboxes, test hooks
  bool promises_hold = false;
  std::string summary;  // one line
};

// Runs every check. Throws sbx::Error only for a bad profile (exit 125);
// anything the machine cannot do becomes a row.
Report run_check(const Options& options);

// The sbx-probe helper: $SBX_PROBE, else beside the running sbx
// (../libexec/sbx/sbx-probe for an installed sbx, tests/sbx-probe in a build
// tree), else /usr/libexec/sbx/sbx-probe. Empty when none is executable.
std::string find_probe();

nlohmann::json to_json(const Report& report);

}  // namespace sbx::check
