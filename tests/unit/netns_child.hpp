// A scenario in a new user and network namespace, for unit tests of several
// modules (header only). The namespaces are made in a forked child, so the
// test process keeps its own; the child reports what it saw as "key=value"
// lines through a pipe, and the test checks them.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <sstream>
#include <string>

namespace sbx::testing {

using Observations = std::map<std::string, std::string>;

// Writes `text` to an existing file (a /proc file); false where it cannot.
inline bool write_existing_file(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// Enters a new user namespace, root inside mapped to this process's ids,
// and a new network namespace (lo down). False, errno set, where none can
// be made.
inline bool enter_user_and_net_namespace() {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return false;
  write_existing_file("/proc/self/setgroups", "deny");
  write_existing_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
  write_existing_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  return true;
}

// Runs `scenario` in a forked child inside enter_user_and_net_namespace().
// The result has "unshare": "ok", or the errno's name where no namespace
// could be made (the scenario then does not run); an exception thrown by
// the scenario is reported as "exception".
inline Observations run_in_netns(const std::function<Observations()>& scenario) {
  int pfd[2];
  REQUIRE(::pipe2(pfd, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pfd[0]);
    const auto report = [&](const std::string& s) { (void)!::write(pfd[1], s.data(), s.size()); };
    // Said at once: a scenario that crashes leaves its own keys missing,
    // which fails the test's checks, not the namespace's.
    if (!enter_user_and_net_namespace()) {
      report(std::string("unshare=") + ::strerrorname_np(errno) + "\n");
      ::_exit(0);
    }
    report("unshare=ok\n");
    std::ostringstream out;
    try {
      for (const auto& [k, v] : scenario()) out << k << "=" << v << "\n";
    } catch (const std::exception& e) {
      out << "exception=" << e.what() << "\n";
    }
    report(out.str());
    ::_exit(0);
  }
  ::close(pfd[1]);
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pfd[0], buf, sizeof buf)) > 0) all.append(buf, static_cast<std::size_t>(n));
  ::close(pfd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  Observations o;
  if (WIFSIGNALED(status)) o["child"] = "killed by signal " + std::to_string(WTERMSIG(status));
  std::istringstream in(all);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) o[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return o;
}

// All of `o` for a failing check's message.
inline std::string describe(const Observations& o) {
  std::string all;
  for (const auto& [k, v] : o) all += k + " = " + v + "\n";
  return all;
}

// False, with a warning, where the child could make no namespace: the test
// has nothing to check then (a container without user namespaces).
inline bool made_namespaces(const Observations& o) {
  const auto it = o.find("unshare");
  if (it != o.end() && it->second == "ok") return true;
  WARN("no user+net namespace here: " << (it == o.end() ? "no report" : it->second));
  return false;
}

}  // namespace sbx::testing
