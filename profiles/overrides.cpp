// Command-line overrides (the last layer of resolution) and the checks that
// look at a whole Policy.
#include <algorithm>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

// Runs a value parser; its error is prefixed with the flag and value.
template <typename F>
auto for_flag(std::string_view flag, std::string_view value, F&& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const ProfileError& e) {
    throw ProfileError(fmt::format("{} {}: {}", flag, value, e.what()), e.fix());
  }
}

template <typename T>
void append_unique(std::vector<T>& list, T value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

// On the command line a relative path is relative to the current directory.
std::string cli_path(std::string_view raw, const Environment& env) {
  if (!raw.empty() && raw.front() != '/' && raw.front() != '~' && raw.front() != '$') {
    return expand_path("$CWD/" + std::string(raw), env);
  }
  return expand_path(raw, env);
}

std::optional<std::uint64_t> cli_limit_size(std::string_view flag, const std::string& value) {
  if (value == "unlimited") return std::nullopt;
  std::uint64_t bytes = for_flag(flag, value, [&] { return parse_size(value); });
  if (bytes == 0) {
    throw ProfileError(fmt::format("{} {}: must be above 0", flag, value),
                       fmt::format("give a size such as {} 2G, or {} unlimited", flag, flag));
  }
  return bytes;
}

void check_sandbox_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.';
            });
  if (!ok) {
    throw ProfileError(fmt::format("--name {}: invalid sandbox name", name),
                       "use up to 64 letters, digits, '-', '_' and '.' (not starting with '.')");
  }
}

}  // namespace

void apply_overrides(Policy& p, const Overrides& o, const Environment& env) {
  if (o.network) {
    p.network.mode = for_flag("--net", *o.network, [&] { return parse_network_mode(*o.network); });
  }
  for (const auto& d : o.allow_domains) {
    append_unique(p.network.allow_domains, for_flag("--allow-domain", d, [&] {
                    return normalize_domain_pattern(d, DomainList::allow);
                  }));
  }
  for (const auto& d : o.deny_domains) {
    append_unique(p.network.deny_domains, for_flag("--deny-domain", d, [&] {
                    return normalize_domain_pattern(d, DomainList::deny);
                  }));
  }
  for (const auto& c : o.allow_cidrs) {
    append_unique(p.network.allow_cidrs,
                  for_flag("--allow-cidr", c, [&] { return parse_cidr(c); }));
  }
  for (const auto& c : o.deny_cidrs) {
    append_unique(p.network.deny_cidrs, for_flag("--deny-cidr", c, [&] { return parse_cidr(c); }));
  }
  for (const auto& port : o.allow_ports) {
    append_unique(p.network.allow_ports,
                  for_flag("--allow-port", port, [&] { return parse_port(port); }));
  }
  for (const auto& spec : o.publish) {
    append_unique(p.network.publish,
                  for_flag("--publish", spec, [&] { return parse_publish(spec); }));
  }
  for (const auto& port : o.host_ports) {
    append_unique(p.network.host_ports,
                  for_flag("--host-port", port, [&] { return parse_port(port); }));
  }
  if ((!o.publish.empty() || !o.host_ports.empty()) && p.network.mode != NetworkMode::filtered) {
    // none has no network to publish into; host shares the host's ports, so
    // there is nothing to forward. Failing beats silently doing nothing.
    throw ProfileError(
        fmt::format("{} needs network mode \"filtered\" (this run uses \"{}\")",
                    o.publish.empty() ? "--host-port" : "--publish", to_string(p.network.mode)),
        "add --net filtered");
  }
  for (const auto& path : o.writable) {
    append_unique(p.filesystem.allow_write,
                  for_flag("--rw", path, [&] { return cli_path(path, env); }));
  }
  for (const auto& path : o.read_only) {
    append_unique(p.filesystem.deny_write,
                  for_flag("--ro", path, [&] { return cli_path(path, env); }));
  }
  for (const auto& path : o.hidden) {
    append_unique(p.filesystem.deny_read,
                  for_flag("--hide", path, [&] { return cli_path(path, env); }));
  }
  for (const auto& spec : o.tmpfs) {
    TmpfsMount mount = for_flag("--tmpfs", spec, [&] {
      std::string_view s = spec;
      if (!s.empty() && s.front() != '/' && s.front() != '~' && s.front() != '$') {
        return parse_tmpfs("$CWD/" + spec, env);
      }
      return parse_tmpfs(spec, env);
    });
    auto& list = p.filesystem.tmpfs;
    auto same = std::find_if(list.begin(), list.end(),
                             [&](const TmpfsMount& m) { return m.path == mount.path; });
    if (same != list.end()) {
      *same = mount;
    } else {
      list.push_back(mount);
    }
  }
  if (o.memory) p.limits.memory_bytes = cli_limit_size("--memory", *o.memory);
  if (o.cpus) {
    if (*o.cpus == "unlimited") {
      p.limits.cpus.reset();
    } else {
      char* end = nullptr;
      double v = std::strtod(o.cpus->c_str(), &end);
      if (o.cpus->empty() || *end != '\0' || !(v >= 0.01 && v <= 4096)) {
        throw ProfileError(fmt::format("--cpus {}: invalid CPU count", *o.cpus),
                           "give a number from 0.01 to 4096, e.g. --cpus 2 or --cpus 0.5");
      }
      p.limits.cpus = v;
    }
  }
  if (o.pids) {
    if (*o.pids == "unlimited") {
      p.limits.pids.reset();
    } else {
      const std::string& v = *o.pids;
      bool digits = !v.empty() && v.size() < 19 &&
                    std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || std::stoull(v) == 0) {
        throw ProfileError(fmt::format("--pids {}: invalid process count", v),
                           "give a number of 1 or more, e.g. --pids 512");
      }
      p.limits.pids = std::stoull(v);
    }
  }
  if (o.timeout) {
    if (*o.timeout == "unlimited") {
      p.limits.timeout.reset();
    } else {
      auto d = for_flag("--timeout", *o.timeout, [&] { return parse_duration(*o.timeout); });
      if (d.count() == 0) {
        throw ProfileError(fmt::format("--timeout {}: must be above 0", *o.timeout),
                           "give a duration such as --timeout 15m, or --timeout unlimited");
      }
      p.limits.timeout = d;
    }
  }
  if (o.kill_after) {
    p.limits.kill_after =
        for_flag("--kill-after", *o.kill_after, [&] { return parse_duration(*o.kill_after); });
  }
  for (const auto& kv : o.env_set) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      throw ProfileError(
          fmt::format("--env {}: expected NAME=VALUE", kv),
          fmt::format("write --env {}=VALUE, or --keep-env {} to pass the host's value", kv, kv));
    }
    std::string name = kv.substr(0, eq);
    for_flag("--env", kv, [&] { check_env_name(name, false); });
    p.process.env_set[name] = kv.substr(eq + 1);
  }
  for (const auto& name : o.env_keep) {
    for_flag("--keep-env", name, [&] { check_env_name(name, true); });
    append_unique(p.process.env_keep, name);
  }
  if (o.name) {
    check_sandbox_name(*o.name);
    p.name = *o.name;
  }
  if (o.audit_log)
    p.audit.log =
        for_flag("--audit-log", *o.audit_log, [&] { return cli_path(*o.audit_log, env); });
  if (o.report) {
    p.audit.report = *o.report == "-" ? "-" : for_flag("--report", *o.report, [&] {
      return cli_path(*o.report, env);
    });
  }
  if (o.user) {
    auto [uid, gid] = for_flag("--user", *o.user, [&] { return parse_user(*o.user); });
    if (uid) p.process.uid = uid;
    if (gid) p.process.gid = gid;
  }
  if (o.tty) p.process.tty = *o.tty;
}

namespace {

// `inert_none_lists`: whether to warn that mode "none" leaves allow lists
// without effect (not when --net none on the command line chose that).
std::vector<std::string> check_policy(const Policy& p, bool inert_none_lists) {
  std::vector<std::string> warnings;
  const auto& net = p.network;
  // In filtered mode each entry is a socket of sbx's (an egress listener inside the sandbox,
  // a host-port listener, a published port's listener), made and passed
  // over before the command starts: a list of thousands fails on the open-
  // file limit, and costs start-up time long before that.
  for (const auto& [key, size] :
       {std::pair{"allow_ports", net.allow_ports.size()},
        std::pair{"host_ports", net.host_ports.size()}, std::pair{"publish", net.publish.size()}}) {
    if (net.mode == NetworkMode::filtered && size > kMaxPortEntries) {
      throw ProfileError(
          fmt::format("network.{} has {} entries; at most {} (each is a listening socket of sbx's)",
                      key, size, kMaxPortEntries),
          "list only the ports the command needs");
    }
  }
  for (std::uint16_t port : net.opaque_ports) {
    if (std::find(net.allow_ports.begin(), net.allow_ports.end(), port) == net.allow_ports.end()) {
      throw ProfileError(fmt::format("network.opaque_ports: port {} is not in allow_ports", port),
                         fmt::format("add it to allow_ports (or --allow-port {})", port));
    }
  }
  // Inside the sandbox netns sbx itself listens on port 53 (DNS filter) and
  // on every allowed port (egress listeners), on every address
  // (runtime/filtered_network.hpp). A host_ports entry that is also an
  // allowed port is served by that port's egress listener.
  for (std::uint16_t port : net.host_ports) {
    if (port == 53) {
      throw ProfileError(
          "network.host_ports: port 53 is used inside the sandbox by sbx (DNS filter)",
          "forward another host port (--host-port N with N not 53)");
    }
  }
  std::set<std::uint16_t> published;
  for (const auto& pp : net.publish) {
    if (pp.sandbox_port == 53) {
      throw ProfileError(
          "network.publish: sandbox port 53 is sbx's own DNS filter inside the sandbox",
          "let the server inside listen on another port and publish that one");
    }
    if (std::find(net.allow_ports.begin(), net.allow_ports.end(), pp.sandbox_port) !=
        net.allow_ports.end()) {
      throw ProfileError(
          fmt::format("network.publish: sandbox port {} is in allow_ports, so sbx's egress "
                      "listener holds it on every address inside the sandbox",
                      pp.sandbox_port),
          "let the server inside listen on a port that is not in allow_ports and publish that one");
    }
    if (!published.insert(pp.host_port).second) {
      throw ProfileError(
          fmt::format("network.publish: host port {} is published twice", pp.host_port),
          "give each --publish its own HOST_PORT");
    }
  }
  // Patterns in a Policy built by hand (library users) get the same checks.
  for (const auto& d : net.allow_domains) normalize_domain_pattern(d, DomainList::allow);
  for (const auto& d : net.deny_domains) normalize_domain_pattern(d, DomainList::deny);

  const bool has_allow = !net.allow_domains.empty() || !net.allow_cidrs.empty();
  if (net.mode == NetworkMode::host) {
    std::vector<std::string> inert;
    if (!net.allow_domains.empty()) inert.push_back("allow_domains");
    if (!net.deny_domains.empty()) inert.push_back("deny_domains");
    if (!net.allow_cidrs.empty()) inert.push_back("allow_cidrs");
    if (!net.deny_cidrs.empty()) inert.push_back("deny_cidrs");
    if (!net.publish.empty()) inert.push_back("publish");
    if (!net.host_ports.empty()) inert.push_back("host_ports");
    if (!inert.empty()) {
      warnings.push_back(fmt::format(
          "network mode \"host\" shares the host's network, so {} {} not enforced (private "
          "ranges and 169.254.169.254 are reachable); use --net filtered to enforce them",
          fmt::join(inert, ", "), inert.size() == 1 ? "is" : "are"));
    }
  } else if (net.mode == NetworkMode::none && has_allow && inert_none_lists) {
    warnings.push_back(
        "network mode \"none\" has no network, so allow_domains/allow_cidrs have no effect; use "
        "--net filtered to reach the allowed hosts");
  }
  return warnings;
}

}  // namespace

std::vector<std::string> validate(const Policy& p) {
  return check_policy(p, true);
}

std::vector<std::string> validate(const Policy& p, const Overrides& overrides) {
  // `--net none` alone chose no network on purpose: the profile's allow
  // lists going unused is what was asked for, not a mistake to warn about
  // (an --allow-domain/--allow-cidr beside it still is). It also hides a
  // profile of mode "none" that lists allowed hosts: the flag says the same.
  const bool chose_none = overrides.network.has_value() && p.network.mode == NetworkMode::none &&
                          overrides.allow_domains.empty() && overrides.allow_cidrs.empty();
  return check_policy(p, !chose_none);
}

Policy resolve(std::string_view name_or_file, const Overrides& overrides, const Environment& env,
               std::vector<std::string>* warnings) {
  Policy policy = load_profile(name_or_file, env);
  apply_overrides(policy, overrides, env);
  auto found = validate(policy, overrides);
  if (warnings) warnings->insert(warnings->end(), found.begin(), found.end());
  return policy;
}

}  // namespace sbx::profiles
