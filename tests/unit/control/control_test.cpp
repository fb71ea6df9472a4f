// control/: names, signal and duration parsing, state dirs (claim, unique
// names, stale cleaning after the owner is gone) without a sandbox.
#include <pthread.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "control/control.hpp"
#include "control/internal.hpp"

using namespace sbx::control;

namespace {
// A state dir with a state.json, locked (the dir's own flock) before it
// takes its name `dir`, as sbx makes one: as root the base is the shared
// /run/sbx, and another test's clean_stale (ctest -j) takes an unlocked dir
// for a dead one. Returns the locked fd.
int locked_new_dir(const std::string& base, const std::string& dir) {
  const std::string making = base + "/.new-unit-" + std::to_string(::getpid());
  std::filesystem::create_directory(making);
  std::ofstream(making + "/state.json") << "{}";
  int fd = ::open(making.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  REQUIRE(::rename(making.c_str(), dir.c_str()) == 0);
  return fd;
}
}  // namespace

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

// The CLI's way (claim_at_start): sbx::run calls start() once init is
// released; the name is claimed there, not when the server is made.
TEST_CASE("with claim_at_start the name is claimed by start(), once") {
  PrivateRuntimeDir rt;
  const std::string base = state_base(true);
  const std::string name = "unit-late-" + std::to_string(::getpid());
  ControlServer::Options late = options(name);
  late.claim_at_start = true;
  {
    ControlServer a(late);
    // Two starts at once: both made before either claims.
    ControlServer b(late);
    CHECK(a.fd() >= 0);  // watched by the supervisor from the start
    CHECK_FALSE(std::filesystem::exists(base + "/" + name));
    CHECK_FALSE(find_live(base, name));
    a.start();
    CHECK(a.dir() == base + "/" + name);
    CHECK(is_live(a.dir()));
    CHECK_NOTHROW(a.start());  // claimed already: nothing more
    // The later one is refused at its start.
    try {
      b.start();
      FAIL("a second server with the same name started");
    } catch (const sbx::Error& e) {
      CHECK(std::string(e.what()).find("already running") != std::string::npos);
    }
    CHECK(is_live(a.dir()));  // b's refusal left a's dir alone
    // Once the name is live, a new server of it is refused when it is made.
    try {
      ControlServer c(late);
      FAIL("a server of a live name was made");
    } catch (const sbx::Error& e) {
      CHECK(std::string(e.what()).find("already running") != std::string::npos);
    }
    // An invalid name is refused when the server is made, not at its start.
    ControlServer::Options bad = options("bad/name");
    bad.claim_at_start = true;
    CHECK_THROWS_AS(ControlServer(bad), sbx::Error);
  }
  CHECK_FALSE(std::filesystem::exists(base + "/" + name));
}

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
  // The base stays (re-creating it per run would cost start-up time), except
  // in the shared /tmp (this test's private runtime dir is there when not
  // root). Not checked for emptiness: as root it is /run/sbx, which other
  // tests and sandboxes running at the same time (ctest -j) use too.
  if (base.rfind("/tmp/", 0) != 0) CHECK(std::filesystem::is_directory(base));
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
  // A live owner: the lock held by this process (another open file). Made
  // under a young .new- name and locked before it takes its name, as sbx
  // does: as root the base is the shared /run/sbx, and another test's
  // clean_stale (ctest -j) would take an unlocked dir for a dead one.
  const std::string making = base + "/.new-unit-alive-" + std::to_string(::getpid());
  std::filesystem::create_directory(making);
  std::ofstream(making + "/lock").put('x');
  int fd = ::open((making + "/lock").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  REQUIRE(::rename(making.c_str(), alive.c_str()) == 0);
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

TEST_CASE("the spare state dir is never swept; emptying it again sees what came since") {
  char tmpl[] = "/tmp/sbx-unit-spare.XXXXXX";
  const std::string base = ::mkdtemp(tmpl);
  const std::string spare = base + "/" + kSpareDir;
  const std::string dead = base + "/unit-spare-dead";
  REQUIRE(::mkdir(spare.c_str(), 0700) == 0);
  std::filesystem::create_directory(dead);
  std::ofstream(dead + "/state.json") << "{}";
  clean_stale(base);
  CHECK_FALSE(std::filesystem::exists(dead));
  CHECK(std::filesystem::is_directory(spare));  // unlocked and empty, yet kept
  // The start that takes the spare empties it through its fd, and the same
  // fd empties it again at the end: the second pass must not start where the
  // first one stopped reading (a shared offset), or the files stay.
  int fd = ::open(spare.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(remove_dir_contents(fd));
  CHECK(directory_is_empty(fd) == std::optional<bool>(true));  // read on fd itself
  std::ofstream(spare + "/state.json") << "{}";
  std::ofstream(spare + "/control.sock") << "";
  CHECK(directory_is_empty(fd) == std::optional<bool>(false));
  CHECK(directory_is_empty(-1) == std::nullopt);
  CHECK(remove_dir_contents(fd));
  CHECK(std::filesystem::is_empty(spare));
  // What it cannot remove (a directory) makes it unusable as a spare.
  REQUIRE(::mkdir((spare + "/sub").c_str(), 0700) == 0);
  CHECK_FALSE(remove_dir_contents(fd));
  ::close(fd);
  std::filesystem::remove_all(base);
}

TEST_CASE("liveness is the flock of the state dir itself") {
  PrivateRuntimeDir rt;
  const std::string base = state_base(true);
  const std::string dead = base + "/unit-dirdead-" + std::to_string(::getpid());
  const std::string alive = base + "/unit-diralive-" + std::to_string(::getpid());
  std::filesystem::create_directory(dead);
  std::ofstream(dead + "/state.json") << "{}";
  int fd = locked_new_dir(base, alive);
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

namespace {
// A private base dir: is_live and clean_stale take paths, and as root the
// shared /run/sbx is also cleaned by other tests' sbx ps (ctest -j).
struct PrivateBase {
  std::string dir;
  PrivateBase() {
    char tmpl[] = "/tmp/sbx-unit-base.XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~PrivateBase() { std::filesystem::remove_all(dir); }
};
struct Stamp {
  pid_t pid;
  std::uint64_t pid_ns, time_ns, start;
};
Stamp stamp_of(pid_t pid, const ProcessStamp& s) {
  return {pid, s.pid_ns, s.time_ns, s.start};
}
void write_state(const std::string& dir, const Stamp& st) {
  std::ofstream(dir + "/state.json")
      << "{\"sbx_pid\": " << st.pid << ", \"sbx_pid_ns\": " << st.pid_ns
      << ", \"sbx_time_ns\": " << st.time_ns << ", \"sbx_start\": " << st.start << "}";
}
// A child that lives until killed.
pid_t idle_child() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) ::pause();
  }
  return pid;
}
}  // namespace

TEST_CASE("a sandbox whose sbx is gone is dead while a child of it still holds its lock") {
  // kill -9 of sbx: init (a fork of sbx, holding the locked dir fd until
  // its first step) is killed by PDEATHSIG but may finish exiting after sbx
  // has been reaped.
  PrivateBase base;
  const std::string dir = base.dir + "/unit-orphan";
  std::filesystem::create_directory(dir);
  const pid_t owner = idle_child();
  REQUIRE(owner > 0);
  const auto stamp = process_stamp(owner);
  REQUIRE(stamp);
  CHECK(stamp->start > 0);
  const Stamp st = stamp_of(owner, *stamp);
  write_state(dir, st);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  const pid_t holder = idle_child();  // shares the locked open file
  REQUIRE(holder > 0);
  ::close(fd);
  // Owner alive: live, and cleaning keeps it.
  CHECK(is_live(dir));
  CHECK(clean_stale(base.dir) == 0);
  // Owner a zombie (not reaped yet): gone.
  ::kill(owner, SIGKILL);
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(owner), &info, WEXITED | WNOWAIT) == 0);
  CHECK_FALSE(is_live(dir));
  ::waitpid(owner, nullptr, 0);
  // Cannot be told apart from a live owner, so the lock decides: another
  // pid namespace, another time namespace (start times are shifted by its
  // boottime offset), an older sbx's state without the time namespace, a
  // state that is not sbx's.
  write_state(dir, {st.pid, st.pid_ns + 1, st.time_ns, st.start});
  CHECK(is_live(dir));
  write_state(dir, {st.pid, st.pid_ns, st.time_ns + 1, st.start});
  CHECK(is_live(dir));
  std::ofstream(dir + "/state.json")
      << "{\"sbx_pid\": " << st.pid << ", \"sbx_pid_ns\": " << st.pid_ns
      << ", \"sbx_start\": " << st.start << "}";
  CHECK(is_live(dir));
  std::ofstream(dir + "/state.json")
      << "{\"sbx_pid\": \"x\", \"sbx_pid_ns\": [], \"sbx_time_ns\": 0, \"sbx_start\": 1}";
  CHECK(is_live(dir));
  CHECK(clean_stale(base.dir) == 0);
  // Owner reaped: dead while the holder still holds the lock, and removed.
  write_state(dir, st);
  CHECK_FALSE(is_live(dir));
  CHECK(clean_stale(base.dir) == 1);
  CHECK_FALSE(std::filesystem::exists(dir));
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
}

TEST_CASE("an owner whose main thread exited while another thread runs is alive") {
  // An embedder's sbx::run on a thread, its main thread gone (pthread_exit):
  // the thread-group leader is a zombie, the process is not.
  PrivateBase base;
  const std::string dir = base.dir + "/unit-threads";
  std::filesystem::create_directory(dir);
  int release[2];
  REQUIRE(::pipe(release) == 0);
  const pid_t owner = ::fork();
  REQUIRE(owner >= 0);
  if (owner == 0) {
    ::close(release[1]);
    pthread_t t;
    ::pthread_create(
        &t, nullptr,
        [](void* fd) -> void* {
          char c;
          while (::read(*static_cast<int*>(fd), &c, 1) < 0 && errno == EINTR) {
          }
          ::_exit(0);
        },
        &release[0]);
    // Only this thread ends (no unwinding through the test framework).
    ::syscall(SYS_exit, 0);
  }
  ::close(release[0]);
  const auto stamp = process_stamp(owner);
  REQUIRE(stamp);
  write_state(dir, stamp_of(owner, *stamp));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  // Wait until the leader is a zombie (its pthread_exit done).
  bool leader_zombie = false;
  for (int i = 0; i < 500 && !leader_zombie; ++i) {
    auto now = process_stamp(owner);
    leader_zombie = now && now->state == 'Z';
    if (!leader_zombie) ::usleep(10'000);
  }
  REQUIRE(leader_zombie);
  CHECK(is_live(dir));
  CHECK(clean_stale(base.dir) == 0);
  // The last thread ends: the process is gone (a zombie until reaped).
  ::close(release[1]);
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(owner), &info, WEXITED | WNOWAIT) == 0);
  CHECK_FALSE(is_live(dir));
  ::waitpid(owner, nullptr, 0);
  ::close(fd);
}

TEST_CASE("a reused pid does not pass for the sbx that owned a state dir") {
  PrivateBase base;
  const std::string dir = base.dir + "/unit-reused";
  std::filesystem::create_directory(dir);
  const auto self = process_stamp(::getpid());
  REQUIRE(self);
  CHECK(self->state == 'R');
  const Stamp st = stamp_of(::getpid(), *self);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  // This process's pid and start time: this live process owns it.
  write_state(dir, st);
  CHECK(is_live(dir));
  // The same pid with another start time: not this process, so gone.
  write_state(dir, {st.pid, st.pid_ns, st.time_ns, st.start + 1});
  CHECK_FALSE(is_live(dir));
  ::close(fd);
  CHECK(clean_stale(base.dir) == 1);
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("a request to a sandbox that stopped accepting gives up at its deadline") {
  // A supervisor stuck (or an orphan holding the listener): the backlog fills
  // and a blocking connect would wait forever.
  PrivateRuntimeDir rt;
  const std::string base = state_base(true);
  const std::string name = "unit-stuck-" + std::to_string(::getpid());
  const std::string dir = base + "/" + name;
  int lock = locked_new_dir(base, dir);
  const std::string path = socket_path(dir);
  int listener = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  // Fill the backlog (never accepted).
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int c = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ::close(c);
      break;
    }
    fillers.push_back(c);
  }
  REQUIRE_FALSE(fillers.empty());
  try {
    request(name, nlohmann::json{{"op", "status"}}, std::chrono::milliseconds(300));
    FAIL("the request to a sandbox that does not accept returned");
  } catch (const sbx::Error& e) {
    CHECK(std::string(e.what()).find("did not accept a connection within 300 ms") !=
          std::string::npos);
  }
  for (int c : fillers) ::close(c);
  ::close(listener);
  ::close(lock);
  clean_stale(base);
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
