// Human output of the sbx executable: the only place that prints.
#pragma once

#include <string_view>

#include <sbx/error.hpp>

namespace sbx::cli {

// A bad flag or profile: ONE line naming the problem and the fix.
int report_usage_error(std::string_view what, std::string_view fix);
int report_usage_error(const sbx::Error& e);
// A sandbox that cannot be built (sbx::run): the problem, then the fix.
int report_run_error(const sbx::Error& e);
void warn(std::string_view message);
void note(std::string_view message);  // -v output

}  // namespace sbx::cli
