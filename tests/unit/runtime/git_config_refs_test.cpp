// protect_hooks_paths: what a protected repository's .git/config (and a
// protected ~/.gitconfig) make git read or run from elsewhere becomes
// read-only too: core.hooksPath directories and every included config file.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/plan.hpp"

namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir;
  Scratch() {
    std::string t = (fs::temp_directory_path() / "sbx-gitcfg-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    dir = t;
  }
  ~Scratch() { fs::remove_all(dir); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << text;
  }
  std::string at(const std::string& rel) const { return (dir / rel).string(); }
};

std::vector<std::string> added(const sbx::Policy& before, const std::optional<sbx::Policy>& after) {
  std::vector<std::string> out;
  if (!after) return out;
  const auto& was = before.filesystem.deny_write;
  for (const auto& p : after->filesystem.deny_write)
    if (std::find(was.begin(), was.end(), p) == was.end()) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("hooksPath and includes of a protected repository are protected", "[runtime][git]") {
  Scratch s;
  const std::string top = s.at("repo");
  const std::string home = s.at("home");
  s.write("repo/.git/config",
          "[core]\n"
          "\tbare = false\n"
          "\thooksPath = .githooks   # husky\n"
          "[include]\n"
          "\tpath = \"../shared.gitconfig\"\n"
          "[includeIf \"gitdir:/elsewhere/\"]\n"  // the condition does not matter
          "\tPath = ~/team.gitconfig\n"
          "[remote \"origin\"]\n"
          "\tpath = not-an-include\n"
          "[core \"sub\"]\n"
          "\thooksPath = not-core\n");
  // Nested: the included file includes another and moves the hooks again; a
  // cycle back to it is read once.
  s.write("repo/shared.gitconfig", "[include] path = nested/more.gitconfig\n");
  s.write("repo/nested/more.gitconfig",
          "[core]\n\thookspath = /abs/hooks\n[include]\n\tpath = ../shared.gitconfig\n");
  sbx::Policy policy;
  policy.filesystem.deny_write = {top + "/.git/hooks", top + "/.git/config"};
  const auto out = sbx::runtime::protect_hooks_paths(policy, home.c_str());
  CHECK(added(policy, out) ==
        std::vector<std::string>{"/abs/hooks", home + "/team.gitconfig", top + "/.githooks",
                                 top + "/nested/more.gitconfig", top + "/shared.gitconfig"});
}

TEST_CASE("no hooksPath, no include: nothing added", "[runtime][git]") {
  Scratch s;
  s.write("repo/.git/config", "[core]\n\tbare = false\n# [include] path = x\n");
  sbx::Policy policy;
  policy.filesystem.deny_write = {s.at("repo") + "/.git/hooks"};
  CHECK_FALSE(sbx::runtime::protect_hooks_paths(policy, "/nonexistent"));
  // Not a protected repository at all: its config is not read.
  s.write("other/.git/config", "[include]\n\tpath = x.gitconfig\n");
  policy.filesystem.deny_write = {s.at("other") + "/.git/config"};
  CHECK_FALSE(sbx::runtime::protect_hooks_paths(policy, "/nonexistent"));
}

TEST_CASE("a protected ~/.gitconfig: its includes, and git's XDG config", "[runtime][git]") {
  Scratch s;
  const std::string home = s.at("home");
  s.write("home/.gitconfig", "[include]\n\tpath = work/.gitconfig-team\n");
  s.write("xdg/git/config", "[core]\n\thooksPath = ~/hooks\n");
  ::setenv("XDG_CONFIG_HOME", s.at("xdg").c_str(), 1);
  sbx::Policy policy;
  policy.filesystem.deny_write = {home + "/.gitconfig"};
  const auto out = sbx::runtime::protect_hooks_paths(policy, home.c_str());
  ::unsetenv("XDG_CONFIG_HOME");
  CHECK(added(policy, out) ==
        std::vector<std::string>{home + "/hooks", home + "/work/.gitconfig-team"});
}

TEST_CASE("a gitfile .git: the git dir it names and a linked worktree's common dir are protected",
          "[runtime][git]") {
  Scratch s;
  const std::string real = fs::canonical(s.dir).string();
  // --separate-git-dir inside the work tree.
  s.write("sep/.git", "gitdir: .repo.git\n");
  s.write("sep/.repo.git/config", "[core]\n\thooksPath = ../hooks-elsewhere\n");
  s.write("sep/.repo.git/HEAD", "ref: refs/heads/main\n");
  fs::create_directories(s.dir / "sep/.repo.git/objects");
  sbx::Policy policy;
  policy.filesystem.deny_write = {s.at("sep") + "/.git/hooks", s.at("sep") + "/.git/config"};
  CHECK(added(policy, sbx::runtime::protect_hooks_paths(policy, "/nonexistent")) ==
        std::vector<std::string>{s.at("hooks-elsewhere"),  // relative to the work tree
                                 real + "/sep/.repo.git/config", real + "/sep/.repo.git/hooks"});
  // A linked worktree: its git dir in the main repository's .git/worktrees,
  // and the main .git (commondir) with the hooks and config git uses.
  s.write("main/.git/config", "[core]\n\tbare = false\n");
  s.write("main/.git/HEAD", "ref: refs/heads/main\n");
  fs::create_directories(s.dir / "main/.git/objects");
  s.write("main/.git/worktrees/wt/commondir", "../..\n");
  s.write("main/.git/worktrees/wt/HEAD", "ref: refs/heads/wt\n");
  s.write("wt/.git", "gitdir: " + s.at("main") + "/.git/worktrees/wt\n");
  // What protecting the work tree `wt`'s hooks adds: the common dir's hooks
  // and config, and those of its own git dir in worktrees/.
  const auto added_for_worktree = [&](const std::string& wt) {
    policy.filesystem.deny_write = {s.at(wt) + "/.git/hooks"};
    return added(policy, sbx::runtime::protect_hooks_paths(policy, "/nonexistent"));
  };
  const auto common_and_own = [&](const std::string& wt) {
    return std::vector<std::string>{real + "/main/.git/config", real + "/main/.git/hooks",
                                    real + "/main/.git/worktrees/" + wt + "/config",
                                    real + "/main/.git/worktrees/" + wt + "/hooks"};
  };
  CHECK(added_for_worktree("wt") == common_and_own("wt"));
  // The same with `commondir` a symlink to a file naming the common dir:
  // git follows it (strbuf_read_file), so sbx does too.
  s.write("main/.git/worktrees/wt2/HEAD", "ref: refs/heads/wt2\n");
  s.write("main/.git/worktrees/wt2-commondir", "../..\n");
  fs::create_symlink("../wt2-commondir", s.dir / "main/.git/worktrees/wt2/commondir");
  s.write("wt2/.git", "gitdir: " + s.at("main") + "/.git/worktrees/wt2\n");
  CHECK(added_for_worktree("wt2") == common_and_own("wt2"));
  // A gitfile naming what is no git dir (git refuses it too): nothing, so
  // that `gitdir: .` cannot make the work dir's config/ and hooks/ read-only.
  s.write("dot/.git", "gitdir: .\n");
  fs::create_directories(s.dir / "dot/hooks");
  policy.filesystem.deny_write = {s.at("dot") + "/.git/hooks"};
  CHECK_FALSE(sbx::runtime::protect_hooks_paths(policy, "/nonexistent"));
  // Not a gitfile: nothing more.
  s.write("plain/.git", "not a gitfile\n");
  policy.filesystem.deny_write = {s.at("plain") + "/.git/hooks"};
  CHECK_FALSE(sbx::runtime::protect_hooks_paths(policy, "/nonexistent"));
}

TEST_CASE("a config that is no regular file is not read (a FIFO does not stall the start)",
          "[runtime][git]") {
  Scratch s;
  s.write("repo/.git/config", "[include]\n\tpath = ../planted.gitconfig\n");
  REQUIRE(::mkfifo(s.at("repo/planted.gitconfig").c_str(), 0644) == 0);
  sbx::Policy policy;
  policy.filesystem.deny_write = {s.at("repo") + "/.git/hooks"};
  // The include itself is protected; reading it returns at once, finding nothing.
  CHECK(added(policy, sbx::runtime::protect_hooks_paths(policy, "/nonexistent")) ==
        std::vector<std::string>{s.at("repo/planted.gitconfig")});
}
