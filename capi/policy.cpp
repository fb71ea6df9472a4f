// The C ABI's policy handle: loading a profile, overrides, printing. Every
// entry point catches everything: no C++ exception may cross into C.
#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "capi/handles.hpp"
#include "profiles/profiles.hpp"

namespace sbx::capi {
namespace {

// A NULL where the ABI wants a string: an error the caller can read.
void require_string(const char* value, const char* what) {
  if (value == nullptr) {
    throw Error(fmt::format("{} is NULL", what), "pass a NUL-terminated string");
  }
}

char* copy_for_caller(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

const Policy& loaded(const sbx_policy* handle) {
  if (!handle->policy) {
    throw Error("the policy has no profile loaded",
                "call sbx_policy_load_profile, sbx_policy_load_toml or sbx_policy_load_json "
                "first");
  }
  return *handle->policy;
}

// Applies one override on a copy, so a rejected value leaves the policy as
// it was.
template <typename Fill>
int override_with(sbx_policy* handle, Fill&& fill) {
  if (handle == nullptr) return -1;
  try {
    handle->error.clear();
    Policy copy = loaded(handle);
    profiles::Overrides o;
    fill(o);
    profiles::apply_overrides(copy, o, profiles::Environment::from_process());
    handle->policy = std::move(copy);
    return 0;
  } catch (...) {
    return record_current_exception(handle->error);
  }
}

template <typename Load>
int load_with(sbx_policy* handle, Load&& load) {
  if (handle == nullptr) return -1;
  try {
    handle->error.clear();
    Policy p = load(profiles::Environment::from_process());
    handle->policy = std::move(p);
    return 0;
  } catch (...) {
    return record_current_exception(handle->error);
  }
}

std::string limit_value(std::uint64_t n, const char* unit = "") {
  return n == 0 ? std::string("unlimited") : fmt::format("{}{}", n, unit);
}

std::optional<TtyMode> parse_tty(const std::string& value) {
  if (value == "always") return TtyMode::always;
  if (value == "never") return TtyMode::never;
  if (value == "auto" || value == "automatic") return TtyMode::automatic;
  throw profiles::ProfileError(fmt::format("--tty {}: unknown mode", value),
                               "use always, never or auto");
}

// The `sbx run` option named `option` set to `value` in `o`.
void set_option(profiles::Overrides& o, std::string option, const std::string& value) {
  while (option.starts_with("-")) option.erase(0, 1);
  const auto one = [&](std::optional<std::string>& into) { into = value; };
  const auto many = [&](std::vector<std::string>& into) { into.push_back(value); };
  if (option == "net" || option == "network") return one(o.network);
  if (option == "allow-domain") return many(o.allow_domains);
  if (option == "deny-domain") return many(o.deny_domains);
  if (option == "allow-cidr") return many(o.allow_cidrs);
  if (option == "deny-cidr") return many(o.deny_cidrs);
  if (option == "allow-port") return many(o.allow_ports);
  if (option == "rw") return many(o.writable);
  if (option == "ro") return many(o.read_only);
  if (option == "hide") return many(o.hidden);
  if (option == "tmpfs") return many(o.tmpfs);
  if (option == "memory") return one(o.memory);
  if (option == "cpus") return one(o.cpus);
  if (option == "pids") return one(o.pids);
  if (option == "timeout") return one(o.timeout);
  if (option == "kill-after") return one(o.kill_after);
  if (option == "env") return many(o.env_set);
  if (option == "keep-env") return many(o.env_keep);
  if (option == "name") return one(o.name);
  if (option == "audit-log") return one(o.audit_log);
  if (option == "report") return one(o.report);
  if (option == "user") return one(o.user);
  if (option == "tty") {
    o.tty = parse_tty(value);
    return;
  }
  throw Error(fmt::format("unknown option '{}'", option),
              "use a `sbx run` option that takes a value, e.g. \"memory\" or \"--allow-domain\" "
              "(list in sbx.h)");
}

}  // namespace
}  // namespace sbx::capi

using namespace sbx;
using namespace sbx::capi;

extern "C" {

sbx_policy* sbx_policy_new(void) {
  return new (std::nothrow) sbx_policy();
}

void sbx_policy_free(sbx_policy* policy) {
  delete policy;
}

int sbx_policy_load_profile(sbx_policy* policy, const char* name_or_file) {
  return load_with(policy, [&](const profiles::Environment& env) {
    require_string(name_or_file, "the profile name");
    return profiles::load_profile(name_or_file, env);
  });
}

int sbx_policy_load_toml(sbx_policy* policy, const char* toml, const char* name) {
  return load_with(policy, [&](const profiles::Environment& env) {
    require_string(toml, "the TOML text");
    const std::string n = name ? name : "inline";
    return profiles::load_profile_text(toml, n, n, env);
  });
}

int sbx_policy_load_json(sbx_policy* policy, const char* json, const char* name) {
  return load_with(policy, [&](const profiles::Environment& env) {
    require_string(json, "the JSON text");
    const std::string n = name ? name : "inline";
    // Positions in errors refer to the TOML form; the messages name the key.
    return profiles::load_profile_text(json_profile_to_toml(json), n, n + " (JSON)", env);
  });
}

int sbx_policy_set_network(sbx_policy* policy, const char* mode) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(mode, "the network mode");
    o.network = mode;
  });
}

int sbx_policy_allow_domain(sbx_policy* policy, const char* pattern) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(pattern, "the domain pattern");
    o.allow_domains.emplace_back(pattern);
  });
}

int sbx_policy_add_writable(sbx_policy* policy, const char* path) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(path, "the path");
    o.writable.emplace_back(path);
  });
}

int sbx_policy_add_read_only(sbx_policy* policy, const char* path) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(path, "the path");
    o.read_only.emplace_back(path);
  });
}

int sbx_policy_add_hidden(sbx_policy* policy, const char* path) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(path, "the path");
    o.hidden.emplace_back(path);
  });
}

int sbx_policy_set_memory(sbx_policy* policy, uint64_t bytes) {
  return override_with(policy, [&](profiles::Overrides& o) { o.memory = limit_value(bytes); });
}

int sbx_policy_set_pids(sbx_policy* policy, uint64_t max_pids) {
  return override_with(policy, [&](profiles::Overrides& o) { o.pids = limit_value(max_pids); });
}

int sbx_policy_set_timeout_ms(sbx_policy* policy, uint64_t milliseconds) {
  return override_with(
      policy, [&](profiles::Overrides& o) { o.timeout = limit_value(milliseconds, "ms"); });
}

int sbx_policy_set_env(sbx_policy* policy, const char* name, const char* value) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(name, "the variable name");
    require_string(value, "the variable value");
    if (std::strchr(name, '=') != nullptr) {
      throw Error(fmt::format("variable name \"{}\" contains '='", name),
                  "pass the name and the value separately");
    }
    o.env_set.push_back(fmt::format("{}={}", name, value));
  });
}

int sbx_policy_keep_env(sbx_policy* policy, const char* name) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(name, "the variable name");
    o.env_keep.emplace_back(name);
  });
}

int sbx_policy_override(sbx_policy* policy, const char* option, const char* value) {
  return override_with(policy, [&](profiles::Overrides& o) {
    require_string(option, "the option name");
    require_string(value, "the option value");
    set_option(o, option, value);
  });
}

char* sbx_policy_to_json(sbx_policy* policy) {
  if (policy == nullptr) return nullptr;
  try {
    policy->error.clear();
    return copy_for_caller(profiles::to_json(loaded(policy)).dump(2));
  } catch (...) {
    record_current_exception(policy->error);
    return nullptr;
  }
}

char* sbx_policy_to_toml(sbx_policy* policy) {
  if (policy == nullptr) return nullptr;
  try {
    policy->error.clear();
    return copy_for_caller(profiles::to_toml(loaded(policy)));
  } catch (...) {
    record_current_exception(policy->error);
    return nullptr;
  }
}

const char* sbx_policy_error(const sbx_policy* policy) {
  return policy ? policy->error.what.c_str() : "the policy handle is NULL";
}

const char* sbx_policy_error_fix(const sbx_policy* policy) {
  return policy ? policy->error.fix.c_str() : "create one with sbx_policy_new";
}

const char* sbx_version(void) {
  return SBX_VERSION;
}

void sbx_free(void* string) {
  std::free(string);
}

}  // extern "C"
