// GitGuard (git_guard.hpp): snapshot before the sandbox, compare after it.
//
// The sandbox wrote the directories walked here, and the supervisor runs as
// the host user or as root: a symlink it planted (.git/worktrees/X ->
// ~/.ssh) would make the supervisor read, rename and write host files the
// sandbox cannot even see. So every entry is reached from a directory fd
// opened before the sandbox started, one level at a time with O_NOFOLLOW,
// lstat'ed (fstatat AT_SYMLINK_NOFOLLOW), and renamed or created with
// renameat2/openat in its verified parent. A symlink is recorded as itself.
#include "runtime/git_guard.hpp"

#include "runtime/git_index.hpp"
#include "runtime/host_paths.hpp"
#include "runtime/mounts_internal.hpp"
#include "runtime/mounts_syscalls.hpp"
#include "runtime/violation.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>

namespace sbx::runtime {
namespace {

constexpr std::size_t kMaxFileBytes = 1 << 20;  // redirection files are tiny
constexpr int kMaxModuleDepth = 4;
constexpr std::size_t kMaxWorktrees = 64;  // linked worktrees checked, in all

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The directory `name` of `dir`; none if it is missing, not a directory, or
// a symlink (O_NOFOLLOW: ELOOP), which is never followed.
UniqueFd open_dir_at(int dir, const std::string& name) {
  return UniqueFd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// The directory at the relative path `rel` below `dir` ("" = dir itself),
// opened one component at a time, none of them a symlink, "." or "..": so
// it is below `dir` whatever the sandbox made of the names in between.
UniqueFd open_dir_below(int dir, const std::string& rel) {
  UniqueFd cur(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::size_t start = 0;
  while (cur && start < rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    const std::string part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return UniqueFd();
    cur = open_dir_at(cur.get(), part);
    start = end + 1;
  }
  return cur;
}

// Adds the entry `name` of `dir` (file, symlink or directory marker), known
// to the snapshot as `path`, if it exists. A symlink is recorded as itself.
void add_entry(GitGuard::Snapshot& snap, int dir, const std::string& name,
               const std::string& path) {
  struct stat st {};
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  GitGuard::FileState state;
  state.mode = st.st_mode & 0777;
  state.uid = st.st_uid;
  state.gid = st.st_gid;
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlinkat(dir, name.c_str(), target, sizeof target - 1);
    state.content = "symlink:" + std::string(target, n > 0 ? static_cast<std::size_t>(n) : 0);
  } else if (S_ISDIR(st.st_mode)) {
    state.is_dir = true;
  } else if (S_ISREG(st.st_mode)) {
    state.content = read_regular_file(dir, name.c_str(), kMaxFileBytes);
    if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes) {
      state.content += fmt::format("\n[size {} mtime {}]", st.st_size, st.st_mtim.tv_nsec);
    }
  } else {
    state.content = fmt::format("[special file mode {:o}]", st.st_mode);
  }
  snap[path] = std::move(state);
}

// A rebase in progress: `git rebase --continue` runs the todo list's exec
// lines ("exec CMD", "x CMD") on the host. A todo is recorded by its exec
// lines alone (the rest changes as the rebase goes on), after this marker.
constexpr std::string_view kTodo = "rebase-merge/git-rebase-todo";
constexpr std::string_view kExecLines = "[exec lines]\n";

// Whether a todo line is an exec command, as git's sequencer parses it
// (leading blanks skipped, the full or short name, then a blank).
bool is_exec_line(std::string_view line) {
  const std::size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  line.remove_prefix(start);
  for (std::string_view word : {"exec", "x"}) {
    if (line.size() > word.size() && line.starts_with(word) &&
        (line[word.size()] == ' ' || line[word.size()] == '\t'))
      return true;
  }
  return false;
}

// The first line of `text` with its newline, if any; `text` moves past it.
std::string_view next_line(std::string_view& text) {
  const std::size_t end = text.find('\n');
  const std::string_view line = text.substr(0, end == std::string_view::npos ? end : end + 1);
  text.remove_prefix(line.size());
  return line;
}

// `line` without its newline.
std::string_view without_newline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  return line;
}

// A todo line as git reads it: up to its newline, one CR before it dropped.
std::string_view todo_line(std::string_view line) {
  line = without_newline(line);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// The exec lines of `todo` (todo_line()s).
std::set<std::string> exec_lines(std::string_view todo) {
  std::set<std::string> out;
  while (!todo.empty()) {
    const std::string_view line = todo_line(next_line(todo));
    if (is_exec_line(line)) out.emplace(line);
  }
  return out;
}

// The exec lines a snapshot recorded (after kExecLines, one per line, as
// exec_lines() gave them: split at newlines only).
std::set<std::string> recorded_exec_lines(std::string_view content) {
  std::set<std::string> out;
  content.remove_prefix(std::min(content.size(), kExecLines.size()));
  while (!content.empty()) out.emplace(without_newline(next_line(content)));
  return out;
}

// A todo list is read whole (git reads all of it); one larger than this is
// recorded by its size alone, and a change to it is quarantined.
constexpr std::size_t kMaxTodoBytes = 64u << 20;

// git's merge strategies; any other name is a program git looks for
// (`git-merge-NAME` in its exec path and PATH: `x/../evil` runs ./evil).
bool builtin_strategy(std::string_view name) {
  for (std::string_view s : {"ort", "recursive", "resolve", "octopus", "ours", "subtree"})
    if (name == s) return true;
  return false;
}

// Whether a rebase's `strategy` file or a sequencer's `opts` (git config
// syntax) names only built-in strategies. Conservative: every line that
// mentions "strategy" (any case) must end in `= NAME` (or be NAME alone,
// for `strategy`) with a built-in NAME; strategy_opts lines are options of
// the strategy, not programs.
bool strategies_builtin(std::string_view text, bool config) {
  while (!text.empty()) {
    const std::string line(without_newline(next_line(text)));
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (config && lower.find("strategy") == std::string::npos) continue;
    if (config && lower.find("strategy-option") != std::string::npos) continue;
    std::string value = config ? line.substr(std::min(line.size(), line.find('=') + 1)) : line;
    const std::size_t first = value.find_first_not_of(" \t\r");
    const std::size_t last = value.find_last_not_of(" \t\r");
    value = first == std::string::npos ? "" : value.substr(first, last - first + 1);
    if (config && line.find('=') == std::string::npos) return false;
    if ((config || !value.empty()) && !builtin_strategy(value)) return false;
  }
  return true;
}

// A rebase or cherry-pick left in progress: `git rebase --continue` runs
// the todo list's exec lines and the merge strategy named in
// rebase-merge/strategy, `git cherry-pick --continue` the one in
// sequencer/opts. rebase-merge and sequencer are recorded as themselves (a
// link there is never followed); the todo by its exec lines if it is a
// regular file (the rest of it changes as the rebase goes on).
void add_sequencer_state(GitGuard::Snapshot& snap, int dir, const std::string& path) {
  add_entry(snap, dir, "sequencer", path + "/sequencer");
  if (const UniqueFd sequencer = open_dir_at(dir, "sequencer"))
    add_entry(snap, sequencer.get(), "opts", path + "/sequencer/opts");
  add_entry(snap, dir, "rebase-merge", path + "/rebase-merge");
  const UniqueFd rebase = open_dir_at(dir, "rebase-merge");
  if (!rebase) return;
  add_entry(snap, rebase.get(), "strategy", path + "/rebase-merge/strategy");
  const std::string todo_path = path + "/" + std::string(kTodo);
  add_entry(snap, rebase.get(), "git-rebase-todo", todo_path);
  const auto it = snap.find(todo_path);
  if (it == snap.end() || it->second.is_dir || it->second.content.starts_with("symlink:") ||
      it->second.content.starts_with("[special"))
    return;
  struct stat st {};
  if (fstatat(rebase.get(), "git-rebase-todo", &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      static_cast<std::size_t>(st.st_size) > kMaxTodoBytes) {
    it->second.content =
        fmt::format("[special: a todo list of {} bytes, mtime {}]", st.st_size, st.st_mtim.tv_nsec);
    return;
  }
  std::string lines(kExecLines);
  // add_entry read it whole unless it is larger than a redirection file.
  const std::string whole = static_cast<std::size_t>(st.st_size) <= kMaxFileBytes
                                ? std::move(it->second.content)
                                : read_regular_file(rebase.get(), "git-rebase-todo", kMaxTodoBytes);
  for (const auto& line : exec_lines(whole)) lines += line + "\n";
  it->second.content = std::move(lines);
}

// The names in `dir`, sorted. Its own open file description (openat "."),
// so the caller's fd keeps its offset.
std::vector<std::string> list_dir(int dir) {
  std::vector<std::string> names;
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return names;
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return names;
  }
  while (const dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void add_git_dir(GitGuard::Snapshot& snap, int dir, const std::string& path, int depth);

// `dir`/modules and the git dir of every submodule in it. Each entry is
// recorded as itself first: a symlink or file there (new: quarantined) is
// never walked into.
void add_modules(GitGuard::Snapshot& snap, int dir, const std::string& path, int depth) {
  add_entry(snap, dir, "modules", path + "/modules");
  const UniqueFd modules = open_dir_at(dir, "modules");
  if (!modules) return;
  for (const auto& m : list_dir(modules.get())) {
    const std::string sub_path = path + "/modules/" + m;
    add_entry(snap, modules.get(), m, sub_path);
    if (const UniqueFd sub = open_dir_at(modules.get(), m))
      add_git_dir(snap, sub.get(), sub_path, depth + 1);
  }
}

// A git dir of a submodule or nested repository: what makes git run code.
void add_git_dir(GitGuard::Snapshot& snap, int dir, const std::string& path, int depth) {
  for (const char* name : {"config", "config.worktree", "commondir"})
    add_entry(snap, dir, name, path + "/" + name);
  add_entry(snap, dir, "hooks", path + "/hooks");
  if (const UniqueFd hooks = open_dir_at(dir, "hooks")) {
    for (const auto& hook : list_dir(hooks.get()))
      add_entry(snap, hooks.get(), hook, path + "/hooks/" + hook);
  }
  add_sequencer_state(snap, dir, path);
  if (depth < kMaxModuleDepth) add_modules(snap, dir, path, depth);
}

// The files of a repository's git dir `dir` (known as `path`) that send
// git elsewhere: commondir, config.worktree, the linked worktrees' files,
// and the submodules' git dirs.
void add_repository_files(GitGuard::Snapshot& snap, int dir, const std::string& path) {
  for (const char* name : {"commondir", "config.worktree"})
    add_entry(snap, dir, name, path + "/" + name);
  add_entry(snap, dir, "worktrees", path + "/worktrees");
  if (const UniqueFd worktrees = open_dir_at(dir, "worktrees")) {
    for (const auto& wt : list_dir(worktrees.get())) {
      // The entry itself first: a symlink (-> ~/.ssh) or file here is
      // recorded, and quarantined if new, but never walked into.
      const std::string wt_path = path + "/worktrees/" + wt;
      add_entry(snap, worktrees.get(), wt, wt_path);
      const UniqueFd wt_dir = open_dir_at(worktrees.get(), wt);
      if (!wt_dir) continue;
      for (const char* name : {"commondir", "gitdir", "config.worktree", "config"})
        add_entry(snap, wt_dir.get(), name, wt_path + "/" + name);
      add_sequencer_state(snap, wt_dir.get(), wt_path);
    }
  }
  add_sequencer_state(snap, dir, path);
  add_modules(snap, dir, path, 0);
}

// Puts the snapshotted file `state` back as the entry `name` of `dir`.
bool restore_file(int dir, const std::string& name, const GitGuard::FileState& state) {
  return create_file_at(dir, name, state.content, state.mode, state.uid, state.gid);
}

// The entry a snapshot key (TOP/REL) names: REL's parent, reached again
// from the work tree's fd without following a symlink (never through the
// path string), and its name there.
struct Entry {
  UniqueFd parent;
  std::string name;
};
Entry entry_of(int top_fd, const std::string& top, const std::string& path) {
  const std::string rel = path.substr(top.size() + 1);
  const std::size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return {open_dir_below(top_fd, ""), rel};
  return {open_dir_below(top_fd, rel.substr(0, slash)), rel.substr(slash + 1)};
}

void emit_violation(const RunOptions& options, const std::string& path, const std::string& what,
                    const std::string& moved_to, bool restored) {
  report_violation(
      options,
      {{"kind", "git_redirection"},
       {"path", path},
       {"change", what},
       {"quarantined_to", moved_to},
       {"restored", restored}},
      fmt::format(
          "the sandbox {} {}, which would make git on the host run code it chose; moved to {}{}. "
          "Fix: inspect it; delete it if you did not expect it (docs/filesystem.md, Git "
          "redirection)",
          what, path, moved_to.empty() ? "(could not move it)" : moved_to,
          restored ? " and put the original back" : ""));
}

}  // namespace

GitGuard::Snapshot GitGuard::snapshot(int top_fd, const std::string& top, int linked_git) {
  Snapshot snap;
  const std::string dotgit_path = top + "/.git";
  struct stat st {};
  if (fstatat(top_fd, ".git", &st, AT_SYMLINK_NOFOLLOW) != 0) return snap;
  // .git itself, whatever it is (a directory marker, a gitfile "gitdir:
  // PATH", a symlink, recorded as itself and never followed): a change of
  // type (a directory where the link or gitfile was) is a change too.
  add_entry(snap, top_fd, ".git", dotgit_path);
  const UniqueFd dotgit = S_ISDIR(st.st_mode) ? open_dir_at(top_fd, ".git") : UniqueFd();
  if (dotgit) add_repository_files(snap, dotgit.get(), dotgit_path);
  // The index: in .git, or in the git dir a .git link led to at the start
  // (its own files are a root of their own: linked_git_dir()).
  const int index_dir = dotgit ? dotgit.get() : linked_git;
  if (index_dir < 0) return snap;
  // Submodules: a gitlink in the index makes `git status` run git in it.
  std::string config = read_regular_file(index_dir, "config", 1 << 16);
  std::transform(config.begin(), config.end(), config.begin(), ::tolower);
  const bool sha256 = config.find("objectformat = sha256") != std::string::npos ||
                      config.find("objectformat=sha256") != std::string::npos;
  const std::string index = read_regular_file(index_dir, "index", 256u << 20);
  const std::size_t hash_size = sha256 ? 32 : 20;
  GitIndex parsed = parse_git_index(index, hash_size);
  if (!parsed.shared_index.empty()) {  // git reads both: so does the check
    const std::string shared =
        read_regular_file(index_dir, ("sharedindex." + parsed.shared_index).c_str(), 256u << 20);
    for (auto& rel : parse_git_index(shared, hash_size).gitlinks)
      parsed.gitlinks.push_back(std::move(rel));
  }
  std::sort(parsed.gitlinks.begin(), parsed.gitlinks.end());
  parsed.gitlinks.erase(std::unique(parsed.gitlinks.begin(), parsed.gitlinks.end()),
                        parsed.gitlinks.end());
  for (const auto& rel : parsed.gitlinks) {
    // Skipped if any component is a symlink, "." or "..": git does not
    // follow a symlink in a gitlink's path either.
    const UniqueFd sub = open_dir_below(top_fd, rel);
    if (!sub) continue;
    const std::string sub_git = top + "/" + rel + "/.git";
    add_entry(snap, sub.get(), ".git", sub_git);
    if (const UniqueFd git_dir = open_dir_at(sub.get(), ".git"))
      add_git_dir(snap, git_dir.get(), sub_git, 1);
  }
  return snap;
}

namespace {

// When the work tree `top`'s `.git` is a symlink to a git dir or a gitfile
// naming one (`gitdir: PATH`: a linked worktree, --separate-git-dir), made
// before the run by the user, that directory, opened once, and where it is,
// resolved. Only what git would take for a git dir: HEAD, and objects/ or
// (a linked worktree's) commondir. The check at the end walks this very
// directory, whatever the link or gitfile, or the names on its way, lead to
// by then.
struct LinkedGitDir {
  UniqueFd fd;
  std::string path;   // "" when it cannot be had without a symlink on the way now
  std::string label;  // its snapshot keys: TOP/.git through a link, else its path
};

// The path `path` resolved ("" if it cannot be).
std::string resolved_path(const std::string& path) {
  return existing_real_path(path).value_or(std::string());
}

// The inode of `fd` is the one of `other`.
bool same_inode(int fd, int other) {
  struct stat a {};
  struct stat b {};
  return fstat(fd, &a) == 0 && fstat(other, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

// gitfile_dirs: gitfile_git_dirs(top), read once by the caller.
LinkedGitDir open_linked_git_dir(int top_fd, const std::string& top,
                                 const std::vector<std::string>& gitfile_dirs) {
  LinkedGitDir linked;
  struct stat st {};
  if (fstatat(top_fd, ".git", &st, AT_SYMLINK_NOFOLLOW) != 0) return {};
  std::string target;
  UniqueFd dir;
  if (S_ISLNK(st.st_mode)) {
    target = top + "/.git";
    dir.reset(::openat(top_fd, ".git", O_RDONLY | O_DIRECTORY | O_CLOEXEC));  // follows it once
  } else if (S_ISREG(st.st_mode)) {
    if (gitfile_dirs.empty()) return {};
    target = gitfile_dirs.front();
    dir.reset(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  if (!dir) return {};
  if (!looks_like_git_dir(dir.get())) return {};
  linked.fd = std::move(dir);
  // The path, and the same directory reached by it again without following
  // any symlink: a link swapped in on the way meanwhile cannot pass for it.
  const std::string resolved = resolved_path(target);
  if (resolved.empty()) return linked;
  const UniqueFd again(sys::openat2(AT_FDCWD, resolved.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                                    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
  if (again && same_inode(linked.fd.get(), again.get())) linked.path = resolved;
  linked.label = S_ISLNK(st.st_mode) ? top + "/.git" : resolved;
  return linked;
}

}  // namespace

GitGuard::GitGuard(const Policy& policy, const RunOptions& options, MayWrite sandbox_may_write)
    : options_(options) {
  // The work trees whose .git/hooks or .git/config the policy protects --
  // not the git dirs a gitfile names, which protect_hooks_paths adds for
  // their hooks and config (a linked worktree's common dir, /MAIN/.git):
  // each is checked from its work tree's gitfile below, where the sandbox
  // may write it.
  std::vector<std::pair<std::string, std::vector<std::string>>> tops;  // with their gitfile dirs
  std::set<std::string> named_by_gitfiles;
  for (const auto& path : policy.filesystem.deny_write) {
    for (const char* suffix : {"/.git/hooks", "/.git/config"}) {
      if (!ends_with(path, suffix)) continue;
      std::string top = path.substr(0, path.size() - std::strlen(suffix));
      if (top.empty() ||
          std::any_of(tops.begin(), tops.end(), [&](const auto& t) { return t.first == top; }))
        continue;
      std::vector<std::string> dirs = gitfile_git_dirs(top);
      named_by_gitfiles.insert(dirs.begin(), dirs.end());
      tops.emplace_back(std::move(top), std::move(dirs));
    }
  }
  for (auto& [top, gitfile_dirs] : tops) {
    const std::string git = resolved_path(top + "/.git");
    if (!git.empty() && named_by_gitfiles.count(git) != 0) continue;
    // Opened before the sandbox starts: the check at the end walks from
    // this very directory, whatever the run renames or links meanwhile.
    Root tree;
    tree.path = std::move(top);
    tree.fd.reset(::open(tree.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!tree.fd) {
      roots_.push_back(std::move(tree));  // nothing to check at the end
      continue;
    }
    // A git dir behind a `.git` link or gitfile: its index gives the
    // tree's gitlinks in any case; its own files are checked only where
    // the sandbox may write them. Elsewhere a change at the end is the
    // host's (a `git worktree add`), not to be reverted -- by root, in
    // someone else's repository.
    LinkedGitDir found = open_linked_git_dir(tree.fd.get(), tree.path, gitfile_dirs);
    tree.linked_git = found.fd ? found.fd.get() : -1;
    take_baseline(tree);
    Root linked;
    linked.git_dir = true;
    linked.path = found.label;
    linked.checked = found.fd && !found.path.empty() &&
                     (sandbox_may_write ? sandbox_may_write(found.path)
                                        : path_is_within(found.path, resolved_path(tree.path)));
    linked.fd = std::move(found.fd);
    if (linked.checked) take_baseline(linked);
    roots_.push_back(std::move(tree));
    if (linked.fd) roots_.push_back(std::move(linked));  // open for the tree's index too
  }
  add_linked_worktrees(sandbox_may_write);
}

// The linked worktrees of the repositories checked, where the sandbox may
// write them (`git worktree add .worktrees/f` in the work dir): git in such
// a worktree takes hooks and config from the git dir its `.git` gitfile
// names, so a gitfile rewritten to `gitdir: /WORK/planted.git` would run
// that dir's core.fsmonitor at the host's next `git status` there. Each is
// named by its git dir's `gitdir` file (worktrees/ID/gitdir: /PATH/.git)
// and checked as a work tree of its own.
void GitGuard::add_linked_worktrees(const MayWrite& sandbox_may_write) {
  std::vector<std::string> found;
  for (const Root& root : roots_) {
    if (!root.fd) continue;
    const UniqueFd git_dir =
        root.git_dir ? UniqueFd(::dup(root.fd.get())) : open_dir_at(root.fd.get(), ".git");
    const UniqueFd worktrees = git_dir ? open_dir_at(git_dir.get(), "worktrees") : UniqueFd();
    if (!worktrees) continue;
    for (const auto& id : list_dir(worktrees.get())) {
      if (found.size() >= kMaxWorktrees) {
        if (options_.on_warning)
          options_.on_warning(fmt::format(
              "{}: more than {} linked worktrees; the .git of those after the first {} is not "
              "checked at the end of the run (docs/filesystem.md, Git redirection)",
              root.path, kMaxWorktrees, kMaxWorktrees));
        break;
      }
      const UniqueFd wt = open_dir_at(worktrees.get(), id);
      std::string dotgit = wt ? read_regular_file(wt.get(), "gitdir", 4096) : std::string();
      strip_line_ends(dotgit);
      if (!ends_with(dotgit, "/.git")) continue;
      // Relative (worktree.useRelativePaths, git 2.48): to worktrees/ID.
      if (!dotgit.starts_with("/"))
        dotgit =
            (root.git_dir ? root.path : root.path + "/.git") + "/worktrees/" + id + "/" + dotgit;
      found.push_back(dotgit.substr(0, dotgit.size() - 5));
    }
  }
  for (const auto& top : found) {
    const std::string resolved = resolved_path(top);
    const auto within_a_tree = [&] {
      return std::any_of(roots_.begin(), roots_.end(), [&](const Root& r) {
        return !r.git_dir && r.fd && path_is_within(resolved, resolved_path(r.path));
      });
    };
    if (resolved.empty() || !(sandbox_may_write ? sandbox_may_write(resolved) : within_a_tree()))
      continue;
    Root tree;
    tree.path = resolved;  // named as git names it, "." and ".." resolved
    // Reached with no symlink on the way: the path the check was made for.
    tree.fd.reset(sys::openat2(AT_FDCWD, resolved.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                               RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
    if (!tree.fd || std::any_of(roots_.begin(), roots_.end(), [&](const Root& r) {
          return r.fd && same_inode(r.fd.get(), tree.fd.get());
        }))
      continue;  // a work tree checked already
    // Its git dir (in the repository's worktrees/, checked with it) kept
    // open for the index's gitlinks, as for a run's own work tree: the
    // same directory gets the same snapshot either way (they share it).
    LinkedGitDir git = open_linked_git_dir(tree.fd.get(), tree.path, gitfile_git_dirs(tree.path));
    tree.linked_git = git.fd ? git.fd.get() : -1;
    take_baseline(tree);
    roots_.push_back(std::move(tree));
    if (git.fd) {
      Root linked;
      linked.git_dir = true;
      linked.checked = false;
      linked.path = git.label;
      linked.fd = std::move(git.fd);
      roots_.push_back(std::move(linked));
    }
  }
}

std::string GitGuard::serialize(const Snapshot& snap, const std::string& root) {
  // "ENTRIES\n", then per entry "REL_LEN CONTENT_LEN IS_DIR MODE UID GID\n"
  // followed by REL and CONTENT (bytes, any of them).
  std::string out = fmt::format("{}\n", snap.size());
  for (const auto& [path, state] : snap) {
    const std::string_view rel = std::string_view(path).substr(root.size() + 1);
    out += fmt::format("{} {} {} {} {} {}\n", rel.size(), state.content.size(),
                       state.is_dir ? 1 : 0, state.mode, state.uid, state.gid);
    out += rel;
    out += state.content;
  }
  return out;
}

GitGuard::Snapshot GitGuard::parse(std::string_view bytes, const std::string& root) {
  const auto bad = [] { return Error("a stored git guard snapshot is damaged"); };
  // The next number, ended by `end`.
  const auto number = [&](char end) {
    unsigned long long n = 0;
    const auto [next, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), n);
    if (ec != std::errc() || next == bytes.data() + bytes.size() || *next != end) throw bad();
    bytes.remove_prefix(static_cast<std::size_t>(next - bytes.data()) + 1);
    return n;
  };
  const auto take = [&](unsigned long long n) {
    if (n > bytes.size()) throw bad();
    const std::string_view part = bytes.substr(0, n);
    bytes.remove_prefix(n);
    return std::string(part);
  };
  Snapshot snap;
  for (unsigned long long entries = number('\n'); entries > 0; --entries) {
    const auto rel_size = number(' ');
    const auto content_size = number(' ');
    const auto is_dir = number(' ');
    const auto mode = number(' ');
    const auto uid = number(' ');
    const auto gid = number('\n');
    if (rel_size == 0 || is_dir > 1 || mode > 0777 || uid > UINT32_MAX || gid > UINT32_MAX)
      throw bad();
    std::string path = root + "/" + take(rel_size);
    FileState state;
    state.is_dir = is_dir == 1;
    state.mode = static_cast<unsigned>(mode);
    state.uid = static_cast<unsigned>(uid);
    state.gid = static_cast<unsigned>(gid);
    state.content = take(content_size);
    if (!snap.emplace(std::move(path), std::move(state)).second) throw bad();
  }
  if (!bytes.empty()) throw bad();
  return snap;
}

void GitGuard::take_baseline(Root& root) {
  root.baseline.emplace("git", root.fd.get(), root.path);
  if (const auto& stored = root.baseline->stored()) {
    try {
      root.before = parse(*stored, root.path);
    } catch (const Error& e) {  // sbx wrote it: not expected
      throw Error(fmt::format("{} (stored for {} by another sbx run)", e.what(), root.path),
                  "end the other strict runs there (`sbx ps`), then run again");
    }
    return;
  }
  root.before = snapshot_of(root);
  root.baseline->publish(serialize(root.before, root.path));
  if (!root.baseline->shared() && options_.on_warning)
    options_.on_warning(root.baseline->unshared());
}

GitGuard::Snapshot GitGuard::snapshot_of(const Root& root) const {
  if (!root.fd) return {};
  if (!root.git_dir) return snapshot(root.fd.get(), root.path, root.linked_git);
  Snapshot snap;
  add_repository_files(snap, root.fd.get(), root.path);
  return snap;
}

GitGuard::~GitGuard() {
  check_and_revert();
}

void GitGuard::check_and_revert() noexcept {
  const long stamp =
      static_cast<long>(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
  for (const Root& root : roots_) revert(root, stamp);
}

void GitGuard::revert(const Root& root, long stamp) noexcept {
  if (!root.fd || !root.checked) return;
  try {
    const int top_fd = root.fd.get();
    const std::string& top = root.path;
    const Snapshot after = snapshot_of(root);
    const Snapshot& before = root.before;
    std::vector<std::string> moved_dirs;  // their files went with them
    for (const auto& [path, state] : after) {
      if (std::any_of(moved_dirs.begin(), moved_dirs.end(),
                      [&](const std::string& d) { return path.starts_with(d + "/"); })) {
        continue;
      }
      auto old = before.find(path);
      if (old != before.end() && old->second.is_dir == state.is_dir &&
          old->second.content == state.content) {
        continue;
      }
      // A rebase's or cherry-pick's strategy: only a program is a threat.
      const bool rebase_strategy = ends_with(path, "/rebase-merge/strategy");
      if ((rebase_strategy || ends_with(path, "/sequencer/opts")) && !state.is_dir &&
          !state.content.starts_with("symlink:") && !state.content.starts_with("[special") &&
          strategies_builtin(state.content, !rebase_strategy))
        continue;
      if (ends_with(path, "/" + std::string(kTodo)) && state.content.starts_with(kExecLines)) {
        disarm_todo(top_fd, top, path, state, old == before.end() ? nullptr : &old->second, stamp);
        continue;
      }
      // Directories that merely appeared (worktrees/, modules/) are
      // harmless by themselves; their files are entries of their own.
      if (state.is_dir && old == before.end() && !ends_with(path, "/.git")) continue;
      const auto [parent, name] = entry_of(top_fd, top, path);
      const std::string moved_name = parent ? quarantine(parent.get(), name, stamp) : "";
      const bool ok = !moved_name.empty();
      if (ok && state.is_dir) moved_dirs.push_back(path);
      bool restored = false;
      if (ok && old != before.end() && old->second.content.starts_with("symlink:")) {
        restored = ::symlinkat(old->second.content.c_str() + 8, parent.get(), name.c_str()) == 0;
      } else if (ok && old != before.end() && !old->second.is_dir &&
                 !old->second.content.starts_with("[special") &&
                 !old->second.content.starts_with(kExecLines)) {  // a todo: its exec lines only
        restored = restore_file(parent.get(), name, old->second);
      }
      // "replaced": another type now (a directory where the link was).
      const auto kind = [](const FileState& f) {
        return f.is_dir ? 'd' : f.content.starts_with("symlink:") ? 'l' : 'f';
      };
      const char* change = old == before.end()                ? "created"
                           : kind(old->second) != kind(state) ? "replaced"
                                                              : "changed";
      emit_violation(options_, path, change,
                     ok ? path.substr(0, path.size() - name.size()) + moved_name : std::string(),
                     restored);
    }
  } catch (...) {
    if (options_.on_warning) options_.on_warning("could not check the git redirection files");
  }
}

// A rebase todo list with exec lines that were not in it before the run
// (a new list, or lines added): those lines are commented out ("# sbx: "),
// so `git rebase --continue` on the host goes on without running them; the
// sandbox's list is kept aside. Not reverted as a whole: the rest of it
// (what is done, what is left) is the rebase's state.
void GitGuard::disarm_todo(int top_fd, const std::string& top, const std::string& path,
                           const FileState& now, const FileState* was, long stamp) noexcept {
  const std::set<std::string> before = was != nullptr && was->content.starts_with(kExecLines)
                                           ? recorded_exec_lines(was->content)
                                           : std::set<std::string>();
  std::vector<std::string> added;
  for (const auto& line : recorded_exec_lines(now.content))
    if (before.count(line) == 0) added.push_back(line);
  if (added.empty()) return;  // some done, none new
  const auto [parent, name] = entry_of(top_fd, top, path);
  const std::string bytes =
      parent ? read_regular_file(parent.get(), name.c_str(), kMaxTodoBytes) : std::string();
  FileState disarmed = now;
  disarmed.content.clear();
  for (std::string_view todo = bytes; !todo.empty();) {
    const std::string_view line = next_line(todo);
    const std::string bare(todo_line(line));
    if (is_exec_line(bare) && std::find(added.begin(), added.end(), bare) != added.end())
      disarmed.content += "# sbx: ";
    disarmed.content += line;
  }
  const std::string moved = parent && !bytes.empty() ? quarantine(parent.get(), name, stamp) : "";
  const bool written = !moved.empty() && restore_file(parent.get(), name, disarmed);
  const std::string moved_path =
      moved.empty() ? "" : path.substr(0, path.size() - name.size()) + moved;
  std::string commands;
  for (const auto& line : added) commands += (commands.empty() ? "" : "; ") + line;
  report_violation(
      options_,
      {{"kind", "git_redirection"},
       {"path", path},
       {"change", "exec_added"},
       {"commands", added},
       {"quarantined_to", moved_path},
       {"restored", written}},
      written ? fmt::format(
                    "the sandbox added exec lines to {} (a rebase in progress), which `git rebase "
                    "--continue` on the host would run: {}. Commented out there ('# sbx: '); the "
                    "sandbox's list is {}. Fix: read them; uncomment one only if you trust it, or "
                    "`git rebase --abort` (docs/filesystem.md, Git redirection)",
                    path, commands, moved_path)
              : fmt::format("the sandbox added exec lines to {} (a rebase in progress), which `git "
                            "rebase --continue` on the host would run: {}; sbx could not disarm "
                            "them. Fix: run `git rebase --abort` before anything else there",
                            path, commands));
}

}  // namespace sbx::runtime
