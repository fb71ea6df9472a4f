// Pre-faulting (docs/launch.md "Start-up time"): on a VM where a page fault
// costs ~12 µs (bench/run's 2-vCPU VM), the faults of a start -- heap growth,
// the stack, .bss, the executable's text -- cost more than the work. One
// madvise(MADV_POPULATE_READ/WRITE) per region maps them in bulk (0.15-1.5 µs
// a page) before the first constructor runs. The heap keeps a 448 KiB top
// pad, so the pages stay. Kernels before 5.14 answer EINVAL: nothing happens.
// SBX_NO_PREFAULT=1 turns it off (to measure it).
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" char __executable_start, etext, edata, end;  // NOLINT: linker symbols

namespace {

constexpr std::uintptr_t kPage = 4096;
// Heap a `sbx run` start uses (default profile ~260 KiB, strict ~400 KiB).
constexpr std::size_t kHeap = 448 << 10;
constexpr std::size_t kStack = 96 << 10;

void populate(std::uintptr_t from, std::uintptr_t to, int advice) {
  from &= ~(kPage - 1);
  to = (to + kPage - 1) & ~(kPage - 1);
  if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, advice);
}

void prefault(int, char**, char** envp) {
  for (char** e = envp; *e; ++e)
    if (std::string_view(*e).starts_with("SBX_NO_PREFAULT=")) return;
  populate(reinterpret_cast<std::uintptr_t>(&__executable_start),
           reinterpret_cast<std::uintptr_t>(&etext), MADV_POPULATE_READ);
  populate(reinterpret_cast<std::uintptr_t>(&edata), reinterpret_cast<std::uintptr_t>(&end),
           MADV_POPULATE_WRITE);
  auto heap = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  ::mallopt(M_TOP_PAD, kHeap);
  void* volatile first = ::malloc(1);  // volatile: the pair must not be optimised away
  ::free(first);
  populate(heap, reinterpret_cast<std::uintptr_t>(::sbrk(0)), MADV_POPULATE_WRITE);
  char here;
  auto sp = reinterpret_cast<std::uintptr_t>(&here);
  populate(sp - kStack, sp - kPage, MADV_POPULATE_WRITE);
}

}  // namespace

__attribute__((section(".preinit_array"),
               used)) static void (*const prefault_entry)(int, char**, char**) = prefault;
