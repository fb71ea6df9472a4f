// Minimal placeholder so the launcher links; the real mount plan follows.
#include "runtime/mount_plan.hpp"

#include <sbx/error.hpp>

namespace sbx::runtime {

struct MountPlanData {};
struct LandlockPlanData {};

MountPlan::MountPlan() : data_(std::make_unique<MountPlanData>()) {}
MountPlan::MountPlan(MountPlan&&) noexcept = default;
MountPlan& MountPlan::operator=(MountPlan&&) noexcept = default;
MountPlan::~MountPlan() = default;

LandlockPlan::LandlockPlan() : data_(std::make_unique<LandlockPlanData>()) {}
LandlockPlan::LandlockPlan(LandlockPlan&&) noexcept = default;
LandlockPlan& LandlockPlan::operator=(LandlockPlan&&) noexcept = default;
LandlockPlan::~LandlockPlan() = default;

MountPlan prepare_mount_plan(const Policy&, const Identity&) {
  return MountPlan();
}

bool apply_mount_plan(const MountPlan&, ChildError& err) {
  return err.fail("mount_plan", 0, "filesystem isolation not implemented yet");
}

LandlockPlan prepare_landlock(const Policy&) {
  return LandlockPlan();
}

bool apply_landlock(const LandlockPlan&, ChildError&) {
  return true;
}

}  // namespace sbx::runtime
