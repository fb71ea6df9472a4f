// SharedBaseline: the "before" of a guard that puts things back after a run
// (GitGuard, ClaudeConfigGuard), shared by the runs that guard the same
// directory at the same time.
//
// A guard snapshots what its sandbox could change, and after the run puts
// the snapshot back. Two runs at once break that on their own: B, started
// while A's sandbox runs, would snapshot what A's sandbox planted; A puts
// the original back at its end, and B then "restores" the plant. So the
// first of overlapping runs takes the snapshot and stores it, and every run
// that starts while one of them still runs compares with that one.
//
// Stored where no sandbox can forge it: a System V shared memory segment
// (0600, keyed by kind and the directory's device and inode) in the
// host's IPC namespace. Every sbx sandbox has an IPC namespace of its own,
// so none can create, see or change such a segment, whatever paths it may
// write (a file in sbx's state base could be forged by a sandbox given
// `--rw /tmp`: found by a review). Each run keeps the segment attached for
// its whole life: its attach count says whether any run still guards the
// directory, also after a kill -9 (the kernel detaches the dead). Start and
// end are serialised by a flock on the guarded directory itself, held for
// milliseconds: a process holding it longer only delays (then stops) a
// start, it cannot change what is stored.
#pragma once

#include "runtime/unique_fd.hpp"

#include <optional>
#include <string>

namespace sbx::runtime {

class SharedBaseline {
 public:
  // For the directory `dir` (an open fd; `label` names it in messages),
  // guarded as `kind` ("git", "claude"). Throws sbx::Error when another
  // process holds the directory's lock for over a second.
  SharedBaseline(const char* kind, int dir, std::string label);
  // Detaches; the last run out removes the segment.
  ~SharedBaseline();
  SharedBaseline(SharedBaseline&& other) noexcept;
  SharedBaseline& operator=(SharedBaseline&&) = delete;
  SharedBaseline(const SharedBaseline&) = delete;
  SharedBaseline& operator=(const SharedBaseline&) = delete;

  // Empty when this run is the first (take the snapshot, then publish() it)
  // or when the snapshot cannot be shared (shared() false). Else the first
  // run's snapshot, as it published it.
  const std::optional<std::string>& stored() const { return stored_; }
  // False when a segment of this key is not one sbx made for this directory
  // (a key collision, or another user's): each run keeps its own snapshot,
  // as before sharing existed; unshared() is the warning to give.
  bool shared() const { return shared_; }
  std::string unshared() const;
  // The System V key (`ipcs -m` lists it).
  int key() const { return key_; }
  // First run only: stores `snapshot` for the runs that start while this
  // one runs, and lets them start. A no-op when not shared().
  void publish(const std::string& snapshot);

 private:
  void find_published();
  void release_lock();
  std::string label_;
  std::string id_;  // "KIND:DEV:INO", also in the segment's header
  int key_ = 0;     // key_t
  UniqueFd dir_;    // the directory, flock()ed while starting and ending
  bool locked_ = false;
  bool shared_ = true;
  void* segment_ = nullptr;  // attached for the run
  int shmid_ = -1;
  std::optional<std::string> stored_;
  std::string why_;  // why publish() could not share
};

}  // namespace sbx::runtime
