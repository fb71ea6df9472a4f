// profiles — from a profile name or TOML file plus command-line overrides to
// a validated sbx::Policy; domain patterns and the DomainMatcher; printing a
// Policy as TOML and JSON. This is the module's only public header.
//
// Resolution order: built-in or file profile -> its `extends` chain (parents
// first, cycles refused) -> command-line overrides. At every step lists
// append (duplicates dropped) and scalars override. Key reference:
// docs/profiles.md; domain rules: docs/domains.md.
#pragma once

#include <sbx/error.hpp>
#include <sbx/policy.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace sbx::profiles {

// The profile `sbx run` uses when no --profile is given.
inline constexpr std::string_view kDefaultProfile = "standard";

// Most entries in network.allow_ports, host_ports and publish each: every
// entry is a listening socket of sbx's (docs/profiles.md).
inline constexpr std::size_t kMaxPortEntries = 256;

// An invalid profile, value or flag. what() is one line, prefixed with
// "FILE:LINE:COL: " when it comes from a profile file (or "--flag VALUE: "
// from the command line); fix() says what to do.
class ProfileError : public sbx::Error {
 public:
  using sbx::Error::Error;
};

// ---------------------------------------------------------------- variables

// Values of the variables a path may use. `~` and $HOME use home, $CWD cwd,
// $TMPDIR tmpdir. An unset one is an error when a path uses it.
struct Environment {
  std::optional<std::string> home;
  std::optional<std::string> cwd;
  std::optional<std::string> tmpdir;
  // From the process: $HOME, getcwd(), $TMPDIR (or /tmp when unset).
  static Environment from_process();
};

// Expands ~, $HOME, $CWD, $TMPDIR (also ${NAME}; `$$` is a literal `$`) and
// normalises the result lexically. The result must be absolute. Throws
// ProfileError for unknown or unset variables and relative results.
std::string expand_path(std::string_view raw, const Environment& env);

// ------------------------------------------------------------ value grammar
// Each throws ProfileError (without location) on invalid input.

// "4G", "512M", "64k", "1.5G", "4GiB", "100" (bytes); units are binary.
std::uint64_t parse_size(std::string_view text);
// Shortest exact form: 1073741824 -> "1G", 1000 -> "1000".
std::string format_size(std::uint64_t bytes);
// "15m", "1h30m", "500ms", "2d", "0"; units d h m s ms.
std::chrono::milliseconds parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds d);
// "10.0.0.0/8", "fc00::/7", "1.2.3.4" (= /32): returns canonical "addr/len".
// Host bits must be zero.
std::string parse_cidr(std::string_view text);
// 1..65535.
std::uint16_t parse_port(std::string_view text);
std::uint16_t check_port(std::int64_t value);
// "PATH[:size=SIZE,mode=OCTAL]"; PATH expanded with expand_path.
TmpfsMount parse_tmpfs(std::string_view spec, const Environment& env);
std::string format_tmpfs(const TmpfsMount& mount);
// "HOST:SANDBOX" ports.
PublishedPort parse_publish(std::string_view text);
// "UID[:GID]" or ":GID".
std::pair<std::optional<std::uint32_t>, std::optional<std::uint32_t>> parse_user(
    std::string_view text);
// "IP" or "IP:PORT" or "[IPv6]:PORT": returned normalised.
std::string parse_dns_upstream(std::string_view text);
// Environment variable name; `keep` entries may end in '*' (prefix match).
void check_env_name(std::string_view name, bool allow_prefix_glob);
// A syscall name or @group (syntax only; seccomp/ checks the names).
void check_syscall_name(std::string_view name);

// Enum spellings used in profiles and on the command line.
NetworkMode parse_network_mode(std::string_view text);
std::string_view to_string(NetworkMode mode);
std::string_view to_string(SeccompMode mode);
std::string_view to_string(LandlockMode mode);
std::string_view to_string(AuditLevel level);
std::string_view to_string(DnsRefusal refusal);
std::string_view to_string(TtyMode mode);

// ---------------------------------------------------------- domain patterns

enum class DomainList { allow, deny };

// Normalises one domain pattern for the given list: lower case, trailing dot
// stripped, IDN labels in punycode ("xn--..."). Accepts `name` (exact),
// `*.name` (any subdomain, not the apex) and, in deny lists only, `*`
// (everything). Refuses in allow lists wildcards directly above a public
// suffix (`*.com`, `*.co.uk`, `*.github.io`). Throws ProfileError.
std::string normalize_domain_pattern(std::string_view pattern, DomainList list);

// Normalises a name being looked up (e.g. a DNS query name) the same way.
// Returns nullopt when it is not a valid host name.
std::optional<std::string> normalize_domain_name(std::string_view name);

// True if `domain` (ASCII, normalised) is a public suffix per the Public
// Suffix List embedded at build time (unlisted single labels count as
// public suffixes, per the list's default rule).
bool is_public_suffix(std::string_view domain);

enum class DomainDecision { allow, deny, unlisted };
std::string_view to_string(DomainDecision decision);

// Compiled allow and deny lists (normalised patterns). decide() costs one
// hash lookup per label of the name; deny beats allow.
class DomainMatcher {
 public:
  DomainMatcher() = default;
  // Patterns are normalised again here (throws ProfileError if invalid).
  DomainMatcher(const std::vector<std::string>& allow, const std::vector<std::string>& deny);
  // Invalid names (not a host name) are denied.
  DomainDecision decide(std::string_view name) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using NameSet = std::unordered_set<std::string, Hash, std::equal_to<>>;
  struct Set {
    NameSet exact;
    NameSet below;  // "*.x" stored as "x"
    bool everything = false;
    bool matches(std::string_view name) const;
  };
  Set allow_;
  Set deny_;
};

// ----------------------------------------------------------------- profiles

struct BuiltinProfile {
  std::string_view name;
  std::string_view text;  // the TOML file, embedded at build time
};

// Every built-in, `base` (the shared parent) included, sorted by name.
std::span<const BuiltinProfile> builtin_profiles();
const BuiltinProfile* find_builtin(std::string_view name);

// A name is a file when it contains '/' or ends in ".toml"; else built-in.
bool names_a_file(std::string_view name_or_file);

struct ProfileSource {
  std::string name;    // as the user wrote it
  std::string origin;  // file path, or "builtin:NAME"
  std::string text;    // the TOML as written
  std::string dir;     // where relative `extends` files are looked up
  bool builtin = false;
};
// Throws ProfileError for unknown names and unreadable files.
ProfileSource find_profile(std::string_view name_or_file);

// The top-level `description` of a profile text as written ("" if none).
std::string read_description(std::string_view toml_text);
// A profile as written (not resolved) as JSON. Throws ProfileError on bad TOML.
nlohmann::json profile_text_to_json(std::string_view toml_text, std::string_view origin);

// Parses and resolves one profile text (its extends chain included) into a
// Policy whose `profile` is `name`. `dir` is where relative extends files
// are looked up. Throws ProfileError (FILE:LINE:COL: message).
Policy load_profile_text(std::string_view text, std::string_view name, std::string_view origin,
                         const Environment& env, std::string_view dir = {});
// Same, from a built-in name or a file path.
Policy load_profile(std::string_view name_or_file, const Environment& env);

// Command-line overrides, as typed (each string is parsed and validated by
// apply_overrides, whose errors name the flag).
struct Overrides {
  std::optional<std::string> network;  // --net
  std::vector<std::string> allow_domains, deny_domains, allow_cidrs, deny_cidrs, allow_ports;
  std::vector<std::string> publish, host_ports;  // --publish HOST:SANDBOX, --host-port N
  std::vector<std::string> writable, read_only, hidden, tmpfs;  // --rw --ro --hide --tmpfs
  std::optional<std::string> memory, cpus, pids, timeout, kill_after;
  std::vector<std::string> env_set;   // --env K=V
  std::vector<std::string> env_keep;  // --keep-env NAME
  std::optional<std::string> name, audit_log, report, user;
  std::optional<TtyMode> tty;
};
void apply_overrides(Policy& policy, const Overrides& overrides, const Environment& env);

// Whole-policy checks that no single value can make (e.g. opaque ports must
// be allowed ports). Throws ProfileError; returns warnings (things the
// policy asks for that its network mode cannot enforce).
std::vector<std::string> validate(const Policy& policy);
// The same for a policy the overrides were applied to: `--net none` alone
// does not warn that the profile's allow lists have no effect.
std::vector<std::string> validate(const Policy& policy, const Overrides& overrides);

// load_profile + apply_overrides + validate; warnings appended to *warnings.
Policy resolve(std::string_view name_or_file, const Overrides& overrides, const Environment& env,
               std::vector<std::string>* warnings = nullptr);

// ---------------------------------------------------------- settings import
// Anthropic sandbox-runtime's ~/.srt-settings.json and the `sandbox` section
// of Claude Code's settings.json (docs/settings-import.md).

struct SettingsImport {
  std::string format;                    // "srt" or "claude-settings"
  std::vector<std::string> mapped;       // "network.allowedDomains -> network.allow_domains"
  std::vector<std::string> unsupported;  // "KEY: why it is not applied"
};
// Applies the settings onto `policy` (lists append, like a profile layer).
// Throws ProfileError for invalid JSON or values, and for restricting entries
// sbx cannot express (a denyRead glob): dropping them would weaken the
// sandbox. Entries that would only widen it and have no equivalent are
// returned in `unsupported` and not applied.
SettingsImport import_sandbox_settings(std::string_view json_text, std::string_view origin,
                                       Policy& policy, const Environment& env);
SettingsImport import_sandbox_settings_file(const std::string& path, Policy& policy,
                                            const Environment& env);
// load_profile + import + apply_overrides + validate. Unsupported settings
// become one warning, or a ProfileError when strict_import.
Policy resolve_with_settings(std::string_view name_or_file, const std::string& settings_path,
                             bool strict_import, const Overrides& overrides, const Environment& env,
                             std::vector<std::string>* warnings);

// --------------------------------------------------------------- printing

// A complete, stand-alone profile (no extends; every key written). Parsing it
// with load_profile_text(text, policy.profile, ...) gives back an equal Policy.
std::string to_toml(const Policy& policy);
// `s` as a TOML basic string, quotes included (control characters escaped).
std::string toml_quote(std::string_view s);
nlohmann::json to_json(const Policy& policy);

}  // namespace sbx::profiles
