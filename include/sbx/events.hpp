// Events: one typed record per thing that happened in a sandbox (a denied
// syscall, a blocked connection, an OOM kill...). Modules produce them; the
// embedding program or the CLI consumes them through an EventSink.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace sbx {

struct Event {
  std::string type;  // "syscall_denied", "limit", "net_blocked", ... (docs/audit.md)
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
  nlohmann::json data = nlohmann::json::object();  // type-specific fields
};

using EventSink = std::function<void(const Event&)>;
// Human-facing warnings (e.g. a limit that cannot be enforced, with its fix).
using WarningSink = std::function<void(const std::string&)>;

}  // namespace sbx
