// The system part of `sbx check` (private to check/).
#pragma once

#include <vector>

#include "check/check.hpp"

namespace sbx::check {

// One row per kernel feature; `promised` when the policy depends on it.
std::vector<Row> system_rows(const Policy& policy);

}  // namespace sbx::check
