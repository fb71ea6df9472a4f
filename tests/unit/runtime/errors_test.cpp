#include <catch2/catch.hpp>

#include <cerrno>
#include <string>

#include "runtime/namespaces.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/terminal.hpp"

using namespace sbx::runtime;

namespace {
bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("a failed step names the step, the errno and the detail", "[errors]") {
  ChildError err;
  err.fail("open /dev/ptmx", ENOENT, "/dev/ptmx");
  auto e = sandbox_step_error(err);
  CHECK(contains(e.what(), "open /dev/ptmx"));
  CHECK(contains(e.what(), "ENOENT"));
  CHECK(contains(e.what(), "/dev/ptmx"));
  CHECK(contains(e.fix(), "--no-tty"));
}

TEST_CASE("every step failure comes with a fix", "[errors]") {
  for (const char* step :
       {"landlock", "seccomp", "setrlimit", "sethostname", "pivot_root", "something new"}) {
    ChildError err;
    err.fail(step, EINVAL);
    auto e = sandbox_step_error(err);
    CHECK_FALSE(e.fix().empty());
    CHECK(contains(e.what(), step));
  }
}

TEST_CASE("user namespace errors point at the sysctls", "[errors]") {
  auto nospace = user_namespace_error("cannot create the sandbox namespaces", ENOSPC);
  CHECK(contains(nospace.fix(), "max_user_namespaces"));
  auto perm = user_namespace_error("cannot create the sandbox namespaces", EPERM);
  CHECK(contains(perm.what(), "Operation not permitted"));
  CHECK_FALSE(perm.fix().empty());
  ChildError nested;
  nested.fail("unshare(CLONE_NEWUSER) (nested)", ENOSPC);
  CHECK(contains(sandbox_step_error(nested).fix(), "max_user_namespaces"));
}

TEST_CASE("a pty only for interactive sessions unless asked", "[terminal]") {
  HostTerminal both;
  both.stdin_is_tty = both.stdout_is_tty = true;
  HostTerminal piped_out = both;
  piped_out.stdout_is_tty = false;
  HostTerminal none;
  CHECK(wants_pty(sbx::TtyMode::automatic, both));
  CHECK_FALSE(wants_pty(sbx::TtyMode::automatic, piped_out));
  CHECK_FALSE(wants_pty(sbx::TtyMode::automatic, none));
  CHECK(wants_pty(sbx::TtyMode::always, none));
  CHECK_FALSE(wants_pty(sbx::TtyMode::never, both));
}
