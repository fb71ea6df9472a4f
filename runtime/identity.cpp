// The identity rule of docs/launch.md: who the command runs as.
#include "runtime/identity.hpp"

#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/startup_trace.hpp"
#include "runtime/unique_fd.hpp"

namespace sbx::runtime {
namespace {

std::optional<std::uint32_t> parse_id(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  std::uint32_t value = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

bool files_only = false;  // use_files_user_database()

// The first line of `text` split at ':'.
std::vector<std::string> colon_fields(std::string text) {
  text.resize(std::min(text.find('\n'), text.size()));
  std::vector<std::string> fields;
  for (std::size_t at = 0;;) {
    const std::size_t colon = text.find(':', at);
    fields.push_back(text.substr(at, colon - at));
    if (colon == std::string::npos) return fields;
    at = colon + 1;
  }
}

// `getent DATABASE ID`'s first line split at ':'; nothing when getent says
// the id is unknown (exit 2) or there is no getent. Any other outcome -- a
// crash, a timeout (an unreachable LDAP server) -- throws: the identity must
// not be guessed. Only for ids /etc/passwd or /etc/group do not know; cached.
std::optional<std::vector<std::string>> getent(const char* database, std::uint32_t id) {
  static std::map<std::pair<std::string, std::uint32_t>, std::optional<std::vector<std::string>>>
      cache;
  const auto key = std::make_pair(std::string(database), id);
  if (auto hit = cache.find(key); hit != cache.end()) return hit->second;
  const auto failed = [&](const std::string& why) {
    return Error(fmt::format("cannot look up {} {} with /usr/bin/getent: {}", database, id, why),
                 "check the NSS sources of /etc/nsswitch.conf (is the LDAP/sssd server "
                 "reachable?), or add the entry to /etc/" +
                     std::string(database));
  };
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) throw failed(std::strerror(errno));
  UniqueFd output(ends[0]);
  UniqueFd child_output(ends[1]);
  const std::string text_id = std::to_string(id);
  char* const argv[] = {const_cast<char*>("getent"), const_cast<char*>(database),
                        const_cast<char*>(text_id.c_str()), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_output.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  // Default dispositions and an empty mask, whatever sbx inherited.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  // A fixed path: sbx may run as root, and PATH is the caller's.
  const int rc = posix_spawn(&pid, "/usr/bin/getent", &actions, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  child_output.reset();  // EOF once getent exits
  // No getent (a minimal system): /etc/passwd and /etc/group, already read,
  // are all there is to ask.
  if (rc == ENOENT) return cache[key] = std::nullopt;
  if (rc != 0) throw failed(std::strerror(rc));

  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    struct pollfd pfd {
      output.get(), POLLIN, 0
    };
    const int ready = left.count() > 0 ? poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = true;
      break;
    }
    char chunk[4096];
    const ssize_t got = read(output.get(), chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0 || text.size() > (1u << 20)) break;
    text.append(chunk, static_cast<std::size_t>(got));
  }
  output.reset();
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw failed(fmt::format("waitpid: {}", std::strerror(errno)));
  }
  if (timed_out) throw failed("no answer within 10 s");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) return cache[key] = std::nullopt;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw failed(WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                   : fmt::format("killed by signal {}", WTERMSIG(status)));
  }
  return cache[key] = colon_fields(std::move(text));
}

void fill_passwd(Identity& id, const char* name, const char* home, const char* shell) {
  id.user_name = name;
  id.home = home != nullptr && home[0] == '/' ? home : "/";
  id.shell = shell != nullptr && shell[0] == '/' ? shell : "/bin/sh";
}

// Fills name, home, shell and the primary gid from the host's passwd.
bool lookup_passwd(uid_t uid, Identity& id, gid_t* primary_gid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  constexpr std::size_t kBufSize = 16384;
  const auto buf = std::make_unique_for_overwrite<char[]>(kBufSize);  // not zero-filled
  if (getpwuid_r(uid, &pw, buf.get(), kBufSize, &found) == 0 && found != nullptr) {
    fill_passwd(id, pw.pw_name, pw.pw_dir, pw.pw_shell);
    if (primary_gid != nullptr) *primary_gid = pw.pw_gid;
    return true;
  }
  if (!files_only) return false;
  // name:password:uid:gid:gecos:home:shell (a gecos with ':' in it: the
  // first four fields from the front, home and shell from the back).
  const auto f = getent("passwd", uid);
  std::uint32_t gid = 0;
  if (!f || f->size() < 7 || (*f)[0].empty() || std::to_string(uid) != (*f)[2] ||
      std::from_chars((*f)[3].data(), (*f)[3].data() + (*f)[3].size(), gid).ec != std::errc()) {
    return false;
  }
  fill_passwd(id, (*f)[0].c_str(), (*f)[f->size() - 2].c_str(), (*f)[f->size() - 1].c_str());
  if (primary_gid != nullptr) *primary_gid = gid;
  return true;
}

bool group_exists(gid_t gid) {
  struct group gr {};
  struct group* found = nullptr;
  constexpr std::size_t kBufSize = 65536;
  const auto buf = std::make_unique_for_overwrite<char[]>(kBufSize);  // not zero-filled
  if (getgrgid_r(gid, &gr, buf.get(), kBufSize, &found) == 0 && found != nullptr) return true;
  if (!files_only) return false;
  const auto f = getent("group", gid);  // name:password:gid:members
  return f && f->size() >= 3 && !(*f)[0].empty() && (*f)[2] == std::to_string(gid);
}

}  // namespace

Identity resolve_identity(const ProcessPolicy& process, const IdentitySource& source) {
  // A setuid-root sbx would let any user map any id: sbx is setuid-free by
  // design and refuses to run that way (firejail's CVE history).
  if (source.real_uid != source.effective_uid) {
    throw Error(fmt::format("sbx is running with effective uid {} but real uid {} (setuid binary)",
                            source.effective_uid, source.real_uid),
                "remove the setuid bit: chmod u-s $(command -v sbx); sbx needs no privilege");
  }
  Identity id;
  id.host_uid = source.real_uid;
  id.host_gid = source.real_gid;
  id.started_as_root = source.real_uid == 0;

  gid_t passwd_gid = 0;
  bool have_passwd_gid = false;
  if (!id.started_as_root) {
    // Without privilege the only id a user namespace may map is our own.
    if (process.uid && *process.uid != source.real_uid) {
      throw Error(fmt::format("--user {} needs root: an unprivileged user can only run as itself "
                              "(uid {})",
                              *process.uid, source.real_uid),
                  "drop --user (and `uid` from the profile), or run sbx as root");
    }
    if (process.gid && *process.gid != source.real_gid) {
      throw Error(fmt::format("--user ...:{} needs root: an unprivileged user can only run with "
                              "its own gid {}",
                              *process.gid, source.real_gid),
                  "drop the group from --user, or run sbx as root");
    }
    id.uid = source.real_uid;
    id.gid = source.real_gid;
  } else if (process.uid) {
    id.uid = *process.uid;
    if (process.gid) {
      id.gid = *process.gid;
    } else {
      Identity probe;
      have_passwd_gid = lookup_passwd(id.uid, probe, &passwd_gid);
      id.gid = have_passwd_gid ? passwd_gid : static_cast<gid_t>(id.uid);
    }
  } else if (auto sudo_uid = parse_id(source.sudo_uid)) {
    // `sudo sbx run ...`: the person behind sudo, not root.
    id.uid = *sudo_uid;
    auto sudo_gid = parse_id(source.sudo_gid);
    id.gid = sudo_gid ? *sudo_gid : static_cast<gid_t>(*sudo_uid);
  } else {
    // Root without --user or sudo (CI): an unprivileged identity, never host root.
    id.uid = kNobodyUid;
    id.gid = kNobodyGid;
  }
  if (process.gid && id.started_as_root) id.gid = *process.gid;

  id.in_host_passwd = lookup_passwd(id.uid, id, nullptr);
  if (!id.in_host_passwd) {
    id.user_name = id.uid == 0 ? "root" : fmt::format("sbx{}", id.uid);
    id.home = "/";
    id.shell = "/bin/sh";
  }
  id.in_host_group = group_exists(id.gid);
  return id;
}

void use_files_user_database() {
  // passwd and group are what sbx asks for; services and protocols are what
  // libnl and c-ares could ask glibc for.
  for (const char* database : {"passwd", "group", "services", "protocols"})
    __nss_configure_lookup(database, "files");
  files_only = true;
}

std::optional<std::string> host_user_name(uid_t uid) {
  Identity id;
  if (!lookup_passwd(uid, id, nullptr)) return std::nullopt;
  return id.user_name;
}

Identity resolve_identity(const ProcessPolicy& process) {
  startup_trace::mark("run: policy resolved, identity next");
  IdentitySource source;
  source.real_uid = getuid();
  source.effective_uid = geteuid();
  source.real_gid = getgid();
  source.sudo_uid = env("SUDO_UID");
  source.sudo_gid = env("SUDO_GID");
  return resolve_identity(process, source);
}

}  // namespace sbx::runtime
