// Profile files: parsing, merge rules, extends, error locations, built-ins,
// round trip through to_toml, JSON output.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <toml++/toml.h>

#include "profile_test_env.hpp"
#include "profiles/profiles.hpp"

using namespace sbx::profiles;
using namespace sbx::profiles::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A scratch directory for profile files, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/sbx-unit-profiles.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("every key of every section parses into the Policy") {
  auto p = load(R"(
description = "all keys"
name = "job1"
[filesystem]
workdir = "$CWD/sub"
workdir_writable = false
writable = ["~/.cache", "$TMPDIR/out"]
read_only = ["$CWD/.git/hooks"]
hidden = ["~/.ssh"]
visible = ["~/.ssh/known_hosts"]
tmpfs = ["/scratch:size=1G,mode=0700", { path = "/run/x", size = "8M" }]
tmp_size = "256M"
unix_sockets = ["/run/user/1000/bus"]
[network]
mode = "filtered"
allow_domains = ["Example.com", "*.github.com"]
deny_domains = ["*"]
allow_cidrs = ["203.0.113.0/24"]
deny_cidrs = ["10.0.0.0/8"]
allow_ports = [443, 22]
opaque_ports = [22]
dns_upstream = ["1.1.1.1"]
dns_refusal = "nxdomain"
publish = ["8080:3000"]
host_ports = [5432]
[process]
landlock = "required"
uid = 1000
gid = 1000
tty = "never"
hostname = "box"
[process.seccomp]
mode = "strict"
allow = ["ptrace"]
deny = ["@mount"]
[process.env]
keep = ["TERM", "LC_*"]
set = { EDITOR = "vi" }
[process.rlimits]
nofile = 1024
nproc = "inherit"
core = 0
fsize = "1G"
[limits]
memory = "4G"
swap = "0"
cpus = 1.5
pids = 256
timeout = "1h30m"
kill_after = "5s"
required = true
[audit]
log = "~/audit.jsonl"
level = "verbose"
report = "-"
max_size = "16M"
)");
  CHECK(p.profile == "t");
  CHECK(p.description == "all keys");
  CHECK(p.name == "job1");
  CHECK(p.filesystem.workdir == "/work/proj/sub");
  CHECK_FALSE(p.filesystem.workdir_writable);
  CHECK(p.filesystem.allow_write == std::vector<std::string>{"/home/u/.cache", "/tmp/out"});
  CHECK(p.filesystem.deny_write == std::vector<std::string>{"/work/proj/.git/hooks"});
  CHECK(p.filesystem.deny_read == std::vector<std::string>{"/home/u/.ssh"});
  CHECK(p.filesystem.allow_read == std::vector<std::string>{"/home/u/.ssh/known_hosts"});
  REQUIRE(p.filesystem.tmpfs.size() == 2);
  CHECK(p.filesystem.tmpfs[0] == sbx::TmpfsMount{"/scratch", 1ull << 30, 0700});
  CHECK(p.filesystem.tmpfs[1] == sbx::TmpfsMount{"/run/x", 8ull << 20, 01777});
  CHECK(p.filesystem.tmp_size_bytes == (256ull << 20));
  CHECK(p.filesystem.allow_unix_sockets == std::vector<std::string>{"/run/user/1000/bus"});
  CHECK(p.network.mode == sbx::NetworkMode::filtered);
  CHECK(p.network.allow_domains == std::vector<std::string>{"example.com", "*.github.com"});
  CHECK(p.network.deny_domains == std::vector<std::string>{"*"});
  CHECK(p.network.allow_cidrs == std::vector<std::string>{"203.0.113.0/24"});
  CHECK(p.network.allow_ports == std::vector<std::uint16_t>{443, 22});
  CHECK(p.network.opaque_ports == std::vector<std::uint16_t>{22});
  CHECK(p.network.dns_refusal == sbx::DnsRefusal::nxdomain);
  CHECK(p.network.publish == std::vector<sbx::PublishedPort>{{8080, 3000}});
  CHECK(p.network.host_ports == std::vector<std::uint16_t>{5432});
  CHECK(p.process.seccomp == sbx::SeccompMode::strict);
  CHECK(p.process.seccomp_allow == std::vector<std::string>{"ptrace"});
  CHECK(p.process.seccomp_deny == std::vector<std::string>{"@mount"});
  CHECK(p.process.landlock == sbx::LandlockMode::required);
  CHECK(p.process.env_keep == std::vector<std::string>{"TERM", "LC_*"});
  CHECK(p.process.env_set.at("EDITOR") == "vi");
  CHECK(p.process.rlimits.nofile == 1024u);
  CHECK(!p.process.rlimits.nproc);
  CHECK(p.process.rlimits.core == 0u);
  CHECK(p.process.rlimits.fsize == (1ull << 30));
  CHECK(p.process.uid == 1000u);
  CHECK(p.process.gid == 1000u);
  CHECK(p.process.tty == sbx::TtyMode::never);
  CHECK(p.process.hostname == "box");
  CHECK(p.limits.memory_bytes == (4ull << 30));
  CHECK(p.limits.swap_bytes == 0u);
  CHECK(p.limits.cpus == 1.5);
  CHECK(p.limits.pids == 256u);
  CHECK(p.limits.timeout == 90min);
  CHECK(p.limits.kill_after == 5s);
  CHECK(p.limits.required);
  CHECK(p.audit.log == "/home/u/audit.jsonl");
  CHECK(p.audit.level == sbx::AuditLevel::verbose);
  CHECK(p.audit.report == "-");
  CHECK(p.audit.max_size_bytes == (16ull << 20));
}

TEST_CASE("an empty profile is the default Policy") {
  auto p = load("");
  sbx::Policy d;
  d.profile = "t";
  CHECK(p == d);
}

TEST_CASE("seccomp short form") {
  CHECK(load("[process]\nseccomp = \"none\"").process.seccomp == sbx::SeccompMode::none);
}

TEST_CASE("unlimited and inherit reset inherited values") {
  TempDir dir;
  dir.write("parent.toml",
            "[limits]\nmemory = \"1G\"\ntimeout = \"5m\"\npids = 10\ncpus = 2\n"
            "[process.rlimits]\ncore = 0\n");
  auto path = dir.write("child.toml",
                        "extends = \"parent.toml\"\n[limits]\nmemory = \"unlimited\"\n"
                        "timeout = \"unlimited\"\npids = \"unlimited\"\ncpus = \"unlimited\"\n"
                        "[process.rlimits]\ncore = \"inherit\"\n");
  auto p = load_profile(path, test_env());
  CHECK(!p.limits.memory_bytes);
  CHECK(!p.limits.timeout);
  CHECK(!p.limits.pids);
  CHECK(!p.limits.cpus);
  CHECK(!p.process.rlimits.core);
}

TEST_CASE("extends: parents first, lists append without duplicates, scalars override") {
  TempDir dir;
  dir.write("grand.toml",
            "description = \"grand\"\n[network]\nmode = \"none\"\nallow_domains = [\"a.com\"]\n"
            "[limits]\nmemory = \"1G\"\n[process.env]\nset = { A = \"1\", B = \"1\" }\n");
  dir.write("parent.toml",
            "extends = \"./grand.toml\"\n[network]\nmode = \"filtered\"\n"
            "allow_domains = [\"b.com\", \"a.com\"]\n");
  auto path = dir.write("child.toml",
                        "extends = \"parent.toml\"\ndescription = \"child\"\n"
                        "[network]\nallow_domains = [\"c.com\"]\n[limits]\nmemory = \"2G\"\n"
                        "[process.env]\nset = { B = \"2\" }\n");
  auto p = load_profile(path, test_env());
  CHECK(p.profile == path);
  CHECK(p.description == "child");
  CHECK(p.network.mode == sbx::NetworkMode::filtered);
  CHECK(p.network.allow_domains == std::vector<std::string>{"a.com", "b.com", "c.com"});
  CHECK(p.limits.memory_bytes == (2ull << 30));
  CHECK(p.process.env_set == std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}});
}

TEST_CASE("extends a built-in") {
  auto p = load("extends = \"airgapped\"\n[limits]\nmemory = \"1G\"\n");
  CHECK(p.network.mode == sbx::NetworkMode::none);
  CHECK(p.limits.memory_bytes == (1ull << 30));
  CHECK(std::count(p.filesystem.deny_read.begin(), p.filesystem.deny_read.end(), "/home/u/.ssh") ==
        1);
}

TEST_CASE("extends cycles are detected") {
  TempDir dir;
  dir.write("a.toml", "extends = \"b.toml\"\n");
  dir.write("b.toml", "extends = \"./a.toml\"\n");
  auto self = dir.write("self.toml", "extends = \"self.toml\"\n");
  try {
    load_profile((dir.path / "a.toml").string(), test_env());
    FAIL("no error");
  } catch (const ProfileError& e) {
    std::string what = e.what();
    CHECK(what.find("extends itself") != std::string::npos);
    CHECK(what.find("a.toml -> ") != std::string::npos);
  }
  CHECK_THROWS_AS(load_profile(self, test_env()), ProfileError);
}

TEST_CASE("errors carry FILE:LINE:COL and a fix") {
  // unknown key, with a did-you-mean
  auto e = load_error("[network]\nallow_domain = [\"x.com\"]\n");
  CHECK(e.find("t.toml:2:1: unknown key 'allow_domain' in [network]") != std::string::npos);
  CHECK(e.find("did you mean 'allow_domains'?") != std::string::npos);
  // a key that belongs to another section
  e = load_error("[network]\nmemory = \"1G\"\n");
  CHECK(e.find("did you mean 'memory' in [limits]?") != std::string::npos);
  // unknown section
  e = load_error("[netwrk]\nmode = \"none\"\n");
  CHECK(e.find("t.toml:1:2: unknown key 'netwrk' in the top level") != std::string::npos);
  CHECK(e.find("did you mean 'network'?") != std::string::npos);
  // type error, located at the value
  e = load_error("[network]\nallow_ports = \"443\"\n");
  CHECK(
      e.find(
          "t.toml:2:15: network.allow_ports: expected an array of port numbers, found a string") !=
      std::string::npos);
  // invalid values, located at the element
  e = load_error("[network]\nallow_cidrs = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n");
  CHECK(e.find("t.toml:2:30: network.allow_cidrs: invalid CIDR '10.0.0.1/8'") != std::string::npos);
  e = load_error("[network]\nallow_ports = [443, 70000]\n");
  CHECK(e.find("t.toml:2:21: network.allow_ports: invalid port 70000") != std::string::npos);
  e = load_error("[limits]\nmemory = \"4X\"\n");
  CHECK(e.find("t.toml:2:10: limits.memory: invalid size '4X'") != std::string::npos);
  e = load_error("[limits]\ntimeout = \"15 minutes\"\n");
  CHECK(e.find("t.toml:2:11: limits.timeout: invalid duration") != std::string::npos);
  e = load_error("[limits]\nmemory = 4096\n");
  CHECK(e.find("a size needs a unit") != std::string::npos);
  e = load_error("[network]\nallow_domains = [\"*.co.uk\"]\n");
  CHECK(
      e.find(
          "t.toml:2:18: network.allow_domains: domain pattern '*.co.uk' would allow every site") !=
      std::string::npos);
  e = load_error("[network]\nmode = \"filterd\"\n");
  CHECK(e.find("did you mean \"filtered\"?") != std::string::npos);
  e = load_error("[filesystem]\nhidden = [\"$SECRET/x\"]\n");
  CHECK(
      e.find("t.toml:2:11: filesystem.hidden: path '$SECRET/x' uses undefined variable $SECRET") !=
      std::string::npos);
  e = load_error("[network\n");
  CHECK(e.find("t.toml:1:") != std::string::npos);
  CHECK(e.find("invalid TOML") != std::string::npos);
  e = load_error("extends = \"no-such-profile\"\n");
  CHECK(e.find("t.toml:1:11: extends: unknown profile 'no-such-profile'") != std::string::npos);
  e = load_error("[process.env]\nset = { \"BAD-NAME\" = \"x\" }\n");
  CHECK(e.find("t.toml:2:9:") != std::string::npos);
}

TEST_CASE("validate: opaque ports must be allowed; host mode warns that filters are inert") {
  auto p = load("[network]\nmode = \"filtered\"\nopaque_ports = [22]\n");
  CHECK_THROWS_AS(validate(p), ProfileError);
  auto permissive = load_profile("permissive", test_env());
  auto warnings = validate(permissive);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("deny_cidrs") != std::string::npos);
  CHECK(validate(load_profile("strict", test_env())).empty());
}

TEST_CASE("validate: at most kMaxPortEntries allowed ports, host ports and published ports") {
  const auto ports = [](std::size_t n) {
    std::string list;
    for (std::size_t i = 0; i < n; ++i) list += (i ? "," : "") + std::to_string(20000 + i);
    return list;
  };
  auto ok = load("[network]\nmode = \"filtered\"\nallow_ports = [" + ports(kMaxPortEntries) +
                 "]\nhost_ports = [" + ports(kMaxPortEntries) + "]\n");
  CHECK_NOTHROW(validate(ok));
  // Only filtered mode makes the sockets (elsewhere the lists only warn).
  CHECK_NOTHROW(validate(
      load("[network]\nmode = \"none\"\nallow_ports = [" + ports(kMaxPortEntries + 1) + "]\n")));
  for (const std::string key : {"allow_ports", "host_ports"}) {
    INFO(key);
    auto p = load("[network]\nmode = \"filtered\"\n" + key + " = [" + ports(kMaxPortEntries + 1) +
                  "]\n");
    try {
      validate(p);
      FAIL("accepted");
    } catch (const ProfileError& e) {
      CHECK(std::string(e.what()) ==
            "network." + key +
                " has 257 entries; at most 256 (each is a listening socket of sbx's)");
      CHECK(e.fix() == "list only the ports the command needs");
    }
  }
}

TEST_CASE("built-ins: the four profiles and base exist and load") {
  std::vector<std::string> names;
  for (const auto& b : builtin_profiles()) names.push_back(std::string(b.name));
  CHECK(names == std::vector<std::string>{"airgapped", "base", "permissive", "standard", "strict"});
  const std::vector<std::string> secrets = {
      "/home/u/.ssh",   "/home/u/.aws",           "/home/u/.gnupg", "/home/u/.config/gh",
      "/home/u/.netrc", "/home/u/.docker",        "/home/u/.kube",  "/home/u/.config/gcloud",
      "/home/u/.azure", "/home/u/.password-store"};
  const std::vector<std::string> ranges = {"10.0.0.0/8",    "172.16.0.0/12",  "192.168.0.0/16",
                                           "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
                                           "fc00::/7",      "fe80::/10",      "::1/128"};
  for (const auto& b : builtin_profiles()) {
    INFO(b.name);
    auto p = load_profile(b.name, test_env());
    CHECK(!p.description.empty());
    for (const auto& s : secrets) {
      INFO(s);
      CHECK(std::count(p.filesystem.deny_read.begin(), p.filesystem.deny_read.end(), s) == 1);
    }
    for (const auto& r : ranges) {
      INFO(r);
      CHECK(std::count(p.network.deny_cidrs.begin(), p.network.deny_cidrs.end(), r) == 1);
    }
    CHECK(p.filesystem.workdir == "/work/proj");
  }
  CHECK(load_profile("permissive", test_env()).network.mode == sbx::NetworkMode::host);
  CHECK(load_profile("airgapped", test_env()).network.mode == sbx::NetworkMode::none);

  auto standard = load_profile("standard", test_env());
  CHECK(standard.network.mode == sbx::NetworkMode::filtered);
  CHECK(standard.network.allow_ports == std::vector<std::uint16_t>{22, 80, 443, 9418});
  CHECK(standard.network.opaque_ports == std::vector<std::uint16_t>{22, 9418});
  DomainMatcher sm(standard.network.allow_domains, standard.network.deny_domains);
  for (const char* host :
       {"registry.npmjs.org", "pypi.org", "files.pythonhosted.org", "index.crates.io",
        "rubygems.org", "cache.nixos.org", "github.com", "api.github.com",
        "raw.githubusercontent.com", "gitlab.com", "bitbucket.org", "registry-1.docker.io",
        "ghcr.io", "gcr.io", "api.anthropic.com"}) {
    INFO(host);
    CHECK(sm.decide(host) == DomainDecision::allow);
  }
  for (const char* host : {"pastebin.com", "transfer.sh", "abc.ngrok.io", "x.ngrok-free.app"}) {
    INFO(host);
    CHECK(sm.decide(host) == DomainDecision::deny);
  }
  CHECK(sm.decide("evil.example") == DomainDecision::unlisted);

  auto strict = load_profile("strict", test_env());
  CHECK(strict.network.mode == sbx::NetworkMode::filtered);
  CHECK(strict.process.seccomp == sbx::SeccompMode::strict);
  CHECK(strict.limits.required);
  CHECK(strict.limits.memory_bytes.has_value());
  CHECK(strict.limits.pids.has_value());
  DomainMatcher st(strict.network.allow_domains, strict.network.deny_domains);
  CHECK(st.decide("api.anthropic.com") == DomainDecision::allow);
  CHECK(st.decide("github.com") == DomainDecision::unlisted);
  CHECK(st.decide("sentry.io") == DomainDecision::unlisted);
  for (const char* path :
       {"/work/proj/.git/hooks", "/work/proj/.git/config", "/work/proj/.gitmodules",
        "/work/proj/.bashrc", "/work/proj/.zshrc", "/work/proj/.mcp.json", "/work/proj/.vscode",
        "/work/proj/.idea", "/work/proj/.claude/commands", "/work/proj/.claude/agents",
        "/work/proj/.gitconfig", "/work/proj/.ripgreprc", "/work/proj/.profile"}) {
    INFO(path);
    CHECK(std::count(strict.filesystem.deny_write.begin(), strict.filesystem.deny_write.end(),
                     path) == 1);
  }
  CHECK(std::count(strict.filesystem.allow_write.begin(), strict.filesystem.allow_write.end(),
                   "/home/u/.claude") == 1);
  CHECK(std::count(strict.filesystem.allow_write.begin(), strict.filesystem.allow_write.end(),
                   "/home/u/.claude.json") == 1);
}

TEST_CASE("round trip: TOML -> Policy -> TOML -> equal Policy") {
  std::vector<sbx::Policy> policies;
  for (const auto& b : builtin_profiles()) policies.push_back(load_profile(b.name, test_env()));
  // Custom ones: every optional set, odd strings, overrides on top.
  policies.push_back(load(R"(
description = "quote \" backslash \\ tab \t unicode é"
name = "x"
[filesystem]
workdir = ""
tmpfs = ["/a:size=1536M,mode=0700", "/b"]
[network]
mode = "filtered"
allow_domains = ["bücher.example", "*.example.org"]
deny_domains = ["*"]
allow_ports = [443]
opaque_ports = [443]
publish = ["1:2"]
dns_upstream = ["[::1]:53"]
[process]
uid = 0
[process.env]
set = { A = "multi\nline", EMPTY = "" }
[process.rlimits]
nofile = 0
fsize = "1G"
[limits]
cpus = 0.3333
swap = "0"
timeout = "1h1m1s1ms"
kill_after = "0"
)"));
  {
    auto p = load_profile("strict", test_env());
    Overrides o;
    o.allow_domains = {"example.org"};
    o.memory = "1G";
    o.user = ":7";
    o.tty = sbx::TtyMode::always;
    o.report = "out/report.json";
    apply_overrides(p, o, test_env());
    policies.push_back(p);
  }
  for (const auto& p : policies) {
    INFO(p.profile);
    std::string text = to_toml(p);
    INFO(text);
    // Valid TOML for an independent reader as well.
    CHECK_NOTHROW(toml::parse(text));
    auto again = load_profile_text(text, p.profile, "resolved.toml", test_env());
    CHECK(again == p);
    CHECK(to_toml(again) == text);
  }
}

TEST_CASE("JSON output mirrors the policy with units in the key names") {
  auto p = load_profile("strict", test_env());
  auto j = to_json(p);
  CHECK(j["profile"] == "strict");
  CHECK(j["network"]["mode"] == "filtered");
  CHECK(j["limits"]["memory_bytes"] == (8ull << 30));
  CHECK(j["limits"]["required"] == true);
  CHECK(j["limits"]["timeout_ms"].is_null());
  CHECK(j["process"]["seccomp"]["mode"] == "strict");
  CHECK(j["filesystem"]["hidden"].size() == p.filesystem.deny_read.size());
  auto reparsed = nlohmann::json::parse(j.dump());
  CHECK(reparsed == j);
}
