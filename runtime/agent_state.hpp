// Agent state (profile key filesystem.state): the files and directories a
// client keeps between runs (Claude Code: ~/.claude/, ~/.claude.json).
//
// The sandbox cannot create them itself: the rest of the home is read-only
// (a writable home would let it plant ~/.bashrc, ~/.config/autostart/...),
// and a writable bind needs an existing host path. So the supervisor creates
// the missing ones on the host before the mount plan, and the plan then
// binds them writable like any allow_write path.
//
// Safety rules (docs/filesystem.md, "Agent state"):
//  - an existing path is never touched (content, mode, owner);
//  - missing components are made with mkdirat/openat(O_CREAT|O_EXCL|
//    O_NOFOLLOW) below a directory fd, so a symlink swapped in is refused,
//    never followed; a symlinked component inside a writable area (the
//    sandbox could have planted it in an earlier run) is refused, and so is
//    a dangling symlink in place of the state path;
//  - created as the user the command runs as (as root: in a child that has
//    dropped to that uid/gid, so the kernel checks its permissions), and
//    only in a directory that user owns: sbx run as root never writes into
//    someone else's home on the command's behalf (a warning says so).
#pragma once

#include <sbx/events.hpp>
#include <sbx/policy.hpp>

#include "runtime/identity.hpp"

namespace sbx::runtime {

// Creates every missing filesystem.state path (dir 0700, file 0600 with its
// initial content). Throws sbx::Error (exit 125) for a path it must refuse;
// warns (when `warn` is set) about a path it skips.
void create_agent_state(const Policy& policy, const Identity& identity, const WarningSink& warn);

}  // namespace sbx::runtime
