// SharedBaseline: the "before" of a guard that puts things back after a run
// (GitGuard, ClaudeConfigGuard), shared by the runs that guard the same
// thing at the same time.
//
// A guard snapshots what its sandbox could change, and after the run puts
// the snapshot back. Two runs at once break that on their own: B, started
// while A's sandbox runs, would snapshot what A's sandbox planted; A puts
// the original back at its end, and B then "restores" the plant. So the
// first of overlapping runs takes the snapshot and stores it, and every run
// that starts while one of them still runs compares with that one:
//   BASE/.guard-KEY in sbx's state base (/run/sbx, $XDG_RUNTIME_DIR/sbx or
//   /tmp/sbx-UID: private to the user, hidden from sandboxes), flock()ed by
//   each of these runs for its whole life. Locked exclusively at once: no
//   other run guards KEY, this run is the first: it snapshots, then
//   publish()es (stores the bytes, then shares the lock). Locked shared:
//   stored() is the first run's snapshot. The last run to end (exclusive
//   again) removes the file.
// Runs of different users (different bases) do not see each other's
// files: docs/filesystem.md says so.
#pragma once

#include "runtime/unique_fd.hpp"

#include <functional>
#include <optional>
#include <string>

namespace sbx::runtime {

class SharedBaseline {
 public:
  // Takes KEY's lock in `base` (tests; sbx itself: open() below). Throws
  // sbx::Error when it stays locked exclusively for a second (another sbx
  // is stuck taking its snapshot) or when the stored snapshot is not sbx's.
  SharedBaseline(const std::string& base, std::string key);
  // The last run out removes the file.
  ~SharedBaseline();
  SharedBaseline(SharedBaseline&&) noexcept = default;
  SharedBaseline& operator=(SharedBaseline&&) = delete;
  SharedBaseline(const SharedBaseline&) = delete;
  SharedBaseline& operator=(const SharedBaseline&) = delete;

  // Empty when this run is the first: take the snapshot, then publish() it.
  // Else the first run's snapshot, as it published it.
  const std::optional<std::string>& stored() const { return stored_; }
  // First run only: stores `snapshot` for the runs that start while this
  // one runs, then shares the lock. Throws sbx::Error if it cannot.
  void publish(const std::string& snapshot);

  // BASE/.guard-KEY, for messages.
  const std::string& path() const { return path_; }

  // KEY's baseline in sbx's state base (control::state_base; made again if
  // the last sbx of a shared /tmp base removes it meanwhile), or nullopt
  // when the sandbox may
  // write that base (`sandbox_may_write`: an XDG_RUNTIME_DIR or /tmp among
  // its writable paths): it could forge the snapshot the next overlapping
  // run reads. The base's path is in `base` either way (for a warning).
  static std::optional<SharedBaseline> open(
      std::string key, const std::function<bool(const std::string&)>& sandbox_may_write,
      std::string& base);

  // The warning for a nullopt open(): `what` is the guarded path.
  static std::string unshared(const std::string& base, const std::string& what);

  // "KIND-DEV-INO" of the open file `fd`: a key for what it guards.
  static std::string key_of(const char* kind, int fd);

 private:
  SharedBaseline(std::string base, std::string key, bool state_base);
  void open_base();
  void lock();
  std::string base_path_;
  UniqueFd base_;
  std::string name_;  // .guard-KEY
  std::string path_;
  UniqueFd fd_;
  std::optional<std::string> stored_;
  bool state_base_ = false;  // sbx's own (in /tmp: removed when empty)
};

}  // namespace sbx::runtime
