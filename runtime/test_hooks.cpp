// Null in every shipped binary: see test_hooks.hpp.
#include "runtime/test_hooks.hpp"

namespace sbx::runtime::test_hooks {

BreakProtections break_protections = nullptr;
ActiveBreakage active_breakage = nullptr;
InitDelay init_delay_ms = nullptr;
InitDelay controller_start_delay_ms = nullptr;

}  // namespace sbx::runtime::test_hooks
