// The launch plan: everything the sandbox processes need, prepared by the
// supervisor BEFORE clone. Between clone and execve the sandbox only reads
// this plan and makes system calls: no allocation (the embedding process may
// be multi-threaded and another thread may hold the malloc lock at clone
// time), no logging, no exceptions.
#pragma once

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <termios.h>

#include <sbx/policy.hpp>

#include <string>
#include <vector>

#include "runtime/child_error.hpp"
#include "runtime/identity.hpp"
#include "runtime/mount_plan.hpp"
#include "seccomp/seccomp.hpp"

namespace sbx::runtime {

// A nullptr-terminated char* array that owns its strings.
class CStringArray {
 public:
  CStringArray() = default;
  explicit CStringArray(std::vector<std::string> items);
  CStringArray(const CStringArray&) = delete;
  CStringArray& operator=(const CStringArray&) = delete;
  CStringArray(CStringArray&&) = default;
  CStringArray& operator=(CStringArray&&) = default;
  char* const* data() const { return pointers_.data(); }
  std::size_t size() const { return items_.size(); }
  const std::vector<std::string>& items() const { return items_; }

 private:
  std::vector<std::string> items_;
  std::vector<char*> pointers_;
};

struct RlimitSetting {
  int resource = 0;
  struct rlimit value {};
};

struct LaunchPlan {
  Identity identity;
  NetworkMode network = NetworkMode::none;
  std::string hostname;

  // A pre-built RTM_NEWLINK "lo up" request (libnl, built in the
  // supervisor); init only sends these bytes inside the new netns. The same
  // with lo's large segments is sent first when not empty (Linux 6.4 or
  // later: large_loopback_segments_safe); the plain one if it is refused.
  std::vector<unsigned char> loopback_up_request;
  std::vector<unsigned char> loopback_large_segments_request;
  // Network "filtered": `local default dev lo` for IPv4, then IPv6 (rtnetlink
  // bytes), the ports whose egress listeners (every address) and the
  // host_ports whose listeners (127.0.0.1, when not an egress port) init
  // opens inside.
  std::vector<std::vector<unsigned char>> route_requests;
  std::vector<unsigned char> address_request;  // 127.0.0.2/32 on lo (AI_ADDRCONFIG)
  std::vector<std::uint16_t> egress_ports;
  std::vector<std::uint16_t> host_ports;
  bool serve_sockets = false;  // --publish: init hands out sockets of the netns
  // Init waits for the supervisor's go before its worker (wait_for_go):
  // network "filtered" (the ruleset) or a live controller (its start()).
  bool wait_for_go = false;

  MountPlan mounts;
  LandlockPlan landlock;
  seccomp::Program seccomp;

  // The nested user namespace U2 maps the command's id onto itself.
  char u2_uid_map[48] = {};
  char u2_gid_map[48] = {};
  int cap_last_cap = 40;

  unsigned pty_stdio = 0;  // fds 0-2 (bits 0-2) that become the pty's slave; 0 = no pty
  bool have_winsize = false;
  struct winsize winsize {};
  bool have_termios = false;
  struct termios termios {};

  std::vector<RlimitSetting> rlimits;
  // cgroup.procs (v2) or tasks (v1) of the sandbox's group, opened by the supervisor
  // (SandboxCgroup::join_fds; empty without limits). The worker moves
  // itself in; init stays outside the group (join_sandbox_cgroup).
  std::vector<int> cgroup_join_fds;
  // The caller's CPU set, given back by the worker (cpu_pin.hpp);
  // restore_cpus is false when the launch was not pinned.
  bool restore_cpus = false;
  cpu_set_t caller_cpus{};
  // Test hooks only (sbx-test-hooks, SBX_TEST_INIT_DELAY_MS): init sleeps
  // this long before anything else, so a test can kill sbx before init
  // has armed PDEATHSIG. Always 0 in sbx and libsbx.
  unsigned test_init_delay_ms = 0;
  CStringArray argv;
  CStringArray envp;
  CStringArray exec_paths;  // execve candidates, in PATH order
};

// Sandbox side, entered right after clone3 in the child. Never returns.
// worker_stack_top: the top of a stack for the worker, or nullptr (init maps
// one while it starts the worker).
[[noreturn]] void sandbox_init(const LaunchPlan& plan, int control_fd, int exec_fd,
                               char* worker_stack_top = nullptr);

// An early start's init (shared_init.hpp SharedInit::start_early), in two
// halves. Before the release it has only its channel and the supervisor's
// pidfd and its parent thread's (the plan is still being made; every fd of
// sbx is its fd too): arms PDEATHSIG, waits for the release or the
// supervisor's end, and
// returns released or _exits. Then, with the plan: takes an fd table of its
// own, keeps only its fds, tells the supervisor, and goes on as
// sandbox_init does after its release.
void init_before_release(int control_fd, int supervisor_pidfd, int parent_thread_pidfd,
                         unsigned delay_ms);
[[noreturn]] void sandbox_init_released(const LaunchPlan& plan, int control_fd, int exec_fd,
                                        char* worker_stack_top);

// Worker, forked by init. Never returns: execve or _exit.
[[noreturn]] void worker_main(const LaunchPlan& plan, int exec_fd);

}  // namespace sbx::runtime
