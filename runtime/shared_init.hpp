// Sandbox init in the supervisor's address space (docs/launch.md "Start-up
// time"). On this project's reference VM an address space costs ~0.75 ms to
// create and tear down, and every page the supervisor writes after a fork
// costs a copy-on-write fault: init as a copy of the supervisor made a
// default start 2.3 ms slower than init sharing it, a strict one 4.7-7 ms
// in two runs. Init stays outside the sandbox's cgroup, so that an OOM kill
// there cannot take it, and with it the supervisor (join_sandbox_cgroup).
//
// So on x86-64 clone3 gets CLONE_VM and init runs on memory of its own
// within the shared address space:
// - a stack (with a guard page below it), so the supervisor's frames stay
//   untouched;
// - a thread area (TLS: errno, glibc's per-thread state) of its own, so the
//   supervisor and init never write the same errno. It is borrowed from a
//   thread started for the purpose, parked in a futex wait (which writes
//   nothing) until init is gone.
// Dumpable belongs to the address space: while a shared init lives the
// supervisor is not dumpable either (init hides itself from the command);
// the value from before comes back when it is gone (also over a change the
// embedding program made meanwhile). One shared init per process at a time:
// a second concurrent sandbox gets a copy (shared_init.cpp says why).
// Init already reads only the launch plan and makes system calls (no
// allocation, launch.hpp); sharing the address space makes that a hard rule.
// Elsewhere, or when the thread cannot be started, init is a copy (fork-like
// clone3) as before.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/launch.hpp"

namespace sbx::runtime {

// What clone_sandbox needs to start init sharing the address space.
struct SharedChild {
  int (*entry)(void*) = nullptr;  // runs on `stack` with `tls` as thread area
  void* arg = nullptr;
  void* stack = nullptr;  // lowest usable address
  std::size_t stack_size = 0;
  std::uint64_t tls = 0;
};

class SharedInit {
 public:
  // nullptr where init cannot share the address space (not x86-64), another
  // shared init of this process lives, or its memory cannot be had; the
  // caller then clones init as a copy.
  static std::unique_ptr<SharedInit> prepare(const LaunchPlan& plan, int control_fd,
                                             int exec_fd) noexcept;
  // Only once init is gone (reaped): releases the parked thread, joins it
  // and unmaps init's stack.
  ~SharedInit();
  SharedInit(const SharedInit&) = delete;
  SharedInit& operator=(const SharedInit&) = delete;

  SharedChild child();

  // Once init is reaped: lets the parked thread end now, so that it has
  // ended by the time the destructor joins it (~0.17 ms of a run's end
  // when the join had to wait for it). Idempotent.
  void release() noexcept;

 private:
  SharedInit() = default;
  static int entry(void* self);
  static void* park(void* self);

  const LaunchPlan* plan_ = nullptr;
  int control_fd_ = -1;
  int exec_fd_ = -1;
  void* mapping_ = nullptr;  // guard, worker's stack, guard, init's stack
  std::size_t mapping_size_ = 0;
  pthread_t thread_{};
  bool thread_started_ = false;
  bool holds_slot_ = false;
  std::uint64_t tls_ = 0;
  std::atomic<std::uint32_t> parked_{0};
  std::atomic<std::uint32_t> released_{0};
};

}  // namespace sbx::runtime
