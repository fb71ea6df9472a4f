#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

#include "runtime/channel.hpp"
#include "runtime/exit_status.hpp"

using namespace sbx::runtime;

TEST_CASE("wait status maps to the shell's exit codes", "[exit]") {
  CHECK(exit_code_from_wait_status(0) == 0);
  CHECK(exit_code_from_wait_status(42 << 8) == 42);
  CHECK(exit_code_from_wait_status(SIGKILL) == 128 + 9);
  CHECK(exit_code_from_wait_status(SIGTERM) == 128 + 15);
  CHECK(exit_code_for_exec_errno(ENOENT) == 127);
  CHECK(exit_code_for_exec_errno(ENOTDIR) == 127);
  CHECK(exit_code_for_exec_errno(EACCES) == 126);
  CHECK(exit_code_for_exec_errno(ENOEXEC) == 126);
}

TEST_CASE("channel carries a failure and an fd, and EOF", "[channel]") {
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
  ChildError err;
  err.fail("pivot_root", EPERM, "/tmp/newroot");
  REQUIRE(send_failure(fds[1], err));
  Message msg;
  msg.kind = MessageKind::pty_master;
  REQUIRE(send_message(fds[1], msg, STDIN_FILENO));
  close(fds[1]);

  Message got;
  int fd = -1;
  REQUIRE(receive_message(fds[0], got, &fd) == 1);
  CHECK(got.kind == MessageKind::failure);
  CHECK(std::string(got.error.step) == "pivot_root");
  CHECK(got.error.error_number == EPERM);
  CHECK(std::string(got.error.detail) == "/tmp/newroot");
  CHECK(fd == -1);
  REQUIRE(receive_message(fds[0], got, &fd) == 1);
  CHECK(got.kind == MessageKind::pty_master);
  CHECK(fd >= 0);
  close(fd);
  CHECK(receive_message(fds[0], got, &fd) == 0);
  close(fds[0]);
}

TEST_CASE("ChildError truncates long details", "[channel]") {
  ChildError err;
  std::string long_path(1000, 'a');
  err.fail("open", ENOENT, long_path.c_str());
  CHECK(std::string(err.detail).size() == sizeof err.detail - 1);
  CHECK(err.failed());
}
