// SandboxCgroup against the running kernel. As root (this host: cgroup v1
// controllers; the VM: cgroup v2) the limits must be enforced on a forked
// child; unprivileged without a delegated subtree, create() must warn (or
// throw when limits are required) instead of silently running unlimited.
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sbx/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cgroups/cgroup_files.hpp"
#include "cgroups/cgroups.hpp"

using namespace sbx;
using namespace sbx::cgroups;
namespace fs = std::filesystem;

namespace {

struct Warnings {
  std::vector<std::string> list;
  WarningSink sink() {
    return [this](const std::string& w) { list.push_back(w); };
  }
};

// Forks a child that moves itself into the group the way sbx's worker does
// (writes "0" to join_fds(), opened by this process), as nobody when this
// test runs as root (the kernel checks the opener's credentials, not the
// writer's), then runs body and exits with its result. Returns the wait status.
int run_in_group(SandboxCgroup& cg, const std::function<int()>& body,
                 std::string* proc_cgroup = nullptr) {
  int joined[2];
  int go[2];
  REQUIRE(::pipe(joined) == 0);
  REQUIRE(::pipe(go) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(joined[0]);
    ::close(go[1]);
    if (::geteuid() == 0 &&
        (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0))
      ::_exit(97);
    for (int fd : cg.join_fds())
      if (::write(fd, "0", 1) != 1) ::_exit(98);
    char c = 'j';
    if (::write(joined[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) ::_exit(99);
    ::_exit(body());
  }
  ::close(joined[1]);
  ::close(go[0]);
  char c;
  const bool in_group = ::read(joined[0], &c, 1) == 1;
  ::close(joined[0]);
  if (in_group && proc_cgroup)
    *proc_cgroup = read_text_file("/proc/" + std::to_string(pid) + "/cgroup");
  REQUIRE(::write(go[1], "x", 1) == 1);
  ::close(go[1]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1)
                      << " (97: no setresuid, 98: could not join, 99: pipe)");
  REQUIRE(in_group);
  return status;
}

// The sandbox group directories of a child, from its /proc/<pid>/cgroup.
std::vector<std::string> group_dirs(const std::string& proc_cgroup) {
  std::vector<std::string> out;
  for (const auto& e : parse_proc_cgroup(proc_cgroup)) {
    if (e.path.find("/sbx/") == std::string::npos) continue;
    if (e.hierarchy == 0) {
      for (auto base : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"})
        if (fs::exists(std::string(base) + "/cgroup.controllers") &&
            fs::exists(std::string(base) + e.path))
          out.push_back(std::string(base) + e.path);
    } else {
      for (const auto& c : e.controllers)
        if (fs::exists("/sys/fs/cgroup/" + c + e.path))
          out.push_back("/sys/fs/cgroup/" + c + e.path);
    }
  }
  return out;
}

std::string file_in(const std::vector<std::string>& dirs, const std::string& name) {
  for (const auto& d : dirs)
    if (fs::exists(d + "/" + name)) return read_text_file(d + "/" + name);
  return {};
}

// Touches 256 MiB: under the tests' 64 MiB limit, OOM-killed. Returns only
// if the limit did not hold (0), or 3 without the memory to map.
int touch_256_mib() {
  const std::size_t size = 256ull << 20;
  auto* p = static_cast<char*>(
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 3;
  for (std::size_t i = 0; i < size; i += 4096) p[i] = 1;
  return 0;
}

double now_s() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool expect_cgroup() {
  const char* v = ::getenv("SBX_EXPECT_CGROUP");
  return v && std::string(v) == "1";
}

bool host_has_v1_memory() {
  return fs::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
}

}  // namespace

TEST_CASE("no limits: no group, no warning", "[cgroups][live]") {
  Warnings w;
  auto cg = SandboxCgroup::create(LimitsPolicy{}, "nolimits", w.sink());
  CHECK_FALSE(cg.active());
  CHECK(cg.join_fds().empty());
  CHECK(w.list.empty());
}

TEST_CASE("limits are enforced on a child, or refused with reason and fix", "[cgroups][live]") {
  LimitsPolicy limits;
  limits.memory_bytes = 64ull << 20;
  limits.pids = 16;
  limits.cpus = 0.5;
  Warnings w;
  auto cg = SandboxCgroup::create(limits, "unit-live", w.sink());
  // As root on this host (v1), and wherever the VM harness sets SBX_EXPECT_CGROUP
  // (root on v2, or a user in a delegated subtree), the limits must be enforced.
  if ((::geteuid() == 0 && host_has_v1_memory()) || expect_cgroup()) {
    INFO("warnings: " << (w.list.empty() ? "none" : w.list[0]));
    REQUIRE(cg.active());
  }

  if (!cg.active()) {
    // Unprivileged without delegation: exactly one warning naming reason and fix.
    REQUIRE(w.list.size() == 1);
    CHECK(w.list[0].find("NOT enforced") != std::string::npos);
    CHECK(w.list[0].find("Fix:") != std::string::npos);
    CHECK(w.list[0].find("Delegate=yes") != std::string::npos);
    limits.required = true;
    try {
      (void)SandboxCgroup::create(limits, "unit-live", {});
      FAIL("create() with required limits must throw when they cannot be enforced");
    } catch (const sbx::Error& e) {
      CHECK(std::string(e.what()).find("cannot enforce resource limits") != std::string::npos);
      CHECK_FALSE(e.fix().empty());
    }
    return;
  }
  CHECK(w.list.empty());

  std::string proc_cgroup;
  int st = run_in_group(
      cg, [] { return 7; }, &proc_cgroup);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 7);
  auto dirs = group_dirs(proc_cgroup);
  INFO("child cgroups: " << proc_cgroup);
  REQUIRE_FALSE(dirs.empty());

  SECTION("limit files hold the requested values") {
    if (fs::exists(dirs[0] + "/cgroup.controllers")) {  // v2
      CHECK(file_in(dirs, "memory.max") == "67108864\n");
      CHECK(file_in(dirs, "memory.swap.max") == "0\n");
      CHECK(file_in(dirs, "memory.oom.group") == "1\n");
      CHECK(file_in(dirs, "pids.max") == "16\n");
      CHECK(file_in(dirs, "cpu.max") == "50000 100000\n");
    } else {  // v1
      CHECK(file_in(dirs, "memory.limit_in_bytes") == "67108864\n");
      CHECK(file_in(dirs, "pids.max") == "16\n");
      CHECK(file_in(dirs, "cpu.cfs_quota_us") == "50000\n");
      CHECK(file_in(dirs, "cpu.cfs_period_us") == "100000\n");
    }
  }

  SECTION("a fork bomb stops at pids.max and is reported") {
    int st2 = run_in_group(cg, [] {
      ::setpgid(0, 0);  // kill(0, ...) below must hit only this bomb
      int forked = 0;
      for (int i = 0; i < 64; ++i) {
        pid_t p = ::fork();
        if (p == 0) {
          ::pause();
          ::_exit(0);
        }
        if (p > 0) ++forked;
      }
      ::kill(0, SIGKILL);  // own process group: the children (and us)
      return forked;
    });
    // Killed by its own SIGKILL after forking; the count cannot exceed 15 anyway.
    CHECK(WIFSIGNALED(st2));
    std::vector<Event> events;
    cg.poll_events([&](const Event& e) { events.push_back(e); });
    REQUIRE_FALSE(events.empty());
    CHECK(events[0].type == "limit");
    CHECK(events[0].data["kind"] == "pids_max");
    CHECK(events[0].data["limit"] == 16);
    CHECK(cg.stats().peak_pids <= 16);
    CHECK(cg.stats().peak_pids >= 2);
  }

  SECTION("a memory hog is OOM-killed and the OOM event is reported") {
    int st2 = run_in_group(cg, touch_256_mib);
    REQUIRE(WIFSIGNALED(st2));
    CHECK(WTERMSIG(st2) == SIGKILL);
    std::vector<Event> events;
    cg.poll_events([&](const Event& e) { events.push_back(e); });
    REQUIRE(events.size() == 1);
    CHECK(events[0].data["kind"] == "oom_kill");
    CHECK(events[0].data["limit_bytes"] == 64ull << 20);
    auto s = cg.stats();
    CHECK(s.oom_kills >= 1);
    CHECK(s.peak_memory_bytes >= 32ull << 20);
    CHECK(s.peak_memory_bytes <= (64ull << 20) + (1ull << 20));
    // Reported once: a second poll has nothing new.
    events.clear();
    cg.poll_events([&](const Event& e) { events.push_back(e); });
    CHECK(events.empty());
  }

  SECTION("retire: last events, final stats kept, the group removed beside") {
    int st2 = run_in_group(cg, touch_256_mib);
    REQUIRE(WIFSIGNALED(st2));
    std::vector<Event> events;
    cg.retire([&](const Event& e) { events.push_back(e); });
    REQUIRE(events.size() == 1);  // the OOM kill, reported by retire itself
    CHECK(events[0].data["kind"] == "oom_kill");
    const auto kept = cg.stats();
    CHECK(kept.oom_kills >= 1);
    CHECK(kept.peak_memory_bytes >= 32ull << 20);
    // Nothing more: no second report, no stats from removed files, no kill.
    cg.retire([&](const Event& e) { events.push_back(e); });
    cg.poll_events([&](const Event& e) { events.push_back(e); });
    cg.kill_all();
    CHECK(events.size() == 1);
    CHECK(cg.stats().peak_memory_bytes == kept.peak_memory_bytes);
    // Removed by its thread; the destructor waits for it.
    const auto any_left = [&] {
      return std::any_of(dirs.begin(), dirs.end(), [](const auto& d) { return fs::exists(d); });
    };
    for (int i = 0; i < 500 && any_left(); ++i) ::usleep(2000);
    for (const auto& d : dirs) CHECK_FALSE(fs::exists(d));
    cg = SandboxCgroup::create(LimitsPolicy{}, "none", {});
    for (const auto& d : dirs) CHECK_FALSE(fs::exists(d));
  }

  SECTION("cpus 0.5: a busy loop gets at most ~half a CPU") {
    auto before = cg.stats().cpu_usage_us;
    double t0 = now_s();
    run_in_group(cg, [] {
      double start = now_s();
      volatile unsigned long x = 0;
      while (now_s() - start < 1.5) x = x + 1;
      return 0;
    });
    double wall = now_s() - t0;
    auto used = cg.stats().cpu_usage_us - before;
    INFO("cpu used " << used << " us over " << wall << " s");
    CHECK(used > 200'000);  // usage accounting works at all
    CHECK(static_cast<double>(used) <= 0.6 * wall * 1e6);
  }

  SECTION("destruction kills what is left and removes the group") {
    pid_t straggler = 0;
    {
      // Joins the way sbx's worker does, then stays.
      int joined[2];
      REQUIRE(::pipe(joined) == 0);
      straggler = ::fork();
      if (straggler == 0) {
        ::close(joined[0]);
        for (int fd : cg.join_fds())
          if (::write(fd, "0", 1) != 1) ::_exit(98);
        (void)!::write(joined[1], "j", 1);
        for (;;) ::pause();
      }
      ::close(joined[1]);
      char c;
      REQUIRE(::read(joined[0], &c, 1) == 1);
      ::close(joined[0]);
    }
    cg = SandboxCgroup::create(LimitsPolicy{}, "none", {});  // destroys the group
    int status = 0;
    REQUIRE(::waitpid(straggler, &status, 0) == straggler);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    for (const auto& d : dirs) CHECK_FALSE(fs::exists(d));
  }
}

TEST_CASE("stale groups of dead supervisors are removed", "[cgroups][live]") {
  LimitsPolicy limits;
  limits.pids = 8;
  auto cg = SandboxCgroup::create(limits, "stale-probe", {});
  if (!cg.active()) {
    CHECK(::geteuid() != 0);
    CHECK_FALSE(expect_cgroup());  // as root this host always has the v1 pids hierarchy
    return;
  }
  std::string proc_cgroup;
  run_in_group(
      cg, [] { return 0; }, &proc_cgroup);
  auto dirs = group_dirs(proc_cgroup);
  REQUIRE_FALSE(dirs.empty());
  std::string parent = fs::path(dirs[0]).parent_path();
  // A group whose owner cannot be alive (pid 0x7ffffff0 with a made-up start
  // time) and one owned by a live process (this one).
  std::string dead = parent + "/old@" + std::to_string(0x7ffffff0) + ".12345";
  REQUIRE(fs::create_directory(dead));
  auto me = current_owner();
  std::string alive = parent + "/" + group_name("alive", me);
  REQUIRE(fs::create_directory(alive));
  remove_stale_groups({});
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(alive));
  fs::remove(alive);
  cg = SandboxCgroup::create(LimitsPolicy{}, "none", {});
  for (const auto& d : dirs) CHECK_FALSE(fs::exists(d));
}

// Out of fds while looking for the cgroup file systems: an error that says
// so (the caller adds the open-file fix), never "no cgroup is mounted".
TEST_CASE("out of fds: create() says so instead of 'no cgroup mounted'", "[cgroups][live]") {
  LimitsPolicy limits;
  limits.pids = 64;
  limits.required = false;  // not even a warning may stand in for the error
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Only the soft limit, put back before the error is looked at: the
    // sanitizers' own checks (UBSan's vptr check makes a pipe) need fds.
    rlimit was{};
    if (::getrlimit(RLIMIT_NOFILE, &was) != 0) ::_exit(97);
    const rlimit none{3, was.rlim_max};  // 0-2 only: nothing more can be opened
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    if (::setrlimit(RLIMIT_NOFILE, &none) != 0) ::_exit(97);
    std::string what;
    try {
      auto cg = SandboxCgroup::create(limits, "fds", [](const std::string&) { ::_exit(96); });
      ::_exit(cg.active() ? 95 : 94);
    } catch (const Error& e) {
      if (::setrlimit(RLIMIT_NOFILE, &was) != 0) ::_exit(97);
      what = e.what();
    }
    ::_exit(what.find(std::strerror(EMFILE)) != std::string::npos ? 0 : 93);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// The VM's delegated user: the group one level above this process's
// supervisor leaf, where it may make groups of its own ("" elsewhere).
// Creating a group first puts this process in <run>/sbx-supervisor, and
// <run> then passes the controllers down.
std::string delegated_run_group(const LimitsPolicy& limits) {
  if (::geteuid() == 0 || !expect_cgroup()) return {};
  auto first = SandboxCgroup::create(limits, "deleg-first", {});
  REQUIRE(first.active());
  std::string run;
  for (const auto& e : parse_proc_cgroup(read_text_file("/proc/self/cgroup")))
    if (e.hierarchy == 0) run = fs::path("/sys/fs/cgroup" + e.path).parent_path();
  REQUIRE(fs::exists(run + "/cgroup.subtree_control"));
  return run;
}

// Runs body in a child that first moves itself into the new group `fresh`
// (as sbx finds itself in a delegated scope) and exits with body's result;
// removes the group afterwards. Returns the exit code (97: could not join).
int in_fresh_group(const std::string& fresh, const std::function<int()>& body) {
  REQUIRE(fs::create_directory(fresh));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      write_text_file(fresh + "/cgroup.procs", std::to_string(::getpid()));
    } catch (const std::exception&) {
      ::_exit(97);
    }
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  ::rmdir((fresh + "/sbx-supervisor").c_str());
  ::rmdir((fresh + "/sbx").c_str());
  CHECK(::rmdir(fresh.c_str()) == 0);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// The supervisor moves itself into a leaf of a delegated group before that
// group may pass controllers down. The kernel moves only live threads: one
// that is exiting at that moment (the launch's side threads end whenever
// their work is done) keeps the group populated for a moment more. That is
// not "another process"; create() must not give up on it (CI saw this as
// "limits NOT enforced ... also holds other processes").
TEST_CASE("delegated v2: a thread exiting during the move is not another process",
          "[cgroups][live]") {
  LimitsPolicy limits;
  limits.memory_bytes = 64ull << 20;
  limits.pids = 64;
  const std::string run = delegated_run_group(limits);
  if (run.empty()) return;
  // One CPU in the VM: the exiting thread must be preempted inside do_exit
  // for the move to leave it behind. Four threads that start and end without
  // pause, and a varying head start, hit that within a few rounds (the old
  // code failed in round 2).
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round << " (90: limits not enforced)");
    CHECK(in_fresh_group(run + "/exiting-" + std::to_string(round), [&] {
            std::atomic<bool> stop{false};
            std::vector<std::thread> churn;
            for (int k = 0; k < 4; ++k)
              churn.emplace_back([&stop] {
                while (!stop) std::thread([] {}).join();
              });
            ::usleep(static_cast<useconds_t>(round % 7) * 1000);
            bool active = false;
            {
              auto cg = SandboxCgroup::create(limits, "exiting", [](const std::string& w) {
                std::fprintf(stderr, "warning: %s\n", w.c_str());
              });
              active = cg.active();
            }
            stop = true;
            for (auto& t : churn) t.join();
            return active ? 0 : 90;
          }) == 0);
  }
}

// Another process in the delegated group does block it: the warning names
// it, so the user knows what to move out (e.g. the shell that started sbx).
TEST_CASE("delegated v2: another process in the group is named in the warning", "[cgroups][live]") {
  LimitsPolicy limits;
  limits.pids = 64;
  const std::string run = delegated_run_group(limits);
  if (run.empty()) return;
  CHECK(in_fresh_group(run + "/shared", [&] {
          int named_fds[2];
          if (::pipe(named_fds) != 0) return 96;
          pid_t holder = ::fork();
          if (holder < 0) return 96;
          if (holder == 0) {
            ::prctl(PR_SET_NAME, "sbx-holder");
            ::close(named_fds[1]);  // named now
            ::pause();
            ::_exit(0);
          }
          ::close(named_fds[1]);
          char c;
          if (::read(named_fds[0], &c, 1) != 0) return 96;
          std::vector<std::string> w;
          bool active = false;
          {
            auto cg = SandboxCgroup::create(limits, "shared",
                                            [&w](const std::string& s) { w.push_back(s); });
            active = cg.active();
          }
          ::kill(holder, SIGKILL);
          ::waitpid(holder, nullptr, 0);
          const std::string named =
              "also holds other processes (pid " + std::to_string(holder) + " (sbx-holder))";
          for (const auto& s : w) std::fprintf(stderr, "warning: %s\n", s.c_str());
          if (active) return 91;
          if (w.size() != 1 || w[0].find(named) == std::string::npos) return 92;
          return 0;
        }) == 0);
}
