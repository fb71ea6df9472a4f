// control — live control of running sandboxes (docs/control.md).
//
// Each running sandbox owns a state directory <base>/<name>/ (0700) with
//   lock        flock()ed by the sandbox's sbx for its whole life: a lock that
//               can be taken means its sbx is dead (kill -9 included), so the
//               directory is stale and removed by the next sbx run/ps;
//   state.json  name, id, sbx pid, init pid, profile, start time, audit log;
//   control.sock  AF_UNIX SOCK_SEQPACKET, 0600: one JSON request, one JSON
//               reply per connection; peers must be the same uid or root
//               (SO_PEERCRED) and in sbx's own user namespace (never a
//               process of a sandbox).
// <base> is /run/sbx for root, $XDG_RUNTIME_DIR/sbx otherwise, and
// /tmp/sbx-<uid> (0700, owned by the user, checked) when XDG_RUNTIME_DIR is
// unset. The directory is built under a temporary name and renamed into
// place, so <base>/<name> is either complete and locked, or stale.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <sbx/control.hpp>
#include <sbx/error.hpp>
#include <sbx/events.hpp>

namespace sbx::control {

inline constexpr const char* kStateFile = "state.json";
inline constexpr const char* kSocketFile = "control.sock";
// Liveness is the flock of the state dir itself; earlier builds locked this file
// inside it instead, which is still honoured.
inline constexpr const char* kLegacyLockFile = "lock";

// The directory that holds the state dirs of this user's sandboxes. Creates
// it (0700) when `create`. Throws sbx::Error when it is unsafe (not ours,
// group/world accessible, a symlink) or cannot be created.
std::string state_base(bool create);

// "a-z A-Z 0-9 . _ -", 1..64, not starting with '.' (the --name rule).
bool valid_name(const std::string& name);

struct SandboxInfo {
  std::string name;
  std::string id;
  std::string profile;
  std::string audit_log;  // empty: no log
  pid_t sbx_pid = 0;
  pid_t init_pid = 0;  // 0 until the sandbox runs
  // Who sbx_pid is beyond its number (filled in when sbx_pid is this
  // process): its pid namespace and start time, so that a reader can tell
  // that sbx is gone even while a child of it still holds the lock.
  std::uint64_t sbx_pid_ns = 0;
  std::uint64_t sbx_time_ns = 0;  // 0: no time namespaces on this kernel
  std::uint64_t sbx_start = 0;    // clock ticks after boot (/proc/PID/stat)
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  nlohmann::json to_json() const;
};

// Removes state dirs whose sbx is gone (lock not held) and leftovers of
// interrupted creations. Returns how many were removed. Never throws.
int clean_stale(const std::string& base);

struct LiveEntry {
  std::string name;
  std::string dir;
  nlohmann::json state;  // state.json (may be empty if unreadable)
};
// The live sandboxes under base (stale ones are cleaned first), by name.
std::vector<LiveEntry> list_live(const std::string& base);
// The live sandbox `name`, or nullopt.
std::optional<LiveEntry> find_live(const std::string& base, const std::string& name);
// True while the sandbox that owns `dir` runs (its lock is held).
bool is_live(const std::string& dir);

// Sends one request to the sandbox's control socket and returns the reply.
// Throws sbx::Error (no such sandbox, refused, timed out).
nlohmann::json request(const std::string& name, const nlohmann::json& req,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// The server: claims the name (refusing a live duplicate), creates the state
// dir and the socket, and serves requests from the supervisor's loop. The
// destructor removes the state dir (and the base dir when it is empty).
class ControlServer : public LiveController {
 public:
  struct Options {
    SandboxInfo info;
    EventSink on_event;  // "control" events (changes, stop, kill)
    // Extra fields for the status reply (e.g. the audit blocked count).
    std::function<nlohmann::json()> status_extra;
    WarningSink warn;
    // Claim in start() (sbx::run calls it while init mounts, before the
    // command may start) instead of in the constructor: the CLI's start-up
    // does not wait for the state dir (~0.2 ms).
    bool claim_at_start = false;
  };
  // Throws sbx::Error: name in use by a live sandbox, unsafe base dir...
  // (from start() with claim_at_start).
  explicit ControlServer(Options options);
  ~ControlServer() override;
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& dir() const { return dir_; }
  int fd() const override;
  void start() override;
  void attach(RunningSandbox* sandbox) override;
  void on_ready() override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::string dir_;
};

// Signal names and numbers: "TERM", "SIGTERM", "15" -> 15. nullopt if unknown.
std::optional<int> parse_signal(const std::string& text);

}  // namespace sbx::control
