// Value grammar: sizes, durations, CIDRs, ports, tmpfs, users, paths.
#include <catch2/catch.hpp>

#include "profile_test_env.hpp"
#include "profiles/profiles.hpp"

using namespace sbx::profiles;
using namespace sbx::profiles::test;
using namespace std::chrono_literals;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProfileError& e) {
    return std::string(e.what()) + " | " + e.fix();
  }
  return "no error";
}
}  // namespace

TEST_CASE("sizes parse with binary units and print in the shortest exact form") {
  CHECK(parse_size("4G") == (4ull << 30));
  CHECK(parse_size("512M") == (512ull << 20));
  CHECK(parse_size("64k") == (64ull << 10));
  CHECK(parse_size("1.5G") == (3ull << 29));
  CHECK(parse_size("4GiB") == (4ull << 30));
  CHECK(parse_size("2mb") == (2ull << 20));
  CHECK(parse_size("100") == 100);
  CHECK(parse_size("0") == 0);
  CHECK(parse_size("1T") == (1ull << 40));
  for (const char* bad :
       {"", "G", "4X", "-1G", "4 G", "1.G", "4GG", "0.3K", "99999999999T", "4Gi"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_size(bad), ProfileError);
  }
  CHECK(format_size(1ull << 30) == "1G");
  CHECK(format_size(3ull << 29) == "1536M");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(0) == "0");
  CHECK(error_of([] { parse_size("4X"); }).find("invalid size '4X'") != std::string::npos);
}

TEST_CASE("durations parse unit sequences and print back") {
  CHECK(parse_duration("15m") == 15min);
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("2d") == 48h);
  CHECK(parse_duration("1m30s500ms") == 90500ms);
  CHECK(parse_duration("0") == 0ms);
  for (const char* bad : {"", "15", "m", "15x", "1h30", "-5s", "1.5h", "99999999999999s"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_duration(bad), ProfileError);
  }
  CHECK(format_duration(90min) == "1h30m");
  CHECK(format_duration(500ms) == "500ms");
  CHECK(format_duration(10s) == "10s");
  CHECK(format_duration(0ms) == "0");
  CHECK(parse_duration(format_duration(93784005ms)) == 93784005ms);
}

TEST_CASE("CIDRs are canonical and refuse host bits") {
  CHECK(parse_cidr("10.0.0.0/8") == "10.0.0.0/8");
  CHECK(parse_cidr("1.2.3.4") == "1.2.3.4/32");
  CHECK(parse_cidr("FC00::/7") == "fc00::/7");
  CHECK(parse_cidr("2001:db8:0:0::/32") == "2001:db8::/32");
  CHECK(parse_cidr("::1") == "::1/128");
  CHECK(parse_cidr("0.0.0.0/0") == "0.0.0.0/0");
  CHECK_THROWS_AS(parse_cidr("10.0.0.1/8"), ProfileError);
  CHECK(error_of([] { parse_cidr("10.0.0.1/8"); }).find("\"10.0.0.0/8\"") != std::string::npos);
  for (const char* bad :
       {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "fc00::/129", "example.com/8", "1.2.3.4/x"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_cidr(bad), ProfileError);
  }
}

TEST_CASE("ports, published ports, users, DNS servers") {
  CHECK(parse_port("443") == 443);
  CHECK(parse_port("65535") == 65535);
  CHECK_THROWS_AS(parse_port("0"), ProfileError);
  CHECK_THROWS_AS(parse_port("65536"), ProfileError);
  CHECK_THROWS_AS(parse_port("https"), ProfileError);
  CHECK_THROWS_AS(check_port(-1), ProfileError);
  CHECK(parse_publish("8080:3000") == sbx::PublishedPort{8080, 3000});
  CHECK_THROWS_AS(parse_publish("8080"), ProfileError);
  auto [uid, gid] = parse_user("1000:100");
  CHECK(uid == 1000u);
  CHECK(gid == 100u);
  CHECK(parse_user("0").first == 0u);
  CHECK(!parse_user("0").second);
  CHECK(parse_user(":5").second == 5u);
  CHECK_THROWS_AS(parse_user("root"), ProfileError);
  CHECK_THROWS_AS(parse_user("4294967295"), ProfileError);
  CHECK_THROWS_AS(parse_user(":"), ProfileError);
  CHECK(parse_dns_upstream("1.1.1.1") == "1.1.1.1");
  CHECK(parse_dns_upstream("1.1.1.1:5353") == "1.1.1.1:5353");
  CHECK(parse_dns_upstream("2606:4700::1111") == "2606:4700::1111");
  CHECK(parse_dns_upstream("[2606:4700:0::1111]:53") == "[2606:4700::1111]:53");
  CHECK_THROWS_AS(parse_dns_upstream("dns.google"), ProfileError);
  CHECK_THROWS_AS(parse_dns_upstream("1.1.1.1:0"), ProfileError);
}

TEST_CASE("paths expand ~, $HOME, $CWD, $TMPDIR and must be absolute") {
  auto env = test_env();
  CHECK(expand_path("~", env) == "/home/u");
  CHECK(expand_path("~/.ssh", env) == "/home/u/.ssh");
  CHECK(expand_path("$HOME/.aws/", env) == "/home/u/.aws");
  CHECK(expand_path("${CWD}/.git/hooks", env) == "/work/proj/.git/hooks");
  CHECK(expand_path("$TMPDIR/x", env) == "/tmp/x");
  CHECK(expand_path("/a/./b/../c", env) == "/a/c");
  CHECK(expand_path("/cost$$", env) == "/cost$");
  CHECK(error_of([&] { expand_path("$FOO/x", env); }).find("undefined variable $FOO") !=
        std::string::npos);
  CHECK_THROWS_AS(expand_path("relative/x", env), ProfileError);
  CHECK_THROWS_AS(expand_path("~bob/x", env), ProfileError);
  CHECK_THROWS_AS(expand_path("${HOME/x", env), ProfileError);
  Environment no_home = env;
  no_home.home.reset();
  CHECK(error_of([&] { expand_path("~/.ssh", no_home); }).find("not set") != std::string::npos);
  CHECK(expand_path("/abs", no_home) == "/abs");
}

TEST_CASE("tmpfs specs") {
  auto env = test_env();
  auto m = parse_tmpfs("/scratch:size=1G,mode=0700", env);
  CHECK(m.path == "/scratch");
  CHECK(m.size_bytes == (1ull << 30));
  CHECK(m.mode == 0700);
  auto d = parse_tmpfs("~/cache", env);
  CHECK(d.path == "/home/u/cache");
  CHECK(d.size_bytes == (64ull << 20));
  CHECK(d.mode == 01777);
  CHECK(format_tmpfs(m) == "/scratch:size=1G,mode=0700");
  CHECK(parse_tmpfs(format_tmpfs(m), env) == m);
  CHECK_THROWS_AS(parse_tmpfs("/x:size=0", env), ProfileError);
  CHECK_THROWS_AS(parse_tmpfs("/x:mode=0999", env), ProfileError);
  CHECK_THROWS_AS(parse_tmpfs("/x:size=1G,uid=0", env), ProfileError);
  CHECK_THROWS_AS(parse_tmpfs("/x:mode=17777", env), ProfileError);
}

TEST_CASE("environment and syscall names") {
  CHECK_NOTHROW(check_env_name("LC_*", true));
  CHECK_NOTHROW(check_env_name("_X1", false));
  CHECK_THROWS_AS(check_env_name("LC_*", false), ProfileError);
  CHECK_THROWS_AS(check_env_name("*", true), ProfileError);
  CHECK_THROWS_AS(check_env_name("1X", false), ProfileError);
  CHECK_THROWS_AS(check_env_name("A-B", false), ProfileError);
  CHECK_NOTHROW(check_syscall_name("ptrace"));
  CHECK_NOTHROW(check_syscall_name("@system-service"));
  CHECK_THROWS_AS(check_syscall_name("Ptrace"), ProfileError);
  CHECK_THROWS_AS(check_syscall_name("@"), ProfileError);
  CHECK(parse_network_mode("filtered") == sbx::NetworkMode::filtered);
  CHECK_THROWS_AS(parse_network_mode("bridge"), ProfileError);
}
