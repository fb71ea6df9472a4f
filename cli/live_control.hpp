// sbx run's side of live control: the control server for the sandbox about
// to start (docs/control.md) and the live display of blocked attempts (-v).
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include <sbx/policy.hpp>
#include <sbx/sbx.hpp>

#include "audit/audit.hpp"
#include "control/control.hpp"

namespace sbx::cli {

// The live controller of the sandbox named by the recorder: sbx::run calls
// its start() while init mounts, which claims the name and creates the
// state dir and control socket (a live sandbox of that name: sbx::Error,
// the run stops before its command). Throws sbx::Error for an invalid name.
std::unique_ptr<control::ControlServer> start_control(const Policy& policy,
                                                      audit::RunRecorder& recorder,
                                                      EventSink on_event);

// One line on stderr (spdlog) for a record the policy refused.
void show_blocked(const nlohmann::json& record);

}  // namespace sbx::cli
