// sbx version
#include <fmt/format.h>

#include "cli/commands.hpp"

namespace sbx::cli {

Command add_version(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("version", "Print the version of sbx");
  cmd->footer("\nExample:\n  sbx version\n");
  return [cmd]() -> int {
    if (!cmd->parsed()) return -1;
    fmt::print("sbx {}\n", SBX_VERSION);
    return 0;
  };
}

}  // namespace sbx::cli
