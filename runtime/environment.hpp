// The command's environment and its PATH lookup, computed in the supervisor
// before clone (nothing may allocate between clone and execve).
#pragma once

#include <sbx/policy.hpp>

#include <string>
#include <vector>

#include "runtime/identity.hpp"

namespace sbx::runtime {

// Host variables that pass by default: what a terminal program needs to
// behave, nothing that usually carries a secret. LC_* also passes.
inline constexpr const char* kEnvAllowlist[] = {"PATH", "HOME",      "USER", "LOGNAME", "SHELL",
                                                "TERM", "COLORTERM", "LANG", "TZ",      "TMPDIR"};
inline constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// "NAME=value" strings for execve: allowlisted host variables, then
// env_keep (names, or prefixes ending in '*'), with USER/LOGNAME/HOME/SHELL describing `identity`
// (the host's may name root), then env_set overriding everything. `host_env` is an environ-style
// array (nullptr-terminated).
std::vector<std::string> build_environment(const ProcessPolicy& process, const Identity& identity,
                                           const char* const* host_env);

// The value of NAME in an environment built above ("" when absent).
std::string env_value(const std::vector<std::string>& env, const std::string& name);

// The paths execve should try for argv0, in order, like execvp: argv0 itself
// when it contains a '/', else every PATH entry joined with argv0 (an empty
// entry means the current directory).
std::vector<std::string> exec_candidates(const std::string& argv0, const std::string& path);

}  // namespace sbx::runtime
