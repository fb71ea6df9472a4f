// The C ABI's opaque handles (include/sbx/sbx.h) and what the files of
// capi/ share. Private to libsbx.
#pragma once

#include <sys/types.h>

#include <sbx/sbx.h>

#include <sbx/sbx.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sbx::capi {

// The last error of a handle: what failed and why, and the fix.
struct LastError {
  std::string what;
  std::string fix;
  void clear() {
    what.clear();
    fix.clear();
  }
  void set(std::string w, std::string f) {
    what = std::move(w);
    fix = std::move(f);
  }
};

// Turns the exception in flight into `error`; returns -1 (the C ABI's
// failure value). Call only inside a catch block.
int record_current_exception(LastError& error);

// A profile written as JSON (the TOML structure) turned into TOML text.
// Throws sbx::Error naming the JSON path of a value TOML cannot hold.
std::string json_profile_to_toml(std::string_view json_text);

// What the supervisor process needs, all prepared before fork.
struct SupervisorSetup {
  const Policy* policy = nullptr;
  std::vector<std::string> argv;
  int stdio[3] = {-1, -1, -1};  // -1 = /dev/null
  int event_pipe = -1;          // write end: one record per line
  bool want_events = false;     // the caller set an event callback
  bool new_session = false;     // stdio is our pty: make it the controlling tty
};

// The forked supervisor: runs sbx::run and reports over the pipe. Never
// returns. Record lines: "E <event json>", "R <result json>",
// "X <error json>".
[[noreturn]] void supervisor_process_main(const SupervisorSetup& setup);

}  // namespace sbx::capi

struct sbx_policy {
  std::optional<sbx::Policy> policy;
  sbx::capi::LastError error;
};

struct sbx_run {
  enum class State { created, running, finished };
  State state = State::created;
  sbx::capi::LastError error;

  // Set before start.
  int stdio[3] = {0, 1, 2};
  bool use_pty = false;
  unsigned short pty_rows = 24;
  unsigned short pty_cols = 80;
  sbx_event_fn on_event = nullptr;
  void* user_data = nullptr;

  // After start.
  pid_t pid = -1;
  int event_fd = -1;  // read end of the supervisor's record pipe
  int pty_master = -1;
  std::int64_t kill_after_ms = 10'000;
  std::string pending;                      // a partial record line
  std::vector<std::string> early_warnings;  // from validate(), delivered first
  bool reaped = false;
  bool sent_sigkill = false;  // sbx_run_kill(SIGKILL): a supervisor killed on purpose

  // The result.
  bool have_result = false;
  bool sbx_failed = false;  // sbx itself failed (exit 125 with an error), not the command
  int exit_code = -1;
  int term_signal = 0;
  bool timed_out = false;
  std::string result_json;
};
