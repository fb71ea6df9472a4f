// How dear a page fault is on this machine, measured once per process. Two
// start-up choices pay only where it is (docs/launch.md "Start-up time"):
// mapping the executable and heap in bulk (cli/prefault.cpp) and the launch
// on one CPU (cpu_pin.hpp). On the nested VM of the first benchmark runs a
// fault cost ~12 µs and waking an idle virtual CPU was dearer than a
// start's hand-offs on one CPU; on the later VM (a fault ~1.5 µs, idle
// vCPUs poll: cpuidle haltpoll) both choices made starts slower. A fault's
// cost is the one of the two that can be measured in microseconds at every
// start, so it decides both.
#pragma once

namespace sbx::runtime {

// Above this, a fault costs clearly more than populating a page.
inline constexpr long kDearFaultNs = 5000;

// Nanoseconds the first write to a fresh anonymous page takes, the least of
// two (an interrupt can only make one dearer); measured at the first call
// (two faults, three system calls, two vDSO clock reads), 0 if it could not
// be. Async-signal-safe after the first call; safe before constructors run.
long page_fault_ns() noexcept;

inline bool dear_page_faults() noexcept {
  return page_fault_ns() >= kDearFaultNs;
}

}  // namespace sbx::runtime
