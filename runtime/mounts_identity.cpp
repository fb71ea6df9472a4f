// The command must see its own user name: agents and build tools call
// getpwuid() and fail or misbehave without an entry. When the host's
// /etc/passwd or /etc/group lacks the sandbox uid/gid, a copy with the entry
// added is bound read-only over the original inside the sandbox.
#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/identity.hpp"
#include "runtime/mounts_internal.hpp"

namespace sbx::runtime {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True when some line's third field (the id) equals `id`.
bool has_id(const std::string& db, unsigned id) {
  std::istringstream in(db);
  std::string line;
  while (std::getline(in, line)) {
    std::size_t a = line.find(':');
    if (a == std::string::npos) continue;
    std::size_t b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::size_t c = line.find(':', b + 1);
    if (line.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1) ==
        std::to_string(id))
      return true;
  }
  return false;
}

// Names may come from the environment (SUDO_USER): keep them to a safe set
// so a crafted name cannot add fields or lines.
std::string safe_name(const std::string& name, unsigned id) {
  std::string out;
  for (char c : name)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '-' || c == '.')
      out += c;
  return out.empty() ? fmt::format("sbx{}", id) : out;
}

void add_generated(std::vector<MountOp>& ops, const char* target, std::string content) {
  MountOp op;
  op.kind = MountKind::generated;
  // Mount over the real file (a distribution may make /etc/passwd a link);
  // the target is opened without following links.
  char real[PATH_MAX];
  op.target = ::realpath(target, real) != nullptr ? real : target;
  op.source = target + 5;  // "passwd" / "group": file name in the staging tmpfs
  op.target_is_dir = false;
  op.generated_content = std::move(content);
  ops.push_back(std::move(op));
}

}  // namespace

void plan_identity_files(const Identity& identity, std::vector<MountOp>& ops) {
  std::string name = safe_name(identity.user_name, identity.uid);
  std::string passwd = read_file("/etc/passwd");
  if (!has_id(passwd, identity.uid)) {
    if (!passwd.empty() && passwd.back() != '\n') passwd += '\n';
    std::string home;
    for (char c : identity.home)
      if (c != ':' && c != '\n') home += c;
    std::string shell =
        identity.shell.empty() || identity.shell.find_first_of(":\n") != std::string::npos
            ? "/bin/sh"
            : identity.shell;
    passwd += fmt::format("{}:x:{}:{}:sbx sandbox user:{}:{}\n", name, identity.uid, identity.gid,
                          home.empty() ? "/" : home, shell);
    add_generated(ops, "/etc/passwd", std::move(passwd));
  }
  std::string group = read_file("/etc/group");
  if (!has_id(group, identity.gid)) {
    if (!group.empty() && group.back() != '\n') group += '\n';
    group += fmt::format("{}:x:{}:\n", name, identity.gid);
    add_generated(ops, "/etc/group", std::move(group));
  }
}

}  // namespace sbx::runtime
