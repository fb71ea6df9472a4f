// The test-only breakage switch, linked ONLY into the sbx-test-hooks
// executable (check/CMakeLists.txt), never into sbx or libsbx.
//
//   SBX_TEST_BREAK=seccomp sbx-test-hooks run ...   no seccomp filter at all
//   SBX_TEST_INIT_DELAY_MS=N sbx-test-hooks run ... init sleeps N ms first
//   SBX_TEST_CONTROLLER_DELAY_MS=N sbx-test-hooks run ...
//                                          the name claim waits N ms first
//
// tests/integration/check_breakage.sh uses it to show that the escape
// suite's seccomp assertions and the seccomp rows of `sbx check` fail when
// the filter is missing. Every sandbox it weakens says so on stderr.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/launch.hpp"
#include "runtime/test_hooks.hpp"

namespace {

const char* requested_breakage() {
  const char* value = std::getenv("SBX_TEST_BREAK");
  if (value == nullptr || std::strcmp(value, "seccomp") != 0) return "";
  return "seccomp";
}

void break_protections(sbx::runtime::LaunchPlan& plan, const sbx::WarningSink& warn) {
  const char* what = requested_breakage();
  if (std::strcmp(what, "seccomp") != 0) {
    if (const char* v = std::getenv("SBX_TEST_BREAK"); v != nullptr && *v != '\0') {
      std::fprintf(stderr, "sbx-test-hooks: SBX_TEST_BREAK=%s is not a known breakage (seccomp)\n",
                   v);
      std::exit(125);
    }
    return;
  }
  plan.seccomp.instructions.clear();
  plan.seccomp.fallback_instructions.clear();
  plan.seccomp.uses_notify = false;
  const char* loud =
      "TEST BUILD: SBX_TEST_BREAK=seccomp: this sandbox has NO seccomp filter "
      "(sbx-test-hooks is a test binary; never use it for real work)";
  std::fprintf(stderr, "sbx-test-hooks: WARNING: %s\n", loud);
  if (warn) warn(loud);
}

// Milliseconds from the environment variable `name` (0 when unset).
unsigned delay_from_env(const char* name) {
  const char* delay = std::getenv(name);
  return delay == nullptr ? 0 : static_cast<unsigned>(std::strtoul(delay, nullptr, 10));
}

// Not a breakage: a slow sandbox init, for races at the start (a kill -9
// of sbx before init has armed PDEATHSIG: tests/escape/zz_leftovers.sh).
unsigned init_delay_ms() {
  return delay_from_env("SBX_TEST_INIT_DELAY_MS");
}

// A slow name claim: init must wait for it (tests/integration/control_live.sh).
unsigned controller_start_delay_ms() {
  return delay_from_env("SBX_TEST_CONTROLLER_DELAY_MS");
}

const char* active_breakage() {
  return requested_breakage();
}

// Installed before main(): this file exists only in sbx-test-hooks.
[[maybe_unused]] const bool installed = [] {
  sbx::runtime::test_hooks::break_protections = &break_protections;
  sbx::runtime::test_hooks::active_breakage = &active_breakage;
  sbx::runtime::test_hooks::init_delay_ms = &init_delay_ms;
  sbx::runtime::test_hooks::controller_start_delay_ms = &controller_start_delay_ms;
  return true;
}();

}  // namespace
