// SharedBaseline (runtime/shared_baseline.cpp): the first of overlapping
// runs stores its snapshot, the others read it, the last one out removes
// it; and GitGuard's snapshot as bytes and back.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <sbx/error.hpp>

#include "runtime/git_guard.hpp"
#include "runtime/shared_baseline.hpp"
#include "runtime/unique_fd.hpp"

using namespace sbx;
using namespace sbx::runtime;
namespace fs = std::filesystem;

namespace {

struct Dir {
  fs::path path;
  UniqueFd fd;
  Dir() {
    char tmpl[] = "/tmp/sbx-unit-baseline.XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp under /tmp failed");
    path = made;
    fd.reset(::open(made, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  ~Dir() { fs::remove_all(path); }
  SharedBaseline baseline() const { return SharedBaseline("unit", fd.get(), path.string()); }
};

// Whether a segment of `key` exists (attached by `attached` runs).
bool segment(int key, unsigned long attached) {
  const int id = ::shmget(key, 0, 0);
  struct shmid_ds ds {};
  return id >= 0 && ::shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == attached;
}

}  // namespace

TEST_CASE("shared baseline: the first run's snapshot is the one every overlapping run uses",
          "[shared_baseline]") {
  Dir dir;
  const std::string snapshot = std::string("before\n\0binary", 14);
  std::optional<SharedBaseline> first(dir.baseline());
  CHECK(first->shared());
  CHECK_FALSE(first->stored());
  first->publish(snapshot);
  std::optional<SharedBaseline> second(dir.baseline());
  REQUIRE(second->stored());
  CHECK(*second->stored() == snapshot);
  // Another directory is another thing guarded: a first run of its own.
  {
    Dir other;
    SharedBaseline b = other.baseline();
    CHECK_FALSE(b.stored());
  }
  // The first ends while the second runs: a third still gets the first's.
  first.reset();
  {
    SharedBaseline third = dir.baseline();
    REQUIRE(third.stored());
    CHECK(*third.stored() == snapshot);
  }
  // The last one out removes it; the next run is a first run again.
  const int key = second->key();
  CHECK(segment(key, 1));
  second.reset();
  CHECK(::shmget(key, 0, 0) < 0);
  SharedBaseline again = dir.baseline();
  CHECK(again.shared());
  CHECK_FALSE(again.stored());
}

TEST_CASE("shared baseline: runs that died, a first that never published", "[shared_baseline]") {
  Dir dir;
  // A run killed after it published: the kernel detaches it, nobody removes
  // the segment. The next run finds it attached by none: it is the first.
  const int key = dir.baseline().key();  // (no segment yet)
  const pid_t child = ::fork();
  if (child == 0) {
    SharedBaseline b = dir.baseline();
    b.publish("old");
    ::_exit(0);  // no destructor: as after kill -9
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(segment(key, 0));
  {
    SharedBaseline next = dir.baseline();
    CHECK_FALSE(next.stored());
    next.publish("new");
    SharedBaseline beside = dir.baseline();
    REQUIRE(beside.stored());
    CHECK(*beside.stored() == "new");
  }
  // A killed run's segment for a directory no run guards again: removed by
  // the next first run of any directory of this user's.
  {
    Dir gone;
    const int gone_key = gone.baseline().key();
    const pid_t killed = ::fork();
    if (killed == 0) {
      SharedBaseline b = gone.baseline();
      b.publish("left behind");
      ::_exit(0);
    }
    REQUIRE(::waitpid(killed, &status, 0) == killed);
    CHECK(segment(gone_key, 0));
    Dir other;
    const pid_t next = ::fork();  // a process of its own: it sweeps once
    if (next == 0) {
      SharedBaseline first = other.baseline();
      ::_exit(0);
    }
    REQUIRE(::waitpid(next, &status, 0) == next);
    CHECK(::shmget(gone_key, 0, 0) < 0);
  }
  // A first run that ended before it published leaves nothing to read.
  {
    std::optional<SharedBaseline> unpublished(dir.baseline());
    unpublished.reset();
    SharedBaseline next = dir.baseline();
    CHECK_FALSE(next.stored());
  }
}

TEST_CASE("shared baseline: a lock held too long stops the start, naming the directory",
          "[shared_baseline]") {
  Dir dir;
  const int holder = ::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(holder >= 0);
  REQUIRE(::flock(holder, LOCK_EX) == 0);
  try {
    SharedBaseline b = dir.baseline();
    FAIL("a held lock was taken");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(dir.path.string()) != std::string::npos);
    CHECK(e.fix().find("fuser") != std::string::npos);
  }
  ::close(holder);
  // Held a moment (another run taking its snapshot): waited for.
  std::optional<SharedBaseline> first(dir.baseline());
  std::thread later([&] {
    ::usleep(100000);
    first->publish("x");
  });
  SharedBaseline second = dir.baseline();
  later.join();
  REQUIRE(second.stored());
  CHECK(*second.stored() == "x");
}

TEST_CASE("shared baseline: a segment on the key that is not sbx's for the directory",
          "[shared_baseline]") {
  Dir dir;
  const int k = dir.baseline().key();
  // A stranger's segment (another directory of the user's on a colliding
  // key): not taken as a snapshot; each run keeps its own.
  const int id = ::shmget(k, 4096, IPC_CREAT | IPC_EXCL | 0600);
  REQUIRE(id >= 0);
  void* p = ::shmat(id, nullptr, 0);
  REQUIRE(p != reinterpret_cast<void*>(-1));
  std::memcpy(p, "sbx-baseline-1\0\0unit:0:0:0", 27);
  {
    SharedBaseline b = dir.baseline();
    CHECK_FALSE(b.shared());
    CHECK_FALSE(b.stored());
    b.publish("mine");  // a no-op
    CHECK(b.unshared().find("not sbx's for it") != std::string::npos);
    CHECK(std::string(static_cast<const char*>(p), 14) == "sbx-baseline-1");
  }
  // The right directory, but never published (half written), or readable by
  // others: not taken either.
  struct stat st {};
  REQUIRE(::fstat(dir.fd.get(), &st) == 0);
  const std::string right = "unit:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::memset(p, 0, 4096);
  std::memcpy(p, "sbx-baseline-1", 14);
  std::memcpy(static_cast<char*>(p) + 16, right.data(), right.size());
  {
    SharedBaseline b = dir.baseline();  // published = 0
    CHECK_FALSE(b.shared());
  }
  struct shmid_ds ds {};
  REQUIRE(::shmctl(id, IPC_STAT, &ds) == 0);
  std::uint32_t one = 1;
  std::memcpy(static_cast<char*>(p) + 16 + 112 + 8, &one, sizeof one);  // published
  {
    SharedBaseline b = dir.baseline();  // now sbx's own, as the header says
    CHECK(b.shared());
    CHECK(b.stored());
  }
  ds.shm_perm.mode = 0640;
  REQUIRE(::shmctl(id, IPC_SET, &ds) == 0);
  {
    SharedBaseline b = dir.baseline();
    CHECK_FALSE(b.shared());
  }
  ::shmdt(p);
  ::shmctl(id, IPC_RMID, nullptr);
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
