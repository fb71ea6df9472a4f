// The probe part of `sbx check` (private to check/).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "check/check.hpp"

namespace sbx::check {

struct ProbeContext {
  std::string profile;                  // as given (name or file)
  std::string probe;                    // sbx-probe path
  std::chrono::milliseconds timeout{};  // of the probe sandbox (Options)
};

// Starts a sandbox of the profile (work dir = a scratch directory) and turns
// each attempt's outcome into a row. Notes get the sandbox's warnings.
std::vector<Row> protection_rows(const Policy& resolved_for_cwd, const ProbeContext& ctx,
                                 std::vector<std::string>& notes);

}  // namespace sbx::check
