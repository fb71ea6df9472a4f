// The sbx C++ API: build a Policy, run a command in a sandbox, get its exit
// status and resource usage. The `sbx` CLI uses only this API.
#pragma once

#include <sbx/control.hpp>
#include <sbx/error.hpp>
#include <sbx/events.hpp>
#include <sbx/policy.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sbx {

struct ResourceUsage {
  std::chrono::microseconds user_cpu{0};
  std::chrono::microseconds system_cpu{0};
  std::uint64_t peak_memory_bytes = 0;
  std::uint64_t peak_pids = 0;
};

struct RunResult {
  int exit_code = 0;    // the command's, 128+N for signal N, 125/126/127 (docs/exit-codes)
  int term_signal = 0;  // signal that killed the command, 0 if it exited
  bool timed_out = false;
  std::chrono::milliseconds duration{0};
  ResourceUsage usage;
};

// A secret for the command (`sbx run --secret`, docs/secrets.md): the file
// /run/secrets/NAME (tmpfs, mode 0400, the command's uid) and, when `env` is
// not empty, that environment variable of the command. The value reaches the
// sandbox through the prepared plan only: never argv, sbx's own environment,
// the audit log or the report.
struct Secret {
  std::string name;   // file name below /run/secrets
  std::string env;    // variable to set inside, or empty
  std::string value;  // the bytes
};

struct RunOptions {
  std::vector<std::string> argv;  // command and arguments; argv[0] looked up in PATH inside
  EventSink on_event;             // may be empty
  WarningSink on_warning;         // may be empty
  // Live control (sbx ps/stop/network, docs/control.md): served from the
  // supervisor's loop while the sandbox runs; may be null. Not owned.
  LiveController* controller = nullptr;
  std::vector<Secret> secrets;  // exposed under /run/secrets (may be empty)
  // Lets sandbox init share this process's address space instead of being a
  // copy of it: a start ~2 ms faster, ~5 ms with a memory limit
  // (docs/launch.md "Start-up time"; x86-64). For a process that runs one sandbox at
  // a time and nothing else that must stay debuggable: the sbx CLI and the C
  // ABI's supervisor process set it. While such an init lives this process
  // is not dumpable (init hides itself from the command) and has one more
  // thread; a second sandbox started meanwhile gets a copy, whose id maps an
  // unprivileged process then cannot write (the copy inherits the flag).
  bool share_address_space = false;
  // Once the sandbox is cloned, raises this process's soft open-file limit
  // to its hard limit (at most 16384): the supervisor holds up to six fds
  // per proxied connection (client, upstream, two pipes), and the usual
  // soft limit of 1024 would reset connections past ~170 (reported as a
  // `limit` event of kind open_files). The sandbox keeps the limit it
  // started with. Changes a process-wide setting, so only for a process of
  // its own: the sbx CLI and the C ABI's supervisor process set it.
  bool raise_open_file_limit = false;
};

// Runs argv in a sandbox built from policy and waits for it. Throws sbx::Error
// (exit code 125 material) when the sandbox cannot be built; never runs the
// command unsandboxed.
RunResult run(const Policy& policy, const RunOptions& options);

}  // namespace sbx
