// sbx ps, sbx stop, sbx kill, sbx network show|allow|deny: live control of
// running sandboxes through their control sockets (docs/control.md).
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "control/control.hpp"
#include "profiles/profiles.hpp"

namespace sbx::cli {
namespace {

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{}B", b) : fmt::format("{:.1f}{}", v, units[u]);
}

std::string human_duration(std::int64_t ms) {
  const std::int64_t s = ms / 1000;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

int run_ps(bool json) {
  const std::string base = control::state_base(false);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& e : control::list_live(base)) {
    nlohmann::json row;
    try {
      row = control::request(e.name, {{"op", "status"}}, std::chrono::milliseconds(2000));
      row.erase("ok");
    } catch (const sbx::Error& err) {
      row = e.state;  // alive (locked) but not answering: what the state file says
      row["name"] = e.name;
      row["error"] = err.what();
    }
    rows.push_back(row);
  }
  if (json) {
    fmt::print("{}\n", rows.dump(2));
    return 0;
  }
  fmt::print("{:<24} {:>8} {:>8} {:<12} {:>9} {:>8} {:>8}\n", "NAME", "PID", "INIT", "PROFILE",
             "UPTIME", "MEMORY", "BLOCKED");
  for (const auto& r : rows) {
    const auto usage = r.value("usage", nlohmann::json::object());
    fmt::print("{:<24} {:>8} {:>8} {:<12} {:>9} {:>8} {:>8}\n", r.value("name", "?"),
               r.value("sbx_pid", 0), r.value("init_pid", 0), r.value("profile", "?"),
               r.contains("uptime_ms") ? human_duration(r["uptime_ms"].get<std::int64_t>()) : "?",
               usage.contains("memory_bytes")
                   ? human_bytes(usage["memory_bytes"].get<std::uint64_t>())
                   : "?",
               r.contains("blocked") ? r["blocked"].dump() : "?");
  }
  return 0;
}

// Waits until the sandbox's sbx has released its state dir.
bool wait_gone(const std::string& name, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  const std::string base = control::state_base(false);
  while (std::chrono::steady_clock::now() < until) {
    if (!control::find_live(base, name)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !control::find_live(base, name);
}

int run_stop(const std::string& name, const std::string& grace_text) {
  // The same durations as everywhere in sbx (profiles, sbx run --timeout).
  const auto grace = profiles::parse_duration(grace_text);
  control::request(name, {{"op", "stop"}, {"grace_ms", grace.count()}});
  if (!wait_gone(name, grace + std::chrono::seconds(5))) {
    return report_usage_error(fmt::format("sandbox '{}' is still running", name),
                              fmt::format("sbx kill {}", name));
  }
  note(fmt::format("stopped {}", name));
  return 0;
}

int run_kill(const std::string& name, const std::string& signal_text) {
  auto sig = control::parse_signal(signal_text);
  if (!sig) {
    return report_usage_error(fmt::format("unknown signal '{}'", signal_text),
                              "use a name (TERM, KILL, INT, HUP, USR1...) or a number");
  }
  control::request(name, {{"op", "kill"}, {"signal", *sig}});
  if (*sig == SIGKILL && !wait_gone(name, std::chrono::seconds(5))) {
    return report_usage_error(fmt::format("sandbox '{}' is still running after SIGKILL", name),
                              "its sbx may be stuck; kill its sbx process");
  }
  return 0;
}

void print_list(const char* title, const nlohmann::json& list) {
  std::string text;
  for (const auto& x : list) text += (text.empty() ? "" : ", ") + x.get<std::string>();
  fmt::print("  {:<14} {}\n", title, text.empty() ? "-" : text);
}

int run_network_show(const std::string& name, bool json) {
  auto j = control::request(name, {{"op", "network_show"}});
  j.erase("ok");
  if (json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{}: network {}\n", name, j.value("mode", "?"));
  for (const char* k : {"allow_domains", "deny_domains", "allow_cidrs", "deny_cidrs"})
    if (j.contains(k)) print_list(k, j[k]);
  if (j.contains("allow_ports")) {
    std::string ports;
    for (const auto& p : j["allow_ports"]) ports += (ports.empty() ? "" : ", ") + p.dump();
    fmt::print("  {:<14} {}\n", "allow_ports", ports);
  }
  if (j.contains("overlay")) {
    fmt::print("live changes:\n");
    for (auto& [k, v] : j["overlay"].items()) print_list(k.c_str(), v);
  }
  if (j.contains("resolved")) {
    fmt::print("resolved (in the allow sets):\n");
    for (const auto& r : j["resolved"]) {
      std::string names;
      for (const auto& n : r["names"]) names += (names.empty() ? "" : ", ") + n.get<std::string>();
      fmt::print("  {:<40} {}\n", r.value("address", "?"), names);
    }
  }
  return 0;
}

int run_network_change(const std::string& action, const std::string& name,
                       const std::string& domain, const std::string& cidr) {
  if (domain.empty() == cidr.empty()) {
    return report_usage_error("give exactly one of --domain or --cidr",
                              fmt::format("sbx network {} NAME --domain D | --cidr C", action));
  }
  nlohmann::json req = {{"op", "network"}, {"action", action}};
  if (!domain.empty()) req["domain"] = domain;
  if (!cidr.empty()) req["cidr"] = cidr;
  auto j = control::request(name, req);
  const std::string what =
      j.contains("domain") ? j["domain"].get<std::string>() : j.value("cidr", std::string("?"));
  std::string cut;
  if (auto n = j.value("cut_connections", 0); n > 0)
    cut = fmt::format("; {} open connection{} cut", n, n == 1 ? "" : "s");
  note(fmt::format("{} {} in {} (effective now{})", action == "allow" ? "allowed" : "denied", what,
                   name, cut));
  return 0;
}

struct LiveState {
  std::string name;
  bool json = false;
  std::string grace = "10s";
  std::string signal = "KILL";
  std::string domain, cidr;
};

}  // namespace

Command add_live_control(CLI::App& app) {
  auto s = std::make_shared<LiveState>();
  CLI::App* ps = app.add_subcommand("ps", "List running sandboxes");
  ps->add_flag("--json", s->json, "Print as JSON");

  CLI::App* stop = app.add_subcommand("stop", "Stop a sandbox: SIGTERM, then SIGKILL after grace");
  stop->add_option("name", s->name, "Sandbox name (sbx ps)")->required()->type_name("NAME");
  stop->add_option("--grace", s->grace, "Time between SIGTERM and SIGKILL (default 10s)")
      ->type_name("DURATION");

  CLI::App* kill = app.add_subcommand("kill", "Send a signal to a sandbox (default KILL)");
  kill->add_option("name", s->name, "Sandbox name (sbx ps)")->required()->type_name("NAME");
  kill->add_option("-s,--signal", s->signal, "Signal name or number (default KILL)")
      ->type_name("SIGNAL");

  CLI::App* net = app.add_subcommand("network", "Show or change a running sandbox's network");
  net->require_subcommand(1);
  CLI::App* show = net->add_subcommand("show", "The network policy in force, live changes");
  show->add_option("name", s->name, "Sandbox name")->required()->type_name("NAME");
  show->add_flag("--json", s->json, "Print as JSON");
  CLI::App* allow = net->add_subcommand("allow", "Allow a domain or range now, without restart");
  CLI::App* deny = net->add_subcommand(
      "deny", "Deny a domain or range now, without restart; resets its open connections");
  for (CLI::App* c : {allow, deny}) {
    c->add_option("name", s->name, "Sandbox name")->required()->type_name("NAME");
    c->add_option("--domain", s->domain, "Domain: example.org or *.example.org")
        ->type_name("DOMAIN");
    c->add_option("--cidr", s->cidr, "Address range: 203.0.113.0/24")->type_name("CIDR");
  }
  return [=]() -> int {
    if (ps->parsed()) return run_ps(s->json);
    if (stop->parsed()) return run_stop(s->name, s->grace);
    if (kill->parsed()) return run_kill(s->name, s->signal);
    if (show->parsed()) return run_network_show(s->name, s->json);
    if (allow->parsed()) return run_network_change("allow", s->name, s->domain, s->cidr);
    if (deny->parsed()) return run_network_change("deny", s->name, s->domain, s->cidr);
    return -1;
  };
}

}  // namespace sbx::cli
