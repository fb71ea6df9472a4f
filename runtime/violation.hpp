// The host-side guards' report of what a sandbox planted: a "violation"
// event (docs/audit.md: kind agent_config or git_redirection, and the
// fields of that kind) and the warning that tells the user what was done
// and the fix.
#pragma once

#include <sbx/sbx.hpp>

#include <string>
#include <utility>

namespace sbx::runtime {

inline void report_violation(const RunOptions& options, nlohmann::json data,
                             const std::string& warning) {
  if (options.on_event) {
    Event event;
    event.type = "violation";
    event.data = std::move(data);
    options.on_event(event);
  }
  if (options.on_warning) options.on_warning(warning);
}

}  // namespace sbx::runtime
