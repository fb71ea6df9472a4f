// filesystem.state: the agent-state key (string and table forms, merge,
// implied writability, errors, printing).
#include <catch2/catch.hpp>

#include <algorithm>

#include <toml++/toml.h>

#include "profile_test_env.hpp"
#include "profiles/profiles.hpp"

using namespace sbx::profiles;
using namespace sbx::profiles::test;

namespace {

bool writable(const sbx::Policy& p, const std::string& path) {
  const auto& w = p.filesystem.allow_write;
  return std::count(w.begin(), w.end(), path) == 1;
}

}  // namespace

TEST_CASE("state: a trailing slash names a directory, tables give type and content") {
  auto p = load(R"(
[filesystem]
state = [
  "~/.agent/",
  "$CWD/.agent-notes",
  { path = "~/.agent.json", content = "{}\n" },
  { path = "~/.cache/agent", type = "dir" },
]
)");
  const auto& s = p.filesystem.state;
  REQUIRE(s.size() == 4);
  CHECK(s[0] == sbx::StatePath{"/home/u/.agent", true, ""});
  CHECK(s[1] == sbx::StatePath{"/work/proj/.agent-notes", false, ""});
  CHECK(s[2] == sbx::StatePath{"/home/u/.agent.json", false, "{}\n"});
  CHECK(s[3] == sbx::StatePath{"/home/u/.cache/agent", true, ""});
  // Every state path is writable, once.
  for (const auto& st : s) {
    INFO(st.path);
    CHECK(writable(p, st.path));
  }
}

TEST_CASE("state: a later layer re-declares a path, writable stays unique") {
  auto p = load(R"(
extends = "strict"
[filesystem]
writable = ["~/.claude"]
state = [{ path = "~/.claude.json", content = "{\"x\":1}" }]
)");
  const auto& s = p.filesystem.state;
  REQUIRE(s.size() == 2);
  CHECK(s[0] == sbx::StatePath{"/home/u/.claude", true, ""});
  CHECK(s[1] == sbx::StatePath{"/home/u/.claude.json", false, "{\"x\":1}"});
  CHECK(writable(p, "/home/u/.claude"));
  CHECK(writable(p, "/home/u/.claude.json"));
}

TEST_CASE("state: strict declares Claude Code's state with content the client accepts") {
  auto strict = load_profile("strict", test_env());
  REQUIRE(strict.filesystem.state.size() == 2);
  CHECK(strict.filesystem.state[0] == sbx::StatePath{"/home/u/.claude", true, ""});
  // An empty ~/.claude.json is "corrupted" for Claude Code 2.1.x; {} is not.
  CHECK(strict.filesystem.state[1] == sbx::StatePath{"/home/u/.claude.json", false, "{}\n"});
  CHECK(writable(strict, "/home/u/.claude"));
  CHECK(writable(strict, "/home/u/.claude.json"));
  // The rest of the home is not writable; its rc files are read-only.
  CHECK_FALSE(writable(strict, "/home/u"));
  const auto& ro = strict.filesystem.deny_write;
  CHECK(std::count(ro.begin(), ro.end(), "/home/u/.bashrc") == 1);
}

TEST_CASE("state: errors name the key and say what to write") {
  CHECK_THAT(load_error("[filesystem]\nstate = \"~/.a\"\n"),
             Catch::Contains("t.toml:2:9: filesystem.state: expected an array"));
  CHECK_THAT(load_error("[filesystem]\nstate = [1]\n"),
             Catch::Contains("expected a string or a table"));
  CHECK_THAT(load_error("[filesystem]\nstate = [{ type = \"dir\" }]\n"),
             Catch::Contains("a state table needs a path"));
  CHECK_THAT(load_error("[filesystem]\nstate = [{ path = \"~/.a\", type = \"fifo\" }]\n"),
             Catch::Contains("invalid type \"fifo\"") && Catch::Contains("type = \"dir\""));
  CHECK_THAT(load_error("[filesystem]\nstate = [{ path = \"~/.a\", mode = \"0777\" }]\n"),
             Catch::Contains("unknown state key 'mode'"));
  CHECK_THAT(load_error("[filesystem]\nstate = [{ path = \"~/.a/\", content = \"x\" }]\n"),
             Catch::Contains("is a directory and cannot have content"));
  CHECK_THAT(load_error("[filesystem]\nstate = [\"relative/x\"]\n"),
             Catch::Contains("is not absolute"));
  CHECK_THAT(load_error("[filesystem]\nstate = [\"/\"]\n"), Catch::Contains("resolves to /"));
  CHECK_THAT(load_error("[filesystem]\nstates = []\n"), Catch::Contains("did you mean 'state'"));
}

TEST_CASE("state: printed as TOML and JSON, and read back equal") {
  auto p = load(R"(
[filesystem]
writable = ["/data"]
state = ["~/.agent/", { path = "~/.agent.json", content = "{}\n\"q\"" }]
)");
  std::string text = to_toml(p);
  CHECK_THAT(text, Catch::Contains("{ path = \"/home/u/.agent\", type = \"dir\" }"));
  CHECK_THAT(
      text,
      Catch::Contains(
          "{ path = \"/home/u/.agent.json\", type = \"file\", content = \"{}\\n\\\"q\\\"\" }"));
  CHECK_NOTHROW(toml::parse(text));
  auto again = load_profile_text(text, p.profile, "resolved.toml", test_env());
  CHECK(again == p);
  CHECK(to_toml(again) == text);
  auto json = to_json(p);
  REQUIRE(json["filesystem"]["state"].size() == 2);
  CHECK(json["filesystem"]["state"][0]["type"] == "dir");
  CHECK_FALSE(json["filesystem"]["state"][0].contains("content"));
  CHECK(json["filesystem"]["state"][1]["content"] == "{}\n\"q\"");
  CHECK(json["filesystem"]["writable"] ==
        nlohmann::json::array({"/data", "/home/u/.agent", "/home/u/.agent.json"}));
}
