// Pre-faulting (docs/launch.md "Start-up time"): on a VM where a page fault
// costs ~12 µs (bench/run's 2-vCPU VM), the faults of a start -- heap growth,
// the stack, .bss, the executable's text -- cost more than the work. One
// madvise(MADV_POPULATE_READ/WRITE) per region maps them in bulk (0.15-1.5 µs
// a page) before the first constructor runs (the static executable maps its
// text, read-only data and writable segment even earlier, in its entry
// point: cli/entry_x86_64.S). The heap keeps a 384 KiB top
// pad, so the pages stay (M_TOP_PAD also fixes glibc's mmap threshold at
// 128 KiB for the supervisor's lifetime: larger blocks are mmap'd each time,
// which the supervisor's few large buffers can afford). Kernels before 5.14
// answer EINVAL: nothing happens. SBX_NO_PREFAULT=1 turns it off (to
// measure it).
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" char __executable_start, etext, edata, end;  // NOLINT: linker symbols
extern "C" void* __libc_stack_end;                      // glibc: the stack pointer at process entry

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
  for (char** e = envp; *e; ++e)
    if (std::string_view(*e).starts_with("SBX_NO_PREFAULT=")) return;
#ifndef SBX_ENTRY_PREFAULT  // the static executable's entry did these already
  populate(reinterpret_cast<std::uintptr_t>(&__executable_start),
           reinterpret_cast<std::uintptr_t>(&etext), MADV_POPULATE_READ);
  populate(reinterpret_cast<std::uintptr_t>(&edata), reinterpret_cast<std::uintptr_t>(&end),
           MADV_POPULATE_WRITE);
#endif
  // The heap: glibc may already have one (a static libc allocates before
  // us); grow it to kHeap in blocks below the mmap threshold, give them
  // back (the top pad keeps the pages) and map it all.
  ::mallopt(M_TOP_PAD, kHeap);
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
