// SharedInit (runtime/shared_init.hpp): init's own stack and thread area in
// the supervisor's address space, and the dumpable flag given back.
#include <catch2/catch.hpp>

#include <sys/prctl.h>

#include <cstdint>
#include <memory>

#include "runtime/launch.hpp"
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
