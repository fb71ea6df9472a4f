#include "runtime/shared_init.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

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

std::unique_ptr<SharedInit> SharedInit::prepare(const LaunchPlan& plan, int control_fd,
                                                int exec_fd) noexcept {
  if (!take_shared_slot()) return nullptr;
  std::unique_ptr<SharedInit> self(new (std::nothrow) SharedInit);
  if (!self) {
    give_back_shared_slot();
    return nullptr;
  }
  self->holds_slot_ = true;
  self->plan_ = &plan;
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

  // The thread whose thread area init borrows. It starts with every signal
  // blocked that glibc lets a program block (no handler of the embedding
  // program may run on it; glibc's internal SIGCANCEL/SIGSETXID handlers
  // use atomics and raw system calls only), records its thread pointer and
  // parks.
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return nullptr;
  pthread_attr_setstacksize(&attr, kParkedThreadStack);
  // It starts on this CPU, free once we wait below: the scheduler may put
  // it on another, where a side thread (LaunchCpuPin::beside) keeps it
  // queued (~0.6 ms of a strict start).
  cpu_set_t here;
  CPU_ZERO(&here);
  const int cpu = sched_getcpu();
  if (cpu >= 0 && cpu < CPU_SETSIZE) {
    CPU_SET(cpu, &here);
    (void)pthread_attr_setaffinity_np(&attr, sizeof here, &here);
  }
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  const int rc = pthread_create(&self->thread_, &attr, &SharedInit::park, self.get());
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) return nullptr;
  self->thread_started_ = true;
  while (self->parked_.load(std::memory_order_acquire) == 0) futex_wait(self->parked_, 0);
  return self;
}

void* SharedInit::park(void* arg) {
  auto* self = static_cast<SharedInit*>(arg);
  // x86-64 TLS ABI: the word at %fs:0 is the thread pointer itself.
  std::uint64_t tp;
  asm volatile("movq %%fs:0, %0" : "=r"(tp));
  self->tls_ = tp;
  self->parked_.store(1, std::memory_order_release);
  futex_wake(self->parked_);
  // From here until released this thread touches no memory of its thread
  // area: init owns it.
  while (self->released_.load(std::memory_order_acquire) == 0) futex_wait(self->released_, 0);
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
  sandbox_init(*self->plan_, self->control_fd_, self->exec_fd_, worker_stack_top);
}

#else

std::unique_ptr<SharedInit> SharedInit::prepare(const LaunchPlan&, int, int) noexcept {
  return nullptr;
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
  if (thread_started_) {
    release();
    pthread_join(thread_, nullptr);
  }
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
  if (holds_slot_) give_back_shared_slot();
}

}  // namespace sbx::runtime
