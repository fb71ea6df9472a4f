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

// Claims the sandbox's name (the recorder's), creates its state dir and
// control socket. Throws sbx::Error (the name is taken by a live sandbox...).
std::unique_ptr<control::ControlServer> start_control(const Policy& policy,
                                                      audit::RunRecorder& recorder,
                                                      EventSink on_event);

// One line on stderr (spdlog) for a record the policy refused.
void show_blocked(const nlohmann::json& record);

}  // namespace sbx::cli
