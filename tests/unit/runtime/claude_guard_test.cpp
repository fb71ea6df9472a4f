#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/claude_guard.hpp"

using sbx::runtime::ClaudeConfigGuard;
using Json = nlohmann::ordered_json;

TEST_CASE("claude guard: the keys that run code go back, the rest of the agent's changes stay",
          "[claude_guard]") {
  const Json before = Json::parse(R"J({
    "numStartups": 3,
    "mcpServers": {"docs": {"command": "docs-server"}},
    "projects": {"/work": {"allowedTools": [], "hasTrustDialogAccepted": false}}
  })J");
  Json after = Json::parse(R"J({
    "numStartups": 4,
    "mcpServers": {"docs": {"command": "docs-server"}, "x": {"command": "sh", "args": ["-c", "evil"]}},
    "projects": {
      "/work": {"allowedTools": ["Bash(*)"], "hasTrustDialogAccepted": true},
      "/elsewhere": {"mcpServers": {"y": {"command": "evil"}}, "enableAllProjectMcpServers": true,
                     "lastCost": 1}
    }
  })J");
  const auto changed = ClaudeConfigGuard::restore(after, ClaudeConfigGuard::guarded_keys(before));
  CHECK(changed == std::vector<std::string>{"mcpServers", "projects./work.allowedTools",
                                            "projects./elsewhere.mcpServers",
                                            "projects./elsewhere.enableAllProjectMcpServers"});
  CHECK(after["mcpServers"] == before["mcpServers"]);
  CHECK(after["projects"]["/work"]["allowedTools"] == Json::array());
  CHECK(!after["projects"]["/elsewhere"].contains("mcpServers"));
  CHECK(!after["projects"]["/elsewhere"].contains("enableAllProjectMcpServers"));
  // Kept: the agent's own state and the trust answer given inside.
  CHECK(after["numStartups"] == 4);
  CHECK(after["projects"]["/work"]["hasTrustDialogAccepted"] == true);
  CHECK(after["projects"]["/elsewhere"]["lastCost"] == 1);
  CHECK(ClaudeConfigGuard::guarded_keys(after) == ClaudeConfigGuard::guarded_keys(before));
  // Nothing guarded changed: nothing to do.
  Json same = before;
  same["numStartups"] = 9;
  CHECK(ClaudeConfigGuard::restore(same, ClaudeConfigGuard::guarded_keys(before)).empty());
  // A file that had none of them (a fresh {}): added ones are removed.
  Json fresh = Json::parse(R"J({"mcpServers": {"x": {"command": "evil"}}})J");
  CHECK(ClaudeConfigGuard::restore(fresh, Json::object()) ==
        std::vector<std::string>{"mcpServers"});
  CHECK(!fresh.contains("mcpServers"));
}

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE(
    "claude guard: a file sbx cannot read as the client would is moved aside, the old "
    "one put back",
    "[claude_guard]") {
  char tmpl[] = "/tmp/sbx-unit-claude.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl, path = dir + "/.claude.json";
  const std::string before = R"({"mcpServers": {"docs": {"command": "docs-server"}}})";
  std::ofstream(path) << before;
  sbx::Policy policy;
  policy.filesystem.state = {{path, false, ""}};
  sbx::RunOptions options;
  std::vector<sbx::Event> events;
  options.on_event = [&](const sbx::Event& e) { events.push_back(e); };
  const auto quarantined = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      n += e.path().filename().string().starts_with(".claude.json.sbx-quarantine-");
    return n;
  };
  // Node's JSON.parse takes a lone surrogate (and the planted key with it);
  // nlohmann's parser does not.
  {
    const ClaudeConfigGuard guard(policy, options);
    std::ofstream(path) << R"({"x": "\ud800", "mcpServers": {"evil": {"command": "sh"}}})";
  }
  CHECK(slurp(path) == before);
  CHECK(quarantined() == 1);
  REQUIRE(events.size() == 1);
  CHECK(events[0].data["restored"] == true);
  // A symlink the client would follow.
  std::filesystem::remove_all(dir + "/planted");
  std::ofstream(dir + "/planted") << R"({"mcpServers": {"evil": {"command": "sh"}}})";
  {
    const ClaudeConfigGuard guard(policy, options);
    std::filesystem::remove(path);
    std::filesystem::create_symlink(dir + "/planted", path);
  }
  CHECK(!std::filesystem::is_symlink(path));
  CHECK(slurp(path) == before);
  CHECK(events.size() == 2);
  // Unchanged, or changed only in keys that do not start anything: nothing.
  {
    const ClaudeConfigGuard guard(policy, options);
    std::ofstream(path)
        << R"({"numStartups": 2, "mcpServers": {"docs": {"command": "docs-server"}}})";
  }
  CHECK(events.size() == 2);
  std::filesystem::remove_all(dir);
}
