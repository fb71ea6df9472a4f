// The audit module: turns sbx::Event values into versioned JSONL records
// (docs/audit.md, docs/audit.schema.json), appends them to the audit log
// without torn lines, accumulates the run report, and reads logs back for
// `sbx audit`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <sbx/events.hpp>
#include <sbx/policy.hpp>
#include <sbx/sbx.hpp>

namespace sbx::audit {

// Bumped on any incompatible change of a record's fields (docs/audit.md).
constexpr int kSchemaVersion = 1;

// Who every record belongs to.
struct SandboxIdentity {
  std::string id;    // random, 16 hex digits, unique per run
  std::string name;  // --name, or "<profile>-<id prefix>"
};

// A fresh random sandbox id (getrandom; 64 bits as 16 hex digits).
std::string new_sandbox_id();
// The label used for the sandbox name and the default log file: the policy's
// name when set, else the profile's base name; reduced to [A-Za-z0-9._-].
std::string sandbox_label(const Policy& policy);

// RFC 3339, UTC, microseconds: 2026-11-22T21:29:50.123456Z
std::string format_timestamp(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_timestamp(const std::string& text);

// One event as its log record. Runtime event types are mapped to the
// documented ones ("timeout" -> limit/kind=timeout, ...). `seq` numbers the
// records of one sandbox from 1 so a reader can see lost lines.
nlohmann::json to_record(const Event& event, const SandboxIdentity& who, AuditLevel level,
                         std::uint64_t seq);
// True when the record is an attempt that the policy refused.
bool is_blocked(const nlohmann::json& record);
// "dns", "net", "syscall", "limit", "control", "exec" (sandbox_start/exec/sandbox_exit).
std::string category_of(const nlohmann::json& record);

// The blocked attempts one record stands for: none when it is not blocked;
// one for a blocked event, under its destination ("name:port",
// "address:port", a DNS name; none for a denied syscall); a summary's
// `count`, under the destinations it lists (by name when the audit level
// kept names, else by address) with the rest as `unlisted`.
struct BlockedAttempts {
  std::uint64_t total = 0;
  std::vector<std::pair<std::string, std::uint64_t>> destinations;
  std::uint64_t unlisted = 0;
};
BlockedAttempts blocked_attempts(const nlohmann::json& record);

// The sandbox_start and sandbox_exit events (the CLI has what they need).
// policy_text: the resolved policy in a canonical form (hashed into the digest).
Event start_event(const Policy& policy, const std::string& policy_text,
                  const std::vector<std::string>& argv);
Event exit_event(const RunResult& result);

// $XDG_STATE_HOME/sbx/audit/<label>.jsonl, ~/.local/state/... when unset.
// Empty when neither XDG_STATE_HOME nor HOME is usable.
std::string default_log_path(const std::string& label,
                             const std::function<const char*(const char*)>& getenv_fn);

// The JSONL audit log. Each record is one line written with ONE write(2) on
// an O_APPEND descriptor, so concurrent writers never interleave inside a
// line. Never blocks on a full disk: a failed write is counted as dropped.
class LogWriter {
 public:
  struct Options {
    std::string path;
    std::uint64_t max_size_bytes = 64ull << 20;  // rotate before exceeding; 0 = never
    int keep_rotated = 5;                        // path.1 .. path.N
  };
  // Creates the directory (0700) and the file (0600). Throws sbx::Error with
  // the reason and a fix when it cannot.
  explicit LogWriter(Options options);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  void append(const nlohmann::json& record);
  const std::string& path() const { return options_.path; }
  std::uint64_t written() const { return written_; }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t rotations() const { return rotations_; }
  const std::string& last_error() const { return last_error_; }

 private:
  void open_log();
  void rotate();

  Options options_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t written_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t rotations_ = 0;
  std::string last_error_;
};

// Accumulates records into the run report (docs/audit.md "Run report").
class RunReport {
 public:
  void add(const nlohmann::json& record);
  // The JSON document: exit status, duration, usage, counts, top blocked.
  nlohmann::json finish(const SandboxIdentity& who, const Policy& policy,
                        const RunResult& result) const;
  const std::map<std::string, std::uint64_t>& counts() const { return counts_; }
  std::uint64_t blocked() const { return blocked_; }
  // Distinct blocked destinations ranked: the sandbox names them (one DNS
  // name each query), so the map is bounded; later ones are only counted.
  static constexpr std::size_t kMaxRankedDestinations = 4096;

 private:
  void rank_blocked(const std::string& destination, std::uint64_t n);

  std::map<std::string, std::uint64_t> counts_;
  std::map<std::string, std::uint64_t> blocked_destinations_;
  std::uint64_t blocked_not_ranked_ = 0;
  std::map<std::string, std::uint64_t> denied_syscalls_;
  std::map<std::string, std::uint64_t> limits_;
  std::uint64_t blocked_ = 0;
};

// ---- reading logs back (sbx audit)

struct ReadResult {
  std::vector<nlohmann::json> records;
  std::uint64_t invalid_lines = 0;  // not JSON objects (torn by a full disk, edited...)
};
// Reads path.N .. path.1, then path, oldest first (rotated files included
// when `with_rotated`).
ReadResult read_log(const std::string& path, bool with_rotated);

struct Filter {
  std::optional<std::string> category;  // dns|net|syscall|limit|control|exec
  std::optional<std::chrono::system_clock::time_point> since;
  bool blocked_only = false;
  bool matches(const nlohmann::json& record) const;
};
// "30s", "15m", "1h", "2d", "1h30m". Throws sbx::Error when malformed.
std::chrono::seconds parse_age(const std::string& text);

// Top domains, blocked attempts, denied syscalls, resource peaks.
nlohmann::json summarize(const std::vector<nlohmann::json>& records, std::size_t top = 10);
// One line of the human table for a record: "TIME TYPE SANDBOX DETAIL".
std::string describe(const nlohmann::json& record);

}  // namespace sbx::audit

namespace sbx::audit {

// Everything `sbx run` records about one run: the sandbox_start event, every
// runtime event (through sink()), sandbox_exit, and the run report. Used
// from the supervisor thread only (EventSink callbacks run there).
class RunRecorder {
 public:
  // Opens the audit log: policy.audit.log, else the default path. An explicit
  // log that cannot be opened throws sbx::Error (fail closed: the user asked
  // for a trail); the default one only warns. Warns when the log lies inside
  // a path the sandbox may write.
  RunRecorder(const Policy& policy, const std::string& policy_text, std::vector<std::string> argv,
              WarningSink warn, const std::function<const char*(const char*)>& getenv_fn);
  ~RunRecorder();

  const SandboxIdentity& identity() const { return who_; }
  std::string log_path() const;  // empty when not logging
  // Returns the record as logged (for live display).
  nlohmann::json record(const Event& event);
  std::uint64_t blocked() const { return report_.blocked(); }
  EventSink sink();
  void start();
  // Writes sandbox_exit; returns the run report (also when none was asked).
  nlohmann::json finish(const RunResult& result, const std::string& error = {});

 private:
  Policy policy_;
  std::string policy_text_;
  std::vector<std::string> argv_;
  WarningSink warn_;
  SandboxIdentity who_;
  std::unique_ptr<LogWriter> log_;
  RunReport report_;
  std::uint64_t seq_ = 0;
};

// Writes the report to path (0644, replaced atomically). Throws sbx::Error.
void write_report(const std::string& path, const nlohmann::json& report);

}  // namespace sbx::audit
