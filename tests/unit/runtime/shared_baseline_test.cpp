// SharedBaseline (runtime/shared_baseline.cpp): the first of overlapping
// runs stores its snapshot, the others read it, the last one out removes
// it; and GitGuard's snapshot as bytes and back.
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include <sbx/error.hpp>

#include "runtime/git_guard.hpp"
#include "runtime/shared_baseline.hpp"

using namespace sbx;
using namespace sbx::runtime;
namespace fs = std::filesystem;

namespace {

struct Base {
  fs::path dir;
  Base() {
    char tmpl[] = "/tmp/sbx-unit-baseline.XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp under /tmp failed");
    dir = made;
  }
  ~Base() { fs::remove_all(dir); }
  fs::path file(const std::string& key) const { return dir / (".guard-" + key); }
};

}  // namespace

TEST_CASE("shared baseline: the first run's snapshot is the one every overlapping run uses",
          "[shared_baseline]") {
  Base base;
  const std::string snapshot = std::string("before\n\0binary", 14);
  std::optional<SharedBaseline> first(std::in_place, base.dir.string(), "k");
  CHECK_FALSE(first->stored());
  first->publish(snapshot);
  std::optional<SharedBaseline> second(std::in_place, base.dir.string(), "k");
  REQUIRE(second->stored());
  CHECK(*second->stored() == snapshot);
  // Another key is another thing guarded: a first run of its own.
  {
    SharedBaseline other(base.dir.string(), "other");
    CHECK_FALSE(other.stored());
  }
  CHECK_FALSE(fs::exists(base.file("other")));
  // The first ends while the second runs: a third still gets the first's.
  first.reset();
  CHECK(fs::exists(base.file("k")));
  {
    SharedBaseline third(base.dir.string(), "k");
    REQUIRE(third.stored());
    CHECK(*third.stored() == snapshot);
  }
  // The last one out removes it; the next run is a first run again.
  second.reset();
  CHECK_FALSE(fs::exists(base.file("k")));
  SharedBaseline again(base.dir.string(), "k");
  CHECK_FALSE(again.stored());
  const auto owner_only = fs::perms::owner_read | fs::perms::owner_write;
  CHECK((fs::status(base.file("k")).permissions() & fs::perms::all) == owner_only);
}

TEST_CASE("shared baseline: leftovers of runs that died", "[shared_baseline]") {
  Base base;
  // A run killed after it published: nobody holds the file, so the next
  // run is the first and takes a snapshot of its own.
  std::ofstream(base.file("k")) << "sbx-baseline 1\nold";
  {
    SharedBaseline next(base.dir.string(), "k");
    CHECK_FALSE(next.stored());
    next.publish("new");
    SharedBaseline beside(base.dir.string(), "k");
    REQUIRE(beside.stored());
    CHECK(*beside.stored() == "new");
  }
  CHECK_FALSE(fs::exists(base.file("k")));
  // A first run that ended before it published leaves nothing to read:
  // the run waiting on it becomes the first.
  {
    std::optional<SharedBaseline> unpublished(std::in_place, base.dir.string(), "k");
    unpublished.reset();
    SharedBaseline next(base.dir.string(), "k");
    CHECK_FALSE(next.stored());
  }
}

TEST_CASE("shared baseline: a file sbx did not write, a lock held too long", "[shared_baseline]") {
  Base base;
  // Held (shared) by a run, not in sbx's format: refused, with the fix.
  std::ofstream(base.file("k")) << "something else";
  const int holder = ::open(base.file("k").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(holder >= 0);
  REQUIRE(::flock(holder, LOCK_SH) == 0);
  try {
    SharedBaseline b(base.dir.string(), "k");
    FAIL("a foreign file was taken as a snapshot");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("is not a snapshot sbx stored") != std::string::npos);
    CHECK(e.fix().find("sbx ps") != std::string::npos);
  }
  // Held exclusively for over a second: refused, naming the file.
  REQUIRE(::flock(holder, LOCK_EX) == 0);
  try {
    SharedBaseline b(base.dir.string(), "k");
    FAIL("a held lock was taken");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(base.file("k").string()) != std::string::npos);
    CHECK(e.fix().find("fuser") != std::string::npos);
  }
  ::close(holder);
  // A symlink where the file goes is not followed.
  fs::remove(base.file("k"));
  fs::create_symlink(base.dir / "elsewhere", base.file("k"));
  CHECK_THROWS_AS(SharedBaseline(base.dir.string(), "k"), Error);
  CHECK_FALSE(fs::exists(base.dir / "elsewhere"));
}

TEST_CASE("git guard: a snapshot as bytes and back, under another path to the same directory",
          "[shared_baseline][git_guard]") {
  GitGuard::Snapshot snap;
  snap["/w/.git"].is_dir = true;
  snap["/w/.git"].mode = 0755;
  auto& worktree = snap["/w/.git/config.worktree"];
  worktree.content = std::string("[core]\n\tx = 1\n\0\xff", 17);
  worktree.mode = 0600;
  worktree.uid = 1001;
  worktree.gid = 4294967295u;
  snap["/w/sub/.git"].content = "symlink:../elsewhere";
  snap["/w/.git/commondir"].content = "";
  const std::string bytes = GitGuard::serialize(snap, "/w");
  GitGuard::Snapshot back = GitGuard::parse(bytes, "/other/path");
  REQUIRE(back.size() == snap.size());
  for (const auto& [path, state] : snap) {
    const auto it = back.find("/other/path" + path.substr(2));
    REQUIRE(it != back.end());
    CHECK(it->second.is_dir == state.is_dir);
    CHECK(it->second.content == state.content);
    CHECK(it->second.mode == state.mode);
    CHECK(it->second.uid == state.uid);
    CHECK(it->second.gid == state.gid);
  }
  CHECK(GitGuard::parse(GitGuard::serialize({}, "/w"), "/w").empty());
  // Anything serialize() does not write is refused.
  for (const std::string& damaged :
       {std::string(), bytes.substr(0, bytes.size() - 1), bytes + "x", std::string("1\n"),
        std::string("1\n4 0 2 420 0 0\n.git"), std::string("1\n4 0 0 4096 0 0\n.git"),
        std::string("1\n0 0 0 420 0 0\n"), std::string("1\n4 99 0 420 0 0\n.git"),
        std::string("1\n4 0 0 420 0 99999999999\n.git"), std::string("1\n-4 0 0 420 0 0\n.git"),
        std::string("2\n4 0 0 420 0 0\n.git4 0 0 420 0 0\n.git"),
        std::string("18446744073709551616\n")}) {
    INFO(damaged);
    CHECK_THROWS_AS(GitGuard::parse(damaged, "/w"), Error);
  }
}

TEST_CASE("shared baseline: not shared through a base the sandbox may write", "[shared_baseline]") {
  std::string base;
  std::string asked;
  const auto shared = SharedBaseline::open(
      "unit-writable", [&](const std::string& path) { return asked = path, true; }, base);
  CHECK_FALSE(shared);
  CHECK_FALSE(base.empty());
  CHECK(asked == fs::canonical(base).string());
  const std::string warning = SharedBaseline::unshared(base, "/w");
  CHECK(warning.find(base) != std::string::npos);
  CHECK(warning.find("/w") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::path(base) / ".guard-unit-writable"));
}
