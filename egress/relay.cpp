// The splice() relay: socket -> pipe -> socket in each direction, so payload
// never enters user space. Non-blocking throughout; the epoll loop calls
// pump() on readiness and re-arms each fd with interest(fd).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "egress/egress.hpp"
#include "sbx/error.hpp"

namespace sbx::egress {
namespace {
// One splice moves at most what the pipe can take; asking for more is fine.
constexpr std::size_t kChunk = 1 << 20;
// Bigger pipes: 16x fewer splice/epoll rounds per byte than the default 64
// KiB (the relay's main cost). Best effort: over the user's pipe-buffer
// limit (fs.pipe-user-pages-soft) F_SETPIPE_SZ fails and 64 KiB stays.
constexpr int kPipeBytes = 1 << 20;
// Pipe memory is this process's, outside the sandbox's memory limit, and a
// sandbox that never reads fills both pipes of every connection it holds.
// So the enlarged pipes of all relays of the process stay within this
// budget (the kernel's own default for an unprivileged user, without
// CAP_SYS_ADMIN or CAP_SYS_RESOURCE to bypass it); past it a relay keeps
// 64 KiB pipes.
constexpr std::size_t kPipeBudget = 64 << 20;
std::atomic<std::size_t> pipe_bytes_in_use{0};

// Grows the pipe to `bytes` if the budget has room; returns what it charged.
std::size_t enlarge_pipe(int pipe_w, std::size_t bytes) {
  if (pipe_bytes_in_use.fetch_add(bytes) + bytes <= kPipeBudget &&
      fcntl(pipe_w, F_SETPIPE_SZ, static_cast<int>(bytes)) >= 0) {
    return bytes;
  }
  pipe_bytes_in_use.fetch_sub(bytes);
  return 0;
}
}  // namespace

std::size_t relay_pipe_bytes() {
  return pipe_bytes_in_use.load();
}

void reset_on_close(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void close_with_reset(int fd) {
  reset_on_close(fd);
  close(fd);
}

SpliceRelay::SpliceRelay(int client_fd, int upstream_fd,
                         std::vector<std::uint8_t> to_upstream_first)
    : client_(client_fd), upstream_(upstream_fd) {
  for (Direction* d : {&up_, &down_}) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
      int e = errno;
      for (Direction* x : {&up_, &down_}) {
        if (x->pipe_r >= 0) close(x->pipe_r);
        if (x->pipe_w >= 0) close(x->pipe_w);
        pipe_bytes_in_use.fetch_sub(x->pipe_charge);
      }
      close_with_reset(client_fd);  // the client fails at once, as on a refusal
      close_with_reset(upstream_fd);
      throw Error(std::string("cannot create a relay pipe: ") + std::strerror(e),
                  e == EMFILE ? "raise the open-file limit (ulimit -n)" : "");
    }
    d->pipe_r = p[0];
    d->pipe_w = p[1];
    d->pipe_charge = enlarge_pipe(p[1], kPipeBytes);
    if (d->pipe_charge == 0) d->pipe_charge = enlarge_pipe(p[1], kPipeBytes / 4);
  }
  up_.from = client_;
  up_.to = upstream_;
  up_.prefix = std::move(to_upstream_first);
  down_.from = upstream_;
  down_.to = client_;
  for (int fd : {client_, upstream_}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

SpliceRelay::~SpliceRelay() {
  for (Direction* d : {&up_, &down_}) {
    close(d->pipe_r);
    close(d->pipe_w);
    pipe_bytes_in_use.fetch_sub(d->pipe_charge);
  }
  if (!error_.empty()) {
    // One side failed: the other must see a reset, not a clean end.
    close_with_reset(client_);
    close_with_reset(upstream_);
  } else {
    close(client_);
    close(upstream_);
  }
}

bool SpliceRelay::pump_direction(Direction& d) {
  d.blocked_read = d.blocked_write = false;
  while (d.prefix_sent < d.prefix.size()) {
    ssize_t n = send(d.to, d.prefix.data() + d.prefix_sent, d.prefix.size() - d.prefix_sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      d.prefix_sent += static_cast<std::size_t>(n);
      d.bytes += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      d.blocked_write = true;
      return true;
    }
    error_ = std::string("send: ") + std::strerror(errno);
    return false;
  }
  while (!d.done) {
    if (d.in_pipe > 0) {
      ssize_t n =
          splice(d.pipe_r, nullptr, d.to, nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.in_pipe -= static_cast<std::size_t>(n);
        d.bytes += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        d.blocked_write = true;
        return true;
      }
      error_ = std::string("splice to socket: ") + (n == 0 ? "closed" : std::strerror(errno));
      return false;
    }
    if (d.eof) {
      // Everything delivered: pass the half-close on (HTTP/1.0 clients and
      // `ssh host cmd < file` depend on it).
      shutdown(d.to, SHUT_WR);
      d.done = true;
      break;
    }
    ssize_t n =
        splice(d.from, nullptr, d.pipe_w, nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d.in_pipe += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) {
      d.eof = true;
      continue;
    }
    if (errno == EAGAIN || errno == EINTR) {
      d.blocked_read = true;
      return true;
    }
    error_ = std::string("splice from socket: ") + std::strerror(errno);
    return false;
  }
  return true;
}

bool SpliceRelay::pump() {
  if (finished_) return false;
  if (!pump_direction(up_) || !pump_direction(down_)) {
    finished_ = true;
    return false;
  }
  if (up_.done && down_.done) finished_ = true;
  return !finished_;
}

std::uint32_t SpliceRelay::interest(int fd) const {
  std::uint32_t ev = 0;
  for (const Direction* d : {&up_, &down_}) {
    if (d->from == fd && !d->eof && d->in_pipe == 0 && d->prefix_sent == d->prefix.size())
      ev |= EPOLLIN;
    if (d->to == fd && (d->in_pipe > 0 || d->prefix_sent < d->prefix.size())) ev |= EPOLLOUT;
  }
  return ev;
}

}  // namespace sbx::egress
