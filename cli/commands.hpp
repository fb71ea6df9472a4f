// The sub-commands of the sbx executable. Each registers its options on the
// CLI11 app and returns a function that runs it and gives the exit code.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace sbx::cli {

using Command = std::function<int()>;

// `command` is what followed the first "--" on the command line (run only).
Command add_run(CLI::App& app, const std::vector<std::string>& command);
Command add_profile(CLI::App& app);
Command add_version(CLI::App& app);
Command add_completion(CLI::App& app);  // completion_cmd.cpp

}  // namespace sbx::cli
