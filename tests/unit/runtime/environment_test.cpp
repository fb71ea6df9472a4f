#include <catch2/catch.hpp>

#include <algorithm>

#include "runtime/environment.hpp"

using sbx::ProcessPolicy;
using sbx::runtime::build_environment;
using sbx::runtime::env_value;
using sbx::runtime::exec_candidates;
using sbx::runtime::Identity;

namespace {

Identity alice() {
  Identity id;
  id.uid = 1000;
  id.gid = 1000;
  id.user_name = "alice";
  id.home = "/home/alice";
  id.shell = "/bin/bash";
  return id;
}

bool has(const std::vector<std::string>& env, const std::string& name) {
  return std::any_of(env.begin(), env.end(),
                     [&](const std::string& item) { return item.rfind(name + "=", 0) == 0; });
}

}  // namespace

TEST_CASE("environment keeps the allowlist and drops secrets", "[environment]") {
  const char* host[] = {"PATH=/usr/bin:/bin",
                        "TERM=xterm-256color",
                        "LANG=C.UTF-8",
                        "LC_ALL=C",
                        "GITHUB_TOKEN=x",
                        "AWS_SECRET_ACCESS_KEY=y",
                        "SSH_AUTH_SOCK=/tmp/a",
                        "TZ=UTC",
                        "NOEQUALS",
                        nullptr};
  auto env = build_environment(ProcessPolicy{}, alice(), host);
  CHECK(env_value(env, "PATH") == "/usr/bin:/bin");
  CHECK(env_value(env, "TERM") == "xterm-256color");
  CHECK(env_value(env, "LC_ALL") == "C");
  CHECK(env_value(env, "TZ") == "UTC");
  CHECK_FALSE(has(env, "GITHUB_TOKEN"));
  CHECK_FALSE(has(env, "AWS_SECRET_ACCESS_KEY"));
  CHECK_FALSE(has(env, "SSH_AUTH_SOCK"));
  CHECK_FALSE(has(env, "NOEQUALS"));
}

TEST_CASE("environment names the sandbox user, not the caller", "[environment]") {
  const char* host[] = {"USER=root", "LOGNAME=root", "HOME=/root", "SHELL=/bin/zsh", nullptr};
  auto env = build_environment(ProcessPolicy{}, alice(), host);
  CHECK(env_value(env, "USER") == "alice");
  CHECK(env_value(env, "LOGNAME") == "alice");
  CHECK(env_value(env, "HOME") == "/home/alice");
  CHECK(env_value(env, "SHELL") == "/bin/bash");
  CHECK(env_value(env, "PATH") == sbx::runtime::kDefaultPath);
}

TEST_CASE("env_keep passes a named variable and env_set overrides", "[environment]") {
  const char* host[] = {"GITHUB_TOKEN=x", "TERM=dumb", nullptr};
  ProcessPolicy process;
  process.env_keep = {"GITHUB_TOKEN", "NOT_SET_ON_HOST"};
  process.env_set = {{"TERM", "xterm"}, {"FOO", "bar=baz"}};
  auto env = build_environment(process, alice(), host);
  CHECK(env_value(env, "GITHUB_TOKEN") == "x");
  CHECK_FALSE(has(env, "NOT_SET_ON_HOST"));
  CHECK(env_value(env, "TERM") == "xterm");
  CHECK(env_value(env, "FOO") == "bar=baz");
}

TEST_CASE("env_keep prefix patterns", "[environment]") {
  const char* host[] = {"AWS_REGION=eu", "AWS_PROFILE=p", "AWSX=1", "XAWS_A=2", nullptr};
  ProcessPolicy process;
  process.env_keep = {"AWS_*"};
  auto env = build_environment(process, alice(), host);
  CHECK(env_value(env, "AWS_REGION") == "eu");
  CHECK(env_value(env, "AWS_PROFILE") == "p");
  CHECK_FALSE(has(env, "AWSX"));
  CHECK_FALSE(has(env, "XAWS_A"));
}

TEST_CASE("exec candidates follow execvp's PATH rules", "[environment]") {
  CHECK(exec_candidates("ls", "/usr/local/bin:/usr/bin/") ==
        std::vector<std::string>{"/usr/local/bin/ls", "/usr/bin/ls"});
  CHECK(exec_candidates("./run.sh", "/bin") == std::vector<std::string>{"./run.sh"});
  CHECK(exec_candidates("/bin/true", "/usr/bin") == std::vector<std::string>{"/bin/true"});
  CHECK(exec_candidates("x", ":/bin") == std::vector<std::string>{"./x", "/bin/x"});
  CHECK(exec_candidates("", "/bin").empty());
}
