// net::Acceptor: accept4 that sheds connections instead of spinning when the
// supervisor is out of file descriptors.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "netfilter/netfilter.hpp"

namespace sbx::net {

namespace {

int open_reserve() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

}  // namespace

Acceptor::Acceptor() : reserve_(open_reserve()) {}

Acceptor::~Acceptor() {
  if (reserve_ >= 0) ::close(reserve_);
}

int Acceptor::accept(int listener) {
  // Lost when another process took the freed slot (ENFILE): take it back as
  // soon as one is free, or the next shortage spins again.
  if (reserve_ < 0) reserve_ = open_reserve();
  for (;;) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) return fd;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if ((errno != EMFILE && errno != ENFILE) || reserve_ < 0) return -1;
    ::close(reserve_);
    fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      linger l{1, 0};  // a reset, not an orderly close: the client fails at once
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd);
      ++shed_;
    }
    reserve_ = open_reserve();
    if (fd < 0) return -1;  // nothing was waiting after all
  }
}

}  // namespace sbx::net
