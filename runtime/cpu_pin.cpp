#include "runtime/cpu_pin.hpp"

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "runtime/fault_cost.hpp"

namespace sbx::runtime {

bool LaunchCpuPin::wanted() noexcept {
  if (const char* v = std::getenv("SBX_LAUNCH_PIN")) {
    if (std::string_view(v) == "1") return true;
    if (std::string_view(v) == "0") return false;
  }
  return dear_page_faults();
}

LaunchCpuPin::LaunchCpuPin() noexcept {
  if (sched_getaffinity(0, sizeof caller_, &caller_) != 0) return;  // cpus_ stays 1
  cpus_ = CPU_COUNT(&caller_);
  if (cpus_ < 2 || !wanted()) return;
  const int cpu = sched_getcpu();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &caller_)) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  pinned_ = sched_setaffinity(0, sizeof one, &one) == 0;
}

bool LaunchCpuPin::side_threads() const {
  rlimit nofile{};
  return other_cpu() && ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur >= kSpareFds;
}

cpu_set_t LaunchCpuPin::other_cpus() const noexcept {
  cpu_set_t set = caller_;
  const int cpu = sched_getcpu();
  if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_CLR(cpu, &set);
  return set;
}

void LaunchCpuPin::move_to(const cpu_set_t& cpus) noexcept {
  if (CPU_COUNT(&cpus) > 0) (void)sched_setaffinity(0, sizeof cpus, &cpus);
}

LaunchCpuPin::BlockAllSignals::BlockAllSignals() noexcept {
  sigset_t all;
  sigfillset(&all);
  // Not those a fault raises in the thread itself: blocked, the kernel
  // would reset their handler first, and an embedder's crash handler would
  // never run.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&all, sig);
  (void)pthread_sigmask(SIG_SETMASK, &all, &saved);
}

LaunchCpuPin::BlockAllSignals::~BlockAllSignals() {
  (void)pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

void LaunchCpuPin::release() noexcept {
  if (!pinned_) return;
  pinned_ = false;
  restore_cpu_set(caller_);
}

bool restore_cpu_set(const cpu_set_t& set) noexcept {
  if (sched_setaffinity(0, sizeof set, &set) == 0) return true;
  // The caller's set no longer fits the cpuset: every CPU the cpuset allows
  // (the kernel intersects), never one CPU for the command.
  cpu_set_t all;
  std::memset(&all, 0xff, sizeof all);
  return sched_setaffinity(0, sizeof all, &all) == 0;
}

}  // namespace sbx::runtime
