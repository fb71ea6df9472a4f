// Start-up timing trace, for finding where launch time goes (bench/startup.sh
// says how much; this says where). Off unless SBX_TRACE_STARTUP=1 is in the
// environment; then each mark records a CLOCK_MONOTONIC timestamp into a
// shared anonymous page that the supervisor, sandbox init and the worker all
// see (it is mapped before clone), and the supervisor prints the table to
// stderr when it exits. docs/launch.md ("Start-up time") shows how to read it.
#pragma once

namespace sbx::runtime::startup_trace {

// Async-signal-safe (no allocation, no locks, vDSO clock): callable between
// clone and execve. `step` must be a string literal. A no-op when disabled.
void mark(const char* step) noexcept;

// Prints the table now (once) when tracing is on: for a process that leaves
// by _exit, which skips the atexit handler that otherwise prints it.
void report() noexcept;

}  // namespace sbx::runtime::startup_trace
