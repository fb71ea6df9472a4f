#include "cli/output.hpp"

#include <string>

#include <fmt/format.h>

#include "runtime/supervisor.hpp"

namespace sbx::cli {
namespace {

// Keeps every message on one line, whatever the library put in it.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

int report_usage_error(std::string_view what, std::string_view fix) {
  if (fix.empty()) {
    fmt::print(stderr, "sbx: {}\n", one_line(what));
  } else {
    fmt::print(stderr, "sbx: {}; fix: {}\n", one_line(what), one_line(fix));
  }
  return kExitSbxError;
}

// Steps of the CLI's own (state file, audit log, work dir) can run out of fds
// too: the fix is the open-file limit's, whichever step it was.
int report_usage_error(const sbx::Error& error) {
  const auto explained = sbx::runtime::with_open_files_fix(error);
  const sbx::Error& e = explained ? *explained : error;
  return report_usage_error(e.what(), e.fix());
}

int report_run_error(const sbx::Error& error) {
  const auto explained = sbx::runtime::with_open_files_fix(error);
  const sbx::Error& e = explained ? *explained : error;
  fmt::print(stderr, "sbx: {}\n", e.what());
  if (!e.fix().empty()) fmt::print(stderr, "  fix: {}\n", e.fix());
  return kExitSbxError;
}

void warn(std::string_view message) {
  fmt::print(stderr, "sbx: warning: {}\n", one_line(message));
}

void note(std::string_view message) {
  fmt::print(stderr, "sbx: {}\n", message);
}

}  // namespace sbx::cli
