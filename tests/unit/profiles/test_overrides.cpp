// Command-line overrides: the last layer; errors name the flag.
#include <catch2/catch.hpp>

#include "profile_test_env.hpp"
#include "profiles/profiles.hpp"

using namespace sbx::profiles;
using namespace sbx::profiles::test;
using namespace std::chrono_literals;

namespace {
std::string override_error(const Overrides& o) {
  sbx::Policy p;
  try {
    apply_overrides(p, o, test_env());
  } catch (const ProfileError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("overrides append to lists and replace scalars") {
  auto p = load_profile("standard", test_env());
  const auto domains_before = p.network.allow_domains.size();
  Overrides o;
  o.network = "none";
  o.allow_domains = {"Example.ORG", "example.org", "registry.npmjs.org"};
  o.deny_cidrs = {"198.51.100.0/24"};
  o.allow_ports = {"8443"};
  o.writable = {"out", "~/x", "$TMPDIR/y"};
  o.read_only = {"/etc/z"};
  o.hidden = {"secret"};
  o.tmpfs = {"scratch:size=1G"};
  o.memory = "1G";
  o.cpus = "0.5";
  o.pids = "64";
  o.timeout = "15m";
  o.kill_after = "3s";
  o.env_set = {"A=1", "B=x=y", "EMPTY="};
  o.env_keep = {"GITHUB_*"};
  o.name = "job.1";
  o.audit_log = "audit.jsonl";
  o.report = "-";
  o.user = "1000";
  o.tty = sbx::TtyMode::never;
  apply_overrides(p, o, test_env());
  CHECK(p.network.mode == sbx::NetworkMode::none);
  // duplicates (also after normalisation, and of the profile's own entries) are dropped
  CHECK(p.network.allow_domains.size() == domains_before + 1);
  CHECK(p.network.allow_domains.back() == "example.org");
  CHECK(p.network.deny_cidrs.back() == "198.51.100.0/24");
  CHECK(p.network.allow_ports.back() == 8443);
  CHECK(p.filesystem.allow_write ==
        std::vector<std::string>{"/home/u/.claude", "/home/u/.claude.json", "/work/proj/out",
                                 "/home/u/x", "/tmp/y"});
  CHECK(p.filesystem.deny_write == std::vector<std::string>{"/etc/z"});
  CHECK(p.filesystem.deny_read.back() == "/work/proj/secret");
  REQUIRE(p.filesystem.tmpfs.size() == 1);
  CHECK(p.filesystem.tmpfs[0].path == "/work/proj/scratch");
  CHECK(p.limits.memory_bytes == (1ull << 30));
  CHECK(p.limits.cpus == 0.5);
  CHECK(p.limits.pids == 64u);
  CHECK(p.limits.timeout == 15min);
  CHECK(p.limits.kill_after == 3s);
  CHECK(p.process.env_set.at("A") == "1");
  CHECK(p.process.env_set.at("B") == "x=y");
  CHECK(p.process.env_set.at("EMPTY") == "");
  CHECK(p.process.env_keep.back() == "GITHUB_*");
  CHECK(p.name == "job.1");
  CHECK(p.audit.log == "/work/proj/audit.jsonl");
  CHECK(p.audit.report == "-");
  CHECK(p.process.uid == 1000u);
  CHECK(!p.process.gid);
  CHECK(p.process.tty == sbx::TtyMode::never);
}

TEST_CASE("'unlimited' lifts a profile's limit") {
  auto p = load_profile("strict", test_env());
  REQUIRE(p.limits.memory_bytes);
  Overrides o;
  o.memory = "unlimited";
  o.pids = "unlimited";
  o.cpus = "unlimited";
  apply_overrides(p, o, test_env());
  CHECK(!p.limits.memory_bytes);
  CHECK(!p.limits.pids);
  CHECK(!p.limits.cpus);
}

TEST_CASE("override errors name the flag and its value") {
  Overrides o;
  o.memory = "lots";
  CHECK(override_error(o).starts_with("--memory lots: invalid size"));
  o = {};
  o.allow_domains = {"*.com"};
  CHECK(override_error(o).starts_with("--allow-domain *.com: "));
  o = {};
  o.deny_domains = {"*"};
  CHECK(override_error(o) == "no error");
  o = {};
  o.env_set = {"NOVALUE"};
  CHECK(override_error(o).starts_with("--env NOVALUE: expected NAME=VALUE"));
  o = {};
  o.pids = "-3";
  CHECK(override_error(o).starts_with("--pids -3: "));
  o = {};
  o.cpus = "2x";
  CHECK(override_error(o).starts_with("--cpus 2x: "));
  o = {};
  o.timeout = "0";
  CHECK(override_error(o).starts_with("--timeout 0: must be above 0"));
  o = {};
  o.name = "";
  CHECK(override_error(o).starts_with("--name : invalid sandbox name"));
  o = {};
  o.hidden = {"$NOPE"};
  CHECK(override_error(o).starts_with("--hide $NOPE: "));
  o = {};
  o.user = "a:b";
  CHECK(override_error(o).starts_with("--user a:b: "));
}

TEST_CASE("resolve = profile + overrides + validate, warnings returned") {
  Overrides o;
  o.allow_domains = {"example.org"};
  std::vector<std::string> warnings;
  auto p = resolve("airgapped", o, test_env(), &warnings);
  CHECK(p.profile == "airgapped");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("network mode \"none\"") != std::string::npos);
  Overrides bad;
  bad.network = "filtered";
  auto ok = resolve("airgapped", bad, test_env(), nullptr);
  CHECK(ok.network.mode == sbx::NetworkMode::filtered);
  CHECK_THROWS_AS(resolve("no-such-profile", {}, test_env()), ProfileError);
}

TEST_CASE("network none chosen on the command line alone does not warn about the allow lists") {
  Overrides none;
  none.network = "none";
  std::vector<std::string> warnings;
  auto p = resolve("standard", none, test_env(), &warnings);
  CHECK(p.network.mode == sbx::NetworkMode::none);
  CHECK_FALSE(p.network.allow_domains.empty());  // kept: the audit shows the profile as it is
  CHECK(warnings.empty());
  // An allow list given beside it on the command line is still a mistake.
  none.allow_cidrs = {"203.0.113.0/24"};
  warnings.clear();
  resolve("standard", none, test_env(), &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("network mode \"none\"") != std::string::npos);
  // So is a profile whose own mode is "none" with an allow list, when no
  // --net none says the same.
  sbx::Policy p2 = resolve("standard", none, test_env(), nullptr);
  CHECK(validate(p2).size() == 1);
  CHECK(validate(p2, Overrides{}).size() == 1);
  // --settings takes the same path.
  Overrides only_none;
  only_none.network = "none";
  CHECK(validate(p2, only_none).empty());
}
