// The client side: one request to a sandbox's control socket; signal and
// duration parsing for sbx stop/kill.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "control/control.hpp"
#include "control/internal.hpp"

namespace sbx::control {
namespace {

// Whether the process at the other end of `sock` (its listener: `pid`, as
// SO_PEERCRED reports it) lives in this pid namespace and is alive: its
// NSpid (from a pidfd where the kernel gives one, Linux 6.5, so that a
// reused pid cannot stand in for it) has one entry, a real pid.
bool in_our_pid_namespace(int sock, pid_t pid) {
#ifndef SO_PEERPIDFD
  constexpr int SO_PEERPIDFD = 77;
#endif
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  std::string path;
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
    path = fmt::format("/proc/self/fdinfo/{}", pidfd);
  else if (errno == ENOPROTOOPT)  // a kernel before 6.5: by its pid (it could be reused)
    path = fmt::format("/proc/{}/status", pid);
  else
    return false;  // EINVAL: the listener is gone, another process serves its socket
  std::string text;
  if (FILE* f = std::fopen(path.c_str(), "re")) {
    char buf[4096];
    while (std::fgets(buf, sizeof buf, f) != nullptr) text += buf;
    std::fclose(f);
  }
  if (pidfd >= 0) ::close(pidfd);
  const std::size_t at = text.find("\nNSpid:");
  if (at == std::string::npos) return false;
  std::istringstream line(text.substr(at + 7, text.find('\n', at + 1) - at - 7));
  std::vector<long> pids;
  for (long pid_there = 0; line >> pid_there;) pids.push_back(pid_there);
  return pids.size() == 1 && pids[0] > 0;
}

}  // namespace

nlohmann::json request(const std::string& name, const nlohmann::json& req,
                       std::chrono::milliseconds timeout) {
  if (!valid_name(name)) {
    throw Error(fmt::format("invalid sandbox name '{}'", name), "see sbx ps for the names");
  }
  const std::string base = state_base(false);
  auto live = find_live(base, name);
  if (!live) {
    throw Error(fmt::format("no running sandbox named '{}' (under {})", name, base),
                "see sbx ps for the running sandboxes");
  }
  const std::string path = socket_path(live->dir);
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw Error("control socket path too long");
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Non-blocking: a full backlog (a supervisor that stopped accepting) makes
  // a blocking connect wait forever; this one retries until the deadline.
  UniqueFdLite fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  int rc = -1;
  while (fd.get() >= 0 &&
         (rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa)) != 0 &&
         (errno == EAGAIN || errno == EINTR) && std::chrono::steady_clock::now() < deadline) {
    ::usleep(10 * 1000);
  }
  if (fd.get() < 0 || rc != 0) {
    const int err = errno;
    if (err == EAGAIN) {
      throw Error(fmt::format("sandbox '{}' did not accept a connection within {} ms", name,
                              timeout.count()),
                  "its sbx may be stuck; sbx kill NAME or kill its sbx process");
    }
    throw Error(fmt::format("cannot reach sandbox '{}' at {}: {}", name, path, std::strerror(err)),
                "it may have just ended; see sbx ps");
  }
  // The answer must come from an sbx, not from a sandboxed process that
  // put its own socket in place (a sandbox that may write the base: a user
  // without XDG_RUNTIME_DIR giving it --rw /tmp). Such a process runs as the
  // same uid, but in a pid namespace below ours (every sandbox has one); a
  // fake would acknowledge `sbx stop` or `sbx network ... deny` while the
  // sandbox goes on. (Not its user namespace: sbx is not dumpable while its
  // init shares its memory, so /proc/PID/ns is not ours to read.)
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != ::geteuid() && cred.uid != 0) || !in_our_pid_namespace(fd.get(), cred.pid)) {
    throw Error(fmt::format("the control socket {} is not served by an sbx (pid {}, uid {}: in a "
                            "pid namespace below this one); a sandboxed process may have "
                            "replaced it",
                            path, cred.pid, cred.uid),
                fmt::format("end that sandbox through its sbx process (kill it), and keep {} "
                            "out of every sandbox's writable paths",
                            base));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    throw Error(fmt::format("fcntl (control socket): {}", std::strerror(errno)));
  }
  nlohmann::json addressed = req;
  addressed["name"] = name;  // the server refuses a request for another sandbox
  const std::string text = addressed.dump();
  if (::send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
    throw Error(fmt::format("cannot send to sandbox '{}': {}", name, std::strerror(errno)));
  struct pollfd p {
    fd.get(), POLLIN, 0
  };
  int r;
  do {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
  } while (r < 0 && errno == EINTR);
  if (r <= 0) {
    throw Error(fmt::format("sandbox '{}' did not answer within {} ms", name, timeout.count()),
                "its sbx may be stuck; sbx kill NAME or kill its sbx process");
  }
  std::string buf(1 << 20, '\0');
  ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
  if (n <= 0) {
    throw Error(fmt::format("sandbox '{}' closed the connection without an answer", name),
                "it may have just ended; see sbx ps");
  }
  buf.resize(static_cast<std::size_t>(n));
  auto j = nlohmann::json::parse(buf, nullptr, false);
  if (!j.is_object()) throw Error(fmt::format("sandbox '{}' sent a malformed answer", name));
  if (!j.value("ok", false)) {
    throw Error(fmt::format("sandbox '{}': {}", name, j.value("error", std::string("refused"))),
                j.value("fix", std::string()));
  }
  return j;
}

std::optional<int> parse_signal(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (text.size() > 3) return std::nullopt;
    int n = std::stoi(text);
    if (n <= 0 || n >= NSIG) return std::nullopt;
    return n;
  }
  std::string up;
  for (char c : text) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up.starts_with("SIG")) up.erase(0, 3);
  for (int s = 1; s < NSIG; ++s) {
    const char* abbrev = sigabbrev_np(s);
    if (abbrev != nullptr && up == abbrev) return s;
  }
  return std::nullopt;
}

}  // namespace sbx::control
