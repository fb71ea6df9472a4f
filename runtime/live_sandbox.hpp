// The supervisor's side of live control: what a LiveController (the control
// socket, control/) may do to the running sandbox (include/sbx/control.hpp).
// Attaches the controller for its lifetime (scoped to the supervisor's loop).
#pragma once

#include <sbx/control.hpp>

#include "runtime/supervisor.hpp"

namespace sbx::runtime {

class LiveSandbox : public RunningSandbox {
 public:
  LiveSandbox(Sandbox& sandbox, const SuperviseContext& context);
  ~LiveSandbox() override;  // detaches the controller
  LiveSandbox(const LiveSandbox&) = delete;
  LiveSandbox& operator=(const LiveSandbox&) = delete;

  pid_t init_pid() const override;
  bool signal(int sig) override;
  void kill_all() override;
  nlohmann::json usage() override;
  nlohmann::json network() override;
  nlohmann::json change_network(const NetworkChange& change) override;

 private:
  Sandbox& sandbox_;
  const SuperviseContext& ctx_;
};

}  // namespace sbx::runtime
