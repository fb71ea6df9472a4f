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
#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/launch.hpp"

namespace sbx::runtime {

struct CloneResult {
  pid_t pid = -1;
  int pidfd = -1;
};

// What clone_sandbox needs to start init sharing the address space.
struct SharedChild {
  int (*entry)(void*) = nullptr;  // runs on `stack` with `tls` as thread area
  void* arg = nullptr;
  void* stack = nullptr;  // lowest usable address
  std::size_t stack_size = 0;
  std::uint64_t tls = 0;
};

// An early start: init made while the supervisor still plans.
struct EarlyStart {
  std::uint64_t namespaces = 0;  // CLONE_NEW* flags
  int control_fd = -1;           // the sandbox's ends of the channels
  int exec_fd = -1;
  // A pidfd of the supervisor's process: until init has its own fd table
  // it holds every fd of sbx, so no end of a channel ever closes when sbx
  // dies; init watches this instead.
  int supervisor_pidfd = -1;
  unsigned init_delay_ms = 0;  // test builds only (test_hooks.hpp)
  cpu_set_t thread_cpus{};     // where the parked thread runs clone3
};

class SharedInit {
 public:
  // nullptr where init cannot share the address space (not x86-64), another
  // shared init of this process lives, or its memory cannot be had; the
  // caller then clones init as a copy.
  static std::unique_ptr<SharedInit> prepare(const LaunchPlan& plan, int control_fd,
                                             int exec_fd) noexcept;
  // The early start (docs/launch.md "Start-up time"): the parked thread
  // itself makes init with clone3, on another CPU, while the caller plans.
  // The kernel's half a millisecond of new namespaces (most of it the
  // network namespace) then no longer waits for the planning, nor the
  // planning for it. Init waits for release without looking at the plan,
  // which it gets through set_plan(); it shares the supervisor's fd table
  // until then and takes a copy of its own on release, when every fd of
  // the plan exists (sandbox_steps.hpp take_own_fd_table). The parked thread
  // is init's parent thread and lives until init is reaped, so init's
  // PDEATHSIG keeps its meaning. nullptr like prepare(); init is then
  // started the usual way.
  // An execve by another thread of an embedding program before init has
  // armed PDEATHSIG ends the parked thread while the process lives on:
  // init sees it through a pidfd of the thread (PIDFD_THREAD, Linux 6.9;
  // before, such an init would be left waiting). A limit, for embedding
  // programs only: init blocks every signal from its start, so a signal
  // the program catches and that also reaches init's process group during
  // the planning (a terminal's ^C) stays pending there and reaches the
  // command at its start, where before only one sent after SignalRouting
  // did.
  static std::unique_ptr<SharedInit> start_early(const EarlyStart& start) noexcept;
  // Early start: waits for the clone3. True with init's pid and pidfd in
  // `out` (the caller owns init from here); false when it made no init.
  bool wait_cloned(CloneResult& out) noexcept;
  // Early start: waits for the clone3 and returns init's pid, or -1. Any
  // thread; takes nothing (the cgroup's creation moves init with sbx).
  pid_t cloned_pid() noexcept;
  // Early start: the plan init reads once released. Before the release.
  void set_plan(const LaunchPlan& plan) noexcept { plan_ = &plan; }
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
  static std::unique_ptr<SharedInit> make(int control_fd, int exec_fd) noexcept;
  static int entry(void* self);
  static void* park(void* self);
  static void* clone_and_park(void* self);
  void record_thread_area() noexcept;
  void park_until_released() noexcept;
  bool start_thread(const cpu_set_t& cpus, void* (*run)(void*)) noexcept;

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
  // Early start: written by the parked thread before it sets cloned_.
  bool early_ = false;
  EarlyStart start_;
  std::atomic<std::uint32_t> cloned_{0};
  long clone_pid_ = -1;
  int clone_pidfd_ = -1;
  int parent_thread_pidfd_ = -1;  // the parked thread's, for init; closed last
  bool child_taken_ = false;      // by wait_cloned; else the destructor kills it
};

}  // namespace sbx::runtime
