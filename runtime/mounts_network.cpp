// Network "filtered": the sandbox's only resolver is the DNS filter on
// 127.0.0.1:53 inside the netns, so a generated resolv.conf naming it is bound
// read-only over /etc/resolv.conf (the host's points at resolvers the sandbox
// cannot reach, e.g. 127.0.0.53 or a LAN address). /etc/hosts stays the
// host's (localhost entries), read-only like the rest of /etc.
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include <sbx/policy.hpp>

#include "runtime/mounts_internal.hpp"

namespace sbx::runtime {

void plan_resolv_conf(const Policy& policy, std::vector<MountOp>& ops) {
  if (policy.network.mode != NetworkMode::filtered) return;
  // Mount over the real file: /etc/resolv.conf is often a link (to
  // systemd-resolved's stub file). Without any file glibc already defaults to
  // 127.0.0.1, the filter, so nothing needs mounting then.
  char real[PATH_MAX];
  if (::realpath("/etc/resolv.conf", real) == nullptr) return;
  MountOp op;
  op.kind = MountKind::generated;
  op.target = real;
  op.source = "resolv.conf";  // file name in the staging tmpfs
  op.target_is_dir = false;
  // Queries to any other server land on the same filter anyway (it listens
  // on port 53 of every address);
  // one server and no search list: names are asked exactly as written.
  op.generated_content =
      "# sbx: the sandbox's DNS filter (network.mode = \"filtered\")\n"
      "nameserver 127.0.0.1\n"
      "options edns0\n";
  ops.push_back(std::move(op));
}

}  // namespace sbx::runtime
