// Idmapped work dir for a root caller (mounts_idmap.cpp); used by the mount
// planner (mounts_plan.cpp).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/unique_fd.hpp"

namespace sbx::runtime {

// User namespaces that map a directory owner to the command's ids, one per
// distinct mapping, for the planning of one sandbox: the work dir and every
// allow_write path owned by the same user share one namespace. Each
// namespace is only needed until mount_setattr has attached it to a tree.
class IdmapNamespaces {
 public:
  // The namespace mapping owner -> command ids (borrowed fd). Throws
  // sbx::Error when it cannot be made.
  int get(uid_t owner_uid, gid_t owner_gid, uid_t uid, gid_t gid);

 private:
  struct Entry {
    uid_t owner_uid;
    gid_t owner_gid;
    uid_t uid;
    gid_t gid;
    UniqueFd ns;
  };
  std::vector<Entry> entries_;
};

// A detached recursive copy of `path` (no symlink followed) whose files show
// owner_uid:owner_gid as uid:gid, nosuid, nodev. Returns the tree's fd.
int make_idmapped_tree(const std::string& path, uid_t owner_uid, gid_t owner_gid, uid_t uid,
                       gid_t gid, IdmapNamespaces& namespaces);

}  // namespace sbx::runtime
