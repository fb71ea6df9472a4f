// sbx: the command-line front end. Parsing and dispatch only; the
// sub-commands live in cmd_*.cpp, the work in the library (include/sbx/).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "runtime/identity.hpp"
#include "runtime/startup_trace.hpp"

namespace {

constexpr const char* kExamples = R"(
Examples:
  sbx run -- make test                       run in the default profile (standard)
  sbx run --profile strict -- claude         an AI agent with the strict profile
  sbx run -p airgapped --memory 2G --timeout 15m -- make test
  sbx run --dry-run -p strict --allow-domain example.org -- true
  sbx profile list                           the built-in profiles
  sbx profile show strict --resolved         everything a profile sets, as TOML
  sbx profile validate ./my-profile.toml     check a profile file
  sbx version

Docs: docs/cli.md, docs/profiles.md, docs/domains.md
)";

}  // namespace

namespace sbx::cli {
Command add_audit(CLI::App& app);         // audit_cmd.cpp
Command add_live_control(CLI::App& app);  // cmd_ps.cpp: ps, stop, kill, network
Command add_check(CLI::App& app);         // cmd_check.cpp
Command add_secrets(CLI::App& app);       // cmd_secrets.cpp
}  // namespace sbx::cli

static int sbx_main(int argc, char** argv) {
  sbx::runtime::startup_trace::mark("main");
  // Everything after the first "--" is the command to run, never sbx options.
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> command;
  if (auto dash = std::find(args.begin(), args.end(), "--"); dash != args.end()) {
    command.assign(dash + 1, args.end());
    args.erase(dash, args.end());
  }

  CLI::App app{"sbx — a setuid-free Linux sandbox runtime", "sbx"};
  app.footer(kExamples);
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sbx ") + SBX_VERSION);
  std::vector<sbx::cli::Command> commands = {sbx::cli::add_run(app, command)};
  // `sbx run` is the path whose start-up time counts: the other
  // sub-commands' options (a few hundred CLI11 objects, ~0.4 ms) are only
  // built when the command line is not a run.
  if (args.empty() || args.front() != "run") {
    for (auto add : {sbx::cli::add_profile, sbx::cli::add_version, sbx::cli::add_audit,
                     sbx::cli::add_completion, sbx::cli::add_live_control, sbx::cli::add_check,
                     sbx::cli::add_secrets}) {
      commands.push_back(add(app));
    }
  }
  // Name the sub-command problem plainly (CLI11 would only say one is required).
  if (args.empty()) {
    return sbx::cli::report_usage_error("no sub-command given",
                                        "use sbx run|profile|version, see 'sbx --help'");
  }
  if (!args.front().starts_with("-") && args.front() != "run" && args.front() != "profile" &&
      args.front() != "ps" && args.front() != "stop" && args.front() != "kill" &&
      args.front() != "network" && args.front() != "audit" && args.front() != "version" &&
      args.front() != "completion" && args.front() != "check" && args.front() != "secrets") {
    return sbx::cli::report_usage_error(fmt::format("unknown sub-command '{}'", args.front()),
                                        "use sbx run|profile|version, see 'sbx --help'");
  }
  if (args.front() == "profile" && args.size() > 1 && !args[1].starts_with("-") &&
      args[1] != "list" && args[1] != "show" && args[1] != "validate" && args[1] != "import") {
    return sbx::cli::report_usage_error(fmt::format("unknown sub-command 'profile {}'", args[1]),
                                        "use sbx profile list|show|validate|import");
  }
  try {
    // CLI11 wants the arguments in reverse order in a vector.
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "sbx";
    for (const auto* sub : app.get_subcommands()) where += " " + sub->get_name();
    for (const auto* sub : app.get_subcommands()) {
      for (const auto* subsub : sub->get_subcommands()) where += " " + subsub->get_name();
    }
    return sbx::cli::report_usage_error(e.what(), "see '" + where + " --help'");
  }
  sbx::runtime::startup_trace::mark("command line parsed");
  if (!command.empty() && !app.got_subcommand("run")) {
    return sbx::cli::report_usage_error("'--' and a command are only valid after 'sbx run'",
                                        "write sbx run [options] -- COMMAND");
  }
  for (const auto& run : commands) {
    if (run) {
      if (int rc = run(); rc >= 0) return rc;
    }
  }
  return sbx::cli::report_usage_error("no sub-command given", "see 'sbx --help'");
}

static int guarded_main(int argc, char** argv) {
  try {
    return sbx_main(argc, argv);
  } catch (const sbx::Error& e) {
    return sbx::cli::report_run_error(e);
  } catch (const std::exception& e) {
    // A bug or resource exhaustion in sbx itself: still exit 125, never 1.
    return sbx::cli::report_usage_error(fmt::format("internal error: {}", e.what()),
                                        "please report this with the command line");
  }
}

int main(int argc, char** argv) {
#ifdef SBX_STATIC_EXE
  // A static glibc must not dlopen NSS modules (runtime/identity.hpp).
  sbx::runtime::use_files_user_database();
#endif
  const int rc = guarded_main(argc, argv);
  // Every resource of the run (sandbox, cgroup, state dir, audit log) was
  // released when its owner went out of scope in sbx_main. What is left is
  // freeing memory and static objects, which the kernel does faster at
  // exit: flush the output and leave (about 1 ms of a sandbox's start-up).
  std::fflush(nullptr);
  sbx::runtime::startup_trace::report();
  _exit(rc);
}
