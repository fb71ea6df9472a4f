// Live control of a running sandbox (docs/control.md): the two sides of the
// hook between the supervisor's loop and a controller such as sbx's control
// socket (control/). The supervisor implements RunningSandbox; a controller
// implements LiveController and is handed to sbx::run through
// RunOptions::controller. Both are used from the supervisor's thread only.
#pragma once

#include <sys/types.h>

#include <string>

#include <nlohmann/json.hpp>

namespace sbx {

// One change of the network policy of a running sandbox ("filtered" mode).
struct NetworkChange {
  enum class Action { allow, deny };
  Action action = Action::allow;
  std::string domain;  // a domain pattern: example.org or *.example.org; or empty
  std::string cidr;    // an address range: 203.0.113.0/24, 2001:db8::/32; or empty
};

// What a controller may do to the sandbox the supervisor runs.
class RunningSandbox {
 public:
  virtual ~RunningSandbox() = default;
  virtual pid_t init_pid() const = 0;
  // Sends `sig` to the sandbox's init, which forwards it to the command.
  // False when the sandbox is already gone.
  virtual bool signal(int sig) = 0;
  // SIGKILL for every process of the sandbox (pid namespace and cgroup).
  virtual void kill_all() = 0;
  // {"memory_bytes": current memory of the sandbox's processes, "pids": n}
  virtual nlohmann::json usage() = 0;
  // {"mode", "allow_domains", "deny_domains", "allow_cidrs", "deny_cidrs",
  //  "allow_ports", "overlay": {...live changes...}, "resolved": [...]}
  virtual nlohmann::json network() = 0;
  // Applies a change at once (DNS filter, nftables sets, egress proxy).
  // Returns what was done; throws sbx::Error (with a fix) when refused.
  virtual nlohmann::json change_network(const NetworkChange& change) = 0;
};

// A controller served from the supervisor's epoll loop.
class LiveController {
 public:
  virtual ~LiveController() = default;
  // A level-triggered fd for the supervisor's epoll set; on_ready() when readable.
  virtual int fd() const = 0;
  // Once per run, after the sandbox's init is released and before the
  // command may start (init waits): set-up that need not delay the start
  // (the sbx CLI claims the sandbox's name here, beside init's mounts).
  // Throws sbx::Error to stop the run; the command then never starts.
  virtual void start() {}
  // The sandbox runs (its init pid is known): requests may act on it now.
  // Called again with nullptr when the supervisor's loop ends.
  virtual void attach(RunningSandbox* sandbox) = 0;
  virtual void on_ready() = 0;
};

}  // namespace sbx
