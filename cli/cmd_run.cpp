// sbx run [options] -- COMMAND [ARGS...]
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sbx/sbx.hpp>

#include "audit/audit.hpp"
#include "cli/commands.hpp"
#include "cli/live_control.hpp"
#include "cli/output.hpp"
#include "profiles/profiles.hpp"
#include "runtime/startup_trace.hpp"

namespace sbx::cli {

// --secret (cmd_secrets.cpp): the values from the secrets store.
std::vector<Secret> load_run_secrets(const std::vector<std::string>& specs);
// Adds the secrets store to the hidden paths when the profile does not hide it.
void hide_secrets_store(Policy& policy);

// Adds `path` to the hidden paths unless it is one of them or below one.
void hide_unless_hidden(Policy& policy, const std::string& path) {
  for (const auto& p : policy.filesystem.deny_read) {
    if (path == p || path.starts_with(p + "/")) return;
  }
  policy.filesystem.deny_read.push_back(path);
}

namespace {

// The base profile hides ~/.local/state/sbx; a log moved elsewhere
// (XDG_STATE_HOME, --audit-log) must not be readable either: it holds past
// runs' commands and destinations. The default log's directory (sbx's own:
// the other labels' logs and rotated files too), else the file itself.
void hide_audit_log(Policy& policy, const std::string& log) {
  if (log.empty() || log[0] != '/') return;
  const std::string dir = log.substr(0, log.rfind('/'));
  hide_unless_hidden(policy, dir.ends_with("/sbx/audit") ? dir : log);
}

constexpr const char* kRunExamples = R"(
Repeatable options (--allow-domain, --rw, --env, ...) append to the
profile's lists; single-value options override it. Paths may use ~, $HOME,
$CWD and $TMPDIR; relative paths are relative to the current directory.

Examples:
  sbx run -- npm test
  sbx run --profile strict -- claude
  sbx run -p airgapped --memory 2G --cpus 2 --pids 512 --timeout 15m -- make test
  sbx run --allow-domain api.example.com --allow-port 8443 -- ./client
  sbx run --rw ~/.cache/pip --hide ~/.config/secret --tmpfs /scratch:size=1G -- ./build.sh
  sbx run --env CI=1 --keep-env GITHUB_SHA --report report.json -- ./ci-step
  sbx run --dry-run -p ./my-profile.toml -- true      print the resolved policy
)";

struct RunState {
  std::vector<std::string> command;
  std::string profile;
  profiles::Overrides overrides;
  bool tty = false;
  bool no_tty = false;
  bool dry_run = false;
  std::vector<std::string> secrets;  // --secret NAME[:VAR]
  std::string settings;              // --settings FILE (srt / Claude Code sandbox settings)
  bool strict_import = false;
  int verbose = 0;
};

// Single-quotes a word for a shell when it needs it (for -v output only).
std::string shell_word(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789@%_+=:,./-") == std::string::npos) {
    return word;
  }
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int run(RunState& s) {
  if (s.tty && s.no_tty) {
    return report_usage_error("--tty and --no-tty contradict each other", "give only one of them");
  }
  if (s.tty) s.overrides.tty = TtyMode::always;
  if (s.no_tty) s.overrides.tty = TtyMode::never;
  if (!s.command.empty() && s.command.front().starts_with("-")) {
    return report_usage_error(fmt::format("unknown option '{}'", s.command.front()),
                              "see 'sbx run --help'; put the command after --");
  }
  if (s.command.empty() && !s.dry_run) {
    return report_usage_error("no command given", "write sbx run [options] -- COMMAND [ARGS...]");
  }
  const std::string profile =
      s.profile.empty() ? std::string(profiles::kDefaultProfile) : s.profile;

  Policy policy;
  std::vector<std::string> warnings;
  std::vector<Secret> secrets;
  try {
    const auto env = profiles::Environment::from_process();
    // --settings layers an srt / Claude Code file on the profile (default
    // "base" then: the file says what is allowed, docs/settings-import.md).
    policy = s.settings.empty() ? profiles::resolve(profile, s.overrides, env, &warnings)
                                : profiles::resolve_with_settings(
                                      s.profile.empty() ? "base" : s.profile, s.settings,
                                      s.strict_import, s.overrides, env, &warnings);
    secrets = load_run_secrets(s.secrets);
    hide_secrets_store(policy);
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
  for (const auto& w : warnings) warn(w);
  runtime::startup_trace::mark("run: profile resolved");

  if (s.dry_run) {
    fmt::print("{}", profiles::to_toml(policy));
    fmt::print("\n# command: {}\n", nlohmann::json(s.command).dump());
    return 0;
  }
  if (s.verbose > 0) {
    std::string words;
    for (const auto& w : s.command) words += (words.empty() ? "" : " ") + shell_word(w);
    note(fmt::format("profile {}, network {}, running: {}", policy.profile,
                     profiles::to_string(policy.network.mode), words));
  }

  // The audit trail (log + report) is opened before the sandbox exists: a
  // log that was asked for and cannot be written stops the run (exit 125).
  std::unique_ptr<audit::RunRecorder> recorder;
  try {
    recorder = std::make_unique<audit::RunRecorder>(
        policy, profiles::to_toml(policy), s.command, [](const std::string& w) { warn(w); },
        [](const char* k) -> const char* { return std::getenv(k); });
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }

  hide_audit_log(policy, recorder->log_path());
  runtime::startup_trace::mark("run: audit opened");
  RunOptions options;
  options.argv = s.command;
  options.secrets = std::move(secrets);  // values: never argv, env, log or report
  options.on_warning = [](const std::string& w) { warn(w); };
  options.share_address_space = true;    // one sandbox per sbx process
  options.raise_open_file_limit = true;  // after the start: the sandbox keeps the caller's
  options.on_event = [&recorder, verbose = s.verbose](const Event& e) {
    const auto record = recorder->record(e);
    if (verbose > 0) note(fmt::format("event {} {}", e.type, e.data.dump()));
    if (verbose > 0 && audit::is_blocked(record)) show_blocked(record);
  };
  // Live control (sbx ps/stop/network, docs/control.md): sbx::run claims the
  // name while init mounts (LiveController::start), before the command may
  // start; a live sandbox of the same name stops this run there.
  std::unique_ptr<control::ControlServer> controller;
  try {
    controller = start_control(policy, *recorder, options.on_event);
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
  options.controller = controller.get();
  runtime::startup_trace::mark("run: control socket");
  const auto write_report = [&](const nlohmann::json& report) {
    if (policy.audit.report.empty()) return;
    if (policy.audit.report == "-") {
      fmt::print(stderr, "{}\n", report.dump(2));
      return;
    }
    try {
      audit::write_report(policy.audit.report, report);
    } catch (const sbx::Error& e) {
      warn(fmt::format("{} ({})", e.what(), e.fix()));
    }
  };
  recorder->start();
  try {
    RunResult result = sbx::run(policy, options);
    runtime::startup_trace::mark("run: sandbox gone");
    write_report(recorder->finish(result));
    runtime::startup_trace::mark("run: audit record written");
    if (s.verbose > 0) {
      note(fmt::format("exit {} after {} ms{}", result.exit_code, result.duration.count(),
                       result.timed_out ? " (timed out)" : ""));
    }
    return result.exit_code;
  } catch (const sbx::Error& e) {
    RunResult failed;
    failed.exit_code = kExitSbxError;
    write_report(recorder->finish(failed, e.what()));
    return report_run_error(e);
  }
}

}  // namespace

Command add_run(CLI::App& app, const std::vector<std::string>& command) {
  auto s = std::make_shared<RunState>();
  s->command = command;
  auto& o = s->overrides;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "Run a command in a sandbox: sbx run [OPTIONS] -- COMMAND [ARGS...]");
  run_cmd->footer(kRunExamples);
  // `sbx run -p strict claude --resume`: the first word that is not an
  // option starts the command; everything after it belongs to the command.
  run_cmd->prefix_command();

  // Repeatable: one value per flag, never swallowing the next word.
  const auto many = [&](const std::string& flags, std::vector<std::string>& into,
                        const std::string& type, const std::string& help) {
    run_cmd->add_option(flags, into, help)->type_name(type)->allow_extra_args(false);
  };
  const auto one = [&](const std::string& flags, std::optional<std::string>& into,
                       const std::string& type, const std::string& help) {
    run_cmd
        ->add_option_function<std::string>(
            flags, [&into](const std::string& v) { into = v; }, help)
        ->type_name(type);
  };

  run_cmd
      ->add_option("-p,--profile", s->profile,
                   fmt::format("Built-in profile name or profile file (default: {})",
                               profiles::kDefaultProfile))
      ->type_name("NAME|FILE");
  one("--net", o.network, "none|filtered|host", "Network mode");
  many("--allow-domain", o.allow_domains, "PATTERN", "Allow a domain: example.com, *.example.com");
  many("--deny-domain", o.deny_domains, "PATTERN", "Deny a domain (beats allow); * denies all");
  many("--allow-cidr", o.allow_cidrs, "CIDR", "Allow an address range: 203.0.113.0/24");
  many("--deny-cidr", o.deny_cidrs, "CIDR", "Deny an address range");
  many("--allow-port", o.allow_ports, "PORT", "Allow a TCP port on allowed hosts");
  many("--publish", o.publish, "HOST_PORT:SANDBOX_PORT",
       "Let the host's 127.0.0.1:HOST_PORT reach a server inside on SANDBOX_PORT");
  many("--host-port", o.host_ports, "PORT",
       "Let the sandbox reach the host's 127.0.0.1:PORT (nothing else on the host)");
  many("--rw", o.writable, "PATH", "Make a path writable");
  many("--ro", o.read_only, "PATH", "Keep a path read-only, even inside a writable one");
  many("--hide", o.hidden, "PATH", "Hide a path: empty directory / unreadable file");
  many("--tmpfs", o.tmpfs, "PATH[:size=S,mode=M]", "Mount an empty tmpfs");
  one("--memory", o.memory, "SIZE", "Memory limit: 512M, 4G, unlimited");
  one("--cpus", o.cpus, "N", "CPU limit in CPUs: 0.5, 2");
  one("--pids", o.pids, "N", "Limit on processes and threads");
  one("--timeout", o.timeout, "DURATION", "Wall-time limit: 30s, 15m, 1h30m");
  one("--kill-after", o.kill_after, "DURATION", "Grace between SIGTERM and SIGKILL at timeout");
  many("--env", o.env_set, "NAME=VALUE", "Set a variable inside");
  many("--keep-env", o.env_keep, "NAME", "Pass a host variable through (NAME or PREFIX*)");
  one("--name", o.name, "NAME", "Sandbox name (audit log, cgroup)");
  one("--audit-log", o.audit_log, "FILE", "Write the JSONL audit log here");
  one("--report", o.report, "FILE", "Write a JSON run report here (- = stderr)");
  one("--user", o.user, "UID[:GID]", "Identity inside the sandbox");
  many("--secret", s->secrets, "NAME[:VAR]",
       "Expose a stored secret as /run/secrets/NAME (and variable VAR): sbx secrets add");
  run_cmd->add_option("--settings", s->settings, "Import srt / Claude Code sandbox settings (JSON)")
      ->type_name("FILE");
  run_cmd->add_flag("--strict-import", s->strict_import,
                    "With --settings: settings without an sbx equivalent are errors");
  run_cmd->add_flag("--tty", s->tty, "Always give the command a terminal (pty)");
  run_cmd->add_flag("--no-tty", s->no_tty, "Never give the command a terminal");
  run_cmd->add_flag("--dry-run", s->dry_run, "Print the resolved policy as TOML and exit");
  run_cmd->add_flag("-v,--verbose", s->verbose, "Say what sbx does");

  return [s, run_cmd]() -> int {
    if (!run_cmd->parsed()) return -1;
    // Words after the options (no "--") start the command.
    std::vector<std::string> rest = run_cmd->remaining();
    if (!rest.empty()) {
      if (rest.front().starts_with("-")) {
        return report_usage_error(fmt::format("unknown option '{}'", rest.front()),
                                  "see 'sbx run --help'; put the command after --");
      }
      if (!s->command.empty()) {
        return report_usage_error(fmt::format("unexpected argument '{}' before --", rest.front()),
                                  "put the whole command after --");
      }
      s->command = rest;
    }
    return run(*s);
  };
}

}  // namespace sbx::cli
