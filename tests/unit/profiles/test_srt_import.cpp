// Settings import: one test per srt / Claude Code sandbox key.
#include <algorithm>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "profile_test_env.hpp"
#include "profiles/profiles.hpp"

using namespace sbx::profiles;
using namespace sbx::profiles::test;

namespace {

struct Imported {
  sbx::Policy policy;
  SettingsImport report;
};

Imported import_on(const std::string& base, const std::string& json) {
  Imported out;
  out.policy = load_profile(base, test_env());
  out.report = import_sandbox_settings(json, "s.json", out.policy, test_env());
  return out;
}
Imported import_json(const std::string& json) {
  return import_on("base", json);
}

template <typename T>
bool has(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}
bool has(const std::vector<std::string>& v, const char* x) {
  return has(v, std::string(x));
}
// True when one unsupported line starts with the key.
bool reported(const SettingsImport& r, const std::string& key) {
  return std::any_of(r.unsupported.begin(), r.unsupported.end(),
                     [&](const std::string& u) { return u.rfind(key + ":", 0) == 0; });
}
std::string import_error(const std::string& json) {
  try {
    import_json(json);
  } catch (const ProfileError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("srt network.allowedDomains: filtered, the names, ports 80 and 443") {
  auto r = import_json(R"({"network":{"allowedDomains":["api.example.com","*.Example.org"],
                                       "deniedDomains":[]}})");
  CHECK(r.policy.network.mode == sbx::NetworkMode::filtered);
  CHECK(has(r.policy.network.allow_domains, "api.example.com"));
  CHECK(has(r.policy.network.allow_domains, "*.example.org"));
  CHECK(r.policy.network.allow_ports == std::vector<std::uint16_t>{80, 443});
  CHECK(r.report.format == "srt");
  CHECK(r.report.unsupported.empty());
}

TEST_CASE("srt network.allowedDomains empty: no network at all") {
  auto r = import_json(R"({"network":{"allowedDomains":[],"deniedDomains":[]}})");
  CHECK(r.policy.network.mode == sbx::NetworkMode::none);
}

TEST_CASE("srt network.allowedDomains with :port opens the port (reported)") {
  auto r = import_json(R"({"network":{"allowedDomains":["db.example.com:5432"]}})");
  CHECK(has(r.policy.network.allow_domains, "db.example.com"));
  CHECK(has(r.policy.network.allow_ports, std::uint16_t{5432}));
  CHECK(reported(r.report, "network.allowedDomains"));
}

TEST_CASE("srt network.allowedDomains: a public-suffix wildcard is refused") {
  CHECK_THAT(import_error(R"({"network":{"allowedDomains":["*.com"]}})"),
             Catch::Contains("network.allowedDomains"));
}

TEST_CASE("srt network.deniedDomains -> deny_domains") {
  auto r = import_json(R"({"network":{"allowedDomains":["a.example"],
                                       "deniedDomains":["evil.example","*.evil.example"]}})");
  CHECK(has(r.policy.network.deny_domains, "evil.example"));
  CHECK(has(r.policy.network.deny_domains, "*.evil.example"));
}

TEST_CASE("srt network.deniedResolvedAddresses -> deny_cidrs") {
  auto r = import_json(R"({"network":{"deniedResolvedAddresses":["198.51.100.0/24"]}})");
  CHECK(has(r.policy.network.deny_cidrs, "198.51.100.0/24"));
  CHECK(import_error(R"({"network":{"deniedResolvedAddresses":["nope"]}})") != "no error");
}

TEST_CASE("srt network.allowUnixSockets -> filesystem.unix_sockets") {
  auto r = import_json(R"({"network":{"allowUnixSockets":["/run/app.sock","~/agent.sock"]}})");
  CHECK(has(r.policy.filesystem.allow_unix_sockets, "/run/app.sock"));
  CHECK(has(r.policy.filesystem.allow_unix_sockets, "/home/u/agent.sock"));
}

TEST_CASE("srt network.allowAllUnixSockets: true is reported, not applied") {
  auto r = import_json(R"({"network":{"allowAllUnixSockets":true}})");
  CHECK(reported(r.report, "network.allowAllUnixSockets"));
  CHECK(r.policy.filesystem.allow_unix_sockets.empty());
  CHECK_FALSE(reported(import_json(R"({"network":{"allowAllUnixSockets":false}})").report,
                       "network.allowAllUnixSockets"));
}

TEST_CASE("srt network.allowLocalBinding: mapped (own netns), not reported") {
  auto r = import_json(R"({"network":{"allowLocalBinding":true}})");
  CHECK_FALSE(reported(r.report, "network.allowLocalBinding"));
  CHECK(import_error(R"({"network":{"allowLocalBinding":"yes"}})") != "no error");
}

TEST_CASE("srt network keys without equivalent are reported") {
  for (const char* key : {"httpProxyPort", "socksProxyPort", "deniedDomainReasons", "mitmProxy",
                          "tlsTerminate", "parentProxy", "someFutureKey"}) {
    auto r = import_json(fmt::format(R"({{"network":{{"{}":1}}}})", key));
    CHECK(reported(r.report, fmt::format("network.{}", key)));
  }
  CHECK(reported(import_json(R"({"network":{"strictAllowlist":false}})").report,
                 "network.strictAllowlist"));
  CHECK_FALSE(reported(import_json(R"({"network":{"strictAllowlist":true}})").report,
                       "network.strictAllowlist"));
}

TEST_CASE("srt filesystem.denyRead -> hidden, a glob is an error (fail closed)") {
  auto r = import_json(R"({"filesystem":{"denyRead":["~/.ssh","secrets","/etc/shadow"],
                                          "allowWrite":["."],"denyWrite":[]}})");
  CHECK(has(r.policy.filesystem.deny_read, "/home/u/.ssh"));
  CHECK(has(r.policy.filesystem.deny_read, "/work/proj/secrets"));
  CHECK(has(r.policy.filesystem.deny_read, "/etc/shadow"));
  CHECK_THAT(import_error(R"({"filesystem":{"denyRead":["~/.config/**/token"]}})"),
             Catch::Contains("glob"));
  // A literal entry is not a glob.
  auto lit = import_json(R"({"filesystem":{"denyRead":[{"path":"/srv/a*b","literal":true}]}})");
  CHECK(has(lit.policy.filesystem.deny_read, "/srv/a*b"));
}

TEST_CASE("srt filesystem.allowRead -> visible, a glob is reported, not applied") {
  auto r = import_json(R"({"filesystem":{"denyRead":["~/.ssh"],
                                          "allowRead":["~/.ssh/known_hosts","~/x/*"]}})");
  CHECK(has(r.policy.filesystem.allow_read, "/home/u/.ssh/known_hosts"));
  CHECK(r.policy.filesystem.allow_read.size() == 1);
  CHECK(reported(r.report, "filesystem.allowRead"));
}

TEST_CASE("srt filesystem.allowWrite: writes denied unless listed, . is the work dir") {
  auto none = import_json(R"({"filesystem":{"allowWrite":[]}})");
  CHECK_FALSE(none.policy.filesystem.workdir_writable);
  auto r = import_json(R"({"filesystem":{"allowWrite":[".","/var/cache/x","//abs/y"]}})");
  CHECK(r.policy.filesystem.workdir_writable);
  CHECK(has(r.policy.filesystem.allow_write, "/var/cache/x"));
  CHECK(has(r.policy.filesystem.allow_write, "/abs/y"));  // Claude Code's //absolute
  // srt's mandatory denies inside the writable work dir.
  CHECK(has(r.policy.filesystem.deny_write, "/work/proj/.git/hooks"));
  CHECK(has(r.policy.filesystem.deny_write, "/work/proj/.git/config"));
  CHECK(has(r.policy.filesystem.deny_write, "/work/proj/.bashrc"));
  CHECK(has(r.policy.filesystem.deny_write, "/work/proj/.claude/commands"));
}

TEST_CASE("srt filesystem.denyWrite -> read_only, a glob is an error") {
  auto r = import_json(R"({"filesystem":{"allowWrite":["."],"denyWrite":["./dist"]}})");
  CHECK(has(r.policy.filesystem.deny_write, "/work/proj/dist"));
  CHECK(import_error(R"({"filesystem":{"denyWrite":["*.lock"]}})") != "no error");
}

TEST_CASE("srt filesystem.allowGitConfig: true leaves .git/config writable") {
  auto r = import_json(R"({"filesystem":{"allowWrite":["."],"allowGitConfig":true}})");
  CHECK_FALSE(has(r.policy.filesystem.deny_write, "/work/proj/.git/config"));
  CHECK(has(r.policy.filesystem.deny_write, "/work/proj/.git/hooks"));
}

TEST_CASE("srt filesystem.disabled: true is reported, not applied") {
  auto r = import_json(R"({"filesystem":{"disabled":true,"allowWrite":[]}})");
  CHECK(reported(r.report, "filesystem.disabled"));
  CHECK_FALSE(r.policy.filesystem.workdir_writable);
}

TEST_CASE("srt top-level keys without equivalent are reported") {
  for (const char* key :
       {"ignoreViolations", "enableWeakerNestedSandbox", "allowNestedUserNamespaces",
        "mandatoryDenySearchDepth", "seccomp", "bwrapPath", "socatPath", "credentials", "typo"}) {
    auto r = import_json(fmt::format(R"({{"{}":1}})", key));
    CHECK(reported(r.report, key));
  }
}

TEST_CASE("Claude Code settings.json: the sandbox section") {
  // clang-format off
  auto r = import_json(R"J({
    "permissions": {"allow": ["Bash(ls)"]},
    "sandbox": {
      "enabled": true, "failIfUnavailable": true, "autoAllowBashIfSandboxed": true,
      "excludedCommands": ["docker"], "allowUnsandboxedCommands": false,
      "filesystem": {"allowWrite": ["."], "denyRead": ["~/.aws"]},
      "network": {"allowedDomains": ["github.com"], "allowLocalBinding": true,
                  "httpProxyPort": 8080}
    }})J");
  // clang-format on
  CHECK(r.report.format == "claude-settings");
  CHECK(has(r.policy.network.allow_domains, "github.com"));
  CHECK(has(r.policy.filesystem.deny_read, "/home/u/.aws"));
  CHECK(reported(r.report, "sandbox.autoAllowBashIfSandboxed"));
  CHECK(reported(r.report, "sandbox.excludedCommands"));
  CHECK(reported(r.report, "sandbox.allowUnsandboxedCommands"));
  CHECK(reported(r.report, "sandbox.network.httpProxyPort"));
  CHECK(reported(r.report, "permissions"));
  CHECK_FALSE(reported(r.report, "sandbox.enabled"));
  CHECK_FALSE(reported(r.report, "sandbox.failIfUnavailable"));
  CHECK(reported(import_json(R"({"sandbox":{"enabled":false}})").report, "sandbox.enabled"));
}

TEST_CASE("invalid settings refuse to run") {
  CHECK_THAT(import_error("{not json"), Catch::Contains("invalid JSON"));
  CHECK(import_error("[1]") != "no error");
  CHECK(import_error(R"({"network":{"allowedDomains":"a.com"}})") != "no error");
  CHECK(import_error(R"({"filesystem":{"denyRead":[{"path":"/x","glob":true}]}})") != "no error");
}

TEST_CASE("import on strict keeps strict's protections, the result round-trips as TOML") {
  auto r = import_on("strict", R"({"network":{"allowedDomains":["example.com"]},
                                    "filesystem":{"allowWrite":["."],"denyRead":["~/.x"]}})");
  CHECK(has(r.policy.network.allow_domains, "api.anthropic.com"));
  CHECK(has(r.policy.network.allow_domains, "example.com"));
  CHECK(r.policy.limits.required);
  auto back = load_profile_text(to_toml(r.policy), r.policy.profile, "t.toml", test_env());
  CHECK(back == r.policy);
}
