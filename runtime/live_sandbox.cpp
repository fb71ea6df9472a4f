// LiveSandbox: signals through init's pidfd (never a recycled pid), usage of
// the sandbox's processes, and the filtered network's live changes.
#include "runtime/live_sandbox.hpp"

#include <dirent.h>

#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "runtime/filtered_network.hpp"
#include "runtime/pidfd.hpp"

namespace sbx::runtime {
namespace {

// init and every descendant, through /proc/PID/task/TID/children.
std::set<pid_t> sandbox_processes(pid_t init) {
  std::set<pid_t> seen;
  std::vector<pid_t> todo = {init};
  while (!todo.empty() && seen.size() < 100000) {
    pid_t p = todo.back();
    todo.pop_back();
    if (!seen.insert(p).second) continue;
    DIR* tasks = opendir(fmt::format("/proc/{}/task", p).c_str());
    if (tasks == nullptr) continue;
    while (auto* e = readdir(tasks)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(fmt::format("/proc/{}/task/{}/children", p, e->d_name));
      pid_t child;
      while (in >> child) todo.push_back(child);
    }
    closedir(tasks);
  }
  return seen;
}

std::uint64_t rss_bytes(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) {
      std::istringstream ss(line.substr(6));
      std::uint64_t kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace

LiveSandbox::LiveSandbox(Sandbox& sandbox, const SuperviseContext& context)
    : sandbox_(sandbox), ctx_(context) {
  if (ctx_.options.controller != nullptr) ctx_.options.controller->attach(this);
}

LiveSandbox::~LiveSandbox() {
  if (ctx_.options.controller != nullptr) ctx_.options.controller->attach(nullptr);
}

pid_t LiveSandbox::init_pid() const {
  return sandbox_.init_pid;
}

bool LiveSandbox::signal(int sig) {
  if (sandbox_.reaped || !sandbox_.pidfd) return false;
  return pidfd_signal(sandbox_.pidfd.get(), sig) == 0;
}

void LiveSandbox::kill_all() {
  // As at the time limit: SIGKILL of init takes the whole pid namespace;
  // the cgroup catches anything that left it.
  signal(SIGCONT);
  signal(SIGKILL);
  if (ctx_.cgroup.active()) ctx_.cgroup.kill_all();
}

nlohmann::json LiveSandbox::usage() {
  nlohmann::json j;
  if (sandbox_.reaped) return {{"memory_bytes", 0}, {"pids", 0}};
  // Resident memory of the sandbox's processes (the cgroup's current usage
  // is not in the cgroups interface; RSS is what ps shows too).
  std::uint64_t rss = 0;
  auto procs = sandbox_processes(sandbox_.init_pid);
  for (pid_t p : procs) rss += rss_bytes(p);
  j["memory_bytes"] = rss;
  j["pids"] = procs.size();
  if (ctx_.cgroup.active()) j["peak_memory_bytes"] = ctx_.cgroup.stats().peak_memory_bytes;
  return j;
}

nlohmann::json LiveSandbox::network() {
  if (ctx_.network != nullptr) return ctx_.network->describe();
  const NetworkPolicy& net = ctx_.policy.network;
  return {{"mode", net.mode == NetworkMode::none ? "none" : "host"},
          {"allow_domains", net.allow_domains},
          {"deny_domains", net.deny_domains},
          {"allow_cidrs", net.allow_cidrs},
          {"deny_cidrs", net.deny_cidrs}};
}

nlohmann::json LiveSandbox::change_network(const NetworkChange& change) {
  if (ctx_.network == nullptr) {
    throw Error(fmt::format("the sandbox's network mode is {}: there is no filter to change",
                            ctx_.policy.network.mode == NetworkMode::none ? "none" : "host"),
                "live network changes need --net filtered");
  }
  return ctx_.network->change(change);
}

}  // namespace sbx::runtime
