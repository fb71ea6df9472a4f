// ClaudeConfigGuard: Claude Code's ~/.claude.json is agent state the sandbox
// must be able to write (filesystem.state), but some of its keys make the
// HOST's next, unsandboxed client run code or skip a question:
//   "mcpServers" (user scope: commands the client starts), and per project
//   "mcpServers", "allowedTools" (tools it runs without asking),
//   "enabledMcpjsonServers", "disabledMcpjsonServers",
//   "enableAllProjectMcpServers" (which .mcp.json servers it starts).
// Not the trust answer (hasTrustDialogAccepted): given inside, it is kept,
// or every run would ask again; what a trusted work dir could plant
// (.mcp.json, .claude/settings*.json) is read-only in strict.
// Their values are taken before the run and put back after it, keeping every
// other change the agent made, with a "violation" event (kind
// agent_config) and a warning naming the keys. Runs that overlap all put
// back the values from before the first of them started. The same for a .claude.json
// inside a state directory (CLAUDE_CONFIG_DIR=~/.claude keeps it there).
// docs/filesystem.md ("Agent state").
#pragma once

#include <sbx/sbx.hpp>

#include "runtime/shared_baseline.hpp"

#include <sys/stat.h>
#include <functional>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::runtime {

class ClaudeConfigGuard {
 public:
  ClaudeConfigGuard(const Policy& policy, const RunOptions& options);
  // Compares and puts the keys back. Never throws.
  ~ClaudeConfigGuard();
  ClaudeConfigGuard(const ClaudeConfigGuard&) = delete;
  ClaudeConfigGuard& operator=(const ClaudeConfigGuard&) = delete;

  // The guarded keys of a .claude.json document (an object; empty when none).
  static nlohmann::ordered_json guarded_keys(const nlohmann::ordered_json& doc);
  // The bytes of a .claude.json as the client (Node) reads them, for
  // nlohmann's parser: invalid UTF-8 as U+FFFD, a lone surrogate escape as
  // \ufffd. Bytes the sandbox wrote (tests/fuzz/fuzz_claude_json.cpp).
  static std::string as_node_reads(std::string_view bytes);
  // Puts `before` (guarded_keys of the old document) back into `doc`: keys
  // it lacks are removed. Returns the names of the keys that changed
  // ("mcpServers", "projects./work.allowedTools", ...).
  static std::vector<std::string> restore(nlohmann::ordered_json& doc,
                                          const nlohmann::ordered_json& before);

 private:
  void check_and_restore() noexcept;
  const RunOptions& options_;
  struct Watched {
    std::string path;
    std::string dir;     // its directory ("." for a bare name)
    std::string before;  // its bytes (parsed only if they change; empty if none)
    // Held for the run: `before` is the first overlapping run's
    // (shared_baseline.hpp): two agents sharing ~/.claude.json at once.
    std::optional<SharedBaseline> baseline;
  };
  std::vector<Watched> files_;
  void replace_unreadable(const Watched& file, const struct stat& st) noexcept;
};

}  // namespace sbx::runtime
