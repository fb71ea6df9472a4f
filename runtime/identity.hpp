// Who the command is, inside the sandbox and on the host.
//
// The rule (docs/launch.md):
//  - unprivileged caller: the command runs as the caller's own uid/gid; a
//    different --user is refused (only root can map other ids).
//  - root caller: --user / Policy process.uid[:gid], else SUDO_UID/SUDO_GID,
//    else the unprivileged uid/gid 65534 (nobody) — never host root unless
//    --user 0 is asked for explicitly.
// The uid/gid are the same inside and on the host: the sandbox's user
// namespaces map exactly that one id onto itself, so files the command
// creates belong to `uid` on the host.
#pragma once

#include <sys/types.h>

#include <sbx/policy.hpp>

#include <optional>
#include <string>

namespace sbx::runtime {

struct Identity {
  uid_t host_uid = 0;  // real uid of the sbx process
  gid_t host_gid = 0;
  uid_t uid = 0;  // uid the command runs as (inside == on the host)
  gid_t gid = 0;
  std::string user_name;  // name the command sees (passwd entry inside)
  std::string home;       // $HOME inside
  std::string shell;      // login shell from passwd ("/bin/sh" when unknown)
  bool started_as_root = false;
  // false when uid has no entry in the host's /etc/passwd (e.g. --user 12345):
  // the filesystem module then binds a generated /etc/passwd and /etc/group
  // (host file + one line for uid/gid with user_name/home/shell) so that
  // `id -un`, `whoami` and getpwuid() resolve inside.
  bool in_host_passwd = true;
  bool in_host_group = true;  // same for gid in /etc/group
};

// Inputs of the identity rule, separated from the process for unit tests.
struct IdentitySource {
  uid_t real_uid = 0;
  uid_t effective_uid = 0;
  gid_t real_gid = 0;
  std::optional<std::string> sudo_uid;  // $SUDO_UID
  std::optional<std::string> sudo_gid;  // $SUDO_GID
};

// The unprivileged identity a root caller gets by default.
inline constexpr uid_t kNobodyUid = 65534;
inline constexpr gid_t kNobodyGid = 65534;

// Applies the rule above. Throws sbx::Error when the caller asks for an
// identity it cannot have (unprivileged --user, a setuid sbx binary).
Identity resolve_identity(const ProcessPolicy& process, const IdentitySource& source);

// The same for the current process (getuid, $SUDO_UID...).
Identity resolve_identity(const ProcessPolicy& process);

// The host's user name of `uid` (the same lookup as the identity rule:
// passwd, then getent in the static executable), or nullopt when unknown.
// Throws sbx::Error when getent fails (crash, time-out).
std::optional<std::string> host_user_name(uid_t uid);

// For the static sbx executable (docs/launch.md "Start-up time"): glibc's
// user database is limited to /etc/passwd and /etc/group (a static glibc
// would dlopen the NSS modules of nsswitch.conf, and libnss_systemd crashes
// there), and an id those files do not know is looked up with
// /usr/bin/getent, a dynamic program that consults every NSS source (LDAP,
// sssd, systemd). Call once, at start, before any thread exists.
void use_files_user_database();

}  // namespace sbx::runtime
