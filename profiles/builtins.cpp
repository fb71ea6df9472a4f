// Built-in profiles: profiles/*.toml, embedded at build time, and the
// lookup of a profile by name or file path.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

constexpr BuiltinProfile kBuiltins[] = {
#include "sbx_builtin_profiles.inc"
};

}  // namespace

std::span<const BuiltinProfile> builtin_profiles() {
  return kBuiltins;
}

const BuiltinProfile* find_builtin(std::string_view name) {
  auto it = std::find_if(std::begin(kBuiltins), std::end(kBuiltins),
                         [&](const BuiltinProfile& p) { return p.name == name; });
  return it == std::end(kBuiltins) ? nullptr : &*it;
}

bool names_a_file(std::string_view name_or_file) {
  return name_or_file.find('/') != std::string_view::npos || name_or_file.ends_with(".toml");
}

ProfileSource find_profile(std::string_view name_or_file) {
  ProfileSource src;
  src.name = std::string(name_or_file);
  if (name_or_file.empty()) {
    throw ProfileError("empty profile name", "give a built-in name (sbx profile list) or a file");
  }
  if (!names_a_file(name_or_file)) {
    const BuiltinProfile* builtin = find_builtin(name_or_file);
    if (!builtin) {
      std::string names;
      for (const auto& p : kBuiltins) names += (names.empty() ? "" : ", ") + std::string(p.name);
      throw ProfileError(
          fmt::format("unknown profile '{}'", name_or_file),
          fmt::format("use one of {} or a file path such as ./{}.toml", names, name_or_file));
    }
    src.origin = fmt::format("builtin:{}", builtin->name);
    src.text = std::string(builtin->text);
    src.builtin = true;
    return src;
  }
  std::filesystem::path path(name_or_file);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ProfileError(fmt::format("profile '{}' is a directory", name_or_file),
                       "give the path of a .toml file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ProfileError(
        fmt::format("cannot read profile '{}': {}", name_or_file, std::strerror(errno)),
        "check the path, or use a built-in name (sbx profile list)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  src.origin = src.name;
  src.text = text.str();
  src.dir = path.parent_path().string();
  return src;
}

}  // namespace sbx::profiles
