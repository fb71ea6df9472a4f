// Who the command is, inside the sandbox and on the host.
#pragma once

#include <sys/types.h>

#include <string>

namespace sbx::runtime {

struct Identity {
  uid_t host_uid = 0;  // real uid of the sbx process
  gid_t host_gid = 0;
  uid_t uid = 0;  // uid the command runs as (inside == on the host)
  gid_t gid = 0;
  std::string user_name;  // name the command sees (passwd entry inside)
  std::string home;       // $HOME inside
  bool started_as_root = false;
};

}  // namespace sbx::runtime
