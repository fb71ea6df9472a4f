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

TEST_CASE("running out of fds gets the open-file fix, whatever the step", "[errors]") {
  ChildError err;
  err.fail("fsmount", EMFILE, "/proc");
  const auto step = with_open_files_fix(sandbox_step_error(err));
  REQUIRE(step);
  CHECK(contains(step->what(), "fsmount"));  // the message stays
  CHECK(contains(step->fix(), "open-file limit"));
  CHECK(!contains(step->fix(), "report"));  // not the step's own fix

  const sbx::Error cli("cannot write state.json: Too many open files", "check the disk");
  REQUIRE(with_open_files_fix(cli));
  CHECK(contains(with_open_files_fix(cli)->fix(), "ulimit -n"));

  // Netlink's messages name the errno.
  const sbx::Error named("cannot open a NETLINK_ROUTE socket: EMFILE", "allow NETLINK_ROUTE");
  REQUIRE(with_open_files_fix(named));
  CHECK(contains(with_open_files_fix(named)->fix(), "open-file limit"));

  const sbx::Error system("socketpair: Too many open files in system");
  REQUIRE(with_open_files_fix(system));
  CHECK(contains(with_open_files_fix(system)->fix(), "fs.file-max"));

  CHECK(!with_open_files_fix(sbx::Error("pivot_root: Invalid argument", "x")));
  // Already explained: left as it is.
  CHECK(!with_open_files_fix(out_of_fds_error("the sandbox's network sockets")));
}

TEST_CASE("every terminal fd becomes the pty, pipes stay", "[terminal]") {
  HostTerminal all;
  all.stdin_is_tty = all.stdout_is_tty = all.stderr_is_tty = true;
  HostTerminal piped_out = all;
  piped_out.stdout_is_tty = false;
  HostTerminal piped_in = all;
  piped_in.stdin_is_tty = false;
  HostTerminal none;
  CHECK(pty_stdio_mask(sbx::TtyMode::automatic, all) == 7);
  CHECK(pty_stdio_mask(sbx::TtyMode::automatic, piped_out) == 5);  // stdout stays the pipe
  CHECK(pty_stdio_mask(sbx::TtyMode::automatic, piped_in) == 6);
  CHECK(pty_stdio_mask(sbx::TtyMode::automatic, none) == 0);
  CHECK(pty_stdio_mask(sbx::TtyMode::always, none) == 7);
  CHECK(pty_stdio_mask(sbx::TtyMode::always, piped_out) == 5);
  CHECK(pty_stdio_mask(sbx::TtyMode::never, all) == 0);
  CHECK(pty_output_fd(7) == 1);
  CHECK(pty_output_fd(5) == 2);   // stdout piped: the pty's output is stderr's
  CHECK(pty_output_fd(1) == -1);  // only stdin: echo must not corrupt piped output
}
