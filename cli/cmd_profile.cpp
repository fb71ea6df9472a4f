// sbx profile list | show NAME|FILE [--resolved] [--json] | validate FILE
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "profiles/profiles.hpp"

namespace sbx::cli {
namespace {

struct ProfileState {
  std::string target;
  std::string output;          // import -o
  std::string base = "base";   // import --base
  bool strict_import = false;  // import --strict-import
  bool resolved = false;
  bool json = false;
};

int list_profiles() {
  std::size_t width = 0;
  for (const auto& b : profiles::builtin_profiles()) width = std::max(width, b.name.size());
  for (const auto& b : profiles::builtin_profiles()) {
    std::string mark = b.name == profiles::kDefaultProfile ? " (default)" : "";
    fmt::print("{:<{}}  {}{}\n", b.name, width, profiles::read_description(b.text), mark);
  }
  return 0;
}

int show_profile(const ProfileState& s) {
  try {
    if (!s.resolved) {
      // As written: its own keys, `extends` not followed, variables kept.
      profiles::ProfileSource src = profiles::find_profile(s.target);
      if (s.json) {
        fmt::print("{}\n", profiles::profile_text_to_json(src.text, src.origin).dump(2));
      } else {
        fmt::print("{}", src.text);
      }
      return 0;
    }
    Policy policy = profiles::load_profile(s.target, profiles::Environment::from_process());
    for (const auto& w : profiles::validate(policy)) warn(w);
    if (s.json) {
      fmt::print("{}\n", profiles::to_json(policy).dump(2));
    } else {
      fmt::print("{}", profiles::to_toml(policy));
    }
    return 0;
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
}

int validate_profile(const ProfileState& s) {
  try {
    Policy policy = profiles::load_profile(s.target, profiles::Environment::from_process());
    for (const auto& w : profiles::validate(policy)) warn(w);
    fmt::print("{}: ok\n", s.target);
    return 0;
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
}

// srt / Claude Code sandbox settings -> a stand-alone sbx profile.
int import_settings(const ProfileState& s) {
  try {
    const auto env = profiles::Environment::from_process();
    Policy policy = profiles::load_profile(s.base, env);
    profiles::SettingsImport report = profiles::import_sandbox_settings_file(s.target, policy, env);
    if (s.strict_import && !report.unsupported.empty()) {
      for (const auto& u : report.unsupported) warn(fmt::format("no sbx equivalent: {}", u));
      return report_usage_error(
          fmt::format("{}: {} setting(s) have no sbx equivalent", s.target,
                      report.unsupported.size()),
          "remove them from the file, or drop --strict-import");
    }
    for (const auto& u : report.unsupported) warn(fmt::format("not applied: {}", u));
    for (const auto& w : profiles::validate(policy)) warn(w);
    std::string name = std::filesystem::path(s.output.empty() ? s.target : s.output).stem();
    policy.profile = name;
    policy.description = fmt::format("Imported from {} ({}) on top of {}", s.target,
                                     report.format, s.base);
    std::string text = fmt::format("# Imported by `sbx profile import` from {} ({}).\n",
                                   s.target, report.format);
    for (const auto& m : report.mapped) text += fmt::format("#   mapped: {}\n", m);
    for (const auto& u : report.unsupported) text += fmt::format("#   NOT applied: {}\n", u);
    text += profiles::to_toml(policy);
    if (s.output.empty() || s.output == "-") {
      fmt::print("{}", text);
      return 0;
    }
    std::ofstream out(s.output, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      return report_usage_error(fmt::format("cannot write {}", s.output),
                                "check the directory and free space");
    }
    fmt::print(stderr, "sbx: wrote {} (use it: sbx run -p {} -- COMMAND)\n", s.output,
               s.output.find('/') == std::string::npos ? "./" + s.output : s.output);
    return 0;
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
}

}  // namespace

Command add_profile(CLI::App& app) {
  auto s = std::make_shared<ProfileState>();
  CLI::App* cmd = app.add_subcommand("profile", "List, show and validate profiles");
  cmd->require_subcommand(1);
  cmd->footer(R"(
Examples:
  sbx profile list
  sbx profile show strict
  sbx profile show strict --resolved --json
  sbx profile validate ./my-profile.toml
)");

  CLI::App* list = cmd->add_subcommand("list", "List the built-in profiles");
  list->footer("\nExample:\n  sbx profile list\n");

  CLI::App* show = cmd->add_subcommand("show", "Print a profile as written, or --resolved");
  show->add_option("profile", s->target, "Built-in name or profile file")
      ->required()
      ->type_name("NAME|FILE");
  show->add_flag("--resolved", s->resolved,
                 "Follow extends, expand variables, print every key (stand-alone TOML)");
  show->add_flag("--json", s->json, "Print JSON instead of TOML");
  show->footer(R"(
Examples:
  sbx profile show standard                  the file as written
  sbx profile show strict --resolved         everything it sets, as TOML
  sbx profile show ./mine.toml --resolved --json
)");

  CLI::App* validate = cmd->add_subcommand("validate", "Check a profile file; exit 0 if valid");
  validate->add_option("profile", s->target, "Profile file (or built-in name)")
      ->required()
      ->type_name("FILE");
  validate->footer("\nExample:\n  sbx profile validate ./my-profile.toml\n");

  CLI::App* import = cmd->add_subcommand(
      "import", "Convert srt settings or Claude Code's sandbox settings to an sbx profile");
  import->add_option("settings", s->target, "~/.srt-settings.json or a Claude Code settings.json")
      ->required()
      ->type_name("FILE");
  import->add_option("-o,--output", s->output, "Write the profile here (default: stdout)")
      ->type_name("FILE");
  import->add_option("--base", s->base, "Profile the settings are layered on (default: base)")
      ->type_name("NAME|FILE");
  import->add_flag("--strict-import", s->strict_import,
                   "Settings without an sbx equivalent are errors, not warnings");
  import->footer(R"(
Examples:
  sbx profile import ~/.srt-settings.json -o my.toml
  sbx profile import .claude/settings.json --base strict -o agent.toml
Mapping: docs/settings-import.md
)");

  return [s, cmd, list, show, validate, import]() -> int {
    if (!cmd->parsed()) return -1;
    if (list->parsed()) return list_profiles();
    if (show->parsed()) return show_profile(*s);
    if (validate->parsed()) return validate_profile(*s);
    if (import->parsed()) return import_settings(*s);
    return -1;
  };
}

}  // namespace sbx::cli
