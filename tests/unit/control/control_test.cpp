// control/: names, signal and duration parsing, state dirs (claim, unique
// names, stale cleaning after the owner is gone) without a sandbox.
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "control/control.hpp"

using namespace sbx::control;

TEST_CASE("sandbox names follow the --name rule") {
  CHECK(valid_name("ci-42"));
  CHECK(valid_name("a.b_c-1"));
  CHECK_FALSE(valid_name(""));
  CHECK_FALSE(valid_name(".hidden"));
  CHECK_FALSE(valid_name("a/b"));
  CHECK_FALSE(valid_name("../x"));
  CHECK_FALSE(valid_name(std::string(65, 'a')));
}

TEST_CASE("signals by name or number") {
  CHECK(parse_signal("TERM") == SIGTERM);
  CHECK(parse_signal("sigkill") == SIGKILL);
  CHECK(parse_signal("SIGUSR1") == SIGUSR1);
  CHECK(parse_signal("9") == 9);
  CHECK_FALSE(parse_signal("0"));
  CHECK_FALSE(parse_signal("NOPE"));
  CHECK_FALSE(parse_signal("1000"));
}

TEST_CASE("durations") {
  using std::chrono::milliseconds;
  CHECK(parse_duration("10s") == milliseconds(10000));
  CHECK(parse_duration("500ms") == milliseconds(500));
  CHECK(parse_duration("1m30s") == milliseconds(90000));
  CHECK(parse_duration("3") == milliseconds(3000));
  CHECK_THROWS_AS(parse_duration("1x"), sbx::Error);
  CHECK_THROWS_AS(parse_duration(""), sbx::Error);
}

namespace {
struct PrivateRuntimeDir {
  std::string dir;
  std::string old;
  bool had = false;
  PrivateRuntimeDir() {
    char tmpl[] = "/tmp/sbx-unit-control.XXXXXX";
    dir = ::mkdtemp(tmpl);
    if (const char* x = std::getenv("XDG_RUNTIME_DIR")) {
      had = true;
      old = x;
    }
    ::setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
  }
  ~PrivateRuntimeDir() {
    if (had)
      ::setenv("XDG_RUNTIME_DIR", old.c_str(), 1);
    else
      ::unsetenv("XDG_RUNTIME_DIR");
    std::filesystem::remove_all(dir);
  }
};
ControlServer::Options options(const std::string& name) {
  ControlServer::Options o;
  o.info.name = name;
  o.info.id = "0123456789abcdef";
  o.info.profile = "standard";
  o.info.sbx_pid = ::getpid();
  return o;
}
}  // namespace

TEST_CASE("a claimed name is unique, listed, and removed at the end") {
  PrivateRuntimeDir rt;  // root: /run/sbx regardless
  const std::string base = state_base(true);
  CHECK(base == (::geteuid() == 0 ? std::string("/run/sbx") : rt.dir + "/sbx"));
  const std::string name = "unit-a-" + std::to_string(::getpid());
  struct stat st {};
  REQUIRE(::stat(base.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  {
    ControlServer a(options(name));
    CHECK(a.dir() == base + "/" + name);
    CHECK(is_live(a.dir()));
    auto live = find_live(base, name);
    REQUIRE(live);
    CHECK(live->state.value("profile", "") == "standard");
    bool listed = false;
    for (const auto& e : list_live(base)) listed = listed || e.name == name;
    CHECK(listed);
    REQUIRE(::stat((a.dir() + "/control.sock").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    try {
      ControlServer b(options(name));
      FAIL("a second server with the same name was created");
    } catch (const sbx::Error& e) {
      CHECK(std::string(e.what()).find("already running") != std::string::npos);
    }
    CHECK_THROWS_AS(ControlServer(options("bad/name")), sbx::Error);
  }
  CHECK_FALSE(std::filesystem::exists(base + "/" + name));
  // The base stays (re-creating it per run would cost start-up time). Not
  // checked for emptiness: as root it is /run/sbx, which other tests and
  // sandboxes running at the same time (ctest -j) use too.
  CHECK(std::filesystem::is_directory(base));
}

TEST_CASE("stale state of a dead owner is cleaned, a live one is kept") {
  PrivateRuntimeDir rt;
  const std::string base = state_base(true);
  const std::string dead = base + "/unit-dead-" + std::to_string(::getpid());
  const std::string alive = base + "/unit-alive-" + std::to_string(::getpid());
  // A dead owner: a complete dir whose lock nobody holds.
  std::filesystem::create_directory(dead);
  std::ofstream(dead + "/lock").put('x');
  std::ofstream(dead + "/state.json") << "{}";
  // A live owner: the lock held by this process (another open file).
  std::filesystem::create_directory(alive);
  std::ofstream(alive + "/lock").put('x');
  int fd = ::open((alive + "/lock").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  clean_stale(base);
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::exists(alive));
  CHECK(is_live(alive));
  ::close(fd);
  CHECK_FALSE(is_live(alive));
  clean_stale(base);
  CHECK_FALSE(std::filesystem::exists(alive));
  ::rmdir(base.c_str());
}

TEST_CASE("liveness is the flock of the state dir itself") {
  PrivateRuntimeDir rt;
  const std::string base = state_base(true);
  const std::string dead = base + "/unit-dirdead-" + std::to_string(::getpid());
  const std::string alive = base + "/unit-diralive-" + std::to_string(::getpid());
  std::filesystem::create_directory(dead);
  std::ofstream(dead + "/state.json") << "{}";
  std::filesystem::create_directory(alive);
  std::ofstream(alive + "/state.json") << "{}";
  int fd = ::open(alive.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  CHECK(is_live(alive));
  CHECK_FALSE(is_live(dead));
  clean_stale(base);
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::exists(alive + "/state.json"));
  CHECK(is_live(alive));  // testing the lock did not take it away
  ::close(fd);
  CHECK_FALSE(is_live(alive));
  clean_stale(base);
  CHECK_FALSE(std::filesystem::exists(alive));
  ::rmdir(base.c_str());
}

TEST_CASE("a base dir that is not private is refused") {
  if (::geteuid() == 0) return;  // root always uses /run/sbx
  PrivateRuntimeDir rt;
  std::filesystem::create_directory(rt.dir + "/sbx");
  ::chmod((rt.dir + "/sbx").c_str(), 0755);
  CHECK_THROWS_AS(state_base(true), sbx::Error);
  ::chmod((rt.dir + "/sbx").c_str(), 0700);
  CHECK_NOTHROW(state_base(true));
}
