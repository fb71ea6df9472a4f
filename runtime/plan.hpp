// Step 1 of the launch: everything the sandbox needs, resolved and allocated
// in the supervisor before clone.
#pragma once

#include <sbx/sbx.hpp>

#include <optional>

#include "runtime/cpu_pin.hpp"
#include "runtime/identity.hpp"
#include "runtime/launch.hpp"
#include "runtime/terminal.hpp"

namespace sbx::runtime {

// Throws sbx::Error for a policy the launcher cannot honour.
void reject_unsupported(const Policy& policy);

// `~` in a profile is the caller's $HOME, expanded when the profile was
// read; under sudo or --user the command runs as another user, whose home
// is `identity.home`. The policy with every hidden path (and allow_read
// re-exposure) under `caller_home` also under the command's home, or
// nullopt when there is nothing to add (same home, no $HOME, a command
// home that does not exist).
std::optional<Policy> hide_in_command_home(const Policy& policy, const Identity& identity,
                                           const char* caller_home);

// A repository whose hooks the policy write-protects (a deny_write entry
// TOP/.git/hooks) may have moved them with core.hooksPath (husky, lefthook:
// `.githooks`), and its read-only .git/config may include other files
// (include.path, includeIf.*.path), which are config as much as it is:
// those directories and files are protected too, through nested includes
// (10 levels, as git). The same for a protected ~/.gitconfig (and
// $XDG_CONFIG_HOME/git/config, which git reads too): its includes and
// hooksPath. Returns the policy with the paths added to deny_write, or
// nullopt when there is none.
std::optional<Policy> protect_hooks_paths(const Policy& policy, const char* home);

// other_cpu_busy: an early start's clone3 runs on the other CPU (launch.cpp
// EarlyInit), so nothing more is sent there.
LaunchPlan prepare_launch_plan(const Policy& policy, const RunOptions& options,
                               const Identity& identity, const HostTerminal& terminal,
                               const LaunchCpuPin& cpu_pin, bool other_cpu_busy = false);

// Opens /dev/null on any of fds 0-2 that is closed. Otherwise the sync
// channels could land on 0-2, where the pty's dup2 would overwrite them, and
// the command would open its first file as its stdin or stdout.
void open_missing_stdio();

// CLONE_NEW* flags for the sandbox: all of them, except the network
// namespace in mode "host". No cgroup namespace: the worker creates the
// command's once it is in the sandbox's group (join_sandbox_cgroup).
std::uint64_t sandbox_namespaces(const Policy& policy);

}  // namespace sbx::runtime
