// Path variables: ~, $HOME, $CWD, $TMPDIR. Expansion happens once, when a
// profile or flag is read, so a resolved Policy holds only absolute paths.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

constexpr std::string_view kVariablesFix = "paths may use ~, $HOME, $CWD and $TMPDIR ($$ is a '$')";

const std::string& require(const std::optional<std::string>& value, std::string_view var,
                           std::string_view raw) {
  if (!value || value->empty()) {
    throw ProfileError(fmt::format("path '{}' uses {} but it is not set", raw, var),
                       fmt::format("set {} in the environment or write an absolute path",
                                   var == "~" ? "$HOME" : var));
  }
  return *value;
}

bool is_name_char(char c) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

Environment Environment::from_process() {
  Environment env;
  if (const char* home = std::getenv("HOME"); home && *home) env.home = home;
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  if (!ec) env.cwd = cwd.string();
  const char* tmp = std::getenv("TMPDIR");
  env.tmpdir = (tmp && *tmp) ? tmp : "/tmp";
  return env;
}

std::string expand_path(std::string_view raw, const Environment& env) {
  std::string out;
  std::size_t i = 0;
  if (raw == "~" || raw.starts_with("~/")) {
    out = require(env.home, "~", raw);
    i = 1;
  } else if (raw.starts_with("~")) {
    throw ProfileError(fmt::format("path '{}': ~user is not supported", raw),
                       "write ~/... for your home or the absolute path");
  }
  while (i < raw.size()) {
    char c = raw[i];
    if (c != '$') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 < raw.size() && raw[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    std::string_view name;
    std::size_t end;
    if (i + 1 < raw.size() && raw[i + 1] == '{') {
      auto close = raw.find('}', i + 2);
      if (close == std::string_view::npos) {
        throw ProfileError(fmt::format("path '{}': unterminated ${{", raw),
                           std::string(kVariablesFix));
      }
      name = raw.substr(i + 2, close - i - 2);
      end = close + 1;
    } else {
      end = i + 1;
      while (end < raw.size() && is_name_char(raw[end])) ++end;
      name = raw.substr(i + 1, end - i - 1);
    }
    if (name == "HOME") {
      out += require(env.home, "$HOME", raw);
    } else if (name == "CWD") {
      out += require(env.cwd, "$CWD", raw);
    } else if (name == "TMPDIR") {
      out += require(env.tmpdir, "$TMPDIR", raw);
    } else {
      throw ProfileError(fmt::format("path '{}' uses undefined variable ${}", raw, name),
                         std::string(kVariablesFix));
    }
    i = end;
  }
  if (out.empty() || out.front() != '/') {
    throw ProfileError(fmt::format("path '{}' is not absolute", raw),
                       "start it with /, ~/, $HOME, $CWD or $TMPDIR");
  }
  if (out.find('\0') != std::string::npos) {
    throw ProfileError("path contains a NUL byte", "remove it");
  }
  std::string normal = std::filesystem::path(out).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

}  // namespace sbx::profiles
