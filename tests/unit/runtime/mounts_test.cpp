// Filesystem plan: the plan builder (pure) and the applied plan in a real
// user+mount+pid namespace built like the launcher does (U1 maps only the
// sandbox uid; the "command" runs in a nested user namespace with no
// capabilities). Runs as root (idmapped work dir) and unprivileged.
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <linux/securebits.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <sbx/error.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "runtime/mount_plan.hpp"
#include "runtime/mounts_internal.hpp"
#include "runtime/unique_fd.hpp"

using namespace sbx;
using namespace sbx::runtime;
namespace fs = std::filesystem;

namespace {

Identity test_identity() {
  Identity id;
  id.host_uid = ::getuid();
  id.host_gid = ::getgid();
  id.started_as_root = ::geteuid() == 0;
  id.uid = id.started_as_root ? 65534 : ::getuid();
  id.gid = id.started_as_root ? 65534 : ::getgid();
  id.user_name = "tester";
  id.home = "/nonexistent";
  return id;
}

struct Scratch {
  fs::path dir;
  explicit Scratch(const char* base = "/var/tmp") {
    std::string tmpl = std::string(base) + "/sbx-mounts.XXXXXX";
    dir = ::mkdtemp(tmpl.data());
    ::chmod(dir.c_str(), 0755);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

bool write_all(int fd, const std::string& s) {
  return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

struct Result {
  int status = -1;
  std::string out;
};

// Builds the sandbox the way runtime/launch.cpp does and runs `script` with
// /bin/sh as the command.
Result run_sandboxed(const Policy& policy, const std::string& script, bool landlock = false,
                     const Policy* landlock_policy = nullptr,
                     const std::function<void()>& after_prepare = {}) {
  Identity id = test_identity();
  MountPlan plan = prepare_mount_plan(policy, id);
  if (after_prepare) after_prepare();
  LandlockPlan ll = prepare_landlock(landlock_policy != nullptr ? *landlock_policy : policy);
  int out[2], sync[2], go[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(sync, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(out[0]);
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0) {
      (void)!::write(out[1], "unshare failed\n", 15);
      ::_exit(125);
    }
    char c = 'r';
    (void)!::write(sync[1], &c, 1);
    (void)!::read(go[0], &c, 1);
    if (id.started_as_root) {
      // As the launcher: keep U1 capabilities while becoming the sandbox uid.
      ::setgroups(0, nullptr);
      ::prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP);
      if (::setresgid(id.gid, id.gid, id.gid) != 0 || ::setresuid(id.uid, id.uid, id.uid) != 0)
        ::_exit(124);
    }
    pid_t init = ::fork();
    if (init == 0) {
      ChildError err;
      if (!apply_mount_plan(plan, err)) {
        char msg[400];
        int n = std::snprintf(msg, sizeof msg, "apply_mount_plan: %s: %s (%s)\n", err.step,
                              std::strerror(err.error_number), err.detail);
        (void)!::write(out[1], msg, n);
        ::_exit(125);
      }
      pid_t worker = ::fork();
      if (worker == 0) {
        // The command: nested user namespace, no capabilities after execve.
        ::unshare(CLONE_NEWUSER);
        int fd = ::open("/proc/self/setgroups", O_WRONLY);
        (void)!::write(fd, "deny", 4);
        ::close(fd);
        char map[64];
        int n = std::snprintf(map, sizeof map, "%u %u 1\n", id.uid, id.uid);
        fd = ::open("/proc/self/uid_map", O_WRONLY);
        (void)!::write(fd, map, n);
        ::close(fd);
        n = std::snprintf(map, sizeof map, "%u %u 1\n", id.gid, id.gid);
        fd = ::open("/proc/self/gid_map", O_WRONLY);
        (void)!::write(fd, map, n);
        ::close(fd);
        ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (landlock && !apply_landlock(ll, err)) ::_exit(123);
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        ::execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
        ::_exit(127);
      }
      int st = 0;
      ::waitpid(worker, &st, 0);
      ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    int st = 0;
    ::waitpid(init, &st, 0);
    ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  }
  ::close(out[1]);
  ::close(sync[1]);
  ::close(go[0]);
  char c = 0;
  REQUIRE(::read(sync[0], &c, 1) == 1);
  if (!id.started_as_root) {
    int fd = ::open(fmt::format("/proc/{}/setgroups", child).c_str(), O_WRONLY);
    REQUIRE(write_all(fd, "deny"));
    ::close(fd);
  }
  for (auto [file, a, b] :
       {std::tuple{"gid_map", id.gid, id.gid}, std::tuple{"uid_map", id.uid, id.uid}}) {
    int fd = ::open(fmt::format("/proc/{}/{}", child, file).c_str(), O_WRONLY);
    REQUIRE(write_all(fd, fmt::format("{} {} 1\n", a, b)));
    ::close(fd);
  }
  REQUIRE(::write(go[1], "g", 1) == 1);
  Result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  int st = 0;
  ::waitpid(child, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  ::close(out[0]);
  ::close(sync[0]);
  ::close(go[1]);
  return r;
}

Policy policy_for(const fs::path& work) {
  Policy p;
  p.filesystem.workdir = work;
  return p;
}

}  // namespace

TEST_CASE("normalize_path and path_is_within", "[mounts]") {
  CHECK(normalize_path("//a/./b/") == "/a/b");
  CHECK(normalize_path("/a/../../b") == "/b");
  CHECK(normalize_path("/") == "/");
  CHECK(path_is_within("/a/b", "/a"));
  CHECK(path_is_within("/a", "/a"));
  CHECK_FALSE(path_is_within("/ab", "/a"));
  CHECK(path_is_within("/x", "/"));
}

TEST_CASE("plan orders parents before children and masks after binds", "[mounts]") {
  std::vector<MountOp> ops(4);
  ops[0].kind = MountKind::protect;
  ops[0].target = "/w/.git/hooks";
  ops[1].kind = MountKind::pin;
  ops[1].target = "/w/.git";
  ops[2].kind = MountKind::mask_dir;
  ops[2].target = "/w";
  ops[3].kind = MountKind::bind_rw;
  ops[3].target = "/w";
  sort_mount_ops(ops);
  CHECK(ops[0].kind == MountKind::bind_rw);
  CHECK(ops[1].kind == MountKind::mask_dir);
  CHECK(ops[2].target == "/w/.git");
  CHECK(ops[3].target == "/w/.git/hooks");
}

TEST_CASE("plan for a work dir with deny_write/deny_read entries", "[mounts]") {
  Scratch s;
  fs::create_directories(s.dir / "work/.git/hooks");
  fs::create_directories(s.dir / "secret");
  Policy p = policy_for(s.dir / "work");
  p.filesystem.deny_write = {(s.dir / "work/.git/hooks").string(),
                             (s.dir / "work/.bashrc").string(),
                             (s.dir / "work/.vscode/x").string()};
  p.filesystem.deny_read = {(s.dir / "secret").string(), (s.dir / "missing").string()};
  auto find = [](const MountPlan& plan, const std::string& t) -> const MountOp* {
    for (const auto& op : plan.data().ops)
      if (op.target == t) return &op;
    return nullptr;
  };
  {
    MountPlan plan = prepare_mount_plan(p, test_identity());
    const auto* wd = find(plan, (s.dir / "work").string());
    REQUIRE(wd != nullptr);
    CHECK(wd->kind == MountKind::bind_rw);
    CHECK_FALSE(wd->create_target);  // exists in the host tree
    const auto* pin = find(plan, (s.dir / "work/.git").string());
    REQUIRE(pin != nullptr);
    CHECK(pin->kind == MountKind::pin);
    CHECK(find(plan, (s.dir / "work/.git/hooks").string())->kind == MountKind::protect);
    // Missing: the first missing component becomes a placeholder on the host.
    CHECK(find(plan, (s.dir / "work/.bashrc").string())->kind == MountKind::protect);
    CHECK(find(plan, (s.dir / "work/.vscode").string())->target_is_dir);
    CHECK(fs::is_regular_file(s.dir / "work/.bashrc"));
    CHECK(fs::is_directory(s.dir / "work/.vscode"));
    CHECK(find(plan, (s.dir / "secret").string())->kind == MountKind::mask_dir);
    CHECK(find(plan, (s.dir / "missing").string()) == nullptr);
    CHECK(find(plan, "/proc/kcore")->kind == MountKind::mask_file);
    // Order: the work dir comes before what protects paths inside it.
    std::size_t iw = 0, ih = 0;
    for (std::size_t i = 0; i < plan.data().ops.size(); ++i) {
      if (plan.data().ops[i].target == (s.dir / "work").string()) iw = i;
      if (plan.data().ops[i].target == (s.dir / "work/.git/hooks").string()) ih = i;
    }
    CHECK(iw < ih);
  }
  // Placeholders are removed when the plan goes away.
  CHECK_FALSE(fs::exists(s.dir / "work/.bashrc"));
  CHECK_FALSE(fs::exists(s.dir / "work/.vscode"));
  CHECK(fs::exists(s.dir / "work/.git/hooks"));
}

// The launch plans with Placeholders::later and makes them beside clone3.
TEST_CASE("placeholders made later: decided by the plan, made once, removed with it", "[mounts]") {
  Scratch s;
  const fs::path w = s.dir / "work";
  fs::create_directories(w);
  Policy p = policy_for(w);
  p.filesystem.deny_write = {(w / ".bashrc").string(), (w / ".claude/commands").string(),
                             (w / ".claude/settings.json").string()};
  auto ops_on = [](const MountPlan& plan, const fs::path& t) {
    std::size_t n = 0;
    for (const auto& op : plan.data().ops) n += op.target == t.string() ? 1 : 0;
    return n;
  };
  {
    MountPlan plan = prepare_mount_plan(p, test_identity(), Placeholders::later);
    CHECK_FALSE(fs::exists(w / ".bashrc"));  // decided, not made
    CHECK_FALSE(fs::exists(w / ".claude"));
    CHECK(ops_on(plan, w / ".bashrc") == 1);
    // .claude/settings.json lies below the pending .claude: no second
    // placeholder, no op of its own (as when .claude had been made at once).
    CHECK(ops_on(plan, w / ".claude") == 1);
    CHECK(ops_on(plan, w / ".claude/settings.json") == 0);
    create_placeholders(plan);
    CHECK(fs::is_regular_file(w / ".bashrc"));
    CHECK(fs::is_directory(w / ".claude"));
    CHECK(fs::is_empty(w / ".claude"));
    CHECK_NOTHROW(create_placeholders(plan));  // made once: nothing left to make
  }
  CHECK_FALSE(fs::exists(w / ".bashrc"));
  CHECK_FALSE(fs::exists(w / ".claude"));
}

// A directory nobody may add to while it lives: immutable for root (whose
// permissions pass a mode of 555), read-only for anyone else. Root without
// CAP_LINUX_IMMUTABLE (a container) cannot lock it: locked() is false.
class LockedDir {
 public:
  explicit LockedDir(const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir_);
    if (::geteuid() == 0) {
      fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int flags = 0;
      REQUIRE(fd_ >= 0);
      REQUIRE(::ioctl(fd_, FS_IOC_GETFLAGS, &flags) == 0);
      flags |= FS_IMMUTABLE_FL;
      locked_ = ::ioctl(fd_, FS_IOC_SETFLAGS, &flags) == 0;
      if (!locked_) REQUIRE(errno == EPERM);
    } else {
      fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
    }
  }
  bool locked() const { return locked_; }
  ~LockedDir() {
    if (fd_ >= 0) {
      int flags = 0;
      if (::ioctl(fd_, FS_IOC_GETFLAGS, &flags) == 0) {
        flags &= ~FS_IMMUTABLE_FL;
        (void)::ioctl(fd_, FS_IOC_SETFLAGS, &flags);
      }
      ::close(fd_);
    } else {
      std::error_code ec;
      fs::permissions(dir_, fs::perms::owner_all, ec);
    }
  }
  LockedDir(const LockedDir&) = delete;
  LockedDir& operator=(const LockedDir&) = delete;

 private:
  fs::path dir_;
  int fd_ = -1;
  bool locked_ = true;
};

TEST_CASE("a placeholder that cannot be made stops the start; those made before go", "[mounts]") {
  Scratch s;
  const fs::path w = s.dir / "work";
  fs::create_directories(w);
  const LockedDir locked(w / "locked");
  if (!locked.locked()) {
    WARN(
        "not tried as root: FS_IMMUTABLE_FL refused (no CAP_LINUX_IMMUTABLE); a user's run tries "
        "it");
    return;
  }
  Policy p = policy_for(w);
  p.filesystem.deny_write = {(w / ".bashrc").string(), (w / "locked" / ".envrc").string(),
                             (w / ".envrc").string()};
  {
    MountPlan plan = prepare_mount_plan(p, test_identity(), Placeholders::later);
    CHECK_THROWS_WITH(
        create_placeholders(plan),
        Catch::Contains("cannot create the placeholder " + (w / "locked" / ".envrc").string()));
    CHECK(fs::exists(w / ".bashrc"));  // made before the failure, held until the plan goes
  }
  CHECK(fs::is_empty(w / "locked"));  // no temporary name either
  CHECK_FALSE(fs::exists(w / ".bashrc"));
  CHECK_FALSE(fs::exists(w / ".envrc"));
}

TEST_CASE("a placeholder's temporary name fits the file system, whole characters only",
          "[mounts]") {
  Scratch s;
  const UniqueFd dir(::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir);
  const std::string suffix = fmt::format(".sbx-new-{}-7", ::getpid());
  CHECK(placeholder_temporary_name(dir.get(), ".bashrc", 7) == ".bashrc" + suffix);
  const std::string ascii(NAME_MAX, 'x');
  const std::string cut = placeholder_temporary_name(dir.get(), ascii, 7);
  CHECK(cut.size() == NAME_MAX);
  CHECK(cut == ascii.substr(0, NAME_MAX - suffix.size()) + suffix);
  // "é" is two bytes (0xC3 0xA9): the cut keeps whole ones.
  std::string accents;
  while (accents.size() + 2 <= NAME_MAX) accents += "\xC3\xA9";
  const std::string kept = placeholder_temporary_name(dir.get(), accents, 7);
  REQUIRE(kept.size() <= NAME_MAX);
  REQUIRE(kept.ends_with(suffix));
  const std::size_t prefix = kept.size() - suffix.size();
  CHECK(prefix % 2 == 0);
  CHECK(kept.compare(0, prefix, accents, 0, prefix) == 0);
  CHECK(prefix + 2 > NAME_MAX - suffix.size());  // no more cut than a character
}

TEST_CASE("a name as long as NAME_MAX gets its placeholder", "[mounts]") {
  Scratch s;
  const fs::path w = s.dir / "work";
  fs::create_directories(w);
  Policy p = policy_for(w);
  // Its temporary name, cut short, fits too.
  const std::string long_name(NAME_MAX, 'x');
  p.filesystem.deny_write = {(w / long_name).string()};
  {
    MountPlan plan = prepare_mount_plan(p, test_identity(), Placeholders::later);
    REQUIRE_NOTHROW(create_placeholders(plan));
    CHECK(fs::is_regular_file(w / long_name));
    CHECK(std::distance(fs::directory_iterator(w), fs::directory_iterator()) == 1);
  }
  CHECK(fs::is_empty(w));
}

// Made after the planning, beside clone3: a sandbox already running in the
// same work dir may swap a directory on the way for a symlink meanwhile.
// The placeholder must not follow it to a directory outside the work dir.
TEST_CASE("a placeholder is not made through a symlink swapped in after the planning", "[mounts]") {
  Scratch s;
  const fs::path w = s.dir / "work";
  const fs::path v = s.dir / "victim";
  fs::create_directories(w / ".git");
  fs::create_directories(v);
  Policy p = policy_for(w);
  p.filesystem.deny_write = {(w / ".git/hooks").string()};
  {
    MountPlan plan = prepare_mount_plan(p, test_identity(), Placeholders::later);
    fs::rename(w / ".git", w / ".git.real");
    fs::create_directory_symlink(v, w / ".git");
    CHECK_THROWS_WITH(create_placeholders(plan), Catch::Contains("replaced by a symlink"));
  }
  CHECK(fs::is_empty(v));
  CHECK(fs::is_empty(w / ".git.real"));
}

// A link whose target goes into a missing directory and out again
// (`tools -> .claude/../payload`): inside, the placeholder for `.claude`
// exists, so `tools/x` is `payload/x`, which must be protected too, in
// whichever order the entries come (the placeholder made, or only decided).
TEST_CASE("a link through a placeholder directory and out again (..) is protected", "[mounts]") {
  for (bool tools_first : {false, true}) {
    for (Placeholders when : {Placeholders::now, Placeholders::later}) {
      INFO("tools/x first: " << tools_first << ", later: " << (when == Placeholders::later));
      Scratch s;
      const fs::path w = s.dir / "work";
      fs::create_directories(w);
      fs::create_directory_symlink(".claude/../payload", w / "tools");
      Policy p = policy_for(w);
      p.filesystem.deny_write = {(w / ".claude/commands").string(), (w / "tools/x").string()};
      if (tools_first) std::swap(p.filesystem.deny_write[0], p.filesystem.deny_write[1]);
      MountPlan plan = prepare_mount_plan(p, test_identity(), when);
      std::size_t claude = 0, payload = 0;
      for (const auto& op : plan.data().ops) {
        if (op.target == (w / ".claude").string() && op.kind == MountKind::protect) ++claude;
        if (op.target == (w / "payload").string() && op.kind == MountKind::protect) ++payload;
      }
      CHECK(claude == 1);
      CHECK(payload == 1);
    }
  }
}

// Another run's placeholder (marked, empty) where this run finds it: held
// (a shared flock for the run), so that run's end cannot remove it and
// detach this run's mount on it -- also a file where this plan has a
// directory on its way, or wanted one.
TEST_CASE("another run's placeholder of either type is held", "[mounts]") {
  // The other run: its placeholder, marked and under its shared lock.
  const auto other_run = [](const fs::path& f) {
    std::ofstream(f).flush();
    REQUIRE(::setxattr(f.c_str(), "user.sbx.placeholder", "1", 1, 0) == 0);
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_SH) == 0);
    return fd;
  };
  const auto held = [](const MountPlan& plan, const fs::path& f) {
    for (const auto& h : plan.data().held)
      if (h.path == f.string()) return !h.is_dir && h.fd >= 0;
    return false;
  };
  Scratch s;
  const fs::path w = s.dir / "work";
  fs::create_directories(w);
  Policy p = policy_for(w);
  p.filesystem.deny_write = {(w / ".claude/commands").string()};
  {
    // A file on the way (the other run protected `.claude` itself).
    const int other = other_run(w / ".claude");
    {
      MountPlan plan = prepare_mount_plan(p, test_identity());
      CHECK(held(plan, w / ".claude"));
    }
    CHECK(fs::exists(w / ".claude"));  // the other run, still there, removes it
    ::close(other);
    fs::remove(w / ".claude");
  }
  {
    // Made by the other run between this run's planning and its making.
    MountPlan plan = prepare_mount_plan(p, test_identity(), Placeholders::later);
    const int other = other_run(w / ".claude");
    create_placeholders(plan);
    CHECK(held(plan, w / ".claude"));
    CHECK(plan.data().placeholders.empty());
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(w)) left.push_back(e.path().filename().string());
    CHECK(left == std::vector<std::string>{".claude"});  // no temporary name
    ::close(other);
  }
  // This run ended last: it removed the other's placeholder it held.
  CHECK_FALSE(fs::exists(w / ".claude"));
}

TEST_CASE("a writable path reached through a symlink planted in a writable area is refused",
          "[mounts]") {
  Scratch s;
  fs::create_directories(s.dir / "work");
  fs::create_symlink("/etc", s.dir / "work/out");
  Policy p = policy_for(s.dir / "work");
  p.filesystem.allow_write = {(s.dir / "work/out").string()};
  CHECK_THROWS_AS(prepare_mount_plan(p, test_identity()), sbx::Error);
}

// A link on the way to a protected path: a repository may commit
// `.claude -> .claude-dist` (dangling until built), repo-tool layouts make
// `.git` a link to a git dir elsewhere, a linked worktree's `.git` is a file.
// Each must stay as it is, and what the path reaches through it is protected.
struct LinkedAgentFiles {
  Scratch s;
  Policy p;
  LinkedAgentFiles() : p(policy_for(s.dir / "work")) {
    fs::create_directories(s.dir / "work");
    fs::create_directories(s.dir / "outside.git/hooks");
    std::ofstream(s.dir / "outside.git/config") << "[core]\n";
    fs::create_directory_symlink(".claude-dist", s.dir / "work/.claude");
    fs::create_directory_symlink(s.dir / "outside.git", s.dir / "work/.git");
    std::ofstream(s.dir / "work/.idea") << "not a directory";
    fs::create_directory_symlink("via/../real-vscode", s.dir / "work/.vscode");
    fs::create_directories(s.dir / "work/via");
    p.filesystem.deny_write = {(s.dir / "work/.claude/commands").string(),
                               (s.dir / "work/.claude/settings.json").string(),
                               (s.dir / "work/.git/hooks").string(),
                               (s.dir / "work/.git/config").string(),
                               (s.dir / "work/.idea/workspace.xml").string(),
                               (s.dir / "work/.vscode/tasks.json").string()};
  }
};

TEST_CASE("a symlink on the way to a protected path is pinned, its target protected", "[mounts]") {
  LinkedAgentFiles a;
  const fs::path w = a.s.dir / "work";
  auto ops_on = [](const MountPlan& plan, const fs::path& t) {
    std::vector<const MountOp*> found;
    for (const auto& op : plan.data().ops)
      if (op.target == t.string()) found.push_back(&op);
    return found;
  };
  {
    MountPlan plan = prepare_mount_plan(a.p, test_identity());
    // The links themselves: a self-bind each (unlink/rename: EBUSY), once.
    for (const char* link : {".claude", ".git", ".vscode"}) {
      INFO(link);
      auto ops = ops_on(plan, w / link);
      REQUIRE(ops.size() == 1);
      CHECK(ops[0]->kind == MountKind::pin);
      CHECK_FALSE(ops[0]->target_is_dir);
    }
    // The dangling .claude: its target is a read-only placeholder directory.
    auto dist = ops_on(plan, w / ".claude-dist");
    REQUIRE(dist.size() == 1);
    CHECK(dist[0]->kind == MountKind::protect);
    CHECK(dist[0]->target_is_dir);
    CHECK(fs::is_directory(fs::symlink_status(w / ".claude-dist")));
    CHECK(ops_on(plan, w / ".claude-dist/settings.json").empty());  // below the sealed dir
    // .git leads outside every writable area: read-only already.
    CHECK(ops_on(plan, a.s.dir / "outside.git/hooks").empty());
    // A file on the way: pinned, so it cannot become a directory.
    auto idea = ops_on(plan, w / ".idea");
    REQUIRE(idea.size() == 1);
    CHECK(idea[0]->kind == MountKind::pin);
    CHECK_FALSE(idea[0]->target_is_dir);
    // "via/.." as the kernel resolves it; `via` is pinned (it could become a link).
    CHECK(ops_on(plan, w / "real-vscode").size() == 1);
    CHECK(ops_on(plan, w / "via").size() == 1);
  }
  CHECK_FALSE(fs::exists(fs::symlink_status(w / ".claude-dist")));  // placeholder removed
  CHECK(fs::is_symlink(w / ".claude"));
  CHECK(fs::read_symlink(w / ".claude") == ".claude-dist");
}

TEST_CASE("a symlink loop on the way to a protected path stops the start", "[mounts]") {
  Scratch s;
  fs::create_directories(s.dir / "work");
  fs::create_symlink("b", s.dir / "work/a");
  fs::create_symlink("a", s.dir / "work/b");
  Policy p = policy_for(s.dir / "work");
  p.filesystem.deny_write = {(s.dir / "work/a/settings.json").string()};
  CHECK_THROWS_WITH(prepare_mount_plan(p, test_identity()), Catch::Contains("symlinks on the way"));
}

TEST_CASE("sandbox: links to protected paths can be neither removed nor written through",
          "[mounts][sandbox]") {
  LinkedAgentFiles a;
  const fs::path w = a.s.dir / "work";
  auto r = run_sandboxed(a.p, R"SH(
    rm .claude 2>/dev/null && echo "FAIL: .claude removed"
    mv .claude c2 2>/dev/null && echo "FAIL: .claude renamed"
    mkdir -p .claude/commands 2>/dev/null && echo "FAIL: commands created"
    echo x 2>/dev/null > .claude/settings.json && echo "FAIL: settings written through the link"
    echo x 2>/dev/null > .claude-dist/settings.json && echo "FAIL: settings written at the target"
    [ "$(readlink .claude)" = .claude-dist ] || echo "FAIL: .claude is no longer the link"
    rm .git 2>/dev/null && echo "FAIL: .git removed"
    mv .git g2 2>/dev/null && echo "FAIL: .git renamed"
    mkdir .git 2>/dev/null && echo "FAIL: .git created"
    echo x 2>/dev/null > .git/config && echo "FAIL: config written"
    [ -d .git/hooks ] || echo "FAIL: .git does not lead to the git dir"
    rm .idea 2>/dev/null && echo "FAIL: .idea removed"
    echo ok > .idea || echo "FAIL: .idea not writable"
    rm -r via 2>/dev/null && echo "FAIL: via removed"
    rm .vscode 2>/dev/null && echo "FAIL: .vscode removed"
    mkdir real-vscode 2>/dev/null && echo "FAIL: real-vscode created"
    echo ok > notes || echo "FAIL: work dir not writable"
    echo done
  )SH");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("done") != std::string::npos);
  CHECK(fs::read_symlink(w / ".claude") == ".claude-dist");
  CHECK_FALSE(fs::exists(fs::symlink_status(w / ".claude-dist")));
  CHECK(fs::is_symlink(w / ".git"));
  CHECK_FALSE(fs::exists(a.s.dir / "outside.git/hooks/pre-commit"));
}

TEST_CASE("sandbox: read-only root, writable work dir, fresh /tmp", "[mounts][sandbox]") {
  // A work dir on the host root and one below /tmp (the sandbox's own tmpfs
  // then holds its mount point).
  const char* base = GENERATE("/var/tmp", "/tmp");
  Scratch s(base);
  const bool under_tmp = std::string(base) == "/tmp";
  fs::create_directories(s.dir / "work");
  if (::geteuid() != 0)
    fs::permissions(s.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read |
                               fs::perms::others_exec);
  Policy p = policy_for(s.dir / "work");
  p.filesystem.tmp_size_bytes = 1 << 20;
  auto r = run_sandboxed(p, fmt::format(R"SH(
    set -u
    fail() {{ echo "FAIL: $*"; exit 1; }}
    [ "$(pwd)" = "{0}/work" ] || fail "cwd $(pwd)"
    echo hi > {0}/work/created || fail "cannot write work dir"
    if [ {1} = 0 ]; then echo x 2>/dev/null > {0}/outside && fail "wrote outside"; fi
    touch /etc/sbx-probe 2>/dev/null && fail "wrote /etc"
    touch /usr/sbx-probe 2>/dev/null && fail "wrote /usr"
    echo t > /tmp/x || fail "cannot write /tmp"
    dd if=/dev/zero of=/tmp/big bs=1k count=2048 2>/dev/null && fail "tmp has no size limit"
    grep -q " / .*ro," /proc/self/mountinfo || fail "root not ro"
    grep " / " /proc/self/mountinfo | grep -q nosuid || fail "root not nosuid"
    cat /proc/kcore 2>/dev/null | head -c1 | grep -q . && fail "kcore readable"
    [ -s /proc/keys ] && fail "keys not masked"
    echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid && fail "proc/sys writable"
    [ "$(ls /dev | sort | tr '\n' ' ')" = "core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero " ] || fail "dev: $(ls /dev)"
    echo x > /dev/null || fail "dev/null"
    head -c 4 /dev/urandom | wc -c | grep -q 4 || fail "urandom"
    touch /dev/evil 2>/dev/null && fail "dev writable"
    touch /dev/shm/ok || fail "dev/shm"
    [ -e /proc/{2} ] && fail "host pid {2} visible"
    [ -e /tmp/.X11-unix ] && fail "X11 dir visible"
    echo ok
  )SH",
                                        s.dir.string(), under_tmp ? 1 : 0, ::getpid()));
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("ok") != std::string::npos);
  // On the host: the file exists, owned by the work dir's owner.
  struct stat st {};
  REQUIRE(::stat((s.dir / "work/created").c_str(), &st) == 0);
  CHECK(st.st_uid == ::getuid());
  CHECK_FALSE(fs::exists(s.dir / "outside"));
}

TEST_CASE("landlock: writes are limited to the policy's writable paths", "[mounts][landlock]") {
  Policy probe;
  probe.process.landlock = LandlockMode::best_effort;
  LandlockPlan ll = prepare_landlock(probe);
  if (landlock_status(ll).find("unavailable") != std::string::npos) {
    WARN(landlock_status(ll));
    return;
  }
  CHECK(landlock_status(ll).rfind("landlock ABI ", 0) == 0);
  Scratch s;
  fs::create_directories(s.dir / "work");
  fs::create_directories(s.dir / "other");
  // Mounts make both dirs writable; Landlock's policy names only `other`, so
  // the work dir must refuse writes: Landlock enforces on its own.
  Policy p = policy_for(s.dir / "work");
  p.filesystem.allow_write = {(s.dir / "other").string()};
  Policy lp = policy_for(s.dir / "other");
  lp.process.landlock = LandlockMode::required;
  auto r = run_sandboxed(p,
                         fmt::format(R"SH(
    echo x 2>/dev/null > {0}/work/f && echo "FAIL: landlock let the work dir be written"
    echo y > {0}/other/f || echo "FAIL: landlock blocked the writable path"
    echo z > /tmp/f || echo "FAIL: /tmp blocked"
    echo n > /dev/null || echo "FAIL: /dev/null blocked"
    cat /etc/hostname >/dev/null || echo "FAIL: reading blocked"
    echo done
  )SH",
                                     s.dir.string()),
                         true, &lp);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("done") != std::string::npos);
  CHECK_FALSE(fs::exists(s.dir / "work/f"));
  CHECK(fs::exists(s.dir / "other/f"));
}

TEST_CASE("landlock off is a no-op plan", "[mounts][landlock]") {
  Policy p;
  p.process.landlock = LandlockMode::off;
  LandlockPlan ll = prepare_landlock(p);
  CHECK(landlock_status(ll) == "landlock off (policy)");
  ChildError err;
  CHECK(apply_landlock(ll, err));
  CHECK_FALSE(err.failed());
}

TEST_CASE("sandbox: deny_read masks, allow_read re-exposes, deny_write survives rename",
          "[mounts][sandbox]") {
  Scratch s;
  fs::create_directories(s.dir / "work/.git/hooks");
  fs::create_directories(s.dir / "work/secret/pub");
  std::ofstream(s.dir / "work/secret/key") << "KEY";
  std::ofstream(s.dir / "work/secret/pub/readme") << "PUB";
  Policy p = policy_for(s.dir / "work");
  p.filesystem.deny_read = {(s.dir / "work/secret").string()};
  p.filesystem.allow_read = {(s.dir / "work/secret/pub").string()};
  p.filesystem.deny_write = {(s.dir / "work/.git/hooks").string(),
                             (s.dir / "work/.claude/commands").string()};
  auto r = run_sandboxed(p, R"SH(
    [ "$(ls -A secret)" = "pub" ] || echo "FAIL: secret lists $(ls -A secret)"
    cat secret/key 2>/dev/null && echo "FAIL: key readable"
    [ "$(cat secret/pub/readme)" = "PUB" ] || echo "FAIL: allow_read"
    echo x 2>/dev/null > secret/pub/new && echo "FAIL: allow_read writable"
    echo x 2>/dev/null > .git/hooks/pre-commit && echo "FAIL: hook written"
    mv .git .git2 2>/dev/null && echo "FAIL: .git renamed"
    mv .git/hooks .git/h 2>/dev/null && echo "FAIL: hooks renamed"
    mkdir -p .claude/commands 2>/dev/null && echo "FAIL: .claude created"
    echo ok > .git/HEAD2 || echo "FAIL: .git not writable"
    echo done
  )SH");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("done") != std::string::npos);
  CHECK_FALSE(fs::exists(s.dir / "work/.git/hooks/pre-commit"));
  CHECK_FALSE(fs::exists(s.dir / "work/.claude"));  // placeholder removed
}

TEST_CASE("landlock mirrors hidden paths: no read below them, siblings readable",
          "[mounts][landlock]") {
  Policy probe;
  LandlockPlan ll = prepare_landlock(probe);
  if (landlock_status(ll).find("unavailable") != std::string::npos) {
    WARN(landlock_status(ll));
    return;
  }
  Scratch s;
  fs::create_directories(s.dir / "work");
  fs::create_directories(s.dir / "data/secret/pub");
  std::ofstream(s.dir / "data/secret/key") << "KEY";
  std::ofstream(s.dir / "data/secret/pub/readme") << "PUB";
  std::ofstream(s.dir / "data/plain") << "PLAIN";
  // The mounts hide nothing here: what is refused below is Landlock alone.
  Policy p = policy_for(s.dir / "work");
  Policy lp = p;
  lp.filesystem.deny_read = {(s.dir / "data/secret").string()};
  lp.filesystem.allow_read = {(s.dir / "data/secret/pub").string()};
  lp.process.landlock = LandlockMode::required;
  auto r = run_sandboxed(p,
                         fmt::format(R"SH(
    cat {0}/data/secret/key 2>/dev/null && echo "FAIL: hidden file readable"
    [ "$(cat {0}/data/plain)" = PLAIN ] || echo "FAIL: sibling not readable"
    [ "$(cat {0}/data/secret/pub/readme)" = PUB ] || echo "FAIL: visible path not readable"
    ls / >/dev/null || echo "FAIL: cannot list /"
    /bin/true || echo "FAIL: cannot execute"
    echo done
  )SH",
                                     s.dir.string()),
                         true, &lp);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("done") != std::string::npos);
}

TEST_CASE("a path swapped for a symlink after planning cannot redirect a mount",
          "[mounts][sandbox]") {
  Scratch s;
  fs::create_directories(s.dir / "work");
  fs::create_directories(s.dir / "rw");
  fs::create_directories(s.dir / "decoy");
  Policy p = policy_for(s.dir / "work");
  p.filesystem.allow_write = {(s.dir / "rw").string()};
  // Between the supervisor's check and the mount, `rw` becomes a link to a
  // directory that was never meant to be writable.
  auto r = run_sandboxed(p, "echo x > " + (s.dir / "decoy/f").string() + " && echo WROTE", false,
                         nullptr, [&] {
                           fs::rename(s.dir / "rw", s.dir / "rw.old");
                           fs::create_directory_symlink(s.dir / "decoy", s.dir / "rw");
                         });
  INFO(r.out);
  if (::geteuid() == 0) {
    // Root caller: the supervisor already holds the idmapped tree of the
    // real directory (opened by fd before the swap); the decoy stays read-only.
    CHECK(r.out.find("WROTE") == std::string::npos);
  } else {
    CHECK(r.status == 125);
    CHECK(r.out.find("Too many levels of symbolic links") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(s.dir / "decoy/f"));
}

TEST_CASE("plan adds passwd/group entries only for ids the host lacks", "[mounts]") {
  Scratch s;
  Policy p = policy_for(s.dir);
  Identity id = test_identity();
  auto generated = [](const MountPlan& plan, const std::string& name) -> const MountOp* {
    for (const auto& op : plan.data().ops)
      if (op.kind == MountKind::generated && op.source == name) return &op;
    return nullptr;
  };
  {
    id.uid = 0;  // root has an entry on every host
    id.gid = 0;
    MountPlan plan = prepare_mount_plan(p, id);
    CHECK(generated(plan, "passwd") == nullptr);
    CHECK(generated(plan, "group") == nullptr);
  }
  id.uid = 43210;
  id.gid = 43211;
  id.user_name = "bad:name\nroot::0:0";  // must not inject fields or lines
  id.home = "/home/x";
  MountPlan plan = prepare_mount_plan(p, id);
  const MountOp* pw = generated(plan, "passwd");
  const MountOp* gr = generated(plan, "group");
  REQUIRE(pw != nullptr);
  REQUIRE(gr != nullptr);
  CHECK(pw->generated_content.find("\nbadnameroot00:x:43210:43211:") != std::string::npos);
  CHECK(pw->generated_content.find(":x:43210:43211:sbx sandbox user:/home/x:") !=
        std::string::npos);
  CHECK(pw->generated_content.find("\nroot::0:0") == std::string::npos);
  CHECK(gr->generated_content.find(":x:43211:\n") != std::string::npos);
  CHECK(pw->generated_content.rfind("root:", 0) == 0);  // the host's entries come first
}

TEST_CASE("sandbox_may_write: inside a writable bind, outside a mask, owned like the bind",
          "[mounts]") {
  Scratch s;
  const fs::path w = fs::canonical(s.dir) / "work";
  fs::create_directories(w / "src");
  fs::create_directories(w / "secret/inner");
  fs::create_directories(s.dir / "elsewhere");
  Policy p = policy_for(w);
  p.filesystem.deny_read = {(w / "secret").string()};
  p.filesystem.allow_write = {(w / "secret/inner").string()};
  const MountPlan plan = prepare_mount_plan(p, test_identity());
  CHECK(sandbox_may_write(plan, (w / "src").string()));
  CHECK(sandbox_may_write(plan, w.string()));
  CHECK_FALSE(sandbox_may_write(plan, (w / "secret").string()));         // masked
  CHECK(sandbox_may_write(plan, (w / "secret/inner").string()));         // a bind over the mask
  CHECK_FALSE(sandbox_may_write(plan, (s.dir / "elsewhere").string()));  // not bound writable
  if (::geteuid() == 0) {
    // A third uid's directory in the bind: read-only to the command.
    REQUIRE(::chown((w / "src").c_str(), 4242, 4242) == 0);
    CHECK_FALSE(sandbox_may_write(plan, (w / "src").string()));
  }
}
