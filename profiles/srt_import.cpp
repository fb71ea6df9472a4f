// Settings import: Anthropic sandbox-runtime's ~/.srt-settings.json and the
// `sandbox` section of Claude Code's settings.json, mapped onto a Policy
// (docs/settings-import.md has the table). Every key is either mapped or
// reported; nothing is dropped silently. A key or entry that would make
// the sandbox STRICTER and cannot be mapped (a denyRead glob) is an error,
// because dropping it would weaken the sandbox the user asked for; one that
// would make it more PERMISSIVE (allowAllUnixSockets) is a warning and is
// not applied, the safe direction. --strict-import turns warnings into
// errors too.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "profiles/profiles.hpp"

namespace sbx::profiles {
namespace {

using nlohmann::json;

template <typename T>
void append_unique(std::vector<T>& list, T value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

struct Importer {
  Policy& policy;
  const Environment& env;
  std::string origin;
  SettingsImport& report;

  [[noreturn]] void fail(const std::string& key, const std::string& why,
                         const std::string& fix) const {
    throw ProfileError(fmt::format("{}: {}: {}", origin, key, why), fix);
  }
  void unsupported(const std::string& key, const std::string& why) {
    report.unsupported.push_back(fmt::format("{}: {}", key, why));
  }
  void mapped(const std::string& key, const std::string& onto) {
    report.mapped.push_back(fmt::format("{} -> {}", key, onto));
  }

  static bool is_glob(std::string_view path) {
    return path.find_first_of("*?[") != std::string_view::npos;
  }

  // An entry is "PATH" or {"path": "PATH", "literal": true}.
  std::pair<std::string, bool> entry_path(const std::string& key, const json& entry) const {
    if (entry.is_string()) return {entry.get<std::string>(), false};
    if (entry.is_object() && entry.contains("path") && entry["path"].is_string()) {
      for (const auto& [k, v] : entry.items()) {
        if (k != "path" && k != "literal") {
          fail(key, fmt::format("unknown field '{}' in a path entry", k),
               "write a path as \"PATH\" or {\"path\": \"PATH\", \"literal\": true}");
        }
      }
      bool literal = entry.contains("literal") && entry["literal"].is_boolean() &&
                     entry["literal"].get<bool>();
      return {entry["path"].get<std::string>(), literal};
    }
    fail(key, fmt::format("invalid entry {}", entry.dump()),
         "write a path as \"PATH\" or {\"path\": \"PATH\", \"literal\": true}");
  }

  // srt paths: absolute, ~/..., or relative to the current directory.
  // Claude Code writes an absolute path as //path. No variables: a '$' is
  // literal.
  std::string expand(const std::string& key, std::string raw) const {
    if (raw.starts_with("//")) raw.erase(0, 1);
    std::string escaped;
    for (char c : raw) escaped += c == '$' ? std::string("$$") : std::string(1, c);
    if (escaped.empty()) fail(key, "empty path", "remove the empty entry");
    if (escaped.front() != '/' && escaped.front() != '~') escaped = "$CWD/" + escaped;
    if (escaped.front() == '~' && escaped.size() > 1 && escaped[1] != '/') {
      fail(key, fmt::format("'{}': ~user paths are not supported", raw), "write the full path");
    }
    try {
      return expand_path(escaped, env);
    } catch (const ProfileError& e) {
      throw ProfileError(fmt::format("{}: {}: {}", origin, key, e.what()), e.fix());
    }
  }

  const json& array_of(const std::string& key, const json& value) const {
    if (!value.is_array()) {
      fail(key, fmt::format("expected an array, got {}", value.type_name()), "write a JSON array");
    }
    return value;
  }

  bool bool_of(const std::string& key, const json& value) const {
    if (!value.is_boolean()) {
      fail(key, fmt::format("expected true or false, got {}", value.dump()), "write true or false");
    }
    return value.get<bool>();
  }

  // ---------------------------------------------------------- filesystem

  void path_list(const std::string& key, const json& value, bool restricts,
                 const std::function<void(std::string)>& apply) {
    int n = 0;
    for (const auto& entry : array_of(key, value)) {
      auto [raw, literal] = entry_path(key, entry);
      if (!literal && is_glob(raw)) {
        if (restricts) {
          fail(key, fmt::format("glob '{}' has no sbx equivalent (sbx paths are literal)", raw),
               "list the paths it should match one by one (a skipped deny would weaken the "
               "sandbox)");
        }
        unsupported(key, fmt::format("glob '{}' not applied (sbx paths are literal)", raw));
        continue;
      }
      apply(expand(key, raw));
      ++n;
    }
    (void)n;
  }

  void filesystem(const std::string& prefix, const json& fs) {
    if (!fs.is_object()) fail(prefix, "expected an object", "write \"filesystem\": { ... }");
    const std::string cwd = env.cwd.value_or("");
    bool saw_allow_write = false;
    bool allow_git_config = false;
    for (const auto& [k, v] : fs.items()) {
      const std::string key = prefix + "." + k;
      if (k == "denyRead") {
        path_list(key, v, true,
                  [&](std::string p) { append_unique(policy.filesystem.deny_read, std::move(p)); });
        mapped(key, "filesystem.hidden");
      } else if (k == "allowRead") {
        path_list(key, v, false, [&](std::string p) {
          append_unique(policy.filesystem.allow_read, std::move(p));
        });
        mapped(key, "filesystem.visible");
      } else if (k == "allowWrite") {
        saw_allow_write = true;
        // srt denies writes by default: the work dir is writable only when
        // listed (usually as ".").
        policy.filesystem.workdir_writable = false;
        path_list(key, v, false, [&](std::string p) {
          if (!cwd.empty() && p == cwd)
            policy.filesystem.workdir_writable = true;
          else
            append_unique(policy.filesystem.allow_write, std::move(p));
        });
        mapped(key, "filesystem.writable (the current directory: workdir_writable)");
      } else if (k == "denyWrite") {
        path_list(key, v, true, [&](std::string p) {
          append_unique(policy.filesystem.deny_write, std::move(p));
        });
        mapped(key, "filesystem.read_only");
      } else if (k == "allowGitConfig") {
        allow_git_config = bool_of(key, v);
        mapped(key, allow_git_config ? "(.git/config left writable)"
                                     : "filesystem.read_only += $CWD/.git/config");
      } else if (k == "disabled") {
        if (bool_of(key, v)) {
          unsupported(key, "true is not applied: sbx always confines the filesystem");
        } else {
          mapped(key, "(false: the default)");
        }
      } else {
        unsupported(key, "unknown filesystem key, not applied");
      }
    }
    if (!saw_allow_write) {
      // Without allowWrite srt allows no writes at all; keep the profile's
      // work dir setting but say so.
      unsupported(prefix + ".allowWrite",
                  "absent: the profile's writable paths (work dir) are kept");
    }
    // srt's mandatory write-denies inside the writable work dir (the files
    // that make a later command run code), as in sbx's strict profile.
    if (policy.filesystem.workdir_writable && !cwd.empty()) {
      for (const char* rel : {".gitconfig", ".gitmodules", ".bashrc", ".bash_profile", ".zshrc",
                              ".zprofile", ".profile", ".ripgreprc", ".mcp.json", ".vscode",
                              ".idea", ".claude/commands", ".claude/agents", ".git/hooks"}) {
        append_unique(policy.filesystem.deny_write, fmt::format("{}/{}", cwd, rel));
      }
      if (!allow_git_config) {
        append_unique(policy.filesystem.deny_write, fmt::format("{}/.git/config", cwd));
      }
      mapped(prefix + " (srt's mandatory denies)", "filesystem.read_only += $CWD/.git/hooks, ...");
    }
  }

  // ------------------------------------------------------------- network

  // "host", "*.host", optionally ":PORT". The port opens that TCP port (on
  // every allowed host: sbx's ports are not per host).
  std::string domain(const std::string& key, const json& entry, DomainList list) {
    if (!entry.is_string())
      fail(key, fmt::format("invalid entry {}", entry.dump()), "write a string");
    std::string text = entry.get<std::string>();
    std::string host = text;
    if (auto colon = text.rfind(':'); colon != std::string::npos && text.find(':') == colon) {
      host = text.substr(0, colon);
      std::string port = text.substr(colon + 1);
      std::uint16_t p = 0;
      try {
        p = parse_port(port);
      } catch (const ProfileError& e) {
        fail(key, fmt::format("'{}': {}", text, e.what()), e.fix());
      }
      if (list == DomainList::allow) {
        append_unique(policy.network.allow_ports, p);
        unsupported(key, fmt::format("'{}': port {} is opened for every allowed host (sbx's ports "
                                     "are not per host)",
                                     text, p));
      } else {
        unsupported(key, fmt::format("'{}': the whole name is denied, not only port {}", text, p));
      }
    }
    try {
      return normalize_domain_pattern(host, list);
    } catch (const ProfileError& e) {
      throw ProfileError(fmt::format("{}: {}: {}", origin, key, e.what()), e.fix());
    }
  }

  void network(const std::string& prefix, const json& net) {
    if (!net.is_object()) fail(prefix, "expected an object", "write \"network\": { ... }");
    for (const auto& [k, v] : net.items()) {
      const std::string key = prefix + "." + k;
      if (k == "allowedDomains") {
        // The allowlist is the whole of what the command may reach.
        if (policy.network.mode == NetworkMode::host || policy.network.mode == NetworkMode::none)
          policy.network.mode = NetworkMode::filtered;
        for (const auto& d : array_of(key, v)) {
          append_unique(policy.network.allow_domains, domain(key, d, DomainList::allow));
        }
        if (policy.network.allow_ports.empty()) policy.network.allow_ports = {80, 443};
        if (v.empty() && policy.network.allow_domains.empty()) {
          policy.network.mode = NetworkMode::none;  // srt: an empty allowlist reaches nothing
        }
        mapped(key, "network.allow_domains (mode filtered; ports 80, 443 unless set)");
      } else if (k == "deniedDomains") {
        for (const auto& d : array_of(key, v)) {
          append_unique(policy.network.deny_domains, domain(key, d, DomainList::deny));
        }
        mapped(key, "network.deny_domains");
      } else if (k == "deniedResolvedAddresses") {
        for (const auto& c : array_of(key, v)) {
          if (!c.is_string()) fail(key, fmt::format("invalid entry {}", c.dump()), "write a CIDR");
          try {
            append_unique(policy.network.deny_cidrs, parse_cidr(c.get<std::string>()));
          } catch (const ProfileError& e) {
            throw ProfileError(fmt::format("{}: {}: {}", origin, key, e.what()), e.fix());
          }
        }
        mapped(key, "network.deny_cidrs");
      } else if (k == "allowUnixSockets") {
        path_list(key, v, false, [&](std::string p) {
          append_unique(policy.filesystem.allow_unix_sockets, std::move(p));
        });
        mapped(key, "filesystem.unix_sockets");
      } else if (k == "allowAllUnixSockets") {
        if (bool_of(key, v)) {
          unsupported(key, "true is not applied: list the sockets in allowUnixSockets");
        } else {
          mapped(key, "(false: the default)");
        }
      } else if (k == "allowLocalBinding") {
        bool_of(key, v);
        mapped(key,
               "(always: the command binds in its own network namespace; the host's "
               "loopback stays unreachable, use --publish / --host-port)");
      } else if (k == "strictAllowlist") {
        if (bool_of(key, v)) {
          mapped(key, "(always strict in sbx)");
        } else {
          unsupported(key, "false: sbx has no ask callback, unlisted names are denied");
        }
      } else if (k == "deniedDomainReasons") {
        unsupported(key, "no equivalent (sbx's audit log records the denied name)");
      } else if (k == "httpProxyPort" || k == "socksProxyPort") {
        unsupported(key, "no equivalent: sbx's egress proxy is transparent, no proxy port is set");
      } else if (k == "mitmProxy" || k == "tlsTerminate") {
        unsupported(key, "no equivalent: sbx does not terminate TLS (it checks the SNI)");
      } else if (k == "parentProxy") {
        unsupported(key, "no equivalent: sbx connects out directly, not through a parent proxy");
      } else {
        unsupported(key, "unknown network key, not applied");
      }
    }
  }

  // ------------------------------------------------------------ top level

  void srt(const json& doc, const std::string& prefix) {
    for (const auto& [k, v] : doc.items()) {
      const std::string key = prefix.empty() ? k : prefix + "." + k;
      if (k == "network") {
        network(key, v);
      } else if (k == "filesystem") {
        filesystem(key, v);
      } else if (k == "ignoreViolations") {
        unsupported(key, "no equivalent: every violation is denied and audited");
      } else if (k == "enableWeakerNestedSandbox" || k == "enableWeakerNetworkIsolation") {
        unsupported(key, "not applied: sbx does not weaken its sandbox");
      } else if (k == "allowNestedUserNamespaces") {
        unsupported(key, "not applied: sbx's seccomp policy denies new user namespaces");
      } else if (k == "mandatoryDenySearchDepth") {
        unsupported(key, "no equivalent: sbx protects the files at fixed paths (work dir, home)");
      } else if (k == "seccomp") {
        unsupported(key, "no equivalent: sbx builds its own seccomp filter (process.seccomp)");
      } else if (k == "bwrapPath" || k == "socatPath" || k == "ripgrep") {
        unsupported(key, "not needed: sbx uses no external helper");
      } else if (k == "credentials") {
        unsupported(key, "no equivalent: use `sbx secrets` and --secret");
      } else if (k == "enabled") {
        if (!bool_of(key, v))
          unsupported(key, "false: sbx runs the command sandboxed anyway");
        else
          mapped(key, "(sbx always sandboxes)");
      } else if (k == "failIfUnavailable") {
        bool_of(key, v);
        mapped(key, "(sbx always refuses to run unsandboxed)");
      } else if (k == "autoAllowBashIfSandboxed" || k == "allowUnsandboxedCommands" ||
                 k == "excludedCommands") {
        unsupported(key,
                    "no equivalent: Claude Code's permission layer; sbx sandboxes the whole "
                    "process tree, no command runs outside");
      } else {
        unsupported(key, "unknown key, not applied");
      }
    }
  }
};

}  // namespace

SettingsImport import_sandbox_settings(std::string_view json_text, std::string_view origin,
                                       Policy& policy, const Environment& env) {
  json doc;
  try {
    doc = json::parse(json_text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw ProfileError(fmt::format("{}: invalid JSON: {}", origin, e.what()),
                       "fix the settings file (it must be a JSON object)");
  }
  if (!doc.is_object()) {
    throw ProfileError(fmt::format("{}: expected a JSON object", origin),
                       "give an srt settings file or a Claude Code settings.json");
  }
  SettingsImport report;
  Importer importer{policy, env, std::string(origin), report};
  if (doc.contains("sandbox") && doc["sandbox"].is_object()) {
    // Claude Code settings.json: only its `sandbox` section is sandbox
    // configuration; the rest (permissions, hooks, env...) is the client's.
    report.format = "claude-settings";
    importer.srt(doc["sandbox"], "sandbox");
    for (const auto& [k, v] : doc.items()) {
      if (k != "sandbox") {
        report.unsupported.push_back(
            fmt::format("{}: not sandbox configuration (Claude Code setting), not applied", k));
      }
    }
  } else {
    report.format = "srt";
    importer.srt(doc, "");
  }
  return report;
}

SettingsImport import_sandbox_settings_file(const std::string& path, Policy& policy,
                                            const Environment& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ProfileError(fmt::format("cannot read settings '{}': {}", path, std::strerror(errno)),
                       "give the path of an srt settings file (~/.srt-settings.json) or a Claude "
                       "Code settings.json");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return import_sandbox_settings(text.str(), path, policy, env);
}

Policy resolve_with_settings(std::string_view name_or_file, const std::string& settings_path,
                             bool strict_import, const Overrides& overrides, const Environment& env,
                             std::vector<std::string>* warnings) {
  Policy policy = load_profile(name_or_file, env);
  SettingsImport report = import_sandbox_settings_file(settings_path, policy, env);
  if (!report.unsupported.empty()) {
    std::string list;
    for (const auto& u : report.unsupported) list += (list.empty() ? "" : "; ") + u;
    if (strict_import) {
      throw ProfileError(fmt::format("{}: {} setting(s) have no sbx equivalent: {}", settings_path,
                                     report.unsupported.size(), list),
                         "remove them from the file, or drop --strict-import to run without them");
    }
    if (warnings) {
      warnings->push_back(
          fmt::format("{}: not applied (no sbx equivalent): {}", settings_path, list));
    }
  }
  apply_overrides(policy, overrides, env);
  auto more = validate(policy, overrides);
  if (warnings) warnings->insert(warnings->end(), more.begin(), more.end());
  return policy;
}

}  // namespace sbx::profiles
