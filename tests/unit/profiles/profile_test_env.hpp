// What the profile unit tests share: a fixed environment for path
// expansion, and loading a profile text with it.
#pragma once

#include <string>
#include <string_view>

#include "profiles/profiles.hpp"

namespace sbx::profiles::test {

inline Environment test_env() {
  Environment env;
  env.home = "/home/u";
  env.cwd = "/work/proj";
  env.tmpdir = "/tmp";
  return env;
}

inline sbx::Policy load(std::string_view text) {
  return load_profile_text(text, "t", "t.toml", test_env());
}

// The error message of loading `text` (with its fix), or "no error".
inline std::string load_error(std::string_view text) {
  try {
    load(text);
  } catch (const ProfileError& e) {
    return std::string(e.what()) + " | fix: " + e.fix();
  }
  return "no error";
}

}  // namespace sbx::profiles::test
