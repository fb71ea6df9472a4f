// sbx::Error — a failure the user must see: what failed, why, and the fix.
#pragma once

#include <stdexcept>
#include <string>

namespace sbx {

// Exit code for sbx's own errors (bad flag, bad profile, sandbox not buildable).
inline constexpr int kExitSbxError = 125;
inline constexpr int kExitNotExecutable = 126;
inline constexpr int kExitNotFound = 127;

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string fix = {})
      : std::runtime_error(what), fix_(std::move(fix)) {}
  // One line telling the user how to fix it; may be empty.
  const std::string& fix() const { return fix_; }

 private:
  std::string fix_;
};

}  // namespace sbx
