// `sbx check`: the system rows, then the probe rows, then the verdict.
#include "check/check.hpp"

#include <limits.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>
#include <filesystem>

#include "check/probes.hpp"
#include "check/system_features.hpp"
#include "profiles/profiles.hpp"
#include "runtime/identity.hpp"
#include "runtime/test_hooks.hpp"

namespace sbx::check {
namespace {

bool executable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

std::string who_am_i() {
  const uid_t uid = getuid();
  std::string name = "?";
  try {
    // Not getpwuid: the static sbx asks /etc/passwd only, then getent
    // (LDAP, sssd and systemd users too).
    name = runtime::host_user_name(uid).value_or("?");
  } catch (const Error&) {
  }
  return uid == 0 ? name : fmt::format("{} (uid {}, unprivileged)", name, uid);
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::ok:
      return "ok";
    case Verdict::contained:
      return "contained";
    case Verdict::exposed:
      return "EXPOSED";
    case Verdict::not_applicable:
      return "n/a";
    case Verdict::unsupported:
      return "unsupported";
  }
  return "?";
}

std::string find_probe() {
  if (const char* env = std::getenv("SBX_PROBE"); env && executable(env)) return env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    std::filesystem::path dir = std::filesystem::path(self).parent_path();
    for (const auto& candidate :
         {dir / "../libexec/sbx/sbx-probe", dir / "tests/sbx-probe", dir / "sbx-probe"}) {
      std::string c = candidate.lexically_normal().string();
      if (executable(c)) return c;
    }
  }
  if (executable("/usr/libexec/sbx/sbx-probe")) return "/usr/libexec/sbx/sbx-probe";
  return {};
}

Report run_check(const Options& options) {
  Report report;
  report.profile =
      options.profile.empty() ? std::string(profiles::kDefaultProfile) : options.profile;
  report.user = who_am_i();
  struct utsname u {};
  if (uname(&u) == 0) report.kernel = u.release;

  // A bad profile is a usage error (throws ProfileError): nothing to check.
  std::vector<std::string> warnings;
  Policy policy =
      profiles::resolve(report.profile, {}, profiles::Environment::from_process(), &warnings);
  for (auto& w : warnings) report.notes.push_back(std::move(w));

  if (runtime::test_hooks::active_breakage != nullptr) {
    const char* broken = runtime::test_hooks::active_breakage();
    report.notes.push_back(
        broken && *broken
            ? fmt::format("TEST BUILD with SBX_TEST_BREAK={}: this binary removes that protection "
                          "on purpose; never use sbx-test-hooks for real work",
                          broken)
            : "TEST BUILD (sbx-test-hooks): the breakage switch is present but not active");
  }

  report.rows = system_rows(policy);
  std::string probe = options.probe_path.empty() ? find_probe() : options.probe_path;
  if (!executable(probe)) {
    Row row = make_row("sandbox", "probe helper (sbx-probe)", Verdict::unsupported, true);
    row.detail = probe.empty() ? "not found" : probe + " is not executable";
    row.why = "the protections cannot be tested live without the static probe helper";
    row.fix =
        "install it beside sbx as ../libexec/sbx/sbx-probe (the package does), "
        "or pass --probe PATH";
    report.rows.push_back(row);
  } else {
    for (auto& row :
         protection_rows(policy, {report.profile, probe, options.timeout}, report.notes)) {
      report.rows.push_back(std::move(row));
    }
  }

  int contained = 0, exposed = 0, na = 0, unsupported = 0, broken = 0;
  for (const auto& row : report.rows) {
    if (row.area == "system") {
      if (row.verdict == Verdict::unsupported && row.promised) ++broken;
      continue;
    }
    switch (row.verdict) {
      case Verdict::contained:
        ++contained;
        break;
      case Verdict::exposed:
        ++exposed;
        if (row.promised) ++broken;
        break;
      case Verdict::not_applicable:
        ++na;
        break;
      case Verdict::unsupported:
        ++unsupported;
        if (row.promised) ++broken;
        break;
      case Verdict::ok:
        break;
    }
  }
  report.promises_hold = broken == 0 && contained > 0;
  report.summary = fmt::format(
      "{}: {} contained, {} exposed, {} not applicable, {} unsupported — {}", report.profile,
      contained, exposed, na, unsupported,
      report.promises_hold ? "the profile's promises hold on this machine"
                           : fmt::format("the profile's promises do NOT hold here ({} broken)",
                                         broken ? broken : 1));
  return report;
}

nlohmann::json to_json(const Report& report) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : report.rows) {
    rows.push_back({{"area", r.area},
                    {"name", r.name},
                    {"verdict", r.verdict == Verdict::exposed ? "exposed" : to_string(r.verdict)},
                    {"promised", r.promised},
                    {"detail", r.detail},
                    {"why", r.why},
                    {"fix", r.fix}});
  }
  return {{"profile", report.profile}, {"user", report.user},
          {"kernel", report.kernel},   {"rows", rows},
          {"notes", report.notes},     {"promises_hold", report.promises_hold},
          {"summary", report.summary}};
}

}  // namespace sbx::check
