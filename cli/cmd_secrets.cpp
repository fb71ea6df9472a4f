// sbx secrets add NAME [--from-env VAR | --from-file PATH] [--force] | list | rm NAME | path
// and the --secret NAME[:ENVVAR] requests of sbx run (docs/secrets.md).
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include <sbx/sbx.hpp>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "secrets/secrets.hpp"

namespace sbx::cli {
namespace {

struct SecretsState {
  std::string name;
  std::string from_env;
  std::string from_file;
  bool force = false;
};

secrets::Store open_store() {
  return secrets::Store(
      secrets::default_store_dir([](const char* k) -> const char* { return std::getenv(k); }));
}

// Stdin: all of it from a pipe or file; from a terminal one line, not
// echoed. A single trailing newline is dropped in both cases (echo and
// heredocs add one; a value never ends in a newline on purpose).
std::string read_stdin_value() {
  std::string value;
  if (::isatty(STDIN_FILENO)) {
    struct termios saved {};
    bool restore = ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (restore) {
      struct termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    fmt::print(stderr, "Value (not echoed): ");
    std::fflush(stderr);
    int c;
    while ((c = std::fgetc(stdin)) != EOF && c != '\n') value += static_cast<char>(c);
    if (restore) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    return value;
  }
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    value.append(buf, n);
    if (value.size() > secrets::kMaxSecretBytes + 1) break;
  }
  if (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

int add_secret(const SecretsState& s) {
  try {
    secrets::check_name(s.name);
    if (!s.from_env.empty() && !s.from_file.empty()) {
      return report_usage_error("--from-env and --from-file contradict each other",
                                "give one of them, or neither to read stdin");
    }
    std::string value;
    if (!s.from_env.empty()) {
      const char* v = std::getenv(s.from_env.c_str());
      if (v == nullptr) {
        return report_usage_error(fmt::format("--from-env {}: the variable is not set", s.from_env),
                                  "export it first, or give the value on stdin");
      }
      value = v;
    } else if (!s.from_file.empty()) {
      std::ifstream in(s.from_file, std::ios::binary);
      if (!in) {
        return report_usage_error(
            fmt::format("--from-file {}: {}", s.from_file, std::strerror(errno)),
            "give a readable file");
      }
      value.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      value = read_stdin_value();
    }
    secrets::Store store = open_store();
    store.add(s.name, value, s.force);
    fmt::print(stderr, "sbx: secret '{}' saved ({} bytes) in {}\n", s.name, value.size(),
               store.dir());
    return 0;
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
}

int list_secrets() {
  try {
    secrets::Store store = open_store();
    auto infos = store.list();
    if (infos.empty()) {
      fmt::print(stderr, "sbx: no secrets in {} (add one: sbx secrets add NAME)\n", store.dir());
      return 0;
    }
    std::size_t width = 4;
    for (const auto& i : infos) width = std::max(width, i.name.size());
    fmt::print("{:<{}}  {}\n", "NAME", width, "UPDATED (UTC)");
    for (const auto& i : infos) {
      std::time_t t = std::chrono::system_clock::to_time_t(i.modified);
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      char when[32];
      std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
      fmt::print("{:<{}}  {}\n", i.name, width, when);
    }
    return 0;
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
}

int remove_secret(const SecretsState& s) {
  try {
    secrets::Store store = open_store();
    if (!store.remove(s.name)) {
      return report_usage_error(fmt::format("no secret named '{}' in {}", s.name, store.dir()),
                                "see the names with: sbx secrets list");
    }
    fmt::print(stderr, "sbx: secret '{}' removed\n", s.name);
    return 0;
  } catch (const sbx::Error& e) {
    return report_usage_error(e);
  }
}

}  // namespace

// --secret NAME[:ENVVAR] (sbx run): the values, read from the store. Throws
// sbx::Error naming the flag.
std::vector<Secret> load_run_secrets(const std::vector<std::string>& specs) {
  std::vector<Secret> out;
  if (specs.empty()) return out;
  secrets::Store store = open_store();
  for (const auto& spec : specs) {
    secrets::Request r;
    try {
      r = secrets::parse_request(spec);
    } catch (const sbx::Error& e) {
      throw sbx::Error(fmt::format("--secret {}: {}", spec, e.what()), e.fix());
    }
    for (const auto& s : out) {
      if (s.name == r.name) {
        throw sbx::Error(fmt::format("--secret {}: given twice", r.name), "give each secret once");
      }
    }
    out.push_back(Secret{r.name, r.env, store.read(r.name)});
  }
  return out;
}

void hide_unless_hidden(Policy& policy, const std::string& path);  // cmd_run.cpp

// The base profile hides ~/.local/share/sbx; a store moved elsewhere with
// XDG_DATA_HOME must be hidden too, whatever the profile says.
void hide_secrets_store(Policy& policy) {
  std::string dir;
  try {
    dir = open_store().dir();
  } catch (const sbx::Error&) {
    return;  // no HOME and no XDG_DATA_HOME: there is no store to hide
  }
  hide_unless_hidden(policy, dir);
}

Command add_secrets(CLI::App& app) {
  auto s = std::make_shared<SecretsState>();
  CLI::App* cmd = app.add_subcommand("secrets", "Store secrets for sbx run --secret");
  cmd->require_subcommand(1);
  cmd->footer(R"(
Secrets live in $XDG_DATA_HOME/sbx/secrets (default ~/.local/share/sbx/secrets),
one 0600 file each; every profile hides that directory from sandboxes.
`sbx run --secret NAME[:VAR]` shows one as /run/secrets/NAME (and VAR).

Examples:
  sbx secrets add anthropic                       value on stdin (not echoed)
  sbx secrets add gh --from-env GITHUB_TOKEN
  sbx secrets add key --from-file ./key.pem --force
  sbx secrets list
  sbx secrets rm gh
  sbx run -p strict --secret anthropic:ANTHROPIC_API_KEY -- claude
)");
  CLI::App* add =
      cmd->add_subcommand("add", "Add a secret (value on stdin, or --from-env/--from-file)");
  add->add_option("name", s->name, "Secret name: letters, digits, _ . -")->required();
  add->add_option("--from-env", s->from_env, "Read the value from this environment variable")
      ->type_name("VAR");
  add->add_option("--from-file", s->from_file, "Read the value from this file (bytes as is)")
      ->type_name("PATH");
  add->add_flag("--force", s->force, "Replace an existing secret");
  CLI::App* list = cmd->add_subcommand("list", "List secret names and dates (never values)");
  CLI::App* rm = cmd->add_subcommand("rm", "Remove a secret");
  rm->add_option("name", s->name, "Secret name")->required();
  CLI::App* path = cmd->add_subcommand("path", "Print the secrets directory");

  return [s, cmd, add, list, rm, path]() -> int {
    if (!cmd->parsed()) return -1;
    if (add->parsed()) return add_secret(*s);
    if (list->parsed()) return list_secrets();
    if (rm->parsed()) return remove_secret(*s);
    if (path->parsed()) {
      try {
        fmt::print("{}\n", open_store().dir());
        return 0;
      } catch (const sbx::Error& e) {
        return report_usage_error(e);
      }
    }
    return -1;
  };
}

}  // namespace sbx::cli
