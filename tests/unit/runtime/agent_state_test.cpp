// filesystem.state: creation of missing agent-state paths on the host
// (runtime/agent_state.cpp). Runs unprivileged and as root; the root cases
// check that the paths are made as the command's user, never as root.
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <sbx/error.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/agent_state.hpp"

using namespace sbx;
using namespace sbx::runtime;
namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path root;
  Scratch() {
    char tmpl[] = "/tmp/sbx-unit-state.XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (made == nullptr) throw std::runtime_error("mkdtemp under /tmp failed");
    root = made;
    fs::create_directories(root / "home");
    fs::create_directories(root / "work");
  }
  ~Scratch() { fs::remove_all(root); }
  std::string path(const std::string& rel) const { return (root / rel).string(); }
};

Identity self() {
  Identity id;
  id.host_uid = id.uid = ::getuid();
  id.host_gid = id.gid = ::getgid();
  id.started_as_root = ::getuid() == 0;
  return id;
}

Policy policy_with(const Scratch& s, std::vector<StatePath> state) {
  Policy p;
  p.filesystem.workdir = s.path("work");
  for (const auto& st : state) p.filesystem.allow_write.push_back(st.path);
  p.filesystem.state = std::move(state);
  return p;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

// The message of the sbx::Error that creating throws, or "no error".
std::string error_of(const Policy& p, const Identity& id) {
  try {
    create_agent_state(p, id, {});
  } catch (const Error& e) {
    return std::string(e.what()) + " | fix: " + e.fix();
  }
  return "no error";
}

struct Umask {
  mode_t old;
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
};

}  // namespace

TEST_CASE("state: missing paths are created with exact modes, whatever the umask") {
  Scratch s;
  Umask weird(0277);  // would give 0500/0400 without the explicit chmod
  auto p = policy_with(s, {{s.path("home/.agent"), true, ""},
                           {s.path("home/.agent.json"), false, "{}\n"},
                           {s.path("home/.config/deep/agent"), true, ""}});
  std::vector<std::string> warnings;
  create_agent_state(p, self(), [&](const std::string& w) { warnings.push_back(w); });
  CHECK(warnings.empty());
  auto dir = lstat_of(s.path("home/.agent"));
  CHECK(S_ISDIR(dir.st_mode));
  CHECK((dir.st_mode & 07777) == 0700);
  CHECK(dir.st_uid == ::getuid());
  auto file = lstat_of(s.path("home/.agent.json"));
  CHECK(S_ISREG(file.st_mode));
  CHECK((file.st_mode & 07777) == 0600);
  CHECK(file.st_uid == ::getuid());
  CHECK(read(s.path("home/.agent.json")) == "{}\n");
  // Missing parents are made too, 0700 as well.
  CHECK((lstat_of(s.path("home/.config")).st_mode & 07777) == 0700);
  CHECK((lstat_of(s.path("home/.config/deep/agent")).st_mode & 07777) == 0700);
}

TEST_CASE("state: existing paths are left exactly as they are") {
  Scratch s;
  fs::create_directory(s.path("home/.agent"));
  ::chmod(s.path("home/.agent").c_str(), 0755);
  { std::ofstream(s.path("home/.agent.json")) << "mine"; }
  ::chmod(s.path("home/.agent.json").c_str(), 0644);
  // A dotfile manager's link to an existing file is fine too.
  { std::ofstream(s.path("home/real.json")) << "linked"; }
  fs::create_symlink(s.path("home/real.json"), s.path("home/.linked.json"));
  auto p = policy_with(s, {{s.path("home/.agent"), true, ""},
                           {s.path("home/.agent.json"), false, "{}\n"},
                           {s.path("home/.linked.json"), false, "{}\n"}});
  create_agent_state(p, self(), {});
  CHECK((lstat_of(s.path("home/.agent")).st_mode & 07777) == 0755);
  CHECK((lstat_of(s.path("home/.agent.json")).st_mode & 07777) == 0644);
  CHECK(read(s.path("home/.agent.json")) == "mine");
  CHECK(read(s.path("home/real.json")) == "linked");
}

TEST_CASE("state: a dangling symlink in place of the path is refused, its target not made") {
  Scratch s;
  fs::create_symlink(s.path("home/.bashrc"), s.path("home/.agent.json"));
  auto p = policy_with(s, {{s.path("home/.agent.json"), false, "{}\n"}});
  CHECK_THAT(error_of(p, self()), Catch::Contains("is a symlink whose target is missing") &&
                                      Catch::Contains("fix: remove the link"));
  CHECK_FALSE(fs::exists(s.path("home/.bashrc")));
}

TEST_CASE("state: a symlink planted in a writable area on the way is refused") {
  Scratch s;
  fs::create_directories(s.path("elsewhere"));
  // The work dir is writable: a sandbox could have put this link there.
  fs::create_directory_symlink(s.path("elsewhere"), s.path("work/link"));
  auto p = policy_with(s, {{s.path("work/link/.agent.json"), false, "{}\n"}});
  CHECK_THAT(error_of(p, self()),
             Catch::Contains("goes through the symlink " + s.path("work/link")) &&
                 Catch::Contains("writable area"));
  CHECK_FALSE(fs::exists(s.path("elsewhere/.agent.json")));
}

TEST_CASE("state: a symlink outside the writable areas (the user's layout) is followed") {
  Scratch s;
  // e.g. /home -> /var/home
  fs::create_directory_symlink(s.path("home"), s.path("homelink"));
  auto p = policy_with(s, {{s.path("homelink/.agent"), true, ""}});
  create_agent_state(p, self(), {});
  CHECK(fs::is_directory(s.path("home/.agent")));
}

TEST_CASE("state: the wrong type, or a state path that is not writable, is refused") {
  Scratch s;
  { std::ofstream(s.path("home/.agent")) << "x"; }
  auto p = policy_with(s, {{s.path("home/.agent"), true, ""}});
  CHECK_THAT(error_of(p, self()),
             Catch::Contains("exists but is not a directory") && Catch::Contains("fix: move it"));
  auto q = policy_with(s, {{s.path("home/.other.json"), false, ""}});
  q.filesystem.allow_write.clear();
  CHECK_THAT(error_of(q, self()), Catch::Contains("is not writable in the policy"));
  CHECK_FALSE(fs::exists(s.path("home/.other.json")));
}

TEST_CASE("state: nothing is made in a directory the command's user does not own") {
  Scratch s;
  Identity other = self();
  other.uid = other.uid == 65534 ? 65533 : 65534;  // someone else
  other.gid = 65534;
  auto p = policy_with(s, {{s.path("home/.agent.json"), false, "{}\n"}});
  std::vector<std::string> warnings;
  create_agent_state(p, other, [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("not created") &&
                              Catch::Contains(fmt::format("belongs to uid {}", ::getuid())));
  CHECK_FALSE(fs::exists(s.path("home/.agent.json")));
}

TEST_CASE("state: as root, made as the command's user with that user's rights") {
  if (::getuid() != 0) return;  // root only: the unprivileged case is the tests above
  Scratch s;
  ::chmod(s.root.c_str(), 0755);
  REQUIRE(::chown(s.path("home").c_str(), 65534, 65534) == 0);
  Identity nobody = self();
  nobody.uid = 65534;
  nobody.gid = 65534;
  auto p = policy_with(
      s, {{s.path("home/.agent"), true, ""}, {s.path("home/.agent.json"), false, "{}\n"}});
  create_agent_state(p, nobody, {});
  for (const char* rel : {"home/.agent", "home/.agent.json"}) {
    INFO(rel);
    auto st = lstat_of(s.path(rel));
    CHECK(st.st_uid == 65534u);
    CHECK(st.st_gid == 65534u);
  }
  // nobody's own home, but not writable for nobody: root could, sbx must not.
  REQUIRE(::chmod(s.path("home").c_str(), 0500) == 0);
  auto q = policy_with(s, {{s.path("home/.more.json"), false, "{}\n"}});
  CHECK_THAT(error_of(q, nobody),
             Catch::Contains("cannot create " + s.path("home/.more.json") + " as uid 65534") &&
                 Catch::Contains("Permission denied"));
  CHECK_FALSE(fs::exists(s.path("home/.more.json")));
}
