#include "runtime/shared_init.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

#include "runtime/namespaces.hpp"
#include "runtime/pidfd.hpp"
#include "runtime/sandbox_steps.hpp"
#include "runtime/startup_trace.hpp"

namespace sbx::runtime {
namespace {

// One mapping: [guard][worker's stack][guard][init's stack]. Init's deepest
// path (mount plan, netlink, the reaping loop) uses a few tens of KiB;
// MAP_NORESERVE: only the pages touched are ever allocated. The worker's
// stack is here too (not mapped by init) so that it goes with the rest even
// when init is killed while the worker has not reached execve yet.
constexpr std::size_t kGuard = 4096;
constexpr std::size_t kWorkerStack = 512 * 1024;
constexpr std::size_t kStack = 1024 * 1024;
constexpr std::size_t kParkedThreadStack = 64 * 1024;
constexpr unsigned kPidfdThread = O_EXCL;  // PIDFD_THREAD (linux/pidfd.h, 6.9)

[[maybe_unused]] void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  // Raw: a spurious return writes errno only on EAGAIN (word changed) or
  // EINTR (no handler can run in the parked thread: every signal an
  // application can block is blocked; glibc's own SIGCANCEL/SIGSETXID
  // handlers write no errno).
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr,
          nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

// At most one shared init per process at a time. Dumpable is a property of
// the address space: a live init's PR_SET_DUMPABLE(0) (hide_from_command)
// would make a second shared init's /proc files root's, and its id maps
// could not be written (unprivileged); a second worker's dumpable window
// would expose the first init. A second concurrent sandbox therefore gets a
// copy. The value from before comes back when the shared init is gone, so an
// embedding program keeps its core dumps.
struct SharedSlot {
  std::mutex lock;
  bool taken = false;
  int saved_dumpable = -1;
};

SharedSlot& shared_slot() {
  static SharedSlot slot;
  return slot;
}

bool take_shared_slot() {
  auto& s = shared_slot();
  const std::lock_guard guard(s.lock);
  if (s.taken) return false;
  s.taken = true;
  s.saved_dumpable = prctl(PR_GET_DUMPABLE);
  return true;
}

void give_back_shared_slot() {
  auto& s = shared_slot();
  const std::lock_guard guard(s.lock);
  if (s.saved_dumpable >= 0) prctl(PR_SET_DUMPABLE, s.saved_dumpable);
  s.taken = false;
}

}  // namespace

#if defined(SBX_CLONE3_RUN) && defined(__x86_64__)

static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
              sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

// The slot, the object and its memory; the thread is started by the caller.
std::unique_ptr<SharedInit> SharedInit::make(int control_fd, int exec_fd) noexcept {
  if (!take_shared_slot()) return nullptr;
  std::unique_ptr<SharedInit> self(new (std::nothrow) SharedInit);
  if (!self) {
    give_back_shared_slot();
    return nullptr;
  }
  self->holds_slot_ = true;
  self->control_fd_ = control_fd;
  self->exec_fd_ = exec_fd;

  self->mapping_size_ = kGuard + kWorkerStack + kGuard + kStack;
  void* area = mmap(nullptr, self->mapping_size_, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (area == MAP_FAILED) return nullptr;
  self->mapping_ = area;
  char* base = static_cast<char*>(area);
  if (mprotect(base, kGuard, PROT_NONE) != 0 ||
      mprotect(base + kGuard + kWorkerStack, kGuard, PROT_NONE) != 0) {
    return nullptr;  // ~SharedInit unmaps
  }
  return self;
}

// The thread whose thread area init borrows. It starts with every signal
// blocked that glibc lets a program block (no handler of the embedding
// program may run on it; glibc's internal SIGCANCEL/SIGSETXID handlers use
// atomics and raw system calls only), on `cpus` where that set is not empty.
bool SharedInit::start_thread(const cpu_set_t& cpus, void* (*run)(void*)) noexcept {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setstacksize(&attr, kParkedThreadStack);
  if (CPU_COUNT(&cpus) > 0) (void)pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  const int rc = pthread_create(&thread_, &attr, run, this);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  pthread_attr_destroy(&attr);
  thread_started_ = rc == 0;
  return thread_started_;
}

std::unique_ptr<SharedInit> SharedInit::prepare(const LaunchPlan& plan, int control_fd,
                                                int exec_fd) noexcept {
  std::unique_ptr<SharedInit> self = make(control_fd, exec_fd);
  if (!self) return nullptr;
  self->plan_ = &plan;
  // The thread starts on this CPU, free once we wait below: the scheduler
  // may put it on another, where a side thread (LaunchCpuPin::beside) keeps
  // it queued (~0.6 ms of a strict start). It records its thread pointer
  // and parks.
  cpu_set_t here;
  CPU_ZERO(&here);
  const int cpu = sched_getcpu();
  if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &here);
  if (!self->start_thread(here, &SharedInit::park)) return nullptr;
  while (self->parked_.load(std::memory_order_acquire) == 0) futex_wait(self->parked_, 0);
  return self;
}

std::unique_ptr<SharedInit> SharedInit::start_early(const EarlyStart& start) noexcept {
  std::unique_ptr<SharedInit> self = make(start.control_fd, start.exec_fd);
  if (!self) return nullptr;
  self->early_ = true;
  self->start_ = start;
  if (!self->start_thread(start.thread_cpus, &SharedInit::clone_and_park)) return nullptr;
  return self;
}

// The parked thread's first step: its thread pointer, the thread area init
// borrows (x86-64 TLS ABI: the word at %fs:0 is the thread pointer itself).
void SharedInit::record_thread_area() noexcept {
  std::uint64_t tp;
  asm volatile("movq %%fs:0, %0" : "=r"(tp));
  tls_ = tp;
}

// Its last: parked until init is gone. It touches no memory of its thread
// area meanwhile (init owns it): an atomic and raw futex calls.
void SharedInit::park_until_released() noexcept {
  while (released_.load(std::memory_order_acquire) == 0) futex_wait(released_, 0);
}

void* SharedInit::clone_and_park(void* arg) {
  auto* self = static_cast<SharedInit*>(arg);
  self->record_thread_area();
  const SharedChild child = self->child();
  // Init's parent thread is this one: a pidfd of it (PIDFD_THREAD, Linux
  // 6.9; -1 before) tells init if it ends before PDEATHSIG is armed.
  self->parent_thread_pidfd_ = static_cast<int>(
      syscall(SYS_pidfd_open, static_cast<pid_t>(syscall(SYS_gettid)), kPidfdThread));
  int pidfd = -1;
  const long pid = clone_init_early(self->start_.namespaces, child, &pidfd);
  // From here init may run on this thread's thread area: only atomics,
  // plain members and raw system calls.
  self->clone_pidfd_ = pidfd;
  self->clone_pid_ = pid;
  self->cloned_.store(1, std::memory_order_release);
  futex_wake(self->cloned_);
  self->park_until_released();
  return nullptr;
}

pid_t SharedInit::cloned_pid() noexcept {
  while (cloned_.load(std::memory_order_acquire) == 0) futex_wait(cloned_, 0);
  return clone_pid_ > 0 ? static_cast<pid_t>(clone_pid_) : -1;
}

bool SharedInit::wait_cloned(CloneResult& out) noexcept {
  if (cloned_pid() < 0) return false;
  out.pid = static_cast<pid_t>(clone_pid_);
  out.pidfd = clone_pidfd_;
  child_taken_ = true;
  return true;
}

void* SharedInit::park(void* arg) {
  auto* self = static_cast<SharedInit*>(arg);
  self->record_thread_area();
  self->parked_.store(1, std::memory_order_release);
  futex_wake(self->parked_);
  self->park_until_released();
  return nullptr;
}

SharedChild SharedInit::child() {
  SharedChild c;
  c.entry = &SharedInit::entry;
  c.arg = this;
  c.stack = static_cast<char*>(mapping_) + kGuard + kWorkerStack + kGuard;
  c.stack_size = kStack;
  c.tls = tls_;
  return c;
}

int SharedInit::entry(void* arg) {
  const auto* self = static_cast<const SharedInit*>(arg);
  startup_trace::mark("init: running");
  char* worker_stack_top = static_cast<char*>(self->mapping_) + kGuard + kWorkerStack;
  if (self->early_) {
    // The plan is still being made: only what start_early was given until
    // released; plan_ is set before the release.
    init_before_release(self->control_fd_, self->start_.supervisor_pidfd,
                        self->parent_thread_pidfd_, self->start_.init_delay_ms);
    sandbox_init_released(*self->plan_, self->control_fd_, self->exec_fd_, worker_stack_top);
  }
  sandbox_init(*self->plan_, self->control_fd_, self->exec_fd_, worker_stack_top);
}

#else

std::unique_ptr<SharedInit> SharedInit::prepare(const LaunchPlan&, int, int) noexcept {
  return nullptr;
}
std::unique_ptr<SharedInit> SharedInit::start_early(const EarlyStart&) noexcept {
  return nullptr;
}
bool SharedInit::wait_cloned(CloneResult&) noexcept {
  return false;
}
pid_t SharedInit::cloned_pid() noexcept {
  return -1;
}
void* SharedInit::park(void*) {
  return nullptr;
}
SharedChild SharedInit::child() {
  return {};
}
int SharedInit::entry(void*) {
  return 0;
}

#endif

void SharedInit::release() noexcept {
  if (!thread_started_ || released_.load(std::memory_order_relaxed) != 0) return;
  released_.store(1, std::memory_order_release);
  futex_wake(released_);
}

SharedInit::~SharedInit() {
  // An early start that did not get as far as the sandbox (the planning
  // threw): the clone3 may still be under way; init, if made, goes now.
  // (CLONE_PIDFD: a clone3 that made init gave its pidfd.)
  if (early_ && thread_started_ && !child_taken_ && cloned_pid() > 0) {
    kill_and_reap(clone_pidfd_);
    close(clone_pidfd_);
  }
  if (thread_started_) {
    release();
    pthread_join(thread_, nullptr);
  }
  if (parent_thread_pidfd_ >= 0) close(parent_thread_pidfd_);
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
  if (holds_slot_) give_back_shared_slot();
}

}  // namespace sbx::runtime
