// The test-only breakage switch (tests/hooks/break_switch.cpp, docs/check.md).
//
// The escape suite must be able to show that its assertions and `sbx check`
// fail when a protection is missing. The switch that removes one lives only
// in the `sbx-test-hooks` executable built with the tests: it sets
// break_protections at static initialisation. Every shipped binary (sbx,
// libsbx) leaves it null, so no environment variable can weaken them.
#pragma once

#include <sbx/events.hpp>

namespace sbx::runtime {

struct LaunchPlan;

namespace test_hooks {

// Called by prepare_launch_plan when set; may remove protections from the
// plan (and must say so loudly through warn).
using BreakProtections = void (*)(LaunchPlan& plan, const WarningSink& warn);
extern BreakProtections break_protections;

// The protections the active switch removes ("seccomp"), or "" when none:
// `sbx check` prints it on top of its table.
using ActiveBreakage = const char* (*)();
extern ActiveBreakage active_breakage;

// Not a breakage: how long sandbox init sleeps before anything else, so a
// test can kill sbx before init has armed PDEATHSIG (0: not at all).
using InitDelay = unsigned (*)();
extern InitDelay init_delay_ms;
// Not a breakage either: how long the supervisor sleeps before the live
// controller's start (the CLI's name claim), so a test can show that init
// waits for it before the command starts (0: not at all).
extern InitDelay controller_start_delay_ms;

}  // namespace test_hooks
}  // namespace sbx::runtime
