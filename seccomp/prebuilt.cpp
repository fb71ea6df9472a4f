// Filters compiled when sbx was built (seccomp/gen/, docs/launch.md "Start-up
// time"): libseccomp's compiler costs 1 to 3 ms per run, the largest single
// step of a start-up, for programs that are the same every time for the
// built-in modes. The table is keyed by the whole plan (plan_key), so any
// difference — a profile's seccomp_allow/deny, a new syscall group member —
// falls back to compiling; tests/unit/seccomp checks the table against the
// compiler.
#include <seccomp.h>

#include <string>

#include "seccomp/seccomp.hpp"

namespace sbx::seccomp {
namespace {

struct Prebuilt {
  const char* key;
  const sock_filter* instructions;
  std::size_t count;
};

#ifdef SBX_SECCOMP_PREBUILT
#include "seccomp_prebuilt.inc"  // kPrebuiltApiLevel, kPrebuilt[] (build dir: generated/)
#else
// The generator itself (seccomp/gen/) is built without a table.
constexpr unsigned kPrebuiltApiLevel = 0;
constexpr Prebuilt* kPrebuilt = nullptr;
constexpr std::size_t kPrebuiltCount = 0;
#endif

char letter(Verdict v) {
  switch (v) {
    case Verdict::allow:
      return 'a';
    case Verdict::deny:
      return 'd';
    case Verdict::enosys:
      return 'n';
    case Verdict::filtered:
      return 'f';
  }
  return '?';
}

}  // namespace

std::string plan_key(const FilterPlan& plan) {
  // The argument filters of "filtered" syscalls are not in the key: they are
  // code, and the table is regenerated whenever that code changes.
  std::string key = "mode=" + std::to_string(static_cast<int>(plan.mode)) + " fallback=";
  key += letter(plan.fallback);
  for (const auto& [name, verdict] : plan.rules) {
    key += ' ';
    key += name;
    key += '=';
    key += letter(verdict);
  }
  return key;
}

bool prebuilt_notify_program(const FilterPlan& plan, std::vector<sock_filter>& out) {
  if (kPrebuiltCount == 0) return false;
  // libseccomp chooses actions by the kernel's API level: only the level the
  // table was generated at is known to give the same program.
  if (static_cast<unsigned>(seccomp_api_get()) != kPrebuiltApiLevel) return false;
  const std::string key = plan_key(plan);
  for (std::size_t i = 0; i < kPrebuiltCount; ++i) {
    if (key == kPrebuilt[i].key) {
      out.assign(kPrebuilt[i].instructions, kPrebuilt[i].instructions + kPrebuilt[i].count);
      return true;
    }
  }
  return false;
}

}  // namespace sbx::seccomp
