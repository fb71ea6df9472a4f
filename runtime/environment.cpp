#include "runtime/environment.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace sbx::runtime {
namespace {

// env_keep entries are names, or prefixes ending in '*' ("AWS_*").
bool kept(const std::vector<std::string>& keep, const std::string& name) {
  return std::any_of(keep.begin(), keep.end(), [&](const std::string& pattern) {
    if (!pattern.empty() && pattern.back() == '*') {
      return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
    }
    return name == pattern;
  });
}

bool allowlisted(const std::string& name) {
  if (name.rfind("LC_", 0) == 0) return true;
  return std::any_of(std::begin(kEnvAllowlist), std::end(kEnvAllowlist),
                     [&](const char* allowed) { return name == allowed; });
}

}  // namespace

std::vector<std::string> build_environment(const ProcessPolicy& process, const Identity& identity,
                                           const char* const* host_env) {
  std::map<std::string, std::string> env;  // sorted: stable, readable `env` output
  for (const char* const* entry = host_env; entry != nullptr && *entry != nullptr; ++entry) {
    std::string item(*entry);
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string name = item.substr(0, eq);
    if (allowlisted(name) || kept(process.env_keep, name)) env[name] = item.substr(eq + 1);
  }
  // The command is `identity`, whatever user ran sbx (sudo keeps USER=root).
  env["USER"] = identity.user_name;
  env["LOGNAME"] = identity.user_name;
  env["HOME"] = identity.home;
  if (!identity.shell.empty()) env["SHELL"] = identity.shell;
  if (env.find("PATH") == env.end() || env["PATH"].empty()) env["PATH"] = kDefaultPath;
  for (const auto& [name, value] : process.env_set) env[name] = value;

  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [name, value] : env) {
    std::string item = name;
    item += '=';
    item += value;
    out.push_back(std::move(item));
  }
  return out;
}

std::string env_value(const std::vector<std::string>& env, const std::string& name) {
  for (const auto& item : env) {
    if (item.size() > name.size() && item.compare(0, name.size(), name) == 0 &&
        item[name.size()] == '=') {
      return item.substr(name.size() + 1);
    }
  }
  return {};
}

std::vector<std::string> exec_candidates(const std::string& argv0, const std::string& path) {
  if (argv0.empty()) return {};
  if (argv0.find('/') != std::string::npos) return {argv0};
  std::vector<std::string> out;
  std::string::size_type start = 0;
  while (true) {
    auto colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
    if (dir.empty()) dir = ".";
    if (dir.back() != '/') dir += '/';
    dir += argv0;
    out.push_back(std::move(dir));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

}  // namespace sbx::runtime
