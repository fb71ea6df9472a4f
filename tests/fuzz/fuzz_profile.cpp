// Fuzzes the profile parser: arbitrary bytes as a TOML profile must either
// load into a Policy that validates and round-trips, or throw ProfileError
// (a clear FILE:LINE:COL message) — never crash, never another exception.
#include <cstdlib>
#include <string_view>

#include "profiles/profiles.hpp"

using namespace sbx::profiles;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Environment env;
  env.home = "/home/fuzz";
  env.cwd = "/work";
  env.tmpdir = "/tmp";
  try {
    sbx::Policy policy = load_profile_text(text, "fuzz", "fuzz.toml", env);
    (void)validate(policy);
    // What sbx prints must load back to the same Policy.
    sbx::Policy again = load_profile_text(to_toml(policy), "fuzz", "again.toml", env);
    if (!(again == policy)) std::abort();
    (void)to_json(policy).dump();
  } catch (const ProfileError& e) {
    if (std::string_view(e.what()).empty()) std::abort();
  } catch (const sbx::Error& e) {
    // extends of an unknown profile, unreadable include: still a clear message.
    if (std::string_view(e.what()).empty()) std::abort();
  }
  return 0;
}
