// GitGuard: the files through which a sandbox could make git run code on
// the HOST later, checked on the host at the end of every run of a profile
// that write-protects .git/hooks or .git/config (strict).
//
// Why not a read-only mount: .git itself must stay writable (commits write
// index.lock, objects, refs in it), and a read-only entry for a file that
// does not exist yet becomes an empty placeholder, which for .git/commondir
// breaks git. So the files that redirect git elsewhere are compared with a
// snapshot taken before the sandbox starts, and every new or changed one is
// moved aside (NAME.sbx-quarantine-TIME: git never reads it) and the
// original put back, with a "violation" event and a warning:
//   .git itself when it is a gitfile ("gitdir: ..."), .git/commondir,
//   .git/config.worktree, .git/worktrees/*/
//   {commondir,gitdir,config.worktree}, .git/modules/** (config, hooks),
//   and for every gitlink (submodule) in .git/index: PATH/.git (a gitfile,
//   or the config and hooks of a nested git dir): a gitlink added to the
//   index makes `git status` run git inside PATH with PATH's config.
//   A rebase todo list (rebase-merge/git-rebase-todo) that gained exec
//   lines: those are commented out, the rest is the rebase's progress.
//   And the .git of every linked worktree of these repositories that the
//   sandbox may write (worktrees/ID/gitdir names it): a work tree of its own.
// (.git/config and .git/hooks are the profile's read-only mounts already.)
// When .git is a symlink to a git dir the sandbox may write, that dir,
// opened before the run, is walked the same way (its redirection files;
// its index for the gitlinks). One it cannot write is left alone: what
// changes there is the host's doing.
// The sandbox wrote all of it: nothing is reached through a symlink (walked
// from a dirfd of the work tree, O_NOFOLLOW per level); a link there is
// recorded, and quarantined, as the link itself.
// docs/filesystem.md ("Git redirection") says what it covers and what not.
#pragma once

#include <sbx/sbx.hpp>

#include "runtime/shared_baseline.hpp"
#include "runtime/unique_fd.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::runtime {

class GitGuard {
 public:
  // Whether the sandbox may write a host path (resolved): launch.cpp asks
  // the mount plan (sandbox_may_write). Empty: the work tree alone.
  using MayWrite = std::function<bool(const std::string& host_path)>;
  // Snapshots the repositories whose hooks/config the policy protects.
  GitGuard(const Policy& policy, const RunOptions& options, MayWrite sandbox_may_write = {});
  // Compares, quarantines, restores, reports. Never throws.
  ~GitGuard();
  GitGuard(const GitGuard&) = delete;
  GitGuard& operator=(const GitGuard&) = delete;

  struct FileState {
    bool is_dir = false;
    std::string content;   // file bytes or "symlink:TARGET"
    unsigned mode = 0644;  // permission bits and owner: a restored file gets them back
    unsigned uid = 0, gid = 0;
  };
  using Snapshot = std::map<std::string, FileState>;

  // The redirection surface of the work tree `top` (its .git), as it is now,
  // walked from top_fd (the directory `top`) without following any symlink.
  // Keys are "top/RELATIVE PATH". linked_git: the git dir a `.git` symlink
  // led to at the start (opened then), for the index's gitlinks; its own
  // files are a root of their own (Root::git_dir).
  static Snapshot snapshot(int top_fd, const std::string& top, int linked_git = -1);

  // A snapshot of the directory `root` as bytes, its keys relative to it,
  // and back (keys "root/REL" again, so another run reaching the same
  // directory by another path reads it under its own). parse() throws
  // sbx::Error on anything serialize() does not write.
  static std::string serialize(const Snapshot& snap, const std::string& root);
  static Snapshot parse(std::string_view bytes, const std::string& root);

 private:
  // A directory walked at the end from an fd opened before the sandbox
  // started: a work tree, or the git dir its `.git` symlink led to then.
  struct Root {
    std::string path;  // the snapshot's keys are "path/RELATIVE PATH"
    UniqueFd fd;
    bool git_dir = false;  // a linked git dir (else a work tree)
    bool checked = true;   // a linked git dir the sandbox cannot write: kept open, not checked
    int linked_git = -1;   // a work tree's linked git dir's fd, if any
    Snapshot before;
    // Held for the run: `before` is the snapshot of the first of the runs
    // that check this directory at the same time (shared_baseline.hpp).
    std::optional<SharedBaseline> baseline;
  };
  void take_baseline(Root& root);
  void add_linked_worktrees(const MayWrite& sandbox_may_write);
  void disarm_todo(int top_fd, const std::string& top, const std::string& path,
                   const FileState& now, const FileState* was, long stamp) noexcept;
  Snapshot snapshot_of(const Root& root) const;
  void check_and_revert() noexcept;
  void revert(const Root& root, long stamp) noexcept;
  const RunOptions& options_;
  std::vector<Root> roots_;
};

}  // namespace sbx::runtime
