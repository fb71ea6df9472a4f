// SharedInit (runtime/shared_init.hpp): init's own stack and thread area in
// the supervisor's address space, and the dumpable flag given back.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include <sbx/error.hpp>
#include "runtime/launch.hpp"
#include "runtime/sandbox_steps.hpp"
#include "runtime/shared_init.hpp"

using namespace sbx::runtime;

namespace {

#if defined(__x86_64__)
std::uint64_t own_thread_pointer() {
  std::uint64_t tp;
  asm volatile("movq %%fs:0, %0" : "=r"(tp));
  return tp;
}
#endif

}  // namespace

TEST_CASE("init gets a stack and a thread area of its own", "[shared_init]") {
  LaunchPlan plan;
  auto shared = SharedInit::prepare(plan, 5, 6);
#if defined(__x86_64__)
  REQUIRE(shared);
  const SharedChild child = shared->child();
  CHECK(child.entry != nullptr);
  CHECK(child.arg == shared.get());
  CHECK(child.stack != nullptr);
  CHECK(child.stack_size >= 256 * 1024);
  // Not ours: init and this thread never write the same errno.
  CHECK(child.tls != 0);
  CHECK(child.tls != own_thread_pointer());
  // A thread pointer points at itself (x86-64 TLS ABI): it is a live one.
  CHECK(*reinterpret_cast<const std::uint64_t*>(child.tls) == child.tls);
  // One at a time: a second concurrent sandbox's init is a copy (with two,
  // one init's non-dumpable flag would lock the other out of its id maps).
  CHECK_FALSE(SharedInit::prepare(plan, 7, 8));
  shared.reset();
  auto next = SharedInit::prepare(plan, 7, 8);
  CHECK(next);
#else
  CHECK_FALSE(shared);
#endif
}

TEST_CASE("the dumpable flag comes back when the shared init is gone", "[shared_init]") {
  REQUIRE(prctl(PR_SET_DUMPABLE, 1) == 0);
  LaunchPlan plan;
  auto shared = SharedInit::prepare(plan, 5, 6);
  if (!shared) return;  // init never shares the address space on this platform
  // What init's hide_from_command does to the shared address space.
  REQUIRE(prctl(PR_SET_DUMPABLE, 0) == 0);
  CHECK(prctl(PR_GET_DUMPABLE) == 0);
  shared.reset();
  CHECK(prctl(PR_GET_DUMPABLE) == 1);
}

namespace {

// In a child process: an early init's steps before its release, with a
// pidfd of this (live) process, the given thread pidfd and a control
// socket that already holds the release byte; its exit status.
int early_init_check_status(int thread_pidfd) {
  const int self = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  REQUIRE(self >= 0);
  int control[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) == 0);
  REQUIRE(write(control[0], "G", 1) == 1);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ChildError err;
    _exit(die_with_supervisor_process(err) &&
                  wait_for_release_early(control[1], self, thread_pidfd, err)
              ? 0
              : 3);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  close(control[0]);
  close(control[1]);
  close(self);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

// The early start's init, before its release, ends when its parent thread
// (the parked thread) has ended, also while the process lives on (another
// thread's execve ends every other thread), through a pidfd of that thread.
TEST_CASE("an early init ends when its parent thread has ended", "[shared_init]") {
  std::atomic<bool> go{false};
  pid_t tid = 0;
  std::thread parent([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!go.load()) usleep(1000);
  });
  while (tid == 0) usleep(1000);
  const int thread_pidfd =
      static_cast<int>(syscall(SYS_pidfd_open, tid, O_EXCL /* PIDFD_THREAD */));
  if (thread_pidfd < 0) {
    go = true;
    parent.join();
    WARN("no PIDFD_THREAD (Linux < 6.9): init watches the process only");
    return;
  }
  CHECK(early_init_check_status(thread_pidfd) == 0);  // the thread lives: init goes on
  go = true;
  parent.join();
  CHECK(early_init_check_status(thread_pidfd) == sbx::kExitSbxError);  // it ended: init ends
  CHECK(early_init_check_status(-1) == 0);  // no thread pidfd: the process decides
  close(thread_pidfd);
}
