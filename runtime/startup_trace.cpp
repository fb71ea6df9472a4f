#include "runtime/startup_trace.hpp"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace sbx::runtime::startup_trace {
namespace {

constexpr int kMaxMarks = 128;

struct Entry {
  const char* step;
  int pid;  // as seen by the marking process (1 = sandbox init, 2 = worker)
  struct timespec when;
};

struct Shared {
  std::atomic<int> count;
  Entry entries[kMaxMarks];
};
static_assert(std::atomic<int>::is_always_lock_free);

Shared* shared = nullptr;  // set once, before any clone; read-only afterwards

double ms_between(const struct timespec& a, const struct timespec& b) {
  return static_cast<double>(b.tv_sec - a.tv_sec) * 1e3 +
         static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e6;
}

bool reported = false;

void print_report() {
  if (reported) return;
  reported = true;
  mark("supervisor exits");
  int n = shared->count.load();
  if (n > kMaxMarks) n = kMaxMarks;
  std::fprintf(stderr,
               "sbx startup trace (SBX_TRACE_STARTUP): ms since static init, +delta "
               "(static init at CLOCK_MONOTONIC %lld.%09ld)\n",
               static_cast<long long>(shared->entries[0].when.tv_sec),
               shared->entries[0].when.tv_nsec);
  for (int i = 0; i < n; ++i) {
    const Entry& e = shared->entries[i];
    std::fprintf(stderr, "  %8.3f ms  +%7.3f  pid %-6d %s\n",
                 ms_between(shared->entries[0].when, e.when),
                 i == 0 ? 0.0 : ms_between(shared->entries[i - 1].when, e.when), e.pid, e.step);
  }
}

// Runs first in static initialisation (priority 101), after the dynamic
// loader: the first mark is "exec + dynamic loading done", and the next one
// ("main") includes every other static constructor.
struct Enable {
  Enable() {
    const char* on = std::getenv("SBX_TRACE_STARTUP");
    if (on == nullptr || on[0] == '\0' || on[0] == '0') return;
    void* page =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return;
    shared = new (page) Shared{};
    mark("static init begins (exec + dynamic loading done)");
    // Only the process that enabled it reports: children leave by _exit or
    // execve, which skip atexit handlers.
    std::atexit(print_report);
  }
} enable __attribute__((init_priority(101)));

}  // namespace

void mark(const char* step) noexcept {
  if (shared == nullptr) return;
  int slot = shared->count.fetch_add(1);
  if (slot >= kMaxMarks) return;
  Entry& e = shared->entries[slot];
  ::clock_gettime(CLOCK_MONOTONIC, &e.when);
  e.pid = static_cast<int>(::getpid());
  e.step = step;
}

void report() noexcept {
  if (shared != nullptr) print_report();
}

}  // namespace sbx::runtime::startup_trace
