// Pre-faulting (docs/launch.md "Start-up time"): where a page fault is dear
// (~12 µs on a nested 2-vCPU VM), the faults of a start -- heap growth, the
// stack, the executable's text -- cost more than the work, and one
// madvise(MADV_POPULATE_READ/WRITE) per region maps them in bulk (0.15-1.5
// µs a page). Where a fault is cheap (~1.5 µs, about what populating a page
// costs), mapping the ~1,150 pages of text and read-only data of which a
// start touches a few hundred is a loss: ~0.35 ms of a 5 ms `--net none`
// start. So the cost of a fault is measured first (runtime/fault_cost.hpp)
// and the bulk mapping done only where it is dear. The static executable
// maps its writable segment earlier, in its entry point, on any machine
// (cli/entry_x86_64.S). The heap keeps a 384 KiB top pad either way
// (M_TOP_PAD also fixes glibc's mmap threshold at 128 KiB for the
// supervisor's lifetime: larger blocks are mmap'd each time, which the
// supervisor's few large buffers can afford). Kernels before 5.14 answer
// EINVAL: nothing happens. SBX_NO_PREFAULT=1 turns it all off,
// SBX_PREFAULT=1 maps in bulk whatever a fault costs (both to measure it).
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/fault_cost.hpp"

// NOLINTNEXTLINE: linker symbols; the writable segment begins with .tdata,
// on the page of __preinit_array_start
extern "C" char __executable_start, etext, edata, end, __preinit_array_start;
extern "C" void* __libc_stack_end;  // glibc: the stack pointer at process entry

namespace {

constexpr std::uintptr_t kPage = 4096;
// Heap a `sbx run` start uses (default profile ~260 KiB, strict ~400 KiB).
constexpr std::size_t kHeap = 384 << 10;
// The kernel maps at least 128 KiB of stack below the entry stack pointer;
// staying inside that never asks it to grow the stack from madvise.
constexpr std::size_t kStack = 112 << 10;

void populate(std::uintptr_t from, std::uintptr_t to, int advice) {
  from &= ~(kPage - 1);
  to = (to + kPage - 1) & ~(kPage - 1);
  if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, advice);
}

void prefault(int, char**, char** envp) {
  bool force = false;
  for (char** e = envp; *e; ++e) {
    const std::string_view var(*e);
    if (var.starts_with("SBX_NO_PREFAULT=")) return;
    force = force || var == "SBX_PREFAULT=1";
  }
  ::mallopt(M_TOP_PAD, kHeap);
  if (!force && !sbx::runtime::dear_page_faults()) return;
#ifdef SBX_ENTRY_PREFAULT  // the entry point mapped the writable segment
  populate(reinterpret_cast<std::uintptr_t>(&__executable_start),
           reinterpret_cast<std::uintptr_t>(&__preinit_array_start) & ~(kPage - 1),
           MADV_POPULATE_READ);
#else
  populate(reinterpret_cast<std::uintptr_t>(&__executable_start),
           reinterpret_cast<std::uintptr_t>(&etext), MADV_POPULATE_READ);
  populate(reinterpret_cast<std::uintptr_t>(&edata), reinterpret_cast<std::uintptr_t>(&end),
           MADV_POPULATE_WRITE);
#endif
  // The heap: glibc may already have one (a static libc allocates before
  // us); grow it to kHeap in blocks below the mmap threshold, give them
  // back (the top pad keeps the pages) and map it all.
  const auto top = [] { return reinterpret_cast<std::uintptr_t>(::sbrk(0)); };
  const std::uintptr_t heap = top() - ::mallinfo2().arena;
  void* blocks[kHeap / (32 << 10)];
  std::size_t n = 0;
  while (n < std::size(blocks) && top() - heap < kHeap) blocks[n++] = ::malloc(32 << 10);
  while (n > 0) ::free(blocks[--n]);
  populate(heap, top(), MADV_POPULATE_WRITE);
  char here;
  const auto sp = reinterpret_cast<std::uintptr_t>(&here);
  const auto entry = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
  if (entry > sp && entry - sp < kStack) populate(entry - kStack, sp - kPage, MADV_POPULATE_WRITE);
}

}  // namespace

__attribute__((section(".preinit_array"),
               used)) static void (*const prefault_entry)(int, char**, char**) = prefault;
