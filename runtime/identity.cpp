// The identity rule of docs/launch.md: who the command runs as.
#include "runtime/identity.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <fmt/format.h>
#include <charconv>
#include <cstdlib>
#include <vector>

#include "runtime/startup_trace.hpp"

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

// Fills name, home, shell and the primary gid from the host's passwd.
bool lookup_passwd(uid_t uid, Identity& id, gid_t* primary_gid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  id.user_name = pw.pw_name;
  id.home = pw.pw_dir != nullptr && pw.pw_dir[0] == '/' ? pw.pw_dir : "/";
  id.shell = pw.pw_shell != nullptr && pw.pw_shell[0] == '/' ? pw.pw_shell : "/bin/sh";
  if (primary_gid != nullptr) *primary_gid = pw.pw_gid;
  return true;
}

bool group_exists(gid_t gid) {
  struct group gr {};
  struct group* found = nullptr;
  std::vector<char> buf(65536);
  return getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr;
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
