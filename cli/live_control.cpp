// sbx run: control server setup and the -v display of blocked attempts.
#include "cli/live_control.hpp"

#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/output.hpp"

namespace sbx::cli {

std::unique_ptr<control::ControlServer> start_control(const Policy& policy,
                                                      audit::RunRecorder& recorder,
                                                      EventSink on_event) {
  control::ControlServer::Options o;
  o.info.name = recorder.identity().name;
  o.info.id = recorder.identity().id;
  o.info.profile = policy.profile;
  o.info.audit_log = recorder.log_path();
  o.info.sbx_pid = ::getpid();
  o.on_event = std::move(on_event);
  o.status_extra = [&recorder]() -> nlohmann::json { return {{"blocked", recorder.blocked()}}; };
  o.warn = [](const std::string& w) { warn(w); };
  o.claim_at_start = true;  // sbx::run claims the name while init mounts
  return std::make_unique<control::ControlServer>(std::move(o));
}

void show_blocked(const nlohmann::json& record) {
  // Human-facing, as it happens: one line per refused attempt.
  static auto logger = [] {
    auto l = std::make_shared<spdlog::logger>("sbx-live",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("sbx: %v");
    l->flush_on(spdlog::level::info);
    return l;
  }();
  logger->info("blocked: {}", audit::describe(record));
}

}  // namespace sbx::cli
