// Printing a Policy: as a stand-alone TOML profile (every key written, so it
// parses back to an equal Policy) and as JSON (numbers in bytes and ms).
#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

namespace {

class TomlWriter {
 public:
  void section(std::string_view name) { out_ += fmt::format("\n[{}]\n", name); }
  void comment(std::string_view text) { out_ += fmt::format("# {}\n", text); }
  void raw(std::string_view key, std::string_view value) {
    out_ += fmt::format("{} = {}\n", key, value);
  }
  void str(std::string_view key, std::string_view value) { raw(key, toml_quote(value)); }
  void boolean(std::string_view key, bool value) { raw(key, value ? "true" : "false"); }
  template <typename T, typename F>
  void list(std::string_view key, const std::vector<T>& items, F&& render) {
    if (items.empty()) {
      raw(key, "[]");
      return;
    }
    out_ += fmt::format("{} = [\n", key);
    for (const auto& item : items) out_ += fmt::format("  {},\n", render(item));
    out_ += "]\n";
  }
  void strings(std::string_view key, const std::vector<std::string>& items) {
    list(key, items, [](const std::string& s) { return toml_quote(s); });
  }
  void ports(std::string_view key, const std::vector<std::uint16_t>& items) {
    list(key, items, [](std::uint16_t p) { return std::to_string(p); });
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string size_or_unlimited(const std::optional<std::uint64_t>& v) {
  return toml_quote(v ? format_size(*v) : "unlimited");
}

std::string rlimit_value(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : toml_quote("inherit");
}

}  // namespace

std::string to_toml(const Policy& p) {
  TomlWriter w;
  w.comment(
      fmt::format("sbx profile \"{}\", resolved: stand-alone, every key written.", p.profile));
  w.comment("Keys: docs/profiles.md");
  w.str("description", p.description);
  w.str("name", p.name);

  const auto& fs = p.filesystem;
  w.section("filesystem");
  w.str("workdir", fs.workdir);
  w.boolean("workdir_writable", fs.workdir_writable);
  w.strings("writable", fs.allow_write);
  w.strings("read_only", fs.deny_write);
  w.strings("hidden", fs.deny_read);
  w.strings("visible", fs.allow_read);
  w.list("tmpfs", fs.tmpfs, [](const TmpfsMount& m) {
    return fmt::format("{{ path = {}, size = {}, mode = {} }}", toml_quote(m.path),
                       toml_quote(format_size(m.size_bytes)),
                       toml_quote(fmt::format("{:04o}", m.mode)));
  });
  w.raw("tmp_size", toml_quote(format_size(fs.tmp_size_bytes)));
  w.strings("unix_sockets", fs.allow_unix_sockets);
  w.list("state", fs.state, [](const StatePath& st) {
    if (st.directory) return fmt::format("{{ path = {}, type = \"dir\" }}", toml_quote(st.path));
    return fmt::format("{{ path = {}, type = \"file\", content = {} }}", toml_quote(st.path),
                       toml_quote(st.initial_content));
  });

  const auto& net = p.network;
  w.section("network");
  w.str("mode", to_string(net.mode));
  w.strings("allow_domains", net.allow_domains);
  w.strings("deny_domains", net.deny_domains);
  w.strings("allow_cidrs", net.allow_cidrs);
  w.strings("deny_cidrs", net.deny_cidrs);
  w.ports("allow_ports", net.allow_ports);
  w.ports("opaque_ports", net.opaque_ports);
  w.strings("dns_upstream", net.dns_upstream);
  w.str("dns_refusal", to_string(net.dns_refusal));
  w.raw("dns_min_ttl", toml_quote(format_duration(net.dns_min_ttl)));
  w.raw("dns_ttl_grace", toml_quote(format_duration(net.dns_ttl_grace)));
  w.raw("dns_query_rate", std::to_string(net.dns_query_rate));
  w.list("publish", net.publish, [](const PublishedPort& pp) {
    return toml_quote(fmt::format("{}:{}", pp.host_port, pp.sandbox_port));
  });
  w.ports("host_ports", net.host_ports);

  const auto& proc = p.process;
  w.section("process");
  w.str("landlock", to_string(proc.landlock));
  if (proc.uid) w.raw("uid", std::to_string(*proc.uid));
  if (proc.gid) w.raw("gid", std::to_string(*proc.gid));
  w.str("tty", to_string(proc.tty));
  w.str("hostname", proc.hostname);
  w.section("process.seccomp");
  w.str("mode", to_string(proc.seccomp));
  w.strings("allow", proc.seccomp_allow);
  w.strings("deny", proc.seccomp_deny);
  w.section("process.env");
  w.strings("keep", proc.env_keep);
  w.section("process.env.set");
  for (const auto& [k, v] : proc.env_set) w.str(k, v);
  w.section("process.rlimits");
  w.raw("nofile", rlimit_value(proc.rlimits.nofile));
  w.raw("nproc", rlimit_value(proc.rlimits.nproc));
  w.raw("core", rlimit_value(proc.rlimits.core));
  w.raw("fsize", rlimit_value(proc.rlimits.fsize));

  const auto& lim = p.limits;
  w.section("limits");
  w.raw("memory", size_or_unlimited(lim.memory_bytes));
  w.raw("swap", size_or_unlimited(lim.swap_bytes));
  w.raw("cpus", lim.cpus ? fmt::format("{}", *lim.cpus) : toml_quote("unlimited"));
  w.raw("pids", lim.pids ? std::to_string(*lim.pids) : toml_quote("unlimited"));
  w.raw("timeout", toml_quote(lim.timeout ? format_duration(*lim.timeout) : "unlimited"));
  w.raw("kill_after", toml_quote(format_duration(lim.kill_after)));
  w.boolean("required", lim.required);

  const auto& audit = p.audit;
  w.section("audit");
  w.str("log", audit.log);
  w.str("level", to_string(audit.level));
  w.str("report", audit.report);
  w.raw("max_size", toml_quote(format_size(audit.max_size_bytes)));
  return w.take();
}

nlohmann::json to_json(const Policy& p) {
  using nlohmann::json;
  const auto opt = [](const auto& v) -> json { return v ? json(*v) : json(nullptr); };

  json tmpfs = json::array();
  for (const auto& m : p.filesystem.tmpfs) {
    tmpfs.push_back(
        {{"path", m.path}, {"size_bytes", m.size_bytes}, {"mode", fmt::format("{:04o}", m.mode)}});
  }
  json state = json::array();
  for (const auto& st : p.filesystem.state) {
    json entry = {{"path", st.path}, {"type", st.directory ? "dir" : "file"}};
    if (!st.directory) entry["content"] = st.initial_content;
    state.push_back(entry);
  }
  json publish = json::array();
  for (const auto& pp : p.network.publish) {
    publish.push_back({{"host_port", pp.host_port}, {"sandbox_port", pp.sandbox_port}});
  }
  const auto& fs = p.filesystem;
  const auto& net = p.network;
  const auto& proc = p.process;
  const auto& lim = p.limits;
  json out = {
      {"profile", p.profile},
      {"description", p.description},
      {"name", p.name},
      {"filesystem",
       {{"workdir", fs.workdir},
        {"workdir_writable", fs.workdir_writable},
        {"writable", fs.allow_write},
        {"read_only", fs.deny_write},
        {"hidden", fs.deny_read},
        {"visible", fs.allow_read},
        {"tmpfs", tmpfs},
        {"tmp_size_bytes", fs.tmp_size_bytes},
        {"unix_sockets", fs.allow_unix_sockets},
        {"state", state}}},
      {"network",
       {{"mode", to_string(net.mode)},
        {"allow_domains", net.allow_domains},
        {"deny_domains", net.deny_domains},
        {"allow_cidrs", net.allow_cidrs},
        {"deny_cidrs", net.deny_cidrs},
        {"allow_ports", net.allow_ports},
        {"opaque_ports", net.opaque_ports},
        {"dns_upstream", net.dns_upstream},
        {"dns_refusal", to_string(net.dns_refusal)},
        {"dns_min_ttl", format_duration(net.dns_min_ttl)},
        {"dns_ttl_grace", format_duration(net.dns_ttl_grace)},
        {"dns_query_rate", net.dns_query_rate},
        {"publish", publish},
        {"host_ports", net.host_ports}}},
      {"process",
       {{"seccomp",
         {{"mode", to_string(proc.seccomp)},
          {"allow", proc.seccomp_allow},
          {"deny", proc.seccomp_deny}}},
        {"landlock", to_string(proc.landlock)},
        {"env", {{"keep", proc.env_keep}, {"set", proc.env_set}}},
        {"rlimits",
         {{"nofile", opt(proc.rlimits.nofile)},
          {"nproc", opt(proc.rlimits.nproc)},
          {"core", opt(proc.rlimits.core)},
          {"fsize", opt(proc.rlimits.fsize)}}},
        {"uid", opt(proc.uid)},
        {"gid", opt(proc.gid)},
        {"tty", to_string(proc.tty)},
        {"hostname", proc.hostname}}},
      {"limits",
       {{"memory_bytes", opt(lim.memory_bytes)},
        {"swap_bytes", opt(lim.swap_bytes)},
        {"cpus", opt(lim.cpus)},
        {"pids", opt(lim.pids)},
        {"timeout_ms", lim.timeout ? json(lim.timeout->count()) : json(nullptr)},
        {"kill_after_ms", lim.kill_after.count()},
        {"required", lim.required}}},
      {"audit",
       {{"log", p.audit.log},
        {"level", to_string(p.audit.level)},
        {"report", p.audit.report},
        {"max_size_bytes", p.audit.max_size_bytes}}},
  };
  return out;
}

}  // namespace sbx::profiles
