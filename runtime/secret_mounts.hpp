// `sbx run --secret`: the sandbox's /run/secrets (docs/secrets.md).
#pragma once

#include <sbx/sbx.hpp>

#include <string>
#include <vector>

#include "runtime/mount_plan.hpp"

namespace sbx::runtime {

// Adds to a prepared plan: a small tmpfs on /run/secrets, read-only once
// filled, holding one file per secret (mode 0400, owned by the command's
// uid: sandbox init writes it). The host has no /run/secrets and its /run
// is read-only inside, so unless the host has that directory, /run becomes
// a tmpfs of mount points onto which every host /run entry is bound back
// read-only (the host-socket masks and other ops still apply on top).
// Throws sbx::Error for duplicate names or a /run the policy binds itself.
void plan_secret_mounts(const std::vector<Secret>& secrets, MountPlan& plan);

// NAME=value for each secret that names a variable (replacing one already
// in env). The value lives only in the plan's memory, never in sbx's own
// environment.
void add_secret_environment(const std::vector<Secret>& secrets, std::vector<std::string>& env);

}  // namespace sbx::runtime
