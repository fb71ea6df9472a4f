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
