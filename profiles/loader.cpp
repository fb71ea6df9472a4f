// Profile files: TOML -> Policy. Every key is applied onto the Policy built
// so far (parents first): lists append, scalars override. Every error names
// FILE:LINE:COL from toml++'s source regions.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

// ------------------------------------------------------------ locations

std::string where(std::string_view origin, const toml::source_region& region) {
  return fmt::format("{}:{}:{}", origin, region.begin.line, region.begin.column);
}

[[noreturn]] void fail_at(std::string_view origin, const toml::source_region& region,
                          std::string_view message, std::string fix) {
  throw ProfileError(fmt::format("{}: {}", where(origin, region), message), std::move(fix));
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest candidate, if it is close enough to be a typo.
std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

// ---------------------------------------------------------------- schema

// One key of a section: how to apply its value onto the Policy.
struct Context;
using Apply = std::function<void(Context&, const toml::node&)>;
struct Section {
  std::string name;  // "" for the top level, "process.env" for sub-tables
  std::vector<std::pair<std::string, Apply>> keys;
};

struct Context {
  Policy& policy;
  const Environment& env;
  std::string origin;
  std::string section;  // "network"
  std::string key;      // "allow_ports"

  std::string key_path() const { return section.empty() ? key : section + "." + key; }

  [[noreturn]] void fail(const toml::node& node, std::string_view message, std::string fix) const {
    fail_at(origin, node.source(), fmt::format("{}: {}", key_path(), message), std::move(fix));
  }

  // Runs a value parser; its ProfileError gets this node's location and key.
  template <typename F>
  auto at(const toml::node& node, F&& parse) const -> decltype(parse()) {
    try {
      return parse();
    } catch (const ProfileError& e) {
      fail(node, e.what(), e.fix());
    }
  }
};

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

[[noreturn]] void type_error(Context& c, const toml::node& node, std::string_view want,
                             const std::string& example) {
  c.fail(node, fmt::format("expected {}, found {}", want, type_name(node)),
         fmt::format("write e.g. {} = {}", c.key, example));
}

std::string get_string(Context& c, const toml::node& node, const std::string& example = "\"...\"") {
  if (!node.is_string()) type_error(c, node, "a string", example);
  return std::string(node.as_string()->get());
}

bool get_bool(Context& c, const toml::node& node) {
  if (!node.is_boolean()) type_error(c, node, "a boolean", "true");
  return node.as_boolean()->get();
}

// Calls each(element) for an array of strings.
void for_each_string(Context& c, const toml::node& node, const std::string& example,
                     const std::function<void(const std::string&, const toml::node&)>& each) {
  if (!node.is_array()) type_error(c, node, "an array of strings", "[" + example + "]");
  for (const toml::node& element : *node.as_array()) {
    if (!element.is_string()) type_error(c, element, "an array of strings", "[" + example + "]");
    each(std::string(element.as_string()->get()), element);
  }
}

template <typename T>
void append_unique(std::vector<T>& list, T value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

// For entries keyed by a path (tmpfs mounts, agent state): a later layer
// that declares the same path again replaces the entry; it wins.
template <typename T>
void replace_or_append_by_path(std::vector<T>& list, const T& entry) {
  auto same = std::find_if(list.begin(), list.end(),
                           [&](const T& other) { return other.path == entry.path; });
  if (same != list.end()) {
    *same = entry;
  } else {
    list.push_back(entry);
  }
}

Apply string_list(std::function<std::vector<std::string>&(Policy&)> field,
                  std::function<std::string(Context&, const std::string&, const toml::node&)> parse,
                  std::string example) {
  return [field = std::move(field), parse = std::move(parse), example = std::move(example)](
             Context& c, const toml::node& node) {
    for_each_string(c, node, example, [&](const std::string& raw, const toml::node& element) {
      append_unique(field(c.policy), parse(c, raw, element));
    });
  };
}

Apply path_list(std::function<std::vector<std::string>&(Policy&)> field) {
  return string_list(
      std::move(field),
      [](Context& c, const std::string& raw, const toml::node& element) {
        return c.at(element, [&] { return expand_path(raw, c.env); });
      },
      "\"~/.cache\"");
}

Apply port_list(const std::function<std::vector<std::uint16_t>&(Policy&)>& field) {
  return [field](Context& c, const toml::node& node) {
    if (!node.is_array()) type_error(c, node, "an array of port numbers", "[443]");
    for (const toml::node& element : *node.as_array()) {
      if (!element.is_integer()) type_error(c, element, "an array of port numbers", "[443]");
      append_unique(field(c.policy),
                    c.at(element, [&] { return check_port(element.as_integer()->get()); }));
    }
  };
}

template <typename E>
Apply enum_key(std::function<E&(Policy&)> field, std::vector<std::pair<std::string, E>> values) {
  return [field, values](Context& c, const toml::node& node) {
    std::vector<std::string> names;
    names.reserve(values.size());
    for (const auto& [name, value] : values) names.push_back(name);
    std::string all = fmt::format("\"{}\"", fmt::join(names, "\", \""));
    std::string text = get_string(c, node, "\"" + names.front() + "\"");
    for (const auto& [name, value] : values) {
      if (name == text) {
        field(c.policy) = value;
        return;
      }
    }
    auto guess = closest(text, names);
    c.fail(node, fmt::format("invalid value \"{}\"", text),
           guess ? fmt::format("did you mean \"{}\"? (one of {})", *guess, all)
                 : fmt::format("use one of {}", all));
  };
}

// A size string, or "unlimited" when `field` is optional.
std::uint64_t get_size(Context& c, const toml::node& node) {
  if (node.is_integer()) {
    c.fail(node, "a size needs a unit",
           fmt::format("write it as a string, e.g. {} = \"{}M\"", c.key, node.as_integer()->get()));
  }
  std::string text = get_string(c, node, "\"512M\"");
  return c.at(node, [&] { return parse_size(text); });
}

Apply optional_size(const std::function<std::optional<std::uint64_t>&(Policy&)>& field,
                    bool allow_zero) {
  return [field, allow_zero](Context& c, const toml::node& node) {
    if (node.is_string() && node.as_string()->get() == "unlimited") {
      field(c.policy).reset();
      return;
    }
    std::uint64_t bytes = get_size(c, node);
    if (bytes == 0 && !allow_zero)
      c.fail(node, "must be above 0", "write \"unlimited\" for no limit");
    field(c.policy) = bytes;
  };
}

std::chrono::milliseconds get_duration(Context& c, const toml::node& node) {
  if (node.is_integer()) {
    c.fail(node, "a duration needs a unit",
           fmt::format("write it as a string, e.g. {} = \"{}s\"", c.key, node.as_integer()->get()));
  }
  std::string text = get_string(c, node, "\"15m\"");
  return c.at(node, [&] { return parse_duration(text); });
}

// rlimit: a count (or size for core/fsize) or "inherit" (leave the host's).
Apply rlimit(const std::function<std::optional<std::uint64_t>&(Policy&)>& field, bool is_size) {
  return [field, is_size](Context& c, const toml::node& node) {
    if (node.is_string() && node.as_string()->get() == "inherit") {
      field(c.policy).reset();
    } else if (node.is_integer()) {
      if (node.as_integer()->get() < 0)
        c.fail(node, "must be 0 or more", "write \"inherit\" to keep the host's limit");
      field(c.policy) = static_cast<std::uint64_t>(node.as_integer()->get());
    } else if (is_size && node.is_string()) {
      field(c.policy) = get_size(c, node);
    } else {
      type_error(c, node,
                 is_size ? "an integer, a size or \"inherit\"" : "an integer or \"inherit\"",
                 is_size ? "\"1G\"" : "1024");
    }
  };
}

std::uint32_t get_id(Context& c, const toml::node& node) {
  if (!node.is_integer()) type_error(c, node, "an integer", "1000");
  std::int64_t v = node.as_integer()->get();
  if (v < 0 || v > 4294967294) c.fail(node, fmt::format("invalid id {}", v), "use 0 to 4294967294");
  return static_cast<std::uint32_t>(v);
}

void check_hostname(Context& c, const toml::node& node, const std::string& name) {
  bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '-' || ch == '.';
      });
  if (!ok)
    c.fail(node, fmt::format("invalid host name \"{}\"", name),
           "use up to 64 letters, digits, '-' and '.'");
}

// Where the schema lives: one Section per table. Built once.
const std::vector<Section>& schema();
const Section& section_named(std::string_view name);

Apply subtable(const std::string& name);

std::vector<Section> build_schema() {
  using P = Policy;
  std::vector<Section> s;

  s.push_back(
      {"",
       {
           {"description",
            [](Context& c, const toml::node& n) { c.policy.description = get_string(c, n); }},
           {"extends", nullptr},  // handled by the loader before the other keys
           {"name",
            [](Context& c, const toml::node& n) { c.policy.name = get_string(c, n, "\"build\""); }},
           {"filesystem", subtable("filesystem")},
           {"network", subtable("network")},
           {"process", subtable("process")},
           {"limits", subtable("limits")},
           {"audit", subtable("audit")},
       }});

  s.push_back(
      {"filesystem",
       {
           {"workdir",
            [](Context& c, const toml::node& n) {
              std::string raw = get_string(c, n, "\"$CWD\"");
              c.policy.filesystem.workdir =
                  raw.empty() ? "" : c.at(n, [&] { return expand_path(raw, c.env); });
            }},
           {"workdir_writable",
            [](Context& c, const toml::node& n) {
              c.policy.filesystem.workdir_writable = get_bool(c, n);
            }},
           {"writable", path_list([](P & p) -> auto& { return p.filesystem.allow_write; })},
           {"read_only", path_list([](P & p) -> auto& { return p.filesystem.deny_write; })},
           {"hidden", path_list([](P & p) -> auto& { return p.filesystem.deny_read; })},
           {"visible", path_list([](P & p) -> auto& { return p.filesystem.allow_read; })},
           {"unix_sockets",
            path_list([](P & p) -> auto& { return p.filesystem.allow_unix_sockets; })},
           {"state",
            [](Context& c, const toml::node& n) {
              const std::string example =
                  "[\"~/.agent/\", { path = \"~/.agent.json\", content = \"{}\" }]";
              if (!n.is_array()) type_error(c, n, "an array", example);
              for (const toml::node& e : *n.as_array()) {
                StatePath state;
                std::string raw;
                std::optional<std::string> type;
                if (e.is_string()) {
                  raw = e.as_string()->get();
                } else if (e.is_table()) {
                  // { path = "~/.agent.json", type = "file", content = "{}" }
                  for (auto&& [k, v] : *e.as_table()) {
                    if (!v.is_string()) type_error(c, v, "a string", example);
                    std::string val(v.as_string()->get());
                    if (k.str() == "path") {
                      raw = val;
                    } else if (k.str() == "type") {
                      if (val != "dir" && val != "file")
                        fail_at(c.origin, v.source(),
                                fmt::format("{}: invalid type \"{}\"", c.key_path(), val),
                                "use type = \"dir\" or type = \"file\"");
                      type = val;
                    } else if (k.str() == "content") {
                      state.initial_content = val;
                    } else {
                      fail_at(c.origin, k.source(),
                              fmt::format("{}: unknown state key '{}'", c.key_path(), k.str()),
                              "a state table has the keys path, type and content");
                    }
                  }
                  if (raw.empty())
                    c.fail(e, "a state table needs a path",
                           "write { path = \"~/.agent.json\", content = \"{}\" }");
                } else {
                  type_error(c, e, "a string or a table", example);
                }
                // A trailing slash names a directory, as in `mkdir DIR/`.
                state.directory = type ? *type == "dir" : raw.back() == '/';
                if (state.directory && !state.initial_content.empty())
                  c.fail(e, fmt::format("'{}' is a directory and cannot have content", raw),
                         "drop content, or declare a file (no trailing slash, type = \"file\")");
                state.path = c.at(e, [&] { return expand_path(raw, c.env); });
                if (state.path == "/")
                  c.fail(e, "state path resolves to /", "name the agent's own file or directory");
                replace_or_append_by_path(c.policy.filesystem.state, state);
              }
            }},
           {"tmp_size",
            [](Context& c, const toml::node& n) {
              std::uint64_t bytes = get_size(c, n);
              if (bytes == 0) c.fail(n, "must be above 0", "write e.g. tmp_size = \"512M\"");
              c.policy.filesystem.tmp_size_bytes = bytes;
            }},
           {"tmpfs",
            [](Context& c, const toml::node& n) {
              const std::string example = "[\"/scratch:size=1G,mode=0700\"]";
              if (!n.is_array()) type_error(c, n, "an array", example);
              for (const toml::node& e : *n.as_array()) {
                TmpfsMount mount;
                if (e.is_string()) {
                  mount = c.at(e, [&] { return parse_tmpfs(e.as_string()->get(), c.env); });
                } else if (e.is_table()) {
                  // { path = "/x", size = "1G", mode = "0700" }
                  std::string spec;
                  for (auto&& [k, v] : *e.as_table()) {
                    if (!v.is_string()) type_error(c, v, "a string", example);
                    std::string val(v.as_string()->get());
                    if (k.str() == "path") {
                      spec.insert(0, val);
                    } else if (k.str() == "size" || k.str() == "mode") {
                      spec += fmt::format(
                          "{}{}={}", spec.find(':') == std::string::npos ? ":" : ",", k.str(), val);
                    } else {
                      fail_at(c.origin, k.source(),
                              fmt::format("{}: unknown tmpfs key '{}'", c.key_path(), k.str()),
                              "a tmpfs table has the keys path, size and mode");
                    }
                  }
                  if (!e.as_table()->contains("path")) {
                    c.fail(e, "a tmpfs table needs a path",
                           "write { path = \"/scratch\", size = \"1G\" }");
                  }
                  mount = c.at(e, [&] { return parse_tmpfs(spec, c.env); });
                } else {
                  type_error(c, e, "a string or a table", example);
                }
                replace_or_append_by_path(c.policy.filesystem.tmpfs, mount);
              }
            }},
       }});

  s.push_back(
      {"network",
       {
           {"mode", enum_key<NetworkMode>([](P & p) -> auto& { return p.network.mode; },
                                          {{"none", NetworkMode::none},
                                           {"filtered", NetworkMode::filtered},
                                           {"host", NetworkMode::host}})},
           {"allow_domains", string_list(
                                 [](P & p) -> auto& { return p.network.allow_domains; },
                                 [](Context& c, const std::string& raw, const toml::node& e) {
                                   return c.at(e, [&] {
                                     return normalize_domain_pattern(raw, DomainList::allow);
                                   });
                                 },
                                 "\"*.example.com\"")},
           {"deny_domains", string_list(
                                [](P & p) -> auto& { return p.network.deny_domains; },
                                [](Context& c, const std::string& raw, const toml::node& e) {
                                  return c.at(e, [&] {
                                    return normalize_domain_pattern(raw, DomainList::deny);
                                  });
                                },
                                "\"pastebin.com\"")},
           {"allow_cidrs", string_list(
                               [](P & p) -> auto& { return p.network.allow_cidrs; },
                               [](Context& c, const std::string& raw, const toml::node& e) {
                                 return c.at(e, [&] { return parse_cidr(raw); });
                               },
                               "\"203.0.113.0/24\"")},
           {"deny_cidrs", string_list(
                              [](P & p) -> auto& { return p.network.deny_cidrs; },
                              [](Context& c, const std::string& raw, const toml::node& e) {
                                return c.at(e, [&] { return parse_cidr(raw); });
                              },
                              "\"10.0.0.0/8\"")},
           {"allow_ports", port_list([](P & p) -> auto& { return p.network.allow_ports; })},
           {"opaque_ports", port_list([](P & p) -> auto& { return p.network.opaque_ports; })},
           {"host_ports", port_list([](P & p) -> auto& { return p.network.host_ports; })},
           {"dns_upstream", string_list(
                                [](P & p) -> auto& { return p.network.dns_upstream; },
                                [](Context& c, const std::string& raw, const toml::node& e) {
                                  return c.at(e, [&] { return parse_dns_upstream(raw); });
                                },
                                "\"1.1.1.1\"")},
           {"dns_refusal",
            enum_key<DnsRefusal>(
                [](P & p) -> auto& { return p.network.dns_refusal; },
                {{"refused", DnsRefusal::refused}, {"nxdomain", DnsRefusal::nxdomain}})},
           {"dns_min_ttl",
            [](Context& c, const toml::node& n) {
              auto d = get_duration(c, n);
              if (d < std::chrono::seconds(1) || d > std::chrono::hours(1) || d.count() % 1000)
                c.fail(n, fmt::format("invalid dns_min_ttl '{}'", format_duration(d)),
                       "use whole seconds from \"1s\" to \"1h\" (default \"30s\")");
              c.policy.network.dns_min_ttl = d;
            }},
           {"dns_ttl_grace",
            [](Context& c, const toml::node& n) {
              auto d = get_duration(c, n);
              if (d > std::chrono::hours(1) || d.count() % 1000)
                c.fail(n, fmt::format("invalid dns_ttl_grace '{}'", format_duration(d)),
                       "use whole seconds from \"0s\" to \"1h\" (default \"10s\")");
              c.policy.network.dns_ttl_grace = d;
            }},
           {"dns_query_rate",
            [](Context& c, const toml::node& n) {
              if (!n.is_integer()) type_error(c, n, "an integer (queries per second)", "200");
              std::int64_t v = n.as_integer()->get();
              if (v < 1 || v > 1'000'000)
                c.fail(n, fmt::format("invalid dns_query_rate {}", v),
                       "use 1 to 1000000 queries per second (default 200)");
              c.policy.network.dns_query_rate = static_cast<std::uint32_t>(v);
            }},
           {"publish",
            [](Context& c, const toml::node& n) {
              for_each_string(c, n, "\"8080:3000\"",
                              [&](const std::string& raw, const toml::node& e) {
                                append_unique(c.policy.network.publish,
                                              c.at(e, [&] { return parse_publish(raw); }));
                              });
            }},
       }});

  s.push_back(
      {"process",
       {
           {"seccomp",
            [](Context& c, const toml::node& n) {
              if (n.is_table()) {
                subtable("process.seccomp")(c, n);
              } else {
                // Short form: seccomp = "strict"
                section_named("process.seccomp").keys.front().second(c, n);
              }
            }},
           {"landlock", enum_key<LandlockMode>([](P & p) -> auto& { return p.process.landlock; },
                                               {{"best-effort", LandlockMode::best_effort},
                                                {"required", LandlockMode::required},
                                                {"off", LandlockMode::off}})},
           {"env", subtable("process.env")},
           {"rlimits", subtable("process.rlimits")},
           {"uid", [](Context& c, const toml::node& n) { c.policy.process.uid = get_id(c, n); }},
           {"gid", [](Context& c, const toml::node& n) { c.policy.process.gid = get_id(c, n); }},
           {"tty", enum_key<TtyMode>([](P & p) -> auto& { return p.process.tty; },
                                     {{"auto", TtyMode::automatic},
                                      {"always", TtyMode::always},
                                      {"never", TtyMode::never}})},
           {"hostname",
            [](Context& c, const toml::node& n) {
              std::string name = get_string(c, n, "\"sbx\"");
              check_hostname(c, n, name);
              c.policy.process.hostname = name;
            }},
       }});

  s.push_back(
      {"limits",
       {
           {"memory", optional_size(
                          [](P & p) -> auto& { return p.limits.memory_bytes; }, false)},
           {"swap", optional_size(
                        [](P & p) -> auto& { return p.limits.swap_bytes; }, true)},
           {"cpus",
            [](Context& c, const toml::node& n) {
              if (n.is_string() && n.as_string()->get() == "unlimited") {
                c.policy.limits.cpus.reset();
                return;
              }
              double v;
              if (n.is_integer()) {
                v = static_cast<double>(n.as_integer()->get());
              } else if (n.is_floating_point()) {
                v = n.as_floating_point()->get();
              } else {
                type_error(c, n, "a number or \"unlimited\"", "2.5");
              }
              if (!(v >= 0.01 && v <= 4096)) {
                c.fail(n, fmt::format("invalid CPU count {}", v),
                       "use a number from 0.01 to 4096, or \"unlimited\"");
              }
              c.policy.limits.cpus = v;
            }},
           {"pids",
            [](Context& c, const toml::node& n) {
              if (n.is_string() && n.as_string()->get() == "unlimited") {
                c.policy.limits.pids.reset();
                return;
              }
              if (!n.is_integer()) type_error(c, n, "an integer or \"unlimited\"", "512");
              std::int64_t v = n.as_integer()->get();
              if (v < 1)
                c.fail(n, fmt::format("invalid process count {}", v),
                       "use 1 or more, or \"unlimited\"");
              c.policy.limits.pids = static_cast<std::uint64_t>(v);
            }},
           {"timeout",
            [](Context& c, const toml::node& n) {
              if (n.is_string() && n.as_string()->get() == "unlimited") {
                c.policy.limits.timeout.reset();
                return;
              }
              auto d = get_duration(c, n);
              if (d.count() == 0)
                c.fail(n, "must be above 0", "write \"unlimited\" for no time limit");
              c.policy.limits.timeout = d;
            }},
           {"kill_after",
            [](Context& c, const toml::node& n) {
              c.policy.limits.kill_after = get_duration(c, n);
            }},
           {"required",
            [](Context& c, const toml::node& n) { c.policy.limits.required = get_bool(c, n); }},
       }});

  // The short form `seccomp = "strict"` reuses "mode", which must stay first.
  s.push_back({"process.seccomp",
               {
                   {"mode", enum_key<SeccompMode>([](P & p) -> auto& { return p.process.seccomp; },
                                                  {{"default", SeccompMode::default_policy},
                                                   {"strict", SeccompMode::strict},
                                                   {"none", SeccompMode::none}})},
                   {"allow", string_list(
                                 [](P & p) -> auto& { return p.process.seccomp_allow; },
                                 [](Context& c, const std::string& raw, const toml::node& e) {
                                   c.at(e, [&] { check_syscall_name(raw); });
                                   return raw;
                                 },
                                 "\"ptrace\"")},
                   {"deny", string_list(
                                [](P & p) -> auto& { return p.process.seccomp_deny; },
                                [](Context& c, const std::string& raw, const toml::node& e) {
                                  c.at(e, [&] { check_syscall_name(raw); });
                                  return raw;
                                },
                                "\"@mount\"")},
               }});

  s.push_back({"process.env",
               {
                   {"keep", string_list(
                                [](P & p) -> auto& { return p.process.env_keep; },
                                [](Context& c, const std::string& raw, const toml::node& e) {
                                  c.at(e, [&] { check_env_name(raw, true); });
                                  return raw;
                                },
                                "\"LANG\"")},
                   {"set",
                    [](Context& c, const toml::node& n) {
                      if (!n.is_table()) type_error(c, n, "a table", "{ EDITOR = \"vi\" }");
                      for (auto&& [k, v] : *n.as_table()) {
                        try {
                          check_env_name(k.str(), false);
                        } catch (const ProfileError& e) {
                          fail_at(c.origin, k.source(),
                                  fmt::format("{}: {}", c.key_path(), e.what()), e.fix());
                        }
                        if (!v.is_string())
                          type_error(c, v, "a string value", "{ EDITOR = \"vi\" }");
                        c.policy.process.env_set[std::string(k.str())] =
                            std::string(v.as_string()->get());
                      }
                    }},
               }});

  s.push_back({"process.rlimits",
               {
                   {"nofile", rlimit(
                                  [](P & p) -> auto& { return p.process.rlimits.nofile; }, false)},
                   {"nproc", rlimit(
                                 [](P & p) -> auto& { return p.process.rlimits.nproc; }, false)},
                   {"core", rlimit(
                                [](P & p) -> auto& { return p.process.rlimits.core; }, true)},
                   {"fsize", rlimit(
                                 [](P & p) -> auto& { return p.process.rlimits.fsize; }, true)},
               }});

  s.push_back({"audit",
               {
                   {"log",
                    [](Context& c, const toml::node& n) {
                      std::string raw = get_string(c, n, "\"~/sbx-audit.jsonl\"");
                      c.policy.audit.log =
                          raw.empty() ? "" : c.at(n, [&] { return expand_path(raw, c.env); });
                    }},
                   {"level", enum_key<AuditLevel>([](P & p) -> auto& { return p.audit.level; },
                                                  {{"minimal", AuditLevel::minimal},
                                                   {"standard", AuditLevel::standard},
                                                   {"verbose", AuditLevel::verbose}})},
                   {"report",
                    [](Context& c, const toml::node& n) {
                      std::string raw = get_string(c, n, "\"-\"");
                      c.policy.audit.report = (raw.empty() || raw == "-") ? raw : c.at(n, [&] {
                        return expand_path(raw, c.env);
                      });
                    }},
                   {"max_size",
                    [](Context& c, const toml::node& n) {
                      std::uint64_t bytes = get_size(c, n);
                      if (bytes == 0) c.fail(n, "must be above 0", "write e.g. max_size = \"64M\"");
                      c.policy.audit.max_size_bytes = bytes;
                    }},
               }});
  return s;
}

const std::vector<Section>& schema() {
  static const std::vector<Section> sections = build_schema();
  return sections;
}

const Section& section_named(std::string_view name) {
  for (const auto& s : schema()) {
    if (s.name == name) return s;
  }
  throw std::logic_error("profiles: no schema section " + std::string(name));
}

std::string display_section(std::string_view name) {
  return name.empty() ? "the top level" : fmt::format("[{}]", name);
}

// Applies every key of `table` as section `name`.
void apply_section(Context& c, const toml::table& table, const std::string& name) {
  const Section& section = section_named(name);
  for (auto&& [k, v] : table) {
    const std::string key(k.str());
    auto it = std::find_if(section.keys.begin(), section.keys.end(),
                           [&](const auto& entry) { return entry.first == key; });
    if (it == section.keys.end()) {
      // A typo of a key here, or a key that belongs to another section?
      std::vector<std::string> names;
      for (const auto& entry : section.keys) names.push_back(entry.first);
      std::string fix;
      if (auto guess = closest(key, names)) {
        fix = fmt::format("did you mean '{}'?", *guess);
      } else {
        for (const auto& other : schema()) {
          for (const auto& entry : other.keys) {
            if (entry.first == key && other.name != name && !other.name.empty()) {
              fix = fmt::format("did you mean '{}' in [{}]?", key, other.name);
            }
          }
        }
      }
      if (fix.empty())
        fix = fmt::format("remove it; the keys of {} are: {}", display_section(name),
                          fmt::join(names, ", "));
      fail_at(c.origin, k.source(),
              fmt::format("unknown key '{}' in {}", key, display_section(name)), fix);
    }
    if (!it->second) continue;  // `extends`, handled by the loader
    Context sub{c.policy, c.env, c.origin, name, key};
    it->second(sub, v);
  }
}

Apply subtable(const std::string& name) {
  return [name](Context& c, const toml::node& node) {
    if (!node.is_table()) {
      fail_at(c.origin, node.source(),
              fmt::format("{} must be a table, found {}", c.key_path(), type_name(node)),
              fmt::format("write it as a section: [{}]", name));
    }
    apply_section(c, *node.as_table(), name);
  };
}

// ---------------------------------------------------------------- loader

class Loader {
 public:
  explicit Loader(const Environment& env) : env_(env) {}

  // Applies the profile `text` (and, first, the profile it extends) onto policy.
  void apply(Policy& policy, std::string_view text, const std::string& origin,
             const std::string& id, const std::string& dir) {
    if (std::find(chain_.begin(), chain_.end(), id) != chain_.end()) {
      chain_.push_back(id);
      throw ProfileError(fmt::format("profile extends itself: {}", fmt::join(chain_, " -> ")),
                         "remove one `extends` from the cycle");
    }
    if (chain_.size() >= 16) {
      throw ProfileError(fmt::format("{}: `extends` chain is deeper than 16 profiles", origin),
                         "flatten the chain");
    }
    chain_.push_back(id);
    toml::table table;
    try {
      table = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
      fail_at(origin, e.source(), fmt::format("invalid TOML: {}", e.description()),
              "fix the TOML syntax (https://toml.io)");
    }
    if (const toml::node* ext = table.get("extends")) {
      if (!ext->is_string()) {
        fail_at(origin, ext->source(),
                fmt::format("extends: expected a string, found {}", type_name(*ext)),
                "write extends = \"base\" or extends = \"./parent.toml\"");
      }
      apply_parent(policy, std::string(ext->as_string()->get()), origin, dir, *ext);
    }
    Context c{policy, env_, origin, "", ""};
    apply_section(c, table, "");
    chain_.pop_back();
  }

 private:
  void apply_parent(Policy& policy, const std::string& parent, const std::string& origin,
                    const std::string& dir, const toml::node& where_node) {
    std::string name = parent;
    if (names_a_file(parent)) {
      std::filesystem::path p(parent);
      if (p.is_relative() && !dir.empty()) p = std::filesystem::path(dir) / p;
      name = p.lexically_normal().string();
    }
    ProfileSource src;
    try {
      src = find_profile(name);
    } catch (const ProfileError& e) {
      fail_at(origin, where_node.source(), fmt::format("extends: {}", e.what()), e.fix());
    }
    std::string id = src.builtin ? src.origin : canonical_id(src.origin);
    apply(policy, src.text, src.origin, id, src.dir);
  }

  static std::string canonical_id(const std::string& path) {
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(path, ec);
    return ec ? path : canon.string();
  }

  const Environment& env_;
  std::vector<std::string> chain_;
};

}  // namespace

Policy load_profile_text(std::string_view text, std::string_view name, std::string_view origin,
                         const Environment& env, std::string_view dir) {
  Policy policy;
  Loader loader(env);
  // Cycle detection compares canonical file paths (or "builtin:NAME").
  std::string id(origin);
  if (!origin.starts_with("builtin:")) {
    std::error_code ec;
    auto canon = std::filesystem::weakly_canonical(std::string(origin), ec);
    if (!ec) id = canon.string();
  }
  loader.apply(policy, text, std::string(origin), id, std::string(dir));
  // State is writable. One list (allow_write) says what the sandbox may
  // write, for the mounts, Landlock and the report; appended after the whole
  // chain so that a printed profile reads back to the same order.
  for (const auto& state : policy.filesystem.state)
    append_unique(policy.filesystem.allow_write, state.path);
  policy.profile = std::string(name);
  return policy;
}

Policy load_profile(std::string_view name_or_file, const Environment& env) {
  ProfileSource src = find_profile(name_or_file);
  return load_profile_text(src.text, src.name, src.origin, env, src.dir);
}

}  // namespace sbx::profiles

namespace sbx::profiles {
namespace {

nlohmann::json node_to_json(const toml::node& node) {
  if (const auto* t = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto&& [k, v] : *t) out[std::string(k.str())] = node_to_json(v);
    return out;
  }
  if (const auto* a = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : *a) out.push_back(node_to_json(v));
    return out;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* f = node.as_floating_point()) return f->get();
  if (const auto* b = node.as_boolean()) return b->get();
  // Dates and times: their TOML spelling.
  std::ostringstream text;
  node.visit([&](auto&& v) {
    if constexpr (toml::is_date<decltype(v)> || toml::is_time<decltype(v)> ||
                  toml::is_date_time<decltype(v)>) {
      text << v;
    }
  });
  return text.str();
}

toml::table parse_or_throw(std::string_view text, std::string_view origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    fail_at(origin, e.source(), fmt::format("invalid TOML: {}", e.description()),
            "fix the TOML syntax (https://toml.io)");
  }
}

}  // namespace

std::string read_description(std::string_view toml_text) {
  try {
    auto table = toml::parse(toml_text);
    return std::string(table["description"].value_or(std::string_view{}));
  } catch (const toml::parse_error&) {
    return {};
  }
}

nlohmann::json profile_text_to_json(std::string_view toml_text, std::string_view origin) {
  return node_to_json(parse_or_throw(toml_text, origin));
}

}  // namespace sbx::profiles
