// net::Acceptor out of file descriptors: waiting connections are reset, the
// caller is not left with a listener that stays ready (a busy loop).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <vector>

#include "../loopback.hpp"
#include "netfilter/netfilter.hpp"

using namespace sbx::net;

using sbx::testing::connect_loopback;
using sbx::testing::listen_loopback;

TEST_CASE("Acceptor accepts, and resets waiting connections when out of fds", "[netfilter]") {
  std::uint16_t port = 0;
  int lfd = listen_loopback(port, SOCK_NONBLOCK, 64);
  // Clients live in this process; the accepting side runs in a child whose
  // fd limit is then lowered to what it already uses.
  int clients[3];
  for (int& c : clients) c = connect_loopback(port);
  for (int c : clients) REQUIRE(c >= 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    Acceptor acceptor;
    int first = acceptor.accept(lfd);
    if (first < 0) _exit(10);
    // The lowest free fd is handed out: every fd below `first` is in use (the
    // reserve among them), so with the limit at first + 1 none is left.
    rlimit rl{static_cast<rlim_t>(first + 1), static_cast<rlim_t>(first + 1)};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(11);
    if (acceptor.accept(lfd) != -1) _exit(12);  // EMFILE: both others are shed
    if (acceptor.shed() != 2) _exit(13);
    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 0) != 0) _exit(14);         // the listener is not ready any more
    if (acceptor.accept(lfd) != -1) _exit(15);  // nothing waiting: -1 at once
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Clients 2 and 3 were reset; client 1 was accepted (and closed at exit).
  char b;
  int resets = 0;
  for (int c : clients) {
    pollfd p{c, POLLIN, 0};
    poll(&p, 1, 1000);
    if (recv(c, &b, 1, MSG_DONTWAIT) < 0 && errno == ECONNRESET) ++resets;
    close(c);
  }
  CHECK(resets == 2);
  close(lfd);
}
